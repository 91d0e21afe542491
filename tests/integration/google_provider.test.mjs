// The gemini/ and vertex_ai/ providers end to end with the official clients: moongate with
// gemini/ deployments on the Gemini mock (tests/mocks/gemini_mock.mjs: checks the
// x-goog-api-key header and refuses a key in the URL, checks bodies as Google does),
// vertex_ai/ deployments (Gemini and Claude models) on the Vertex mock, which takes only
// tokens the mock token endpoint minted from a service-account key this test generated,
// and an openai/ deployment on the C mock for fallbacks.
//
// Checked: chat, streams, tools (the call and the result going back), embeddings (the
// OpenAI SDK's default base64 and floats), what Google receives (URL, headers, body
// shape), LiteLLM's error classes and statuses for Google's errors, an upstream throttle
// falling back to another provider, Claude on Vertex from the Anthropic SDK (native) and
// the OpenAI SDK (translated), /v1/messages translated to a Gemini model.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startGateway, mockModel } from '../lib/harness.mjs';
import {
  startTokenMock, startVertexMock, startGeminiMock, makeServiceAccount, newTokenSecret, vertexModelPath,
} from '../lib/mock_google.mjs';

const MASTER = 'sk-test-master-google-prov';
const GKEY = 'AIzaSyD-test-gemini-key-000000000000001';
const secret = newTokenSecret();
const tok = await startTokenMock({ secret });
const vx = await startVertexMock({ secret });
const gm = await startGeminiMock({ keys: [GKEY] });
const omock = await startMock();
const sa = makeServiceAccount({ email: 'moongate-test@proj-1.iam.gserviceaccount.com', tokenUri: tok.tokenUri, project: 'proj-1' });
await tok.accounts([sa]);

const gem = (name, model, extra = {}) => ({
  model_name: name, litellm_params: { model: `gemini/${model}`, api_key: GKEY, api_base: `${gm.base}/v1beta`, ...extra },
});
const vtx = (name, model, { publisher = 'google', extra = {} } = {}) => ({
  model_name: name,
  litellm_params: {
    model: `vertex_ai/${model}`, vertex_project: 'proj-1', vertex_location: 'europe-west4',
    vertex_credentials: sa.text, api_base: vertexModelPath(vx.base, { project: 'proj-1', location: 'europe-west4', publisher, model }),
    ...extra,
  },
});
const gw = await startGateway({
  config: {
    model_list: [
      gem('gem', 'gemini-2.0-flash'),
      gem('gem-emb', 'text-embedding-004'),
      gem('gem-badkey', 'gemini-2.0-flash', { api_key: 'AIzaSyD-not-a-key-the-mock-knows-00000', cooldown_time: 0 }),
      gem('gem-err', 'gemini-err', { cooldown_time: 0 }),
      gem('gem-fb', 'gemini-fb', { cooldown_time: 0 }),
      mockModel(omock, 'oai-fb', { model: 'openai/oai-fb-up', key: 'sk-upstream-openai-fb-0001' }),
      vtx('vtx', 'gemini-2.5-flash'),
      vtx('vtx-emb', 'text-embedding-005'),
      vtx('vtx-fb', 'gemini-vfb', { extra: { cooldown_time: 0 } }),
      vtx('vtx-err', 'gemini-verr', { extra: { cooldown_time: 0 } }),
      vtx('claude', 'claude-sonnet-4-5@20250929', { publisher: 'anthropic' }),
    ],
    router_settings: { fallbacks: [{ 'gem-fb': ['oai-fb'] }, { 'vtx-fb': ['gem'] }] },
    general_settings: { master_key: MASTER },
  },
});
after(async () => { await gw.stop(); await vx.stop(); await tok.stop(); await gm.stop(); await omock.stop(); });

