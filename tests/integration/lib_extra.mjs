// tests/integration/lib_extra.mjs -- helpers the integration tests need on top
// of tests/lib/harness.mjs: a raw HTTP/1.x client that controls every byte on
// the wire, a response parser, moongate started without the harness's fixed
// flags (to test env vars), TLS material made with openssl, and /proc readers.
//
// Every process started here is killed when the test process exits; every wait
// is a poll with a deadline.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { moongateBin, tmpDir, waitFor } from '../lib/harness.mjs';


const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
  }
});

export function trackChild(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

// ---- raw HTTP/1.x client ----

/**
 * One TCP connection.  send() writes raw bytes; response() parses the next
 * response from what has arrived (1xx interim responses are returned as
 * responses too, with interim: true).  closed() resolves when the server
 * closed the connection (FIN or RST).
 */
export class RawConn {
  constructor(port, host = '127.0.0.1') {
    this.port = port;
    this.chunks = []; // received, not yet consumed; joined lazily (big streams stay linear)
    this.ended = false;
    this.error = null;
    this.waiters = [];
    this.bytesIn = 0;
    this.sock = net.connect(port, host);
    this.sock.setNoDelay(true);
    this.sock.on('data', (d) => {
      this.chunks.push(d);
      this.bytesIn += d.length;
      this.wake();
    });
    this.sock.on('end', () => { this.ended = true; this.wake(); });
    this.sock.on('close', () => { this.ended = true; this.wake(); });
    this.sock.on('error', (e) => { this.error = e; this.ended = true; this.wake(); });
  }

  /** Everything received and not yet consumed, as one Buffer. */
  get buf() {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] || Buffer.alloc(0);
  }

  set buf(b) { this.chunks = b.length ? [b] : []; }

  /** Does the received data end with s?  (Cheap: looks at the last chunks only.) */
  endsWith(s) {
    const want = Buffer.from(s, 'latin1');
    const tail = [];
    let n = 0;
    for (let i = this.chunks.length - 1; i >= 0 && n < want.length; i--) {
      tail.unshift(this.chunks[i]);
      n += this.chunks[i].length;
    }
    const t = Buffer.concat(tail);
    return t.length >= want.length && t.subarray(t.length - want.length).equals(want);
  }

  wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves on the next data/close event, or after ms. */
  changed(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.waiters.push(() => { clearTimeout(t); resolve(); });
    });
  }

  connected() {
    if (this.sock.readyState === 'open') return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.sock.once('connect', resolve);
      this.sock.once('error', reject);
    });
  }

  send(data) {
    return new Promise((resolve, reject) => {
      this.sock.write(data, (e) => (e ? reject(e) : resolve()));
    });
  }

  /** Waits until pred(buf) is true or the deadline passes. */
  async until(pred, timeout = 5000, what = 'data') {
    const end = Date.now() + timeout;
    const test = () => (pred.length === 0 ? pred() : pred(this.buf)); // no-arg preds skip the join
    for (;;) {
      if (test()) return;
      if (this.ended) {
        if (test()) return;
        throw new Error(`connection closed while waiting for ${what} (have ${this.buf.length} bytes: ` +
          `${JSON.stringify(this.buf.toString('latin1').slice(0, 300))})` +
          (this.error ? ` error ${this.error.code}` : ''));
      }
      const left = end - Date.now();
      if (left <= 0) {
        throw new Error(`timed out after ${timeout}ms waiting for ${what} (have ${this.buf.length} bytes: ` +
          `${JSON.stringify(this.buf.toString('latin1').slice(0, 300))})`);
      }
      await this.changed(left);
    }
  }

  /**
   * Parses and consumes the next response.  opts.head: the request was HEAD
   * (no body).  Throws if none arrives within opts.timeout.
   */
  async response({ head = false, timeout = 10000 } = {}) {
    let parsed = null;
    await this.until((b) => {
      parsed = parseResponse(b, { head, eof: this.ended });
      return parsed !== null;
    }, timeout, 'a response');
    this.buf = this.buf.subarray(parsed.consumed);
    return parsed;
  }

  /** Resolves true once the server has closed the connection (within timeout), else false. */
  async closed(timeout = 5000) {
    const end = Date.now() + timeout;
    while (!this.ended && Date.now() < end) await this.changed(end - Date.now());
    return this.ended;
  }

  pause() { this.sock.pause(); }
  resume() { this.sock.resume(); }
  destroy() { this.sock.destroy(); }
}

/** Opens a RawConn and waits for the TCP connection. */
export async function rawConnect(port) {
  const c = new RawConn(port);
  await c.connected();
  return c;
}

