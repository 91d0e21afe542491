// Azure OpenAI (azure/) and Azure AI (azure_ai/) deployments against the Azure mock
// (tests/mocks/azure_mock.mjs), which checks the api-key header or Entra bearer, the
// api-version query and the deployment path the way Azure does.  Clients: the official
// `openai` package's AzureOpenAI (deployment-style URLs on moongate) and OpenAI classes.
// Covered: chat, stream, embeddings, completions; api_version from the deployment, the
// environment and LiteLLM's default; azure_ad_token; the v1 API; the Responses API natively;
// content-filter refusals (400, and a filtered 200) as LiteLLM's ContentPolicyViolationError
// so content_policy_fallbacks fire; an api-key rotation by config reload; secrets kept out
// of answers; Entra client-credential keys refused when the config loads.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI, { AzureOpenAI } from 'openai';
import { startGateway, moongateBin, tmpDir, pool } from '../lib/harness.mjs';
import { assertCleanStop } from './lib_rotation.mjs';
import { startAzureMock } from '../lib/mock_azure.mjs';

const MASTER = 'sk-azure-master';
const K1 = 'az-key-one-0001';
const K2 = 'az-key-two-0002';
const TOKEN = 'entra-token-abc123';
const az = await startAzureMock({ keys: [K1, K2], tokens: [TOKEN], deployments: ['gpt4o', 'gpt4o-b', 'embed', 'instruct', 'mistral'] });

const models = (key) => [
  { model_name: 'chat', litellm_params: { model: 'azure/gpt4o', api_base: az.base, api_key: key, api_version: '2024-10-21' }, model_info: { id: 'az-chat' } },
  { model_name: 'chat-default', litellm_params: { model: 'azure/gpt4o', api_base: az.base, api_key: key } },
  { model_name: 'chat-token', litellm_params: { model: 'azure/gpt4o-b', api_base: az.base, azure_ad_token: TOKEN, api_version: '2024-10-21' }, model_info: { id: 'az-token' } },
  { model_name: 'chat-v1', litellm_params: { model: 'azure/gpt4o', api_base: `${az.base}/openai/v1`, api_key: key } },
  { model_name: 'chat-preview', litellm_params: { model: 'azure/gpt4o', api_base: az.base, api_key: key, api_version: 'preview' } },
  { model_name: 'embed', litellm_params: { model: 'azure/embed', api_base: az.base, api_key: key } },
  { model_name: 'instruct', litellm_params: { model: 'azure/instruct', api_base: az.base, api_key: key, api_version: '2024-10-21' } },
  { model_name: 'foundry', litellm_params: { model: 'azure_ai/mistral', api_base: az.base, api_key: key } },
  { model_name: 'resp', litellm_params: { model: 'azure/gpt4o', api_base: az.base, api_key: key, api_version: '2025-04-01-preview' }, model_info: { id: 'az-resp' } },
  { model_name: 'guarded', litellm_params: { model: 'azure/gpt4o', api_base: az.base, api_key: key, api_version: '2024-10-21' }, model_info: { id: 'az-guarded' } },
  { model_name: 'unguarded', litellm_params: { model: 'azure/gpt4o', api_base: az.base, api_key: key, api_version: '2024-10-21' } },
];
const config = (key) => ({
  general_settings: { master_key: MASTER },
  router_settings: { num_retries: 0, content_policy_fallbacks: [{ guarded: ['chat-token'] }] },
  model_list: models(key),
});
const gw = await startGateway({ config: config(K1), workers: 2, env: { AZURE_API_VERSION: '' } });
const azure = new AzureOpenAI({ apiKey: MASTER, endpoint: gw.url, apiVersion: '2024-10-21', maxRetries: 0 });
const openai = new OpenAI({ apiKey: MASTER, baseURL: `${gw.url}/v1`, maxRetries: 0 });
let stopped = false;
after(async () => {
  if (!stopped) await gw.stop();
  await az.stop();
});
const lastSeq = async () => (await az.log()).at(-1)?.seq ?? 0;
const sentSince = async (seq) => az.log(seq);

