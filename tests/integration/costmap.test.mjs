// The cost map (issue 11) end to end: moongate with two workers reads its map from a
// small HTTP server this test runs (LITELLM_MODEL_COST_MAP_URL), prices every answer with
// it (x-litellm-response-cost), derives wildcard routing, /v1/models expansion,
// /model/info, /model_group/info and pre-call context limits from it, reloads it
// (POST /reload/model_cost_map, the schedule, SIGHUP, /config/reload) and refuses every
// broken map loudly while the last good one keeps serving.
//
// Expected costs are computed here from the map's prices and the usage the mocks are
// scripted to report, in the order LiteLLM's generic_cost_per_token adds them:
//   (uncached prompt x input + cache read x cache price + cache creation x its price)
//   + (completion - reasoning) x output + reasoning x reasoning price (output if none).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { startMock, startGateway, mockModel, waitFor, tmpDir, repoRoot } from '../lib/harness.mjs';
import { startAnthropicMock } from '../lib/mock_anthropic.mjs';
import { req, everyWorker } from './lib_registry.mjs';
import { makeCA, makeServerCert } from './lib_extra.mjs';

const KEY = 'sk-test-master-costmap';

// ---- the maps ----

const GPT4O = {
  litellm_provider: 'openai', mode: 'chat', input_cost_per_token: 2.5e-6,
  output_cost_per_token: 1e-5, cache_read_input_token_cost: 1.25e-6, max_input_tokens: 128000,
  max_output_tokens: 16384, supports_vision: true, supports_function_calling: true,
};
const BASE_MAP = {
  sample_spec: { input_cost_per_token: 'the schema, not a model' },
  'gpt-4o': GPT4O,
  'gpt-4o-mini': {
    litellm_provider: 'openai', mode: 'chat', input_cost_per_token: 1.5e-7,
    output_cost_per_token: 6e-7, max_input_tokens: 128000, max_output_tokens: 16384,
  },
  'text-embedding-3-small': {
    litellm_provider: 'openai', mode: 'embedding', input_cost_per_token: 2e-8,
    output_cost_per_token: 0, max_input_tokens: 8191,
  },
  'tiny-ctx': {
    litellm_provider: 'openai', mode: 'chat', input_cost_per_token: 1e-6,
    output_cost_per_token: 1e-6, max_input_tokens: 10,
  },
  'claude-sonnet-4-5': {
    litellm_provider: 'anthropic', mode: 'chat', input_cost_per_token: 3e-6,
    output_cost_per_token: 1.5e-5, cache_read_input_token_cost: 3e-7,
    cache_creation_input_token_cost: 3.75e-6, max_input_tokens: 200000,
    max_output_tokens: 64000, supports_reasoning: true,
  },
};
// a reload adds a model the anthropic/* wildcard serves, and one known only by the map
const NEW_X = { litellm_provider: 'anthropic', mode: 'chat', input_cost_per_token: 7e-6, output_cost_per_token: 3.5e-5 };
const MAP_WITH_NEW = { ...BASE_MAP, 'claude-new-x': NEW_X, 'opus-new-x': NEW_X };

const text = (m) => JSON.stringify(m);
const sha = (s) => crypto.createHash('sha256').update(s).digest('hex');

/** USD cost as moongate (and LiteLLM's generic_cost_per_token) adds it up. */
function cost({ inR, outR, crR = inR, ccR = inR, rsR = outR }, { p, c = 0, cr = 0, cc = 0, rs = 0 }) {
  const prompt = Math.max(0, p - cr - cc) * inR + cr * crR + cc * ccR;
  const completion = Math.max(0, c - rs) * outR + rs * rsR;
  return prompt + completion;
}
const priceOf = (e) => ({
  inR: e.input_cost_per_token, outR: e.output_cost_per_token,
  ...(e.cache_read_input_token_cost !== undefined ? { crR: e.cache_read_input_token_cost } : {}),
  ...(e.cache_creation_input_token_cost !== undefined ? { ccR: e.cache_creation_input_token_cost } : {}),
});

// ---- the map's server: http, a self-signed https one and a CA-signed https one ----

