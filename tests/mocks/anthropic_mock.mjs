#!/usr/bin/env node
// tests/mocks/anthropic_mock.mjs -- a scriptable mock of Anthropic's Messages API for
// moongate's tests (Node 20, built-in modules only).
//
// It checks what it receives the way the real API does (credential and anthropic-version
// headers, the request schema with "Extra inputs are not permitted" for unknown fields,
// tool_use/tool_result pairing, thinking budgets) and answers in Anthropic's documented
// shapes: message objects, named SSE events, and the {"type":"error","error":{...}}
// envelope with a request-id header.  The real API rejects unknown body fields, so
// behaviours cannot ride in the request: tests install rules through POST /__mock/script
// and read what was sent from GET /__mock/log.  The control API, the rule and behaviour
// vocabulary and the log follow mg_mock_provider (see tests/mocks/README.md).

import http from 'node:http';
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';

const USAGE = `usage: anthropic_mock.mjs [--host 127.0.0.1] [--port N] [--port-file PATH]
                         [--log PATH] [--log-max N] [--models a,b,c] [--api-key KEY]...
                         [--exit-on-eof] [--quiet] [--verbose]`;

// ---- command line ----

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      'port-file': { type: 'string' },
      log: { type: 'string' },
      'log-max': { type: 'string', default: '100000' },
      models: { type: 'string' },
      'api-key': { type: 'string', multiple: true, default: [] },
      'exit-on-eof': { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (e) {
  process.stderr.write(`anthropic_mock: ${e.message}\n${USAGE}\n`);
  process.exit(2);
}
if (opts.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
function intOption(name, lo, hi) {
  const s = opts[name];
  const n = Number(s);
  if (!/^\d+$/.test(s) || n < lo || n > hi) {
    process.stderr.write(`anthropic_mock: --${name} must be an integer in [${lo}, ${hi}]\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
}
const listenPort = intOption('port', 0, 65535);
const logMax = intOption('log-max', 1, 10000000);

// ---- protocol constants ----

/** anthropic-version values the real API knows; 2026-10-21 dropped the sampling parameters. */
const VERSIONS = new Set(['2023-06-01', '2026-10-21']);
const SAMPLING_PARAMS = ['temperature', 'top_p', 'top_k'];
const MAX_BODY = 32 * 1024 * 1024; // Messages and token counting: 32 MB
const DEFAULT_MODELS = ['claude-sonnet-4-5-20250929', 'claude-haiku-4-5-20251001',
  'claude-opus-4-1-20250805', 'mock-model'];

/** Top-level fields of POST /v1/messages accepted by every version (beta-gated ones included). */
const MESSAGES_FIELDS = ['model', 'messages', 'max_tokens', 'system', 'metadata', 'stop_sequences',
  'stream', 'tools', 'tool_choice', 'thinking', 'service_tier', 'container', 'mcp_servers',
  'context_management', 'output_config', 'output_format', 'inference_geo', 'cache_control',
  'diagnostics', 'speed'];
const COUNT_TOKENS_FIELDS = ['model', 'messages', 'system', 'tools', 'tool_choice', 'thinking',
  'mcp_servers', 'context_management', 'output_config', 'output_format', 'cache_control', 'speed'];

const DEFAULT_ERRORS = {
  400: ['invalid_request_error', 'mock: scripted invalid request'],
  401: ['authentication_error', 'invalid x-api-key'],
  402: ['billing_error', 'Your credit balance is too low to access the Anthropic API.'],
  403: ['permission_error', 'Your API key does not have permission to use the specified resource.'],
  404: ['not_found_error', 'Not found'],
  413: ['request_too_large', 'Request exceeds the maximum allowed number of bytes.'],
  429: ['rate_limit_error', 'Number of requests has exceeded your per-minute rate limit.'],
  500: ['api_error', 'Internal server error'],
  504: ['timeout_error', 'Request timed out'],
  529: ['overloaded_error', 'Overloaded'],
};
function defaultError(status) {
  if (DEFAULT_ERRORS[status]) return DEFAULT_ERRORS[status];
  return status >= 500 ? ['api_error', 'Internal server error'] : ['invalid_request_error', 'Invalid request'];
}

// ---- state ----

const G = {
  seq: 0,
  requests: 0,
  inProgress: 0,
  acceptedTotal: 0,
  openAll: 0,
  openProvider: 0,
  connectionsTotal: 0,
  connIdNext: 0,
  epoch: 0,
  log: [],
  rules: [],
  def: null, // { b, src } script default behaviour
  cliKeys: opts['api-key'],
  scriptKeys: null, // null: the --api-key list applies
  active: new Set(),
  models: opts.models ? opts.models.split(',').map((s) => s.trim()).filter(Boolean) : DEFAULT_MODELS,
  logFile: opts.log ? fs.createWriteStream(opts.log, { flags: 'a' }) : null,
  shuttingDown: false,
};
const expectedKeys = () => G.scriptKeys ?? G.cliKeys;

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const has = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
const quote = (v) => `'${String(v)}'`;
function listOr(values) {
  const q = values.map(quote);
  return q.length === 1 ? q[0] : `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}`;
}

// ---- request checks (messages follow the real API: "<path>: <pydantic-style message>") ----

class CheckError extends Error {
  constructor(message, status = 400, type = 'invalid_request_error') {
    super(message);
    this.status = status;
    this.type = type;
  }
}
function fail(msg) { throw new CheckError(msg); }

const at = (p, k) => (p ? `${p}.${k}` : String(k));
function dict(v, p) { if (!isObj(v)) fail(`${p}: Input should be a valid dictionary`); }
function list(v, p) { if (!Array.isArray(v)) fail(`${p}: Input should be a valid list`); }
function str(v, p) { if (typeof v !== 'string') fail(`${p}: Input should be a valid string`); }
function bool(v, p) { if (typeof v !== 'boolean') fail(`${p}: Input should be a valid boolean`); }
function int(v, p, min) {
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(`${p}: Input should be a valid integer`);
  if (min !== undefined && v < min) fail(`${p}: Input should be greater than or equal to ${min}`);
}
function num(v, p, min, max) {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(`${p}: Input should be a valid number`);
  if (v < min) fail(`${p}: Input should be greater than or equal to ${min}`);
  if (v > max) fail(`${p}: Input should be less than or equal to ${max}`);
}
function oneOf(v, p, values) { if (!values.includes(v)) fail(`${p}: Input should be ${listOr(values)}`); }
function noExtra(o, allowed, p) {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) fail(`${at(p, k)}: Extra inputs are not permitted`);
}
const nullable = (fn) => (v, p, ctx) => { if (v !== null) fn(v, p, ctx); };
const enumOf = (values) => (v, p) => oneOf(v, p, values);

/**
 * Checks a tagged union member: `table` maps each `type` to {req, f, loose, after}; field
 * errors name the tag (`messages.0.content.1.tool_use.input`), as the real API's do.
 */
function tagged(v, p, table, ctx, { tagInPath = true } = {}) {
  dict(v, p);
  const tags = Object.keys(table);
  if (!has(v, 'type')) fail(`${p}: Unable to extract tag using discriminator 'type'`);
  if (!tags.includes(v.type)) {
    fail(`${p}: Input tag ${quote(v.type)} found using 'type' does not match any of the expected tags: ${tags.map(quote).join(', ')}`);
  }
  const spec = table[v.type];
  const q = tagInPath ? `${p}.${v.type}` : p;
  if (!spec.loose) noExtra(v, ['type', ...Object.keys(spec.f || {})], q);
  for (const k of spec.req || []) if (!has(v, k)) fail(`${q}.${k}: Field required`);
  for (const [k, fn] of Object.entries(spec.f || {})) if (has(v, k)) fn(v[k], `${q}.${k}`, ctx);
  if (spec.after) spec.after(v, q, ctx);
  return v.type;
}

function cacheControl(v, p) {
  if (v === null) return;
  tagged(v, p, { ephemeral: { f: { ttl: enumOf(['5m', '1h']) } } }, null, { tagInPath: false });
}
function textValue(v, p, ctx) {
  str(v, p);
  if (v === '') fail(`${ctx.area}: text content blocks must be non-empty`);
}
function citationsParam(v, p, ctx) {
  if (v === null) return;
  list(v, p);
  if (v.length && ctx.role === 'user' && ctx.version === '2026-10-21') {
    fail(`${p}: citations on text blocks in user messages are not accepted with anthropic-version 2026-10-21`);
  }
}
function toolUseId(v, p) {
  str(v, p);
  if (!/^[a-zA-Z0-9_-]+$/.test(v)) fail(`${p}: String should match pattern '^[a-zA-Z0-9_-]+$'`);
}

const IMAGE_SOURCES = {
  base64: { req: ['data', 'media_type'], f: { data: str, media_type: enumOf(['image/jpeg', 'image/png', 'image/gif', 'image/webp']) } },
  url: { req: ['url'], f: { url: str } },
  file: { req: ['file_id'], f: { file_id: str } },
};
function contentSource(v, p, ctx) {
  if (typeof v === 'string') return;
  list(v, p);
  v.forEach((b, i) => tagged(b, `${p}.${i}`, { text: TEXT_BLOCK, image: IMAGE_BLOCK }, ctx));
}
const DOCUMENT_SOURCES = {
  base64: { req: ['data', 'media_type'], f: { data: str, media_type: enumOf(['application/pdf']) } },
  text: { req: ['data', 'media_type'], f: { data: str, media_type: enumOf(['text/plain']) } },
  content: { req: ['content'], f: { content: contentSource } },
  url: { req: ['url'], f: { url: str } },
  file: { req: ['file_id'], f: { file_id: str } },
};
const TEXT_BLOCK = { req: ['text'], f: { text: textValue, cache_control: cacheControl, citations: citationsParam } };
const IMAGE_BLOCK = {
  req: ['source'],
  f: { source: (v, p, ctx) => tagged(v, p, IMAGE_SOURCES, ctx), cache_control: cacheControl, transformations: nullable(dict) },
};
const DOCUMENT_BLOCK = {
  req: ['source'],
  f: {
    source: (v, p, ctx) => tagged(v, p, DOCUMENT_SOURCES, ctx),
    cache_control: cacheControl, citations: nullable(dict), context: nullable(str), title: nullable(str),
  },
  after(v, q, ctx) {
    if (ctx.role === 'assistant' && ctx.version === '2026-10-21') {
      fail(`${q}: document blocks in assistant messages are not accepted with anthropic-version 2026-10-21`);
    }
  },
};
const SEARCH_RESULT_BLOCK = {
  req: ['content', 'source', 'title'],
  f: {
    content: (v, p, ctx) => { list(v, p); v.forEach((b, i) => tagged(b, `${p}.${i}`, { text: TEXT_BLOCK }, ctx, { tagInPath: false })); },
    source: str, title: str, cache_control: cacheControl, citations: dict,
  },
};
const LOOSE = { loose: true };
function toolResultContent(v, p, ctx) {
  if (typeof v === 'string') return;
  list(v, p);
  v.forEach((b, i) => tagged(b, `${p}.${i}`, {
    text: TEXT_BLOCK, image: IMAGE_BLOCK, search_result: SEARCH_RESULT_BLOCK, document: DOCUMENT_BLOCK, tool_reference: LOOSE,
  }, ctx));
}
const CONTENT_BLOCKS = {
  text: TEXT_BLOCK,
  image: IMAGE_BLOCK,
  document: DOCUMENT_BLOCK,
  search_result: SEARCH_RESULT_BLOCK,
  thinking: { req: ['signature', 'thinking'], f: { signature: str, thinking: str } },
  redacted_thinking: { req: ['data'], f: { data: str } },
  tool_use: {
    req: ['id', 'input', 'name'],
    f: { id: toolUseId, input: dict, name: str, cache_control: cacheControl, caller: dict, toolset_name: nullable(str) },
  },
  tool_result: {
    req: ['tool_use_id'],
    f: { tool_use_id: toolUseId, content: toolResultContent, is_error: bool, cache_control: cacheControl, toolset_name: nullable(str) },
  },
  server_tool_use: LOOSE,
  web_search_tool_result: LOOSE,
  web_fetch_tool_result: LOOSE,
  code_execution_tool_result: LOOSE,
  bash_code_execution_tool_result: LOOSE,
  text_editor_code_execution_tool_result: LOOSE,
  tool_search_tool_result: LOOSE,
  container_upload: LOOSE,
};

const blocksOf = (m) => (Array.isArray(m?.content) ? m.content : []);

function checkMessages(msgs, version) {
  list(msgs, 'messages');
  if (!msgs.length) fail('messages: at least one message is required');
  const last = msgs.length - 1;
  msgs.forEach((m, i) => {
    const p = `messages.${i}`;
    dict(m, p);
    noExtra(m, ['role', 'content'], p);
    if (!has(m, 'role')) fail(`${p}.role: Field required`);
    oneOf(m.role, `${p}.role`, ['user', 'assistant']);
    if (!has(m, 'content')) fail(`${p}.content: Field required`);
    const c = m.content;
    const mayBeEmpty = i === last && m.role === 'assistant';
    if (typeof c === 'string') {
      if (c === '' && !mayBeEmpty) fail(`${p}: all messages must have non-empty content except for the optional final assistant message`);
    } else if (Array.isArray(c)) {
      if (!c.length && !mayBeEmpty) fail(`${p}: all messages must have non-empty content except for the optional final assistant message`);
      c.forEach((b, j) => tagged(b, `${p}.content.${j}`, CONTENT_BLOCKS, { version, role: m.role, area: 'messages' }));
    } else {
      fail(`${p}.content: Input should be a valid string or a list of content blocks`);
    }
  });
  // every tool_use is answered at the start of the next message, and every tool_result
  // answers a tool_use of the message before it
  const seen = new Set();
  msgs.forEach((m, i) => {
    const blocks = blocksOf(m);
    if (m.role === 'assistant') {
      const ids = [];
      blocks.forEach((b, j) => {
        if (b.type !== 'tool_use') return;
        if (seen.has(b.id)) fail(`messages.${i}.content.${j}: \`tool_use\` ids must be unique`);
        seen.add(b.id);
        ids.push(b.id);
      });
      const next = msgs[i + 1];
      if (ids.length && next) {
        const leading = [];
        for (const b of blocksOf(next)) {
          if (b.type !== 'tool_result') break;
          leading.push(b.tool_use_id);
        }
        const missing = next.role === 'user' ? ids.filter((id) => !leading.includes(id)) : ids;
        if (missing.length) {
          fail(`messages.${i}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`);
        }
      }
    } else {
      const prev = msgs[i - 1];
      const prevIds = prev?.role === 'assistant' ? blocksOf(prev).filter((b) => b.type === 'tool_use').map((b) => b.id) : [];
      blocks.forEach((b, j) => {
        if (b.type === 'tool_result' && !prevIds.includes(b.tool_use_id)) {
          fail(`messages.${i}.content.${j}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${b.tool_use_id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`);
        }
      });
    }
  });
}

