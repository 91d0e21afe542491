#!/usr/bin/env node
// tests/mocks/azure_mock.mjs -- a scriptable mock of Azure OpenAI (and of Azure AI
// Foundry's model inference endpoint) for moongate's tests (Node 20, built-in modules only).
//
// It checks what Azure checks before it answers: the credential (an `api-key` header from
// the expected keys, or `Authorization: Bearer <token>` from the expected Entra tokens),
// the `api-version` query on the deployment and /openai/responses routes, and that the
// deployment in the path exists.  It answers in Azure's shapes: chat completions with
// prompt_filter_results / content_filter_results, streams that open with the
// prompt-filter chunk, embeddings, completions, the v1 API (/openai/v1/...), the Responses
// API with stored responses (GET, DELETE, input_items), and Azure's error bodies,
// including the content-filter refusal (400, code content_filter, innererror
// ResponsibleAIPolicyViolation) and a filtered completion (200, finish_reason
// content_filter).  The control API, rules and log follow mg_mock_provider and
// anthropic_mock (tests/mocks/README.md).

import http from 'node:http';
import fs from 'node:fs';
import { parseArgs } from 'node:util';

const USAGE = `usage: azure_mock.mjs [--host 127.0.0.1] [--port N] [--port-file PATH]
                     [--api-key KEY]... [--ad-token TOKEN]... [--deployments a,b]
                     [--exit-on-eof] [--quiet]`;

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      'port-file': { type: 'string' },
      'api-key': { type: 'string', multiple: true, default: [] },
      'ad-token': { type: 'string', multiple: true, default: [] },
      deployments: { type: 'string' },
      'exit-on-eof': { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  }));
} catch (e) {
  process.stderr.write(`azure_mock: ${e.message}\n${USAGE}\n`);
  process.exit(2);
}
if (opts.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const words = (s) => (String(s).match(/\S+/g) || []).length;

const G = {
  keys: opts['api-key'],
  tokens: opts['ad-token'],
  deployments: opts.deployments ? opts.deployments.split(',').filter(Boolean) : null,
  rules: [],
  def: null,
  log: [],
  seq: 0,
  stored: new Map(),   // response id -> {response, input}
  shuttingDown: false,
};

// api-version values Azure takes on the deployment routes: dated GA and preview versions
const DATED = /^\d{4}-\d{2}-\d{2}(-preview)?$/;
const FILTER_OK = {
  hate: { filtered: false, severity: 'safe' }, self_harm: { filtered: false, severity: 'safe' },
  sexual: { filtered: false, severity: 'safe' }, violence: { filtered: false, severity: 'safe' },
};
const FILTER_BAD = { ...FILTER_OK, violence: { filtered: true, severity: 'medium' } };
const PROMPT_FILTER_MESSAGE = "The response was filtered due to the prompt triggering Azure OpenAI's "
  + 'content management policy. Please modify your prompt and retry. To learn more about our '
  + 'content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766';

// ---- behaviours and rules ----

const BEHAVIOUR_FIELDS = ['id', 'status', 'error_code', 'error_message', 'retry_after', 'latency_ms',
  'content', 'content_filter', 'finish_reason', 'usage', 'body', 'model', 'function_calls'];
const MATCH_FIELDS = ['deployment', 'path', 'auth', 'endpoint', 'api_version', 'model', 'stream'];

function parseBehaviour(b) {
  if (!isObj(b)) throw new Error('a behaviour must be an object');
  for (const k of Object.keys(b)) {
    if (!BEHAVIOUR_FIELDS.includes(k)) throw new Error(`unknown behaviour field '${k}'`);
  }
  if (b.content_filter !== undefined && !['prompt', 'completion'].includes(b.content_filter)) {
    throw new Error("'content_filter' must be 'prompt' or 'completion'");
  }
  return b;
}

function parseRule(r) {
  if (!isObj(r)) throw new Error('a rule must be an object');
  const m = r.match ?? {};
  for (const k of Object.keys(m)) {
    if (!MATCH_FIELDS.includes(k)) throw new Error(`unknown match field '${k}'`);
  }
  return { match: m, b: parseBehaviour(r.respond ?? {}), remaining: r.times ?? null, hits: 0, src: r };
}

function ruleMatches(r, rs) {
  if (r.remaining === 0) return false;
  const m = r.match;
  const auth = rs.req.headers['api-key'] ?? rs.req.headers.authorization;
  if (m.deployment !== undefined && m.deployment !== rs.deployment) return false;
  if (m.path !== undefined && m.path !== rs.path) return false;
  if (m.auth !== undefined && m.auth !== auth && `Bearer ${m.auth}` !== auth) return false;
  if (m.endpoint !== undefined && m.endpoint !== rs.endpoint) return false;
  if (m.api_version !== undefined && m.api_version !== rs.apiVersion) return false;
  if (m.model !== undefined && m.model !== rs.model) return false;
  if (m.stream !== undefined && m.stream !== rs.stream) return false;
  return true;
}

// ---- routes ----

/** {endpoint, deployment, v1, id}: what the path asks for. */
function classify(method, p) {
  let m = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|completions|embeddings)$/.exec(p);
  if (m) {
    const ep = { 'chat/completions': 'chat', completions: 'completions', embeddings: 'embeddings' }[m[2]];
    return { endpoint: ep, deployment: decodeURIComponent(m[1]), v1: false };
  }
  m = /^\/openai\/v1\/(chat\/completions|completions|embeddings)$/.exec(p);
  if (m) {
    const ep = { 'chat/completions': 'chat', completions: 'completions', embeddings: 'embeddings' }[m[1]];
    return { endpoint: ep, deployment: null, v1: true };
  }
  m = /^\/openai(\/v1)?\/responses(?:\/([^/]+)(\/input_items|\/cancel)?)?$/.exec(p);
  if (m) {
    const v1 = !!m[1];
    if (!m[2]) return { endpoint: 'responses', v1 };
    const sub = m[3] === '/input_items' ? 'response.input_items' : m[3] === '/cancel' ? 'response.cancel' : 'response';
    return { endpoint: sub, id: decodeURIComponent(m[2]), v1 };
  }
  // Azure AI Foundry model inference
  if (p === '/models/chat/completions' || p === '/chat/completions') return { endpoint: 'chat', inference: true };
  if (p === '/models/embeddings' || p === '/embeddings') return { endpoint: 'embeddings', inference: true };
  return { endpoint: 'unknown' };
}

