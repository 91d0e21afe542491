// tests/integration/lib_rotation.mjs -- helpers for the credential-rotation and
// upstream-pool tests (rotation_*.test.mjs): a streaming chat client that
// keeps every received body byte (for sha256 comparison with the mock's
// sent_sha256), /moongate/state pool readers and waits, and sanitizer-build
// detection / report scanning.
//
// Every wait is a poll with a deadline; every request has a client-side
// timeout; nothing here sleeps to synchronise.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { moongateBin, waitFor } from '../lib/harness.mjs';

// One TCP connection per request: the kernel spreads them over the workers,
// and nothing is pooled on the test side.
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

export const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

/**
 * POSTs a chat request to the gateway and collects the response body bytes
 * (de-chunked by node:http: exactly the SSE/JSON bytes moongate sent).
 * Resolves (never rejects) with { user (body.user), status, headers, worker
 * (x-moongate-worker), body (Buffer), text, sha256, complete, error, aborted,
 * t0, t1 }.  opts.abortAfterBytes / opts.abortAfterMs: the client goes away
 * (socket destroyed) after that many body bytes / ms -- for client-abort load.
 * opts.via: an http.Agent (default: a new connection per request).
 */
export function chat(gw, body, { key = gw.masterKey, timeout = 120000, abortAfterBytes, abortAfterMs,
  path = '/v1/chat/completions', via = agent } = {}) {
  return new Promise((resolve) => {
    const data = Buffer.from(JSON.stringify(body));
    const t0 = Date.now();
    const headers = { 'content-type': 'application/json', 'content-length': data.length };
    if (key) headers.authorization = `Bearer ${key}`;
    const req = http.request({ host: '127.0.0.1', port: gw.port, path, method: 'POST', agent: via, headers });
    const chunks = [];
    let got = 0;
    let res = null;
    let settled = false;
    let aborted = false;
    let abortTimer = null;
    const finish = (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(abortTimer);
      const buf = Buffer.concat(chunks);
      resolve({
        user: body.user,
        status: res ? res.statusCode : null,
        headers: res ? res.headers : {},
        worker: res ? res.headers['x-moongate-worker'] : undefined,
        body: buf,
        text: buf.toString('utf8'),
        sha256: sha256(buf),
        complete: !!(res && res.complete),
        error: error ? String(error.message || error) : null,
        aborted,
        t0,
        t1: Date.now(),
      });
    };
    const timer = setTimeout(() => { req.destroy(new Error(`client timeout after ${timeout}ms`)); }, timeout);
    const abortNow = () => { aborted = true; req.destroy(); finish(null); };
    if (abortAfterMs !== undefined) abortTimer = setTimeout(abortNow, abortAfterMs);
    req.on('response', (r) => {
      res = r;
      r.on('data', (d) => {
        chunks.push(d);
        got += d.length;
        if (abortAfterBytes !== undefined && got >= abortAfterBytes && !aborted) abortNow();
      });
      r.on('end', () => finish(null));
      r.on('error', (e) => finish(e));
      r.on('close', () => finish(r.complete ? null : new Error('response closed before its end')));
    });
    req.on('error', (e) => finish(e));
    req.end(data);
  });
}

/** SSE data payloads of a body. */
export function sseFrames(text) {
  return text.split('\n\n').filter((f) => f.startsWith('data: ')).map((f) => f.slice(6));
}

/** A stream that ended normally: 200, complete, [DONE] last, no error frame. */
export function streamOk(r) {
  if (r.error || r.status !== 200 || !r.complete) return false;
  const f = sseFrames(r.text);
  return f.length > 0 && f[f.length - 1] === '[DONE]' && !f.some((x) => x.startsWith('{"error"'));
}

export function describeResult(r) {
  return `status=${r.status} complete=${r.complete} error=${r.error} worker=${r.worker} ` +
    `bytes=${r.body.length} tail=${JSON.stringify(r.text.slice(-300))}`;
}

/** Map user -> mock log entry (the test puts a unique `user` in every body). */
export function byUser(entries) {
  const m = new Map();
  for (const e of entries) if (e.body && typeof e.body === 'object' && e.body.user) m.set(e.body.user, e);
  return m;
}

/**
 * Every request of a burst answered 200 and reached the mock (log: byUser map)
 * with Authorization `auth`, and the burst reached `nworkers` workers.
 */
export function assertBurst(results, auth, log, nworkers) {
  const workers = new Set();
  for (const x of results) {
    assert.equal(x.status, 200, `${x.user}: ${describeResult(x)}`);
    const e = log.get(x.user);
    assert.ok(e, `${x.user} reached the mock`);
    assert.equal(e.headers.authorization, auth, `${x.user} (worker ${x.worker}) used ${e.headers.authorization}`);
    workers.add(x.worker);
  }
  assert.equal(workers.size, nworkers, 'the burst reached every worker');
}

