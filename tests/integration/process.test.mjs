// The master/worker model: a crashed worker is respawned and traffic goes on;
// a worker that exits gracefully under load loses no request; SIGTERM to the
// master drains (in-flight streams finish) and exits 0.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startMock, startGateway, mockModel, waitFor } from '../lib/harness.mjs';
import { rawConnect, rawJsonPost, sseData, pidAlive, tryFetch } from './lib_extra.mjs';

const KEY = 'sk-test-master-proc';
const mock = await startMock();
after(async () => { await mock.stop(); });

const config = { model_list: [mockModel(mock, 'm', { model: 'openai/up-m' })], general_settings: { master_key: KEY } };
const msgs = [{ role: 'user', content: 'hi' }];

/** One chat request on a fresh TCP connection (Connection: close). Never throws. */
function freshChat(port, body) {
  return new Promise((resolve) => {
    const data = JSON.stringify(body);
    const req = http.request({
      host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions', agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), authorization: `Bearer ${KEY}`, connection: 'close' },
    }, (res) => {
      let t = '';
      res.on('data', (d) => { t += d; });
      res.on('end', () => resolve({ status: res.statusCode, worker: res.headers['x-moongate-worker'], text: t }));
      res.on('error', (e) => resolve({ error: e.code || e.message }));
    });
    req.on('error', (e) => resolve({ error: e.code || e.message }));
    req.setTimeout(20000, () => req.destroy(new Error('client timeout')));
    req.end(data);
  });
}

/** Worker pids as the master sees them (shared memory), from the readiness body (200 or 503). */
async function masterPids(gw) {
  const r = await tryFetch(`${gw.url}/health/readiness`);
  if (!r.json?.moongate) return null;
  return r.json.moongate.worker_states.map((w) => w.pid);
}

// regression: the master used to mark a worker 'starting' after fork(), overwriting a fast
// worker's 'ready', so readiness could stay 503 (fixed in 8466a8f)
test('after a start, /health/readiness reports every worker ready', async () => {
    for (let i = 0; i < 10; i++) {
      const gw = await startGateway({ config, workers: 2, waitReady: false });
      try {
        // the workers themselves are ready...
        await waitFor(async () => {
          const s = await gw.state();
          return s.workers.length === 2 && s.workers.every((w) => w.state === 'ready');
        }, { what: 'both workers ready (their own report)' });
        // ...so readiness must say so too
        await waitFor(async () => (await fetch(`${gw.url}/health/readiness`)).status === 200,
          { what: `readiness 200 (start ${i})`, timeout: 3000 });
      } finally { await gw.stop(); }
    }
  });

test('a crashed worker (SIGKILL) is respawned within 1 s and traffic continues', async () => {
  const gw = await startGateway({ config, workers: 2 });
  try {
    const before = await gw.workerPids();
    const victim = before[0];
    const t0 = Date.now();
    process.kill(victim, 'SIGKILL');
    const pids = await waitFor(async () => {
      const p = await masterPids(gw);
      return p && p[0] && p[0] !== victim && pidAlive(p[0]) && p;
    }, { what: 'a new worker 0', timeout: 5000, interval: 10 });
    const took = Date.now() - t0;
    assert.ok(took <= 1000, `respawned after ${took} ms (bound 1000 ms)`);
    assert.equal(pids[1], before[1], 'the other worker was not touched');
    assert.ok(!pidAlive(victim));
    // the new worker serves
    await waitFor(async () => {
      const s = await gw.state();
      return s.workers[0].pid === pids[0] && s.workers[0].state === 'ready';
    }, { what: 'the new worker 0 to be ready' });
    const rs = await Promise.all(Array.from({ length: 30 }, () => freshChat(gw.port, { model: 'm', messages: msgs })));
    assert.deepEqual(rs.filter((r) => r.status !== 200), [], 'every request after the respawn succeeds');
  } finally { await gw.stop(); }
});

test('a worker that keeps crashing is still respawned (with backoff) and serves', async () => {
  const gw = await startGateway({ config, workers: 2 });
  try {
    let pid = (await gw.workerPids())[1];
    for (let i = 0; i < 4; i++) {
      process.kill(pid, 'SIGKILL');
      const old = pid;
      pid = (await waitFor(async () => {
        const p = await masterPids(gw);
        return p && p[1] && p[1] !== old && pidAlive(p[1]) && p;
      }, { what: `respawn after crash ${i + 1}`, timeout: 5000, interval: 10 }))[1];
      await waitFor(async () => {
        const s = await gw.state();
        return s.workers[1].pid === pid && s.workers[1].state === 'ready';
      }, { what: `worker 1 ready after crash ${i + 1}` });
    }
    const rs = await Promise.all(Array.from({ length: 20 }, () => freshChat(gw.port, { model: 'm', messages: msgs })));
    assert.deepEqual(rs.filter((r) => r.status !== 200), []);
  } finally { await gw.stop(); }
});

