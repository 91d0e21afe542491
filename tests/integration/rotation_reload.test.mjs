// Issue 5, test 1(a): rotate a provider key by editing config.yaml while 100
// concurrent ~30 s streams run on the old key -- first through POST
// /config/reload (k1 -> k2), then through SIGHUP (k2 -> k3).
//
// What is compared: each client's received response body (the SSE bytes after
// HTTP de-chunking) is hashed and compared with the mock's log entry for the
// same request (matched by the unique `user` field), field sent_sha256 = the
// SSE bytes the mock sent.  moongate restamps "model" in every chunk to the
// requested model name; the test requests model_name "rot-m" whose upstream
// model is "openai/rot-m", so the mock echoes "rot-m" and the restamp leaves
// the bytes unchanged.  id and created are pinned, so all 100 streams are also
// identical to each other.
//
// Checked: all 100 streams complete byte-identical; no mock request with k1
// started after /config/reload returned (none with k2 after the SIGHUP reload
// was applied by every worker); every request sent after a rotation, on every
// worker, uses the new key; the old client drains (idle connections closed at
// once, busy ones kept) and is freed after the last stream ends; at rest each
// worker has exactly the clients its snapshot uses.  POST /cache/flushall and
// /cache/purge (a LiteLLM runbook's post-rotation step) answer 200 mid-run.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, waitFor } from '../lib/harness.mjs';
import {
  chat, byUser, streamOk, describeResult, poolStates, hitEveryWorker, waitPoolAtRest, assertBurst,
  assertCleanStop, waitOldClientsDraining,
} from './lib_rotation.mjs';

const N = 100;
const CHUNKS = 30;
const INTERVAL_MS = 1000;          // 30 chunks 1 s apart: each stream lasts ~30 s
const WORKERS = 2;
const MASTER = 'sk-rot-reload-master';
const K = { k1: 'sk-rot-k1', k2: 'sk-rot-k2', k3: 'sk-rot-k3' };
const bearer = (k) => `Bearer ${k}`;

const mock = await startMock();
const config = (key) => ({
  model_list: [{ model_name: 'rot-m', litellm_params: { model: 'openai/rot-m', api_base: mock.url, api_key: key } }],
  general_settings: { master_key: MASTER },
});
const gw = await startGateway({ workers: WORKERS, config: config(K.k1) });
let stopped = null;
after(async () => {
  if (!stopped) await gw.stop();
  await mock.stop();
});

const streamBody = (i) => ({
  model: 'rot-m', messages: [{ role: 'user', content: 'rotate me' }], stream: true, user: `s-${i}`,
  mock: { chunks: CHUNKS, chunk_interval_ms: INTERVAL_MS, created: 1700000000, response_id: 'chatcmpl-rotation' },
});
let burstSeq = 0;
const shortBody = (tag) => () => ({ model: 'rot-m', messages: [{ role: 'user', content: 'hi' }], user: `${tag}-${burstSeq++}` });

let streams;              // promises of the 100 results
let tReload;              // when POST /config/reload returned
let tSighup;              // when every worker reported the SIGHUP generation
const bursts = {};        // tag -> results

test('warm-up: k1 serves on every worker, then 100 streams start on k1', async () => {
  bursts.warm = await hitEveryWorker(gw, WORKERS, shortBody('warm'));
  for (const r of bursts.warm) assert.equal(r.status, 200, describeResult(r));
  streams = Array.from({ length: N }, (_, i) => chat(gw, streamBody(i), { timeout: 120000 }));
  await waitFor(async () => (await mock.stats()).in_progress >= N,
    { timeout: 30000, interval: 50, what: `${N} streams in progress at the mock` });
  // short requests while the streams run leave idle k1 connections in the pools
  bursts.idle = await hitEveryWorker(gw, WORKERS, shortBody('idle'));
  const ws = await waitFor(async () => {
    const w = await poolStates(gw);
    const busy = w.reduce((a, x) => a + x.pool.connections_busy, 0);
    return busy === N && w.every((x) => x.pool.connections_idle > 0) && w;
  }, { timeout: 10000, interval: 100, what: `${N} busy and some idle k1 connections on every worker` });
  for (const w of ws) assert.equal(w.pool.clients_live, 1, `worker ${w.worker}: one client before rotating`);
});

test('POST /config/reload with k2: every request that starts after it returned uses k2, on every worker', async () => {
  gw.writeConfig(config(K.k2));
  const r = await gw.reload();
  tReload = Date.now();
  assert.equal(r.status, 200, r.text);
  assert.equal((await mock.stats()).in_progress, N, 'the streams are still running');

  // the k1 client drains: its idle connections are closed at once (the mock
  // sees only the 100 busy connections left), its busy ones stay
  await waitFor(async () => (await mock.stats()).open_connections === N,
    { timeout: 10000, interval: 50, what: 'the mock to see only the 100 stream connections open' });
  await waitOldClientsDraining(gw, {
    busy: N, maxDraining: 1, ready: (w) => w.config_generation >= 1,
    what: 'every worker: one k2 client, the k1 client draining with its streams busy and no idle connection',
  });

  bursts.k2 = await hitEveryWorker(gw, WORKERS, shortBody('k2'));
  assertBurst(bursts.k2, bearer(K.k2), byUser(await mock.log()), WORKERS);
});