test('chat, stream, embeddings and completions through deployment URLs', async () => {
  const s0 = await lastSeq();
  const r = await azure.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(r.choices[0].message.content, 'mock reply from gpt4o');
  assert.equal(r.model, 'chat');
  const st = await azure.chat.completions.create({ model: 'chat', stream: true, messages: [{ role: 'user', content: 'hi' }] });
  let text = '';
  for await (const c of st) text += c.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'mock reply from gpt4o');
  const e = await azure.embeddings.create({ model: 'embed', input: ['a', 'bb', 'ccc'] });
  assert.equal(e.data.length, 3);
  const c = await openai.completions.create({ model: 'instruct', prompt: 'say' });
  assert.equal(c.choices[0].text, 'mock reply from instruct');
  const sent = await sentSince(s0);
  assert.equal(sent.length, 4);
  for (const x of sent) {
    assert.equal(x.check_error, null, x.check_error);
    assert.equal(x.headers['api-key'], K1);
    assert.equal(x.headers.authorization, undefined);
  }
  assert.equal(sent[0].url, '/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21');
  assert.equal(sent[1].body.stream, true);
  assert.equal(sent[1].body.stream_options?.include_usage, undefined, 'a same-wire stream is spliced as sent');
  // no api_version anywhere: LiteLLM's default
  assert.equal(sent[2].url, '/openai/deployments/embed/embeddings?api-version=2025-02-01-preview');
  assert.equal(sent[3].url, '/openai/deployments/instruct/completions?api-version=2024-10-21');
});

test('an Entra token as a bearer; the v1 API with the deployment in the body', async () => {
  const s0 = await lastSeq();
  await openai.chat.completions.create({ model: 'chat-token', messages: [{ role: 'user', content: 'hi' }] });
  await openai.chat.completions.create({ model: 'chat-v1', messages: [{ role: 'user', content: 'hi' }] });
  await openai.chat.completions.create({ model: 'chat-preview', messages: [{ role: 'user', content: 'hi' }] });
  const sent = await sentSince(s0);
  assert.equal(sent.length, 3);
  assert.equal(sent[0].headers.authorization, `Bearer ${TOKEN}`);
  assert.equal(sent[0].headers['api-key'], undefined);
  assert.equal(sent[0].url, '/openai/deployments/gpt4o-b/chat/completions?api-version=2024-10-21');
  for (const x of sent.slice(1)) {
    assert.equal(x.url, '/openai/v1/chat/completions');
    assert.equal(x.body.model, 'gpt4o');
    assert.equal(x.check_error, null);
  }
});

test('Azure AI model inference: /chat/completions with a bearer off Azure hosts', async () => {
  const s0 = await lastSeq();
  const r = await openai.chat.completions.create({
    model: 'foundry', messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }],
  });
  assert.equal(r.choices[0].message.content, 'mock reply from mistral');
  const [x] = await sentSince(s0);
  assert.equal(x.url, '/chat/completions');
  assert.equal(x.headers.authorization, `Bearer ${K1}`);
  assert.equal(x.body.messages[0].content, 'ab', 'a text-only content list is sent as one string');
});

