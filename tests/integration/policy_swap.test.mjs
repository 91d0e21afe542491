// A routing policy swapped 100 times through POST /policy/update while
// concurrent clients keep sending requests to 4 workers: no request fails,
// and every response carries the policy version of the registry version it
// was routed with and follows that policy's decision.  Also: the built-in
// policy set in x-moongate-policy-version, GET /policy/info and
// /moongate/state, and POST /policy/delete.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, mockModel, waitFor } from '../lib/harness.mjs';
import { req, chatBody, startLoad, waitCount, state, waitWorkers, sha256, policySetVersion } from './lib_policy.mjs';

const KEY = 'sk-test-policy-swap';
const WORKERS = 4;
const FIRST = `-- always the first candidate
local _M = { name = "always_first", kind = "routing", version = 1 }

function _M.select(ctx, candidates, conf)
    return { candidates[1] }
end

return _M
`;
const LAST = `-- always the last candidate
local _M = { name = "always_last", kind = "routing", version = 1 }

function _M.select(ctx, candidates, conf)
    return { candidates[#candidates] }
end

return _M
`;

const mock = await startMock();
const gw = await startGateway({
  config: {
    model_list: [
      mockModel(mock, 'g', { model: 'openai/up-1', info: { id: 'd1' } }),
      mockModel(mock, 'g', { model: 'openai/up-2', info: { id: 'd2' } }),
      mockModel(mock, 'g', { model: 'openai/up-3', info: { id: 'd3' } }),
    ],
    general_settings: { master_key: KEY },
  },
  workers: WORKERS,
});
after(async () => { await gw.stop(); await mock.stop(); });

const chat = () => req(gw.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: chatBody('g') });
let builtin; // {version, hashes: {routing, fallback, wildcard}}

test('the built-in policy set: x-moongate-policy-version, GET /policy/info and /moongate/state agree', async () => {
  const info = await req(gw.port, '/policy/info?source=1', { key: KEY });
  assert.equal(info.status, 200, info.text);
  const byKind = Object.fromEntries(info.json.data.map((p) => [p.kind, p]));
  assert.deepEqual(Object.keys(byKind).sort(), ['fallback', 'routing', 'wildcard']);
  assert.equal(byKind.routing.name, 'simple_shuffle');
  assert.equal(byKind.fallback.name, 'ordered');
  assert.equal(byKind.wildcard.name, 'litellm');
  for (const p of info.json.data) {
    assert.equal(p.origin, 'builtin');
    assert.equal(p.sha256, sha256(p.source), `${p.kind}: sha256 of the source`);
    assert.match(p.source, /function _M\.select\(ctx, candidates, conf\)/);
  }
  const v = policySetVersion(byKind.routing.sha256, byKind.fallback.sha256, byKind.wildcard.sha256);
  assert.equal(info.json.version, v, 'policy set version = sha256 over the three hashes');
  builtin = { version: v, hashes: { routing: byKind.routing.sha256, fallback: byKind.fallback.sha256, wildcard: byKind.wildcard.sha256 } };

  const r = await chat();
  assert.equal(r.status, 200, r.text);
  assert.equal(r.polVersion, v);
  assert.equal(r.regVersion, info.json.registry_version);
  // on errors too
  const e = await req(gw.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: chatBody('no-such-group') });
  assert.equal(e.status, 400, e.text);
  assert.equal(e.polVersion, v);

  const s = await waitWorkers(gw.port, KEY, WORKERS, (w) => w.policies && w.policies.version === v,
    { what: 'every worker reporting the built-in policy set' });
  for (const w of s.workers) {
    assert.equal(w.policies.jit, true, `worker ${w.worker}: built-in-only state runs JIT-compiled`);
    assert.equal(w.policies.policies.length, 3);
    for (const p of w.policies.policies) {
      assert.equal(p.origin, 'builtin');
      assert.equal(p.loaded, true);
      assert.equal(p.errors, 0);
      assert.equal(p.failing, false);
      assert.equal(p.hash, builtin.hashes[p.kind]);
    }
  }
});

const updates = []; // {i, which, version, tRet}

