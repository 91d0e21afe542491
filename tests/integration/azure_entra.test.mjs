// Azure OpenAI with Entra ID client credentials (tenant_id / client_id / client_secret, or
// AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET) end to end: moongate trades them
// at <azure_authority_host>/<tenant>/oauth2/v2.0/token for a bearer token through the
// per-worker token cache (core/providers/mg_token.h) and sends `Authorization: Bearer`.
// The Azure mock (tests/mocks/azure_mock.mjs) is the token endpoint too: it checks the
// grant, the app, its secret and the scope as Entra does, mints signed tokens with a
// scriptable lifetime, and its chat route serves the Entra deployments only with a token it
// minted that has not expired.  Client: the official `openai` package.
//
// Checked: a chat works and carries the minted token (never api-key); the token request
// is the real wire format; a burst and many chats mint at most one token per worker; a short
// expires_in is re-minted and no request carries an expired token; a secret rotated in the
// config file (reload) and through /model/update is used at once (the next token request
// carries the new secret, no request after it carries a token of the old one); a wrong
// secret, a wrong scope and incomplete credentials are a 401 naming the refusal, never the
// secret (not in the answer, not in the gateway's log), and an upstream echoing the secret or
// the token is redacted; an endpoint that is down, failing
// or hanging is a prompt error, not a hang; the environment's credentials are used.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { AzureOpenAI } from 'openai';
import { startGateway, refusedPort, pool, waitFor } from '../lib/harness.mjs';
import { chat, assertCleanStop } from './lib_rotation.mjs';
import { startAzureMock } from '../lib/mock_azure.mjs';

const MASTER = 'sk-azure-entra-master';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const SECRET = { main: 'main-s3cr3t~Value.0001', burst: 'burst-s3cr3t~Value.0002', short: 'short-s3cr3t~0003',
  rotOld: 'rot-OLD-s3cr3t~0004', rotNew: 'rot-NEW-s3cr3t~0005', apiOld: 'api-OLD-s3cr3t~0006',
  apiNew: 'api-NEW-s3cr3t~0007', env: 'env-s3cr3t~0008', down: 'down-s3cr3t~0009',
  hang: 'hang-s3cr3t~0012' };
const WRONG = 'WRONG-s3cr3t~never-to-be-seen-0010';
const app = (client_id, client_secret, label) => ({ tenant: TENANT, client_id, client_secret, label });
const az = await startAzureMock({
  keys: ['unused-key'],
  entraApps: [
    app('app-main', SECRET.main, 'main'), app('app-burst', SECRET.burst, 'burst'),
    app('app-short', SECRET.short, 'short'), app('app-wrong', 'the-right-secret-0011', 'wrong'),
    app('app-rot', SECRET.rotOld, 'rot-old'), app('app-rot', SECRET.rotNew, 'rot-new'),
    app('app-api', SECRET.apiOld, 'api-old'), app('app-api', SECRET.apiNew, 'api-new'),
    app('app-env', SECRET.env, 'env'), app('app-down', SECRET.down, 'down'), app('app-hang', SECRET.hang, 'hang'),
  ],
  entraDeployments: ['ent-main', 'ent-burst', 'ent-short', 'ent-wrong', 'ent-rot', 'ent-api', 'ent-env', 'ent-down', 'ent-scope', 'ent-partial', 'ent-hang'],
});
const closedPort = await refusedPort(); // nothing listens there: the Entra endpoint is down

