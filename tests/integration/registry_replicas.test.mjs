// Two replicas (two moongate instances, 2 workers each) sharing one PostgreSQL
// store and one Redis: a change made on replica A reaches every worker of
// replica B within a stated bound, with hints working and with hints lost
// (B's Redis subscription killed at the moment of the change, Redis stopped,
// B's LISTEN connection terminated, and B's LISTEN backend frozen so that only
// the poll of the store's version is left).  Prints the propagation times
// (p50/p99 from the moment the mutation call returned on A to every worker of
// both replicas having applied the new version).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startPostgres, startRedis, mockModel } from '../lib/harness.mjs';
import {
  req, everyWorker, startLoaded, state, appliedVersions, waitState, waitFor, pgBackends, pgStop, pgCont,
  percentile, summary, sleep, psqlAsync, redisCliAsync,
} from './lib_registry.mjs';

const KEY = 'sk-replica-master';
const POLL_MS = 1000;            // moongate's default registry_poll_interval_seconds
const BOUND_MS = POLL_MS + 1000; // the spec's bound: poll period + margin
const W = 2;                     // workers per replica

const pg = await startPostgres();
const redis = await startRedis();
const mock = await startMock();
const env = (app) => ({
  DATABASE_URL: `${pg.url}?application_name=${app}`,
  STORE_MODEL_IN_DB: 'True',
  LITELLM_MASTER_KEY: KEY,
  REDIS_HOST: '127.0.0.1',
  REDIS_PORT: String(redis.port),
});
const config = { model_list: [mockModel(mock, 'cfg-model')] };
const A = await startLoaded({ config, workers: W, env: env('mg-replica-a') }, { key: KEY });
const B = await startLoaded({ config, workers: W, env: env('mg-replica-b') }, { key: KEY });
let frozen = [];
after(async () => {
  pgCont(frozen);
  await A.stop(); await B.stop(); await mock.stop(); await redis.stop(); await pg.stop();
});

const results = {};
let modelId = null;
let seq = 0;

/** Updates the model's key on A; returns {version, t} (t: the call returned). */
async function changeOnA() {
  const key = `sk-rotated-${++seq}`;
  const r = await req(A.port, '/model/update', { method: 'POST', key: KEY,
    body: { model_info: { id: modelId }, litellm_params: { api_key: key } } });
  assert.equal(r.status, 200, r.text);
  return { version: r.json.version, t: r.tHead, key };
}

/**
 * Time from t (the call returned) until every worker of A and of B has
 * applied version >= v (appliedVersions(), polled back to back).  A must already be
 * there (read-your-writes).
 */
async function propagation(v, t) {
  const va = await appliedVersions(A.port);
  assert.ok(va.length === W && va.every((x) => x >= v),
    `replica A answered before all its workers applied ${v}: ${JSON.stringify(va)}`);
  const deadline = t + BOUND_MS + 5000;
  for (;;) {
    const vb = await appliedVersions(B.port);
    const at = Date.now();
    if (vb.length === W && vb.every((x) => x >= v)) return at - t;
    if (at > deadline) {
      const s = await state(B.port, KEY);
      throw new Error(`replica B did not apply version ${v} within ${at - t}ms: ${JSON.stringify(vb)} ${JSON.stringify(s.workers.map((w) => ({ v: w.registry_version, store: w.store, redis: w.hints.redis?.subscribed })))}`);
    }
  }
}

/** B serves the current state: every worker answers 200 for "dyn" with the newest key. */
async function bServes(key, v) {
  const tags = [];
  const seen = await everyWorker(B.port, W, '/v1/chat/completions', {
    method: 'POST', key: KEY,
    get body() { const tag = `b-${Math.random().toString(36).slice(2)}`; tags.push(tag); return { model: 'dyn', messages: [{ role: 'user', content: tag }] }; },
  });
  for (const [w, r] of seen) {
    assert.equal(r.status, 200, `B worker ${w}: ${r.text}`);
    assert.ok(r.version >= v, `B worker ${w} answered at version ${r.version} < ${v}`);
  }
  const log = await mock.log();
  const mine = log.filter((e) => tags.includes(e.body?.messages?.[0]?.content));
  assert.ok(mine.length > 0);
  for (const e of mine) assert.equal(e.headers.authorization, `Bearer ${key}`, 'B used the newest key');
}

function report(name, xs) {
  results[name] = xs;
  console.log(`# propagation A->all workers of A and B, ${name}: ${summary(xs)}`);
}

test('a model created on replica A is served by replica B within the bound (hints working)', async () => {
  const r = await req(A.port, '/model/new', { method: 'POST', key: KEY,
    body: { model_name: 'dyn', litellm_params: { model: 'openai/dyn-up', api_base: mock.url, api_key: 'sk-rotated-0' } } });
  assert.equal(r.status, 200, r.text);
  modelId = r.json.model_info.id;
  const ms = await propagation(r.json.version, r.tHead);
  console.log(`# replica B applied the new model ${ms}ms after /model/new returned on A`);
  assert.ok(ms <= BOUND_MS, `${ms}ms > ${BOUND_MS}ms`);
  await bServes('sk-rotated-0', r.json.version);
  // how B learned it: a hint (Redis or NOTIFY), not the poll
  const sb = await state(B.port, KEY);
  for (const w of sb.workers) {
    assert.ok(w.hints.from_redis + w.hints.from_store > 0, `B worker ${w.worker} got no hint: ${JSON.stringify(w.hints)}`);
    assert.equal(w.store.connected, true);
    assert.equal(w.store.listening, true);
    assert.equal(w.hints.redis.subscribed, true);
  }
});