let serve = { status: 200, ctype: 'application/json', body: text(BASE_MAP) };
const hung = new Set();
function handler(rq, res) {
  const b = serve;
  if (b.hang) {
    hung.add(res); // never answered: moongate's fetch deadline must end it
    res.on('close', () => hung.delete(res));
    return;
  }
  if (b.cut) {
    // a transfer cut short: Content-Length promises more than comes
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b.body) + 500 });
    res.write(b.body);
    setImmediate(() => res.destroy());
    return;
  }
  res.writeHead(b.status, { 'content-type': b.ctype });
  res.end(b.body);
}
const listen = (srv) => new Promise((r) => srv.listen(0, '127.0.0.1', () => r(srv.address().port)));
const server = http.createServer(handler);
const port = await listen(server);
const ca = makeCA('moongate cost map CA');
const signed = makeServerCert(ca, 'IP:127.0.0.1', 'mapserver');
const other = makeCA('not trusted by moongate'); // self-signed, served as the leaf itself
const httpsGood = https.createServer({ cert: fs.readFileSync(signed.cert), key: fs.readFileSync(signed.key) }, handler);
const httpsSelf = https.createServer({ cert: fs.readFileSync(other.cert), key: fs.readFileSync(other.key) }, handler);
const goodPort = await listen(httpsGood);
const selfPort = await listen(httpsSelf);
const MAP_URL = `http://127.0.0.1:${port}/map.json?token=secret-query-token`;

// ---- the providers and the gateway ----

const mock = await startMock();
const amock = await startAnthropicMock();
const anth = (name, model, extra = {}) => ({
  model_name: name, litellm_params: { model, api_base: amock.base, api_key: 'sk-ant-costmap-test', ...extra },
});
const MODELS = [
  mockModel(mock, 'chat-a', { model: 'openai/gpt-4o' }),
  mockModel(mock, 'emb', { model: 'openai/text-embedding-3-small' }),
  mockModel(mock, 'priced', { model: 'openai/gpt-4o', extra: { input_cost_per_token: 1e-6, output_cost_per_token: 2e-6 } }),
  mockModel(mock, 'ft', { model: 'openai/my-fine-tune-1', info: { base_model: 'gpt-4o-mini' } }),
  mockModel(mock, 'unpriced', { model: 'openai/mystery-model' }),
  mockModel(mock, 'user-info', { model: 'openai/gpt-4o', info: { max_input_tokens: 5000, mode: 'completion' } }),
  mockModel(mock, 'ctx', { model: 'openai/tiny-ctx', info: { id: 'ctx-tiny' } }),
  mockModel(mock, 'ctx', { model: 'openai/gpt-4o-mini', info: { id: 'ctx-big' } }),
  anth('claude-a', 'anthropic/claude-sonnet-4-5'),
  anth('anthropic/*', 'anthropic/*'),
];
const config = (moongate = {}, env = undefined) => ({
  model_list: MODELS,
  general_settings: { master_key: KEY },
  router_settings: { enable_pre_call_checks: true, routing_strategy: 'simple-shuffle' },
  moongate_settings: { cost_map_fetch_timeout_seconds: 1, ...moongate },
  ...(env ? { environment_variables: env } : {}),
});

const gw = await startGateway({
  workers: 2,
  env: { LITELLM_MODEL_COST_MAP_URL: MAP_URL, SSL_CERT_FILE: ca.cert },
  config: config(),
});
after(async () => {
  await gw.stop();
  for (const r of hung) r.destroy();
  server.close();
  httpsGood.close();
  httpsSelf.close();
  await mock.stop();
  await amock.stop();
});

const msgs = [{ role: 'user', content: 'hi' }];
const state = async () => (await gw.request('/moongate/state')).json;
const headerCost = (r) => {
  const v = r.headers.get ? r.headers.get('x-litellm-response-cost') : r.headers['x-litellm-response-cost'];
  return v === null || v === undefined ? null : Number(v);
};
const reloadMap = () => gw.request('/reload/model_cost_map', { method: 'POST' });
const chatA = (usage) => gw.chat({ model: 'chat-a', messages: msgs, mock: { usage } });

test('at start the map comes from LITELLM_MODEL_COST_MAP_URL; every worker holds the same bytes', async () => {
  const s = await state();
  const cm = s.cost_map;
  assert.equal(cm.origin, 'url');
  assert.equal(cm.sha256, sha(text(BASE_MAP)));
  assert.equal(cm.models, 5, 'sample_spec is not a model');
  assert.equal(cm.configured.env, 'LITELLM_MODEL_COST_MAP_URL');
  assert.ok(!cm.source.includes('secret-query-token'), `a URL's query value is hidden: ${cm.source}`);
  assert.ok(cm.age_seconds >= 0);
  assert.equal(s.workers.length, 2);
  for (const w of s.workers) assert.equal(w.cost_map.sha256, cm.sha256, `worker ${w.worker}`);
});