test('requests in flight on a SIGKILLed worker: only those fail', async (t) => {
  const gw = await startGateway({ config, workers: 2 });
  try {
    const pids = await gw.workerPids();
    const N = 12;
    const before = (await mock.log()).length;
    const tag = `inflight-${Date.now()}`;
    const pending = Array.from({ length: N }, (_, i) => freshChat(gw.port, {
      model: 'm', messages: msgs, user: `${tag}-${i}`, mock: { latency_ms: 1500 },
    }));
    // every request has reached the upstream: all are in flight in some worker
    await waitFor(async () => (await mock.log()).slice(before).filter((e) => e.outcome === 'in_progress').length === N,
      { what: `${N} requests in flight` });
    process.kill(pids[0], 'SIGKILL');
    const rs = await Promise.all(pending);
    const ok = rs.filter((r) => r.status === 200);
    const failed = rs.filter((r) => r.status !== 200);
    await waitFor(async () => (await mock.log()).slice(before).every((e) => e.outcome !== 'in_progress'),
      { what: 'the upstream side to settle' });
    const ups = (await mock.log()).slice(before).filter((e) => e.body?.user?.startsWith(tag));
    const closed = ups.filter((e) => e.outcome === 'client_closed').length;
    t.diagnostic(`SIGKILL with ${N} in flight: ${ok.length} succeeded (served by worker 1), ` +
      `${failed.length} failed (${[...new Set(failed.map((r) => r.error || r.status))].join(', ')}); ` +
      `upstream: ${closed} closed by the dead worker's exit`);
    assert.equal(ok.length + failed.length, N);
    assert.ok(ok.every((r) => r.worker === '1'), 'every success came from the surviving worker');
    assert.equal(failed.length, closed, 'exactly the requests of the killed worker failed');
  } finally { await gw.stop(); }
});

test('workers that exit gracefully (SIGTERM) under load lose no request', async (t) => {
  const gw = await startGateway({ config, workers: 2 });
  try {
    const pids = await gw.workerPids();
    const N = 400;
    const CONC = 8;
    let done = 0;
    let killedAt = -1;
    const results = [];
    let next = 0;
    async function client() {
      while (next < N) {
        const i = next++;
        if (i === 60) {
          killedAt = done;
          process.kill(pids[0], 'SIGTERM');
        }
        if (i === 240) process.kill(pids[1], 'SIGTERM'); // then the other one
        const r = await freshChat(gw.port, { model: 'm', messages: msgs, mock: { latency_ms: 15 } });
        results[i] = r;
        done++;
      }
    }
    await Promise.all(Array.from({ length: CONC }, client));
    const failed = results.filter((r) => r.status !== 200);
    const byWorker = {};
    for (const r of results.slice(60)) byWorker[r.worker] = (byWorker[r.worker] || 0) + 1;
    t.diagnostic(`${N} requests, SIGTERM to worker 0 after ${killedAt}, to worker 1 after ~240; failures ${failed.length}; ` +
      `served after the signal by worker: ${JSON.stringify(byWorker)}`);
    assert.deepEqual(failed.map((r) => r.error || `${r.status} ${r.text.slice(0, 200)}`), [], 'zero lost requests');
    // both exited and were replaced
    const now = await waitFor(async () => {
      const p = await masterPids(gw);
      return p && p[0] && p[1] && p[0] !== pids[0] && p[1] !== pids[1] && p;
    }, { what: 'both workers respawned' });
    assert.ok(!pidAlive(pids[0]) && !pidAlive(pids[1]), 'the old workers exited');
    assert.ok(pidAlive(now[0]) && pidAlive(now[1]));
  } finally { await gw.stop(); }
});

test('SIGTERM to the master: an in-flight stream finishes completely, then exit 0', async () => {
  const gw = await startGateway({ config, workers: 2 });
  const c = await rawConnect(gw.port);
  try {
    await c.send(rawJsonPost('/v1/chat/completions', {
      model: 'm', messages: msgs, stream: true, mock: { chunks: 8, chunk_interval_ms: 150 },
    }, { key: KEY }));
    await c.until((b) => sseData(b.toString()).some((f) => f.includes('"content":"mock')), 10000, 'the first chunk');
    gw.child.kill('SIGTERM');
    const r = await c.response({ timeout: 15000 });
    const frames = sseData(r.body.toString());
    assert.equal(frames[frames.length - 1], '[DONE]', 'the stream was not cut');
    const text = frames.slice(0, -1).map((f) => JSON.parse(f).choices[0]?.delta?.content || '').join('');
    assert.equal(text, 'mock reply from up-m 5 6 7 8', `got ${JSON.stringify(text)}`);
    const { code, sig } = await waitFor(() => gw.child.exitCode !== null || gw.child.signalCode !== null
      ? { code: gw.child.exitCode, sig: gw.child.signalCode } : null, { what: 'moongate to exit', timeout: 15000 });
    assert.equal(sig, null);
    assert.equal(code, 0);
  } finally { c.destroy(); await gw.stop(); }
});

test('SIGTERM to the master: /health/readiness answers 503 while draining',
  async () => {
    const gw = await startGateway({ config, workers: 2 });
    try {
      // keep it draining: a slow request in flight
      const slow = freshChat(gw.port, { model: 'm', messages: msgs, mock: { latency_ms: 3000 } });
      await waitFor(async () => (await mock.log()).some((e) => e.outcome === 'in_progress'), { what: 'the slow request' });
      gw.child.kill('SIGTERM');
      // the signal reaches the workers through the master: poll until they say so, while
      // the slow request (3 s) still keeps the gateway draining
      const seen = [];
      let r;
      try {
        r = await waitFor(async () => {
          const ctl = new AbortController();
          const timer = setTimeout(() => ctl.abort(), 1000);
          const x = await tryFetch(`${gw.url}/health/readiness`, { signal: ctl.signal });
          clearTimeout(timer);
          seen.push(x.error ? `no answer: ${x.error.name}` : x.status);
          return x.status === 503 && x;
        }, { timeout: 2000, interval: 20, what: 'readiness 503 after SIGTERM' });
      } finally { await slow; }
      assert.equal(r.status, 503, `answers seen: ${seen.join(', ')}`);
      assert.ok(!seen.some((x) => typeof x === 'string'), `every probe was answered: ${seen.join(', ')}`);
    } finally { await gw.stop(); }
  });
