#!/usr/bin/env node
// tests/mocks/gemini_mock.mjs -- a scriptable mock of the Gemini API (Google AI Studio,
// generativelanguage.googleapis.com/v1beta) for moongate's tests.
//
// Endpoints: POST /v1beta/models/{model}:generateContent, :streamGenerateContent (alt=sse
// gives SSE, else one JSON array), :batchEmbedContents, :countTokens; GET /v1beta/models.
// (The /v1beta prefix is optional, so any api_base path works.)
//
// Credentials as the real API takes them: the x-goog-api-key header.  A key in the URL
// (?key=) is refused with 400, because moongate must never put one there (logs and errors
// show URLs); a missing key is Google's 403 "unregistered callers", a key not in --api-key
// (when given) is Google's 400 API_KEY_INVALID.  Bodies are checked as Google checks them
// (google_common.mjs).  Behaviours, rules, the log and the control API are those of
// tests/mocks/README.md; rules match on model, method (generateContent, ...), stream, key,
// path and headers.

import {
  commandLine, createMock, GoogleError, invalid, GEMINI_BEHAVIOURS, commonBehaviour,
  checkGenerateContent, answerGemini, embedText, isObj,
} from './google_common.mjs';

const opts = commandLine('gemini_mock', { 'api-key': { type: 'string', multiple: true, default: [] } });
let keys = opts['api-key'];

const PATH_RE = /^(?:\/v1beta|\/v1)?\/models\/([^/:]+):([A-Za-z]+)$/;

createMock({
  name: 'gemini_mock',
  opts,
  behaviourFields: GEMINI_BEHAVIOURS,
  onScript(body) { if (Array.isArray(body.api_keys)) keys = body.api_keys; },
  onReset() { keys = opts['api-key']; },
  async route(ctx) {
    const { url, entry } = ctx;
    const m = PATH_RE.exec(url.pathname);
    const model = m ? decodeURIComponent(m[1]) : null;
    const method = m ? m[2] : (url.pathname.endsWith('/models') ? 'list' : 'unknown');
    const key = entry.headers['x-goog-api-key'] ?? null;
    const stream = method === 'streamGenerateContent';
    entry.model = model;
    entry.stream = stream;
    entry.match = { model, method, stream, key };
    const b = ctx.behaviour();
    if (b.checks !== false) {
      // the key: in the header, never in the URL
      if (url.searchParams.has('key')) {
        entry.check_error = 'API key in the URL';
        throw invalid('moongate mock: the API key must be sent in the x-goog-api-key header, not in the URL (?key=)');
      }
      if (!key) {
        throw new GoogleError(403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.", 'PERMISSION_DENIED');
      }
      if (keys.length && !keys.includes(key)) {
        throw new GoogleError(400, 'API key not valid. Please pass a valid API key.', 'INVALID_ARGUMENT', [{
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com',
        }]);
      }
      if (entry.headers.authorization) throw invalid('moongate mock: an Authorization header next to x-goog-api-key');
    }
    if (await commonBehaviour(ctx, b)) return;
    if (method === 'list') {
      ctx.json(200, { models: [{ name: 'models/gemini-2.0-flash', supportedGenerationMethods: ['generateContent'] }] });
      return;
    }
    if (ctx.req.method !== 'POST' || !m) throw new GoogleError(404, `Requested entity was not found: ${url.pathname}`);
    if (method === 'generateContent' || method === 'streamGenerateContent') {
      const summary = b.checks === false ? null : checkGenerateContent(ctx.body);
      if (stream && url.searchParams.get('alt') !== 'sse') {
        // without alt=sse Google streams one JSON array; moongate always asks for SSE
        throw invalid('moongate mock: streamGenerateContent without alt=sse');
      }
      await answerGemini(ctx, b, model, stream, summary);
      return;
    }
    if (method === 'batchEmbedContents') {
      const body = ctx.body;
      if (!isObj(body) || !Array.isArray(body.requests) || !body.requests.length) throw invalid('* BatchEmbedContentsRequest.requests: requests is required');
      const embeddings = body.requests.map((r, i) => {
        if (r.model !== `models/${model}`) throw invalid(`* BatchEmbedContentsRequest.requests[${i}].model: the model "${r.model}" does not match the URL's models/${model}`);
        const text = (r.content?.parts || []).map((p) => p.text ?? '').join('');
        if (!text) throw invalid(`* BatchEmbedContentsRequest.requests[${i}].content.parts: must not be empty`);
        return { values: embedText(text, r.outputDimensionality ?? 8) };
      });
      ctx.json(200, { embeddings });
      return;
    }
    if (method === 'countTokens') {
      ctx.json(200, { totalTokens: Math.ceil(JSON.stringify(ctx.body ?? '').length / 4) });
      return;
    }
    throw new GoogleError(404, `Method ${method} is not found for models/${model}`);
  },
});