function checkSystem(v, version) {
  if (typeof v === 'string') return;
  if (!Array.isArray(v)) fail('system: Input should be a valid string or a list of text blocks');
  v.forEach((b, i) => tagged(b, `system.${i}`, { text: TEXT_BLOCK }, { version, role: 'system', area: 'system' }, { tagInPath: false }));
}

const CUSTOM_TOOL_FIELDS = ['type', 'name', 'description', 'input_schema', 'cache_control', 'defer_loading',
  'eager_input_streaming', 'input_examples', 'strict', 'allowed_callers'];
const SERVER_TOOL_TYPE = /^[a-z][a-z0-9_]*_\d{8}$/;

/** Returns the tool names. */
function checkTools(v) {
  list(v, 'tools');
  const names = [];
  v.forEach((t, i) => {
    const p = `tools.${i}`;
    dict(t, p);
    if (t.type === undefined || t.type === null || t.type === 'custom') {
      const q = `${p}.custom`;
      noExtra(t, CUSTOM_TOOL_FIELDS, q);
      if (!has(t, 'name')) fail(`${q}.name: Field required`);
      if (!has(t, 'input_schema')) fail(`${q}.input_schema: Field required`);
      str(t.name, `${q}.name`);
      if (!/^[a-zA-Z0-9_-]{1,64}$/.test(t.name)) fail(`${q}.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'`);
      if (has(t, 'description')) str(t.description, `${q}.description`);
      dict(t.input_schema, `${q}.input_schema`);
      if (!has(t.input_schema, 'type')) fail(`${q}.input_schema.type: Field required`);
      oneOf(t.input_schema.type, `${q}.input_schema.type`, ['object']);
      if (has(t, 'cache_control')) cacheControl(t.cache_control, `${q}.cache_control`);
      for (const k of ['defer_loading', 'strict']) if (has(t, k)) bool(t[k], `${q}.${k}`);
      if (has(t, 'eager_input_streaming') && t.eager_input_streaming !== null) bool(t.eager_input_streaming, `${q}.eager_input_streaming`);
      for (const k of ['input_examples', 'allowed_callers']) if (has(t, k)) list(t[k], `${q}.${k}`);
    } else if (typeof t.type === 'string' && SERVER_TOOL_TYPE.test(t.type)) {
      if (!has(t, 'name')) fail(`${p}.${t.type}.name: Field required`);
      str(t.name, `${p}.${t.type}.name`);
    } else {
      fail(`${p}: Input tag ${quote(t.type)} found using 'type' does not match any of the expected tags: 'custom', 'bash_20250124', 'code_execution_20250825', 'memory_20250818', 'text_editor_20250728', 'web_fetch_20250910', 'web_search_20250305', ...`);
    }
    if (names.includes(t.name)) fail('tools: Tool names must be unique.');
    names.push(t.name);
  });
  return names;
}