const dep = (name, deployment, creds, extra = {}) => ({
  model_name: name,
  litellm_params: {
    model: `azure/${deployment}`, api_base: az.base, api_version: '2024-10-21', azure_authority_host: az.base,
    tenant_id: TENANT, cooldown_time: 0, ...creds, ...extra,
  },
  model_info: { id: `id-${name}` },
});
const models = (rotSecret) => [
  dep('entra', 'ent-main', { client_id: 'app-main', client_secret: SECRET.main }),
  dep('burst', 'ent-burst', { client_id: 'app-burst', client_secret: SECRET.burst }),
  dep('short', 'ent-short', { client_id: 'app-short', client_secret: SECRET.short }),
  dep('wrong', 'ent-wrong', { client_id: 'app-wrong', client_secret: WRONG }),
  dep('rot', 'ent-rot', { client_id: 'app-rot', client_secret: rotSecret }),
  dep('scope', 'ent-scope', { client_id: 'app-main', client_secret: SECRET.main, azure_scope: 'https://management.azure.com/.default' }),
  dep('partial', 'ent-partial', { client_id: 'app-main' }), // no client_secret anywhere
  dep('down', 'ent-down', { client_id: 'app-down', client_secret: SECRET.down }, { azure_authority_host: `http://127.0.0.1:${closedPort}` }),
  dep('failing', 'ent-down', { client_id: 'app-down', client_secret: SECRET.down }),
  // another app: a failed fetch answers the same credential's callers for a second (mg_token.h)
  dep('hang', 'ent-hang', { client_id: 'app-hang', client_secret: SECRET.hang }, { timeout: 1 }),
];
const config = (rotSecret) => ({
  general_settings: { master_key: MASTER },
  router_settings: { num_retries: 0 },
  model_list: models(rotSecret),
});
const WORKERS = 2;
// DEBUG: the log is as talkative as it gets, so "no secret in the log" means something
const gw = await startGateway({ config: config(SECRET.rotOld), workers: WORKERS, env: { LITELLM_LOG: 'DEBUG' } });
// the environment's credentials (LiteLLM's AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET)
const gwEnv = await startGateway({
  workers: 1,
  env: { LITELLM_LOG: 'DEBUG', AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: 'app-env', AZURE_CLIENT_SECRET: SECRET.env, AZURE_AUTHORITY_HOST: az.base },
  config: {
    general_settings: { master_key: MASTER },
    model_list: [{ model_name: 'env', litellm_params: { model: 'azure/ent-env', api_base: az.base, api_version: '2024-10-21' } }],
  },
});
let stopped = false;
after(async () => {
  if (!stopped) { await gw.stop(); await gwEnv.stop(); }
  await az.stop();
});

const azure = new AzureOpenAI({ apiKey: MASTER, endpoint: gw.url, apiVersion: '2024-10-21', maxRetries: 0 });
const openai = new OpenAI({ apiKey: MASTER, baseURL: `${gw.url}/v1`, maxRetries: 0 });
const lastSeq = async () => (await az.log()).at(-1)?.seq ?? 0;
const chats = async (since, deployment) => (await az.log(since)).filter((e) => e.endpoint === 'chat' && e.deployment === deployment);
const tokenReqs = async (since, clientId) => (await az.log(since)).filter((e) => e.endpoint === 'token' && e.form.client_id === clientId);
const minted = async (clientId) => (await az.stats()).minted_by_client[clientId] ?? 0;
const body = (model, tag) => ({ model, messages: [{ role: 'user', content: `hello ${tag}` }] });
const allSecrets = [...Object.values(SECRET), WRONG, 'the-right-secret-0011'];
const assertNoSecret = (text, what) => {
  for (const s of allSecrets) assert.ok(!text.includes(s), `${what} holds a client secret (${s.slice(0, 4)}...)`);
};

test('the mock refuses what Entra refuses (so the checks below can fail)', async () => {
  const url = `${az.base}/${TENANT}/oauth2/v2.0/token`;
  const post = async (form, ctype = 'application/x-www-form-urlencoded') => {
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': ctype }, body: new URLSearchParams(form).toString() });
    return { status: r.status, json: await r.json() };
  };
  const good = { grant_type: 'client_credentials', client_id: 'app-main', client_secret: SECRET.main, scope: 'https://cognitiveservices.azure.com/.default' };
  assert.equal((await post({ ...good, client_secret: 'nope' })).json.error, 'invalid_client');
  assert.equal((await post({ ...good, client_secret: 'nope' })).status, 401);
  assert.equal((await post({ ...good, scope: 'https://cognitiveservices.azure.com' })).json.error, 'invalid_scope');
  assert.equal((await post({ ...good, grant_type: 'password' })).json.error, 'unsupported_grant_type');
  assert.equal((await post(good, 'application/json')).status, 400);
  const ok = await post(good);
  assert.equal(ok.status, 200);
  assert.equal(ok.json.token_type, 'Bearer');
  // a minted token passes the chat route; a key does not, on an Entra deployment
  const c = async (h) => (await fetch(`${az.base}/openai/deployments/ent-main/chat/completions?api-version=2024-10-21`,
    { method: 'POST', headers: { 'content-type': 'application/json', ...h }, body: '{"messages":[{"role":"user","content":"x"}]}' })).status;
  assert.equal(await c({ authorization: `Bearer ${ok.json.access_token}` }), 200);
  assert.equal(await c({ 'api-key': 'unused-key' }), 401);
  assert.equal(await c({ authorization: `Bearer ${ok.json.access_token.slice(0, -2)}xx` }), 401);
});

