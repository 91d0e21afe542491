#!/usr/bin/env node
// tests/mocks/bedrock_mock.mjs -- a scriptable mock of the AWS Bedrock Runtime API for
// moongate's tests (Node 20, built-in modules only).
//
// It verifies what it receives the way bedrock-runtime does: the SigV4 signature is
// recomputed from the request with the secret of the access key id it names (several
// secrets may be registered for one key id: the log says which one signed, which is how a
// rotation test tells old from new), the session token must match its credential, a
// Bedrock API key may come as a bearer token instead; Converse bodies are checked for the
// documented shape (roles alternate, content blocks are one known member each, toolUse and
// toolResult need toolConfig and pair up), InvokeModel bodies for Anthropic models need
// anthropic_version bedrock-2023-05-31 and refuse extraneous keys ("model", "stream").
// It answers Converse, ConverseStream, InvokeModel and InvokeModelWithResponseStream in
// their documented shapes; streams are AWS event-stream frames (prelude, headers, payload,
// both CRC32s), optionally split into writes at arbitrary byte offsets; errors carry
// x-amzn-ErrorType and {"message": ...}.  Tests script behaviours through
// POST /__mock/script and read what was sent from GET /__mock/log (the control API and
// rule vocabulary follow tests/mocks/anthropic_mock.mjs; see tests/mocks/README.md).