const TOOL_CHOICE = {
  auto: { f: { disable_parallel_tool_use: bool } },
  any: { f: { disable_parallel_tool_use: bool } },
  tool: { req: ['name'], f: { name: str, disable_parallel_tool_use: bool } },
  none: {},
};
const THINKING = {
  enabled: {
    req: ['budget_tokens'],
    f: { budget_tokens: (v, p) => int(v, p, 1024), display: nullable(enumOf(['summarized', 'omitted'])) },
  },
  disabled: {},
  adaptive: { f: { display: nullable(enumOf(['summarized', 'omitted'])) } },
  between_tools: {},
};
const OUTPUT_FORMAT = { json_schema: { req: ['schema'], f: { schema: dict } } };

/** Checks the body of POST /v1/messages (count = false) or /v1/messages/count_tokens. */
function checkBody(body, version, count) {
  if (!isObj(body)) fail('Input should be a valid dictionary');
  const allowed = count ? COUNT_TOKENS_FIELDS
    : version === '2023-06-01' ? [...MESSAGES_FIELDS, ...SAMPLING_PARAMS] : MESSAGES_FIELDS;
  noExtra(body, allowed, '');
  for (const k of count ? ['model', 'messages'] : ['model', 'messages', 'max_tokens']) {
    if (!has(body, k)) fail(`${k}: Field required`);
  }
  str(body.model, 'model');
  if (!count) int(body.max_tokens, 'max_tokens', 0); // 0 only fills the prompt cache
  checkMessages(body.messages, version);
  if (has(body, 'system')) checkSystem(body.system, version);
  let toolNames = [];
  if (has(body, 'tools')) toolNames = checkTools(body.tools);
  if (has(body, 'tool_choice')) {
    const t = tagged(body.tool_choice, 'tool_choice', TOOL_CHOICE, null);
    if (!toolNames.length) fail(`tool_choice.${t} may only be specified while providing tools`);
  }
  let thinking = null;
  if (has(body, 'thinking')) thinking = tagged(body.thinking, 'thinking', THINKING, null);
  if (has(body, 'metadata')) {
    dict(body.metadata, 'metadata');
    noExtra(body.metadata, ['user_id'], 'metadata');
    if (has(body.metadata, 'user_id') && body.metadata.user_id !== null) str(body.metadata.user_id, 'metadata.user_id');
  }
  if (has(body, 'stop_sequences')) {
    list(body.stop_sequences, 'stop_sequences');
    body.stop_sequences.forEach((s, i) => str(s, `stop_sequences.${i}`));
  }
  if (has(body, 'stream')) bool(body.stream, 'stream');
  if (has(body, 'temperature')) num(body.temperature, 'temperature', 0, 1);
  if (has(body, 'top_p')) num(body.top_p, 'top_p', 0, 1);
  if (has(body, 'top_k')) int(body.top_k, 'top_k', 0);
  if (has(body, 'service_tier')) oneOf(body.service_tier, 'service_tier', ['auto', 'standard_only']);
  if (has(body, 'container') && body.container !== null && typeof body.container !== 'string') dict(body.container, 'container');
  if (has(body, 'mcp_servers')) {
    list(body.mcp_servers, 'mcp_servers');
    body.mcp_servers.forEach((s, i) => dict(s, `mcp_servers.${i}`));
  }
  for (const k of ['context_management', 'output_format', 'diagnostics']) if (has(body, k) && body[k] !== null) dict(body[k], k);
  if (has(body, 'output_config')) {
    dict(body.output_config, 'output_config');
    noExtra(body.output_config, ['effort', 'format'], 'output_config');
    const oc = body.output_config;
    if (has(oc, 'effort') && oc.effort !== null) oneOf(oc.effort, 'output_config.effort', ['low', 'medium', 'high', 'xhigh', 'max']);
    if (has(oc, 'format') && oc.format !== null) tagged(oc.format, 'output_config.format', OUTPUT_FORMAT, null);
  }
  if (has(body, 'inference_geo') && body.inference_geo !== null) str(body.inference_geo, 'inference_geo');
  if (has(body, 'cache_control')) cacheControl(body.cache_control, 'cache_control');
  if (has(body, 'speed') && body.speed !== null) oneOf(body.speed, 'speed', ['standard', 'fast']);
  // rules that span fields
  const thinks = thinking === 'enabled' || thinking === 'adaptive';
  if (!count && thinking === 'enabled' && body.thinking.budget_tokens >= body.max_tokens) {
    fail('`max_tokens` must be greater than `thinking.budget_tokens`.');
  }
  if (thinks && has(body, 'temperature') && body.temperature !== 1) {
    fail('`temperature` may only be set to 1 when thinking is enabled. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#important-considerations-when-using-extended-thinking');
  }
  if (thinks && ['any', 'tool'].includes(body.tool_choice?.type)) {
    fail('Thinking may not be enabled when tool_choice forces tool use.');
  }
}