/** Builds a request: head lines joined with CRLF, then the body. */
export function rawRequest(method, target, headers = {}, body = null, version = '1.1') {
  let h = `${method} ${target} HTTP/${version}\r\n`;
  const hs = Array.isArray(headers) ? headers : Object.entries(headers);
  let haveHost = false;
  for (const [k, v] of hs) {
    if (k.toLowerCase() === 'host') haveHost = true;
    h += `${k}: ${v}\r\n`;
  }
  if (!haveHost) h = h.replace('\r\n', '\r\nHost: 127.0.0.1\r\n');
  h += '\r\n';
  return body == null ? Buffer.from(h, 'latin1') : Buffer.concat([Buffer.from(h, 'latin1'), Buffer.from(body)]);
}

/** A JSON POST with Content-Length (and the bearer key when given). */
export function rawJsonPost(target, obj, { key, headers = {}, version = '1.1' } = {}) {
  const body = Buffer.from(typeof obj === 'string' ? obj : JSON.stringify(obj));
  const h = { 'Content-Type': 'application/json', 'Content-Length': String(body.length), ...headers };
  if (key) h.Authorization = `Bearer ${key}`;
  return rawRequest('POST', target, h, body, version);
}

/**
 * Parses one HTTP/1.x response at the start of buf.  Returns null if more
 * bytes are needed, else {status, version, headers (lower-case name -> last
 * value), headerList, interim, body (Buffer, de-chunked), rawBody, chunked,
 * consumed}.
 */
export function parseResponse(buf, { head = false, eof = false } = {}) {
  const he = buf.indexOf('\r\n\r\n');
  if (he < 0) return null;
  const headText = buf.subarray(0, he).toString('latin1');
  const lines = headText.split('\r\n');
  const m = /^HTTP\/1\.(\d) (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (!m) throw new Error(`bad status line ${JSON.stringify(lines[0])}`);
  const status = parseInt(m[2], 10);
  const headers = {};
  const headerList = [];
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    const k = l.slice(0, i).trim().toLowerCase();
    const v = l.slice(i + 1).trim();
    headers[k] = v;
    headerList.push([k, v]);
  }
  const res = { status, version: `1.${m[1]}`, headers, headerList, interim: status >= 100 && status < 200 };
  let p = he + 4;
  if (res.interim || head || status === 204 || status === 304) {
    return { ...res, body: Buffer.alloc(0), rawBody: Buffer.alloc(0), chunked: false, consumed: p };
  }
  if ((headers['transfer-encoding'] || '').toLowerCase() === 'chunked') {
    const parts = [];
    const start = p;
    for (;;) {
      const le = buf.indexOf('\r\n', p);
      if (le < 0) return null;
      const size = parseInt(buf.subarray(p, le).toString('latin1').split(';')[0], 16);
      if (Number.isNaN(size)) throw new Error('bad chunk size');
      p = le + 2;
      if (size === 0) {
        // trailers until an empty line
        for (;;) {
          const te = buf.indexOf('\r\n', p);
          if (te < 0) return null;
          const empty = te === p;
          p = te + 2;
          if (empty) break;
        }
        break;
      }
      if (buf.length < p + size + 2) return null;
      parts.push(buf.subarray(p, p + size));
      p += size + 2;
    }
    return { ...res, body: Buffer.concat(parts), rawBody: buf.subarray(start, p), chunked: true, consumed: p };
  }
  if (headers['content-length'] !== undefined) {
    const n = parseInt(headers['content-length'], 10);
    if (buf.length < p + n) return null;
    const body = buf.subarray(p, p + n);
    return { ...res, body, rawBody: body, chunked: false, consumed: p + n };
  }
  // delimited by close
  if (!eof) return null;
  const body = buf.subarray(p);
  return { ...res, body, rawBody: body, chunked: false, consumed: buf.length };
}

/** Data payloads of the SSE frames in text ("data: x\n\n"), in order. */
export function sseData(text) {
  const out = [];
  for (const ev of text.split(/\n\n/)) {
    for (const line of ev.split('\n')) {
      if (line.startsWith('data: ')) out.push(line.slice(6));
      else if (line.startsWith('data:')) out.push(line.slice(5));
    }
  }
  return out;
}

// ---- moongate without the harness's fixed flags ----

/**
 * Runs moongate with exactly these args and env (plus PATH) and waits for it
 * to exit (bounded).  Returns {code, signal, stdout, stderr}.
 */
