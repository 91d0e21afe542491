// Routes (under SERVER_ROOT_PATH), health endpoints, /model/info secrecy and
// master-key authentication, with LiteLLM's exact bodies.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, mockModel, waitFor } from '../lib/harness.mjs';

const KEY = 'sk-test-master-routes';
const ROOT = '/api/v1';
const SECRETS = ['sk-very-secret-1', 'sk-very-secret-2', 'very-secret-3', 'very-secret-4', 'very-secret-5',
  'sk-env-secret-6', 'sk-broken-secret-7'];

const mock = await startMock();
// the deployment with key sk-broken-secret-7 always fails upstream (for /health)
await mock.script({ rules: [{ match: { auth: 'Bearer sk-broken-secret-7' }, respond: { status: 500 } }] });
const gw = await startGateway({
  env: { SERVER_ROOT_PATH: ROOT, MG_TEST_SECRET_ENV: 'sk-env-secret-6' },
  config: {
    model_list: [
      mockModel(mock, 'm', { model: 'openai/up-m', info: { id: 'dep-m' } }),
      mockModel(mock, 'm2', { model: 'openai/up-m2', info: { id: 'dep-m2' } }),
      mockModel(mock, 'emb', { model: 'openai/up-emb', info: { id: 'dep-emb', mode: 'embedding' } }),
      {
        model_name: 'secretive',
        litellm_params: {
          model: 'openai/up-secretive', api_base: mock.url, api_key: 'sk-very-secret-1',
          extra_headers: { Authorization: 'Bearer sk-very-secret-2', 'x-visible': 'fine' },
          aws_secret_access_key: 'very-secret-3', client_secret: 'very-secret-4',
          vertex_credentials: 'very-secret-5',
        },
        model_info: { id: 'dep-secretive' },
      },
      { model_name: 'envkey', litellm_params: { model: 'openai/up-envkey', api_base: mock.url, api_key: 'os.environ/MG_TEST_SECRET_ENV' }, model_info: { id: 'dep-envkey' } },
      mockModel(mock, 'broken', { model: 'openai/up-broken', key: 'sk-broken-secret-7', info: { id: 'dep-broken' } }),
    ],
    general_settings: { master_key: KEY },
  },
  waitReady: false, // the harness probes /health/readiness, which is under ROOT here
});
after(async () => { await gw.stop(); await mock.stop(); });
await waitFor(async () => (await fetch(`${gw.url}${ROOT}/health/readiness`)).status === 200,
  { what: 'readiness under SERVER_ROOT_PATH', timeout: 20000 });

const auth = { authorization: `Bearer ${KEY}` };
async function call(method, p, { body, headers = auth } = {}) {
  const h = { ...headers };
  if (body !== undefined) h['content-type'] = 'application/json';
  const r = await fetch(gw.url + p, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, text, json };
}
const chat = (model) => ({ model, messages: [{ role: 'user', content: 'hi' }] });

test('every route of the issue answers under SERVER_ROOT_PATH', async () => {
  const routes = [
    ['POST', '/v1/chat/completions', chat('m'), (j) => j.object === 'chat.completion'],
    ['POST', '/chat/completions', chat('m'), (j) => j.object === 'chat.completion'],
    ['POST', '/openai/deployments/m/chat/completions', chat('m'), (j) => j.object === 'chat.completion'],
    ['POST', '/engines/m/chat/completions', chat('m'), (j) => j.object === 'chat.completion'],
    ['POST', '/v1/completions', { model: 'm', prompt: 'hi' }, (j) => j.object === 'text_completion'],
    ['POST', '/completions', { model: 'm', prompt: 'hi' }, (j) => j.object === 'text_completion'],
    ['POST', '/v1/embeddings', { model: 'emb', input: 'hi' }, (j) => j.object === 'list' && Array.isArray(j.data[0].embedding)],
    ['POST', '/embeddings', { model: 'emb', input: 'hi' }, (j) => j.object === 'list'],
    ['GET', '/v1/models', undefined, (j) => j.object === 'list' && j.data.some((d) => d.id === 'm')],
    ['GET', '/models', undefined, (j) => j.object === 'list'],
    ['GET', '/model/info', undefined, (j) => Array.isArray(j.data) && j.data.length === 6],
    ['GET', '/v1/model/info', undefined, (j) => Array.isArray(j.data)],
    ['GET', '/health/liveliness', undefined, (j) => j === "I'm alive!"],
    ['GET', '/health/liveness', undefined, (j) => j === "I'm alive!"],
    ['GET', '/health/readiness', undefined, (j) => j.status === 'healthy'],
    ['GET', '/health?model=m', undefined, (j) => j.healthy_count === 1],
  ];
  for (const [method, p, body, ok] of routes) {
    const r = await call(method, ROOT + p, { body });
    assert.equal(r.status, 200, `${method} ${ROOT}${p}: ${r.text.slice(0, 300)}`);
    assert.ok(ok(r.json), `${method} ${ROOT}${p}: unexpected body ${r.text.slice(0, 300)}`);
  }
});

