// The upstream side: TLS with certificate verification against a CA, connect
// and first-byte timeouts, keep-alive reuse, Retry-After, and the mapping of
// upstream error statuses to LiteLLM's statuses and messages.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, mockModel, refusedPort } from '../lib/harness.mjs';
import { makeCA, makeServerCert, httpsGetJson, startBlackhole } from './lib_extra.mjs';

const KEY = 'sk-test-master-up';

// ---- TLS material: a trusted CA, a cert for localhost/127.0.0.1, one for the wrong name,
// and one from a CA moongate does not trust ----
const ca = makeCA('moongate test CA');
const good = makeServerCert(ca, 'DNS:localhost,IP:127.0.0.1', 'good');
const wrong = makeServerCert(ca, 'DNS:wrong.example', 'wrong');
const otherCa = makeCA('untrusted CA');
const untrusted = makeServerCert(otherCa, 'DNS:localhost,IP:127.0.0.1', 'untrusted');

const mock = await startMock();
const tlsGood = await startMock({ tls: good });
const tlsWrong = await startMock({ tls: wrong });
const tlsUntrusted = await startMock({ tls: untrusted });
const hole = await startBlackhole();
const deadPort = await refusedPort(); // nothing listens there

const gw = await startGateway({
  env: { SSL_CERT_FILE: ca.cert },
  config: {
    model_list: [
      mockModel(mock, 'm', { model: 'openai/up-m' }),
      { model_name: 'tls-name', litellm_params: { model: 'openai/up-tls', api_base: `https://localhost:${tlsGood.port}/v1`, api_key: 'sk-tls' } },
      { model_name: 'tls-ip', litellm_params: { model: 'openai/up-tls-ip', api_base: `https://127.0.0.1:${tlsGood.port}/v1`, api_key: 'sk-tls' } },
      { model_name: 'tls-wrong-name', litellm_params: { model: 'openai/up-wrong', api_base: `https://localhost:${tlsWrong.port}/v1`, api_key: 'sk-tls' } },
      { model_name: 'tls-untrusted', litellm_params: { model: 'openai/up-untrusted', api_base: `https://localhost:${tlsUntrusted.port}/v1`, api_key: 'sk-tls' } },
      mockModel(mock, 'slow', { model: 'openai/up-slow', extra: { timeout: 1 } }),
      { model_name: 'blackhole', litellm_params: { model: 'openai/up-hole', api_base: `http://127.0.0.1:${hole.port}/v1`, api_key: 'k', timeout: 1 } },
      mockModel(mock, 'map', { model: 'openai/up-map' }),
      { model_name: 'refused', litellm_params: { model: 'openai/up-refused', api_base: `http://127.0.0.1:${deadPort}/v1`, api_key: 'k' } },
    ],
    general_settings: { master_key: KEY },
    // each mapping case must see the upstream answer, not a cooldown from the previous one
    router_settings: { disable_cooldowns: true },
  },
});
after(async () => {
  await gw.stop();
  hole.stop();
  for (const m of [mock, tlsGood, tlsWrong, tlsUntrusted]) await m.stop();
});

const msgs = [{ role: 'user', content: 'hi' }];
const tlsLog = (m, caPem) => httpsGetJson(`https://127.0.0.1:${m.port}/__mock/log`, caPem).then((j) => j.entries);

test('TLS upstream verified against SSL_CERT_FILE: by name (SNI + hostname) and by IP', async () => {
  for (const model of ['tls-name', 'tls-ip']) {
    const r = await gw.chat({ model, messages: msgs, user: `tls-${model}`, num_retries: 0 });
    assert.equal(r.status, 200, `${model}: ${r.text}`);
    assert.equal(r.json.object, 'chat.completion');
  }
  const log = await tlsLog(tlsGood, ca.cert);
  assert.equal(log.filter((e) => e.body?.user?.startsWith('tls-')).length, 2);
  assert.equal(log[0].headers.authorization, 'Bearer sk-tls');
});