test('POST /cache/flushall and /cache/purge after the rotation answer 200 and say nothing needs flushing', async () => {
  for (const p of ['/cache/flushall', '/cache/purge']) {
    const r = await gw.request(p, { method: 'POST' });
    assert.equal(r.status, 200, `${p}: ${r.text}`);
    assert.match(r.json.message, /no cache|unnecessary|not needed|nothing/i, `${p}: ${r.text}`);
  }
  assert.equal((await mock.stats()).in_progress, N, 'the streams are still running');
});

test('SIGHUP with k3 in config.yaml: once every worker applied it, every request uses k3', async () => {
  const before = await poolStates(gw);
  const gen0 = Math.max(...before.map((w) => w.config_generation));
  gw.writeConfig(config(K.k3));
  process.kill(gw.child.pid, 'SIGHUP');
  await waitFor(async () => (await poolStates(gw)).every((w) => w.config_generation > gen0),
    { timeout: 15000, interval: 20, what: 'every worker to apply the SIGHUP reload' });
  tSighup = Date.now();
  bursts.k3 = await hitEveryWorker(gw, WORKERS, shortBody('k3'));
  assertBurst(bursts.k3, bearer(K.k3), byUser(await mock.log()), WORKERS);
  assert.equal((await mock.stats()).in_progress, N, 'the k1 streams are still running');
});

test('all 100 streams complete, byte-identical to what the mock sent', { timeout: 150000 }, async () => {
  const results = await Promise.all(streams);
  await waitFor(async () => {
    const log = byUser(await mock.log());
    return results.every((_, i) => log.get(`s-${i}`)?.outcome !== 'in_progress');
  }, { timeout: 10000, what: 'the mock to log every stream as ended' });
  const log = byUser(await mock.log());
  const shas = new Set();
  for (let i = 0; i < N; i++) {
    const r = results[i];
    const e = log.get(`s-${i}`);
    assert.ok(e, `stream ${i} reached the mock`);
    assert.ok(streamOk(r), `stream ${i}: ${describeResult(r)}`);
    assert.equal(e.outcome, 'complete', `stream ${i}: mock outcome`);
    assert.equal(e.chunks_sent, CHUNKS, `stream ${i}: mock chunks`);
    assert.equal(e.headers.authorization, bearer(K.k1), `stream ${i} started on k1`);
    assert.equal(r.sha256, e.sent_sha256, `stream ${i}: received bytes differ from the mock's (${describeResult(r)})`);
    shas.add(r.sha256);
  }
  assert.equal(shas.size, 1, 'pinned id/created: all streams are the same bytes');
});

test('the mock log has no k1 request started after /config/reload returned, and no k2 one after SIGHUP applied', async () => {
  const entries = await mock.log();
  const lateK1 = entries.filter((e) => e.headers.authorization === bearer(K.k1) && e.t_start_ms > tReload);
  assert.deepEqual(lateK1.map((e) => `${e.seq} ${e.body?.user} ${e.t_start_ms}`), [], `k1 requests after ${tReload}`);
  const lateK2 = entries.filter((e) => e.headers.authorization === bearer(K.k2) && e.t_start_ms > tSighup);
  assert.deepEqual(lateK2.map((e) => `${e.seq} ${e.body?.user} ${e.t_start_ms}`), [], `k2 requests after ${tSighup}`);
  // and every request the test sent after a rotation carried the new key
  const sent = { k2: tReload, k3: tSighup };
  for (const e of entries) {
    const u = e.body?.user ?? '';
    const tag = u.split('-')[0];
    if (sent[tag] !== undefined) assert.equal(e.headers.authorization, bearer(K[tag]), `${u}`);
  }
});

test('the k1 and k2 clients are freed after the last stream; at rest live clients == those the snapshot uses', async () => {
  const ws = await waitPoolAtRest(gw, { live: 1 });
  for (const w of ws) {
    assert.ok(w.pool.clients_freed >= 2, `worker ${w.worker}: clients_freed ${w.pool.clients_freed} (k1 and k2 freed)`);
    assert.equal(w.pool.clients_created - w.pool.clients_freed, 1, `worker ${w.worker}`);
    assert.equal(w.deployments, 1);
  }
  // the mock agrees: nothing but idle k3 keep-alive connections remain
  const live = ws.reduce((a, w) => a + w.pool.connections_idle, 0);
  await waitFor(async () => (await mock.stats()).open_connections <= live,
    { timeout: 10000, what: 'the mock to see no connection beyond the idle k3 ones' });
  const r = await chat(gw, shortBody('final')());
  assert.equal(r.status, 200, describeResult(r));
});

test('SIGTERM: the gateway exits cleanly with no sanitizer report on stderr', async () => {
  stopped = await assertCleanStop(gw);
});
