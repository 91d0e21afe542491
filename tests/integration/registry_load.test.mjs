// The versioned registry under load, embedded store, 4 workers: a model is
// created, updated (api_base and api_key moved to a second mock) and deleted
// through the API while bounded concurrent clients keep sending requests on
// fresh connections.  After EACH call returns, no request sent afterwards, on
// any worker, sees the previous state: checked through the response headers
// (x-moongate-registry-version, x-moongate-worker), the status codes and the
// mock providers' logs (which deployment, which key).  /model/info and
// /v1/models agree on every worker after each call.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, mockModel, waitFor } from '../lib/harness.mjs';
import { req, everyWorker, loadLoop, waitResults, startLoaded, state, waitState, allAtLeast } from './lib_registry.mjs';

const KEY = 'sk-reg-master';
const N = 4;
const mockA = await startMock();
const mockB = await startMock();
const gw = await startLoaded({
  config: {
    model_list: [mockModel(mockA, 'cfg-model', { key: 'sk-cfg-secret-key' })],
    general_settings: { master_key: KEY },
  },
  workers: N,
});
after(async () => { await gw.stop(); await mockA.stop(); await mockB.stop(); });

const chatBody = (model, tag) => ({ model, messages: [{ role: 'user', content: tag }] });

function mutate(path, body, method = 'POST') {
  return req(gw.port, path, { method, body, key: KEY });
}

/** Requests of the loop sent after t (strictly) to model `kind`. */
const sentAfter = (results, t, kind) => results.filter((r) => r.tSend > t && r.kind === kind);

function perWorker(rs) {
  const m = new Map();
  for (const r of rs) m.set(r.worker, (m.get(r.worker) || 0) + 1);
  return m;
}

/** Waits until every worker served at least `k` requests to `kind` sent after t. */
async function coverage(loop, t, kind, k = 3) {
  await waitResults(loop, (rs) => {
    const m = perWorker(sentAfter(rs, t, kind));
    return [...Array(N).keys()].every((w) => (m.get(w) || 0) >= k);
  }, { timeout: 20000, what: `every worker to serve ${k} "${kind}" requests after the call returned` });
}

function describe(r) {
  return `#${r.i} tag=${r.tag} worker=${r.worker} v=${r.version} status=${r.status} sent=+${r.tSend} ${r.error || (r.text || '').slice(0, 160)}`;
}