import http from 'node:http';
import fs from 'node:fs';
import { createHash, createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { parseArgs } from 'node:util';

const USAGE = `usage: bedrock_mock.mjs [--host 127.0.0.1] [--port N] [--port-file PATH] [--log PATH]
                         [--credential AKID:SECRET[:TOKEN[:LABEL]]]... [--bearer TOKEN]...
                         [--region REGION] [--exit-on-eof] [--quiet] [--verbose]`;

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
      credential: { type: 'string', multiple: true, default: [] },
      bearer: { type: 'string', multiple: true, default: [] },
      region: { type: 'string' },
      'max-skew-s': { type: 'string', default: '900' },
      'exit-on-eof': { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (e) {
  process.stderr.write(`bedrock_mock: ${e.message}\n${USAGE}\n`);
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
    process.stderr.write(`bedrock_mock: --${name} must be an integer in [${lo}, ${hi}]\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
}
const listenPort = intOption('port', 0, 65535);
const logMax = intOption('log-max', 1, 10000000);
const maxSkewMs = intOption('max-skew-s', 0, 86400 * 365) * 1000;

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const has = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

/** A credential {access_key_id, secret_access_key, session_token, label}. */
function parseCredentialArg(s) {
  const parts = s.split(':');
  if (parts.length < 2 || !parts[0] || !parts[1]) throw new Error(`--credential ${JSON.stringify(s)}: AKID:SECRET[:TOKEN[:LABEL]]`);
  return { access_key_id: parts[0], secret_access_key: parts[1], session_token: parts[2] || null, label: parts[3] || parts[0] };
}
let cliCredentials;
try {
  cliCredentials = opts.credential.map(parseCredentialArg);
} catch (e) {
  process.stderr.write(`bedrock_mock: ${e.message}\n`);
  process.exit(2);
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
  def: null,
  cliCredentials,
  scriptCredentials: null, // null: the --credential list applies
  cliBearers: opts.bearer,
  scriptBearers: null,
  region: opts.region ?? null,
  active: new Set(),
  logFile: opts.log ? fs.createWriteStream(opts.log, { flags: 'a' }) : null,
  shuttingDown: false,
};
const credentials = () => G.scriptCredentials ?? G.cliCredentials;
const bearers = () => G.scriptBearers ?? G.cliBearers;

// ---- SigV4 verification (the canonical request rebuilt from what arrived) ----

const sha256hex = (b) => createHash('sha256').update(b).digest('hex');
const hmac = (key, s) => createHmac('sha256', key).update(s).digest();

/** RFC 3986 encoding with the unreserved set A-Z a-z 0-9 - . _ ~ (AWS's UriEncode). */
function uriEncode(s, keepSlash) {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
/** Percent-decoded bytes ('+' stays '+'; a '%' without two hex digits stays literal). */
function pctDecode(s) {
  const out = [];
  const b = Buffer.from(s, 'utf8');
  const hex = (c) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x25 && i + 2 < b.length && hex(b[i + 1]) && hex(b[i + 2])) {
      out.push(parseInt(String.fromCharCode(b[i + 1], b[i + 2]), 16));
      i += 2;
    } else {
      out.push(b[i]);
    }
  }
  return Buffer.from(out);
}
function encodeBytes(buf) {
  let out = '';
  for (const c of buf) {
    const ch = String.fromCharCode(c);
    out += /[A-Za-z0-9\-._~]/.test(ch) ? ch : `%${c.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
/** The canonical URI of a non-S3 service: the wire path normalised, then encoded again. */
function canonicalUri(rawPath) {
  const segs = rawPath.split('/');
  const out = [];
  for (const s of segs.slice(1)) {
    if (s === '.' || s === '') continue;
    if (s === '..') { out.pop(); continue; }
    out.push(s);
  }
  let p = `/${out.join('/')}`;
  if (rawPath.endsWith('/') && out.length) p += '/';
  return uriEncode(p, true);
}
function canonicalQuery(q) {
  if (!q) return '';
  const pairs = q.split('&').filter((x) => x !== '').map((kv) => {
    const i = kv.indexOf('=');
    const k = i < 0 ? kv : kv.slice(0, i);
    const v = i < 0 ? '' : kv.slice(i + 1);
    return [encodeBytes(pctDecode(k)), encodeBytes(pctDecode(v))];
  });
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}
/** Header values by lower-case name, repeated headers joined with ',' in order. */
function rawHeaderMap(rawHeaders) {
  const m = new Map();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const k = rawHeaders[i].toLowerCase();
    const v = rawHeaders[i + 1].trim().replace(/[ \t]+/g, ' ');
    m.set(k, m.has(k) ? `${m.get(k)},${v}` : v);
  }
  return m;
}

class AwsError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}
const SIG_MISMATCH = 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

/**
 * Checks the Authorization of a request; returns what the log records about it, or throws
 * AwsError as bedrock-runtime answers (403 with the exception type).
 */
function verifyAuth(req, rawPath, rawQuery, body) {
  const h = rawHeaderMap(req.rawHeaders);
  const az = h.get('authorization');
  if (!az) throw new AwsError(403, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
  const bm = /^Bearer\s+(\S+)$/i.exec(az);
  if (bm) {
    if (!bearers().includes(bm[1])) {
      throw new AwsError(403, 'UnrecognizedClientException', 'Authentication failed: Please make sure your API Key is valid.');
    }
    return { kind: 'bearer', verified: true, bearer: bm[1], label: `bearer:${bm[1].slice(-4)}` };
  }
  const m = /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(az);
  if (!m) throw new AwsError(403, 'IncompleteSignatureException', `Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters. Authorization=${az.slice(0, 40)}`);
  const [akid, date, region, service, term] = m[1].split('/');
  const signed = m[2].split(';');
  const info = { kind: 'sigv4', access_key_id: akid, region, service, signed_headers: m[2], verified: false, label: null };
  if (term !== 'aws4_request' || !date || !region || !service) {
    throw new AwsError(403, 'IncompleteSignatureException', `Credential should be scoped to a valid region, service and aws4_request: ${m[1]}`);
  }
  if (service !== 'bedrock') throw new AwsError(403, 'InvalidSignatureException', `Credential should be scoped to correct service: 'bedrock'.`);
  if (G.region && region !== G.region) throw new AwsError(403, 'InvalidSignatureException', `Credential should be scoped to a valid region. `);
  const amz = h.get('x-amz-date');
  if (!amz || !/^\d{8}T\d{6}Z$/.test(amz)) throw new AwsError(403, 'IncompleteSignatureException', 'X-Amz-Date header is missing or malformed.');
  if (!signed.includes('host') || !signed.includes('x-amz-date')) {
    throw new AwsError(403, 'IncompleteSignatureException', 'host and x-amz-date must be signed headers.');
  }
  if (amz.slice(0, 8) !== date) throw new AwsError(403, 'InvalidSignatureException', 'Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.');
  const t = Date.UTC(+amz.slice(0, 4), +amz.slice(4, 6) - 1, +amz.slice(6, 8), +amz.slice(9, 11), +amz.slice(11, 13), +amz.slice(13, 15));
  if (Math.abs(Date.now() - t) > maxSkewMs) throw new AwsError(403, 'InvalidSignatureException', 'Signature expired: the request time is too far from the server time.');
  const cands = credentials().filter((c) => c.access_key_id === akid);
  if (!cands.length) throw new AwsError(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
  for (const k of signed) {
    if (!h.has(k)) throw new AwsError(403, 'InvalidSignatureException', `${SIG_MISMATCH} (signed header ${k} is missing)`);
  }
  const tok = h.get('x-amz-security-token') ?? null;
  info.session_token = tok;
  const canonical = [
    req.method,
    canonicalUri(rawPath),
    canonicalQuery(rawQuery),
    signed.map((k) => `${k}:${h.get(k)}\n`).join(''),
    m[2],
    sha256hex(body),
  ].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const sts = `AWS4-HMAC-SHA256\n${amz}\n${scope}\n${sha256hex(canonical)}`;
  let tokenMismatch = false;
  for (const c of cands) {
    const kSigning = hmac(hmac(hmac(hmac(`AWS4${c.secret_access_key}`, date), region), service), 'aws4_request');
    if (hmac(kSigning, sts).toString('hex') !== m[3]) continue;
    if ((c.session_token ?? null) !== tok || (tok !== null && !signed.includes('x-amz-security-token'))) {
      tokenMismatch = true;
      continue;
    }
    info.verified = true;
    info.label = c.label;
    return info;
  }
  if (tokenMismatch) throw new AwsError(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
  throw new AwsError(403, 'InvalidSignatureException',
    `${SIG_MISMATCH}\n\nThe Canonical String for this request should have been\n'${canonical}'\n\nThe String-to-Sign should have been\n'${sts}'\n`);
}

// ---- request checks (ValidationException, as bedrock-runtime words them where known) ----

const invalid = (msg) => { throw new AwsError(400, 'ValidationException', msg); };
const CONVERSE_FIELDS = ['messages', 'system', 'inferenceConfig', 'toolConfig', 'guardrailConfig',
  'additionalModelRequestFields', 'additionalModelResponseFieldPaths', 'promptVariables',
  'requestMetadata', 'performanceConfig', 'serviceTier'];
const CONTENT_MEMBERS = ['text', 'image', 'document', 'video', 'toolUse', 'toolResult', 'guardContent',
  'reasoningContent', 'cachePoint', 'citationsContent', 'searchResult'];
const IMAGE_FORMATS = ['png', 'jpeg', 'gif', 'webp'];
const DOC_FORMATS = ['pdf', 'csv', 'doc', 'docx', 'xls', 'xlsx', 'html', 'txt', 'md'];

function checkBlock(b, p, ctx) {
  if (!isObj(b)) invalid(`${p} must be an object`);
  const keys = Object.keys(b);
  if (keys.length !== 1 || !CONTENT_MEMBERS.includes(keys[0])) {
    invalid(`${p}: a ContentBlock has exactly one of ${CONTENT_MEMBERS.join(', ')}; got ${JSON.stringify(keys)}`);
  }
  const k = keys[0];
  const v = b[k];
  if (k === 'text') {
    if (typeof v !== 'string') invalid(`${p}.text must be a string`);
    if (!v.trim()) invalid(`The text field in the ContentBlock object at ${p} is blank. Add text to the text field, and try again.`);
  } else if (k === 'image') {
    if (!isObj(v) || !IMAGE_FORMATS.includes(v.format) || !isObj(v.source)) invalid(`${p}.image: format (${IMAGE_FORMATS.join('|')}) and source are required`);
    if (has(v.source, 'bytes') && (typeof v.source.bytes !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(v.source.bytes))) invalid(`${p}.image.source.bytes must be base64`);
  } else if (k === 'document') {
    if (!isObj(v) || !DOC_FORMATS.includes(v.format) || typeof v.name !== 'string' || !isObj(v.source)) invalid(`${p}.document: format, name and source are required`);
    if (!/^[A-Za-z0-9()[\]-]+( [A-Za-z0-9()[\]-]+)*$/.test(v.name)) invalid(`${p}.document.name: only alphanumeric characters, single spaces, hyphens, parentheses and square brackets`);
  } else if (k === 'toolUse') {
    ctx.toolBlocks = true;
    if (!isObj(v) || typeof v.toolUseId !== 'string' || typeof v.name !== 'string' || !isObj(v.input)) invalid(`${p}.toolUse: toolUseId, name and an input object are required`);
  } else if (k === 'toolResult') {
    ctx.toolBlocks = true;
    if (!isObj(v) || typeof v.toolUseId !== 'string' || !Array.isArray(v.content)) invalid(`${p}.toolResult: toolUseId and content are required`);
    v.content.forEach((c, i) => {
      if (!isObj(c) || Object.keys(c).length !== 1 || !['text', 'json', 'image', 'document', 'video'].includes(Object.keys(c)[0])) invalid(`${p}.toolResult.content.${i}: one of text, json, image, document, video`);
    });
  } else if (k === 'reasoningContent') {
    if (!isObj(v) || (!isObj(v.reasoningText) && typeof v.redactedContent !== 'string')) invalid(`${p}.reasoningContent: reasoningText or redactedContent`);
  } else if (k === 'cachePoint') {
    if (!isObj(v) || v.type !== 'default') invalid(`${p}.cachePoint.type must be "default"`);
  }
}

function checkConverse(body) {
  if (!isObj(body)) invalid('Malformed input request: the body is not a JSON object');
  for (const k of Object.keys(body)) if (!CONVERSE_FIELDS.includes(k)) invalid(`Malformed input request: extraneous key [${k}] is not permitted`);
  const msgs = body.messages;
  if (!Array.isArray(msgs) || !msgs.length) invalid('A conversation must start with a user message. Try again with a conversation that starts with a user message.');
  const ctx = { toolBlocks: false };
  msgs.forEach((m, i) => {
    const p = `messages.${i}`;
    if (!isObj(m)) invalid(`${p} must be an object`);
    for (const k of Object.keys(m)) if (!['role', 'content'].includes(k)) invalid(`Malformed input request: extraneous key [${k}] is not permitted`);
    if (m.role !== 'user' && m.role !== 'assistant') invalid(`${p}.role: Value at '${p}.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]`);
    if (i === 0 && m.role !== 'user') invalid('A conversation must start with a user message. Try again with a conversation that starts with a user message.');
    if (i > 0 && m.role === msgs[i - 1].role) invalid('A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.');
    if (!Array.isArray(m.content) || !m.content.length) invalid(`The content field in the Message object at ${p} is empty. Add a ContentBlock object to the content field and try again.`);
    m.content.forEach((b, j) => checkBlock(b, `${p}.content.${j}`, ctx));
    // toolResults answer the previous assistant turn's toolUses
    const results = m.content.filter((b) => b.toolResult).map((b) => b.toolResult.toolUseId);
    if (results.length) {
      const prev = i > 0 ? msgs[i - 1].content.filter((b) => b.toolUse).map((b) => b.toolUse.toolUseId) : [];
      const stray = results.filter((id) => !prev.includes(id));
      if (stray.length) invalid(`The number of toolResult blocks at ${p}.content exceeds the number of toolUse blocks of previous turn.`);
    }
    const uses = m.content.filter((b) => b.toolUse).map((b) => b.toolUse.toolUseId);
    if (uses.length && i + 1 < msgs.length) {
      const next = msgs[i + 1].content.filter((b) => b.toolResult).map((b) => b.toolResult.toolUseId);
      const missing = uses.filter((id) => !next.includes(id));
      if (missing.length) invalid(`Expected toolResult blocks at messages.${i + 1}.content for the following Ids: ${missing.join(', ')}`);
    }
  });
  if (has(body, 'system')) {
    if (!Array.isArray(body.system)) invalid('system must be a list');
    body.system.forEach((s, i) => {
      if (!isObj(s) || Object.keys(s).length !== 1 || !['text', 'cachePoint', 'guardContent'].includes(Object.keys(s)[0])) invalid(`system.${i}: one of text, cachePoint, guardContent`);
    });
  }
  if (has(body, 'inferenceConfig')) {
    const ic = body.inferenceConfig;
    if (!isObj(ic)) invalid('inferenceConfig must be an object');
    for (const k of Object.keys(ic)) if (!['maxTokens', 'temperature', 'topP', 'stopSequences'].includes(k)) invalid(`Malformed input request: extraneous key [${k}] is not permitted`);
    if (has(ic, 'maxTokens') && (!Number.isInteger(ic.maxTokens) || ic.maxTokens < 1)) invalid("Value at 'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1");
    for (const k of ['temperature', 'topP']) {
      if (has(ic, k) && (typeof ic[k] !== 'number' || ic[k] < 0 || ic[k] > 1)) invalid(`Value at 'inferenceConfig.${k}' failed to satisfy constraint: Member must have value between 0 and 1`);
    }
    if (has(ic, 'stopSequences') && (!Array.isArray(ic.stopSequences) || ic.stopSequences.some((s) => typeof s !== 'string' || !s))) invalid('inferenceConfig.stopSequences must be a list of non-empty strings');
  }
  if (has(body, 'toolConfig')) {
    const tc = body.toolConfig;
    if (!isObj(tc) || !Array.isArray(tc.tools) || !tc.tools.length) invalid('toolConfig.tools must be a non-empty list');
    tc.tools.forEach((t, i) => {
      if (isObj(t) && (isObj(t.cachePoint) || isObj(t.systemTool))) return;
      const s = t?.toolSpec;
      if (!isObj(s) || typeof s.name !== 'string' || !/^[a-zA-Z0-9_-]{1,64}$/.test(s.name) || !isObj(s.inputSchema) || !isObj(s.inputSchema.json)) {
        invalid(`toolConfig.tools.${i}.toolSpec: a name matching [a-zA-Z0-9_-]{1,64} and inputSchema.json are required`);
      }
    });
    if (has(tc, 'toolChoice')) {
      const c = tc.toolChoice;
      const ks = isObj(c) ? Object.keys(c) : [];
      if (ks.length !== 1 || !['auto', 'any', 'tool'].includes(ks[0]) || (ks[0] === 'tool' && typeof c.tool.name !== 'string')) invalid('toolConfig.toolChoice: one of auto, any, tool{name}');
    }
  } else if (ctx.toolBlocks) {
    invalid('The toolConfig field must be defined when using toolUse and toolResult content blocks.');
  }
}

const INVOKE_ANTHROPIC_KEYS = ['anthropic_version', 'anthropic_beta', 'max_tokens', 'system', 'messages',
  'temperature', 'top_p', 'top_k', 'stop_sequences', 'tools', 'tool_choice', 'thinking', 'metadata',
  'output_config', 'output_format'];
function checkInvokeAnthropic(body) {
  const mi = (s) => invalid(`Malformed input request: ${s}, please reformat your input and try again.`);
  if (!isObj(body)) mi('#: expected type: JSONObject, found: String');
  for (const k of Object.keys(body)) if (!INVOKE_ANTHROPIC_KEYS.includes(k)) mi(`#: extraneous key [${k}] is not permitted`);
  for (const k of ['anthropic_version', 'max_tokens', 'messages']) if (!has(body, k)) mi(`#: required key [${k}] not found`);
  if (body.anthropic_version !== 'bedrock-2023-05-31') mi(`#/anthropic_version: ${JSON.stringify(body.anthropic_version)} is not a valid enum value`);
  if (!Number.isInteger(body.max_tokens) || body.max_tokens < 1) mi('#/max_tokens: expected minimum: 1');
  if (!Array.isArray(body.messages) || !body.messages.length) mi('#/messages: expected minimum item count: 1');
  body.messages.forEach((m, i) => {
    if (!isObj(m) || !['user', 'assistant'].includes(m.role)) mi(`#/messages/${i}/role: not a valid enum value`);
    if (typeof m.content !== 'string' && !Array.isArray(m.content)) mi(`#/messages/${i}/content: expected type: JSONArray or String`);
  });
  if (body.messages[0].role !== 'user') invalid('messages: first message must use the "user" role');
  if (has(body, 'anthropic_beta') && (!Array.isArray(body.anthropic_beta) || body.anthropic_beta.some((b) => typeof b !== 'string'))) mi('#/anthropic_beta: expected type: JSONArray');
}

// ---- answers ----

const words = (s) => (s.match(/\S+/g) || []).length;
/** Splits text into deltas: one per word (and the whitespace after it), or `chunks` even slices. */
function splitText(text, chunks) {
  const pieces = text.match(/\s*\S+\s*/g) || [];
  if (chunks === undefined || chunks === pieces.length) return pieces.length || !text ? pieces : [text];
  if (chunks === 0) return [];
  const cps = Array.from(text);
  const out = [];
  for (let k = 0; k < chunks; k++) out.push(cps.slice(Math.floor((k * cps.length) / chunks), Math.floor(((k + 1) * cps.length) / chunks)).join(''));
  return out;
}
function splitN(s, n) {
  const cps = Array.from(s);
  const k = Math.max(1, Math.min(n, cps.length));
  const out = [];
  for (let i = 0; i < k; i++) out.push(cps.slice(Math.floor((i * cps.length) / k), Math.floor(((i + 1) * cps.length) / k)).join(''));
  return out;
}
/** Bedrock pads every stream payload with "p": letters, so payload sizes leak nothing. */
const PAD = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const pad = (n) => PAD.slice(0, 1 + (n * 7) % PAD.length);

/** The answer's blocks: [{type: text|tool_use|reasoning|redacted, ...}]. */
function answerBlocks(rs) {
  const b = rs.b;
  let n = 0;
  const toolId = () => `tooluse_mock${rs.seq}x${n++}`;
  if (b.blocks) {
    return b.blocks.map((x) => {
      if (x.type === 'tool_use') return { type: 'tool_use', id: x.id ?? toolId(), name: x.name, input: x.input ?? {} };
      return { ...x };
    });
  }
  if (b.content !== undefined) return [{ type: 'text', text: b.content }];
  const body = isObj(rs.body) ? rs.body : {};
  // a forced tool gets called (converse toolChoice.tool / any; invoke tool_choice)
  const tcc = body.toolConfig?.toolChoice;
  const tools = body.toolConfig?.tools?.filter((t) => t.toolSpec) ?? [];
  if (tcc && (tcc.any || tcc.tool) && tools.length) {
    return [{ type: 'tool_use', id: toolId(), name: tcc.tool?.name ?? tools[0].toolSpec.name, input: {} }];
  }
  let text = `mock reply from ${rs.model}`;
  if (b.chunks > 4) for (let k = 5; k <= b.chunks; k++) text += ` ${k}`;
  return [{ type: 'text', text }];
}
function inputTokens(body) {
  return Math.max(1, Math.floor(JSON.stringify(body ?? '').length / 4));
}
function outputTokens(blocks) {
  let n = 0;
  for (const c of blocks) {
    if (c.type === 'text' || c.type === 'reasoning') n += words(c.text);
    else if (c.type === 'tool_use') n += Math.max(1, Math.ceil(JSON.stringify(c.input).length / 4));
    else n += 1;
  }
  return n;
}
/** The stop reason (Converse and Anthropic spell end_turn and tool_use the same). */
function stopReasonOf(rs, blocks) {
  if (has(rs.b, 'stop_reason')) return rs.b.stop_reason;
  return blocks.some((c) => c.type === 'tool_use') ? 'tool_use' : 'end_turn';
}
function usageOf(rs, blocks) {
  const u = rs.b.usage || {};
  const inTok = u.inputTokens ?? inputTokens(rs.body);
  const outTok = u.outputTokens ?? outputTokens(blocks);
  const out = { inputTokens: inTok, outputTokens: outTok, totalTokens: u.totalTokens ?? inTok + outTok };
  if (has(u, 'cacheReadInputTokens')) out.cacheReadInputTokens = u.cacheReadInputTokens;
  if (has(u, 'cacheWriteInputTokens')) out.cacheWriteInputTokens = u.cacheWriteInputTokens;
  return out;
}

function converseMessage(rs) {
  const blocks = answerBlocks(rs);
  const content = blocks.map((c) => {
    if (c.type === 'text') return { text: c.text };
    if (c.type === 'tool_use') return { toolUse: { toolUseId: c.id, name: c.name, input: c.input } };
    if (c.type === 'reasoning') return { reasoningContent: { reasoningText: { text: c.text, ...(c.signature ? { signature: c.signature } : {}) } } };
    return { reasoningContent: { redactedContent: c.data } };
  });
  return {
    output: { message: { role: 'assistant', content } },
    stopReason: stopReasonOf(rs, blocks),
    usage: usageOf(rs, blocks),
    metrics: { latencyMs: rs.b.latency_ms ?? 0 },
  };
}
/** ConverseStream events [{event, payload, delta}]; delta events are the timed ones. */
function converseEvents(rs) {
  const blocks = answerBlocks(rs);
  const out = [];
  let k = 0;
  const ev = (event, payload, delta = false) => out.push({ event, payload: { ...payload, p: pad(k++) }, delta });
  ev('messageStart', { role: 'assistant' });
  blocks.forEach((c, i) => {
    if (c.type === 'text') {
      for (const t of splitText(c.text, rs.b.chunks)) ev('contentBlockDelta', { contentBlockIndex: i, delta: { text: t } }, true);
    } else if (c.type === 'tool_use') {
      ev('contentBlockStart', { contentBlockIndex: i, start: { toolUse: { toolUseId: c.id, name: c.name } } });
      for (const f of splitN(JSON.stringify(c.input), rs.b.json_chunks ?? 3)) ev('contentBlockDelta', { contentBlockIndex: i, delta: { toolUse: { input: f } } }, true);
    } else if (c.type === 'reasoning') {
      for (const t of splitText(c.text)) ev('contentBlockDelta', { contentBlockIndex: i, delta: { reasoningContent: { text: t } } }, true);
      if (c.signature) ev('contentBlockDelta', { contentBlockIndex: i, delta: { reasoningContent: { signature: c.signature } } }, true);
    } else {
      ev('contentBlockDelta', { contentBlockIndex: i, delta: { reasoningContent: { redactedContent: c.data } } }, true);
    }
    ev('contentBlockStop', { contentBlockIndex: i });
  });
  ev('messageStop', { stopReason: stopReasonOf(rs, blocks) });
  ev('metadata', { usage: usageOf(rs, blocks), metrics: { latencyMs: rs.b.latency_ms ?? 0 } });
  return out;
}

function anthropicMessage(rs) {
  const blocks = answerBlocks(rs);
  const content = blocks.map((c) => {
    if (c.type === 'text') return { type: 'text', text: c.text };
    if (c.type === 'tool_use') return { type: 'tool_use', id: c.id, name: c.name, input: c.input };
    if (c.type === 'reasoning') return { type: 'thinking', thinking: c.text, signature: c.signature ?? '' };
    return { type: 'redacted_thinking', data: c.data };
  });
  const u = usageOf(rs, blocks);
  return {
    id: `msg_bdrk_mock${rs.seq}`,
    type: 'message',
    role: 'assistant',
    model: rs.model.replace(/^(?:[a-z-]+\.)?anthropic\./, '').replace(/-v\d+:\d+$/, ''),
    content,
    stop_reason: stopReasonOf(rs, blocks),
    stop_sequence: null,
    usage: { input_tokens: u.inputTokens, output_tokens: u.outputTokens, ...(has(u, 'cacheReadInputTokens') ? { cache_read_input_tokens: u.cacheReadInputTokens } : {}), ...(has(u, 'cacheWriteInputTokens') ? { cache_creation_input_tokens: u.cacheWriteInputTokens } : {}) },
  };
}
/** InvokeModelWithResponseStream chunks [{event:'chunk', payload:{bytes}, delta}]. */
function invokeEvents(rs) {
  const msg = anthropicMessage(rs);
  const out = [];
  let k = 0;
  const chunk = (obj, delta = false) => out.push({ event: 'chunk', payload: { bytes: Buffer.from(JSON.stringify(obj)).toString('base64'), p: pad(k++) }, delta });
  chunk({ type: 'message_start', message: { ...msg, content: [], stop_reason: null, usage: { ...msg.usage, output_tokens: 1 } } });
  msg.content.forEach((c, i) => {
    const start = c.type === 'text' ? { type: 'text', text: '' } : c.type === 'tool_use' ? { type: 'tool_use', id: c.id, name: c.name, input: {} }
      : c.type === 'thinking' ? { type: 'thinking', thinking: '', signature: '' } : c;
    chunk({ type: 'content_block_start', index: i, content_block: start });
    if (c.type === 'text') for (const t of splitText(c.text, rs.b.chunks)) chunk({ type: 'content_block_delta', index: i, delta: { type: 'text_delta', text: t } }, true);
    else if (c.type === 'tool_use') for (const f of splitN(JSON.stringify(c.input), rs.b.json_chunks ?? 3)) chunk({ type: 'content_block_delta', index: i, delta: { type: 'input_json_delta', partial_json: f } }, true);
    else if (c.type === 'thinking') {
      for (const t of splitText(c.thinking)) chunk({ type: 'content_block_delta', index: i, delta: { type: 'thinking_delta', thinking: t } }, true);
      chunk({ type: 'content_block_delta', index: i, delta: { type: 'signature_delta', signature: c.signature } }, true);
    }
    chunk({ type: 'content_block_stop', index: i });
  });
  chunk({ type: 'message_delta', delta: { stop_reason: msg.stop_reason, stop_sequence: null }, usage: { output_tokens: msg.usage.output_tokens } });
  chunk({ type: 'message_stop', 'amazon-bedrock-invocationMetrics': { inputTokenCount: msg.usage.input_tokens, outputTokenCount: msg.usage.output_tokens, invocationLatency: 1, firstByteLatency: 1 } });
  return out;
}

// ---- AWS event-stream encoding ----

function strHeader(name, value) {
  const nb = Buffer.from(name);
  const vb = Buffer.from(value);
  const h = Buffer.alloc(1 + nb.length + 1 + 2 + vb.length);
  h[0] = nb.length;
  nb.copy(h, 1);
  h[1 + nb.length] = 7; // string
  h.writeUInt16BE(vb.length, 2 + nb.length);
  vb.copy(h, 4 + nb.length);
  return h;
}
/** One message: [[name, value]] string headers and a payload (Buffer); badCrc corrupts its CRC. */
function encodeMessage(headers, payload, badCrc = false) {
  const hb = Buffer.concat(headers.map(([n, v]) => strHeader(n, v)));
  const total = 12 + hb.length + payload.length + 4;
  const m = Buffer.alloc(total);
  m.writeUInt32BE(total, 0);
  m.writeUInt32BE(hb.length, 4);
  m.writeUInt32BE(crc32(m.subarray(0, 8)), 8);
  hb.copy(m, 12);
  payload.copy(m, 12 + hb.length);
  m.writeUInt32BE((crc32(m.subarray(0, total - 4)) ^ (badCrc ? 1 : 0)) >>> 0, total - 4);
  return m;
}
const eventFrame = (e, badCrc) => encodeMessage(
  [[':event-type', e.event], [':content-type', 'application/json'], [':message-type', 'event']],
  Buffer.from(JSON.stringify(e.payload)), badCrc);
const exceptionFrame = (type, message) => encodeMessage(
  [[':exception-type', type], [':content-type', 'application/json'], [':message-type', 'exception']],
  Buffer.from(JSON.stringify({ message })));

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
  e.events_sent = rs.eventsSent;
  G.inProgress--;
  G.active.delete(rs);
  logLine(e);
  if (opts.verbose) process.stderr.write(`bedrock_mock: #${e.seq} ${e.op} ${e.model} ${e.status ?? '-'} ${outcome}${e.check_error ? ` (${e.check_error})` : ''}\n`);
}
function sendHead(rs, status, ctype) {
  const { res } = rs;
  rs.entry.status = status;
  res.statusCode = status;
  res.setHeader('content-type', ctype);
  res.setHeader('x-amzn-requestid', `00000000-0000-4000-8000-${String(rs.seq).padStart(12, '0')}`);
  if (rs.b.retry_after !== undefined) res.setHeader('retry-after', rs.b.retry_after);
  if (rs.b.close_after_response) res.setHeader('connection', 'close');
  for (const [k, v] of Object.entries(rs.b.headers || {})) res.setHeader(k, v);
}
function write(rs, buf) {
  if (!buf.length) return Promise.resolve();
  rs.sentBytes += buf.length;
  rs.sha.update(buf);
  return new Promise((r) => rs.res.write(buf, () => r()));
}
function end(rs, buf = Buffer.alloc(0)) {
  rs.sentBytes += buf.length;
  rs.sha.update(buf);
  rs.res.end(buf);
}
const DEFAULT_ERRORS = {
  400: ['ValidationException', 'Malformed input request, please reformat your input and try again.'],
  403: ['AccessDeniedException', "You don't have access to the model with the specified model ID."],
  404: ['ResourceNotFoundException', 'Could not resolve the foundation model from the provided model identifier.'],
  408: ['ModelTimeoutException', 'Model has timed out in processing the request. Try your request again.'],
  424: ['ModelErrorException', 'The model encountered an error processing the request.'],
  429: ['ThrottlingException', 'Too many requests, please wait before trying again.'],
  500: ['InternalServerException', 'The server encountered an internal error.'],
  503: ['ServiceUnavailableException', 'Bedrock is unable to process your request.'],
};
function sendError(rs, status, type, message) {
  const [dt, dm] = DEFAULT_ERRORS[status] ?? (status >= 500 ? DEFAULT_ERRORS[500] : DEFAULT_ERRORS[400]);
  sendHead(rs, status, 'application/json');
  rs.res.setHeader('x-amzn-errortype', `${type ?? dt}:http://internal.amazon.com/coral/com.amazon.bedrock/`);
  end(rs, Buffer.from(JSON.stringify({ message: message ?? dm })));
}
function sleep(rs, ms) {
  if (rs.closed) return Promise.resolve(false);
  if (!ms) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => { rs.wake = null; resolve(true); }, ms);
    rs.wake = () => { clearTimeout(t); rs.wake = null; resolve(false); };
  });
}
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
async function reset(rs) {
  const sock = rs.req.socket;
  if (rs.res.headersSent) await drained(sock);
  if (rs.done) return;
  finish(rs, 'reset');
  sock.resetAndDestroy();
}

/** Writes bytes as the behaviour splits them: split_bytes-sized writes or at split_at offsets. */
async function writeSplit(rs, buf, offset) {
  const b = rs.b;
  const cuts = [];
  if (b.split_bytes) for (let i = b.split_bytes; i < buf.length; i += b.split_bytes) cuts.push(i);
  if (b.split_at) for (const o of b.split_at) if (o > offset && o < offset + buf.length) cuts.push(o - offset);
  cuts.sort((x, y) => x - y);
  let at = 0;
  for (const c of [...new Set(cuts), buf.length]) {
    if (c <= at) continue;
    await write(rs, buf.subarray(at, c));
    at = c;
    if (c < buf.length) {
      // its own read on the other side: wait until the kernel has it, then a little longer
      await drained(rs.req.socket);
      if (!(await sleep(rs, b.write_interval_ms ?? 1))) return false;
    }
  }
  return true;
}

async function stream(rs, events) {
  const b = rs.b;
  sendHead(rs, 200, 'application/vnd.amazon.eventstream');
  rs.res.flushHeaders();
  rs.req.socket.setNoDelay(true);
  const exAt = b.exception ? Math.min(events.length, b.exception.after_events ?? events.length - 2) : -1;
  let deltaNo = 0;
  let pending = [];
  let offset = 0;
  const flush = async () => {
    if (!pending.length) return true;
    const buf = Buffer.concat(pending);
    pending = [];
    const ok = await writeSplit(rs, buf, offset);
    offset += buf.length;
    return ok;
  };
  for (let k = 0; k <= events.length; k++) {
    const e = events[k];
    if (e?.delta) {
      const wait = deltaNo++ === 0 ? b.first_chunk_delay_ms : b.chunk_interval_ms;
      if (wait) {
        if (!(await flush())) return;
        if (!(await sleep(rs, wait))) return;
      }
    }
    if (k === b.reset_after_events) { await flush(); await reset(rs); return; }
    if (k === b.hang_after_events) { await flush(); rs.hanging = true; return; }
    if (k === exAt) {
      pending.push(exceptionFrame(b.exception.type ?? 'throttlingException', b.exception.message ?? 'Too many tokens, please wait before trying again.'));
      rs.eventsSent++;
      break;
    }
    if (!e) break;
    if (e.exception !== undefined) {
      pending.push(exceptionFrame(e.exception, e.message));
      rs.eventsSent++;
      break;
    }
    pending.push(eventFrame(e, b.bad_crc_at === k));
    rs.eventsSent++;
    rs.entry.events_sent = rs.eventsSent;
  }
  if (!(await flush())) return;
  if (b.truncate_last) {
    // ends the body in the middle of a message: a frame's first half
    const f = eventFrame({ event: 'metadata', payload: { usage: {} } });
    await write(rs, f.subarray(0, Math.floor(f.length / 2)));
  }
  end(rs);
}

async function respond(rs) {
  const b = rs.b;
  if (!(await sleep(rs, b.latency_ms))) return;
  if (b.reset_before_response) return reset(rs);
  if (b.hang) { rs.hanging = true; return; }
  const status = b.status ?? 200;
  if (b.body !== undefined) {
    sendHead(rs, status, rs.stream ? 'application/vnd.amazon.eventstream' : 'application/json');
    return end(rs, Buffer.from(b.body));
  }
  if (status !== 200) return sendError(rs, status, b.error_type, b.error_message);
  if (b.events) {
    return stream(rs, b.events.map((x) => (x.exception !== undefined
      ? { exception: x.exception, message: x.payload?.message ?? '' }
      : { event: x.event, payload: x.payload ?? {}, delta: true })));
  }
  const invoke = rs.op.startsWith('invoke');
  if (rs.stream) return stream(rs, invoke ? invokeEvents(rs) : converseEvents(rs));
  if (b.malformed) {
    sendHead(rs, 200, 'application/json');
    const s = JSON.stringify(invoke ? anthropicMessage(rs) : converseMessage(rs));
    return end(rs, Buffer.from(s.slice(0, Math.floor(s.length / 2))));
  }
  const body = invoke ? anthropicMessage(rs) : converseMessage(rs);
  sendHead(rs, 200, 'application/json');
  if (invoke) {
    rs.res.setHeader('x-amzn-bedrock-input-token-count', String(body.usage.input_tokens));
    rs.res.setHeader('x-amzn-bedrock-output-token-count', String(body.usage.output_tokens));
    rs.res.setHeader('x-amzn-bedrock-invocation-latency', '1');
  }
  return end(rs, Buffer.from(JSON.stringify(body)));
}

const PROVIDER_PATH = /^(.*)\/model\/([^/]+)\/(converse|converse-stream|invoke|invoke-with-response-stream)$/;

function handleProvider(req, res, raw, tooLarge) {
  G.requests++;
  G.inProgress++;
  const sock = req.socket;
  if (sock.mgEpoch !== G.epoch) {
    if (sock.mgEpoch === undefined) G.openProvider++;
    sock.mgEpoch = G.epoch;
    G.connectionsTotal++;
  }
  const seq = ++G.seq;
  const q = req.url.indexOf('?');
  const rawPath = q < 0 ? req.url : req.url.slice(0, q);
  const rawQuery = q < 0 ? '' : req.url.slice(q + 1);
  const pm = PROVIDER_PATH.exec(rawPath);
  let body = null;
  let bodyJson = false;
  if (raw.length && !tooLarge) {
    try { body = JSON.parse(raw.toString('utf8')); bodyJson = true; } catch { body = raw.toString('utf8'); }
  }
  let model = null;
  if (pm) {
    try { model = decodeURIComponent(pm[2]); } catch { model = pm[2]; }
  }
  const op = pm ? pm[3] : 'unknown';
  const rs = {
    req, res, seq, body, model, op,
    stream: op === 'converse-stream' || op === 'invoke-with-response-stream',
    b: {}, done: false, closed: false, hanging: false, wake: null,
    sentBytes: 0, sha: createHash('sha256'), eventsSent: 0,
  };
  rs.entry = {
    seq, t_start_ms: Date.now(), t_end_ms: null, method: req.method, url: req.url, path: rawPath,
    path_prefix: pm ? pm[1] : null, raw_model: pm ? pm[2] : null, model, op, stream: rs.stream,
    headers: { ...req.headers }, body, auth: null, status: null, outcome: 'in_progress',
    check_error: null, sent_bytes: 0, sent_sha256: null, conn_id: sock.mgId, behaviour_source: 'default',
    behaviour_id: null, rule_index: null, events_sent: 0,
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

  let rule = null;
  let ruleIndex = -1;
  const text = raw.toString('utf8');
  for (let i = 0; i < G.rules.length; i++) {
    if (ruleMatches(G.rules[i], rs, text)) { rule = G.rules[i]; ruleIndex = i; break; }
  }
  const chosen = rule ? rule.b : G.def ? G.def.b : {};
  // bedrock-runtime's checks first: a rejected request uses no rule
  const reject = (e) => {
    rs.entry.check_error = `${e.type}: ${e.message.split('\n')[0]}`;
    rs.entry.behaviour_source = 'checks';
    rs.b = {};
    sendError(rs, e.status, e.type, e.message);
  };
  try {
    if (!pm || req.method !== 'POST') throw new AwsError(404, 'UnknownOperationException', `No operation at ${req.method} ${rawPath}`);
    if (tooLarge) throw new AwsError(400, 'ValidationException', 'Input is too long for requested model.');
    rs.entry.auth = verifyAuth(req, rawPath, rawQuery, raw);
    if (chosen.checks !== false) {
      if (!bodyJson) throw new AwsError(400, 'ValidationException', 'Malformed input request: the body is not valid JSON, please reformat your input and try again.');
      if (op.startsWith('invoke')) {
        if (!/(^|\.|\/)anthropic\./.test(model)) throw new AwsError(400, 'ValidationException', `The mock answers InvokeModel only for anthropic.* models (got ${model})`);
        checkInvokeAnthropic(body);
      } else {
        checkConverse(body);
      }
    }
  } catch (e) {
    if (!(e instanceof AwsError)) throw e;
    if (rs.entry.auth === null && e.status === 403) rs.entry.auth = { kind: 'rejected', verified: false, error: e.type };
    return reject(e);
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
    process.stderr.write(`bedrock_mock: request #${seq} failed: ${e.stack}\n`);
    if (!rs.done) { finish(rs, 'client_closed'); sock.destroy(); }
  });
}

// ---- behaviours and rules ----

function bInt(lo, hi) {
  return (v, p) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new Error(`'${p}' must be an integer in [${lo}, ${hi}]`);
    return v;
  };
}
function bBool(v, p) { if (typeof v !== 'boolean') throw new Error(`'${p}' must be a boolean`); return v; }
function bStr(v, p) { if (typeof v !== 'string') throw new Error(`'${p}' must be a string`); return v; }
function bObj(v, p) { if (!isObj(v)) throw new Error(`'${p}' must be an object`); return v; }
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
  tool_use: [{ type: bStr, name: bStr, input: bObj, id: bStr }, ['name']],
  reasoning: [{ type: bStr, text: bStr, signature: bStr }, ['text']],
  redacted: [{ type: bStr, data: bStr }, ['data']],
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
    for (const [k, x] of Object.entries(v)) if (typeof x !== 'string' || /[\r\n]/.test(x)) throw new Error(`header '${k}' must be a single-line string`);
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
      if (!isObj(x) || !BLOCK_SPECS[x.type]) throw new Error(`'${q}' must be an object with type ${Object.keys(BLOCK_SPECS).join('|')}`);
      const [fields, required] = BLOCK_SPECS[x.type];
      return bFields(x, q, fields, required);
    });
  },
  chunks: bInt(0, 1000000),
  json_chunks: bInt(1, 1000000),
  stop_reason: bStr,
  usage: bObj,
  reset_before_response: bBool,
  reset_after_events: bInt(0, 1000000),
  hang: bBool,
  hang_after_events: bInt(0, 1000000),
  exception: (v, p) => bFields(v, p, { type: bStr, message: bStr, after_events: bInt(0, 1000000) }),
  split_bytes: bInt(1, 1 << 24),
  split_at(v, p) {
    if (!Array.isArray(v) || v.some((x) => !Number.isInteger(x) || x < 0)) throw new Error(`'${p}' must be an array of byte offsets`);
    return v;
  },
  write_interval_ms: ms,
  bad_crc_at: bInt(0, 1000000),
  truncate_last: bBool,
  close_after_response: bBool,
  malformed: bBool,
  body: bStr,
  events(v, p) {
    if (!Array.isArray(v)) throw new Error(`'${p}' must be an array`);
    return v.map((x, i) => bFields(x, `${p}[${i}]`, { event: bStr, exception: bStr, payload: bObj }));
  },
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
const MATCH_STRINGS = ['model', 'op', 'path', 'contains', 'access_key_id', 'label'];
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
/** Whether rule r applies (label / access_key_id need the signature: matched on what it names). */
function ruleMatches(r, rs, text) {
  if (r.remaining === 0) return false;
  const m = r.match;
  if (m.model !== undefined && m.model !== rs.model) return false;
  if (m.op !== undefined && m.op !== rs.op) return false;
  if (m.path !== undefined && m.path !== rs.entry.path && m.path !== rs.req.url) return false;
  if (m.stream !== undefined && m.stream !== rs.stream) return false;
  if (m.contains !== undefined && !text.includes(m.contains)) return false;
  if (m.access_key_id !== undefined) {
    const a = /Credential=([^/\s]+)\//.exec(rs.req.headers.authorization ?? '');
    if (!a || a[1] !== m.access_key_id) return false;
  }
  return true;
}