const openai = new OpenAI({ apiKey: MASTER, baseURL: `${gw.url}/v1`, maxRetries: 0 });
const anthropic = new Anthropic({ apiKey: MASTER, baseURL: gw.url, maxRetries: 0 });
let tagSeq = 0;
const tag = (t) => `[${t}-${++tagSeq}]`;
/** The mock log entry whose body mentions marker. */
async function entryFor(mock, marker) {
  const all = await mock.log();
  const hits = all.filter((e) => JSON.stringify(e.body ?? '').includes(marker));
  assert.equal(hits.length, 1, `one request with ${marker} reached the mock (got ${hits.length})`);
  return hits[0];
}

// ---- Gemini API ----

test('gemini/: chat through the OpenAI SDK; the key in x-goog-api-key, never in the URL', async () => {
  const m = tag('chat');
  const r = await openai.chat.completions.create({
    model: 'gem', temperature: 0.2, max_tokens: 50, stop: ['END'],
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: `Capital of France? ${m}` }],
  });
  assert.equal(r.model, 'gem');
  assert.equal(r.choices[0].message.content, 'mock reply from gemini-2.0-flash');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens === 4);
  const e = await entryFor(gm, m);
  assert.equal(e.path, '/v1beta/models/gemini-2.0-flash:generateContent');
  assert.equal(e.headers['x-goog-api-key'], GKEY);
  assert.equal(e.headers.authorization, undefined);
  assert.ok(!e.path.includes(GKEY) && !e.path.includes('key='));
  assert.deepEqual(e.body.systemInstruction, { parts: [{ text: 'Be brief.' }] });
  assert.equal(e.body.contents[0].role, 'user');
  assert.deepEqual(e.body.generationConfig, { temperature: 0.2, maxOutputTokens: 50, stopSequences: ['END'] });
  assert.equal(e.body.model, undefined);
});

test('gemini/: a stream through the OpenAI SDK, with usage', async () => {
  const m = tag('stream');
  await gm.script([{ match: { method: 'streamGenerateContent' }, times: 1, respond: { content: 'one two three four', chunk_interval_ms: 20 } }]);
  const s = await openai.chat.completions.create({
    model: 'gem', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: `count ${m}` }],
  });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const c of s) {
    chunks++;
    if (c.choices[0]?.delta?.content) text += c.choices[0].delta.content;
    if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
    if (c.usage) usage = c.usage;
  }
  assert.equal(text, 'one two three four');
  assert.equal(finish, 'stop');
  assert.ok(chunks >= 5, `a chunk per word and the finish (${chunks})`);
  assert.equal(usage.completion_tokens, 4);
  const e = await entryFor(gm, m);
  assert.equal(e.path, '/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse');
  await gm.script([]);
});

test('gemini/: tools: a function call comes back as tool_calls, its result goes back named', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false } } }];
  const m = tag('tools');
  await gm.script([{ match: { model: 'gemini-2.0-flash' }, times: 1, respond: { function_call: { name: 'get_weather', args: { city: 'Paris' } } } }]);
  const r = await openai.chat.completions.create({ model: 'gem', tools, tool_choice: 'auto', messages: [{ role: 'user', content: `Weather in Paris? ${m}` }] });
  const call = r.choices[0].message.tool_calls[0];
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
  assert.match(call.id, /^call_/);
  const e1 = await entryFor(gm, m);
  assert.equal(e1.body.tools[0].functionDeclarations[0].name, 'get_weather');
  assert.equal(e1.body.tools[0].functionDeclarations[0].parameters.additionalProperties, undefined);
  assert.equal(e1.body.toolConfig.functionCallingConfig.mode, 'AUTO');
  const m2 = tag('tools2');
  const r2 = await openai.chat.completions.create({
    model: 'gem', tools,
    messages: [{ role: 'user', content: `Weather in Paris? ${m2}` }, r.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '18C and sunny' }],
  });
  assert.equal(r2.choices[0].message.content, 'mock reply from gemini-2.0-flash');
  const e2 = await entryFor(gm, m2);
  assert.deepEqual(e2.body.contents.map((c) => c.role), ['user', 'model', 'user']);
  assert.deepEqual(e2.body.contents[1].parts[0].functionCall, { name: 'get_weather', args: { city: 'Paris' } });
  assert.deepEqual(e2.body.contents[2].parts[0].functionResponse, { name: 'get_weather', response: { content: '18C and sunny' } });
  await gm.script([]);
});

