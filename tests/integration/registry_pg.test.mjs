// The PostgreSQL store: outages and credentials at rest.
//  - moongate started while PostgreSQL is down: only 503 + Retry-After with a
//    message saying the registry is not loaded and why (the database error),
//    never "Invalid model name" for a configured model; readiness 503; once
//    PostgreSQL is up, requests succeed and readiness is 200 within a bound.
//  - PostgreSQL stopped after the first load: traffic keeps succeeding on the
//    last snapshot, readiness stays 200 and reports db "disconnected" and the
//    snapshot's age, mutations fail at once with a clear 503; after a restart
//    the store reconnects and a new mutation works.
//  - credentials are encrypted in moongate_models; a wrong LITELLM_SALT_KEY
//    fails the load with a clear error.
//  - /model/new with DATABASE_URL but without STORE_MODEL_IN_DB: LiteLLM's 500.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startPostgres, startGateway, mockModel } from '../lib/harness.mjs';
import {
  req, everyWorker, loadLoop, waitResults, state, waitState, waitFor, startLoaded, pgBackends, pgStop, pgCont,
} from './lib_registry.mjs';

const KEY = 'sk-pg-master';
const W = 2;
// the store retries with backoff capped at 2 s; connecting takes well under a second
const RECOVER_MS = 15000;

const mock = await startMock();
const pg = await startPostgres();
await pg.stop();
const env = { DATABASE_URL: pg.url, STORE_MODEL_IN_DB: 'True', LITELLM_MASTER_KEY: KEY };
const config = { model_list: [mockModel(mock, 'cfg-model', { key: 'sk-cfg-upstream' })] };
const gw = await startGateway({ config, workers: W, env, waitReady: false });
gw.masterKey = KEY;
const extra = [];
after(async () => {
  for (const g of extra) await g.stop();
  await gw.stop(); await mock.stop(); await pg.stop();
});

const chat = (model, tag) => ({ port: gw.port, path: '/v1/chat/completions', method: 'POST', key: KEY, tag, kind: model,
  body: { model, messages: [{ role: 'user', content: tag }] } });

const notLoaded = (r) => r.status === 503 && r.headers['retry-after'] !== undefined &&
  /registry is not loaded/.test(r.json?.error?.message || '');

test('started while PostgreSQL is down: 503 + Retry-After with the database error until it is up, then success', async () => {
  const loop = loadLoop({ concurrency: 4, maxMs: 60000, make: (i) => chat('cfg-model', `down-${i}`) });
  let tUp;
  try {
    // every worker answers, and answers "not loaded"
    await waitResults(loop, (rs) => new Set(rs.filter(notLoaded).map((r) => r.worker)).size === W,
      { what: 'every worker to answer 503 not loaded' });
    const r = loop.results.find(notLoaded);
    const msg = r.json.error.message;
    assert.match(msg, /cannot load the registry/, msg);
    assert.match(msg, /database|connect|refused/i, `the message says why: ${msg}`);
    assert.ok(msg.includes(String(pg.port)), `the message names the database: ${msg}`);
    assert.equal(r.json.error.type, 'service_unavailable');
    console.log(`# while PostgreSQL is down: ${r.status} retry-after=${r.headers['retry-after']} ${msg}`);

    const rd = await req(gw.port, '/health/readiness');
    assert.equal(rd.status, 503, rd.text);
    assert.equal(rd.json.status, 'unhealthy');
    assert.match(rd.json.moongate.reason, /cannot load the registry/);
    assert.ok(rd.headers['retry-after']);
    // /moongate/state: every worker loading, with its last load error
    await waitState(gw.port, KEY, (ws) => ws.length === W && ws.every((w) => w.state === 'loading' &&
      /database unavailable/.test(w.last_load_error || '') && w.store?.connected === false && w.registry_version === -1),
    { what: 'every worker to report "loading" and the database error' });
    // a mutation now is refused the same way, at once
    const m = await req(gw.port, '/model/new', { method: 'POST', key: KEY, body: { model_name: 'x', litellm_params: { model: 'openai/x' } } });
    assert.equal(m.status, 503, m.text);

    await pg.start();
    tUp = Date.now();
    await waitFor(async () => (await req(gw.port, '/health/readiness')).status === 200,
      { timeout: RECOVER_MS, what: 'readiness 200 after PostgreSQL started' });
    const tReady = Date.now();
    await waitResults(loop, (rs) => new Set(rs.filter((x) => x.status === 200 && x.tSend > tReady).map((x) => x.worker)).size === W,
      { timeout: RECOVER_MS, what: 'every worker to serve the config model' });
    console.log(`# PostgreSQL up -> readiness 200 after ${tReady - tUp}ms`);
  } finally {
    await loop.stop();
  }
  const rs = loop.results;
  const bad = rs.filter((r) => !(r.status === 200 || notLoaded(r)));
  assert.deepEqual(bad.map((r) => `${r.status} ${r.error || r.text.slice(0, 200)}`), [], 'only 200 or 503 not loaded');
  assert.ok(!rs.some((r) => /Invalid model name/.test(r.text || '')), 'never "Invalid model name"');
  // once a worker served, it never went back to "not loaded"
  for (let w = 0; w < W; w++) {
    const mine = rs.filter((r) => r.worker === w).sort((a, b) => a.tRecv - b.tRecv);
    const first = mine.findIndex((r) => r.status === 200);
    assert.ok(first >= 0);
    assert.ok(mine.slice(first).every((r) => r.status === 200), `worker ${w} went back to 503`);
  }
  console.log(`# ${rs.length} requests: ${rs.filter((r) => r.status === 503).length} x 503 not loaded, ${rs.filter((r) => r.status === 200).length} x 200`);
});

