// tests/mocks/otel_collector.mjs -- a test OpenTelemetry collector: OTLP/HTTP with JSON
// encoding, POST /v1/traces, on 127.0.0.1.
//
// It checks what a real collector would refuse and more (a test double that accepts
// anything proves nothing): the method and path, `content-type: application/json`, that the
// body is an ExportTraceServiceRequest in protobuf's JSON mapping (resourceSpans ->
// resource.attributes + scopeSpans -> scope + spans; ids as lowercase hex of the right
// length and not all zeros, times as decimal strings of nanoseconds with end >= start,
// kind and status codes in range, every attribute value exactly one of stringValue /
// intValue (a decimal string) / doubleValue (a number) / boolValue).  A request that fails a
// check gets 400 and is recorded in `problems`; an accepted one gets 200 `{}` and its spans
// are recorded, flattened, with the request's headers.
//
// Scriptable: script([{status, latency_ms, hang, times}]) answers the next requests with
// an error status, after a delay, or never (until the client gives up); rules are used in
// order and each counts down `times` (default 1).
//
// Use in-process:   const c = await startCollector(); ... c.spans(); await c.stop();
// Or standalone:    node tests/mocks/otel_collector.mjs --port 0 --port-file /tmp/p
//   with GET /__collector/spans, GET /__collector/problems, POST /__collector/script
//   ({"rules":[...]}) and POST /__collector/reset.

import http from 'node:http';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const HEX = /^[0-9a-f]+$/;
const DEC = /^-?[0-9]+$/;

/** Checks one attribute list; returns {key: value} or throws with what is wrong. */
function attrs(list, where) {
  if (list === undefined) return {};
  if (!Array.isArray(list)) throw new Error(`${where}: attributes is not an array`);
  const out = {};
  for (const [i, a] of list.entries()) {
    const w = `${where}.attributes[${i}]`;
    if (typeof a?.key !== 'string' || a.key === '') throw new Error(`${w}: no key`);
    const v = a.value;
    if (v === null || typeof v !== 'object') throw new Error(`${w} (${a.key}): no value object`);
    const kinds = Object.keys(v);
    if (kinds.length !== 1) throw new Error(`${w} (${a.key}): value has ${kinds.length} fields`);
    const [k] = kinds;
    const x = v[k];
    if (k === 'stringValue' && typeof x === 'string') out[a.key] = x;
    else if (k === 'intValue' && typeof x === 'string' && DEC.test(x)) out[a.key] = Number(x);
    else if (k === 'doubleValue' && typeof x === 'number') out[a.key] = x;
    else if (k === 'boolValue' && typeof x === 'boolean') out[a.key] = x;
    else throw new Error(`${w} (${a.key}): ${k} ${JSON.stringify(x)} is not a valid OTLP/JSON value`);
  }
  return out;
}

function id(v, len, where, { optional = false } = {}) {
  if (v === undefined && optional) return null;
  if (typeof v !== 'string' || v.length !== len || !HEX.test(v) || /^0+$/.test(v)) {
    throw new Error(`${where}: ${JSON.stringify(v)} is not ${len} lowercase hex digits (not all zero)`);
  }
  return v;
}

/** Validates an ExportTraceServiceRequest; returns the flattened spans. */
export function checkExport(body) {
  if (body === null || typeof body !== 'object' || !Array.isArray(body.resourceSpans)) {
    throw new Error('resourceSpans is not an array');
  }
  const spans = [];
  for (const [ri, rs] of body.resourceSpans.entries()) {
    const rw = `resourceSpans[${ri}]`;
    const resource = attrs(rs.resource?.attributes, `${rw}.resource`);
    if (!Array.isArray(rs.scopeSpans)) throw new Error(`${rw}: scopeSpans is not an array`);
    for (const [si, ss] of rs.scopeSpans.entries()) {
      const sw = `${rw}.scopeSpans[${si}]`;
      if (ss.scope !== undefined && typeof ss.scope?.name !== 'string') throw new Error(`${sw}: scope.name`);
      if (!Array.isArray(ss.spans)) throw new Error(`${sw}: spans is not an array`);
      for (const [pi, s] of ss.spans.entries()) {
        const w = `${sw}.spans[${pi}]`;
        const traceId = id(s.traceId, 32, `${w}.traceId`);
        const spanId = id(s.spanId, 16, `${w}.spanId`);
        const parentSpanId = id(s.parentSpanId, 16, `${w}.parentSpanId`, { optional: true });
        if (typeof s.name !== 'string' || s.name === '') throw new Error(`${w}: name`);
        if (!Number.isInteger(s.kind) || s.kind < 0 || s.kind > 5) throw new Error(`${w}: kind ${s.kind}`);
        for (const t of ['startTimeUnixNano', 'endTimeUnixNano']) {
          if (typeof s[t] !== 'string' || !/^[0-9]+$/.test(s[t])) throw new Error(`${w}: ${t} is not a decimal string`);
        }
        const start = BigInt(s.startTimeUnixNano);
        const end = BigInt(s.endTimeUnixNano);
        if (end < start) throw new Error(`${w}: ends before it starts`);
        if (s.status !== undefined) {
          if (!Number.isInteger(s.status.code ?? 0) || (s.status.code ?? 0) < 0 || (s.status.code ?? 0) > 2) {
            throw new Error(`${w}: status.code`);
          }
          if (s.status.message !== undefined && typeof s.status.message !== 'string') throw new Error(`${w}: status.message`);
        }
        if (s.flags !== undefined && !Number.isInteger(s.flags)) throw new Error(`${w}: flags`);
        spans.push({
          traceId, spanId, parentSpanId, name: s.name, kind: s.kind,
          start, end, startMs: Number(start / 1000000n), endMs: Number(end / 1000000n),
          flags: s.flags ?? 0,
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          attributes: attrs(s.attributes, w),
          resource, scope: ss.scope?.name ?? null,
        });
      }
    }
  }
  return spans;
}