test('gemini/: embeddings through the OpenAI SDK (base64 by default, floats when asked)', async () => {
  const r = await openai.embeddings.create({ model: 'gem-emb', input: ['hello', 'world'] });
  assert.equal(r.object, 'list');
  assert.equal(r.model, 'gem-emb');
  assert.equal(r.data.length, 2);
  assert.equal(r.data[0].embedding.length, 8);
  const f = await openai.embeddings.create({ model: 'gem-emb', input: 'hello', encoding_format: 'float', dimensions: 4 });
  assert.equal(f.data[0].embedding.length, 4);
  assert.ok(Math.abs(f.data[0].embedding[0] - r.data[0].embedding[0]) < 1e-6, 'the same vector both ways');
  assert.ok(f.usage.prompt_tokens > 0, 'an estimate when Google counts nothing');
  const log = await gm.log();
  const e = log.filter((x) => x.path.includes(':batchEmbedContents')).pop();
  assert.equal(e.path, '/v1beta/models/text-embedding-004:batchEmbedContents');
  assert.deepEqual(e.body.requests[0], { model: 'models/text-embedding-004', content: { parts: [{ text: 'hello' }] }, outputDimensionality: 4 });
});

test('gemini/: a key the API does not know is a 401 AuthenticationError', async () => {
  await assert.rejects(openai.chat.completions.create({ model: 'gem-badkey', messages: [{ role: 'user', content: 'x' }] }), (e) => {
    assert.equal(e.status, 401);
    assert.match(e.message, /litellm\.AuthenticationError: GeminiException - \{/);
    assert.match(e.message, /API key not valid/);
    assert.ok(!e.message.includes('AIzaSyD-not-a-key'), 'the key is not echoed');
    return true;
  });
});

test('gemini/: Google\'s errors in LiteLLM\'s classes', async () => {
  const cases = [
    [{ status: 429, error_message: 'Resource has been exhausted (e.g. check quota).' }, 429, /litellm\.RateLimitError: litellm\.RateLimitError: geminiException - /],
    [{ status: 400, error_message: 'The input token count (2000000) exceeds the maximum number of tokens allowed (1048576).' }, 400, /litellm\.ContextWindowExceededError: ContextWindowExceededError: GeminiException - /],
    [{ status: 400, error_message: 'Invalid JSON payload received.' }, 400, /litellm\.BadRequestError: GeminiException BadRequestError - /],
    [{ status: 404, error_message: 'models/gemini-err is not found for API version v1beta' }, 404, /litellm\.NotFoundError: GeminiException - /],
    [{ status: 503, error_message: 'The service is currently unavailable.' }, 503, /litellm\.ServiceUnavailableError: GeminiException - /],
  ];
  for (const [respond, status, re] of cases) {
    await gm.script([{ match: { model: 'gemini-err' }, respond }]);
    await assert.rejects(openai.chat.completions.create({ model: 'gem-err', messages: [{ role: 'user', content: 'x' }], num_retries: 0 }), (e) => {
      assert.equal(e.status, status, `${respond.error_message}: ${e.message}`);
      assert.match(e.message, re);
      return true;
    });
  }
  await gm.script([]);
});

test('gemini/: an upstream throttle falls back to another provider', async () => {
  await gm.script([{ match: { model: 'gemini-fb' }, respond: { status: 429, retry_after: 1 } }]);
  const before = (await gm.stats()).requests;
  const r = await gw.chat({ model: 'gem-fb', messages: [{ role: 'user', content: 'hello' }], num_retries: 0 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-litellm-model-group'), 'oai-fb');
  assert.equal(r.headers.get('x-litellm-attempted-fallbacks'), '1');
  assert.ok((await gm.stats()).requests > before, 'Gemini was tried first');
  await gm.script([]);
});

test('/v1/messages (Anthropic SDK) translated to a Gemini model', async () => {
  const m = tag('anth');
  const r = await anthropic.messages.create({ model: 'gem', max_tokens: 64, system: 'Terse.', messages: [{ role: 'user', content: `Hi ${m}` }] });
  assert.equal(r.type, 'message');
  assert.equal(r.content[0].text, 'mock reply from gemini-2.0-flash');
  assert.equal(r.stop_reason, 'end_turn');
  const e = await entryFor(gm, m);
  assert.deepEqual(e.body.systemInstruction, { parts: [{ text: 'Terse.' }] });
  assert.equal(e.body.generationConfig.maxOutputTokens, 64);
});

// ---- Vertex AI ----

test('vertex_ai/: chat and stream with a token minted from the key; the project and location in the path', async () => {
  const m = tag('vchat');
  const r = await openai.chat.completions.create({ model: 'vtx', messages: [{ role: 'user', content: `hi ${m}` }] });
  assert.equal(r.choices[0].message.content, 'mock reply from gemini-2.5-flash');
  const e = await entryFor(vx, m);
  assert.equal(e.path, '/v1/projects/proj-1/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent');
  assert.equal(e.sa, sa.email, 'the token was minted from the test\'s key');
  assert.match(e.headers.authorization, /^Bearer ya29\.mock\./);
  const m2 = tag('vstream');
  const s = await openai.chat.completions.create({ model: 'vtx', stream: true, messages: [{ role: 'user', content: `hi ${m2}` }] });
  let text = '';
  for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'mock reply from gemini-2.5-flash');
  const e2 = await entryFor(vx, m2);
  assert.equal(e2.path.split('?')[1], 'alt=sse');
  assert.equal(e2.token_serial, e.token_serial, 'the cached token again');
});

test('vertex_ai/: tools and reasoning', async () => {
  await vx.script([{ match: { model: 'gemini-2.5-flash' }, times: 1, respond: { thought: 'thinking about it', function_call: { name: 'lookup', args: { q: 'x' } } } }]);
  const m = tag('vtools');
  const r = await openai.chat.completions.create({
    model: 'vtx', reasoning_effort: 'low', tool_choice: 'required',
    tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }],
    messages: [{ role: 'user', content: `find ${m}` }],
  });
  assert.equal(r.choices[0].message.tool_calls[0].function.name, 'lookup');
  assert.equal(r.choices[0].message.reasoning_content, 'thinking about it');
  const e = await entryFor(vx, m);
  assert.deepEqual(e.body.generationConfig.thinkingConfig, { thinkingBudget: 1024, includeThoughts: true });
  assert.equal(e.body.toolConfig.functionCallingConfig.mode, 'ANY');
  await vx.script([]);
});