/**
 * One keep-alive connection pinned to each worker (a connection stays with the
 * worker that accepted it): Map worker id -> http.Agent with one socket.
 * Opens connections until every worker has one (bounded).  Use with
 * chat(gw, body, { via: agent }); destroy the agents when done.
 */
export async function pinnedAgents(gw, nworkers, { max = 100 } = {}) {
  const pinned = new Map();
  for (let i = 0; i < max && pinned.size < nworkers; i++) {
    const a = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const r = await chat(gw, {}, { path: '/moongate/pool/evict', via: a, timeout: 10000 });
    if (r.status !== 200) throw new Error(`pinning a connection: ${describeResult(r)}`);
    const w = JSON.parse(r.text).worker;
    if (pinned.has(w)) a.destroy(); else pinned.set(w, a);
  }
  if (pinned.size < nworkers) throw new Error(`only workers ${[...pinned.keys()]} accepted ${max} connections`);
  return pinned;
}

// ---- /moongate/state ----

/** The workers array of /moongate/state (each with .pool). */
export async function poolStates(gw) {
  const r = await gw.request('/moongate/state');
  if (r.status !== 200) throw new Error(`/moongate/state answered ${r.status}: ${r.text}`);
  return r.json.workers;
}

/** Checks a worker's pool for internal consistency; returns a problem string or null. */
export function poolProblem(w, { live, busy = 0, atRest = true } = {}) {
  const p = w.pool;
  if (!p || !Array.isArray(p.clients)) return `worker ${w.worker}: no pool.clients in state`;
  if (p.clients_created - p.clients_freed !== p.clients_live) {
    return `worker ${w.worker}: created ${p.clients_created} - freed ${p.clients_freed} != live ${p.clients_live}`;
  }
  if (p.clients.length !== p.clients_live) return `worker ${w.worker}: ${p.clients.length} clients listed, live ${p.clients_live}`;
  if (live !== undefined && p.clients_live !== live) return `worker ${w.worker}: ${p.clients_live} live clients, want ${live}`;
  if (atRest) {
    if (p.clients_draining !== 0) return `worker ${w.worker}: ${p.clients_draining} draining clients`;
    if (p.connections_busy !== busy) return `worker ${w.worker}: ${p.connections_busy} busy connections, want ${busy}`;
    for (const c of p.clients) {
      if (c.draining) return `worker ${w.worker}: client ${c.upstream} still draining`;
      if (c.busy !== 0 || c.connecting !== 0) return `worker ${w.worker}: client ${c.upstream} busy ${c.busy} connecting ${c.connecting}`;
      // at rest a client is referenced by the current snapshot's deployment(s)
      // and by each of its idle keep-alive connections, nothing else
      if (c.refs - c.idle < 1) return `worker ${w.worker}: client ${c.upstream} refs ${c.refs} idle ${c.idle}: unreferenced yet alive`;
    }
  }
  return null;
}

/**
 * Polls until every worker's pool is at rest: no draining client, no busy
 * connection, created - freed == live == `live` (the clients the current
 * snapshot uses), each client's references = snapshot deployments + idle
 * connections (`refsAtRest`, default 1 deployment per client).
 */
export async function waitPoolAtRest(gw, { live, refsAtRest = 1, timeout = 30000, extra } = {}) {
  let last = '';
  try {
    return await waitFor(async () => {
      const ws = await poolStates(gw);
      for (const w of ws) {
        const prob = poolProblem(w, { live });
        if (prob) { last = prob; return false; }
        for (const c of w.pool.clients) {
          if (refsAtRest !== null && c.refs !== refsAtRest + c.idle) {
            last = `worker ${w.worker}: client ${c.upstream} refs ${c.refs}, want ${refsAtRest} + ${c.idle} idle`;
            return false;
          }
        }
        if (extra) {
          const e = extra(w);
          if (e) { last = e; return false; }
        }
      }
      return ws;
    }, { timeout, interval: 100, what: 'the upstream pool to come to rest' });
  } catch (e) {
    throw new Error(`${e.message}; last problem: ${last}`);
  }
}