test('a chat through an Entra deployment with the openai client: the minted token as a bearer', async () => {
  const s0 = await lastSeq();
  const r = await azure.chat.completions.create(body('entra', 'azure-client'));
  assert.equal(r.choices[0].message.content, 'mock reply from ent-main');
  const st = await openai.chat.completions.create({ ...body('entra', 'stream'), stream: true });
  let text = '';
  for await (const ch of st) text += ch.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'mock reply from ent-main');
  const sent = await chats(s0, 'ent-main');
  assert.equal(sent.length, 2);
  const tokens = await az.tokens();
  for (const x of sent) {
    assert.equal(x.check_error, null, x.check_error);
    assert.equal(x.headers['api-key'], undefined, 'no api-key for an Entra deployment');
    assert.equal(x.entra.client_id, 'app-main');
    assert.equal(x.headers.authorization, `Bearer ${tokens.find((t) => t.serial === x.entra.serial).token}`);
  }
  // the token request as Entra takes it
  const [tr] = await tokenReqs(s0, 'app-main');
  assert.equal(tr.status, 200);
  assert.equal(tr.method, 'POST');
  assert.equal(tr.path, `/${TENANT}/oauth2/v2.0/token`);
  assert.match(tr.headers['content-type'], /^application\/x-www-form-urlencoded/);
  assert.deepEqual(tr.form, { grant_type: 'client_credentials', client_id: 'app-main', client_secret: SECRET.main,
    scope: 'https://cognitiveservices.azure.com/.default' });
  assert.equal(tr.headers.authorization, undefined);
});

test('the token is cached: a burst and many chats make at most one token request per worker', async () => {
  // a slow token endpoint: the burst piles up behind the fetch in flight
  await az.script([{ match: { endpoint: 'token', client_id: 'app-burst' }, respond: { latency_ms: 400 } }]);
  const s0 = await lastSeq();
  const rs = await Promise.all(Array.from({ length: 40 }, (_, i) => chat(gw, body('burst', `b-${i}`), { timeout: 30000 })));
  const workers = new Set();
  for (const r of rs) {
    assert.equal(r.status, 200, r.text);
    workers.add(r.worker);
  }
  const more = await pool(40, 4, () => openai.chat.completions.create(body('burst', 'more')));
  assert.equal(more.length, 40);
  const n = await minted('app-burst');
  assert.ok(n >= 1 && n <= WORKERS, `${n} tokens minted for ${WORKERS} workers`);
  assert.ok(n <= (await gw.state()).workers.length);
  const sent = await chats(s0, 'ent-burst');
  assert.equal(sent.length, 80);
  assert.ok(sent.every((e) => e.status === 200 && e.entra?.client_id === 'app-burst'));
  assert.equal(new Set(sent.map((e) => e.entra.serial)).size, n, 'every chat used one of those tokens');
  await az.script([]);
});

test('a short expires_in: the token is minted again before it expires, none is used expired', async () => {
  await az.script([{ match: { endpoint: 'token', client_id: 'app-short' }, respond: { expires_in: 3 } }]);
  const s0 = await lastSeq();
  let n = 0;
  let firstExp = null;
  await waitFor(async () => {
    const r = await chat(gw, body('short', `s-${n++}`), { timeout: 10000 });
    assert.equal(r.status, 200, `request ${n}: ${r.text}`);
    const es = await chats(s0, 'ent-short');
    firstExp ??= es[0].entra.exp_ms;
    // a request after the first token's expiry, with a token minted later
    return es.some((e) => e.t_start_ms > firstExp && e.entra.exp_ms > firstExp);
  }, { timeout: 30000, interval: 100, what: 'a request after the first token expired' });
  const es = await chats(s0, 'ent-short');
  for (const e of es) {
    assert.equal(e.status, 200, `${e.entra_refusal}`);
    assert.ok(e.entra.exp_ms > e.t_start_ms, 'a token was used after it expired');
  }
  const serials = new Set(es.map((e) => e.entra.serial));
  assert.ok(serials.size >= 2);
  assert.ok(await minted('app-short') <= serials.size + WORKERS, 'one refresh at a time, not one per request');
  await az.script([]);
});