test('vertex_ai/: embeddings over :predict', async () => {
  const r = await openai.embeddings.create({ model: 'vtx-emb', input: ['alpha', 'beta'], encoding_format: 'float' });
  assert.equal(r.data.length, 2);
  assert.equal(r.data[1].embedding.length, 8);
  assert.equal(r.usage.prompt_tokens, 3, 'Vertex counts the tokens (the mock: ceil(chars / 4) each)');
  const e = (await vx.log()).filter((x) => x.path.endsWith(':predict')).pop();
  assert.equal(e.path, '/v1/projects/proj-1/locations/europe-west4/publishers/google/models/text-embedding-005:predict');
  assert.deepEqual(e.body, { instances: [{ content: 'alpha' }, { content: 'beta' }] });
});

test('vertex_ai/claude: the Anthropic SDK passes through (no model, anthropic_version vertex-2023-10-16)', async () => {
  const m = tag('claude');
  const r = await anthropic.messages.create({ model: 'claude', max_tokens: 100, messages: [{ role: 'user', content: `hello ${m}` }] });
  assert.equal(r.content[0].text, 'mock reply from claude-sonnet-4-5@20250929');
  assert.equal(r.model, 'claude');
  const e = await entryFor(vx, m);
  assert.equal(e.path, '/v1/projects/proj-1/locations/europe-west4/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict');
  assert.equal(e.body.anthropic_version, 'vertex-2023-10-16');
  assert.equal(e.body.model, undefined);
  assert.equal(e.sa, sa.email);
  const m2 = tag('claude-stream');
  const st = anthropic.messages.stream({ model: 'claude', max_tokens: 100, messages: [{ role: 'user', content: `hello ${m2}` }] });
  const msg = await st.finalMessage();
  assert.equal(msg.content[0].text, 'mock reply from claude-sonnet-4-5@20250929');
  const e2 = await entryFor(vx, m2);
  assert.match(e2.path, /:streamRawPredict/);
  assert.equal(e2.body.stream, true);
});