// ---- answers ----

function send(rs, status, body, ctype = 'application/json', extra = {}) {
  const s = typeof body === 'string' ? body : JSON.stringify(body);
  rs.entry.status = status;
  rs.res.writeHead(status, {
    'content-type': ctype, 'content-length': Buffer.byteLength(s),
    'apim-request-id': `req_mock_${rs.seq}`, ...extra,
  });
  rs.res.end(s);
}

function azureError(rs, status, code, message, extra = {}) {
  const h = {};
  if (rs.b.retry_after !== undefined) h['retry-after'] = String(rs.b.retry_after);
  return send(rs, status, { error: { code, message, ...extra } }, 'application/json', h);
}

function contentFilterError(rs) {
  return azureError(rs, 400, 'content_filter', PROMPT_FILTER_MESSAGE, {
    param: 'prompt', type: null, status: 400,
    innererror: { code: 'ResponsibleAIPolicyViolation', content_filter_result: FILTER_BAD },
  });
}

function usageOf(rs, content) {
  const pt = Math.max(1, Math.floor(rs.rawLen / 4));
  const ct = words(content ?? '');
  return { prompt_tokens: pt, completion_tokens: ct, total_tokens: pt + ct, ...(rs.b.usage ?? {}) };
}

function answerChat(rs) {
  const filtered = rs.b.content_filter === 'completion';
  const content = filtered ? null : (rs.b.content ?? `mock reply from ${rs.deployment}`);
  const finish = filtered ? 'content_filter' : (rs.b.finish_reason ?? 'stop');
  const model = rs.b.model ?? `mock-${rs.deployment}`;
  const created = Math.floor(Date.now() / 1000);
  const id = `chatcmpl-azmock-${rs.seq}`;
  const cfr = filtered ? FILTER_BAD : FILTER_OK;
  const pfr = [{ prompt_index: 0, content_filter_results: FILTER_OK }];
  const completions = rs.endpoint === 'completions';
  if (!rs.stream) {
    const choice = completions
      ? { text: content, index: 0, finish_reason: finish, logprobs: null, content_filter_results: cfr }
      : { index: 0, finish_reason: finish, message: { role: 'assistant', content }, content_filter_results: cfr };
    return send(rs, 200, {
      id, object: completions ? 'text_completion' : 'chat.completion', created, model,
      prompt_filter_results: pfr, choices: [choice], usage: usageOf(rs, content),
    });
  }
  const frames = [];
  const chunk = (choices, more = {}) => ({ id, object: 'chat.completion.chunk', created, model, choices, ...more });
  frames.push({ id: '', object: '', created: 0, model: '', prompt_filter_results: pfr, choices: [] });
  if (!completions) frames.push(chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]));
  for (const w of (content ?? '').match(/\S+\s*/g) || []) {
    frames.push(chunk([completions ? { index: 0, text: w, finish_reason: null }
      : { index: 0, delta: { content: w }, finish_reason: null, content_filter_results: FILTER_OK }]));
  }
  frames.push(chunk([completions ? { index: 0, text: '', finish_reason: finish }
    : { index: 0, delta: {}, finish_reason: finish, content_filter_results: cfr }]));
  if (isObj(rs.body) && rs.body.stream_options?.include_usage === true) {
    frames.push(chunk([], { usage: usageOf(rs, content) }));
  }
  const text = frames.map((f) => `data: ${JSON.stringify(f)}\n\n`).join('') + 'data: [DONE]\n\n';
  return send(rs, 200, text, 'text/event-stream');
}