/**
 * Starts a collector.  Returns {port, url (the endpoint base: OTEL_ENDPOINT), spans(),
 * requests(), problems(), script(rules), reset(), waitSpans(pred, opts), stop()}.
 */
export async function startCollector({ port = 0 } = {}) {
  let spans = [];
  let requests = [];
  let problems = [];
  let rules = [];
  const hanging = new Set();

  function answer(res, status, body) {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  async function onTraces(req, res, raw) {
    const rec = { t: Date.now(), headers: req.headers, status: null, nspans: 0 };
    requests.push(rec);
    const rule = rules.find((r) => (r.times ?? 1) > 0);
    if (rule) rule.times = (rule.times ?? 1) - 1;
    if (rule?.latency_ms) await new Promise((r) => setTimeout(r, rule.latency_ms));
    if (rule?.hang) {
      rec.status = 'hang';
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    const ct = String(req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
    if (ct !== 'application/json') {
      problems.push(`content-type ${JSON.stringify(req.headers['content-type'])}, want application/json`);
      rec.status = 415;
      return answer(res, 415, { code: 3, message: 'want application/json' });
    }
    let got;
    try {
      got = checkExport(JSON.parse(raw));
    } catch (e) {
      problems.push(e.message);
      rec.status = 400;
      return answer(res, 400, { code: 3, message: e.message });
    }
    if (rule?.status && rule.status !== 200) {
      rec.status = rule.status;
      return answer(res, rule.status, { code: 14, message: 'scripted failure' });
    }
    rec.status = 200;
    rec.nspans = got.length;
    for (const s of got) s.headers = req.headers;
    spans.push(...got);
    return answer(res, 200, {});
  }

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const url = new URL(req.url, 'http://x');
      if (url.pathname === '/v1/traces' && req.method === 'POST') {
        onTraces(req, res, raw).catch((e) => { problems.push(String(e)); answer(res, 500, {}); });
      } else if (url.pathname === '/__collector/spans') {
        answer(res, 200, spans.map((s) => ({ ...s, start: String(s.start), end: String(s.end) })));
      } else if (url.pathname === '/__collector/problems') {
        answer(res, 200, problems);
      } else if (url.pathname === '/__collector/script' && req.method === 'POST') {
        rules = JSON.parse(raw || '{}').rules || [];
        answer(res, 200, { ok: true });
      } else if (url.pathname === '/__collector/reset' && req.method === 'POST') {
        spans = []; requests = []; problems = []; rules = [];
        answer(res, 200, { ok: true });
      } else {
        problems.push(`${req.method} ${req.url}: not an OTLP traces request`);
        answer(res, 404, { code: 5, message: 'not found' });
      }
    });
  });
  server.keepAliveTimeout = 30000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const p = server.address().port;
  const c = {
    port: p,
    url: `http://127.0.0.1:${p}`,
    spans: () => spans,
    requests: () => requests,
    problems: () => problems,
    script(list) { rules = list.map((r) => ({ ...r })); },
    reset() { spans = []; requests = []; problems = []; rules = []; },
    /** Polls until pred(spans) is truthy (deadline: timeout ms); returns its value. */
    async waitSpans(pred, { timeout = 15000, what = 'spans' } = {}) {
      const end = Date.now() + timeout;
      for (;;) {
        const v = pred(spans);
        if (v) return v;
        if (Date.now() > end) {
          throw new Error(`timed out after ${timeout}ms waiting for ${what}; have ${spans.length} spans` +
            (problems.length ? `; problems: ${problems.join(' | ')}` : ''));
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async stop() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
    },
  };
  return c;
}

// ---- standalone ----
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : dflt;
  };
  const c = await startCollector({ port: parseInt(opt('--port', '0'), 10) });
  const pf = opt('--port-file', null);
  if (pf) {
    fs.writeFileSync(`${pf}.tmp`, `${c.port}\n`);
    fs.renameSync(`${pf}.tmp`, pf);
  }
  process.stdout.write(`otel collector listening on 127.0.0.1:${c.port}\n`);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => c.stop().then(() => process.exit(0)));
}
