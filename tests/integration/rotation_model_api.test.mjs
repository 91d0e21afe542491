// Issue 5, test 1(b): rotate a provider key through the model API while 100
// concurrent ~30 s streams run on the old key.  The model is created with
// POST /model/new (api_key k1, embedded journal store), rotated with
// POST /model/update (k1 -> k2), then with PATCH /model/{id}/update (k2 -> k3)
// while 20 streams on k2 also run.
//
// What is compared: as in rotation_reload.test.mjs -- each client's received
// SSE bytes (after HTTP de-chunking) hashed and compared with sent_sha256 of
// the mock's log entry for the same request (matched by `user`).  The model
// name requested ("rot-m") equals the upstream model the mock echoes, so
// moongate's restamp of "model" leaves the bytes unchanged; id/created are pinned.
//
// Checked: every stream completes byte-identical; no mock request with k1
// started after /model/update returned, none with k2 after the PATCH
// returned; every request sent after a rotation, on every worker, uses the new
// key; the old clients drain and are freed after their last stream; at rest
// each worker has exactly the one client its snapshot uses.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, waitFor } from '../lib/harness.mjs';
import {
  chat, byUser, streamOk, describeResult, poolStates, hitEveryWorker, waitPoolAtRest, assertBurst,
  assertCleanStop, waitOldClientsDraining,
} from './lib_rotation.mjs';

const N = 100;
const CHUNKS = 30;
const INTERVAL_MS = 1000;          // ~30 s streams
const N2 = 20;                     // streams on k2, running when the PATCH rotates to k3
const CHUNKS2 = 15;
const WORKERS = 2;
const MASTER = 'sk-rot-api-master';
const ID = 'rot-dep-1';
const K = { k1: 'sk-rot-api-k1', k2: 'sk-rot-api-k2', k3: 'sk-rot-api-k3' };
const bearer = (k) => `Bearer ${k}`;

const mock = await startMock();
const gw = await startGateway({
  workers: WORKERS,
  config: {
    // an unrelated config model keeps the snapshot non-empty before /model/new
    model_list: [{ model_name: 'offline', litellm_params: { model: 'openai/offline', mock_response: 'ok' } }],
    general_settings: { master_key: MASTER },
  },
});
let stopped = null;
after(async () => {
  if (!stopped) await gw.stop();
  await mock.stop();
});

const streamBody = (tag, i, chunks) => ({
  model: 'rot-m', messages: [{ role: 'user', content: 'rotate me' }], stream: true, user: `${tag}-${i}`,
  mock: { chunks, chunk_interval_ms: INTERVAL_MS, created: 1700000000, response_id: 'chatcmpl-rotation' },
});
let burstSeq = 0;
const shortBody = (tag) => () => ({ model: 'rot-m', messages: [{ role: 'user', content: 'hi' }], user: `${tag}-${burstSeq++}` });

let streams1;             // 100 on k1
let streams2;             // 20 on k2
let tUpdate;              // when POST /model/update returned
let tPatch;               // when PATCH /model/{id}/update returned

