// Issue 5, tests 2 and 5: the upstream pool never closes a connection that a
// request is using.
//
// 1. Idle timeout 1 s and POST /moongate/pool/evict to every worker every 100 ms while 200
//    streams run (started 40 ms apart, 2-6 chunks, some with 1.2 s gaps --
//    longer than the idle timeout -- between chunks): zero connection errors
//    (every stream complete and byte-identical to the mock's sent bytes, every
//    mock entry "complete", no gateway failure); connections were closed while
//    streams were busy; at the end connections_opened == connections_closed
//    once the idle ones time out, and clients created == freed once the
//    snapshot stops using the upstream.
// 2. Pool size limit 1 (upstream_max_idle_connections: 1) plus idle timeout
//    and evictions while long-gap streams run and bursts of short requests
//    return more connections than the pool keeps: the streams survive, the
//    pool never holds more than 1 idle connection per client.
// 3. SIGTERM while 20 streams run: all 20 complete byte-identical, the master
//    exits 0; no sanitizer report on stderr.
//
// Byte identity: the client's de-chunked SSE body sha256 == the mock log's
// sent_sha256 for the same request (matched by `user`); the requested model
// name equals the upstream model the mock echoes, so moongate's "model"
// restamp leaves the bytes unchanged.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, waitFor, sleep } from '../lib/harness.mjs';
import {
  chat, byUser, streamOk, describeResult, poolStates, waitPoolAtRest, sanitizerReport, stopAndCollect,
  pinnedAgents,
} from './lib_rotation.mjs';

const WORKERS = 2;
const MASTER = 'sk-pool-master';
const KEY = 'sk-pool-k1';

const mock = await startMock();
const config = ({ upstream = true, settings = {} } = {}) => ({
  model_list: upstream
    ? [{ model_name: 'pool-m', litellm_params: { model: 'openai/pool-m', api_base: mock.url, api_key: KEY } }]
    : [{ model_name: 'offline', litellm_params: { model: 'openai/offline', mock_response: 'ok' } }],
  general_settings: { master_key: MASTER },
  moongate_settings: { upstream_idle_timeout_seconds: 1, ...settings },
});
const gw = await startGateway({ workers: WORKERS, config: config() });
let stopped = null;
after(async () => {
  if (!stopped) await gw.stop();
  await mock.stop();
});

let seq = 0;
const streamBody = (tag, chunks, interval) => ({
  model: 'pool-m', messages: [{ role: 'user', content: 'pool' }], stream: true, user: `${tag}-${seq++}`,
  mock: { chunks, chunk_interval_ms: interval, created: 1700000000, response_id: 'chatcmpl-pool' },
});

/**
 * POST /moongate/pool/evict to every worker (over a keep-alive connection
 * pinned to each) every 100 ms until stop(); bounded.
 */
async function evictLoop({ max = 1500, onSample } = {}) {
  const pinned = await pinnedAgents(gw, WORKERS);
  let stop = false;
  const perWorker = new Map();
  let n = 0;
  const done = (async () => {
    while (!stop && n < max) {
      n++;
      await Promise.all([...pinned].map(async ([w, a]) => {
        const r = await chat(gw, {}, { path: '/moongate/pool/evict', via: a, timeout: 10000 });
        assert.equal(r.status, 200, `evict: ${describeResult(r)}`);
        assert.equal(JSON.parse(r.text).worker, w, 'the pinned connection stays on its worker');
        perWorker.set(w, (perWorker.get(w) || 0) + 1);
      }));
      if (onSample && n % 4 === 0) await onSample();
      await sleep(100); // pacing of the load, not synchronisation
    }
  })();
  done.catch(() => {}); // reported by stop()
  return {
    stop: async () => {
      stop = true;
      try { await done; } finally { for (const a of pinned.values()) a.destroy(); }
      return { n, perWorker };
    },
  };
}

/** Asserts each result is a complete stream byte-identical to the mock's bytes for it. */
async function assertStreamsIdentical(results) {
  await waitFor(async () => {
    const log = byUser(await mock.log());
    return results.every((r) => log.get(r.user) && log.get(r.user).outcome !== 'in_progress');
  }, { timeout: 15000, what: 'the mock to log every stream as ended' });
  const log = byUser(await mock.log());
  for (const r of results) {
    const e = log.get(r.user);
    assert.ok(streamOk(r), `${r.user}: ${describeResult(r)}`);
    assert.equal(e.outcome, 'complete', `${r.user}: mock outcome ${e.outcome}`);
    assert.equal(r.sha256, e.sent_sha256, `${r.user}: received bytes differ from the mock's`);
  }
}

/** Polls until every worker has no connection left: opened == closed (idle ones time out after 1 s). */
async function waitConnectionsClosed() {
  return waitFor(async () => {
    const ws = await poolStates(gw);
    return ws.every((w) => w.pool.connections_opened === w.pool.connections_closed &&
      w.pool.connections_idle === 0 && w.pool.connections_busy === 0) && ws;
  }, { timeout: 20000, interval: 100, what: 'connections_opened == connections_closed on every worker' });
}

