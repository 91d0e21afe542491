// tests/mocks/google_common.mjs -- what the Google mocks share (gemini_mock.mjs,
// vertex_mock.mjs, google_token_mock.mjs): the command line, the HTTP server with the
// control API of tests/mocks/README.md (/__mock/script, /__mock/log, /__mock/stats,
// /__mock/reset, /__mock/health), scripted rules and behaviours (latency, stream cadence,
// errors, resets, hangs), the request log, and Gemini's generateContent wire: request checks
// the way Google's API words its refusals, and answers in Google's documented shapes
// (GenerateContentResponse, SSE chunks for alt=sse, BatchEmbedContentsResponse, Vertex's
// PredictResponse, the google.rpc.Status error envelope).  Node 20, built-in modules only.

import http from 'node:http';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { parseArgs } from 'node:util';

export const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
export const has = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

// ---- command line ----

export function commandLine(name, extra = {}) {
  const usage = `usage: ${name} [--host 127.0.0.1] [--port N] [--port-file PATH] [--log PATH] ` +
    `[--exit-on-eof] [--quiet] [--verbose]${Object.keys(extra).map((k) => ` [--${k} ...]`).join('')}`;
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '0' },
        'port-file': { type: 'string' },
        log: { type: 'string' },
        'exit-on-eof': { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        ...extra,
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    process.stderr.write(`${name}: ${e.message}\n${usage}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  if (!/^\d+$/.test(values.port) || Number(values.port) > 65535) {
    process.stderr.write(`${name}: --port must be an integer in [0, 65535]\n`);
    process.exit(2);
  }
  return values;
}

// ---- errors in Google's envelope ----

export const STATUS_NAMES = {
  400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND',
  409: 'ABORTED', 429: 'RESOURCE_EXHAUSTED', 499: 'CANCELLED', 500: 'INTERNAL', 501: 'NOT_IMPLEMENTED',
  503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED',
};
const DEFAULT_MESSAGES = {
  400: 'Request contains an invalid argument.',
  401: 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
  403: 'The caller does not have permission',
  404: 'Requested entity was not found.',
  429: 'Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.',
  500: 'Internal error encountered.',
  503: 'The service is currently unavailable.',
  504: 'Deadline expired before operation could complete.',
};

export class GoogleError extends Error {
  constructor(code, message, status, details) {
    super(message);
    this.code = code;
    this.status = status || STATUS_NAMES[code] || (code >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT');
    this.details = details;
  }
  body() {
    const e = { code: this.code, message: this.message, status: this.status };
    if (this.details) e.details = this.details;
    return { error: e };
  }
}
export const invalid = (msg) => new GoogleError(400, msg);

// ---- the mock server: control API, rules, log ----

/**
 * Creates a mock.  spec: { name, opts (commandLine values), route(ctx) -> {kind, ...} for
 * provider requests, matchFields(entry) extra rule-match values, behaviourFields (allowed
 * keys of a behaviour), onScript(body) for mock-specific script members, extraControl(req,
 * res, url) -> bool for mock-specific control endpoints, stats() extra stats }.
 * route(ctx) is called with { req, url, body (parsed JSON or string), raw, entry } and
 * returns a promise of nothing: it answers through ctx helpers (see handle()).
 */
export function createMock(spec) {
  const opts = spec.opts;
  const G = {
    seq: 0, requests: 0, inProgress: 0, connectionsTotal: 0, openAll: 0, acceptedTotal: 0,
    log: [], rules: [], def: null, active: new Set(), shuttingDown: false,
    logFile: opts.log ? fs.createWriteStream(opts.log, { flags: 'a' }) : null,
  };
  const say = (s) => { if (!opts.quiet) process.stderr.write(`${spec.name}: ${s}\n`); };

  function checkBehaviour(b, where) {
    if (!isObj(b)) throw invalid(`${where}: a behaviour must be an object`);
    for (const k of Object.keys(b)) {
      if (!spec.behaviourFields.includes(k)) throw invalid(`${where}: unknown behaviour field "${k}"`);
    }
  }

  function pickBehaviour(entry) {
    for (let i = 0; i < G.rules.length; i++) {
      const r = G.rules[i];
      if (r.remaining === 0) continue;
      const m = r.match || {};
      let ok = true;
      for (const [k, v] of Object.entries(m)) {
        if (k === 'headers') {
          for (const [hk, hv] of Object.entries(v)) if (entry.headers[hk.toLowerCase()] !== hv) ok = false;
        } else if (k === 'path') {
          if (entry.path !== v && entry.path.split('?')[0] !== v) ok = false;
        } else if (entry.match[k] !== v) {
          ok = false;
        }
      }
      if (!ok) continue;
      if (r.remaining > 0) r.remaining--;
      r.hits++;
      return { b: r.respond, source: 'rule', index: i, id: r.respond.id ?? null };
    }
    if (G.def) return { b: G.def, source: 'script_default', index: null, id: G.def.id ?? null };
    return { b: {}, source: 'default', index: null, id: null };
  }

  function finishEntry(entry, outcome) {
    if (entry.outcome !== 'in_progress') return;
    entry.outcome = outcome;
    entry.t_end_ms = Date.now();
    G.inProgress--;
    if (G.logFile) G.logFile.write(`${JSON.stringify(entry)}\n`);
    if (opts.verbose) say(`${entry.method} ${entry.path} -> ${entry.status} ${outcome}`);
  }

  async function readBody(req) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    return Buffer.concat(chunks);
  }

  function sendJson(res, status, obj, headers = {}) {
    const data = Buffer.from(JSON.stringify(obj));
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': data.length, ...headers });
    res.end(data);
  }

  async function control(req, res, url) {
    const p = url.pathname;
    if (p === '/__mock/health') return sendJson(res, 200, { ok: true });
    if (p === '/__mock/log') {
      const since = Number(url.searchParams.get('since') || 0);
      const limit = Number(url.searchParams.get('limit') || 1e9);
      const entries = G.log.filter((e) => e.seq > since).slice(0, limit);
      return sendJson(res, 200, { last_seq: G.seq, entries });
    }
    if (p === '/__mock/stats') {
      return sendJson(res, 200, {
        requests: G.requests, in_progress: G.inProgress, last_seq: G.seq, log_entries: G.log.length,
        rules: G.rules.length, open_connections_all: G.openAll, accepted_total: G.acceptedTotal,
        ...(spec.stats ? spec.stats() : {}),
      });
    }
    if (p === '/__mock/reset' && req.method === 'POST') {
      G.seq = 0; G.requests = 0; G.log = []; G.rules = []; G.def = null; G.acceptedTotal = 0;
      if (spec.onReset) spec.onReset();
      return sendJson(res, 200, { ok: true });
    }
    if (p === '/__mock/script') {
      if (req.method === 'GET') {
        return sendJson(res, 200, { rules: G.rules, default: G.def });
      }
      let body;
      try { body = JSON.parse((await readBody(req)).toString('utf8')); } catch { return sendJson(res, 400, { error: 'script is not JSON' }); }
      try {
        if (!isObj(body)) throw invalid('script must be an object');
        const rules = body.rules ?? [];
        if (!Array.isArray(rules)) throw invalid('rules must be a list');
        const built = rules.map((r, i) => {
          if (!isObj(r) || !isObj(r.respond ?? {})) throw invalid(`rules.${i}: {match, times, respond}`);
          checkBehaviour(r.respond ?? {}, `rules.${i}.respond`);
          return { match: r.match || {}, remaining: r.times ?? -1, hits: 0, respond: r.respond ?? {} };
        });
        if (body.default !== undefined) checkBehaviour(body.default, 'default');
        if (spec.onScript) spec.onScript(body);
        if (body.append) G.rules.push(...built); else G.rules = built;
        if (body.default !== undefined) G.def = body.default;
        else if (!body.append) G.def = null;
      } catch (e) {
        return sendJson(res, 400, { error: e.message });
      }
      return sendJson(res, 200, { ok: true, rules: G.rules.length });
    }
    if (spec.extraControl && await spec.extraControl(req, res, url, { readBody, sendJson })) return undefined;
    return sendJson(res, 404, { error: `unknown control endpoint ${p}` });
  }

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://mock');
    if (url.pathname.startsWith('/__mock/')) {
      control(req, res, url).catch((e) => { try { sendJson(res, 500, { error: e.message }); } catch { /* gone */ } });
      return;
    }
    const raw = await readBody(req).catch(() => null);
    if (raw === null) return;
    G.requests++;
    const text = raw.toString('utf8');
    let body = null;
    if (raw.length) {
      try { body = JSON.parse(text); } catch { body = text; }
    }
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = v;
    const entry = {
      seq: ++G.seq, t_start_ms: Date.now(), t_end_ms: null, method: req.method, path: req.url,
      headers, body, status: null, outcome: 'in_progress', conn_id: req.socket.mgId,
      behaviour_source: null, behaviour_id: null, rule_index: null, chunks_sent: 0, check_error: null,
      match: {},
    };
    G.log.push(entry);
    if (G.log.length > 100000) G.log.shift();
    G.inProgress++;
    const ctx = makeCtx(req, res, url, body, text, entry);
    res.on('close', () => {
      if (entry.outcome === 'in_progress') {
        ctx.cancelTimers();
        finishEntry(entry, ctx.hanging ? 'hang_closed' : (res.writableFinished ? 'complete' : 'client_closed'));
      }
    });
    try {
      await spec.route(ctx);
    } catch (e) {
      if (!res.headersSent) {
        const ge = e instanceof GoogleError ? e : new GoogleError(500, `mock failure: ${e.message}`);
        if (!(e instanceof GoogleError)) say(e.stack);
        ctx.error(ge);
      }
    }
  });

  function makeCtx(req, res, url, body, text, entry) {
    const timers = new Set();
    const ctx = {
      req, res, url, body, text, entry, hanging: false,
      sleep(ms) {
        if (!ms) return Promise.resolve();
        return new Promise((resolve) => {
          const t = setTimeout(() => { timers.delete(t); resolve(); }, ms);
          timers.add(t);
        });
      },
      cancelTimers() { for (const t of timers) clearTimeout(t); timers.clear(); },
      gone() { return res.destroyed || res.writableEnded; },
      behaviour() {
        const pick = pickBehaviour(entry);
        entry.behaviour_source = pick.source;
        entry.behaviour_id = pick.id;
        entry.rule_index = pick.index;
        return pick.b;
      },
      /** Sends a JSON answer. */
      json(status, obj, headers = {}) {
        entry.status = status;
        sendJson(res, status, obj, headers);
        finishEntry(entry, 'complete');
      },
      error(ge, headers = {}) {
        entry.status = ge.code;
        if (!entry.check_error && ge.code === 400) entry.check_error = ge.message;
        sendJson(res, ge.code, ge.body(), headers);
        finishEntry(entry, 'complete');
      },
      /** RST the connection now. */
      reset() {
        entry.status = null;
        finishEntry(entry, 'reset');
        const s = req.socket;
        try { s.resetAndDestroy(); } catch { s.destroy(); }
      },
      hang() { ctx.hanging = true; },
      /** Starts an SSE answer. */
      sseStart(headers = {}) {
        entry.status = 200;
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...headers });
        res.flushHeaders();
      },
      sse(data, event) {
        if (ctx.gone()) return;
        const payload = typeof data === 'string' ? data : JSON.stringify(data);
        res.write(`${event ? `event: ${event}\n` : ''}data: ${payload}\r\n\r\n`);
        entry.chunks_sent++;
      },
      sseEnd() {
        if (!ctx.gone()) res.end();
        finishEntry(entry, 'complete');
      },
    };
    return ctx;
  }

  let connId = 0;
  server.on('connection', (s) => {
    s.mgId = ++connId;
    G.openAll++;
    G.acceptedTotal++;
    G.connectionsTotal++;
    G.active.add(s);
    s.on('close', () => { G.openAll--; G.active.delete(s); });
  });
  server.keepAliveTimeout = 30000;

  function shutdown() {
    if (G.shuttingDown) return;
    G.shuttingDown = true;
    for (const e of G.log) if (e.outcome === 'in_progress') finishEntry(e, 'shutdown');
    server.close();
    for (const s of G.active) s.destroy();
    if (G.logFile) G.logFile.end();
    setTimeout(() => process.exit(0), 50).unref();
  }
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  if (opts['exit-on-eof']) {
    process.stdin.on('end', shutdown);
    process.stdin.on('error', shutdown);
    process.stdin.resume();
  }

  server.listen(Number(opts.port), opts.host, () => {
    const { port } = server.address();
    if (opts['port-file']) {
      const tmp = `${opts['port-file']}.tmp.${process.pid}`;
      fs.writeFileSync(tmp, `${port}\n`);
      fs.renameSync(tmp, opts['port-file']);
    }
    process.stdout.write(`mock listening on ${opts.host}:${port}\n`);
  });
  return { G, server, say };
}

// ---- behaviours common to the provider mocks ----

export const COMMON_BEHAVIOURS = [
  'id', 'status', 'error_message', 'error_status', 'retry_after', 'latency_ms', 'reset_before_response',
  'hang', 'body', 'headers', 'checks',
];
export const GEMINI_BEHAVIOURS = [
  ...COMMON_BEHAVIOURS, 'content', 'chunks', 'first_chunk_delay_ms', 'chunk_interval_ms',
  'reset_after_chunks', 'hang_after_chunks', 'finish_reason', 'function_call', 'thought', 'usage',
  'block_reason', 'frames', 'candidates', 'stream_error_after_chunks',
];

/** Applies latency, reset, hang, a raw body or an error; true when it answered. */
export async function commonBehaviour(ctx, b) {
  if (b.latency_ms) await ctx.sleep(b.latency_ms);
  if (ctx.gone()) return true;
  if (b.reset_before_response) { ctx.reset(); return true; }
  if (b.hang) { ctx.hang(); return true; }
  const headers = { ...(b.headers || {}) };
  if (b.retry_after !== undefined) headers['retry-after'] = String(b.retry_after);
  if (b.body !== undefined) {
    ctx.json(b.status ?? 200, b.body, headers);
    return true;
  }
  if (b.status && b.status !== 200) {
    const code = b.status;
    ctx.error(new GoogleError(code, b.error_message ?? DEFAULT_MESSAGES[code] ?? 'Error', b.error_status), headers);
    return true;
  }
  return false;
}

// ---- Gemini requests ----

const PART_DATA = ['text', 'inlineData', 'inline_data', 'fileData', 'file_data', 'functionCall', 'function_call',
  'functionResponse', 'function_response', 'executableCode', 'codeExecutionResult'];
const PART_META = ['thought', 'thoughtSignature', 'thought_signature', 'videoMetadata', 'mediaResolution', 'media_resolution'];
const GEN_CONFIG = ['temperature', 'topP', 'topK', 'candidateCount', 'maxOutputTokens', 'stopSequences', 'seed',
  'presencePenalty', 'frequencyPenalty', 'responseMimeType', 'responseSchema', 'responseJsonSchema', 'responseLogprobs',
  'logprobs', 'responseModalities', 'thinkingConfig', 'speechConfig', 'mediaResolution'];
const TOP_LEVEL = ['contents', 'systemInstruction', 'system_instruction', 'tools', 'toolConfig', 'tool_config',
  'safetySettings', 'safety_settings', 'generationConfig', 'generation_config', 'cachedContent', 'labels'];

const camel = (s) => s.replace(/_([a-z])/g, (_, c) => c.toUpperCase());

function checkParts(parts, p) {
  if (!Array.isArray(parts) || parts.length === 0) throw invalid(`* GenerateContentRequest.${p}.parts: contents.parts must not be empty.`);
  parts.forEach((part, i) => {
    if (!isObj(part)) throw invalid(`Invalid value at '${p}.parts[${i}]': a Part must be an object`);
    for (const k of Object.keys(part)) {
      if (!PART_DATA.includes(k) && !PART_META.includes(k)) throw invalid(`Invalid JSON payload received. Unknown name "${k}" at '${p}.parts[${i}]': Cannot find field.`);
    }
    const data = Object.keys(part).filter((k) => PART_DATA.includes(k));
    if (data.length !== 1) throw invalid(`* GenerateContentRequest.${p}.parts[${i}].data: required oneof field 'data' must have one initialized field`);
    const k = camel(data[0]);
    const v = part[data[0]];
    if (k === 'text' && typeof v !== 'string') throw invalid(`Invalid value at '${p}.parts[${i}].text' (TYPE_STRING)`);
    if (k === 'inlineData') {
      const mime = v.mimeType ?? v.mime_type;
      if (typeof mime !== 'string' || typeof v.data !== 'string') throw invalid(`* GenerateContentRequest.${p}.parts[${i}].inline_data: mime_type and data are required`);
      if (!/^[A-Za-z0-9+/=_-]*$/.test(v.data)) throw invalid(`Invalid value at '${p}.parts[${i}].inline_data.data' (TYPE_BYTES), Base64 decoding failed`);
    }
    if (k === 'fileData' && typeof (v.fileUri ?? v.file_uri) !== 'string') throw invalid(`* GenerateContentRequest.${p}.parts[${i}].file_data.file_uri: file_uri is required`);
    if (k === 'functionCall' && (typeof v.name !== 'string' || (v.args !== undefined && !isObj(v.args)))) throw invalid(`* GenerateContentRequest.${p}.parts[${i}].function_call: name is required, args must be an object`);
    if (k === 'functionResponse' && (typeof v.name !== 'string' || !isObj(v.response))) throw invalid(`* GenerateContentRequest.${p}.parts[${i}].function_response.name: Name cannot be empty.`);
  });
}

/** Checks a generateContent body the way Google's API refuses one; returns the summary. */
export function checkGenerateContent(body) {
  if (!isObj(body)) throw invalid('Invalid JSON payload received. Expected an object.');
  for (const k of Object.keys(body)) {
    if (!TOP_LEVEL.includes(k)) throw invalid(`Invalid JSON payload received. Unknown name "${k}": Cannot find field.`);
  }
  if (!Array.isArray(body.contents) || body.contents.length === 0) throw invalid('* GenerateContentRequest.contents: contents is not specified');
  body.contents.forEach((c, i) => {
    if (!isObj(c)) throw invalid(`Invalid value at 'contents[${i}]'`);
    if (c.role !== undefined && c.role !== 'user' && c.role !== 'model') throw invalid(`Please use a valid role: user, model.`);
    checkParts(c.parts, `contents[${i}]`);
  });
  const sys = body.systemInstruction ?? body.system_instruction;
  if (sys !== undefined) checkParts(sys.parts, 'system_instruction');
  const gc = body.generationConfig ?? body.generation_config;
  if (gc !== undefined) {
    if (!isObj(gc)) throw invalid("Invalid value at 'generation_config'");
    for (const k of Object.keys(gc)) {
      if (!GEN_CONFIG.includes(camel(k))) throw invalid(`Invalid JSON payload received. Unknown name "${k}" at 'generation_config': Cannot find field.`);
    }
  }
  const tools = body.tools;
  const decls = [];
  if (tools !== undefined) {
    if (!Array.isArray(tools)) throw invalid("Invalid value at 'tools'");
    for (const t of tools) {
      for (const d of t.functionDeclarations ?? t.function_declarations ?? []) {
        if (typeof d.name !== 'string' || !/^[a-zA-Z_][a-zA-Z0-9_.-]{0,63}$/.test(d.name)) throw invalid(`* GenerateContentRequest.tools[0].function_declarations: name must be a valid identifier`);
        if (d.parameters !== undefined) checkSchema(d.parameters, `tools[0].function_declarations.parameters`);
        decls.push(d.name);
      }
    }
  }
  const tc = body.toolConfig ?? body.tool_config;
  const mode = tc?.functionCallingConfig?.mode ?? tc?.function_calling_config?.mode ?? null;
  const allowed = tc?.functionCallingConfig?.allowedFunctionNames ?? tc?.function_calling_config?.allowed_function_names ?? null;
  if (mode !== null && !['AUTO', 'ANY', 'NONE', 'VALIDATED', 'MODE_UNSPECIFIED'].includes(mode)) throw invalid(`Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), "${mode}"`);
  if (gc?.responseSchema !== undefined) checkSchema(gc.responseSchema, 'generation_config.response_schema');
  return { decls, mode, allowed, gc: gc || {} };
}

const SCHEMA_FIELDS = ['type', 'format', 'title', 'description', 'nullable', 'enum', 'maxItems', 'minItems', 'properties',
  'required', 'minProperties', 'maxProperties', 'minLength', 'maxLength', 'pattern', 'example', 'anyOf',
  'propertyOrdering', 'default', 'items', 'minimum', 'maximum'];
function checkSchema(s, p, depth = 0) {
  if (depth > 40 || !isObj(s)) return;
  for (const k of Object.keys(s)) {
    if (!SCHEMA_FIELDS.includes(k)) throw invalid(`Invalid JSON payload received. Unknown name "${k}" at '${p}': Cannot find field.`);
  }
  for (const v of Object.values(s.properties || {})) checkSchema(v, `${p}.properties`, depth + 1);
  if (s.items) checkSchema(s.items, `${p}.items`, depth + 1);
  for (const v of s.anyOf || []) checkSchema(v, `${p}.any_of`, depth + 1);
}

// ---- Gemini answers ----

const words = (s) => s.match(/\S+\s*/g) || [];
function promptTokens(body) {
  const n = Math.ceil(JSON.stringify(body?.contents ?? body ?? '').length / 4);
  return Math.max(1, n);
}

/** The parts and finish reason a behaviour asks for. */
function answerParts(b, model, summary) {
  const parts = [];
  if (b.thought) parts.push({ text: b.thought, thought: true });
  let fc = b.function_call;
  if (!fc && summary && summary.mode === 'ANY' && summary.decls.length) {
    fc = { name: summary.allowed?.[0] ?? summary.decls[0], args: {} };
  }
  if (fc) parts.push({ functionCall: { name: fc.name, args: fc.args ?? {} } });
  else parts.push({ text: b.content ?? `mock reply from ${model}` });
  return parts;
}

function usageOf(body, parts, b) {
  const prompt = promptTokens(body);
  const text = parts.filter((p) => !p.thought && p.text).map((p) => p.text).join('');
  const thoughts = parts.filter((p) => p.thought).map((p) => words(p.text).length).reduce((a, c) => a + c, 0);
  const cand = Math.max(1, words(text).length + parts.filter((p) => p.functionCall).length * 5);
  const u = { promptTokenCount: prompt, candidatesTokenCount: cand, totalTokenCount: prompt + cand + thoughts };
  if (thoughts) u.thoughtsTokenCount = thoughts;
  return { ...u, ...(b.usage || {}) };
}

/** Answers a generateContent (stream: an alt=sse stream) for model. */
export async function answerGemini(ctx, b, model, stream, summary) {
  const body = ctx.body;
  const responseId = `mock-${ctx.entry.seq}`;
  const modelVersion = `${model}-mock-001`;
  if (b.block_reason) {
    const r = { promptFeedback: { blockReason: b.block_reason }, usageMetadata: { promptTokenCount: promptTokens(body), totalTokenCount: promptTokens(body) }, modelVersion, responseId };
    if (stream) { ctx.sseStart(); ctx.sse(r); ctx.sseEnd(); } else ctx.json(200, r);
    return;
  }
  const parts = answerParts(b, model, summary);
  const usage = usageOf(body, parts, b);
  const finishReason = b.finish_reason ?? 'STOP';
  const count = summary?.gc?.candidateCount ?? 1;
  if (!stream) {
    const candidates = b.candidates ?? Array.from({ length: count }, (_, i) => ({
      content: { parts, role: 'model' }, finishReason, index: i,
    }));
    ctx.json(200, { candidates, usageMetadata: usage, modelVersion, responseId });
    return;
  }
  ctx.sseStart();
  if (b.frames) {
    for (const f of b.frames) {
      if (b.chunk_interval_ms) await ctx.sleep(b.chunk_interval_ms);
      if (ctx.gone()) return;
      ctx.sse(f);
    }
    ctx.sseEnd();
    return;
  }
  // text split into word chunks (or `chunks` even slices); other parts in the first chunk
  const textPart = parts.find((p) => !p.thought && typeof p.text === 'string');
  const head = parts.filter((p) => p !== textPart);
  let pieces = [];
  if (textPart) {
    const t = textPart.text;
    if (b.chunks === undefined) pieces = words(t).length ? words(t) : [t];
    else {
      const cps = [...t];
      pieces = Array.from({ length: b.chunks }, (_, k) => cps.slice(Math.floor((k * cps.length) / b.chunks), Math.floor(((k + 1) * cps.length) / b.chunks)).join(''));
    }
  }
  const frames = [];
  if (head.length) frames.push(head);
  for (const p of pieces) frames.push([{ text: p }]);
  if (!frames.length) frames.push([{ text: '' }]);
  if (b.first_chunk_delay_ms) await ctx.sleep(b.first_chunk_delay_ms);
  for (let i = 0; i < frames.length; i++) {
    if (i > 0 && b.chunk_interval_ms) await ctx.sleep(b.chunk_interval_ms);
    if (ctx.gone()) return;
    if (b.reset_after_chunks !== undefined && i === b.reset_after_chunks) { ctx.reset(); return; }
    if (b.hang_after_chunks !== undefined && i === b.hang_after_chunks) { ctx.hang(); return; }
    if (b.stream_error_after_chunks !== undefined && i === b.stream_error_after_chunks) {
      ctx.sse(new GoogleError(b.status_in_stream ?? 503, b.error_message ?? DEFAULT_MESSAGES[503]).body());
      ctx.sseEnd();
      return;
    }
    const last = i === frames.length - 1;
    const cand = { content: { parts: frames[i], role: 'model' }, index: 0 };
    if (last) cand.finishReason = finishReason;
    const chunk = { candidates: [cand], modelVersion, responseId };
    chunk.usageMetadata = last ? usage : { promptTokenCount: usage.promptTokenCount, totalTokenCount: usage.promptTokenCount };
    ctx.sse(chunk);
  }
  ctx.sseEnd();
}

/** A deterministic embedding of text (dims floats in [-1, 1]). */
export function embedText(text, dims = 8) {
  const h = crypto.createHash('sha256').update(text).digest();
  return Array.from({ length: dims }, (_, i) => Math.round(((h[i % 32] / 255) * 2 - 1) * 1e6) / 1e6);
}
