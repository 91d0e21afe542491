#!/usr/bin/env node
// tests/mocks/vertex_mock.mjs -- a scriptable mock of Vertex AI's prediction API for
// moongate's tests: Gemini models (generateContent, streamGenerateContent?alt=sse,
// predict for text embeddings) and Anthropic's models (rawPredict, streamRawPredict).
//
//   POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{method}
//   POST /v1/projects/{project}/locations/{location}/publishers/anthropic/models/{model}:{method}
//
// Credentials: Authorization: Bearer <token>, where the token must be one that
// google_token_mock.mjs minted with the same --token-secret and has not expired; anything
// else is Vertex's 401 UNAUTHENTICATED.  The log entry of every request names the service
// account that minted its token (sa) and the token's serial, so a test can prove which key
// a request was made with.  Gemini bodies are checked as Google checks them
// (google_common.mjs); Claude bodies must carry anthropic_version "vertex-2023-10-16" and no
// "model" (Vertex's rules), and get Anthropic's message and event shapes back.
//
// Behaviours, rules, log and control API: tests/mocks/README.md.  Rules match on model,
// method, stream, sa, project, location, publisher, path and headers.  With
// --allow-anonymous, requests without a token pass (for a test of the mock itself).

import crypto from 'node:crypto';
import {
  commandLine, createMock, GoogleError, invalid, GEMINI_BEHAVIOURS, commonBehaviour,
  checkGenerateContent, answerGemini, embedText, isObj,
} from './google_common.mjs';

const opts = commandLine('vertex_mock', {
  'token-secret': { type: 'string' },
  'allow-anonymous': { type: 'boolean', default: false },
});
if (!opts['token-secret']) {
  process.stderr.write('vertex_mock: --token-secret is required (the one google_token_mock.mjs signs with)\n');
  process.exit(2);
}
const secret = opts['token-secret'];
const PATH_RE = /^\/(v1|v1beta1)\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/([^/]+)\/models\/([^/:]+):([A-Za-z]+)$/;
const bySa = {};

/** The account a token was minted for, or null (forged, expired, malformed). */
function tokenOwner(token) {
  const m = /^ya29\.mock\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(token || '');
  if (!m) return { error: 'not a token the mock endpoint minted' };
  const mac = crypto.createHmac('sha256', secret).update(m[1]).digest('base64url');
  if (mac.length !== m[2].length || !crypto.timingSafeEqual(Buffer.from(mac), Buffer.from(m[2]))) {
    return { error: 'token signature does not match' };
  }
  const p = JSON.parse(Buffer.from(m[1], 'base64url').toString('utf8'));
  if (p.x <= Date.now()) return { error: 'token expired', sa: p.e, serial: p.n };
  return { sa: p.e, serial: p.n };
}

const words = (s) => s.match(/\S+\s*/g) || [];

/** Claude on Vertex: the Messages body Vertex takes. */
function checkClaude(body, stream) {
  const fail = (m) => { const e = new GoogleError(400, m); e.anthropic = true; throw e; };
  if (!isObj(body)) fail('Input should be a valid dictionary');
  if (body.anthropic_version !== 'vertex-2023-10-16') fail(`anthropic_version: Input should be 'vertex-2023-10-16' (got ${JSON.stringify(body.anthropic_version)})`);
  if (Object.prototype.hasOwnProperty.call(body, 'model')) fail('model: Extra inputs are not permitted');
  if (!Array.isArray(body.messages) || !body.messages.length) fail('messages: at least one message is required');
  body.messages.forEach((m, i) => {
    if (!isObj(m) || (m.role !== 'user' && m.role !== 'assistant')) fail(`messages.${i}.role: Input should be 'user' or 'assistant'`);
    if (m.content === undefined) fail(`messages.${i}.content: Field required`);
  });
  if (!Number.isInteger(body.max_tokens) || body.max_tokens < 1) fail('max_tokens: Field required');
  if (stream !== (body.stream === true)) fail(`stream: ${stream ? 'streamRawPredict needs "stream": true' : 'rawPredict takes no stream'}`);
}

async function answerClaude(ctx, b, model, stream) {
  const body = ctx.body;
  const tool = body.tool_choice && (body.tool_choice.type === 'any' || body.tool_choice.type === 'tool') && Array.isArray(body.tools) && body.tools.length
    ? (body.tool_choice.name ?? body.tools[0].name) : null;
  const text = b.content ?? `mock reply from ${model}`;
  const input = Math.max(1, Math.ceil(JSON.stringify(body.messages).length / 4));
  const out = tool ? 5 : words(text).length;
  const id = `msg_vrtx_mock_${ctx.entry.seq}`;
  const stop = tool ? 'tool_use' : (b.finish_reason ?? 'end_turn');
  const content = tool ? [{ type: 'tool_use', id: `toolu_vrtx_${ctx.entry.seq}`, name: tool, input: {} }] : [{ type: 'text', text }];
  if (!stream) {
    ctx.json(200, { id, type: 'message', role: 'assistant', model, content, stop_reason: stop, stop_sequence: null, usage: { input_tokens: input, output_tokens: out } });
    return;
  }
  ctx.sseStart();
  ctx.sse({ type: 'message_start', message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: input, output_tokens: 1 } } }, 'message_start');
  if (tool) {
    ctx.sse({ type: 'content_block_start', index: 0, content_block: { ...content[0], input: {} } }, 'content_block_start');
    ctx.sse({ type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '{}' } }, 'content_block_delta');
  } else {
    ctx.sse({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start');
    const ws = words(text);
    for (let i = 0; i < ws.length; i++) {
      if (i > 0 && b.chunk_interval_ms) await ctx.sleep(b.chunk_interval_ms);
      if (ctx.gone()) return;
      ctx.sse({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: ws[i] } }, 'content_block_delta');
    }
  }
  ctx.sse({ type: 'content_block_stop', index: 0 }, 'content_block_stop');
  ctx.sse({ type: 'message_delta', delta: { stop_reason: stop, stop_sequence: null }, usage: { input_tokens: input, output_tokens: out } }, 'message_delta');
  ctx.sse({ type: 'message_stop' }, 'message_stop');
  ctx.sseEnd();
}