test('idle timeout 1 s + eviction every 100 ms while 200 streams run: zero connection errors', { timeout: 120000 }, async () => {
  const failures0 = (await poolStates(gw)).reduce((a, w) => a + w.failures, 0);
  let closedWhileBusy = false;
  const ev = await evictLoop({
    onSample: async () => {
      for (const w of await poolStates(gw)) {
        if (w.pool.connections_busy > 0 && w.pool.connections_closed > 0) closedWhileBusy = true;
      }
    },
  });
  const pending = [];
  for (let i = 0; i < 200; i++) {
    const chunks = 2 + (i % 5);
    const interval = [50, 300, 1200][i % 3];
    pending.push(chat(gw, streamBody('ev', chunks, interval), { timeout: 60000 }));
    await sleep(40); // pacing: streams start and end all through the run
  }
  const results = await Promise.all(pending);
  const { n, perWorker } = await ev.stop();
  console.log(`# evict calls per worker: ${JSON.stringify([...perWorker])}`);
  await assertStreamsIdentical(results);
  const entries = (await mock.log()).filter((e) => e.body?.user?.startsWith('ev-'));
  assert.equal(entries.length, 200, 'each stream reached the mock once (no retry)');
  const ws = await poolStates(gw);
  assert.equal(ws.reduce((a, w) => a + w.failures, 0), failures0, 'no gateway failure');
  assert.ok(n >= 10, `${n} evictions`);
  for (const w of ws) {
    assert.ok(w.pool.evictions >= n, `worker ${w.worker}: ${w.pool.evictions} evictions (calls per worker: ${JSON.stringify([...perWorker])})`);
  }
  assert.ok(closedWhileBusy, 'connections were closed (evicted / timed out) while other streams were busy');
});

test('at the end connections opened == closed once idle ones time out; clients created == freed once unused', async () => {
  const ws = await waitConnectionsClosed();
  for (const w of ws) {
    assert.equal(w.pool.clients_created - w.pool.clients_freed, w.pool.clients_live, `worker ${w.worker}`);
    assert.equal(w.pool.clients_live, 1, `worker ${w.worker}: the one client the snapshot uses`);
  }
  await waitFor(async () => (await mock.stats()).open_connections === 0,
    { timeout: 10000, what: 'the mock to see every connection closed' });
});

test('pool limit 1 + idle timeout + evictions: long-gap streams survive short bursts that overflow the pool', { timeout: 120000 }, async () => {
  gw.writeConfig(config({ settings: { upstream_max_idle_connections: 1 } }));
  const rl = await gw.reload();
  assert.equal(rl.status, 200, rl.text);
  let overLimit = null;
  const ev = await evictLoop({
    onSample: async () => {
      for (const w of await poolStates(gw)) {
        for (const c of w.pool.clients) if (c.idle > 1) overLimit = `worker ${w.worker}: ${c.idle} idle connections`;
      }
    },
  });
  // 30 streams with 1.5 s silences (longer than the 1 s idle timeout)
  const streams = Array.from({ length: 30 }, () => chat(gw, streamBody('lim', 4, 1500), { timeout: 60000 }));
  await waitFor(async () => (await mock.stats()).in_progress >= 30, { timeout: 20000, interval: 50, what: '30 streams in progress' });
  // bursts of 40 concurrent short requests: most connections cannot be pooled on release
  const shorts = [];
  for (let b = 0; b < 5; b++) {
    const burst = await Promise.all(Array.from({ length: 40 }, () =>
      chat(gw, { model: 'pool-m', messages: [{ role: 'user', content: 'x' }], user: `short-${seq++}`, mock: { latency_ms: 100 } })));
    shorts.push(...burst);
    await sleep(700); // pacing: let some idle connections time out between bursts
  }
  const results = await Promise.all(streams);
  await ev.stop();
  for (const r of shorts) assert.equal(r.status, 200, describeResult(r));
  await assertStreamsIdentical(results);
  assert.equal(overLimit, null, `the pool kept more idle connections than the limit: ${overLimit}`);
  await waitConnectionsClosed();
});

test('clients created == freed once the snapshot no longer uses the upstream', async () => {
  gw.writeConfig(config({ upstream: false }));
  const rl = await gw.reload();
  assert.equal(rl.status, 200, rl.text);
  const ws = await waitPoolAtRest(gw, { live: 0 });
  for (const w of ws) {
    assert.equal(w.pool.clients_created, w.pool.clients_freed, `worker ${w.worker}: created == freed`);
    assert.equal(w.pool.connections_opened, w.pool.connections_closed, `worker ${w.worker}: opened == closed`);
  }
});

test('SIGTERM drains 20 running streams to completion, byte-identical; the master exits 0, no sanitizer report', { timeout: 120000 }, async () => {
  gw.writeConfig(config());
  const rl = await gw.reload();
  assert.equal(rl.status, 200, rl.text);
  const streams = Array.from({ length: 20 }, () => chat(gw, streamBody('term', 8, 400), { timeout: 60000 }));
  await waitFor(async () => (await mock.stats()).in_progress >= 20, { timeout: 20000, interval: 50, what: '20 streams in progress' });
  stopped = await stopAndCollect(gw);
  const results = await Promise.all(streams);
  await assertStreamsIdentical(results);
  assert.equal(stopped.timedOut, false, 'the master exited');
  assert.equal(stopped.code, 0, `exit code (signal ${stopped.sig})`);
  const rep = sanitizerReport(stopped.stderr);
  assert.equal(rep, null, `sanitizer report:\n${rep}`);
});