function answerEmbeddings(rs) {
  const input = isObj(rs.body) ? rs.body.input : undefined;
  const items = Array.isArray(input) ? input : [input];
  if (input === undefined || items.length === 0) {
    return azureError(rs, 400, 'BadRequest', "'input' is a required property");
  }
  const data = items.map((x, i) => ({
    object: 'embedding', index: i,
    embedding: Array.from({ length: 8 }, (_, k) => Number(((String(x).length * (k + 1)) % 97 / 97).toFixed(6))),
  }));
  const pt = Math.max(1, Math.floor(rs.rawLen / 4));
  return send(rs, 200, { object: 'list', data, model: rs.b.model ?? `mock-${rs.deployment}`,
    usage: { prompt_tokens: pt, total_tokens: pt } });
}

function responseOutput(rs) {
  const calls = rs.b.function_calls;
  if (Array.isArray(calls)) {
    return calls.map((c, i) => ({
      id: `fc_azmock_${rs.seq}_${i}`, type: 'function_call', status: 'completed',
      arguments: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments ?? {}),
      call_id: `call_azmock_${rs.seq}_${i}`, name: c.name,
    }));
  }
  const text = rs.b.content ?? `mock reply from ${rs.deployment}`;
  return [{ id: `msg_azmock_${rs.seq}`, type: 'message', status: 'completed', role: 'assistant',
    content: [{ type: 'output_text', text, annotations: [], logprobs: [] }] }];
}

