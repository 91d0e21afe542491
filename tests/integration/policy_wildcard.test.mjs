// LiteLLM #29064: updating a wildcard deployment replaces it.  An "openai/*"
// deployment added with POST /model/new (embedded store) points at mock A
// with key k1; several clients keep asking for "openai/gpt-x" on 4 workers;
// PATCH /model/{id}/update moves it to mock B with key k2.  Every request
// sent after the PATCH returned reaches B with k2 (0% reach A or carry k1),
// and is answered with x-moongate-registry-version >= the PATCH's version.
// Also: the wildcard policy's matching (most specific pattern first, the
// provider/name second lookup, exact names win, captures substituted).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, mockModel } from '../lib/harness.mjs';
import { req, chatBody, startLoad, waitCount, waitWorkers } from './lib_policy.mjs';

const KEY = 'sk-test-policy-wildcard';
const WORKERS = 4;

const mockA = await startMock();
const mockB = await startMock();
const gw = await startGateway({
  config: {
    model_list: [mockModel(mockA, 'unrelated', { model: 'openai/up-unrelated', key: 'k0' })],
    general_settings: { master_key: KEY },
  },
  workers: WORKERS,
});
after(async () => { await gw.stop(); await mockA.stop(); await mockB.stop(); });

const admin = (method, p, body) => req(gw.port, p, { method, key: KEY, body });
const chat = (model, content = 'hi') =>
  req(gw.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: chatBody(model, content) });
const contentOf = (entry) => entry.body?.messages?.[0]?.content;

let wildId;
let newVersion;

test('POST /model/new adds "openai/*" on mock A with k1; every worker serves openai/gpt-x from it', async () => {
  const r = await admin('POST', '/model/new', {
    model_name: 'openai/*', litellm_params: { model: 'openai/*', api_base: mockA.url, api_key: 'k1' },
  });
  assert.equal(r.status, 200, r.text);
  wildId = r.json.model_info.id;
  newVersion = r.json.version;
  assert.ok(wildId);
  await waitWorkers(gw.port, KEY, WORKERS, (w) => w.registry_version >= newVersion);
  const seen = new Set();
  for (let i = 0; i < 40 && seen.size < WORKERS; i++) {
    const x = await chat('openai/gpt-x', `warm-${i}`);
    assert.equal(x.status, 200, x.text);
    assert.equal(x.modelId, wildId);
    assert.ok(x.regVersion >= newVersion);
    seen.add(x.worker);
  }
  const log = await mockA.log();
  const last = log[log.length - 1];
  assert.equal(last.headers.authorization, 'Bearer k1');
  assert.equal(last.model, 'gpt-x', 'the capture substituted into litellm_params.model');
});