test('PostgreSQL stopped after the first load: the last snapshot keeps serving, mutations fail clearly, reconnect works', async () => {
  const c = await req(gw.port, '/model/new', { method: 'POST', key: KEY,
    body: { model_name: 'db-model', litellm_params: { model: 'openai/db-up', api_base: mock.url, api_key: 'sk-db-upstream' } } });
  assert.equal(c.status, 200, c.text);
  const v0 = c.json.version;

  const loop = loadLoop({ concurrency: 4, maxMs: 60000, make: (i) => chat(i % 2 ? 'db-model' : 'cfg-model', `out-${i}`) });
  try {
    await waitResults(loop, (rs) => rs.length >= 20, { what: 'load' });
    await pg.stop();
    const tDown = Date.now();
    await waitState(gw.port, KEY, (ws) => ws.length === W && ws.every((w) => w.store.connected === false),
      { what: 'every worker to see the database gone' });
    // traffic after the outage, on every worker
    await waitResults(loop, (rs) => {
      const ws = new Set(rs.filter((r) => r.tSend > tDown + 1500 && r.kind === 'db-model').map((r) => r.worker));
      return ws.size === W;
    }, { timeout: 15000, what: 'every worker to serve during the outage' });

    // readiness: 200, db disconnected, the snapshot's age, on every worker
    const rds = await everyWorker(gw.port, W, '/health/readiness');
    for (const [w, r] of rds) {
      assert.equal(r.status, 200, `worker ${w}: ${r.text}`);
      assert.equal(r.json.status, 'healthy');
      assert.equal(r.json.db, 'disconnected');
      assert.equal(typeof r.json.moongate.snapshot_age_seconds, 'number');
      assert.ok(r.json.moongate.snapshot_age_seconds > 0);
      assert.equal(r.json.moongate.store.connected, false);
      assert.ok(r.json.moongate.store.last_error, 'the store error is reported');
    }
    const s = await state(gw.port, KEY);
    for (const w of s.workers) {
      assert.equal(w.state, 'ready');
      assert.ok(w.registry_version >= v0);
      assert.equal(typeof w.snapshot_age_seconds, 'number');
    }

    // mutations: a clear 503, not a hang
    for (const [path, body] of [
      ['/model/new', { model_name: 'x', litellm_params: { model: 'openai/x', api_base: mock.url } }],
      ['/model/update', { model_info: { id: c.json.model_info.id }, litellm_params: { api_key: 'sk-new' } }],
      ['/model/delete', { id: c.json.model_info.id }],
    ]) {
      const t0 = Date.now();
      const m = await req(gw.port, path, { method: 'POST', key: KEY, body, timeout: 20000 });
      const ms = Date.now() - t0;
      assert.equal(m.status, 503, `${path}: ${m.status} ${m.error || m.text}`);
      assert.match(m.json.error.message, /database/i, m.json.error.message);
      assert.ok(m.headers['retry-after'], 'Retry-After');
      assert.ok(ms < 12000, `${path} took ${ms}ms`);
      console.log(`# ${path} during the outage: ${m.status} in ${ms}ms: ${m.json.error.message}`);
    }
  } finally {
    await loop.stop();
  }
  const bad = loop.results.filter((r) => r.error || r.status !== 200);
  assert.deepEqual(bad.map((r) => `${r.kind} worker ${r.worker}: ${r.status} ${r.error || r.text.slice(0, 200)}`), [],
    'zero failures during the outage');

  // back up: the store reconnects and a new mutation works everywhere
  await pg.start();
  const tUp = Date.now();
  await waitState(gw.port, KEY, (ws) => ws.length === W && ws.every((w) => w.store.connected && w.store.listening),
    { timeout: RECOVER_MS, what: 'the store to reconnect' });
  console.log(`# store reconnected ${Date.now() - tUp}ms after PostgreSQL started`);
  const n = await req(gw.port, '/model/new', { method: 'POST', key: KEY,
    body: { model_name: 'db-model-2', litellm_params: { model: 'openai/db-up-2', api_base: mock.url, api_key: 'sk-db2' } } });
  assert.equal(n.status, 200, n.text);
  assert.ok(n.json.version > v0);
  const served = await everyWorker(gw.port, W, '/v1/chat/completions', { method: 'POST', key: KEY,
    body: { model: 'db-model-2', messages: [{ role: 'user', content: 'after' }] } });
  for (const [w, r] of served) {
    assert.equal(r.status, 200, `worker ${w}: ${r.text}`);
    assert.ok(r.version >= n.json.version);
  }
  const rd = await req(gw.port, '/health/readiness');
  assert.equal(rd.json.db, 'connected');
});