test('x-litellm-response-cost: chat with cached and reasoning tokens, priced from the map', async () => {
  const usage = { prompt_tokens: 1000, completion_tokens: 200, prompt_tokens_details: { cached_tokens: 400 },
    completion_tokens_details: { reasoning_tokens: 50 } };
  const r = await chatA(usage);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.usage.prompt_tokens_details.cached_tokens, 400, 'the scripted usage came back');
  assert.equal(headerCost(r), cost(priceOf(GPT4O), { p: 1000, c: 200, cr: 400, rs: 50 }));
});

test('x-litellm-response-cost: embeddings bill the prompt only', async () => {
  const r = await gw.request('/v1/embeddings', { method: 'POST', body: { model: 'emb', input: 'hello', mock: { usage: { prompt_tokens: 123 } } } });
  assert.equal(r.status, 200, r.text);
  assert.equal(headerCost(r), 123 * 2e-8);
});

test('x-litellm-response-cost: deployment prices override the map (cache tokens at its input price)', async () => {
  const r = await gw.chat({ model: 'priced', messages: msgs,
    mock: { usage: { prompt_tokens: 1000, completion_tokens: 30, prompt_tokens_details: { cached_tokens: 400 } } } });
  assert.equal(r.status, 200, r.text);
  assert.equal(headerCost(r), cost({ inR: 1e-6, outR: 2e-6 }, { p: 1000, c: 30, cr: 400 }));
});

test('x-litellm-response-cost: model_info.base_model names the entry', async () => {
  const r = await gw.chat({ model: 'ft', messages: msgs, mock: { usage: { prompt_tokens: 500, completion_tokens: 70 } } });
  assert.equal(r.status, 200, r.text);
  assert.equal(headerCost(r), cost(priceOf(BASE_MAP['gpt-4o-mini']), { p: 500, c: 70 }));
});

test('x-litellm-response-cost: Anthropic with cache read and cache creation tokens', async () => {
  await amock.script([{ match: { model: 'claude-sonnet-4-5' }, respond: {
    usage: { input_tokens: 100, cache_read_input_tokens: 300, cache_creation_input_tokens: 50, output_tokens: 20 } } }]);
  const want = cost(priceOf(BASE_MAP['claude-sonnet-4-5']), { p: 450, c: 20, cr: 300, cc: 50 });
  const r = await gw.chat({ model: 'claude-a', messages: msgs });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.usage.prompt_tokens, 450, 'prompt_tokens counts the cache tokens');
  assert.equal(headerCost(r), want);
  // the same call in Anthropic's own format (relayed, not translated)
  const m = await gw.request('/v1/messages', { method: 'POST', body: { model: 'claude-a', max_tokens: 64, messages: msgs } });
  assert.equal(m.status, 200, m.text);
  assert.equal(headerCost(m), want);
});

test('streams: no cost header (usage comes at the end), errors: cost 0', async () => {
  const s = await gw.chat({ model: 'chat-a', messages: msgs, stream: true, stream_options: { include_usage: true } });
  assert.equal(s.status, 200, s.text);
  assert.ok(s.text.includes('[DONE]'));
  assert.equal(headerCost(s), null, 'a stream never carries a cost it does not know yet');
  const e = await gw.chat({ model: 'chat-a', messages: msgs, num_retries: 0, mock: { status: 400 } });
  assert.equal(e.status, 400);
  assert.equal(e.headers.get('x-litellm-response-cost'), '0');
});

test('a model the map does not price costs 0 and is logged once per worker, not per request', async () => {
  for (let i = 0; i < 6; i++) {
    const r = await req(gw.port, '/v1/chat/completions', { method: 'POST', key: KEY,
      body: { model: 'unpriced', messages: msgs } });
    assert.equal(r.status, 200, r.text);
    assert.equal(Number(r.headers['x-litellm-response-cost']), 0);
  }
  await waitFor(() => /mystery-model.*has no price/.test(gw.output().stderr), { what: 'the no-price line' });
  const lines = gw.output().stderr.split('\n').filter((l) => /mystery-model.*has no price/.test(l));
  assert.ok(lines.length >= 1 && lines.length <= 2, `once per worker, got ${lines.length}:\n${lines.join('\n')}`);
});

