// tests/integration/lib_registry.mjs -- helpers for the registry tests
// (registry_*.test.mjs) on top of tests/lib/harness.mjs:
//  - one HTTP request on a fresh TCP connection (so it can land on any worker),
//    with send/receive times;
//  - a sweep that reaches every worker of an instance (bounded);
//  - a bounded, recording load loop;
//  - waiting on /moongate/state (every worker applied version V, ...);
//  - kill -9 of a whole instance (master and workers, nothing respawned);
//  - PostgreSQL backends of one replica (by application_name), stopped and
//    continued with signals; everything stopped here is continued at exit.
//
// Every wait is a poll with a deadline; every loop is bounded.

import fs from 'node:fs';
import http from 'node:http';
import { execFile } from 'node:child_process';
import { startGateway, waitFor, sleep } from '../lib/harness.mjs';

// PostgreSQL backends we SIGSTOPped: continued when the test process exits, so
// the harness can stop the server.  Registered at import, before the harness
// registers its own "stop PostgreSQL" exit hook (hooks run in order).
const stoppedPids = new Set();
process.on('exit', () => {
  for (const pid of stoppedPids) {
    try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ }
  }
});

export const now = () => Date.now();

/**
 * One request, on a new connection unless an http.Agent is given.
 * Returns {status, headers (lower-case object), text, json, worker, version,
 * tSend, tHead (response head received), tRecv} or {error, tSend, tRecv} when
 * the connection failed.  Times are Date.now() (CLOCK_REALTIME, like the mock
 * provider's t_start_ms).
 */
export function req(port, path, { method = 'GET', body, headers = {}, key, timeout = 30000, agent = false } = {}) {
  const h = { ...headers };
  if (key) h.authorization = `Bearer ${key}`;
  let data = null;
  if (body !== undefined) {
    data = typeof body === 'string' ? body : JSON.stringify(body);
    h['content-type'] = 'application/json';
    h['content-length'] = Buffer.byteLength(data);
  }
  const tSend = now();
  return new Promise((resolve) => {
    const r = http.request({ host: '127.0.0.1', port, path, method, headers: h, agent, timeout }, (res) => {
      const tHead = now();
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        const wv = res.headers['x-moongate-worker'];
        const vv = res.headers['x-moongate-registry-version'];
        resolve({
          status: res.statusCode, headers: res.headers, text, json,
          worker: wv === undefined ? null : Number(wv),
          version: vv === undefined ? null : Number(vv),
          tSend, tHead, tRecv: now(),
        });
      });
      res.on('error', (e) => resolve({ error: e.message, tSend, tRecv: now() }));
    });
    r.on('timeout', () => r.destroy(new Error(`timed out after ${timeout}ms`)));
    r.on('error', (e) => resolve({ error: e.message, tSend, tRecv: now() }));
    if (data !== null) r.write(data);
    r.end();
  });
}

/** Fresh-connection requests until every one of n workers answered (at most `max`). */
export async function everyWorker(port, n, path, opts = {}, { max = 400 } = {}) {
  const seen = new Map();
  for (let i = 0; i < max && seen.size < n; i++) {
    const r = await req(port, path, opts);
    if (r.error) throw new Error(`${path}: ${r.error}`);
    if (r.worker !== null && !seen.has(r.worker)) seen.set(r.worker, r);
  }
  if (seen.size < n) {
    throw new Error(`${path}: only workers ${[...seen.keys()].join(',')} of ${n} answered in ${max} requests`);
  }
  return seen;
}

export async function state(port, key) {
  const r = await req(port, '/moongate/state', { key });
  if (r.status !== 200) throw new Error(`/moongate/state: ${r.status} ${r.text}`);
  return r.json;
}

/** Polls /moongate/state until pred(workers) is true for the worker list. */
export async function waitState(port, key, pred, { timeout = 15000, interval = 20, what = 'worker state' } = {}) {
  let last = null;
  try {
    return await waitFor(async () => {
      const s = await state(port, key);
      last = s.workers;
      return pred(s.workers) ? s : false;
    }, { timeout, interval, what });
  } catch (e) {
    e.message += `\nlast worker states: ${JSON.stringify((last || []).map((w) => ({
      worker: w.worker, pid: w.pid, state: w.state, registry_version: w.registry_version,
      last_load_error: w.last_load_error, store: w.store && { connected: w.store.connected, last_error: w.store.last_error },
    })))}`;
    throw e;
  }
}

/**
 * Every worker's applied registry version as the workers themselves store it in
 * shared memory right before they tell the master (the worker_states of
 * /health/readiness; public, and answered with 503 too): exact, unlike the
 * per-worker state blobs of /moongate/state, which are published a moment later.
 */