test('POST /model/new with k1 serves on every worker; 100 streams start on k1', async () => {
  const r = await gw.request('/model/new', {
    method: 'POST',
    body: { model_name: 'rot-m', litellm_params: { model: 'openai/rot-m', api_base: mock.url, api_key: K.k1 }, model_info: { id: ID } },
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.litellm_params?.api_key, undefined, 'the key is not echoed');
  assertBurst(await hitEveryWorker(gw, WORKERS, shortBody('warm')), bearer(K.k1), byUser(await mock.log()), WORKERS);
  streams1 = Array.from({ length: N }, (_, i) => chat(gw, streamBody('s1', i, CHUNKS), { timeout: 120000 }));
  await waitFor(async () => (await mock.stats()).in_progress >= N,
    { timeout: 30000, interval: 50, what: `${N} streams in progress at the mock` });
  await hitEveryWorker(gw, WORKERS, shortBody('idle'));
  await waitFor(async () => {
    const ws = await poolStates(gw);
    return ws.reduce((a, w) => a + w.pool.connections_busy, 0) === N && ws.every((w) => w.pool.connections_idle > 0);
  }, { timeout: 10000, interval: 100, what: `${N} busy and some idle k1 connections on every worker` });
});

test('POST /model/update with k2: every request that starts after it returned uses k2, on every worker', async () => {
  const r = await gw.request('/model/update', {
    method: 'POST', body: { model_info: { id: ID }, litellm_params: { api_key: K.k2 } },
  });
  tUpdate = Date.now();
  assert.equal(r.status, 200, r.text);
  assert.equal((await mock.stats()).in_progress, N, 'the streams are still running');
  // idle k1 connections closed at once, busy ones kept
  await waitFor(async () => (await mock.stats()).open_connections === N,
    { timeout: 10000, interval: 50, what: 'the mock to see only the 100 stream connections open' });
  await waitOldClientsDraining(gw, {
    busy: N, what: 'every worker: a k2 client, the k1 client draining with its streams and no idle connection',
  });
  assertBurst(await hitEveryWorker(gw, WORKERS, shortBody('k2')), bearer(K.k2), byUser(await mock.log()), WORKERS);
  streams2 = Array.from({ length: N2 }, (_, i) => chat(gw, streamBody('s2', i, CHUNKS2), { timeout: 120000 }));
  await waitFor(async () => (await mock.stats()).in_progress >= N + N2,
    { timeout: 30000, interval: 50, what: `${N2} more streams (k2) in progress` });
});

test('PATCH /model/{id}/update with k3: every request that starts after it returned uses k3, on every worker', async () => {
  const r = await gw.request(`/model/${ID}/update`, { method: 'PATCH', body: { litellm_params: { api_key: K.k3 } } });
  tPatch = Date.now();
  assert.equal(r.status, 200, r.text);
  assert.equal((await mock.stats()).in_progress, N + N2, 'the k1 and k2 streams are still running');
  assertBurst(await hitEveryWorker(gw, WORKERS, shortBody('k3')), bearer(K.k3), byUser(await mock.log()), WORKERS);
  // both old clients are draining (or the k2 one is gone on a worker that ran no k2 stream)
  await waitFor(async () => {
    const ws = await poolStates(gw);
    const busy = ws.reduce((a, w) => a + w.pool.clients.filter((c) => c.draining).reduce((b, c) => b + c.busy, 0), 0);
    return busy === N + N2 && ws.every((w) => w.pool.clients.filter((c) => !c.draining).length === 1);
  }, { timeout: 10000, interval: 100, what: 'the k1 and k2 clients draining with all the streams' });
});

test('all 120 streams complete, byte-identical to what the mock sent', { timeout: 150000 }, async () => {
  const r1 = await Promise.all(streams1);
  const r2 = await Promise.all(streams2);
  const all = [...r1.map((r, i) => ({ r, user: `s1-${i}`, key: K.k1, chunks: CHUNKS })),
    ...r2.map((r, i) => ({ r, user: `s2-${i}`, key: K.k2, chunks: CHUNKS2 }))];
  await waitFor(async () => {
    const log = byUser(await mock.log());
    return all.every((x) => log.get(x.user)?.outcome !== 'in_progress');
  }, { timeout: 10000, what: 'the mock to log every stream as ended' });
  const log = byUser(await mock.log());
  for (const { r, user, key, chunks } of all) {
    const e = log.get(user);
    assert.ok(e, `${user} reached the mock`);
    assert.ok(streamOk(r), `${user}: ${describeResult(r)}`);
    assert.equal(e.outcome, 'complete', `${user}: mock outcome`);
    assert.equal(e.chunks_sent, chunks, `${user}: mock chunks`);
    assert.equal(e.headers.authorization, bearer(key), `${user}: key`);
    assert.equal(r.sha256, e.sent_sha256, `${user}: received bytes differ from the mock's (${describeResult(r)})`);
  }
});

test('the mock log has no k1 request started after /model/update returned, no k2 one after the PATCH returned', async () => {
  const entries = await mock.log();
  const late = (k, t) => entries.filter((e) => e.headers.authorization === bearer(k) && e.t_start_ms > t)
    .map((e) => `${e.seq} ${e.body?.user} ${e.t_start_ms}`);
  assert.deepEqual(late(K.k1, tUpdate), [], `k1 requests after ${tUpdate}`);
  assert.deepEqual(late(K.k2, tPatch), [], `k2 requests after ${tPatch}`);
});

test('the k1 and k2 clients are freed after their last stream; at rest live clients == those the snapshot uses', async () => {
  const ws = await waitPoolAtRest(gw, { live: 1 });
  for (const w of ws) {
    assert.ok(w.pool.clients_freed >= 2, `worker ${w.worker}: clients_freed ${w.pool.clients_freed} (k1 and k2 freed)`);
    assert.equal(w.pool.clients_created - w.pool.clients_freed, 1, `worker ${w.worker}`);
  }
  // deleting the model leaves no client at all
  const d = await gw.request('/model/delete', { method: 'POST', body: { id: ID } });
  assert.equal(d.status, 200, d.text);
  const ws2 = await waitPoolAtRest(gw, { live: 0 });
  for (const w of ws2) {
    assert.equal(w.pool.clients_created, w.pool.clients_freed, `worker ${w.worker}: created == freed`);
    assert.equal(w.pool.connections_opened, w.pool.connections_closed, `worker ${w.worker}: connections opened == closed`);
  }
  await waitFor(async () => (await mock.stats()).open_connections === 0,
    { timeout: 10000, what: 'the mock to see every connection closed' });
});

test('SIGTERM: the gateway exits cleanly with no sanitizer report on stderr', async () => {
  stopped = await assertCleanStop(gw);
});