test('/model/info and /model_group/info carry the map\'s facts without overwriting model_info', async () => {
  const info = (await gw.request('/model/info')).json.data;
  const a = info.find((d) => d.model_name === 'chat-a');
  assert.equal(a.model_info.max_input_tokens, 128000);
  assert.equal(a.model_info.input_cost_per_token, 2.5e-6);
  assert.equal(a.model_info.litellm_provider, 'openai');
  assert.equal(a.model_info.supports_vision, true);
  assert.equal(a.model_info.key, 'gpt-4o');
  const u = info.find((d) => d.model_name === 'user-info');
  assert.equal(u.model_info.max_input_tokens, 5000, 'user-set model_info wins (LiteLLM #35491)');
  assert.equal(u.model_info.mode, 'completion');
  assert.equal(u.model_info.output_cost_per_token, 1e-5, 'the rest comes from the map');
  const p = info.find((d) => d.model_name === 'priced');
  assert.equal(p.model_info.input_cost_per_token, 1e-6, 'the deployment\'s own price');
  // asking twice changes nothing: the snapshot's model_info is not written to
  const again = (await gw.request('/model/info')).json.data.find((d) => d.model_name === 'user-info');
  assert.deepEqual(again.model_info, u.model_info);

  const groups = (await gw.request('/model_group/info')).json.data;
  const g = groups.find((x) => x.model_group === 'claude-a');
  assert.equal(g.max_input_tokens, 200000);
  assert.equal(g.max_output_tokens, 64000);
  assert.equal(g.input_cost_per_token, 3e-6);
  assert.equal(g.output_cost_per_token, 1.5e-5);
  assert.equal(g.mode, 'chat');
  assert.equal(g.supports_reasoning, true);
  assert.deepEqual(g.providers, ['anthropic']);
  const ctx = groups.find((x) => x.model_group === 'ctx');
  assert.equal(ctx.max_input_tokens, 128000, 'the largest window of the group');
});

test('enable_pre_call_checks uses the map\'s max_input_tokens when model_info has none', async () => {
  const long = [{ role: 'user', content: 'word '.repeat(200) }];
  for (let i = 0; i < 6; i++) {
    const r = await gw.chat({ model: 'ctx', messages: long });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-litellm-model-id'), 'ctx-big', 'tiny-ctx (10 tokens in the map) is skipped');
  }
});

test('a reload adding a model reaches wildcard routing, prices and /v1/models on every worker at once', async () => {
  const before = await gw.chat({ model: 'opus-new-x', messages: msgs, num_retries: 0 });
  assert.equal(before.status, 400, 'a bare name no provider rule knows: not routable yet');
  const listed = async () => (await gw.request('/v1/models')).json.data.map((m) => m.id);
  assert.ok((await listed()).includes('anthropic/claude-sonnet-4-5'), 'anthropic/* expands from the map');
  assert.ok(!(await listed()).includes('anthropic/claude-new-x'));

  serve = { status: 200, ctype: 'application/json', body: text(MAP_WITH_NEW) };
  const r = await reloadMap();
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 'success');
  assert.equal(r.json.models_count, 7);
  assert.match(r.json.message, /Price data reloaded successfully! 7 models updated\./);
  assert.equal(r.json.moongate.sha256, sha(text(MAP_WITH_NEW)));

  // as soon as the reload returned: every worker routes and prices the new model
  const want = cost(priceOf(NEW_X), { p: 40, c: 5 });
  await amock.script([{ match: {}, respond: { usage: { input_tokens: 40, output_tokens: 5 } } }]);
  for (const model of ['anthropic/claude-new-x', 'opus-new-x']) {
    const seen = await everyWorker(gw.port, 2, '/v1/chat/completions',
      { method: 'POST', key: KEY, body: { model, messages: msgs } });
    for (const [w, res] of seen) {
      assert.equal(res.status, 200, `${model} on worker ${w}: ${res.text}`);
      assert.equal(Number(res.headers['x-litellm-response-cost']), want, `${model} priced on worker ${w}`);
    }
  }
  const lists = await everyWorker(gw.port, 2, '/v1/models', { key: KEY });
  for (const [w, res] of lists) {
    const ids = res.json.data.map((m) => m.id);
    assert.ok(ids.includes('anthropic/claude-new-x') && ids.includes('anthropic/opus-new-x'), `worker ${w}: ${ids}`);
  }

  // removing it removes it, everywhere
  serve = { status: 200, ctype: 'application/json', body: text(BASE_MAP) };
  assert.equal((await reloadMap()).status, 200);
  const lists2 = await everyWorker(gw.port, 2, '/v1/models', { key: KEY });
  for (const [w, res] of lists2) {
    assert.ok(!res.json.data.some((m) => m.id.includes('new-x')), `worker ${w} still lists it`);
  }
  const gone = await everyWorker(gw.port, 2, '/v1/chat/completions',
    { method: 'POST', key: KEY, body: { model: 'opus-new-x', messages: msgs, num_retries: 0 } });
  for (const [w, res] of gone) assert.equal(res.status, 400, `worker ${w}: ${res.text}`);
  const s = await state();
  for (const wk of s.workers) assert.equal(wk.cost_map.sha256, sha(text(BASE_MAP)));
  assert.equal(s.cost_map.sha256, sha(text(BASE_MAP)));
});