test('a client_secret rotated in the config file is used at once; the old token is no longer used', async () => {
  // warm every worker on the old secret
  await pool(20, 4, () => openai.chat.completions.create(body('rot', 'old')));
  const before = await tokenReqs(0, 'app-rot');
  assert.ok(before.length >= 1 && before.every((e) => e.form.client_secret === SECRET.rotOld && e.secret_label === 'rot-old'));
  gw.writeConfig(config(SECRET.rotNew));
  const rl = await gw.reload();
  assert.equal(rl.status, 200, rl.text);
  const mark = await lastSeq();
  const rs = await pool(30, 6, () => chat(gw, body('rot', 'new'), { timeout: 30000 }));
  for (const r of rs) assert.equal(r.status, 200, r.text);
  const after = await tokenReqs(mark, 'app-rot');
  assert.ok(after.length >= 1, 'the new secret was traded for a new token');
  for (const e of after) {
    assert.equal(e.form.client_secret, SECRET.rotNew, 'a token request after the reload carried the old secret');
    assert.equal(e.secret_label, 'rot-new');
  }
  const sent = await chats(mark, 'ent-rot');
  assert.equal(sent.length, 30);
  assert.ok(sent.every((e) => e.entra.label === 'rot-new'), 'a request after the reload carried a token of the old secret');
  // the old secret revoked upstream: nothing breaks
  await az.script({ entra_apps: [app('app-rot', SECRET.rotNew, 'rot-new'), app('app-main', SECRET.main, 'main')] });
  const fresh = await pool(10, 5, () => chat(gw, body('rot', 'revoked'), { timeout: 30000 }));
  for (const r of fresh) assert.equal(r.status, 200, r.text);
  await az.script({ entra_apps: null });
});

test('a client_secret rotated through POST /model/update is used at once', async () => {
  const id = 'id-api-entra';
  const lp = { model: 'azure/ent-api', api_base: az.base, api_version: '2024-10-21', azure_authority_host: az.base,
    tenant_id: TENANT, client_id: 'app-api', client_secret: SECRET.apiOld };
  const created = await gw.request('/model/new', { method: 'POST', body: { model_name: 'api', litellm_params: lp, model_info: { id } } });
  assert.equal(created.status, 200, created.text);
  assertNoSecret(created.text, '/model/new answer');
  await waitFor(async () => (await gw.chat(body('api', 'probe'))).status === 200, { timeout: 10000, what: 'the new model served' });
  await pool(10, 4, () => gw.chat(body('api', 'old')));
  const upd = await gw.request('/model/update', { method: 'POST', body: { model_info: { id }, litellm_params: { client_secret: SECRET.apiNew } } });
  assert.equal(upd.status, 200, upd.text);
  assertNoSecret(upd.text, '/model/update answer');
  const mark = await lastSeq();
  const rs = await pool(20, 5, () => gw.chat(body('api', 'new')));
  for (const r of rs) assert.equal(r.status, 200, r.text);
  const after = await tokenReqs(mark, 'app-api');
  assert.ok(after.length >= 1);
  assert.ok(after.every((e) => e.form.client_secret === SECRET.apiNew));
  assert.ok((await chats(mark, 'ent-api')).every((e) => e.entra.label === 'api-new'));
  const info = await gw.request('/model/info');
  assertNoSecret(info.text, '/model/info');
});

test('a wrong secret: 401 AuthenticationError naming Entra\'s refusal, the secret nowhere', async () => {
  const s0 = await lastSeq();
  await assert.rejects(openai.chat.completions.create(body('wrong', 'wrong')), (e) => {
    assert.equal(e.status, 401, e.message);
    assert.match(e.message, /^401 litellm\.AuthenticationError: AzureException - token request for Entra ID app app-wrong in tenant 72f988bf-86f1-41af-91ab-2d7cd011db47: token endpoint refused: invalid_client: AADSTS7000215: Invalid client secret provided/);
    assert.equal(e.code, '401', JSON.stringify(e.error));
    return true;
  });
  const raw = await gw.chat(body('wrong', 'wrong-raw'));
  assert.equal(raw.status, 401);
  assert.ok(raw.json?.error?.message, 'an OpenAI error envelope');
  assertNoSecret(raw.text, 'the error answer');
  const refused = await tokenReqs(s0, 'app-wrong');
  assert.ok(refused.length >= 1 && refused.every((x) => x.status === 401 && x.refusal === 'AADSTS7000215'));
  assert.equal(refused[0].form.client_secret, WRONG, 'the gateway sent the configured secret');
  assert.equal((await chats(s0, 'ent-wrong')).length, 0, 'nothing was sent to Azure without a token');
  // a scope Entra refuses, and credentials with a part missing, are as clear
  const scope = await gw.chat(body('scope', 'scope'));
  assert.equal(scope.status, 401, scope.text);
  assert.match(scope.json.error.message, /AzureException - token request for Entra ID app app-main .*invalid_resource: AADSTS500011/);
  const partial = await gw.chat(body('partial', 'partial'));
  assert.equal(partial.status, 401, partial.text);
  assert.match(partial.json.error.message, /Entra ID client credentials are incomplete: no client_secret \(or AZURE_CLIENT_SECRET\)/);
});