test('PATCH /model/{id}/update under load: after it returns, 0% of requests reach mock A or carry k1', { timeout: 120000 }, async () => {
  assert.ok(wildId, 'needs the previous test');
  const sinceA = (await mockA.stats()).last_seq;
  const sinceB = (await mockB.stats()).last_seq;
  const load = startLoad(gw.port, {
    key: KEY, clients: 8, max: 20000, deadlineMs: 90000,
    makeRequest: (i) => ({ body: chatBody('openai/gpt-x', `w-${i}`) }),
  });
  let patch;
  try {
    await waitCount(load, 300);
    patch = await admin('PATCH', `/model/${wildId}/update`, { litellm_params: { api_base: mockB.url, api_key: 'k2' } });
    assert.equal(patch.status, 200, patch.text);
    const n = load.count();
    await waitCount(load, n + 600);
  } finally {
    load.stop();
  }
  const results = await load.done;
  const tPatch = patch.tRecv;
  const vPatch = patch.json.version;
  assert.ok(vPatch > newVersion);

  const failed = results.filter((r) => r.error || r.status !== 200);
  assert.equal(failed.length, 0, `failed: ${JSON.stringify(failed.slice(0, 3).map((r) => r.error || r.text))}`);

  const logA = (await mockA.log(sinceA)).filter((e) => /^w-\d+$/.test(contentOf(e) || ''));
  const logB = (await mockB.log(sinceB)).filter((e) => /^w-\d+$/.test(contentOf(e) || ''));
  const byContent = new Map();
  for (const e of logA) byContent.set(contentOf(e), { mock: 'A', e });
  for (const e of logB) {
    assert.ok(!byContent.has(contentOf(e)), `${contentOf(e)} reached both mocks`);
    byContent.set(contentOf(e), { mock: 'B', e });
  }
  assert.equal(byContent.size, results.length, 'every request reached exactly one mock once');

  const after = results.filter((r) => r.tSend > tPatch);
  const before = results.filter((r) => r.tRecv < patch.tSend); // finished before the PATCH was sent
  assert.ok(after.length >= 500, `only ${after.length} requests after the PATCH`);
  assert.ok(before.length >= 200, `only ${before.length} requests before the PATCH`);
  const bad = [];
  const workers = new Set();
  for (const r of after) {
    const hit = byContent.get(`w-${r.i}`);
    if (!hit || hit.mock !== 'B') bad.push(`w-${r.i} (sent ${r.tSend - tPatch} ms after the PATCH) reached mock ${hit?.mock}`);
    else if (hit.e.headers.authorization !== 'Bearer k2') bad.push(`w-${r.i} carried ${hit.e.headers.authorization}`);
    if (r.regVersion < vPatch) bad.push(`w-${r.i}: x-moongate-registry-version ${r.regVersion} < ${vPatch}`);
    workers.add(r.worker);
  }
  assert.deepEqual(bad.slice(0, 10), [], `${bad.length} of ${after.length} requests after the PATCH went wrong`);
  assert.equal(workers.size, WORKERS, 'requests after the PATCH reached every worker');
  for (const r of before) {
    const hit = byContent.get(`w-${r.i}`);
    assert.equal(hit.mock, 'A', `w-${r.i} finished before the PATCH was sent yet reached ${hit.mock}`);
    assert.equal(hit.e.headers.authorization, 'Bearer k1');
  }
  // mock A: nothing started after the PATCH returned, except requests sent before it
  const sentBefore = new Set(results.filter((r) => r.tSend <= tPatch).map((r) => `w-${r.i}`));
  const lateA = logA.filter((e) => e.t_start_ms > tPatch && !sentBefore.has(contentOf(e)));
  assert.deepEqual(lateA.map(contentOf), [], 'mock A entries after the PATCH returned');
  assert.ok(logB.every((e) => e.headers.authorization === 'Bearer k2'));
  assert.ok(logA.every((e) => e.headers.authorization === 'Bearer k1'));
  console.log(`  ${results.length} requests: ${before.length} done before the PATCH, ${after.length} sent after; `
    + `mock A ${logA.length}, mock B ${logB.length}`);
});

test('wildcard matching through the policy: most specific pattern first, exact names win, provider/name lookup', async () => {
  const add = async (name, model, key) => {
    const r = await admin('POST', '/model/new', { model_name: name, litellm_params: { model, api_base: mockA.url, api_key: key } });
    assert.equal(r.status, 200, r.text);
    return r.json;
  };
  const gpt4 = await add('openai/gpt-4*', 'openai/gpt-4*', 'k-gpt4');
  const star = await add('*', 'openai/*', 'k-star');
  const exact = await add('openai/gpt-4-exact', 'openai/real-exact', 'k-exact');
  await waitWorkers(gw.port, KEY, WORKERS, (w) => w.registry_version >= exact.version);
  const cases = [
    ['openai/gpt-4o', gpt4.model_info.id, 'gpt-4o', 'Bearer k-gpt4'],
    ['openai/gpt-3.5-turbo', wildId, 'gpt-3.5-turbo', 'Bearer k2'],
    ['openai/gpt-4-exact', exact.model_info.id, 'real-exact', 'Bearer k-exact'],
    ['mistral/large', star.model_info.id, 'mistral/large', 'Bearer k-star'],
    ['gpt-4o', star.model_info.id, 'gpt-4o', 'Bearer k-star'],
  ];
  for (const [model, id, upstream, auth] of cases) {
    const r = await chat(model, `m-${model}`);
    assert.equal(r.status, 200, `${model}: ${r.text}`);
    assert.equal(r.modelId, id, `${model} routed to ${r.modelId}`);
    const log = [...await mockA.log(), ...await mockB.log()].filter((e) => contentOf(e) === `m-${model}`);
    assert.equal(log.length, 1, model);
    assert.equal(log[0].model, upstream, `${model}: upstream model`);
    assert.equal(log[0].headers.authorization, auth, `${model}: key`);
  }
  // the "*" pattern deleted: a bare name is looked up again as provider/name
  const del = await admin('POST', '/model/delete', { id: star.model_info.id });
  assert.equal(del.status, 200, del.text);
  await waitWorkers(gw.port, KEY, WORKERS, (w) => w.registry_version >= del.json.version);
  const r = await chat('gpt-4o', 'm-bare');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.modelId, gpt4.model_info.id, 'gpt-4o -> openai/gpt-4o -> "openai/gpt-4*"');
  const r2 = await chat('claude-3-haiku', 'm-claude');
  assert.equal(r2.status, 400, 'no anthropic/* pattern');
});