test('vertex_ai/claude: the OpenAI SDK, translated, stream and tools', async () => {
  const m = tag('claude-oai');
  const s = await openai.chat.completions.create({ model: 'claude', stream: true, messages: [{ role: 'user', content: `hi ${m}` }] });
  let text = '';
  for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'mock reply from claude-sonnet-4-5@20250929');
  const e = await entryFor(vx, m);
  assert.equal(e.body.anthropic_version, 'vertex-2023-10-16');
  assert.equal(e.body.model, undefined);
  assert.equal(e.body.stream, true);
  const r = await openai.chat.completions.create({
    model: 'claude', tool_choice: 'required', tools: [{ type: 'function', function: { name: 'calc', parameters: { type: 'object', properties: {} } } }],
    messages: [{ role: 'user', content: 'use the tool' }],
  });
  assert.equal(r.choices[0].message.tool_calls[0].function.name, 'calc');
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
});

test('vertex_ai/: RESOURCE_EXHAUSTED is a RateLimitError, and falls back to gemini/', async () => {
  await vx.script([{ match: { model: 'gemini-verr' }, respond: { status: 429 } }, { match: { model: 'gemini-vfb' }, respond: { status: 429 } }]);
  await assert.rejects(openai.chat.completions.create({ model: 'vtx-err', messages: [{ role: 'user', content: 'x' }], num_retries: 0 }), (e) => {
    assert.equal(e.status, 429);
    assert.match(e.message, /litellm\.RateLimitError: litellm\.RateLimitError: vertex_aiException - \{/);
    assert.match(e.message, /RESOURCE_EXHAUSTED/);
    assert.ok(!e.message.includes('ya29.'), 'no token in the message');
    return true;
  });
  const r = await gw.chat({ model: 'vtx-fb', messages: [{ role: 'user', content: 'x' }], num_retries: 0 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-litellm-model-group'), 'gem');
  await vx.script([{ match: { model: 'gemini-verr' }, respond: { status: 403, error_message: "Permission 'aiplatform.endpoints.predict' denied" } }]);
  await assert.rejects(openai.chat.completions.create({ model: 'vtx-err', messages: [{ role: 'user', content: 'x' }], num_retries: 0 }), (e) => {
    assert.equal(e.status, 400, 'LiteLLM raises BadRequestError for a Vertex 403');
    assert.match(e.message, /Vertex_aiException BadRequestError - /);
    return true;
  });
  await vx.script([]);
});

test('vertex_ai/: a minted token echoed by the upstream is scrubbed like a configured key', async () => {
  await openai.chat.completions.create({ model: 'vtx', messages: [{ role: 'user', content: 'warm' }] });
  const tokens = (await tok.tokens()).map((t) => t.token);
  assert.ok(tokens.length >= 1);
  const token = tokens.at(-1);
  await vx.script([{ match: { model: 'gemini-verr' }, respond: { status: 400, error_message: `bad request with Authorization ${token} echoed` } }]);
  const r = await gw.chat({ model: 'vtx-err', messages: [{ role: 'user', content: 'x' }], num_retries: 0 });
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /echoed/);
  for (const t of tokens) assert.ok(!r.text.includes(t) && !r.text.includes(t.slice(10, 40)), 'no token in the answer');
  assert.ok(!gw.output().stderr.includes(token.slice(10, 40)), 'no token in the log');
  await vx.script([]);
});