test('a frozen database never blocks request handling; a mutation stuck in it fails with a clear timeout', async () => {
  const frozen = pgBackends(pg, "application_name = 'moongate'");
  assert.equal(frozen.length, 2 * W, 'a query and a LISTEN connection per worker');
  pgStop(frozen);
  let mutation;
  try {
    const t0 = Date.now();
    mutation = req(gw.port, '/model/new', { method: 'POST', key: KEY, timeout: 30000,
      body: { model_name: 'frozen-x', model_info: { id: 'frozen-x' }, litellm_params: { model: 'openai/fx', api_base: mock.url, api_key: 'sk-fx' } } });
    // while the database cannot answer anything, every worker keeps serving (these complete before it is thawed)
    for (let k = 0; k < 3; k++) {
      const seen = await everyWorker(gw.port, W, '/v1/chat/completions', { method: 'POST', key: KEY,
        body: { model: 'db-model-2', messages: [{ role: 'user', content: `frozen-${k}` }] } });
      for (const [w, r] of seen) assert.equal(r.status, 200, `worker ${w}: ${r.text}`);
    }
    const rd = await everyWorker(gw.port, W, '/health/readiness');
    for (const [w, r] of rd) assert.equal(r.status, 200, `worker ${w}: ${r.text}`);
    const m = await mutation;
    const ms = Date.now() - t0;
    console.log(`# mutation against a frozen database: ${m.status} after ${ms}ms: ${m.json?.error?.message}`);
    assert.equal(m.status, 503, m.text);
    assert.match(m.json.error.message, /timed out/);
    assert.match(m.json.error.message, /may or may not have been applied/);
    assert.ok(ms < 10000 + 5000, `query timeout 10 s + margin: ${ms}ms`);
  } finally {
    pgCont(frozen);
  }
  // the change may or may not have committed: whatever the database says, every worker agrees with it
  await waitState(gw.port, KEY, (ws) => ws.length === W && ws.every((w) => w.store.connected), { timeout: RECOVER_MS, what: 'the store' });
  await waitFor(async () => {
    const inDb = pg.psql("SELECT count(*) FROM moongate_models WHERE model_id = 'frozen-x'") === '1';
    const infos = await everyWorker(gw.port, W, '/model/info', { key: KEY });
    return [...infos.values()].every((r) => r.json.data.some((d) => d.model_info.id === 'frozen-x') === inDb);
  }, { timeout: 5000, what: 'every worker to agree with the database about the cut mutation' });
});