test('outside SERVER_ROOT_PATH: 404', async () => {
  for (const [method, p, body] of [
    ['POST', '/v1/chat/completions', chat('m')], ['GET', '/v1/models'], ['GET', '/health/liveliness'],
    ['GET', '/health/readiness'], ['GET', '/api/v1x/v1/models'], ['GET', '/api/v1v1/models'],
  ]) {
    const r = await call(method, p, { body });
    assert.equal(r.status, 404, `${method} ${p}`);
  }
});

test('Azure-style and /engines/ paths: the model in the path wins over the body', async () => {
  for (const p of ['/openai/deployments/m2/chat/completions', '/engines/m2/chat/completions']) {
    const r = await call('POST', `${ROOT}${p}?api-version=2024-02-01`, { body: { ...chat('m'), user: `path-${p}` } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-litellm-model-group'), 'm2');
    assert.equal(r.headers.get('x-litellm-model-id'), 'dep-m2');
    const e = (await mock.log()).find((x) => x.body?.user === `path-${p}`);
    assert.equal(e.body.model, 'up-m2');
  }
});

test('unknown paths: 404 in the OpenAI error envelope', async () => {
  for (const p of ['/nope', '/v1/nope', '/v1/chat/completion', '/openai/deployments/m/nope']) {
    const r = await call('GET', ROOT + p);
    assert.equal(r.status, 404, p);
    assert.equal(r.json.error.code, '404', p);
    assert.equal(typeof r.json.error.message, 'string');
  }
});

test('unknown paths are 404 even without a key (routing before auth, as LiteLLM)',
  async () => {
    const r = await call('GET', `${ROOT}/no-such-route`, { headers: {} });
    assert.equal(r.status, 404);
  });

test('liveliness and liveness: "I\'m alive!" without a key', async () => {
  for (const p of ['/health/liveliness', '/health/liveness']) {
    const r = await call('GET', ROOT + p, { headers: {} });
    assert.equal(r.status, 200);
    assert.equal(r.text, '"I\'m alive!"');
    assert.match(r.headers.get('content-type'), /application\/json/);
  }
});

test('/health/readiness: LiteLLM\'s JSON, without a key', async () => {
  const r = await call('GET', `${ROOT}/health/readiness`, { headers: {} });
  assert.equal(r.status, 200);
  const j = r.json;
  assert.equal(j.status, 'healthy');
  assert.equal(j.db, 'Not connected');
  assert.equal(j.cache, null);
  assert.equal(typeof j.litellm_version, 'string');
  assert.ok(Array.isArray(j.success_callbacks));
  assert.equal(typeof j.use_aiohttp_transport, 'boolean');
  assert.equal(typeof j.log_level, 'string');
  assert.equal(typeof j.is_detailed_debug, 'boolean');
});

test('/health probes every deployment: healthy and unhealthy lists', async () => {
  const before = (await mock.log()).length;
  const r = await call('GET', `${ROOT}/health`);
  assert.equal(r.status, 200, r.text);
  const j = r.json;
  assert.equal(j.healthy_count + j.unhealthy_count, 6);
  assert.equal(j.healthy_endpoints.length, j.healthy_count);
  assert.equal(j.unhealthy_endpoints.length, j.unhealthy_count);
  const bad = j.unhealthy_endpoints.map((e) => e.model);
  assert.deepEqual(bad, ['openai/up-broken']);
  assert.equal(typeof j.unhealthy_endpoints[0].error, 'string');
  assert.ok(j.unhealthy_endpoints[0].error.length > 0);
  const good = j.healthy_endpoints.map((e) => e.model).sort();
  assert.deepEqual(good, ['openai/up-emb', 'openai/up-envkey', 'openai/up-m', 'openai/up-m2', 'openai/up-secretive']);
  for (const e of [...j.healthy_endpoints, ...j.unhealthy_endpoints]) assert.equal(e.api_key, undefined);
  // it really probed upstream: one request per deployment
  const probes = (await mock.log()).slice(before);
  assert.equal(probes.length, 6);
  assert.equal(probes.find((p) => p.model === 'up-emb').endpoint, 'embeddings');
});

test('/model/info and friends never show api_key or other secrets', async () => {
  const r = await call('GET', `${ROOT}/model/info`);
  assert.equal(r.status, 200);
  const dep = r.json.data.find((d) => d.model_info.id === 'dep-secretive');
  assert.ok(dep, 'the deployment is listed');
  assert.equal(dep.model_name, 'secretive');
  assert.equal(dep.litellm_params.model, 'openai/up-secretive');
  assert.equal(dep.litellm_params.api_base, mock.url, 'api_base is shown (as LiteLLM)');
  assert.equal(dep.litellm_params.api_key, undefined);
  for (const p of ['/model/info', '/v1/model/info', '/model/info?litellm_model_id=dep-secretive',
    '/v2/model/info', '/model_group/info', '/health', '/moongate/state', '/v1/models']) {
    const x = await call('GET', ROOT + p);
    assert.equal(x.status, 200, p);
    for (const s of SECRETS) assert.ok(!x.text.includes(s), `${p} shows secret ${s}`);
  }
});

test('auth: the master key via Authorization: Bearer, x-api-key and api-key', async () => {
  for (const h of [{ authorization: `Bearer ${KEY}` }, { authorization: `bearer ${KEY}` },
    { 'x-api-key': KEY }, { 'api-key': KEY }]) {
    const r = await call('POST', `${ROOT}/v1/chat/completions`, { body: chat('m'), headers: h });
    assert.equal(r.status, 200, `${JSON.stringify(h)}: ${r.text}`);
    const g = await call('GET', `${ROOT}/v1/models`, { headers: h });
    assert.equal(g.status, 200);
  }
});

test('auth: no key -> 401 "No api key passed in."', async () => {
  for (const [m, p, body] of [['POST', '/v1/chat/completions', chat('m')], ['GET', '/v1/models'],
    ['GET', '/model/info'], ['GET', '/health'], ['POST', '/v1/embeddings', { model: 'emb', input: 'x' }]]) {
    const r = await call(m, ROOT + p, { body, headers: {} });
    assert.equal(r.status, 401, p);
    assert.deepEqual(r.json, { error: { message: 'Authentication Error, No api key passed in.', type: 'auth_error', param: 'None', code: '401' } });
  }
});

test('auth: a wrong key gets 401 (virtual keys live in the embedded store: no "No connected db." 400)', async () => {
  const before = (await mock.stats()).requests;
  for (const h of [{ authorization: 'Bearer sk-wrong-key' }, { 'x-api-key': 'sk-wrong-key' }]) {
    const r = await call('POST', `${ROOT}/v1/chat/completions`, { body: chat('m'), headers: h });
    assert.equal(r.status, 401);
    assert.equal(r.json.error.type, 'token_not_found_in_db');
    assert.equal(r.json.error.code, '401');
    assert.match(r.json.error.message, /^Authentication Error, Invalid proxy server token passed\. Received API Key = sk-\.\.\.\S*, Key Hash \(Token\) =[0-9a-f]{64}\./);
  }
  assert.equal((await mock.stats()).requests, before, 'nothing reached the provider');
});

test('auth: Authorization without "Bearer " -> 401 malformed key', async () => {
  const r = await call('POST', `${ROOT}/v1/chat/completions`, { body: chat('m'), headers: { authorization: KEY } });
  assert.equal(r.status, 401);
  assert.deepEqual(r.json, {
    error: {
      message: 'Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix.',
      type: 'auth_error', param: 'None', code: '401',
    },
  });
});

test('no master key configured: every route is open, with a startup warning', async () => {
  const open = await startGateway({ config: { model_list: [mockModel(mock, 'm')] } });
  try {
    const r = await open.chat({ ...chat('m') }, { key: null });
    assert.equal(r.status, 200, r.text);
    const g = await open.request('/v1/models', { key: null });
    assert.equal(g.status, 200);
    const w = await open.request('/v1/models', { key: 'sk-anything' });
    assert.equal(w.status, 200);
    assert.match(open.output().stderr, /master_key|master key/i, 'a warning says the gateway is open');
  } finally { await open.stop(); }
});