test('TLS: a certificate for another host name is refused (no fallback to no-verify)', async () => {
  const r = await gw.chat({ model: 'tls-wrong-name', messages: msgs, num_retries: 0 });
  assert.equal(r.status, 500, r.text);
  assert.match(r.json.error.message, /^litellm\.InternalServerError: InternalServerError: OpenAIException - Connection error\./);
  assert.match(r.json.error.message, /certificate|verif/i);
  assert.equal((await tlsLog(tlsWrong, ca.cert)).length, 0, 'no request reached the server');
});

test('TLS: a certificate from an untrusted CA is refused (no fallback to no-verify)', async () => {
  const r = await gw.chat({ model: 'tls-untrusted', messages: msgs, num_retries: 0 });
  assert.equal(r.status, 500, r.text);
  assert.match(r.json.error.message, /Connection error\./);
  assert.match(r.json.error.message, /certificate|verif/i);
  assert.equal((await tlsLog(tlsUntrusted, otherCa.cert)).length, 0, 'no request reached the server');
});

test('first-byte timeout from litellm_params.timeout: 408 LiteLLM Timeout', async () => {
  const t0 = Date.now();
  const r = await gw.chat({ model: 'slow', messages: msgs, num_retries: 0, user: 'fb-1', mock: { latency_ms: 5000 } });
  const took = Date.now() - t0;
  assert.equal(r.status, 408, r.text);
  assert.match(r.json.error.message, /^litellm\.Timeout: APITimeoutError - Request timed out\./);
  assert.match(r.json.error.message, /timeout: 1\b/, 'the deployment info names the timeout');
  assert.equal(r.json.error.code, '408');
  assert.ok(took < 5000, `answered after ${took} ms: the 1 s timeout, not the upstream, decided`);
});

test('first-byte timeout from the request\'s "timeout": 408', async () => {
  const t0 = Date.now();
  const r = await gw.chat({ model: 'm', messages: msgs, num_retries: 0, timeout: 1, mock: { latency_ms: 5000 } });
  const took = Date.now() - t0;
  assert.equal(r.status, 408, r.text);
  assert.match(r.json.error.message, /^litellm\.Timeout: /);
  assert.ok(took < 5000, `answered after ${took} ms`);
});

test('connect timeout: a server that never accepts -> 408 within the deployment timeout', async () => {
  const t0 = Date.now();
  const r = await gw.chat({ model: 'blackhole', messages: msgs, num_retries: 0 });
  const took = Date.now() - t0;
  assert.equal(r.status, 408, r.text);
  assert.match(r.json.error.message, /^litellm\.Timeout: /);
  // the pool's own connect timeout is 10 s: litellm_params.timeout (1 s) must bound the connect too
  assert.ok(took < 5000, `answered after ${took} ms`);
});

test('keep-alive upstream: sequential requests reuse one connection', async () => {
  const before = (await mock.log()).length;
  for (let i = 0; i < 4; i++) {
    const r = await gw.chat({ model: 'm', messages: msgs, user: `ka-${i}` });
    assert.equal(r.status, 200);
  }
  const ours = (await mock.log()).slice(before).filter((e) => /^ka-/.test(e.body?.user));
  assert.equal(ours.length, 4);
  assert.equal(new Set(ours.map((e) => e.conn_id)).size, 1, `conn ids ${ours.map((e) => e.conn_id)}`);
});

test('an upstream that answers "Connection: close" is not reused', async () => {
  const before = (await mock.log()).length;
  for (let i = 0; i < 3; i++) {
    const r = await gw.chat({ model: 'm', messages: msgs, user: `close-${i}`, mock: { close_after_response: true } });
    assert.equal(r.status, 200, r.text);
  }
  const ours = (await mock.log()).slice(before).filter((e) => /^close-/.test(e.body?.user));
  assert.equal(new Set(ours.map((e) => e.conn_id)).size, 3, `conn ids ${ours.map((e) => e.conn_id)}`);
  const s = await gw.state();
  const pool = s.workers[0].pool;
  assert.equal(pool.connections_busy, 0, JSON.stringify(pool));
});