test('credentials at rest: no plaintext api_key in moongate_models; a wrong LITELLM_SALT_KEY skips that row loudly, the rest serves', async () => {
  const secret = 'sk-plaintext-canary-7c1d9e';
  const r = await req(gw.port, '/model/new', { method: 'POST', key: KEY,
    body: { model_name: 'enc', litellm_params: { model: 'openai/enc', api_base: mock.url, api_key: secret }, model_info: { id: 'enc-id' } } });
  assert.equal(r.status, 200, r.text);
  assert.ok(!r.text.includes(secret));
  const rows = pg.psql("SELECT litellm_params::text FROM moongate_models WHERE model_id = 'enc-id'");
  assert.ok(rows.length > 0, 'the row is there');
  assert.ok(!rows.includes(secret), `plaintext api_key in moongate_models: ${rows}`);
  assert.ok(!rows.includes('sk-plaintext'), rows);
  const everything = pg.psql("SELECT string_agg(t::text, ' ') FROM (SELECT * FROM moongate_models) t") +
    pg.psql("SELECT string_agg(t::text, ' ') FROM (SELECT * FROM moongate_events) t");
  assert.ok(!everything.includes(secret), 'nowhere in moongate_models or moongate_events');
  // the gateway itself still uses the real key
  const c = await req(gw.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: { model: 'enc', messages: [{ role: 'user', content: 'enc-check' }] } });
  assert.equal(c.status, 200, c.text);
  const e = (await mock.log()).find((x) => x.body?.messages?.[0]?.content === 'enc-check');
  assert.equal(e.headers.authorization, `Bearer ${secret}`);

  // a second instance with a different salt key cannot read the stored credentials: that row
  // is skipped loudly (log, /moongate/state, a 503 naming the reason for that model) and
  // everything else keeps serving
  const bad = await startGateway({ config, workers: 1, env: { ...env, LITELLM_SALT_KEY: 'not-the-right-salt' }, waitReady: false });
  extra.push(bad);
  bad.masterKey = KEY;
  const s = await waitState(bad.port, KEY, (ws) => ws.length === 1 && ws[0].state === 'ready' &&
    (ws[0].snapshot_warnings || []).some((w) => /LITELLM_SALT_KEY/.test(w)),
  { what: 'the instance with the wrong salt key to load and report the unreadable row' });
  const why = s.workers[0].snapshot_warnings.find((w) => /"enc-id"/.test(w));
  assert.match(why || '', /stored model "enc-id" skipped: .*LITELLM_SALT_KEY/, JSON.stringify(s.workers[0].snapshot_warnings));
  const cfgReq = await req(bad.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: { model: 'cfg-model', messages: [{ role: 'user', content: 'x' }] } });
  assert.equal(cfgReq.status, 200, `config models keep serving: ${cfgReq.text}`);
  const encReq = await req(bad.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: { model: 'enc', messages: [{ role: 'user', content: 'x' }] } });
  assert.equal(encReq.status, 503, encReq.text);
  assert.match(encReq.json.error.message, /stored in the registry but cannot be loaded.*LITELLM_SALT_KEY/, encReq.text);
  assert.ok(!/Invalid model name/.test(encReq.text), 'never a silent "Invalid model name"');
  const rd = await req(bad.port, '/health/readiness');
  assert.equal(rd.status, 200, rd.text);
  console.log(`# wrong LITELLM_SALT_KEY: ${why}; config model -> ${cfgReq.status}; stored model -> ${encReq.status}; readiness ${rd.status}`);
  await waitFor(() => /LITELLM_SALT_KEY/.test(bad.output().stderr), { what: 'the log to say why' });
});

test('/model/new with DATABASE_URL but without STORE_MODEL_IN_DB: LiteLLM\'s 500', async () => {
  const g = await startLoaded({ config, workers: 1, env: { DATABASE_URL: pg.url, LITELLM_MASTER_KEY: KEY } }, { key: KEY });
  extra.push(g);
  const r = await req(g.port, '/model/new', { method: 'POST', key: KEY,
    body: { model_name: 'x', litellm_params: { model: 'openai/x', api_base: mock.url } } });
  assert.equal(r.status, 500, r.text);
  assert.equal(r.json.error.message, '{\'error\': "Set `\'STORE_MODEL_IN_DB=\'True\'` in your env to enable this feature."}');
  assert.equal(r.json.error.type, 'auth_error');
  assert.equal(r.json.error.param, 'None');
  assert.equal(r.json.error.code, '500');
  // and it serves what the database holds (models stored by the other instance)
  const info = await req(g.port, '/model/info', { key: KEY });
  assert.ok(info.json.data.some((m) => m.model_name === 'db-model-2'), 'stored models still load');
});
