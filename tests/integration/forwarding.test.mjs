// What moongate sends upstream and what it answers: hop-by-hop headers and the
// client's credentials never reach the provider; the body is forwarded as sent
// except for LiteLLM-only fields, nulls and the model; deployment defaults fill
// in only what the client left out; request errors and response headers match
// LiteLLM's.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, mockModel } from '../lib/harness.mjs';
import { rawConnect, rawRequest } from './lib_extra.mjs';

const KEY = 'sk-test-master-fwd';
const UPKEY = 'sk-upstream-deployment-key';

// OpenAI-compatible providers that differ only in base URL and auth
const PROVIDERS = ['hosted_vllm', 'openrouter', 'groq', 'deepseek', 'mistral', 'together_ai', 'fireworks_ai', 'xai', 'lm_studio'];

const mock = await startMock();
const gw = await startGateway({
  config: {
    model_list: [
      mockModel(mock, 'm', { model: 'openai/up-model', key: UPKEY, info: { id: 'dep-m-1' } }),
      mockModel(mock, 'with-defaults', {
        model: 'openai/up-defaults', key: UPKEY, extra: { temperature: 0.3, max_tokens: 77, seed: 5 },
      }),
      // a provider that needs no key: the upstream must see no Authorization at all
      { model_name: 'nokey', litellm_params: { model: 'hosted_vllm/up-nokey', api_base: mock.url } },
      mockModel(mock, 'emb', { model: 'openai/up-emb', key: UPKEY }),
      ...PROVIDERS.map((p) => mockModel(mock, `p-${p}`, { model: `${p}/up-${p}`, key: `sk-${p}` })),
    ],
    general_settings: { master_key: KEY },
  },
});
after(async () => { await gw.stop(); await mock.stop(); });

/** The mock's log entry for the request whose body carried this marker in "user". */
async function upstreamFor(marker) {
  const log = await mock.log();
  const e = log.filter((x) => x.body && x.body.user === marker);
  assert.equal(e.length, 1, `exactly one upstream request for ${marker} (got ${e.length})`);
  return e[0];
}