test('every broken map is refused with its reason; the old prices keep applying', async () => {
  const goodSha = sha(text(BASE_MAP));
  const want = cost(priceOf(GPT4O), { p: 100, c: 10 });
  const truncated = text(BASE_MAP).slice(0, 300);
  const stringPrice = { ...BASE_MAP, 'gpt-4o': { ...GPT4O, input_cost_per_token: '0.1' } };
  const cases = [
    { what: 'a JSON syntax error', serve: { status: 200, ctype: 'application/json', body: '{"gpt-4o": {"input_cost_per_token": 1e-6,}}' },
      code: 422, reason: /invalid JSON at line 1, column \d+/ },
    { what: 'a string price', serve: { status: 200, ctype: 'application/json', body: text(stringPrice) },
      code: 422, reason: /entry "gpt-4o": input_cost_per_token must be a number >= 0, got string "0\.1"/ },
    { what: 'an empty object', serve: { status: 200, ctype: 'application/json', body: '{}' },
      code: 422, reason: /no model entries/ },
    { what: 'a truncated file', serve: { status: 200, ctype: 'application/json', body: truncated },
      code: 422, reason: /invalid JSON at line \d+, column \d+/ },
    { what: 'a 0-byte file', serve: { status: 200, ctype: 'application/json', body: '' },
      code: 422, reason: /empty input \(0 bytes\)/ },
    { what: 'a transfer cut short', serve: { cut: true, body: text(BASE_MAP) },
      code: 502, reason: /closed after \d+ of the \d+ bytes/ },
    { what: 'HTTP 500', serve: { status: 500, ctype: 'text/plain', body: 'upstream exploded' },
      code: 502, reason: /answered HTTP 500 \(upstream exploded\)/ },
    { what: 'an HTML page', serve: { status: 200, ctype: 'text/html; charset=utf-8', body: '<!DOCTYPE html><html><body>Rate limited</body></html>' },
      code: 422, reason: /the answer is HTML/ },
    { what: 'no answer within the timeout', serve: { hang: true },
      code: 504, reason: /no whole answer within 1000ms/ },
    { what: 'a map that drops what the deployments use', serve: { status: 200, ctype: 'application/json', body: text({ 'some-other-model': GPT4O }) },
      code: 422, reason: /drops \d+ of the 5 entries the deployments use/ },
  ];
  let refusals = (await state()).cost_map.refusals;
  for (const c of cases) {
    serve = c.serve;
    const r = await reloadMap();
    assert.equal(r.status, c.code, `${c.what}: ${r.text}`);
    assert.match(r.json.detail, /^Failed to reload model cost map: /, c.what);
    assert.match(r.json.detail, c.reason, c.what);
    assert.ok(!r.text.includes('secret-query-token'), `${c.what}: the URL's query value is hidden`);
    const s = await state();
    assert.equal(s.cost_map.refusals, ++refusals, c.what);
    assert.match(s.cost_map.last_refusal.error, c.reason, c.what);
    assert.equal(s.cost_map.last_refusal.trigger, 'api');
    assert.equal(s.cost_map.sha256, goodSha, `${c.what}: the map in use did not change`);
    for (const wk of s.workers) assert.equal(wk.cost_map.sha256, goodSha);
    const chat = await chatA({ prompt_tokens: 100, completion_tokens: 10 });
    assert.equal(headerCost(chat), want, `${c.what}: the old prices still apply`);
  }
  const logged = gw.output().stderr.split('\n').filter((l) => /\[error\].*cost map .* refused \(api\)/.test(l));
  assert.ok(logged.length >= cases.length, `every refusal is an error line (${logged.length})`);
  const metrics = (await gw.request('/metrics')).text;
  const m = /^moongate_reloads_refused_total\{kind="cost_map"\} (\d+)/m.exec(metrics);
  assert.ok(m, 'the refusal counter is on /metrics');
  assert.equal(Number(m[1]), refusals);
  serve = { status: 200, ctype: 'application/json', body: text(BASE_MAP) };
});