test('create, update, delete under load: no request after the call returns sees the previous state', async () => {
  const loop = loadLoop({
    concurrency: 8,
    maxMs: 90000,
    make: (i) => {
      const kind = i % 4 === 3 ? 'cfg' : 'dyn';
      const tag = `load-${i}`;
      return { port: gw.port, path: '/v1/chat/completions', method: 'POST', key: KEY, tag, kind,
        body: chatBody(kind === 'cfg' ? 'cfg-model' : 'dyn', tag) };
    },
  });
  const bad = [];
  try {
    await waitResults(loop, (rs) => rs.length >= 40, { what: 'the load to start' });
    const baseline = loop.results.filter((r) => r.kind === 'dyn');
    assert.ok(baseline.every((r) => r.status === 400), 'before /model/new "dyn" is an unknown model');

    // ---- create ----
    const c = await mutate('/model/new', {
      model_name: 'dyn',
      litellm_params: { model: 'openai/dyn-upstream', api_base: mockA.url, api_key: 'sk-dyn-key-A' },
    });
    assert.equal(c.status, 200, c.text);
    const id = c.json.model_info.id;
    const v1 = c.json.version;
    const t1 = c.tHead;
    assert.ok(Number.isInteger(v1) && v1 > 0, `the call returns the committed version: ${c.text}`);
    assert.equal(c.version, v1, 'x-moongate-registry-version of the mutation response');
    assert.ok(!c.text.includes('sk-dyn-key-A'), 'the response does not echo the api_key');
    await coverage(loop, t1, 'dyn');
    for (const r of sentAfter(loop.results, t1, 'dyn')) {
      if (r.error || r.status !== 200 || r.version < v1) bad.push(`after create (v${v1}): ${describe(r)}`);
    }
    await agree(id, { present: true, apiBase: mockA.url, version: v1 });

    // ---- update: api_base and api_key move to mock B ----
    const u = await mutate('/model/update', {
      model_info: { id },
      litellm_params: { api_base: mockB.url, api_key: 'sk-dyn-key-B' },
    });
    assert.equal(u.status, 200, u.text);
    const v2 = u.json.version;
    const t2 = u.tHead;
    assert.ok(v2 > v1, `versions move forward: ${v1} -> ${v2}`);
    assert.ok(!u.text.includes('sk-dyn-key-B'), 'the response does not echo the api_key');
    await coverage(loop, t2, 'dyn');
    for (const r of sentAfter(loop.results, t2, 'dyn')) {
      if (r.error || r.status !== 200 || r.version < v2) bad.push(`after update (v${v2}): ${describe(r)}`);
    }
    await agree(id, { present: true, apiBase: mockB.url, version: v2 });

    // ---- delete ----
    const d = await mutate('/model/delete', { id });
    assert.equal(d.status, 200, d.text);
    assert.equal(d.json.message, `Model: ${id} deleted successfully`);
    const v3 = d.json.version;
    const t3 = d.tHead;
    assert.ok(v3 > v2, `versions move forward: ${v2} -> ${v3}`);
    await coverage(loop, t3, 'dyn');
    await coverage(loop, t3, 'cfg', 1);
    for (const r of sentAfter(loop.results, t3, 'dyn')) {
      const invalid = r.status === 400 && /Invalid model name passed in model=dyn/.test(r.json?.error?.message || '');
      if (r.error || !invalid || r.version < v3) bad.push(`after delete (v${v3}): ${describe(r)}`);
    }
    await agree(id, { present: false, version: v3 });

    await loop.stop();
    const results = loop.results;
    // the config model kept serving throughout
    for (const r of results.filter((x) => x.kind === 'cfg')) {
      if (r.error || r.status !== 200) bad.push(`config model failed: ${describe(r)}`);
    }

    // ---- the providers' view: which deployment and key each request used ----
    const byTag = new Map(results.map((r) => [r.tag, r]));
    const logA = await mockA.log();
    const logB = await mockB.log();
    let stragglers = 0;
    for (const [name, log] of [['A', logA], ['B', logB]]) {
      for (const e of log) {
        const tag = e.body?.messages?.[0]?.content;
        const r = byTag.get(tag);
        if (!r || r.kind !== 'dyn') continue;
        const auth = e.headers.authorization;
        if (name === 'A' && auth !== 'Bearer sk-dyn-key-A') bad.push(`mock A got ${tag} with ${auth}`);
        if (name === 'B' && auth !== 'Bearer sk-dyn-key-B') bad.push(`mock B got ${tag} with ${auth}`);
        // the snapshot a request pinned (its response header) matches the deployment it used
        if (name === 'A' && !(r.version >= v1 && r.version < v2)) bad.push(`mock A (v${v1}..${v2 - 1}) served ${tag} answered with version ${r.version}`);
        if (name === 'B' && !(r.version >= v2 && r.version < v3)) bad.push(`mock B (v${v2}..${v3 - 1}) served ${tag} answered with version ${r.version}`);
        if (name === 'A' && r.tSend > t2) bad.push(`old deployment (mock A, old key) got ${tag} sent ${r.tSend - t2}ms after /model/update returned (mock t_start_ms +${e.t_start_ms - t2})`);
        if (r.tSend > t3) bad.push(`deleted deployment (mock ${name}) got ${tag} sent ${r.tSend - t3}ms after /model/delete returned`);
        if (name === 'A' && e.t_start_ms > t2) stragglers++;
      }
    }
    // every 200 for "dyn" reached exactly one of the mocks
    const served = new Set([...logA, ...logB].map((e) => e.body?.messages?.[0]?.content));
    for (const r of results.filter((x) => x.kind === 'dyn' && x.status === 200)) {
      if (!served.has(r.tag)) bad.push(`200 for ${r.tag} but neither mock saw it`);
    }
    const dyn = results.filter((r) => r.kind === 'dyn');
    console.log(`# load: ${results.length} requests (${dyn.length} to "dyn"), per worker ${JSON.stringify(Object.fromEntries(perWorker(results)))}; ` +
      `versions ${v1}/${v2}/${v3}; ${stragglers} old-deployment request(s) reached mock A after /model/update returned, all sent before it`);
    assert.deepEqual(bad, [], `requests that saw the previous state:\n${bad.slice(0, 30).join('\n')}`);
  } finally {
    await loop.stop();
  }
});