test('Retry-After from an upstream 429 is passed on', async () => {
  const r = await gw.chat({ model: 'map', messages: msgs, num_retries: 0, mock: { status: 429, retry_after: 7 } });
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), '7');
});

const MAP_SUFFIX = '. Received Model Group=map\nAvailable Model Group Fallbacks=None';
const mapping = [
  // [upstream behaviour, client status, type, param, message]
  [{ status: 400, error_message: 'bad temperature', error_type: 'invalid_request_error' }, 400,
    'invalid_request_error', null, 'litellm.BadRequestError: OpenAIException - bad temperature'],
  [{ status: 401 }, 401, null, null,
    'litellm.AuthenticationError: AuthenticationError: OpenAIException - Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.'],
  [{ status: 403, error_message: 'forbidden here', error_type: 'permission_error' }, 403, null, null,
    'litellm.APIError: APIError: OpenAIException - forbidden here'],
  [{ status: 404, error_message: 'no such thing', error_type: 'not_found_error' }, 404, null, null,
    'litellm.NotFoundError: NotFoundError: OpenAIException - no such thing'],
  [{ status: 408, error_message: 'too slow upstream', error_type: 'timeout_error' }, 408, null, null,
    'litellm.Timeout: Timeout Error: OpenAIException - too slow upstream'],
  [{ status: 422, error_message: 'cannot process', error_type: 'invalid_request_error' }, 400,
    'invalid_request_error', null, 'litellm.BadRequestError: OpenAIException - cannot process'],
  [{ status: 429, error_message: 'slow down', error_type: 'requests' }, 429, 'throttling_error', null,
    'litellm.RateLimitError: RateLimitError: OpenAIException - slow down'],
  [{ status: 500, error_message: 'boom', error_type: 'server_error' }, 500, null, null,
    'litellm.InternalServerError: InternalServerError: OpenAIException - boom'],
  [{ status: 502, error_message: 'bad gw', error_type: 'server_error' }, 502, null, null,
    'litellm.BadGatewayError: BadGatewayError: OpenAIException - bad gw'],
  [{ status: 503, error_message: 'overloaded', error_type: 'server_error' }, 503, null, null,
    'litellm.ServiceUnavailableError: ServiceUnavailableError: OpenAIException - overloaded'],
];

for (const [beh, status, type, param, message] of mapping) {
  test(`upstream ${beh.status} -> ${status} ${message.split(':')[0]}`, async () => {
    const r = await gw.chat({ model: 'map', messages: msgs, num_retries: 0, mock: beh });
    assert.equal(r.status, status, r.text);
    assert.deepEqual(r.json, { error: { message: message + MAP_SUFFIX, type, param, code: String(status) } });
  });
}

test('upstream context window error -> 400 ContextWindowExceededError with LiteLLM\'s note', async () => {
  const r = await gw.chat({ model: 'map', messages: msgs, num_retries: 0, mock: { status: 400, error_code: 'context_length_exceeded' } });
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json.error.type, null);
  assert.equal(r.json.error.code, '400');
  assert.equal(r.json.error.message,
    'litellm.ContextWindowExceededError: ContextWindowExceededError: OpenAIException - ' +
    "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. " +
    'Please reduce the length of the messages.' +
    "\nmodel=map. context_window_fallbacks=None. fallbacks=None.\n\nSet 'context_window_fallback' - " +
    'https://docs.litellm.ai/docs/routing#fallbacks' + MAP_SUFFIX);
});

test('an upstream that refuses the connection -> 500 Connection error', async () => {
  const r = await gw.chat({ model: 'refused', messages: msgs, num_retries: 0 });
  assert.equal(r.status, 500, r.text);
  assert.match(r.json.error.message, /^litellm\.InternalServerError: InternalServerError: OpenAIException - Connection error\./);
  assert.equal(r.json.error.code, '500');
});
