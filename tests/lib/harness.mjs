// tests/lib/harness.mjs -- start and stop the real pieces for integration and
// end-to-end tests: the moongate binary, the mock provider, redis-server and
// PostgreSQL, each on 127.0.0.1 with a free port and a temporary directory.
//
// Every process started here is registered and killed when the test process
// exits (also on failure); every wait is a poll with a deadline.

import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
export const buildDir = process.env.MG_BUILD_DIR || path.join(repoRoot, 'build');
export const moongateBin = process.env.MG_BIN || path.join(buildDir, 'moongate');
export const mockBin = process.env.MG_MOCK_BIN || path.join(buildDir, 'tests', 'mocks', 'mg_mock_provider');

const children = new Set();
const tmpDirs = new Set();

function cleanupAll() {
  for (const c of children) {
    try { process.kill(c.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  children.clear();
  for (const d of tmpDirs) {
    try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ }
  }
  tmpDirs.clear();
}
process.on('exit', cleanupAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { cleanupAll(); process.exit(130); });
}

export function tmpDir(prefix = 'mg-test-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.add(d);
  return d;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls fn() until it returns a truthy value or the deadline passes (then throws). */
export async function waitFor(fn, { timeout = 10000, interval = 25, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > end) {
      throw new Error(`timed out after ${timeout}ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    }
    await sleep(interval);
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * A port where nothing listens and nothing will: below the kernel's ephemeral range (which
 * every port-0 bind and freePort() draw from, so no test's server can take it while tests
 * run side by side), checked to refuse a connection.
 */
export async function refusedPort() {
  let low = 32768;
  try {
    low = parseInt(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0], 10) || low;
  } catch { /* not Linux: the usual range */ }
  const lo = Math.min(20000, Math.max(1024, low - 2000));
  for (let i = 0; i < 50; i++) {
    const port = lo + Math.floor(Math.random() * Math.max(1, low - lo));
    const refused = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => { c.destroy(); resolve(false); });
      c.once('error', (e) => resolve(e.code === 'ECONNREFUSED'));
    });
    if (refused) return port;
  }
  throw new Error('no refusing port found below the ephemeral range');
}

function track(child, name) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  child.mgName = name;
  return child;
}

/** Collects a child's output; returns a function that gives it back. */
function capture(child) {
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => { out += d; });
  child.stderr?.on('data', (d) => { err += d; });
  return () => ({ stdout: out, stderr: err });
}

export async function stopChild(child, signal = 'SIGTERM', timeout = 15000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  try { child.kill(signal); } catch { return; }
  const t = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } }, timeout);
  await done;
  clearTimeout(t);
}

// ---- mock provider ----

export async function startMock({ tls = null, args = [] } = {}) {
  const dir = tmpDir('mg-mock-');
  const portFile = path.join(dir, 'port');
  const a = ['--port', '0', '--port-file', portFile, '--quiet', ...args];
  if (tls) a.push('--tls-cert', tls.cert, '--tls-key', tls.key);
  const child = track(spawn(mockBin, a, { stdio: ['ignore', 'pipe', 'pipe'] }), 'mock');
  const output = capture(child);
  const port = await waitFor(() => fs.existsSync(portFile) && parseInt(fs.readFileSync(portFile, 'utf8'), 10),
    { what: 'the mock provider port', timeout: 10000 });
  const scheme = tls ? 'https' : 'http';
  const base = `${scheme}://127.0.0.1:${port}`;
  const ctl = `http://127.0.0.1:${port}`;
  const mock = {
    port, child, output,
    url: `${base}/v1`,
    base,
    async log(since = 0) {
      const r = await fetch(`${ctl}/__mock/log?since=${since}`, tls ? { dispatcher: undefined } : {});
      return (await r.json()).entries;
    },
    async script(body) {
      const r = await fetch(`${ctl}/__mock/script`, { method: 'POST', body: JSON.stringify(body) });
      if (!r.ok) throw new Error(`mock script rejected: ${await r.text()}`);
    },
    async reset() { await fetch(`${ctl}/__mock/reset`, { method: 'POST' }); },
    async stats() { return (await fetch(`${ctl}/__mock/stats`)).json(); },
    stop: (sig) => stopChild(child, sig),
  };
  return mock;
}

// ---- moongate ----

/**
 * Starts moongate.  config: an object (written as JSON, which YAML reads) or a
 * YAML string.  Returns once it listens and (unless waitReady === false) its
 * readiness probe answers 200.
 */
export async function startGateway({
  config = {}, workers = 1, env = {}, args = [], stateDir = null, waitReady = true,
  dir = null, configName = 'config.yaml', port = 0, wrap = [],
} = {}) {
  const d = dir || tmpDir('mg-gw-');
  const cfgPath = path.join(d, configName);
  fs.writeFileSync(cfgPath, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  const sd = stateDir || path.join(d, 'state');
  const a = ['--config', cfgPath, '--host', '127.0.0.1', '--port', String(port),
    '--num_workers', String(workers), '--state_dir', sd, ...args];
  // wrap: a command line the binary runs under, e.g. ['prlimit', '--nofile=128:128', '--']
  const cmd = wrap.length > 0 ? wrap[0] : moongateBin;
  const cmdArgs = wrap.length > 0 ? [...wrap.slice(1), moongateBin, ...a] : a;
  const child = track(spawn(cmd, cmdArgs, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LITELLM_LOG: process.env.MG_TEST_LOG || 'WARNING', ...env },
  }), 'moongate');
  const output = capture(child);
  const exited = new Promise((r) => child.once('exit', (code, sig) => r({ code, sig })));
  const listenPort = await Promise.race([
    waitFor(() => {
      const m = /moongate: listening on [^:]+:(\d+)/.exec(output().stdout);
      return m && parseInt(m[1], 10);
    }, { what: 'moongate to listen', timeout: 15000 }),
    exited.then(({ code, sig }) => {
      throw new Error(`moongate exited early (code ${code}, signal ${sig}):\n${output().stderr}`);
    }),
  ]);
  const url = `http://127.0.0.1:${listenPort}`;
  const gw = {
    port: listenPort, url, child, output, dir: d, configPath: cfgPath, stateDir: sd, exited,
    masterKey: config?.general_settings?.master_key,
    async request(p, { method = 'GET', body, headers = {}, key } = {}) {
      const h = { ...headers };
      const k = key === undefined ? gw.masterKey : key;
      if (k) h.authorization = `Bearer ${k}`;
      if (body !== undefined && typeof body !== 'string') {
        h['content-type'] = 'application/json';
        body = JSON.stringify(body);
      }
      const r = await fetch(url + p, { method, body, headers: h });
      const text = await r.text();
      let json = null;
      try { json = JSON.parse(text); } catch { /* not JSON */ }
      return { status: r.status, headers: r.headers, text, json };
    },
    chat(body, opts = {}) {
      return gw.request('/v1/chat/completions', { method: 'POST', body, ...opts });
    },
    async state() { return (await gw.request('/moongate/state')).json; },
    writeConfig(c) {
      fs.writeFileSync(cfgPath, typeof c === 'string' ? c : JSON.stringify(c, null, 2));
    },
    async reload() { return gw.request('/config/reload', { method: 'POST' }); },
    stop: (sig = 'SIGTERM') => stopChild(child, sig),
    /** Worker pids from /moongate/state. */
    async workerPids() {
      const s = await gw.state();
      return s.workers.map((w) => w.pid);
    },
  };
  if (waitReady) {
    await waitFor(async () => {
      const r = await fetch(url + '/health/readiness');
      return r.status === 200;
    }, { what: 'moongate readiness', timeout: 20000 });
  }
  return gw;
}

/** A model_list entry served by the mock provider. */
export function mockModel(mock, name, { model = `openai/${name}`, key = 'sk-upstream-test', extra = {}, info } = {}) {
  const e = { model_name: name, litellm_params: { model, api_base: mock.url, api_key: key, ...extra } };
  if (info) e.model_info = info;
  return e;
}

// ---- redis ----

// port: a given one (to start Redis again where moongate expects it), else a free one.  A
// free port can be taken by another test's server between freePort() and the bind (ctest
// runs tests side by side): Redis then exits, and a new port is tried, up to 5 times.  Ready
// means this server said so, not that something answers on the port.
export async function startRedis({ args = [], port: want = 0 } = {}) {
  const dir = tmpDir('mg-redis-');
  for (let attempt = 1; ; attempt++) {
    const port = want || await freePort();
    const child = track(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1',
      '--save', '', '--appendonly', 'no', '--dir', dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }), 'redis');
    const output = capture(child);
    let exited = false;
    child.once('exit', () => { exited = true; });
    await waitFor(() => exited || /Ready to accept connections/.test(output().stdout),
      { what: 'redis-server', timeout: 10000 });
    if (exited) {
      if (want || attempt >= 5) throw new Error(`redis-server on port ${port} exited: ${output().stdout.slice(-500)}`);
      continue;
    }
    return {
      port, child, output,
      cli(...cmd) {
        return execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...cmd], { encoding: 'utf8' }).trim();
      },
      stop: (sig) => stopChild(child, sig),
    };
  }
}