function answerResponses(rs) {
  const body = rs.body;
  if (!isObj(body)) return azureError(rs, 400, 'BadRequest', 'the body must be a JSON object');
  if (typeof body.previous_response_id === 'string' && !G.stored.has(body.previous_response_id)) {
    return azureError(rs, 400, 'previous_response_not_found',
      `Previous response with id '${body.previous_response_id}' not found.`, { param: 'previous_response_id', type: 'invalid_request_error' });
  }
  if (Array.isArray(body.input)) {
    // Azure refuses "status" on input messages (LiteLLM strips it)
    const bad = body.input.findIndex((it) => isObj(it) && it.type === 'message' && 'status' in it);
    if (bad >= 0) {
      return azureError(rs, 400, 'invalid_request_error', `Unknown parameter: 'input[${bad}].status'.`,
        { param: `input[${bad}].status`, type: 'invalid_request_error' });
    }
  }
  const output = responseOutput(rs);
  const text = output[0].type === 'message' ? output[0].content[0].text : '';
  const pt = Math.max(1, Math.floor(rs.rawLen / 4));
  const resp = {
    id: `resp_azmock_${rs.seq}`, object: 'response', created_at: Math.floor(Date.now() / 1000),
    status: 'completed', error: null, incomplete_details: null, model: rs.b.model ?? `mock-${rs.deployment}`,
    output, previous_response_id: body.previous_response_id ?? null, store: body.store !== false,
    usage: { input_tokens: pt, input_tokens_details: { cached_tokens: 0 }, output_tokens: words(text),
      output_tokens_details: { reasoning_tokens: 0 }, total_tokens: pt + words(text) },
  };
  if (body.store !== false) {
    const input = typeof body.input === 'string'
      ? [{ id: `msg_in_${rs.seq}`, type: 'message', role: 'user', content: [{ type: 'input_text', text: body.input }] }]
      : (body.input ?? []).map((it, i) => ({ id: `item_in_${rs.seq}_${i}`, ...it }));
    G.stored.set(resp.id, { response: resp, input });
  }
  if (!rs.stream) return send(rs, 200, resp);
  let seq = 0;
  const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`;
  const start = { ...resp, status: 'in_progress', output: [], usage: null };
  let out = ev('response.created', { response: start }) + ev('response.in_progress', { response: start });
  output.forEach((it, i) => {
    if (it.type === 'message') {
      out += ev('response.output_item.added', { output_index: i, item: { ...it, status: 'in_progress', content: [] } });
      out += ev('response.content_part.added', { item_id: it.id, output_index: i, content_index: 0,
        part: { type: 'output_text', text: '', annotations: [] } });
      for (const w of it.content[0].text.match(/\S+\s*/g) || []) {
        out += ev('response.output_text.delta', { item_id: it.id, output_index: i, content_index: 0, delta: w });
      }
      out += ev('response.output_text.done', { item_id: it.id, output_index: i, content_index: 0, text: it.content[0].text });
      out += ev('response.content_part.done', { item_id: it.id, output_index: i, content_index: 0, part: it.content[0] });
    } else {
      out += ev('response.output_item.added', { output_index: i, item: { ...it, status: 'in_progress', arguments: '' } });
      out += ev('response.function_call_arguments.delta', { item_id: it.id, output_index: i, delta: it.arguments });
      out += ev('response.function_call_arguments.done', { item_id: it.id, output_index: i, arguments: it.arguments });
    }
    out += ev('response.output_item.done', { output_index: i, item: it });
  });
  out += ev('response.completed', { response: resp });
  return send(rs, 200, out, 'text/event-stream');
}

function answerStored(rs) {
  const e = G.stored.get(rs.id);
  if (!e) return azureError(rs, 404, 'not_found', `Response with id '${rs.id}' not found.`, { type: 'invalid_request_error' });
  const m = rs.req.method;
  if (rs.endpoint === 'response' && m === 'GET') return send(rs, 200, e.response);
  if (rs.endpoint === 'response' && m === 'DELETE') {
    G.stored.delete(rs.id);
    return send(rs, 200, { id: rs.id, object: 'response', deleted: true });
  }
  if (rs.endpoint === 'response.input_items' && m === 'GET') {
    const data = rs.query.get('order') === 'asc' ? e.input : [...e.input].reverse();
    return send(rs, 200, { object: 'list', data, first_id: data[0]?.id ?? null,
      last_id: data[data.length - 1]?.id ?? null, has_more: false });
  }
  if (rs.endpoint === 'response.cancel' && m === 'POST') {
    return azureError(rs, 400, 'invalid_request_error', 'Cannot cancel a synchronous response.');
  }
  return azureError(rs, 405, 'MethodNotAllowed', 'method not allowed');
}

// ---- the checks Azure makes first ----

function check(rs) {
  const h = rs.req.headers;
  const key = h['api-key'];
  const bearer = /^Bearer (.+)$/.exec(h.authorization ?? '')?.[1];
  if (key === undefined && bearer === undefined) {
    return [401, '401', 'Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.'];
  }
  const keyOk = key !== undefined && (G.keys.length === 0 || G.keys.includes(key));
  const tokenOk = bearer !== undefined && (rs.inference
    ? (G.keys.length === 0 || G.keys.includes(bearer))
    : (G.tokens.length === 0 ? G.keys.length === 0 : G.tokens.includes(bearer)));
  if (!keyOk && !tokenOk) {
    return [401, '401', 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.'];
  }
  if (!rs.v1 && !rs.inference) {
    if (rs.apiVersion === null) return [404, '404', 'Resource not found'];
    if (!DATED.test(rs.apiVersion) && !(rs.endpoint.startsWith('response') && rs.apiVersion === 'preview')) {
      return [400, 'BadRequest', 'API version not supported'];
    }
  } else if (rs.v1 && rs.apiVersion !== null && !['preview', 'latest'].includes(rs.apiVersion)) {
    return [400, 'BadRequest', 'API version not supported'];
  }
  if (rs.deployment !== null && G.deployments && !G.deployments.includes(rs.deployment)) {
    return [404, 'DeploymentNotFound', 'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.'];
  }
  return null;
}

async function handleProvider(req, res, url, raw) {
  const seq = ++G.seq;
  let body = null;
  if (raw.length) {
    try { body = JSON.parse(raw.toString('utf8')); } catch { body = raw.toString('utf8'); }
  }
  const c = classify(req.method, url.pathname);
  const rs = {
    req, res, seq, url, path: url.pathname, query: url.searchParams, rawLen: raw.length, body,
    endpoint: c.endpoint, v1: !!c.v1, inference: !!c.inference, id: c.id,
    apiVersion: url.searchParams.get('api-version'),
    model: isObj(body) && typeof body.model === 'string' ? body.model : null,
    stream: isObj(body) && body.stream === true, b: {},
  };
  // v1 and responses routes carry the deployment in the body's model
  rs.deployment = c.deployment ?? ((c.v1 || c.endpoint === 'responses' || c.inference) ? rs.model : null);
  rs.entry = {
    seq, t_start_ms: Date.now(), method: req.method, path: url.pathname, url: req.url,
    query: Object.fromEntries(url.searchParams), headers: { ...req.headers }, body, model: rs.model,
    deployment: rs.deployment, api_version: rs.apiVersion, endpoint: rs.endpoint, stream: rs.stream,
    status: null, check_error: null, behaviour_source: 'default', behaviour_id: null, rule_index: null,
  };
  G.log.push(rs.entry);
  if (G.log.length > 100000) G.log.shift();
  if (rs.endpoint === 'unknown') return azureError(rs, 404, '404', 'Resource not found');
  const failed = check(rs);
  if (failed) {
    rs.entry.check_error = failed[2];
    rs.entry.behaviour_source = 'checks';
    return azureError(rs, failed[0], failed[1], failed[2]);
  }
  let ri = G.rules.findIndex((r) => ruleMatches(r, rs));
  if (ri >= 0) {
    const r = G.rules[ri];
    if (r.remaining !== null) r.remaining--;
    r.hits++;
    rs.b = r.b;
    rs.entry.behaviour_source = 'rule';
    rs.entry.rule_index = ri;
  } else if (G.def) {
    rs.b = G.def;
    rs.entry.behaviour_source = 'script_default';
  }
  rs.entry.behaviour_id = rs.b.id ?? null;
  if (rs.b.latency_ms) await new Promise((r) => setTimeout(r, rs.b.latency_ms));
  if (rs.b.body !== undefined) return send(rs, rs.b.status ?? 200, rs.b.body, rs.stream ? 'text/event-stream' : 'application/json');
  if (rs.b.status && rs.b.status !== 200) {
    return azureError(rs, rs.b.status, rs.b.error_code ?? String(rs.b.status), rs.b.error_message ?? `mock error ${rs.b.status}`);
  }
  if (rs.b.content_filter === 'prompt') return contentFilterError(rs);
  switch (rs.endpoint) {
    case 'chat':
    case 'completions': return answerChat(rs);
    case 'embeddings': return answerEmbeddings(rs);
    case 'responses': return answerResponses(rs);
    default: return answerStored(rs);
  }
}

// ---- control API ----

function ctlReply(res, status, obj) {
  const s = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
  res.end(s);
}

function handleControl(req, res, url, raw) {
  const p = url.pathname;
  if (p === '/__mock/script' && req.method === 'POST') {
    let j;
    try {
      j = raw.length ? JSON.parse(raw.toString('utf8')) : {};
      if (!isObj(j)) throw new Error('body must be an object');
      for (const k of Object.keys(j)) {
        if (!['rules', 'default', 'append', 'api_keys', 'ad_tokens'].includes(k)) throw new Error(`unknown script field '${k}'`);
      }
      const rules = (j.rules ?? []).map(parseRule);
      const def = j.default ? parseBehaviour(j.default) : null;
      if (j.append) G.rules.push(...rules); else G.rules = rules;
      if (!j.append || j.default !== undefined) G.def = def;
      if (j.api_keys !== undefined) G.keys = j.api_keys ?? opts['api-key'];
      if (j.ad_tokens !== undefined) G.tokens = j.ad_tokens ?? opts['ad-token'];
    } catch (e) {
      return ctlReply(res, 400, { error: { code: 'mock_error', message: e.message } });
    }
    return ctlReply(res, 200, { ok: true, rules: G.rules.length });
  }
  if (p === '/__mock/script' && req.method === 'GET') {
    return ctlReply(res, 200, { rules: G.rules.map((r) => ({ rule: r.src, remaining: r.remaining, hits: r.hits })) });
  }
  if (p === '/__mock/reset' && req.method === 'POST') {
    G.rules = [];
    G.def = null;
    G.log = [];
    G.seq = 0;
    G.stored.clear();
    G.keys = opts['api-key'];
    G.tokens = opts['ad-token'];
    return ctlReply(res, 200, { ok: true });
  }
  if (p === '/__mock/log' && req.method === 'GET') {
    const since = Number(url.searchParams.get('since') ?? 0) || 0;
    return ctlReply(res, 200, { last_seq: G.seq, entries: G.log.filter((e) => e.seq > since) });
  }
  if (p === '/__mock/stats' && req.method === 'GET') {
    return ctlReply(res, 200, { requests: G.seq, stored: G.stored.size, rules: G.rules.length });
  }
  if (p === '/__mock/health' && req.method === 'GET') return ctlReply(res, 200, { ok: true });
  return ctlReply(res, 404, { error: { code: 'mock_error', message: 'unknown control endpoint or method' } });
}

// ---- server ----

const server = http.createServer({ keepAliveTimeout: 60000, requestTimeout: 0 });
server.on('request', (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const parts = [];
  req.on('data', (d) => parts.push(d));
  req.on('end', () => {
    if (G.shuttingDown) { res.destroy(); return; }
    const raw = Buffer.concat(parts);
    if (url.pathname.startsWith('/__mock/')) return handleControl(req, res, url, raw);
    handleProvider(req, res, url, raw).catch((e) => {
      process.stderr.write(`azure_mock: request failed: ${e.stack}\n`);
      res.destroy();
    });
  });
});

function shutdown() {
  if (G.shuttingDown) return;
  G.shuttingDown = true;
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
if (opts['exit-on-eof']) {
  process.stdin.on('end', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}
server.on('error', (e) => {
  process.stderr.write(`azure_mock: ${e.message}\n`);
  process.exit(1);
});
server.listen(Number(opts.port), opts.host, () => {
  const { port } = server.address();
  if (opts['port-file']) {
    const tmp = `${opts['port-file']}.tmp.${process.pid}`;
    fs.writeFileSync(tmp, `${port}\n`);
    fs.renameSync(tmp, opts['port-file']);
  }
  process.stdout.write(`mock listening on ${opts.host}:${port}\n`);
});