test('an upstream echoing the client secret or the minted token: both redacted', async () => {
  // the token the gateway sent last to this deployment
  const used = (await chats(0, 'ent-main')).filter((e) => e.entra).at(-1).headers.authorization.slice(7);
  await az.script([{ match: { deployment: 'ent-main' }, respond: { status: 400, error_code: 'BadRequest',
    error_message: `secret ${SECRET.main} and token ${used} are not valid here` } }]);
  try {
    const r = await gw.chat(body('entra', 'echo'));
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error.message, /AzureException - secret \.\.\.\S+ and token \S+ are not valid here/);
    assertNoSecret(r.text, 'the echoed error');
    for (const x of await az.tokens()) assert.ok(!r.text.includes(x.token), 'a minted token reached the client');
  } finally {
    await az.script([]);
  }
});

test('the Entra endpoint down, failing or hanging: a prompt, clear error', async () => {
  const down = await chat(gw, body('down', 'down'), { timeout: 30000 });
  assert.equal(down.status, 500, down.text || down.error);
  const dj = JSON.parse(down.text);
  assert.match(dj.error.message, /AzureException - Connection error\. \(token request for Entra ID app app-down in tenant /);
  await az.script([
    { match: { endpoint: 'token', client_id: 'app-down' }, respond: { status: 503, error_message: 'service unavailable' } },
    { match: { endpoint: 'token', client_id: 'app-hang' }, respond: { hang: true } },
  ]);
  const failing = await chat(gw, body('failing', 'failing'), { timeout: 30000 });
  assert.ok(failing.status >= 500, failing.text || failing.error);
  assert.match(JSON.parse(failing.text).error.message, /AzureException - Connection error\. \(token request for Entra ID app app-down .*token endpoint answered 503/);
  const hang = await chat(gw, body('hang', 'hang'), { timeout: 30000 });
  assert.equal(hang.status, 408, hang.text || hang.error);
  assert.match(JSON.parse(hang.text).error.message, /litellm\.Timeout.*no access token for deployment/);
  assert.equal((await chats(0, 'ent-down')).length + (await chats(0, 'ent-hang')).length, 0);
  assert.ok((await tokenReqs(0, 'app-hang')).some((e) => e.outcome === 'in_progress'), 'the token request hangs');
  await az.script([]);
});

test('AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET from the environment', async () => {
  const s0 = await lastSeq();
  const r = await gwEnv.chat(body('env', 'env'));
  assert.equal(r.status, 200, r.text);
  const [tr] = await tokenReqs(s0, 'app-env');
  assert.equal(tr.form.client_secret, SECRET.env);
  assert.equal(tr.path, `/${TENANT}/oauth2/v2.0/token`);
  const [c] = await chats(s0, 'ent-env');
  assert.equal(c.entra.label, 'env');
});

test('no client secret in either gateway\'s log; both stop cleanly', async () => {
  stopped = true;
  const a = await assertCleanStop(gw);
  // the token fetch still hanging at the endpoint was cancelled by the stop
  await waitFor(async () => (await tokenReqs(0, 'app-hang')).every((e) => e.outcome === 'closed'),
    { timeout: 10000, what: 'the hung token request closed by the gateway' });
  const b = await assertCleanStop(gwEnv);
  const logs = gw.output().stdout + a.stderr + gwEnv.output().stdout + b.stderr;
  assert.match(logs, /app-wrong|AADSTS7000215|ent-/, 'the DEBUG log says something about these requests');
  assertNoSecret(logs, 'the gateway log');
});