// ---- postgres (refuses to run as root: run as the postgres user) ----

function pgBin(name) {
  for (const v of ['17', '16', '15', '14']) {
    const p = `/usr/lib/postgresql/${v}/bin/${name}`;
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`PostgreSQL binary ${name} not found`);
}

function asPostgres(args, opts = {}) {
  const asRoot = process.getuid && process.getuid() === 0;
  const cmd = asRoot ? 'runuser' : args[0];
  const a = asRoot ? ['-u', 'postgres', '--', ...args] : args.slice(1);
  return spawnSync(cmd, a, { encoding: 'utf8', ...opts });
}

export async function startPostgres() {
  const dir = tmpDir('mg-pg-');
  fs.chmodSync(dir, 0o777);
  const data = path.join(dir, 'data');
  let port = await freePort();
  let r = asPostgres([pgBin('initdb'), '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  if (r.status !== 0) throw new Error(`initdb failed: ${r.stderr}`);
  const pg = {
    port, dir, data,
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    async start() {
      const res = asPostgres([pgBin('pg_ctl'), '-D', data, '-l', path.join(dir, 'log'), '-w', '-t', '30',
        '-o', `-p ${port} -h 127.0.0.1 -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off`, 'start']);
      if (res.status !== 0) throw new Error(`pg_ctl start failed: ${res.stderr}${res.stdout}`);
    },
    async stop(mode = 'fast') {
      asPostgres([pgBin('pg_ctl'), '-D', data, '-m', mode, '-w', 'stop']);
    },
    psql(sql) {
      const res = asPostgres(['psql', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres',
        '-At', '-c', sql]);
      if (res.status !== 0) throw new Error(`psql failed: ${res.stderr}`);
      return res.stdout.trim();
    },
  };
  // the first start: a port another test's server took since freePort() fails it; try others
  for (let attempt = 1; ; attempt++) {
    try {
      await pg.start();
      break;
    } catch (e) {
      const log = fs.existsSync(path.join(dir, 'log')) ? fs.readFileSync(path.join(dir, 'log'), 'utf8') : '';
      if (attempt >= 5 || !/could not bind|Address already in use/.test(log)) throw e;
      port = await freePort();
      pg.port = port;
      pg.url = `postgresql://postgres@127.0.0.1:${port}/postgres`;
    }
  }
  // stop the server when the test process exits, even on failure
  process.on('exit', () => { asPostgres([pgBin('pg_ctl'), '-D', data, '-m', 'immediate', 'stop']); });
  return pg;
}

/** Runs fn n times with at most `concurrency` in flight; returns the results. */
export async function pool(n, concurrency, fn) {
  const results = new Array(n);
  let next = 0;
  async function worker() {
    while (next < n) {
      const i = next++;
      results[i] = await fn(i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, worker));
  return results;
}