// ---- control API ----

function ctlReply(res, status, obj) {
  const s = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
  res.end(s);
}
const ctlError = (res, status, message) => ctlReply(res, status, { message, __type: 'MockError' });

function parseCredentials(v) {
  if (v === null) return null;
  if (!Array.isArray(v)) throw new Error("'credentials' must be an array or null");
  return v.map((c, i) => {
    if (!isObj(c) || typeof c.access_key_id !== 'string' || !c.access_key_id || typeof c.secret_access_key !== 'string' || !c.secret_access_key) {
      throw new Error(`credentials[${i}] needs access_key_id and secret_access_key strings`);
    }
    for (const k of Object.keys(c)) if (!['access_key_id', 'secret_access_key', 'session_token', 'label'].includes(k)) throw new Error(`unknown field credentials[${i}].${k}`);
    return { access_key_id: c.access_key_id, secret_access_key: c.secret_access_key, session_token: c.session_token ?? null, label: c.label ?? c.access_key_id };
  });
}
function ctlScript(res, raw) {
  let j;
  try { j = raw.length ? JSON.parse(raw.toString('utf8')) : {}; } catch { j = null; }
  if (!isObj(j)) return ctlError(res, 400, 'body must be a JSON object {"rules":[...],"default":{...}}');
  for (const k of Object.keys(j)) {
    if (!['rules', 'default', 'append', 'credentials', 'bearer_tokens', 'region'].includes(k)) return ctlError(res, 400, `unknown script field '${k}'`);
  }
  const rules = [];
  let def = null;
  let creds;
  try {
    if (j.rules !== undefined && j.rules !== null && !Array.isArray(j.rules)) throw new Error("'rules' must be an array");
    (j.rules || []).forEach((r, i) => {
      try { rules.push(parseRule(r)); } catch (e) { throw new Error(`rules[${i}]: ${e.message}`); }
    });
    if (j.default !== undefined && j.default !== null) def = { b: parseBehaviour(j.default), src: j.default };
    if (j.credentials !== undefined) creds = parseCredentials(j.credentials);
    if (j.bearer_tokens !== undefined && j.bearer_tokens !== null && (!Array.isArray(j.bearer_tokens) || j.bearer_tokens.some((t) => typeof t !== 'string' || !t))) {
      throw new Error("'bearer_tokens' must be an array of non-empty strings or null");
    }
    if (j.region !== undefined && j.region !== null && typeof j.region !== 'string') throw new Error("'region' must be a string or null");
  } catch (e) {
    return ctlError(res, 400, e.message);
  }
  if (j.append) {
    G.rules.push(...rules);
    if (j.default !== undefined) G.def = def;
  } else {
    G.rules = rules;
    G.def = def;
  }
  if (j.credentials !== undefined) G.scriptCredentials = creds;
  if (j.bearer_tokens !== undefined) G.scriptBearers = j.bearer_tokens;
  if (j.region !== undefined) G.region = j.region;
  return ctlReply(res, 200, { ok: true, rules: G.rules.length, default: !!G.def, credentials: credentials().length });
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
      credentials: credentials().map((c) => ({ access_key_id: c.access_key_id, label: c.label, session_token: !!c.session_token })),
    });
  }
  if (p === '/__mock/reset' && post) {
    G.rules = [];
    G.def = null;
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

const MAX_BODY = 32 * 1024 * 1024;
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
  const control = req.url.startsWith('/__mock/');
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
      return handleControl(req, res, new URL(req.url, 'http://127.0.0.1'), raw);
    }
    return handleProvider(req, res, raw, tooLarge);
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
  process.stderr.write(`bedrock_mock: ${e.message}\n`);
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
  if (!opts.quiet) process.stderr.write(`bedrock_mock: ${credentials().length} credentials, ${bearers().length} bearer tokens\n`);
});