test('https: a self-signed certificate is refused; one from a trusted CA is fetched', async () => {
  serve = { status: 200, ctype: 'application/json', body: text(MAP_WITH_NEW) };
  // the URL changes through config.yaml's environment_variables and a config reload, which
  // re-reads the map: refused, the config still applies and its answer says so
  gw.writeConfig(config({}, { LITELLM_MODEL_COST_MAP_URL: `https://127.0.0.1:${selfPort}/map.json` }));
  const r = await gw.reload();
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.cost_map.status, 'refused');
  assert.match(r.json.cost_map.error, /TLS certificate verification of 127\.0\.0\.1 failed: self.signed certificate/);
  const again = await reloadMap();
  assert.equal(again.status, 502, again.text);
  assert.match(again.json.detail, /certificate verification/);
  assert.equal((await state()).cost_map.sha256, sha(text(BASE_MAP)));

  gw.writeConfig(config({}, { LITELLM_MODEL_COST_MAP_URL: `https://127.0.0.1:${goodPort}/map.json` }));
  const ok = await gw.reload();
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.cost_map.status, 'applied');
  const s = await state();
  assert.equal(s.cost_map.sha256, sha(text(MAP_WITH_NEW)));
  for (const wk of s.workers) assert.equal(wk.cost_map.sha256, s.cost_map.sha256);

  // back to the plain http source and the base map, by SIGHUP (config and map together)
  serve = { status: 200, ctype: 'application/json', body: text(BASE_MAP) };
  gw.writeConfig(config({}, { LITELLM_MODEL_COST_MAP_URL: MAP_URL }));
  gw.child.kill('SIGHUP');
  await waitFor(async () => {
    const st = await state();
    return st.cost_map.sha256 === sha(text(BASE_MAP)) && st.workers.every((w) => w.cost_map.sha256 === st.cost_map.sha256);
  }, { what: 'SIGHUP to reload the cost map', timeout: 10000 });
});