/** /model/info and /v1/models on every worker agree with the expected state. */
async function agree(id, { present, apiBase, version }) {
  const infos = await everyWorker(gw.port, N, '/model/info', { key: KEY });
  for (const [w, r] of infos) {
    assert.equal(r.status, 200, r.text);
    assert.ok(r.version >= version, `worker ${w} /model/info at version ${r.version} < ${version}`);
    const e = r.json.data.find((x) => x.model_info.id === id);
    if (present) {
      assert.ok(e, `worker ${w}: /model/info lists ${id}`);
      assert.equal(e.model_name, 'dyn');
      assert.equal(e.litellm_params.api_base, apiBase, `worker ${w}: api_base`);
      assert.equal(e.litellm_params.api_key, undefined, `worker ${w}: no api_key in /model/info`);
      assert.equal(e.model_info.db_model, true);
    } else {
      assert.equal(e, undefined, `worker ${w}: /model/info still lists the deleted ${id}`);
    }
    assert.ok(!r.text.includes('sk-dyn-key') && !r.text.includes('sk-cfg-secret-key'), `worker ${w}: a key in /model/info`);
    assert.ok(r.json.data.some((x) => x.model_name === 'cfg-model'));
  }
  const lists = await everyWorker(gw.port, N, '/v1/models', { key: KEY });
  for (const [w, r] of lists) {
    assert.equal(r.status, 200, r.text);
    assert.ok(r.version >= version, `worker ${w} /v1/models at version ${r.version} < ${version}`);
    const ids = r.json.data.map((m) => m.id);
    assert.equal(ids.includes('dyn'), present, `worker ${w}: /v1/models ${JSON.stringify(ids)}`);
    assert.ok(ids.includes('cfg-model'));
  }
}

test('model management answers with LiteLLM\'s shapes and messages', async () => {
  const cfgId = (await req(gw.port, '/model/info', { key: KEY })).json.data.find((x) => x.model_name === 'cfg-model').model_info.id;
  const before = (await state(gw.port, KEY)).workers.map((w) => w.registry_version);

  // /model/update on a config model: "Model in config"
  let r = await mutate('/model/update', { model_info: { id: cfgId }, litellm_params: { api_key: 'x' } });
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json.error.message,
    '{\'error\': "Can\'t edit model. Model in config. Store model in db via `/model/new`. to edit."}');
  assert.equal(r.json.error.type, 'auth_error');
  assert.equal(r.json.error.code, '400');

  // PATCH on a config model
  r = await mutate(`/model/${cfgId}/update`, { litellm_params: { api_key: 'x' } }, 'PATCH');
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json.error.message, 'Cannot edit config-based model. Store model in DB via /model/new first.');
  assert.equal(r.json.error.type, 'validation_error');

  // PATCH on an unknown id
  r = await mutate('/model/no-such-id/update', { litellm_params: { api_key: 'x' } }, 'PATCH');
  assert.equal(r.status, 404, r.text);
  assert.equal(r.json.error.message, 'Model no-such-id not found on proxy.');
  assert.equal(r.json.error.type, 'not_found_error');

  // /model/update on an unknown id, and without model_info
  r = await mutate('/model/update', { model_info: { id: 'no-such-id' }, litellm_params: { api_key: 'x' } });
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json.error.message, 'Authentication Error, model not found');
  r = await mutate('/model/update', { litellm_params: { api_key: 'x' } });
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json.error.message, 'Authentication Error, model_info not provided');

  // delete of an unknown id, and of a config model's id (LiteLLM: not in db)
  for (const id of ['no-such-id', cfgId]) {
    r = await mutate('/model/delete', { id });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.message, `{'error': 'Model with id=${id} not found in db'}`);
    assert.equal(r.json.error.type, 'auth_error');
  }

  // mutations need the master key
  r = await req(gw.port, '/model/new', { method: 'POST', key: 'sk-not-the-master',
    body: { model_name: 'x', litellm_params: { model: 'openai/x' } } });
  assert.ok(r.status >= 400 && r.status < 500, `${r.status} ${r.text}`);

  // refused calls moved no version
  const afterV = (await state(gw.port, KEY)).workers.map((w) => w.registry_version);
  assert.deepEqual(afterV, before);

  // /model/info never includes api_key (config and stored models, list and single id)
  r = await mutate('/model/new', { model_name: 'shape', litellm_params: { model: 'openai/shape', api_base: mockA.url, api_key: 'sk-shape-secret-1234' },
    model_info: { id: 'shape-id' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.model_id, 'shape-id');
  assert.equal(r.json.model_name, 'shape');
  for (const p of ['/model/info', '/v1/model/info', '/model/info?litellm_model_id=shape-id', `/model/info?litellm_model_id=${cfgId}`]) {
    const m = await req(gw.port, p, { key: KEY });
    assert.equal(m.status, 200, `${p}: ${m.text}`);
    assert.ok(!m.text.includes('api_key') && !m.text.includes('sk-shape-secret') && !m.text.includes('sk-cfg-secret'), `${p}: ${m.text}`);
  }
  const one = await req(gw.port, '/model/info?litellm_model_id=shape-id', { key: KEY });
  assert.ok(Array.isArray(one.json.data) && one.json.data.length === 1, 'one-element list');
  const none = await req(gw.port, '/model/info?litellm_model_id=nope', { key: KEY });
  assert.equal(none.status, 400);
  assert.deepEqual(none.json, { detail: { error: 'Model id = nope not found on litellm proxy' } });

  // a second /model/new with the same id is refused
  r = await mutate('/model/new', { model_name: 'shape', litellm_params: { model: 'openai/shape' }, model_info: { id: 'shape-id' } });
  assert.equal(r.status, 400, r.text);
  r = await mutate('/model/delete', { id: 'shape-id' });
  assert.equal(r.status, 200, r.text);
});