/** The credential, then the version header: 401 or 400 as the real API answers. */
function checkHeaders(h) {
  const xk = h['x-api-key'];
  const az = h.authorization;
  let cred = null;
  if (typeof xk === 'string' && xk !== '') cred = xk;
  else if (typeof az === 'string' && /^Bearer\s+\S/i.test(az)) cred = az.replace(/^Bearer\s+/i, '').trim();
  if (!cred) throw new CheckError('x-api-key header is required', 401, 'authentication_error');
  const keys = expectedKeys();
  if (keys.length && !keys.includes(cred)) {
    throw new CheckError(cred === xk ? 'invalid x-api-key' : 'Invalid bearer token', 401, 'authentication_error');
  }
  const v = h['anthropic-version'];
  if (v === undefined || v === '') fail('anthropic-version: header is required');
  if (!VERSIONS.has(v)) fail(`anthropic-version: ${JSON.stringify(v)} is not a valid version`);
}

// ---- behaviours ----

function bInt(lo, hi) {
  return (v, p) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new Error(`'${p}' must be an integer in [${lo}, ${hi}]`);
    return v;
  };
}
function bBool(v, p) { if (typeof v !== 'boolean') throw new Error(`'${p}' must be a boolean`); return v; }
function bStr(v, p) { if (typeof v !== 'string') throw new Error(`'${p}' must be a string`); return v; }
function bStrOrNull(v, p) { if (v !== null && typeof v !== 'string') throw new Error(`'${p}' must be a string or null`); return v; }
function bFields(v, p, fields, required = []) {
  if (!isObj(v)) throw new Error(`'${p}' must be an object`);
  const out = {};
  for (const [k, x] of Object.entries(v)) {
    if (!fields[k]) throw new Error(`unknown field '${p}.${k}'`);
    out[k] = fields[k](x, `${p}.${k}`);
  }
  for (const k of required) if (!has(v, k)) throw new Error(`'${p}.${k}' is required`);
  return out;
}
const BLOCK_SPECS = {
  text: [{ type: bStr, text: bStr }, ['text']],
  tool_use: [{ type: bStr, name: bStr, input: (v, p) => { if (!isObj(v)) throw new Error(`'${p}' must be an object`); return v; }, id: bStr }, ['name']],
  thinking: [{ type: bStr, thinking: bStr, signature: bStr }, ['thinking']],
  redacted_thinking: [{ type: bStr, data: bStr }, ['data']],
};
const ms = bInt(0, 86400000);
const BEHAVIOUR = {
  id: bStr,
  status: bInt(100, 599),
  error_type: bStr,
  error_message: bStr,
  retry_after(v, p) { if (typeof v !== 'number' && typeof v !== 'string') throw new Error(`'${p}' must be a number or string`); return String(v); },
  headers(v, p) {
    if (!isObj(v)) throw new Error(`'${p}' must be an object of strings`);
    for (const [k, x] of Object.entries(v)) {
      if (typeof x !== 'string' || /[\r\n]/.test(x) || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) throw new Error(`header '${k}' must be a single-line string`);
    }
    return v;
  },
  latency_ms: ms,
  first_chunk_delay_ms: ms,
  chunk_interval_ms: ms,
  content: bStr,
  blocks(v, p) {
    if (!Array.isArray(v)) throw new Error(`'${p}' must be an array`);
    return v.map((x, i) => {
      const q = `${p}[${i}]`;
      if (!isObj(x) || !BLOCK_SPECS[x.type]) throw new Error(`'${q}' must be an object with type ${listOr(Object.keys(BLOCK_SPECS))}`);
      const [fields, required] = BLOCK_SPECS[x.type];
      return bFields(x, q, fields, required);
    });
  },
  chunks: bInt(0, 1000000),
  json_chunks: bInt(1, 1000000),
  stop_reason: bStrOrNull,
  stop_sequence: bStrOrNull,
  usage(v, p) { if (!isObj(v)) throw new Error(`'${p}' must be an object`); return v; },
  pings: bInt(0, 1000),
  ping_every: bInt(1, 1000000),
  reset_before_response: bBool,
  reset_after_events: bInt(0, 1000000),
  hang: bBool,
  hang_after_events: bInt(0, 1000000),
  error_event: (v, p) => bFields(v, p, { type: bStr, message: bStr, after_events: bInt(0, 1000000) }),
  close_after_response: bBool,
  malformed: bBool,
  body: bStr,
  events(v, p) {
    if (!Array.isArray(v)) throw new Error(`'${p}' must be an array`);
    return v.map((x, i) => {
      if (typeof x === 'string') return x;
      return bFields(x, `${p}[${i}]`, { event: bStr, data: (d) => d }, ['data']);
    });
  },
  response_id: bStr,
  checks: bBool,
};
function parseBehaviour(obj) {
  if (!isObj(obj)) throw new Error('behaviour must be a JSON object');
  const b = {};
  for (const [k, v] of Object.entries(obj)) {
    if (!BEHAVIOUR[k]) throw new Error(`unknown behaviour field '${k}'`);
    b[k] = BEHAVIOUR[k](v, k);
  }
  if (b.content !== undefined && b.blocks !== undefined) throw new Error("give 'content' or 'blocks', not both");
  return b;
}