export function runMoongateSync(args, { env = {}, timeout = 10000, cwd } = {}) {
  const r = spawnSync(moongateBin, args, {
    encoding: 'utf8', timeout, cwd,
    env: { PATH: process.env.PATH, LITELLM_LOG: 'WARNING', ...env },
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout || '', stderr: r.stderr || '' };
}

/**
 * Starts moongate with exactly these args and env; resolves once it prints its
 * listening line (or rejects if it exits first).
 */
export async function spawnMoongate(args, { env = {}, cwd, timeout = 15000 } = {}) {
  const child = trackChild(spawn(moongateBin, args, {
    cwd, stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, LITELLM_LOG: 'WARNING', ...env },
  }));
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((r) => child.once('exit', (code, sig) => r({ code, sig })));
  const port = await Promise.race([
    waitFor(() => {
      const m = /moongate: listening on ([^:\s]+):(\d+)/.exec(out);
      return m && { host: m[1], port: parseInt(m[2], 10) };
    }, { what: 'moongate to listen', timeout }),
    exited.then(({ code, sig }) => { throw new Error(`moongate exited early (${code}/${sig}): ${err}`); }),
  ]);
  return {
    child, exited, ...port,
    url: `http://127.0.0.1:${port.port}`,
    output: () => ({ stdout: out, stderr: err }),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } }, 15000);
      await exited;
      clearTimeout(t);
    },
  };
}

// ---- /proc ----

/** VmRSS of pid in KiB, or null if the process is gone. */
export function rssKiB(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(s);
    return m ? parseInt(m[1], 10) : null;
  } catch { return null; }
}

export function pidAlive(pid) {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/**
 * Send (tx) and receive (rx) queue bytes of the TCP sockets on 127.0.0.1
 * whose local port is localPort, from /proc/net/tcp (IPv4).
 */
export function tcpQueues(localPort) {
  const out = [];
  const txt = fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1);
  for (const l of txt) {
    const f = l.trim().split(/\s+/);
    if (f.length < 5) continue;
    const [, lport] = f[1].split(':');
    const [, rport] = f[2].split(':');
    if (parseInt(lport, 16) !== localPort) continue;
    const [tx, rx] = f[4].split(':').map((h) => parseInt(h, 16));
    out.push({ remotePort: parseInt(rport, 16), state: f[3], tx, rx });
  }
  return out;
}

// ---- TLS material ----

function openssl(args, cwd) {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: 30000 });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
}

/** A CA (ca.pem/ca.key) in a fresh temp dir. */
export function makeCA(name = 'moongate test CA') {
  const dir = tmpDir('mg-ca-');
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  return { dir, cert: path.join(dir, 'ca.pem'), key: path.join(dir, 'ca.key') };
}

/** A server certificate for the given subjectAltName (e.g. "DNS:localhost,IP:127.0.0.1"), signed by ca. */
export function makeServerCert(ca, san, name = 'server') {
  const dir = ca.dir;
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`,
    '-subj', `/CN=${name}`], dir);
  fs.writeFileSync(path.join(dir, `${name}.ext`),
    `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`], dir);
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
}

/** GET over HTTPS trusting ca (for a TLS mock's control endpoints). */
export function httpsGetJson(url, caPem) {
  return new Promise((resolve, reject) => {
    // the CA is checked; the name is not (this is the control plane of a mock whose
    // certificate may deliberately carry the wrong name)
    const req = https.get(url, {
      ca: fs.readFileSync(caPem), servername: 'localhost', agent: false, checkServerIdentity: () => undefined,
    }, (res) => {
      let d = '';
      res.on('data', (c) => { d += c; });
      res.on('end', () => { try { resolve(JSON.parse(d)); } catch (e) { reject(e); } });
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
  });
}

// ---- misc ----

/** A TCP listener whose accept queue is full, so new connects hang (SYNs dropped). */
export async function startBlackhole() {
  const py = [
    'import socket,sys,time',
    's=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
    "s.bind(('127.0.0.1',0)); s.listen(0)",
    'print(s.getsockname()[1], flush=True)',
    'time.sleep(120)',
  ].join('\n');
  const child = trackChild(spawn('python3', ['-c', py], { stdio: ['ignore', 'pipe', 'inherit'] }));
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const port = await waitFor(() => /^\d+\n/.test(out) && parseInt(out, 10), { what: 'blackhole port' });
  // fill the accept queue: these connections complete the handshake and are never accepted
  const fillers = [];
  let connected = 0;
  for (let i = 0; i < 4; i++) {
    const s = net.connect(port, '127.0.0.1', () => { connected++; });
    s.on('error', () => {});
    fillers.push(s);
  }
  await waitFor(() => connected >= 1, { what: 'the blackhole accept queue to fill' });
  return {
    port,
    stop() {
      for (const s of fillers) s.destroy();
      try { child.kill('SIGKILL'); } catch { /* gone */ }
    },
  };
}

/** fetch() that never throws: {status, headers, text, json} or {error}. */
export async function tryFetch(url, opts = {}) {
  try {
    const r = await fetch(url, opts);
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: r.status, headers: r.headers, text, json };
  } catch (e) {
    return { error: e };
  }
}