test('the Responses API natively on Azure: create, stream, retrieve', async () => {
  const s0 = await lastSeq();
  const r = await azure.responses.create({ model: 'resp', input: 'hello azure' });
  assert.equal(r.output_text, 'mock reply from gpt4o');
  const s = openai.responses.stream({ model: 'resp', input: 'stream it' });
  const fin = await s.finalResponse();
  assert.equal(fin.output_text, 'mock reply from gpt4o');
  const got = await openai.responses.retrieve(r.id);
  assert.equal(got.id, r.id);
  const next = await openai.responses.create({ model: 'resp', input: 'more', previous_response_id: r.id });
  assert.equal(next.status, 'completed');
  const sent = await sentSince(s0);
  assert.equal(sent.length, 4);
  assert.equal(sent[0].url, '/openai/responses?api-version=2025-04-01-preview');
  assert.equal(sent[0].body.model, 'gpt4o');
  assert.match(sent[2].url, /^\/openai\/responses\/resp_azmock_\d+\?api-version=2025-04-01-preview$/);
  assert.equal(sent[2].method, 'GET');
  assert.match(sent[3].body.previous_response_id, /^resp_azmock_\d+$/);
  for (const x of sent) assert.equal(x.check_error, null, x.check_error);
});

test('a content-filter refusal is ContentPolicyViolationError; content_policy_fallbacks fire', async () => {
  await az.script([{ match: { deployment: 'gpt4o' }, respond: { content_filter: 'prompt' } }]);
  try {
    // no fallback configured for this group: LiteLLM's message, status 400
    const noFb = await gw.chat({ model: 'unguarded', messages: [{ role: 'user', content: 'bad' }] });
    assert.equal(noFb.status, 400);
    assert.match(noFb.json.error.message, /^litellm\.ContentPolicyViolationError: litellm\.ContentPolicyViolationError: AzureException - The response was filtered due to the prompt triggering Azure OpenAI's content management policy/);
    // a fallback configured: it answers
    const s0 = await lastSeq();
    const fb = await gw.chat({ model: 'guarded', messages: [{ role: 'user', content: 'bad' }] });
    assert.equal(fb.status, 200, fb.text);
    assert.equal(fb.json.choices[0].message.content, 'mock reply from gpt4o-b');
    assert.equal(fb.headers.get('x-litellm-attempted-fallbacks'), '1');
    assert.equal(fb.headers.get('x-litellm-model-id'), 'az-token');
    const sent = await sentSince(s0);
    assert.deepEqual(sent.map((x) => x.deployment), ['gpt4o', 'gpt4o-b']);
  } finally {
    await az.script([]);
  }
});

test('a filtered completion (200, finish_reason content_filter) falls back only where configured', async () => {
  await az.script([{ match: { deployment: 'gpt4o' }, respond: { content_filter: 'completion' } }]);
  try {
    const plain = await gw.chat({ model: 'unguarded', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(plain.status, 200);
    assert.equal(plain.json.choices[0].finish_reason, 'content_filter');
    assert.equal(plain.json.choices[0].message.content, null);
    const fb = await gw.chat({ model: 'guarded', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(fb.status, 200, fb.text);
    assert.equal(fb.json.choices[0].finish_reason, 'stop');
    assert.equal(fb.headers.get('x-litellm-attempted-fallbacks'), '1');
    // a stream is not held back (LiteLLM checks whole answers only)
    const st = await gw.chat({ model: 'guarded', stream: true, messages: [{ role: 'user', content: 'x' }] });
    assert.equal(st.status, 200);
    assert.match(st.text, /"finish_reason":"content_filter"/);
  } finally {
    await az.script([]);
  }
});

test('Azure errors in LiteLLM terms, without the secrets they echo', async () => {
  await az.script([
    { match: { deployment: 'gpt4o' }, times: 1, respond: { status: 429, error_code: '429', retry_after: 7, error_message: 'Requests to the ChatCompletions Operation have exceeded call rate limit.' } },
    { match: { deployment: 'gpt4o' }, times: 1, respond: { status: 400, error_code: 'BadRequest', error_message: `key ${K1} is not valid here` } },
  ]);
  const rl = await gw.chat({ model: 'chat', messages: [{ role: 'user', content: 'x' }] });
  assert.equal(rl.status, 429);
  assert.equal(rl.headers.get('retry-after'), '7');
  assert.match(rl.json.error.message, /^litellm\.RateLimitError: AzureException RateLimitError - Requests to the ChatCompletions/);
  const leak = await gw.chat({ model: 'chat', messages: [{ role: 'user', content: 'x' }] });
  assert.equal(leak.status, 400);
  assert.ok(!leak.text.includes(K1), `the upstream's echo of the key reached the client: ${leak.text}`);
  assert.match(leak.json.error.message, /AzureException/);
  // the deployment's key is not in the admin API either
  const info = await gw.request('/model/info');
  assert.ok(!info.text.includes(K1) && !info.text.includes(TOKEN));
  await az.script([]);
});

test('rotating the api-key by config reload: nothing that starts after the reload uses the old key', async () => {
  await az.script({ rules: [{ match: { auth: K1 }, respond: { latency_ms: 800 } }], api_keys: [K1, K2] });
  const before = Array.from({ length: 4 }, () => gw.chat({ model: 'chat', messages: [{ role: 'user', content: 'old' }] }));
  // all four are at the mock (with K1) before the reload starts
  const t0 = Date.now();
  while ((await az.log()).filter((x) => x.body?.messages?.[0]?.content === 'old').length < 4) {
    assert.ok(Date.now() - t0 < 10000, 'the in-flight requests did not reach the mock');
    await new Promise((r) => setTimeout(r, 20));
  }
  gw.writeConfig(config(K2));
  const rl = await gw.reload();
  assert.equal(rl.status, 200, rl.text);
  const mark = await lastSeq();
  const afterR = await pool(30, 6, () => gw.chat({ model: 'chat', messages: [{ role: 'user', content: 'new' }] }));
  for (const r of afterR) assert.equal(r.status, 200, r.text);
  for (const r of await Promise.all(before)) assert.equal(r.status, 200, 'an in-flight request on the old key failed');
  const sent = await sentSince(mark);
  assert.ok(sent.length >= 30);
  assert.ok(sent.every((x) => x.headers['api-key'] === K2), 'a request after the reload used the old key');
  // and the old key is refused upstream from now on: still no failures
  await az.script({ rules: [], api_keys: [K2] });
  const fresh = await pool(10, 5, () => gw.chat({ model: 'chat', messages: [{ role: 'user', content: 'k2 only' }] }));
  for (const r of fresh) assert.equal(r.status, 200, r.text);
});

test('Entra client credentials are refused when the config loads, naming the keys', async () => {
  const dir = tmpDir('mg-azure-entra-');
  const cfg = path.join(dir, 'config.yaml');
  fs.writeFileSync(cfg, JSON.stringify({
    model_list: [{ model_name: 'e', litellm_params: { model: 'azure/gpt4o', api_base: az.base, tenant_id: 't', client_id: 'c', client_secret: 'never-printed-secret' } }],
  }));
  const r = spawnSync(moongateBin, ['--config', cfg, '--validate_config'], { encoding: 'utf8', timeout: 30000 });
  assert.notEqual(r.status, 0);
  const out = r.stdout + r.stderr;
  assert.match(out, /tenant_id, client_id, client_secret: Azure Entra ID token credentials are not supported/);
  assert.ok(!out.includes('never-printed-secret'));
  // a running gateway keeps its config when a reload brings them
  gw.writeConfig({ ...config(K2), model_list: [...models(K2), { model_name: 'e', litellm_params: { model: 'azure/gpt4o', api_base: az.base, client_secret: 's' } }] });
  const rl = await gw.reload();
  assert.notEqual(rl.status, 200);
  assert.match(rl.text, /client_secret: Azure Entra ID/);
  const still = await gw.chat({ model: 'chat', messages: [{ role: 'user', content: 'x' }] });
  assert.equal(still.status, 200);
  gw.writeConfig(config(K2));
  assert.equal((await gw.reload()).status, 200);
});

test('moongate stops cleanly, with no sanitizer report in an ASan build', async () => {
  stopped = true;
  await assertCleanStop(gw);
});