export async function appliedVersions(port) {
  const r = await req(port, '/health/readiness');
  const ws = r.json?.moongate?.worker_states;
  if (!Array.isArray(ws)) throw new Error(`/health/readiness: ${r.status} ${r.text}`);
  return ws.map((w) => w.registry_version);
}

export const allAtLeast = (n, v) => (ws) => ws.length === n && ws.every((w) => w.state === 'ready' && w.registry_version >= v);

/**
 * startGateway() without the harness's readiness wait, then waits until every
 * worker reports itself ready in /moongate/state.  (The readiness probe is
 * checked by its own tests: see registry_load.test.mjs.)
 */
export async function startLoaded(opts, { key, timeout = 20000 } = {}) {
  const gw = await startGateway({ ...opts, waitReady: false });
  if (key) gw.masterKey = key;
  const n = opts.workers || 1;
  try {
    await waitState(gw.port, gw.masterKey, allAtLeast(n, 0), { timeout, what: `${n} workers to load the registry` });
  } catch (e) {
    // a child left running would keep the test process alive
    await gw.stop('SIGKILL');
    e.message += `\nmoongate stderr:\n${gw.output().stderr.slice(-3000)}`;
    throw e;
  }
  return gw;
}

/**
 * A recording load loop: `concurrency` clients, each sending make(i) on a new
 * connection, until stop() or `maxMs` / `maxRequests` (bounded).
 * make(i) -> {port, path, method, body, key, tag}.
 */
export function loadLoop({ concurrency = 8, make, maxMs = 60000, maxRequests = 200000 }) {
  const results = [];
  let stopping = false;
  let n = 0;
  const t0 = now();
  async function client() {
    while (!stopping && n < maxRequests && now() - t0 < maxMs) {
      const i = n++;
      const m = make(i);
      const r = await req(m.port, m.path, m);
      r.i = i;
      r.tag = m.tag;
      r.kind = m.kind;
      results.push(r);
    }
  }
  const running = Promise.all(Array.from({ length: concurrency }, client));
  return {
    results,
    async stop() { stopping = true; await running; return results; },
  };
}

/** Resolves when pred(results) holds (results of a loadLoop), bounded. */
export function waitResults(loop, pred, { timeout = 15000, what = 'load results' } = {}) {
  return waitFor(() => pred(loop.results), { timeout, interval: 20, what });
}

/**
 * kill -9 of a whole instance: SIGSTOP the master (so it respawns nothing) and
 * the workers, then SIGKILL all of them; waits until the master is reaped.
 */
export async function killInstance(gw, workerPids) {
  const pids = [gw.child.pid, ...workerPids];
  for (const p of pids) { try { process.kill(p, 'SIGSTOP'); } catch { /* gone */ } }
  for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
  await gw.exited;
  await waitFor(() => workerPids.every((p) => !alive(p)), { timeout: 10000, what: 'the workers to die' });
}

export function alive(pid) {
  try { process.kill(pid, 0); } catch { return false; }
  // a zombie is dead for us
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(st);
  } catch { return false; }
}

/** pids of the PostgreSQL backends matching a WHERE clause over pg_stat_activity. */
export function pgBackends(pg, where) {
  const out = pg.psql(`SELECT pid FROM pg_stat_activity WHERE ${where}`);
  return out ? out.split('\n').map(Number).filter((x) => x > 0) : [];
}

/** psql without blocking the event loop (trust auth on loopback). */
export function psqlAsync(pg, sql) {
  return new Promise((resolve, reject) => {
    execFile('psql', ['-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', '-d', 'postgres', '-At', '-c', sql],
      { encoding: 'utf8', timeout: 15000 }, (err, out, errOut) => (err ? reject(new Error(`psql: ${errOut || err.message}`)) : resolve(out.trim())));
  });
}

/** redis-cli without blocking the event loop. */
export function redisCliAsync(redis, ...cmd) {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(redis.port), ...cmd], { encoding: 'utf8', timeout: 15000 },
      (err, out, errOut) => (err ? reject(new Error(`redis-cli: ${errOut || err.message}`)) : resolve(out.trim())));
  });
}

export function pgStop(pids) {
  for (const p of pids) { process.kill(p, 'SIGSTOP'); stoppedPids.add(p); }
}

export function pgCont(pids) {
  for (const p of pids) { try { process.kill(p, 'SIGCONT'); } catch { /* gone */ } stoppedPids.delete(p); }
}

export function percentile(xs, p) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i];
}

export function summary(xs) {
  return `n=${xs.length} p50=${percentile(xs, 50)}ms p99=${percentile(xs, 99)}ms max=${Math.max(...xs)}ms`;
}

export { sleep, waitFor };