const MATCH_STRINGS = ['model', 'auth', 'path', 'method', 'endpoint', 'user_id', 'version'];
function parseRule(obj) {
  if (!isObj(obj)) throw new Error('rule must be an object');
  const r = { match: {}, remaining: null, hits: 0, b: {}, src: obj };
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'match') {
      if (v === null) continue;
      if (!isObj(v)) throw new Error("'match' must be an object");
      for (const [mk, mv] of Object.entries(v)) {
        if (MATCH_STRINGS.includes(mk)) {
          if (typeof mv !== 'string') throw new Error(`match.${mk} must be a string`);
        } else if (mk === 'stream') {
          if (typeof mv !== 'boolean') throw new Error('match.stream must be a boolean');
        } else if (mk === 'headers') {
          if (!isObj(mv) || Object.values(mv).some((x) => typeof x !== 'string')) throw new Error('match.headers must be an object of strings');
        } else {
          throw new Error(`unknown match field '${mk}'`);
        }
        r.match[mk] = mv;
      }
    } else if (k === 'times') {
      if (v === null) continue;
      if (!Number.isInteger(v) || v < 0) throw new Error("'times' must be a non-negative integer");
      r.remaining = v;
    } else if (k === 'respond') {
      if (v !== null) r.b = parseBehaviour(v);
    } else {
      throw new Error(`unknown rule field '${k}'`);
    }
  }
  return r;
}

function ruleMatches(r, rs) {
  if (r.remaining === 0) return false;
  const m = r.match;
  const h = rs.req.headers;
  if (m.model !== undefined && m.model !== rs.model) return false;
  if (m.path !== undefined && m.path !== rs.path && m.path !== rs.req.url) return false;
  if (m.method !== undefined && m.method.toUpperCase() !== rs.req.method) return false;
  if (m.endpoint !== undefined && m.endpoint !== rs.endpoint) return false;
  if (m.stream !== undefined && m.stream !== rs.stream) return false;
  if (m.version !== undefined && m.version !== h['anthropic-version']) return false;
  if (m.user_id !== undefined && m.user_id !== rs.body?.metadata?.user_id) return false;
  if (m.auth !== undefined) {
    const az = h.authorization;
    const bearer = typeof az === 'string' ? az.replace(/^Bearer\s+/i, '') : undefined;
    if (m.auth !== h['x-api-key'] && m.auth !== az && m.auth !== bearer) return false;
  }
  if (m.headers) {
    for (const [k, v] of Object.entries(m.headers)) if (h[k.toLowerCase()] !== v) return false;
  }
  return true;
}

// ---- response content ----

/** Splits text into deltas: one per word by default, else `chunks` even code-point slices. */
function splitText(text, chunks) {
  const pieces = text.match(/\s*\S+\s*/g) || [];
  if (chunks === undefined || chunks === pieces.length) return pieces.length || !text ? pieces : [text];
  if (chunks === 0) return [];
  const cps = Array.from(text);
  const out = [];
  for (let k = 0; k < chunks; k++) {
    out.push(cps.slice(Math.floor((k * cps.length) / chunks), Math.floor(((k + 1) * cps.length) / chunks)).join(''));
  }
  return out;
}
/** Splits a tool's input JSON into `n` non-empty partial_json fragments. */
function splitJson(json, n) {
  const cps = Array.from(json);
  const k = Math.max(1, Math.min(n, cps.length));
  const out = [];
  for (let i = 0; i < k; i++) out.push(cps.slice(Math.floor((i * cps.length) / k), Math.floor(((i + 1) * cps.length) / k)).join(''));
  return out;
}
const words = (s) => (s.match(/\S+/g) || []).length;
const signatureOf = (text) => createHash('sha256').update(`mock-signature:${text}`).digest('base64');

/** The content blocks of the answer, in response form. */
function answerBlocks(rs) {
  const b = rs.b;
  const body = isObj(rs.body) ? rs.body : {};
  let n = 0;
  const toolId = () => `toolu_mock_${rs.seq}_${n++}`;
  if (b.blocks) {
    return b.blocks.map((x) => {
      if (x.type === 'text') return { type: 'text', text: x.text };
      if (x.type === 'tool_use') return { type: 'tool_use', id: x.id ?? toolId(), name: x.name, input: x.input ?? {} };
      if (x.type === 'thinking') return { type: 'thinking', thinking: x.thinking, signature: x.signature ?? signatureOf(x.thinking) };
      return { type: 'redacted_thinking', data: x.data };
    });
  }
  if (b.content !== undefined) return [{ type: 'text', text: b.content }];
  if (body.max_tokens === 0) return [];
  const out = [];
  const thinkingType = body.thinking?.type;
  if (thinkingType === 'enabled' || thinkingType === 'adaptive') {
    const t = `mock thinking about ${rs.model}`;
    out.push({ type: 'thinking', thinking: t, signature: signatureOf(t) });
  }
  const tc = body.tool_choice;
  if ((tc?.type === 'any' || tc?.type === 'tool') && Array.isArray(body.tools) && body.tools.length) {
    out.push({ type: 'tool_use', id: toolId(), name: tc.type === 'tool' ? tc.name : body.tools[0].name, input: {} });
    return out;
  }
  let text = `mock reply from ${rs.model}`;
  if (b.chunks > 4) for (let k = 5; k <= b.chunks; k++) text += ` ${k}`;
  out.push({ type: 'text', text });
  return out;
}

function outputTokens(content) {
  let n = 0;
  for (const c of content) {
    if (c.type === 'text') n += words(c.text);
    else if (c.type === 'thinking') n += words(c.thinking);
    else if (c.type === 'tool_use') n += Math.max(1, Math.ceil(JSON.stringify(c.input).length / 4));
    else n += Math.max(1, Math.ceil(String(c.data ?? '').length / 4));
  }
  return n;
}
function inputTokens(body) {
  if (!isObj(body)) return 1;
  const text = JSON.stringify([body.system ?? null, body.messages ?? null, body.tools ?? null]);
  return Math.max(1, Math.ceil(text.length / 4));
}

/** The message object (non-streaming answer; its parts seed the stream). */
function buildMessage(rs) {
  const content = answerBlocks(rs);
  const body = isObj(rs.body) ? rs.body : {};
  const stopReason = has(rs.b, 'stop_reason') ? rs.b.stop_reason
    : body.max_tokens === 0 ? 'max_tokens'
      : content.some((c) => c.type === 'tool_use') ? 'tool_use' : 'end_turn';
  const usage = {
    input_tokens: inputTokens(body),
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
    output_tokens: outputTokens(content),
    service_tier: 'standard',
    ...(rs.b.usage || {}),
  };
  return {
    id: rs.b.response_id ?? `msg_mock_${rs.seq}`,
    type: 'message',
    role: 'assistant',
    model: rs.model,
    content,
    stop_reason: stopReason,
    stop_sequence: has(rs.b, 'stop_sequence') ? rs.b.stop_sequence : null,
    usage,
  };
}