createMock({
  name: 'vertex_mock',
  opts,
  behaviourFields: [...GEMINI_BEHAVIOURS, 'error_type'],
  onReset() { for (const k of Object.keys(bySa)) delete bySa[k]; },
  stats() { return { by_sa: { ...bySa } }; },
  async route(ctx) {
    const { url, entry } = ctx;
    const m = PATH_RE.exec(url.pathname);
    const [project, location, publisher, model, method] = m ? [m[2], m[3], m[4], decodeURIComponent(m[5]), m[6]] : [];
    const stream = method === 'streamGenerateContent' || method === 'streamRawPredict';
    const auth = entry.headers.authorization || '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : null;
    const owner = tokenOwner(token);
    Object.assign(entry, { model: model ?? null, stream, project: project ?? null, location: location ?? null, publisher: publisher ?? null, sa: owner.sa ?? null, token_serial: owner.serial ?? null });
    entry.match = { model, method, stream, sa: owner.sa ?? null, project, location, publisher };
    const b = ctx.behaviour();
    if (b.checks !== false) {
      if (!token && !opts['allow-anonymous']) throw new GoogleError(401, 'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.', 'UNAUTHENTICATED');
      if (token && owner.error) {
        entry.check_error = owner.error;
        throw new GoogleError(401, `Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. (mock: ${owner.error})`, 'UNAUTHENTICATED');
      }
      if (url.searchParams.has('key')) throw invalid('moongate mock: no API key in a Vertex URL');
    }
    if (owner.sa) bySa[owner.sa] = (bySa[owner.sa] || 0) + 1;
    if (publisher === 'anthropic' && b.status && b.status !== 200 && b.body === undefined) {
      // Claude's own errors come back in Anthropic's envelope
      if (b.latency_ms) await ctx.sleep(b.latency_ms);
      const headers = b.retry_after !== undefined ? { 'retry-after': String(b.retry_after) } : {};
      ctx.json(b.status, { type: 'error', error: { type: b.error_type ?? (b.status === 429 ? 'rate_limit_error' : b.status === 529 ? 'overloaded_error' : 'api_error'), message: b.error_message ?? 'mock error' } }, headers);
      return;
    }
    if (await commonBehaviour(ctx, b)) return;
    if (ctx.req.method !== 'POST' || !m) throw new GoogleError(404, `Requested entity was not found: ${url.pathname}`);
    if (publisher === 'anthropic') {
      if (method !== 'rawPredict' && method !== 'streamRawPredict') throw new GoogleError(404, `Method ${method} is not found for publisher anthropic`);
      try {
        if (b.checks !== false) checkClaude(ctx.body, stream);
      } catch (e) {
        if (!e.anthropic) throw e;
        entry.check_error = e.message;
        ctx.json(400, { type: 'error', error: { type: 'invalid_request_error', message: e.message } });
        return;
      }
      await answerClaude(ctx, b, model, stream);
      return;
    }
    if (publisher !== 'google') throw new GoogleError(404, `Publisher Model \`projects/${project}/locations/${location}/publishers/${publisher}/models/${model}\` not found.`);
    if (method === 'generateContent' || method === 'streamGenerateContent') {
      const summary = b.checks === false ? null : checkGenerateContent(ctx.body);
      if (stream && url.searchParams.get('alt') !== 'sse') throw invalid('moongate mock: streamGenerateContent without alt=sse');
      await answerGemini(ctx, b, model, stream, summary);
      return;
    }
    if (method === 'predict') {
      const body = ctx.body;
      if (!isObj(body) || !Array.isArray(body.instances) || !body.instances.length) throw invalid('instances is required');
      const dims = body.parameters?.outputDimensionality ?? 8;
      const predictions = body.instances.map((inst, i) => {
        if (typeof inst.content !== 'string') throw invalid(`instances[${i}].content: must be a string`);
        return { embeddings: { statistics: { truncated: false, token_count: Math.max(1, Math.ceil(inst.content.length / 4)) }, values: embedText(inst.content, dims) } };
      });
      ctx.json(200, { predictions, metadata: { billableCharacterCount: body.instances.reduce((a, x) => a + x.content.length, 0) } });
      return;
    }
    throw new GoogleError(404, `Method ${method} is not found for models/${model}`);
  },
});