/** Sends chat requests (new connection each) until every worker answered at least `per` of them. */
export async function hitEveryWorker(gw, nworkers, mkBody, { per = 3, max = 400, concurrency = 8 } = {}) {
  const seen = new Map();
  const results = [];
  let sent = 0;
  const enough = () => seen.size >= nworkers && [...seen.values()].every((n) => n >= per);
  async function one() {
    while (!enough() && sent < max) {
      const i = sent++;
      const r = await chat(gw, mkBody(i), { timeout: 30000 });
      results.push(r);
      if (r.worker !== undefined) seen.set(r.worker, (seen.get(r.worker) || 0) + 1);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, one));
  if (!enough()) throw new Error(`after ${sent} requests the workers seen were ${JSON.stringify([...seen])}`);
  return results;
}

// ---- sanitizers ----

const REPORT_RE = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: (Address|Undefined|Leak)Sanitizer|==\d+==ERROR:/;

/** The first sanitizer report in text (with some context), or null. */
export function sanitizerReport(text) {
  const m = REPORT_RE.exec(text);
  if (!m) return null;
  const start = Math.max(0, text.lastIndexOf('\n', Math.max(0, m.index - 2000)));
  return text.slice(start, m.index + 6000);
}

/**
 * Whether the moongate binary under test is an ASan build: MG_SANITIZER_BUILD=1/0
 * forces the answer; otherwise the binary's symbols are searched for
 * __asan_init (nm), falling back to a NEEDED libasan entry (readelf -d).
 * Returns { yes, why }.
 */
export function sanitizerBuild(bin = moongateBin) {
  const forced = process.env.MG_SANITIZER_BUILD;
  if (forced === '1') return { yes: true, why: 'MG_SANITIZER_BUILD=1' };
  if (forced === '0') return { yes: false, why: 'MG_SANITIZER_BUILD=0' };
  if (!fs.existsSync(bin)) return { yes: false, why: `${bin} does not exist` };
  const nm = spawnSync('nm', ['-a', bin], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (nm.status === 0 && /\b_?_asan_init\b/.test(nm.stdout)) return { yes: true, why: `${bin} has __asan_init (nm)` };
  const re = spawnSync('readelf', ['-d', bin], { encoding: 'utf8' });
  if (re.status === 0 && /NEEDED.*libasan/.test(re.stdout)) return { yes: true, why: `${bin} needs libasan (readelf -d)` };
  return { yes: false, why: `${bin} has no __asan_init symbol and no libasan dependency: not an ASan build ` +
    '(build with -DMG_SANITIZE=ON and set MG_BUILD_DIR, or force with MG_SANITIZER_BUILD=1)' };
}

/** Stops the gateway with SIGTERM and waits for the master to exit; returns {code, sig, stderr}. */
export async function stopAndCollect(gw, { timeout = 60000 } = {}) {
  if (gw.child.exitCode === null && gw.child.signalCode === null) {
    gw.child.kill('SIGTERM');
  }
  let timer;
  const res = await Promise.race([
    gw.exited,
    new Promise((r) => { timer = setTimeout(() => r(null), timeout); }),
  ]);
  clearTimeout(timer);
  if (res === null) {
    try { gw.child.kill('SIGKILL'); } catch { /* gone */ }
    const r2 = await gw.exited;
    return { ...r2, timedOut: true, stderr: gw.output().stderr };
  }
  // let the stderr pipe drain: 'exit' can come before the last data (bounded wait)
  await Promise.race([
    new Promise((r) => (gw.child.stderr.closed ? r() : gw.child.stderr.once('close', r))),
    new Promise((r) => { const t = setTimeout(r, 5000); t.unref(); }),
  ]);
  return { ...res, timedOut: false, stderr: gw.output().stderr };
}

/** SIGTERM, then: the master exited by itself with code 0 and stderr has no sanitizer report. */
export async function assertCleanStop(gw) {
  const stopped = await stopAndCollect(gw);
  assert.equal(stopped.timedOut, false, 'the master exited');
  assert.equal(stopped.code, 0, `exit code (signal ${stopped.sig})`);
  const rep = sanitizerReport(stopped.stderr);
  assert.equal(rep, null, `sanitizer report:\n${rep}`);
  return stopped;
}

/**
 * After a rotation: waits until every worker (that passes `ready`) has exactly one live
 * client, at most `maxDraining` draining ones, no idle connection on a draining client, and
 * `busy` stream connections in all draining clients together.
 */
export async function waitOldClientsDraining(gw, { busy, maxDraining = Infinity, ready = () => true, what }) {
  await waitFor(async () => {
    const ws = await poolStates(gw);
    let n = 0;
    for (const w of ws) {
      if (!ready(w)) return false;
      const dr = w.pool.clients.filter((c) => c.draining);
      if (w.pool.clients.length - dr.length !== 1 || dr.length > maxDraining) return false;
      for (const c of dr) {
        if (c.idle !== 0) return false;
        n += c.busy;
      }
    }
    return n === busy;
  }, { timeout: 10000, interval: 100, what });
}