/** The SSE events of a stream, each {event, data, delta}; `delta` events are the timed ones. */
function buildEvents(rs, msg) {
  const b = rs.b;
  const ev = (event, data, delta = false) => ({ event, data, delta });
  const { output_tokens: outTokens, ...restUsage } = msg.usage;
  const out = [ev('message_start', {
    type: 'message_start',
    message: { ...msg, content: [], stop_reason: null, stop_sequence: null, usage: { ...restUsage, output_tokens: Math.min(1, outTokens) } },
  })];
  const pings = () => { for (let k = 0; k < (b.pings ?? 1); k++) out.push(ev('ping', { type: 'ping' })); };
  let deltas = 0;
  const delta = (index, d) => {
    out.push(ev('content_block_delta', { type: 'content_block_delta', index, delta: d }, true));
    if (b.ping_every && ++deltas % b.ping_every === 0) out.push(ev('ping', { type: 'ping' }));
  };
  if (!msg.content.length) pings();
  msg.content.forEach((c, i) => {
    let start;
    if (c.type === 'text') start = { type: 'text', text: '' };
    else if (c.type === 'thinking') start = { type: 'thinking', thinking: '', signature: '' };
    else if (c.type === 'tool_use') start = { type: 'tool_use', id: c.id, name: c.name, input: {} };
    else start = c;
    out.push(ev('content_block_start', { type: 'content_block_start', index: i, content_block: start }));
    if (i === 0) pings();
    if (c.type === 'text') {
      for (const t of splitText(c.text, b.chunks)) delta(i, { type: 'text_delta', text: t });
    } else if (c.type === 'thinking') {
      for (const t of splitText(c.thinking)) delta(i, { type: 'thinking_delta', thinking: t });
      delta(i, { type: 'signature_delta', signature: c.signature });
    } else if (c.type === 'tool_use') {
      for (const f of splitJson(JSON.stringify(c.input), b.json_chunks ?? 3)) delta(i, { type: 'input_json_delta', partial_json: f });
    }
    out.push(ev('content_block_stop', { type: 'content_block_stop', index: i }));
  });
  const u = msg.usage;
  out.push(ev('message_delta', {
    type: 'message_delta',
    delta: { stop_reason: msg.stop_reason, stop_sequence: msg.stop_sequence },
    usage: {
      input_tokens: u.input_tokens,
      cache_creation_input_tokens: u.cache_creation_input_tokens,
      cache_read_input_tokens: u.cache_read_input_tokens,
      output_tokens: u.output_tokens,
    },
  }));
  out.push(ev('message_stop', { type: 'message_stop' }));
  return out;
}
const sse = (e) => `event: ${e.event}\ndata: ${typeof e.data === 'string' ? e.data : JSON.stringify(e.data)}\n\n`;

// ---- request lifecycle ----

function logLine(e) {
  if (G.logFile) G.logFile.write(`${JSON.stringify(e)}\n`);
}

function finish(rs, outcome) {
  if (rs.done) return;
  rs.done = true;
  const e = rs.entry;
  e.outcome = outcome;
  e.t_end_ms = Date.now();
  e.sent_bytes = rs.sentBytes;
  e.sent_sha256 = rs.sha.copy().digest('hex');
  G.inProgress--;
  G.active.delete(rs);
  logLine(e);
  if (opts.verbose) {
    process.stderr.write(`anthropic_mock: #${e.seq} ${e.method} ${e.path} ${e.status ?? '-'} ${outcome}${e.check_error ? ` (${e.check_error})` : ''}\n`);
  }
}

function sendHead(rs, status, ctype) {
  const { res } = rs;
  rs.entry.status = status;
  res.statusCode = status;
  res.setHeader('content-type', ctype);
  res.setHeader('request-id', `req_mock_${rs.seq}`);
  if (rs.b.retry_after !== undefined) res.setHeader('retry-after', rs.b.retry_after);
  if (rs.b.close_after_response) res.setHeader('connection', 'close');
  for (const [k, v] of Object.entries(rs.b.headers || {})) res.setHeader(k, v);
}
function write(rs, s) {
  if (!s) return;
  const buf = Buffer.from(s);
  rs.sentBytes += buf.length;
  rs.sha.update(buf);
  rs.res.write(buf);
}
function end(rs, s = '') {
  const buf = Buffer.from(s);
  rs.sentBytes += buf.length;
  rs.sha.update(buf);
  rs.res.end(buf);
}
function sendJson(rs, status, obj) {
  sendHead(rs, status, 'application/json');
  end(rs, JSON.stringify(obj));
}
function errorBody(rs, type, message) {
  return { type: 'error', error: { type, message }, request_id: `req_mock_${rs.seq}` };
}

/** Waits ms; false if the client went away meanwhile. */
function sleep(rs, ms) {
  if (rs.closed) return Promise.resolve(false);
  if (!ms) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => { rs.wake = null; resolve(true); }, ms);
    rs.wake = () => { clearTimeout(t); rs.wake = null; resolve(false); };
  });
}

/** Resolves once the socket holds no unwritten bytes (http corks until the next tick). */
async function drained(sock) {
  await new Promise((r) => setImmediate(r));
  while (sock.writableLength > 0 && !sock.destroyed) {
    await new Promise((r) => {
      const done = () => { sock.off('drain', done); sock.off('close', done); r(); };
      sock.on('drain', done);
      sock.on('close', done);
    });
  }
}

/** RST the connection once everything written so far has been handed to the kernel. */
async function reset(rs) {
  const sock = rs.req.socket;
  if (rs.res.headersSent) await drained(sock);
  if (rs.done) return;
  rs.entry.events_sent = rs.eventsSent;
  finish(rs, 'reset');
  sock.resetAndDestroy();
}

async function stream(rs, events) {
  const b = rs.b;
  sendHead(rs, rs.b.status ?? 200, 'text/event-stream; charset=utf-8');
  rs.res.setHeader('cache-control', 'no-cache');
  rs.res.flushHeaders();
  const deltaAt = events.findIndex((e) => e.event === 'message_delta');
  const errAt = b.error_event
    ? Math.min(events.length, b.error_event.after_events ?? (deltaAt < 0 ? events.length : deltaAt))
    : -1;
  let buf = '';
  let deltaNo = 0;
  const flush = () => { write(rs, buf); buf = ''; };
  for (let k = 0; k <= events.length; k++) {
    const e = events[k];
    if (e?.delta) {
      const wait = deltaNo++ === 0 ? b.first_chunk_delay_ms : b.chunk_interval_ms;
      if (wait) {
        flush();
        if (!(await sleep(rs, wait))) return;
      }
    }
    if (k === b.reset_after_events) { flush(); await reset(rs); return; }
    if (k === b.hang_after_events) { flush(); rs.hanging = true; rs.entry.events_sent = rs.eventsSent; return; }
    if (k === errAt) {
      const error = { type: b.error_event.type ?? 'overloaded_error', message: b.error_event.message ?? 'Overloaded' };
      buf += sse({ event: 'error', data: { type: 'error', error } });
      rs.eventsSent++;
      break;
    }
    if (!e) break;
    buf += e.raw ?? sse(e);
    rs.eventsSent++;
    rs.entry.events_sent = rs.eventsSent;
  }
  rs.entry.events_sent = rs.eventsSent;
  end(rs, buf);
}