test('readiness: /health/readiness is 200 once every worker has loaded (4 workers, embedded store)', async () => {
  // regression: the master used to mark a worker "starting" after fork(), over a
  // fast worker's "ready" (fixed in 8466a8f); the race needs several starts to show
  const failures = [];
  for (let k = 0; k < 4; k++) {
    const g = await startGateway({
      config: { model_list: [mockModel(mockA, 'm')], general_settings: { master_key: KEY } },
      workers: N, waitReady: false,
    });
    try {
      g.masterKey = KEY;
      await waitFor(async () => {
        const s = await state(g.port, KEY);
        return s.workers.length === N && s.workers.every((w) => w.state === 'ready');
      }, { what: 'every worker to load', timeout: 15000 });
      // every worker has loaded: readiness must say so (bounded: a few state ticks)
      let last = null;
      try {
        await waitFor(async () => {
          last = await req(g.port, '/health/readiness');
          return last.status === 200;
        }, { timeout: 3000, what: 'readiness 200' });
      } catch {
        failures.push(`start ${k}: ${last?.status} ${JSON.stringify(last?.json?.moongate?.worker_states)}`);
      }
    } finally {
      await g.stop();
    }
  }
  assert.deepEqual(failures, []);
});

test('a request keeps the snapshot it started with: deleted under it, it completes on the old deployment', async () => {
  await mockA.script({ rules: [{ match: { model: 'pin-up' }, respond: { latency_ms: 1500 } }] });
  try {
    const c = await mutate('/model/new', { model_name: 'pin', litellm_params: { model: 'openai/pin-up', api_base: mockA.url, api_key: 'sk-pin' } });
    assert.equal(c.status, 200, c.text);
    const slow = req(gw.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: chatBody('pin', 'pinned') });
    // the request is at the provider: its worker holds the old snapshot
    await waitFor(async () => (await mockA.log()).some((e) => e.body?.messages?.[0]?.content === 'pinned' && e.outcome === 'in_progress'),
      { what: 'the slow request to reach the provider' });
    const d = await mutate('/model/delete', { id: c.json.model_info.id });
    assert.equal(d.status, 200, d.text);
    const s = await state(gw.port, KEY);
    assert.ok(s.workers.some((w) => w.live_snapshots >= 2), `a worker keeps the pinned snapshot alive: ${JSON.stringify(s.workers.map((w) => w.live_snapshots))}`);
    const after = await req(gw.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: chatBody('pin', 'after-delete') });
    assert.equal(after.status, 400, 'new requests no longer see it');
    const r = await slow;
    assert.equal(r.status, 200, r.text);
    assert.equal(r.version, c.json.version, 'answered from the snapshot it started with');
    await waitState(gw.port, KEY, (ws) => ws.every((w) => w.live_snapshots === 1), { what: 'the old snapshot to be freed' });
  } finally {
    await mockA.script({ rules: [] });
  }
});