test('the schedule: moongate_settings interval, and the LiteLLM routes', async () => {
  // the config's interval (about a second here): a changed map is picked up by itself
  gw.writeConfig(config({ cost_map_reload_interval_hours: 0.0003 }));
  assert.equal((await gw.reload()).status, 200);
  const st0 = (await gw.request('/schedule/model_cost_map_reload/status')).json;
  assert.equal(st0.scheduled, true);
  assert.equal(st0.set_by, 'config');
  serve = { status: 200, ctype: 'application/json', body: text(MAP_WITH_NEW) };
  await waitFor(async () => {
    const s = await state();
    return s.cost_map.sha256 === sha(text(MAP_WITH_NEW)) && s.cost_map.last_attempt.trigger === 'schedule' &&
      s.workers.every((w) => w.cost_map.sha256 === s.cost_map.sha256);
  }, { what: 'the scheduled reload', timeout: 15000 });
  serve = { status: 200, ctype: 'application/json', body: text(BASE_MAP) };
  gw.writeConfig(config());
  assert.equal((await gw.reload()).status, 200);
  assert.equal((await state()).cost_map.sha256, sha(text(BASE_MAP)));
  assert.equal((await gw.request('/schedule/model_cost_map_reload/status')).json.scheduled, false);

  // the API
  const t0 = Date.now();
  const set = await gw.request('/schedule/model_cost_map_reload?hours=6', { method: 'POST' });
  assert.equal(set.status, 200, set.text);
  assert.equal(set.json.status, 'success');
  assert.equal(set.json.interval_hours, 6);
  assert.equal(set.json.message, 'Model cost map reload scheduled for every 6 hours');
  const st = (await gw.request('/schedule/model_cost_map_reload/status')).json;
  assert.equal(st.scheduled, true);
  assert.equal(st.interval_hours, 6);
  assert.equal(st.set_by, 'api');
  const next = Date.parse(`${st.next_run}Z`);
  assert.ok(next >= t0 + 6 * 3600e3 - 60e3 && next <= Date.now() + 6 * 3600e3 + 60e3, `next_run ${st.next_run}`);
  const bad = await gw.request('/schedule/model_cost_map_reload?hours=0', { method: 'POST' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.detail, 'Hours must be greater than 0');
  const missing = await gw.request('/schedule/model_cost_map_reload', { method: 'POST' });
  assert.equal(missing.status, 422);
  const del = await gw.request('/schedule/model_cost_map_reload', { method: 'DELETE' });
  assert.equal(del.status, 200, del.text);
  assert.equal(del.json.message, 'Model cost map reload schedule cancelled');
  const st2 = (await gw.request('/schedule/model_cost_map_reload/status')).json;
  assert.equal(st2.scheduled, false);
  assert.equal(st2.interval_hours, null);
  assert.equal(st2.next_run, null);
  const open = await gw.request('/reload/model_cost_map', { method: 'POST', key: 'sk-not-the-master' });
  assert.ok(open.status === 400 || open.status === 401, `master key only: ${open.status} ${open.text}`);
  const src = (await gw.request('/model/cost_map/source')).json;
  assert.equal(src.source, 'remote');
  assert.equal(src.model_count, 5);
});

test('a refused map at startup: the built-in map serves (prices, cost-based routing) and the refusal shows', async () => {
  const dead = http.createServer((rq, res) => { res.writeHead(500); res.end('down'); });
  const deadPort = await listen(dead);
  const dir = tmpDir('mg-cm-');
  const g2 = await startGateway({
    dir,
    env: { LITELLM_MODEL_COST_MAP_URL: `http://127.0.0.1:${deadPort}/map.json` },
    config: {
      model_list: [
        mockModel(mock, 'm', { model: 'openai/gpt-4o' }),
        mockModel(mock, 'pick', { model: 'openai/gpt-4o', info: { id: 'pick-4o' } }),
        mockModel(mock, 'pick', { model: 'openai/gpt-4o-mini', info: { id: 'pick-mini' } }),
      ],
      general_settings: { master_key: KEY },
      router_settings: { routing_strategy: 'cost-based-routing' },
      moongate_settings: { cost_map_fetch_timeout_seconds: 2 },
    },
  });
  try {
    const s = (await g2.request('/moongate/state')).json;
    assert.equal(s.cost_map.source, 'builtin');
    assert.equal(s.cost_map.fell_back, true);
    assert.equal(s.cost_map.refusals, 1);
    assert.equal(s.cost_map.last_refusal.trigger, 'startup');
    assert.match(s.cost_map.last_refusal.error, /answered HTTP 500/);
    assert.equal(s.cost_map.configured.kind, 'url');
    const src = (await g2.request('/model/cost_map/source')).json;
    assert.equal(src.source, 'local');
    assert.match(src.fallback_reason, /HTTP 500/);
    assert.match(g2.output().stderr, /\[error\].*refused at startup, starting with the built-in map/);
    // the built-in map prices gpt-4o as the shipped file says
    const builtin = JSON.parse(fs.readFileSync(path.join(repoRoot, 'core/registry/mg_costmap_default.json'), 'utf8'));
    const r = await g2.chat({ model: 'm', messages: msgs, mock: { usage: { prompt_tokens: 100, completion_tokens: 10 } } });
    assert.equal(headerCost(r), cost(priceOf(builtin['gpt-4o']), { p: 100, c: 10 }));
    // cost-based routing reads the same prices: the cheaper deployment, every time
    for (let i = 0; i < 5; i++) {
      const p = await g2.chat({ model: 'pick', messages: msgs });
      assert.equal(p.status, 200, p.text);
      assert.equal(p.headers.get('x-litellm-model-id'), 'pick-mini');
    }
  } finally {
    await g2.stop();
    dead.close();
  }
});