function rawEvents(list) {
  return list.map((x) => (typeof x === 'string' ? { raw: x, delta: true } : { event: x.event ?? 'message', data: x.data, delta: true }));
}

function modelObject(id) {
  return {
    type: 'model', id, display_name: id, created_at: '2025-01-01T00:00:00Z',
    max_input_tokens: 200000, max_tokens: 64000,
  };
}
function modelsPage(query) {
  let ids = G.models;
  const limit = Math.min(1000, Math.max(1, parseInt(query.get('limit') ?? '20', 10) || 20));
  const after = query.get('after_id');
  const before = query.get('before_id');
  if (after && ids.includes(after)) ids = ids.slice(ids.indexOf(after) + 1);
  if (before && ids.includes(before)) ids = ids.slice(0, ids.indexOf(before));
  const page = before ? ids.slice(-limit) : ids.slice(0, limit);
  return {
    data: page.map(modelObject),
    has_more: page.length < ids.length,
    first_id: page[0] ?? null,
    last_id: page[page.length - 1] ?? null,
  };
}

/** The normal answer of each endpoint. */
async function answer(rs) {
  const b = rs.b;
  if (rs.endpoint === 'messages') {
    const msg = buildMessage(rs);
    if (rs.stream) return stream(rs, buildEvents(rs, msg));
    return sendJson(rs, b.status ?? 200, msg);
  }
  if (rs.endpoint === 'count_tokens') {
    const n = b.usage?.input_tokens ?? inputTokens(rs.body);
    return sendJson(rs, b.status ?? 200, { input_tokens: n });
  }
  if (rs.endpoint === 'models') return sendJson(rs, b.status ?? 200, modelsPage(rs.query));
  if (rs.endpoint === 'model') {
    const id = decodeURIComponent(rs.path.slice('/v1/models/'.length));
    if (!G.models.includes(id)) return sendJson(rs, 404, errorBody(rs, 'not_found_error', `model: ${id}`));
    return sendJson(rs, b.status ?? 200, modelObject(id));
  }
  return sendJson(rs, 404, errorBody(rs, 'not_found_error', 'Not Found'));
}

async function respond(rs) {
  const b = rs.b;
  if (!(await sleep(rs, b.latency_ms))) return;
  if (b.reset_before_response) return reset(rs);
  if (b.hang) { rs.hanging = true; return; }
  const status = b.status ?? 200;
  if (b.body !== undefined) {
    sendHead(rs, status, rs.stream ? 'text/event-stream; charset=utf-8' : 'application/json');
    return end(rs, b.body);
  }
  if (b.events) return stream(rs, rawEvents(b.events));
  if (b.malformed && rs.endpoint === 'messages') {
    const msg = buildMessage(rs);
    if (rs.stream) {
      const start = sse(buildEvents(rs, msg)[0]);
      sendHead(rs, status, 'text/event-stream; charset=utf-8');
      return end(rs, `${start}event: content_block_start\ndata: {"type":"content_block_st`);
    }
    const json = JSON.stringify(msg);
    sendHead(rs, status, 'application/json');
    return end(rs, json.slice(0, Math.floor(json.length / 2)));
  }
  if (status !== 200) {
    const [type, message] = defaultError(status);
    return sendJson(rs, status, errorBody(rs, b.error_type ?? type, b.error_message ?? message));
  }
  return answer(rs);
}

function classify(method, p) {
  if (method === 'POST' && p === '/v1/messages') return 'messages';
  if (method === 'POST' && p === '/v1/messages/count_tokens') return 'count_tokens';
  if (method === 'GET' && p === '/v1/models') return 'models';
  if (method === 'GET' && /^\/v1\/models\/[^/]+$/.test(p)) return 'model';
  return 'unknown';
}

function handleProvider(req, res, url, raw, tooLarge) {
  G.requests++;
  G.inProgress++;
  const sock = req.socket;
  if (sock.mgEpoch !== G.epoch) {
    if (sock.mgEpoch === undefined) G.openProvider++;
    sock.mgEpoch = G.epoch;
    G.connectionsTotal++;
  }
  const seq = ++G.seq;
  let body = null;
  let bodyJson = false;
  if (raw.length && !tooLarge) {
    const text = raw.toString('utf8');
    try { body = JSON.parse(text); bodyJson = true; } catch { body = text; }
  }
  const rs = {
    req, res, seq, url, path: url.pathname, query: url.searchParams,
    endpoint: classify(req.method, url.pathname),
    body, model: isObj(body) && typeof body.model === 'string' ? body.model : null,
    stream: isObj(body) && body.stream === true,
    b: {}, done: false, closed: false, hanging: false, wake: null,
    sentBytes: 0, sha: createHash('sha256'), eventsSent: 0,
  };
  const query = {};
  for (const [k, v] of url.searchParams) query[k] = has(query, k) ? [].concat(query[k], v) : v;
  rs.entry = {
    seq, t_start_ms: Date.now(), t_end_ms: null, method: req.method, path: url.pathname, query, url: req.url,
    headers: { ...req.headers }, body, model: rs.model, stream: rs.stream, endpoint: rs.endpoint,
    status: null, outcome: 'in_progress', check_error: null, sent_bytes: 0, sent_sha256: null,
    conn_id: sock.mgId, behaviour_source: 'default', behaviour_id: null, rule_index: null, events_sent: 0,
  };
  G.log.push(rs.entry);
  if (G.log.length > logMax) G.log.splice(0, G.log.length - logMax);
  G.active.add(rs);
  res.on('finish', () => finish(rs, 'complete'));
  res.on('close', () => {
    if (rs.done) return;
    rs.closed = true;
    if (rs.wake) rs.wake();
    finish(rs, rs.hanging ? 'hang_closed' : 'client_closed');
  });

  // choose the behaviour: the first matching rule, the script default, or none
  let rule = null;
  let ruleIndex = -1;
  for (let i = 0; i < G.rules.length; i++) {
    if (ruleMatches(G.rules[i], rs)) { rule = G.rules[i]; ruleIndex = i; break; }
  }
  const chosen = rule ? rule.b : G.def ? G.def.b : {};

  // the real API's checks come first; a rejected request uses no rule
  if (tooLarge) {
    rs.entry.check_error = 'request body over 32 MB';
    rs.entry.behaviour_source = 'checks';
    return sendJson(rs, 413, errorBody(rs, 'request_too_large', 'Request exceeds the maximum allowed number of bytes.'));
  }
  if (chosen.checks !== false && rs.endpoint !== 'unknown') {
    try {
      checkHeaders(req.headers);
      if (rs.endpoint === 'messages' || rs.endpoint === 'count_tokens') {
        if (!bodyJson) fail('There was an issue with the format or content of your request: the body is not valid JSON');
        checkBody(body, req.headers['anthropic-version'], rs.endpoint === 'count_tokens');
      }
    } catch (e) {
      if (!(e instanceof CheckError)) throw e;
      rs.entry.check_error = e.message;
      rs.entry.behaviour_source = 'checks';
      return sendJson(rs, e.status, errorBody(rs, e.type, e.message));
    }
  }
  if (rule) {
    if (rule.remaining !== null) rule.remaining--;
    rule.hits++;
    rs.entry.behaviour_source = 'rule';
    rs.entry.rule_index = ruleIndex;
  } else if (G.def) {
    rs.entry.behaviour_source = 'script_default';
  }
  rs.b = chosen;
  rs.entry.behaviour_id = chosen.id ?? null;
  respond(rs).catch((e) => {
    process.stderr.write(`anthropic_mock: request #${seq} failed: ${e.stack}\n`);
    if (!rs.done) { finish(rs, 'client_closed'); sock.destroy(); }
  });
}