test('propagation with hints working (Redis pub/sub and LISTEN/NOTIFY)', async () => {
  const xs = [];
  for (let k = 0; k < 50; k++) {
    const c = await changeOnA();
    xs.push(await propagation(c.version, c.t));
  }
  report('hints working', xs);
  assert.ok(Math.max(...xs) <= BOUND_MS);
  await bServes(`sk-rotated-${seq}`, 0);
});

/** every B worker subscribed to Redis and LISTENing again */
const bHintsUp = (ws) => ws.length === W && ws.every((w) => w.hints.redis?.subscribed && w.store.listening && w.store.connected);

test('B\'s Redis subscription and LISTEN connection killed at the moment of the change: B converges within poll period + margin', async () => {
  const xs = [];
  for (let k = 0; k < 8; k++) {
    await waitState(B.port, KEY, bHintsUp, { what: 'B to resubscribe and LISTEN again' });
    // the mutation goes out first; the kills race with its commit and hints
    const change = changeOnA();
    const kills = Promise.all([
      redisCliAsync(redis, 'CLIENT', 'KILL', 'TYPE', 'pubsub'),
      psqlAsync(pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'mg-replica-b' AND query ILIKE 'LISTEN%'"),
    ]);
    const c = await change;
    const [killed] = await kills;
    assert.ok(Number(killed) >= W, `CLIENT KILL TYPE pubsub killed ${killed}`);
    xs.push(await propagation(c.version, c.t));
  }
  report('subscription + LISTEN killed at the change', xs);
  assert.ok(Math.max(...xs) <= BOUND_MS, `${Math.max(...xs)}ms > ${BOUND_MS}ms`);
  await waitState(B.port, KEY, bHintsUp, { what: 'B to resubscribe' });
  await bServes(`sk-rotated-${seq}`, 0);
});

test('Redis stopped entirely and B\'s LISTEN connection terminated: B converges within poll period + margin', async () => {
  await redis.stop();
  const xs = [];
  for (let k = 0; k < 6; k++) {
    await waitState(B.port, KEY, (ws) => ws.length === W && ws.every((w) => w.store.listening && w.store.connected),
      { what: 'B to LISTEN again' });
    const change = changeOnA();
    await psqlAsync(pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'mg-replica-b' AND query ILIKE 'LISTEN%'");
    const c = await change;
    xs.push(await propagation(c.version, c.t));
  }
  report('Redis down + LISTEN terminated', xs);
  assert.ok(Math.max(...xs) <= BOUND_MS, `${Math.max(...xs)}ms > ${BOUND_MS}ms`);
  const sb = await state(B.port, KEY);
  for (const w of sb.workers) {
    assert.equal(w.hints.redis.subscribed, false, 'Redis is down');
    assert.ok(w.hints.redis.last_error, 'the Redis error is reported');
  }
  await bServes(`sk-rotated-${seq}`, 0);
});

test('every hint lost (Redis down, B\'s LISTEN backend frozen): the poll alone converges within poll period + margin', async () => {
  await waitState(B.port, KEY, (ws) => ws.length === W && ws.every((w) => w.store.listening && w.store.connected),
    { what: 'B to LISTEN again' });
  frozen = pgBackends(pg, "application_name = 'mg-replica-b' AND query ILIKE 'LISTEN%'");
  assert.equal(frozen.length, W, 'one LISTEN backend per B worker');
  pgStop(frozen); // NOTIFY is queued in the frozen backend: B's LISTEN hears nothing
  const before = (await state(B.port, KEY)).workers.map((w) => w.hints.from_store);
  const xs = [];
  try {
    for (let k = 0; k < 10; k++) {
      // spread the changes over the poll phase (sampling, not synchronisation)
      await sleep((k * 379) % POLL_MS);
      const c = await changeOnA();
      xs.push(await propagation(c.version, c.t));
    }
    const afterHints = (await state(B.port, KEY)).workers.map((w) => w.hints.from_store);
    assert.deepEqual(afterHints, before, 'no NOTIFY reached B while its LISTEN backend was frozen');
  } finally {
    pgCont(frozen);
    frozen = [];
  }
  report('hint lost (poll only)', xs);
  assert.ok(Math.max(...xs) <= BOUND_MS, `${Math.max(...xs)}ms > ${BOUND_MS}ms`);
  await bServes(`sk-rotated-${seq}`, 0);
  const all = Object.entries(results).map(([k, v]) => `${k}: p50 ${percentile(v, 50)}ms p99 ${percentile(v, 99)}ms (n=${v.length})`);
  console.log(`# propagation summary (poll ${POLL_MS}ms): ${all.join('; ')}`);
});