test('updating a wildcard deployment replaces it (no second entry serving the old api_base)', async () => {
  const c = await mutate('/model/new', { model_name: 'wild/*', litellm_params: { model: 'openai/*', api_base: mockA.url, api_key: 'sk-wild-A' } });
  assert.equal(c.status, 200, c.text);
  const id = c.json.model_info.id;
  const u = await mutate(`/model/${id}/update`, { litellm_params: { api_base: mockB.url, api_key: 'sk-wild-B' } }, 'PATCH');
  assert.equal(u.status, 200, u.text);
  const tags = [];
  for (let i = 0; i < 24; i++) {
    const tag = `wild-${i}`;
    tags.push(tag);
    const r = await req(gw.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: chatBody(`wild/m${i}`, tag) });
    assert.equal(r.status, 200, r.text);
  }
  const onA = (await mockA.log()).filter((e) => tags.includes(e.body?.messages?.[0]?.content));
  const onB = (await mockB.log()).filter((e) => tags.includes(e.body?.messages?.[0]?.content));
  assert.equal(onA.length, 0, 'the old wildcard entry still serves');
  assert.equal(onB.length, 24);
  assert.ok(onB.every((e) => e.headers.authorization === 'Bearer sk-wild-B'));
  const infos = await everyWorker(gw.port, N, '/model/info', { key: KEY });
  for (const [w, r] of infos) {
    assert.equal(r.json.data.filter((x) => x.model_name === 'wild/*').length, 1, `worker ${w}: one wildcard entry`);
  }
  assert.equal((await mutate('/model/delete', { id })).status, 200);
});

test('a worker killed and respawned starts at the current version', async () => {
  const c = await mutate('/model/new', { model_name: 'survivor', litellm_params: { model: 'openai/s', api_base: mockA.url, api_key: 'sk-s' } });
  assert.equal(c.status, 200, c.text);
  const s0 = await state(gw.port, KEY);
  const victim = s0.workers[1].pid;
  process.kill(victim, 'SIGKILL');
  const s1 = await waitState(gw.port, KEY, (ws) => ws.length === N && ws[1].pid !== victim && ws.every((w) => w.state === 'ready'),
    { what: 'worker 1 to be respawned and loaded' });
  assert.ok(s1.workers[1].registry_version >= c.json.version);
  const seen = await everyWorker(gw.port, N, '/v1/chat/completions', { method: 'POST', key: KEY, body: chatBody('survivor', 'respawn') });
  for (const [w, r] of seen) {
    assert.equal(r.status, 200, `worker ${w}: ${r.text}`);
    assert.ok(r.version >= c.json.version);
  }
  assert.equal((await mutate('/model/delete', { id: c.json.model_info.id })).status, 200);
});

test('read-your-writes past the bounded wait: an explicit error with the version and the lagging worker', async () => {
  const g = await startLoaded({
    config: { model_list: [mockModel(mockA, 'm')], general_settings: { master_key: KEY },
      moongate_settings: { mutation_wait_timeout_seconds: 1 } },
    workers: 2,
  });
  let stopped = null;
  try {
    const s = await state(g.port, KEY);
    stopped = s.workers[1].pid;
    process.kill(stopped, 'SIGSTOP'); // worker 1 cannot apply anything (nor accept: worker 0 takes the call)
    const t0 = Date.now();
    const r = await req(g.port, '/model/new', { method: 'POST', key: KEY, body: { model_name: 'lag', litellm_params: { model: 'openai/lag', api_base: mockA.url } } });
    const ms = Date.now() - t0;
    console.log(`# lagging worker: ${r.status} after ${ms}ms: ${r.json?.error?.message}`);
    assert.equal(r.status, 504, r.text);
    assert.equal(r.json.error.type, 'registry_lag');
    assert.match(r.json.error.message, /committed at registry version 1\b/);
    assert.match(r.json.error.message, new RegExp(`"pid":${stopped}\\b`), 'names the lagging worker');
    process.kill(stopped, 'SIGCONT');
    stopped = null;
    await waitState(g.port, KEY, allAtLeast(2, 1), { what: 'worker 1 to catch up' });
    const seen = await everyWorker(g.port, 2, '/v1/models', { key: KEY });
    for (const [w, x] of seen) assert.ok(x.json.data.some((m) => m.id === 'lag'), `worker ${w}`);
  } finally {
    if (stopped) process.kill(stopped, 'SIGCONT');
    await g.stop();
  }
});