// ---- control API ----

function ctlReply(res, status, obj) {
  const s = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
  res.end(s);
}
const ctlError = (res, status, message) => ctlReply(res, status, { type: 'error', error: { type: 'mock_error', message } });

function ctlScript(res, raw) {
  let j;
  try { j = raw.length ? JSON.parse(raw.toString('utf8')) : {}; } catch { j = null; }
  if (!isObj(j)) return ctlError(res, 400, 'body must be a JSON object {"rules":[...],"default":{...}}');
  for (const k of Object.keys(j)) {
    if (!['rules', 'default', 'append', 'api_keys'].includes(k)) return ctlError(res, 400, `unknown script field '${k}'`);
  }
  if (j.rules !== undefined && j.rules !== null && !Array.isArray(j.rules)) return ctlError(res, 400, "'rules' must be an array");
  if (j.append !== undefined && typeof j.append !== 'boolean') return ctlError(res, 400, "'append' must be a boolean");
  if (j.api_keys !== undefined && j.api_keys !== null
      && (!Array.isArray(j.api_keys) || j.api_keys.some((k) => typeof k !== 'string' || !k))) {
    return ctlError(res, 400, "'api_keys' must be an array of non-empty strings, or null");
  }
  const rules = [];
  let def = null;
  try {
    (j.rules || []).forEach((r, i) => {
      try { rules.push(parseRule(r)); } catch (e) { throw new Error(`rules[${i}]: ${e.message}`); }
    });
    if (j.default !== undefined && j.default !== null) {
      try { def = { b: parseBehaviour(j.default), src: j.default }; } catch (e) { throw new Error(`default: ${e.message}`); }
    }
  } catch (e) {
    return ctlError(res, 400, e.message);
  }
  if (j.append) {
    G.rules.push(...rules);
    if (j.default !== undefined) G.def = def;
    if (j.api_keys !== undefined) G.scriptKeys = j.api_keys;
  } else {
    G.rules = rules;
    G.def = def;
    G.scriptKeys = j.api_keys ?? null;
  }
  return ctlReply(res, 200, { ok: true, rules: G.rules.length, default: !!G.def, api_keys: expectedKeys().length });
}

function handleControl(req, res, url, raw) {
  const p = url.pathname;
  const get = req.method === 'GET';
  const post = req.method === 'POST';
  if (p === '/__mock/script' && post) return ctlScript(res, raw);
  if (p === '/__mock/script' && get) {
    return ctlReply(res, 200, {
      rules: G.rules.map((r) => ({ rule: r.src, remaining: r.remaining, hits: r.hits })),
      default: G.def ? G.def.src : null,
      api_keys: expectedKeys().length,
    });
  }
  if (p === '/__mock/reset' && post) {
    G.rules = [];
    G.def = null;
    G.scriptKeys = null;
    G.log = [];
    G.seq = 0;
    G.requests = 0;
    G.connectionsTotal = 0;
    G.acceptedTotal = 0;
    G.epoch++;
    return ctlReply(res, 200, { ok: true });
  }
  if (p === '/__mock/log' && get) {
    const since = Number(url.searchParams.get('since') ?? 0) || 0;
    const limit = url.searchParams.has('limit') ? Number(url.searchParams.get('limit')) : Infinity;
    const entries = G.log.filter((e) => e.seq > since).slice(0, limit >= 0 ? limit : Infinity);
    return ctlReply(res, 200, { last_seq: G.seq, entries });
  }
  if (p === '/__mock/stats' && get) {
    return ctlReply(res, 200, {
      requests: G.requests, open_connections: G.openProvider, connections_total: G.connectionsTotal,
      in_progress: G.inProgress, last_seq: G.seq, log_entries: G.log.length, rules: G.rules.length,
      open_connections_all: G.openAll, accepted_total: G.acceptedTotal,
    });
  }
  if (p === '/__mock/health' && get) return ctlReply(res, 200, { ok: true });
  return ctlError(res, 404, 'unknown control endpoint or method');
}

// ---- server ----

const server = http.createServer({ keepAliveTimeout: 60000, requestTimeout: 0, headersTimeout: 60000 });
server.on('connection', (sock) => {
  sock.mgId = ++G.connIdNext;
  G.acceptedTotal++;
  G.openAll++;
  sock.on('close', () => {
    G.openAll--;
    if (sock.mgEpoch !== undefined) G.openProvider--;
  });
});
server.on('request', (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const control = url.pathname.startsWith('/__mock/');
  const cap = control ? 64 * 1024 * 1024 : MAX_BODY;
  const parts = [];
  let size = 0;
  let tooLarge = false;
  req.on('data', (d) => {
    size += d.length;
    if (size > cap) tooLarge = true;
    else parts.push(d);
  });
  req.on('end', () => {
    if (G.shuttingDown) { res.destroy(); return; }
    const raw = Buffer.concat(parts);
    if (control) {
      if (tooLarge) return ctlError(res, 413, 'control body too large');
      return handleControl(req, res, url, raw);
    }
    return handleProvider(req, res, url, raw, tooLarge);
  });
});
server.on('clientError', (err, sock) => {
  if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  else sock.destroy();
});

function shutdown() {
  if (G.shuttingDown) return;
  G.shuttingDown = true;
  for (const rs of [...G.active]) {
    finish(rs, 'shutdown');
    rs.req.socket.destroy();
  }
  server.close();
  server.closeAllConnections();
  if (G.logFile) G.logFile.end(() => process.exit(0));
  else process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
if (opts['exit-on-eof']) {
  process.stdin.on('end', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}

server.on('error', (e) => {
  process.stderr.write(`anthropic_mock: ${e.message}\n`);
  process.exit(1);
});
server.listen(listenPort, opts.host, () => {
  const { port } = server.address();
  if (opts['port-file']) {
    const tmp = `${opts['port-file']}.tmp.${process.pid}`;
    fs.writeFileSync(tmp, `${port}\n`);
    fs.renameSync(tmp, opts['port-file']);
  }
  process.stdout.write(`mock listening on ${opts.host}:${port}\n`);
  if (!opts.quiet) process.stderr.write(`anthropic_mock: models ${G.models.join(',')}\n`);
});