test('hop-by-hop headers and the client\'s credentials are never forwarded', async () => {
  const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }], user: 'hop-1' });
  const chunked = `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
  const c = await rawConnect(gw.port);
  try {
    await c.send(rawRequest('POST', '/v1/chat/completions', [
      ['Authorization', `Bearer ${KEY}`],
      ['x-api-key', 'sk-client-x-api-key-value'],
      ['api-key', 'sk-client-api-key-value'],
      ['Proxy-Authorization', 'Basic cHJveHk6c2VjcmV0'],
      ['Connection', 'keep-alive, X-Drop-Me'],
      ['X-Drop-Me', 'nominated-hop-by-hop'],
      ['Keep-Alive', 'timeout=5'],
      ['Proxy-Connection', 'keep-alive'],
      ['TE', 'trailers'],
      ['Trailer', 'X-Trail'],
      ['Upgrade', 'h2c'],
      ['Content-Type', 'application/json'],
      ['Transfer-Encoding', 'chunked'],
    ], chunked));
    const r = await c.response();
    assert.equal(r.status, 200, r.body.toString());
  } finally { c.destroy(); }
  const e = await upstreamFor('hop-1');
  const h = e.headers;
  assert.equal(h.authorization, `Bearer ${UPKEY}`, 'the deployment\'s credential, not the client\'s');
  for (const name of ['x-api-key', 'api-key', 'proxy-authorization', 'x-drop-me', 'keep-alive',
    'proxy-connection', 'te', 'trailer', 'upgrade', 'transfer-encoding']) {
    assert.equal(h[name], undefined, `${name} must not be forwarded`);
  }
  const all = JSON.stringify(h);
  for (const secret of [KEY, 'sk-client-x-api-key-value', 'sk-client-api-key-value', 'cHJveHk6c2VjcmV0']) {
    assert.ok(!all.includes(secret), `${secret} leaked upstream`);
  }
  assert.match(h['content-length'] || '', /^\d+$/, 'the upstream body is sent with a Content-Length');
});

test('a deployment without a key sends no Authorization, even when the client sent one', async () => {
  const r = await gw.chat({ model: 'nokey', messages: [{ role: 'user', content: 'x' }], user: 'nokey-1' },
    { headers: { 'x-api-key': 'sk-client-other' } });
  assert.equal(r.status, 200, r.text);
  const e = await upstreamFor('nokey-1');
  assert.equal(e.headers.authorization, undefined);
  assert.equal(e.headers['x-api-key'], undefined);
  assert.equal(e.headers['api-key'], undefined);
  assert.equal(e.body.model, 'up-nokey');
});

test('the body is forwarded as sent, minus LiteLLM-only fields and nulls; model becomes the upstream model', async () => {
  const kept = {
    messages: [
      { role: 'system', content: 'Be brief. "quoted" \\ backslash, caf\u00e9, \u{1F600}, tab\there' },
      { role: 'user', content: [{ type: 'text', text: 'multi-part' }] },
    ],
    temperature: 0.5,
    top_p: 0.9,
    n: 1,
    stop: ['\n\n', 'END'],
    seed: 42,
    logit_bias: { 50256: -100 },
    response_format: { type: 'json_object' },
    tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'string' } } } } }],
    tool_choice: 'auto',
    vendor_extension: { nested: [1, { keep_null_inside: null }], flag: true }, // unknown: passed through
    user: 'body-1',
  };
  const dropped = {
    metadata: { tag: 'x' },
    fallbacks: ['m'],
    num_retries: 1,
    caching: true,
    tags: ['t'],
    litellm_call_id: 'c',
    litellm_metadata: { a: 1 },
    timeout: 600,
    stream_timeout: 600,
    request_timeout: 600,
    api_key: 'sk-body-api-key',
    api_base: 'http://127.0.0.1:1/evil',
    disable_fallbacks: false,
    drop_params: true,
    additional_drop_params: ['x'],
    context_window_fallbacks: [{ m: ['m'] }],
    mock_testing_fallbacks: false,
    max_retries: 3,
  };
  const nulls = { frequency_penalty: null, presence_penalty: null, max_tokens: null, custom_null: null };
  const r = await gw.chat({ model: 'm', ...kept, ...dropped, ...nulls });
  assert.equal(r.status, 200, r.text);
  const e = await upstreamFor('body-1');
  const b = e.body;
  assert.equal(b.model, 'up-model');
  for (const [k, v] of Object.entries(kept)) assert.deepEqual(b[k], v, `${k} forwarded unchanged`);
  for (const k of Object.keys(dropped)) assert.equal(b[k], undefined, `${k} is a LiteLLM field: not forwarded`);
  for (const k of Object.keys(nulls)) assert.ok(!(k in b), `${k}: null is not forwarded`);
  const extra = Object.keys(b).filter((k) => k !== 'model' && !(k in kept));
  assert.deepEqual(extra, [], 'nothing added');
  assert.ok(!JSON.stringify(e.headers).includes('sk-body-api-key'));
  assert.equal(e.headers.authorization, `Bearer ${UPKEY}`, 'a body api_key does not replace the deployment key');
});

test('mock_response is answered by moongate and never reaches the provider', async () => {
  const before = (await mock.stats()).requests;
  const r = await gw.chat({ model: 'm', messages: [{ role: 'user', content: 'x' }], mock_response: 'offline answer' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.choices[0].message.content, 'offline answer');
  assert.equal((await mock.stats()).requests, before);
});

test('deployment defaults are added only when the client did not send them', async () => {
  let r = await gw.chat({ model: 'with-defaults', messages: [{ role: 'user', content: 'x' }], user: 'def-1' });
  assert.equal(r.status, 200, r.text);
  let b = (await upstreamFor('def-1')).body;
  assert.equal(b.model, 'up-defaults');
  assert.equal(b.temperature, 0.3);
  assert.equal(b.max_tokens, 77);
  assert.equal(b.seed, 5);

  r = await gw.chat({ model: 'with-defaults', messages: [{ role: 'user', content: 'x' }], user: 'def-2', temperature: 0.9, seed: 1 });
  assert.equal(r.status, 200, r.text);
  b = (await upstreamFor('def-2')).body;
  assert.equal(b.temperature, 0.9, 'the client\'s value wins');
  assert.equal(b.seed, 1);
  assert.equal(b.max_tokens, 77, 'defaults fill what the client left out');
  // deployment-only settings are never sent as body fields
  assert.equal(b.api_key, undefined);
  assert.equal(b.api_base, undefined);
});

test('embeddings: encoding_format null is not forwarded, model rewritten', async () => {
  const r = await gw.request('/v1/embeddings', { method: 'POST', body: { model: 'emb', input: ['a', 'b'], encoding_format: null, user: 'emb-1' } });
  assert.equal(r.status, 200, r.text);
  const b = (await upstreamFor('emb-1')).body;
  assert.equal(b.model, 'up-emb');
  assert.ok(!('encoding_format' in b));
  assert.deepEqual(b.input, ['a', 'b']);
});

test('invalid JSON: 400 invalid_request_error, param request_body', async () => {
  for (const bad of ['{"model": "m", "messages": [', 'not json', '{"model":"m"} trailing']) {
    const r = await gw.request('/v1/chat/completions', { method: 'POST', body: bad, headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 400, bad);
    assert.match(r.json.error.message, /^Invalid JSON payload: /);
    assert.equal(r.json.error.type, 'invalid_request_error');
    assert.equal(r.json.error.param, 'request_body');
    assert.equal(r.json.error.code, '400');
  }
});

test('missing required parameters: LiteLLM\'s exact 400s', async () => {
  const cases = [
    ['/v1/chat/completions', { model: 'm' }, "/chat/completions: Missing required parameter: 'messages'.", 'messages'],
    ['/chat/completions', { model: 'm', messages: null }, "/chat/completions: Missing required parameter: 'messages'.", 'messages'],
    ['/v1/embeddings', { model: 'emb' }, "/embeddings: Missing required parameter: 'input'.", 'input'],
    ['/v1/completions', { model: 'm' }, "/completions: Missing required parameter: 'prompt'.", 'prompt'],
  ];
  for (const [p, body, msg, param] of cases) {
    const r = await gw.request(p, { method: 'POST', body });
    assert.equal(r.status, 400, `${p} ${r.text}`);
    assert.deepEqual(r.json, { error: { message: msg, type: 'invalid_request_error', param, code: '400' } });
  }
});

test('response headers: call id, model id/group/api base, version, durations, worker, registry version', async () => {
  const r = await gw.chat({ model: 'm', messages: [{ role: 'user', content: 'x' }] },
    { headers: { 'x-litellm-call-id': 'my-call-id-123' } });
  assert.equal(r.status, 200, r.text);
  const h = r.headers;
  assert.equal(h.get('x-litellm-call-id'), 'my-call-id-123');
  assert.equal(h.get('x-litellm-model-id'), 'dep-m-1');
  assert.equal(h.get('x-litellm-model-group'), 'm');
  assert.equal(h.get('x-litellm-model-api-base'), mock.url);
  assert.match(h.get('x-litellm-version') || '', /^\d+\.\d+\.\d+/);
  const total = Number(h.get('x-litellm-response-duration-ms'));
  const over = Number(h.get('x-litellm-overhead-duration-ms'));
  assert.ok(Number.isFinite(total) && total >= 0, `response duration ${h.get('x-litellm-response-duration-ms')}`);
  assert.ok(Number.isFinite(over) && over >= 0 && over <= total, `overhead ${over} within total ${total}`);
  assert.equal(h.get('x-moongate-worker'), '0');
  assert.match(h.get('x-moongate-registry-version') || '', /^\d+$/);

  // without a client call id: a fresh UUID each time
  const a = await gw.chat({ model: 'm', messages: [{ role: 'user', content: 'x' }] });
  const b = await gw.chat({ model: 'm', messages: [{ role: 'user', content: 'x' }] });
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  assert.match(a.headers.get('x-litellm-call-id'), uuid);
  assert.notEqual(a.headers.get('x-litellm-call-id'), b.headers.get('x-litellm-call-id'));
});

test('streaming responses and errors carry the headers too', async () => {
  const s = await gw.chat({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true },
    { headers: { 'x-litellm-call-id': 'stream-call' } });
  assert.equal(s.status, 200);
  assert.match(s.headers.get('content-type'), /^text\/event-stream/);
  assert.equal(s.headers.get('x-litellm-call-id'), 'stream-call');
  assert.equal(s.headers.get('x-litellm-model-id'), 'dep-m-1');
  assert.equal(s.headers.get('x-litellm-model-group'), 'm');
  assert.ok(s.headers.get('x-moongate-worker') !== null);

  const e = await gw.chat({ model: 'unknown-model', messages: [] }, { headers: { 'x-litellm-call-id': 'err-call' } });
  assert.equal(e.status, 400);
  assert.equal(e.headers.get('x-litellm-call-id'), 'err-call');
  assert.ok(e.headers.get('x-litellm-version'));
});

test('OpenAI-compatible provider prefixes: same wire format, their own key, their exception name', async () => {
  for (const p of PROVIDERS) {
    const r = await gw.chat({ model: `p-${p}`, messages: [{ role: 'user', content: 'x' }], user: `prov-${p}` });
    assert.equal(r.status, 200, `${p}: ${r.text}`);
    const e = await upstreamFor(`prov-${p}`);
    assert.equal(e.path, '/v1/chat/completions', p);
    assert.equal(e.headers.authorization, `Bearer sk-${p}`, p);
    assert.equal(e.body.model, `up-${p}`, p);
    const f = await gw.chat({ model: `p-${p}`, messages: [{ role: 'user', content: 'x' }], num_retries: 0,
      mock: { status: 500, error_message: 'down', error_type: 'server_error' } });
    const exc = `${p[0].toUpperCase()}${p.slice(1)}Exception`;
    assert.equal(f.status, 500);
    assert.match(f.json.error.message, new RegExp(`^litellm\\.InternalServerError: InternalServerError: ${exc} - down\\. `), p);
  }
});