test('a routing policy swapped 100 times under load: no failed request, every response follows its policy', { timeout: 180000 }, async () => {
  assert.ok(builtin, 'needs the first test');
  const vFirst = policySetVersion(sha256(FIRST), builtin.hashes.fallback, builtin.hashes.wildcard);
  const vLast = policySetVersion(sha256(LAST), builtin.hashes.fallback, builtin.hashes.wildcard);
  const want = { first: { pol: vFirst, dep: 'd1' }, last: { pol: vLast, dep: 'd3' } };
  const v0 = (await chat()).regVersion;

  const load = startLoad(gw.port, { key: KEY, clients: 6, max: 40000, deadlineMs: 150000, makeRequest: () => ({ body: chatBody('g') }) });
  try {
    await waitCount(load, 50);
    for (let i = 0; i < 100; i++) {
      const which = i % 2 === 0 ? 'first' : 'last';
      const r = await req(gw.port, '/policy/update', {
        method: 'POST', key: KEY, body: { kind: 'routing', source: which === 'first' ? FIRST : LAST },
      });
      assert.equal(r.status, 200, `update ${i}: ${r.text}`);
      assert.equal(r.json.sha256, sha256(which === 'first' ? FIRST : LAST));
      updates.push({ i, which, version: r.json.version, tRet: r.tRecv });
      // a few requests between two swaps
      const c = load.count();
      await waitCount(load, c + 4);
    }
    await waitCount(load, load.count() + 100);
  } finally {
    load.stop();
  }
  const results = await load.done;

  // versions: one registry version per update, in order
  for (let i = 0; i < updates.length; i++) {
    assert.equal(updates[i].version, v0 + i + 1, `update ${i} committed version ${updates[i].version}`);
  }
  const byVersion = new Map(updates.map((u) => [u.version, u.which]));

  const failed = results.filter((r) => r.error || r.status !== 200);
  assert.equal(failed.length, 0, `failed requests: ${JSON.stringify(failed.slice(0, 3).map((r) => r.error || r.text))}`);

  let checked = 0;
  const perWorker = new Map();
  const problems = [];
  for (const r of results) {
    // the newest update that had returned before this request was sent
    let floor = v0;
    for (const u of updates) if (u.tRet < r.tSend && u.version > floor) floor = u.version;
    if (r.regVersion < floor) problems.push(`request ${r.i} sent after version ${floor} returned was routed with ${r.regVersion}`);
    if (r.regVersion === v0) {
      if (r.polVersion !== builtin.version) problems.push(`request ${r.i}: version ${v0} with policy ${r.polVersion}`);
      continue;
    }
    const which = byVersion.get(r.regVersion);
    if (!which) { problems.push(`request ${r.i}: unknown registry version ${r.regVersion}`); continue; }
    if (r.polVersion !== want[which].pol) problems.push(`request ${r.i}: version ${r.regVersion} (${which}) has policy version ${r.polVersion}, expected ${want[which].pol}`);
    if (r.modelId !== want[which].dep) problems.push(`request ${r.i}: version ${r.regVersion} (${which}) was served by ${r.modelId}, expected ${want[which].dep}`);
    checked++;
    perWorker.set(r.worker, (perWorker.get(r.worker) || 0) + 1);
  }
  assert.deepEqual(problems.slice(0, 10), [], `${problems.length} problems`);
  assert.ok(checked >= 400, `only ${checked} requests ran under the swapped policies`);
  assert.equal(perWorker.size, WORKERS, `workers that served swapped policies: ${[...perWorker.keys()]}`);
  console.log(`  ${results.length} requests, ${checked} under swapped policies, per worker ${JSON.stringify([...perWorker])}`);
});

test('/moongate/state and GET /policy/info after the swaps: every worker runs the last stored policy', async () => {
  assert.equal(updates.length, 100, 'needs the swap test');
  const last = updates[updates.length - 1];
  const vLast = policySetVersion(sha256(LAST), builtin.hashes.fallback, builtin.hashes.wildcard);
  const s = await waitWorkers(gw.port, KEY, WORKERS,
    (w) => w.registry_version === last.version && w.policies && w.policies.version === vLast,
    { what: `every worker on version ${last.version}` });
  for (const w of s.workers) {
    const [routing, fallback, wildcard] = w.policies.policies;
    assert.equal(routing.kind, 'routing');
    assert.equal(routing.name, 'always_last', 'a stored policy is shown by its declared name');
    assert.equal(routing.origin, 'store');
    assert.equal(routing.hash, sha256(LAST));
    assert.equal(routing.loaded, true);
    assert.equal(routing.errors, 0);
    assert.equal(fallback.origin, 'builtin');
    assert.equal(wildcard.origin, 'builtin');
    assert.equal(w.policies.jit, false, 'a state with a user policy is interpreted');
    assert.equal(w.policy_errors, 0);
  }
  const info = await req(gw.port, '/policy/info', { key: KEY });
  assert.equal(info.status, 200);
  assert.equal(info.json.version, vLast);
  assert.equal(info.json.registry_version, last.version);
  const routing = info.json.data.find((p) => p.kind === 'routing');
  assert.equal(routing.origin, 'store');
  assert.equal(routing.sha256, sha256(LAST));
});

test('POST /policy/delete: the configured policy is back on every worker once it returns', async () => {
  const d = await req(gw.port, '/policy/delete', { method: 'POST', key: KEY, body: { kind: 'routing' } });
  assert.equal(d.status, 200, d.text);
  const v = d.json.version;
  for (let i = 0; i < 40; i++) {
    const r = await chat();
    assert.equal(r.status, 200);
    assert.ok(r.regVersion >= v, `registry version ${r.regVersion} < ${v}`);
    assert.equal(r.polVersion, builtin.version);
  }
  const again = await req(gw.port, '/policy/delete', { method: 'POST', key: KEY, body: { kind: 'routing' } });
  assert.equal(again.status, 404, again.text);
  await waitFor(async () => {
    const s = await state(gw.port, KEY);
    return s.workers.every((w) => w.policies.version === builtin.version && w.policies.jit === true);
  }, { what: 'every worker back on the built-in set, JIT on' });
});
