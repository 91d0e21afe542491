// The bedrock/ provider end to end: moongate with bedrock/ deployments on the Bedrock mock
// (tests/mocks/bedrock_mock.mjs, which recomputes every SigV4 signature with the test's
// secrets, checks Converse / InvokeModel bodies the way bedrock-runtime does and answers in
// AWS event-stream framing) and openai/ deployments on the C mock, through the official
// `openai` and `@anthropic-ai/sdk` clients and raw HTTP.
//
// Checked: chat and streams over Converse and InvokeModel (OpenAI and Anthropic clients),
// tools both ways (request toolConfig, tool_calls / tool_use back, streamed arguments that
// parse, a tool round trip the mock's pairing check accepts), what reaches AWS (the model
// id as one URI label, cross-region ids and ARNs, the region and service of the signature,
// session tokens, a Bedrock API key as bearer, environment credentials, no model or stream
// in an invoke body), upstream errors as LiteLLM maps them (BedrockException: throttling
// 429 with Retry-After, context window, permission, bad signature, unavailable), an upstream
// throttle falling back to another provider, an exception inside a stream, a stream split at
// every byte offset and one byte per write, a corrupt frame, UnsupportedParamsError, and no
// secret in /model/info or in an error.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startMock, startGateway, mockModel, pool } from '../lib/harness.mjs';
import { startBedrockMock } from '../lib/mock_bedrock.mjs';
import { assertCleanStop } from './lib_rotation.mjs';

const MASTER = 'sk-test-master-bedrock';
const A = { access_key_id: 'AKIAMOONGATETESTA001', secret_access_key: 'bedrock/secretA+0001xyzXYZ', label: 'a' };
const T = { access_key_id: 'ASIAMOONGATETESTT001', secret_access_key: 'bedrock/secretT+0001xyzXYZ', session_token: 'FwoGZXIvYXdzEToken0001', label: 't' };
const E = { access_key_id: 'AKIAMOONGATETESTE001', secret_access_key: 'bedrock/secretE+0001xyzXYZ', label: 'env' };
const BEARER = 'ABSKbedrockapikey0001';
const ENV_BEARER = 'ABSKbedrockenvkey0002';
const WRONG_SECRET = 'bedrock/not-the-secret-0001';
const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const SONNET_XR = 'us.anthropic.claude-3-5-sonnet-20241022-v2:0';
const ARN = `arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.${HAIKU}`;

const bmock = await startBedrockMock({ credentials: [A, T, E], bearers: [BEARER, ENV_BEARER] });
const omock = await startMock();

const keys = (c) => ({ aws_access_key_id: c.access_key_id, aws_secret_access_key: c.secret_access_key, ...(c.session_token ? { aws_session_token: c.session_token } : {}) });
const br = (name, model, extra = {}, id = undefined) => ({
  model_name: name,
  litellm_params: { model: `bedrock/${model}`, api_base: bmock.base, aws_region_name: 'us-east-1', ...keys(A), ...extra },
  ...(id ? { model_info: { id } } : {}),
});

const gw = await startGateway({
  env: {
    // credentials from the environment for the deployment that names none
    AWS_ACCESS_KEY_ID: E.access_key_id, AWS_SECRET_ACCESS_KEY: E.secret_access_key, AWS_SESSION_TOKEN: '',
    AWS_REGION: 'eu-west-3', AWS_REGION_NAME: '', AWS_DEFAULT_REGION: '', AWS_BEARER_TOKEN_BEDROCK: '',
    AWS_BEDROCK_RUNTIME_ENDPOINT: '',
  },
  config: {
    model_list: [
      br('claude', HAIKU, {}, 'claude-1'),
      br('claude-converse', `converse/${SONNET_XR}`),
      br('claude-invoke', `invoke/${SONNET_XR}`),
      { model_name: 'claude-arn', litellm_params: { model: `bedrock/converse/${ARN}`, aws_bedrock_runtime_endpoint: bmock.base, ...keys(A) } },
      br('claude-token', HAIKU, keys(T)),
      { model_name: 'claude-apikey', litellm_params: { model: `bedrock/${HAIKU}`, api_base: bmock.base, api_key: BEARER } },
      { model_name: 'claude-env', litellm_params: { model: `bedrock/${HAIKU}`, api_base: bmock.base } },
      br('claude-badsig', HAIKU, { aws_secret_access_key: WRONG_SECRET, cooldown_time: 0 }),
      br('claude-err', HAIKU, { cooldown_time: 0 }),
      br('claude-drop', HAIKU, { drop_params: true }),
      br('nova', 'amazon.nova-pro-v1:0'),
      // a throttled Bedrock group whose fallback is another provider
      br('claude-throttled', 'anthropic.claude-throttled-v1:0', { cooldown_time: 0 }),
      mockModel(omock, 'gpt-fb', { model: 'openai/gpt-fb-up', key: 'sk-upstream-openai-fb' }),
    ],
    router_settings: { num_retries: 0, fallbacks: [{ 'claude-throttled': ['gpt-fb'] }] },
    general_settings: { master_key: MASTER },
  },
});
let stopped = false;
// AWS_BEARER_TOKEN_BEDROCK: a Bedrock API key from the environment
const gw2 = await startGateway({
  env: {
    AWS_BEARER_TOKEN_BEDROCK: ENV_BEARER, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_SESSION_TOKEN: '',
    AWS_REGION: '', AWS_REGION_NAME: '', AWS_DEFAULT_REGION: '', AWS_BEDROCK_RUNTIME_ENDPOINT: bmock.base,
  },
  config: {
    model_list: [{ model_name: 'claude', litellm_params: { model: `bedrock/${HAIKU}` } }],
    router_settings: { num_retries: 0 },
    general_settings: { master_key: MASTER },
  },
});
after(async () => { if (!stopped) await gw.stop(); await gw2.stop(); await bmock.stop(); await omock.stop(); });

const WEATHER_FN = {
  type: 'function',
  function: {
    name: 'get_weather', description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};
const PARIS = { city: 'Paris', unit: 'celsius' };
const SPLIT_USAGE = { inputTokens: 11, outputTokens: 8 }; // every split stream has the same bytes
await bmock.script({
  rules: [
    { match: { contains: 'tag-tools-1' }, respond: { blocks: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', name: 'get_weather', input: PARIS, id: 'tooluse_paris1' }] } },
    { match: { contains: 'tag-tools-stream' }, respond: { blocks: [{ type: 'text', text: 'Let me look.' }, { type: 'tool_use', name: 'get_weather', input: PARIS }], json_chunks: 4 } },
    { match: { contains: 'tag-anth-tool' }, respond: { blocks: [{ type: 'text', text: 'Looking.' }, { type: 'tool_use', name: 'get_weather', input: PARIS }], json_chunks: 3 } },
    { match: { contains: 'tag-reasoning' }, respond: { blocks: [{ type: 'reasoning', text: 'two plus two is four', signature: 'sig-abc' }, { type: 'text', text: '4' }] } },
    { match: { contains: 'tag-e429' }, respond: { status: 429, retry_after: 7 } },
    { match: { contains: 'tag-ectx' }, respond: { status: 400, error_type: 'ValidationException', error_message: 'Input is too long for requested model.' } },
    { match: { contains: 'tag-e403' }, respond: { status: 403, error_type: 'AccessDeniedException' } },
    { match: { contains: 'tag-e503' }, respond: { status: 503 } },
    { match: { contains: 'tag-e408' }, respond: { status: 408 } },
    { match: { contains: 'tag-echo' }, respond: { status: 400, error_message: `echo: ${T.session_token} / ${A.secret_access_key} / ${E.secret_access_key} / ${ENV_BEARER}` } },
    { match: { contains: 'tag-midstream' }, respond: { content: 'partial answer here', exception: { type: 'throttlingException', message: 'Too many tokens, please wait before trying again.', after_events: 3 } } },
    { match: { contains: 'tag-badcrc' }, respond: { content: 'one two three', bad_crc_at: 2 } },
    { match: { contains: 'tag-truncated' }, respond: { content: 'one two', truncate_last: true } },
    { match: { contains: 'tag-split' }, respond: { content: 'split streams decode the same whatever the reads', usage: SPLIT_USAGE } },
    { match: { model: 'anthropic.claude-throttled-v1:0' }, respond: { status: 429, error_message: 'Too many requests (throttled group).' } },
  ],
});

const oai = new OpenAI({ apiKey: MASTER, baseURL: `${gw.url}/v1`, maxRetries: 0 });
const anth = new Anthropic({ apiKey: MASTER, baseURL: gw.url, maxRetries: 0 });
const say = (tag, text = 'Hello') => [{ role: 'user', content: `${text} ${tag}` }];

/** The one Bedrock mock entry whose raw body contains tag. */
async function entry(tag) {
  const e = (await bmock.log()).filter((x) => JSON.stringify(x.body ?? '').includes(tag));
  assert.equal(e.length, 1, `one Bedrock request carrying ${tag} (got ${e.length})`);
  return e[0];
}
async function post(path, body, headers = {}) {
  const r = await fetch(gw.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER}`, ...headers },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* a stream or not JSON */ }
  return { status: r.status, headers: r.headers, text, json };
}
/** The data payloads of an SSE body (JSON, or the string '[DONE]'). */
const sse = (text) => text.split('\n\n').filter((f) => f.startsWith('data: ')).map((f) => {
  const d = f.slice(6);
  return d === '[DONE]' ? d : JSON.parse(d);
});
const streamText = (frames) => frames.filter((f) => f !== '[DONE]').map((f) => f.choices?.[0]?.delta?.content ?? '').join('');

// ---- the openai client over Converse ----

test('chat over Converse: the answer, usage, and a request AWS would accept', async () => {
  const r = await oai.chat.completions.create({ model: 'claude', messages: [{ role: 'system', content: 'Be brief.' }, ...say('tag-chat1')], max_tokens: 64, temperature: 0.3 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, 'claude');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(r.choices[0].message.content, `mock reply from ${HAIKU}`);
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.usage.completion_tokens, 4);
  assert.ok(r.usage.prompt_tokens > 0);
  const e = await entry('tag-chat1');
  assert.equal(e.check_error, null);
  assert.equal(e.op, 'converse');
  assert.equal(e.raw_model, 'anthropic.claude-3-haiku-20240307-v1%3A0', 'the model id is one URI label');
  assert.equal(e.model, HAIKU);
  assert.deepEqual(e.auth, {
    kind: 'sigv4', access_key_id: A.access_key_id, region: 'us-east-1', service: 'bedrock',
    signed_headers: 'accept;content-type;host;x-amz-date', verified: true, label: 'a', session_token: null,
  });
  assert.deepEqual(e.body, {
    messages: [{ role: 'user', content: [{ text: 'Hello tag-chat1' }] }],
    system: [{ text: 'Be brief.' }],
    inferenceConfig: { maxTokens: 64, temperature: 0.3 },
  });
  assert.equal(e.headers.authorization.includes(A.secret_access_key), false);
});

test('stream over ConverseStream: deltas in order, finish, usage with include_usage', async () => {
  const s = await oai.chat.completions.create({ model: 'claude', messages: say('tag-stream1'), stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish = null;
  let usage = null;
  const deltas = [];
  for await (const ch of s) {
    const c = ch.choices[0];
    if (c?.delta?.content) { deltas.push(c.delta.content); text += c.delta.content; }
    if (c?.finish_reason) finish = c.finish_reason;
    if (ch.usage) usage = ch.usage;
    assert.equal(ch.model, 'claude');
  }
  assert.deepEqual(deltas, ['mock ', 'reply ', 'from ', HAIKU]);
  assert.equal(text, `mock reply from ${HAIKU}`);
  assert.equal(finish, 'stop');
  assert.equal(usage.completion_tokens, 4);
  const e = await entry('tag-stream1');
  assert.equal(e.op, 'converse-stream');
  assert.equal(e.headers.accept, 'application/vnd.amazon.eventstream');
  assert.equal(e.outcome, 'complete');
});

test('tools over Converse: toolConfig upstream, tool_calls back; the round trip passes the pairing check', async () => {
  const r = await oai.chat.completions.create({ model: 'claude', messages: say('tag-tools-1', 'Weather in Paris?'), tools: [WEATHER_FN], tool_choice: 'auto' });
  const m = r.choices[0].message;
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  assert.equal(m.content, 'Checking.');
  assert.equal(m.tool_calls.length, 1);
  assert.equal(m.tool_calls[0].id, 'tooluse_paris1');
  assert.equal(m.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(m.tool_calls[0].function.arguments), PARIS);
  const e = await entry('tag-tools-1');
  assert.deepEqual(e.body.toolConfig, {
    tools: [{ toolSpec: { name: 'get_weather', description: 'Weather for a city', inputSchema: { json: WEATHER_FN.function.parameters } } }],
    toolChoice: { auto: {} },
  });
  const r2 = await oai.chat.completions.create({
    model: 'claude', tools: [WEATHER_FN],
    messages: [...say('tag-tools-2', 'Weather in Paris?'), m, { role: 'tool', tool_call_id: m.tool_calls[0].id, content: '18 degrees' }],
  });
  assert.equal(r2.choices[0].message.content, `mock reply from ${HAIKU}`);
  const e2 = await entry('tag-tools-2');
  assert.equal(e2.check_error, null);
  assert.deepEqual(e2.body.messages.map((x) => x.role), ['user', 'assistant', 'user']);
  assert.deepEqual(e2.body.messages[2].content, [{ toolResult: { toolUseId: 'tooluse_paris1', content: [{ text: '18 degrees' }] } }]);
});

test('a streamed tool call: id and name first, arguments that parse', async () => {
  const s = await oai.chat.completions.create({ model: 'claude', messages: say('tag-tools-stream'), tools: [WEATHER_FN], stream: true });
  let text = '';
  const calls = {};
  let finish = null;
  for await (const ch of s) {
    const d = ch.choices[0]?.delta;
    if (d?.content) text += d.content;
    for (const tc of d?.tool_calls ?? []) {
      const c = (calls[tc.index] ??= { id: null, name: null, args: '', frags: 0 });
      if (tc.id) c.id = tc.id;
      if (tc.function?.name) c.name = tc.function.name;
      if (tc.function?.arguments) { c.args += tc.function.arguments; c.frags++; }
    }
    if (ch.choices[0]?.finish_reason) finish = ch.choices[0].finish_reason;
  }
  assert.equal(text, 'Let me look.');
  assert.equal(finish, 'tool_calls');
  assert.equal(calls[0].name, 'get_weather');
  assert.match(calls[0].id, /^tooluse_mock\d+x0$/);
  assert.equal(calls[0].frags, 4);
  assert.deepEqual(JSON.parse(calls[0].args), PARIS);
});

test('reasoning content over Converse: reasoning_content and thinking_blocks', async () => {
  const r = await post('/v1/chat/completions', { model: 'claude', messages: say('tag-reasoning') });
  assert.equal(r.status, 200, r.text);
  const m = r.json.choices[0].message;
  assert.equal(m.content, '4');
  assert.equal(m.reasoning_content, 'two plus two is four');
  assert.deepEqual(m.thinking_blocks, [{ type: 'thinking', thinking: 'two plus two is four', signature: 'sig-abc' }]);
});

// ---- InvokeModel for Anthropic models ----

test('chat over InvokeModel: an Anthropic body without model/stream, with anthropic_version', async () => {
  const r = await oai.chat.completions.create({ model: 'claude-invoke', messages: say('tag-invoke1'), max_tokens: 32 });
  assert.equal(r.choices[0].message.content, `mock reply from ${SONNET_XR}`);
  assert.equal(r.usage.completion_tokens, 4);
  const e = await entry('tag-invoke1');
  assert.equal(e.check_error, null);
  assert.equal(e.op, 'invoke');
  assert.equal(e.raw_model, 'us.anthropic.claude-3-5-sonnet-20241022-v2%3A0', 'a cross-region profile id passes through');
  assert.deepEqual(e.body, {
    anthropic_version: 'bedrock-2023-05-31', max_tokens: 32,
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello tag-invoke1' }] }],
  });
});

test('stream over InvokeModelWithResponseStream: base64 chunks decoded, usage', async () => {
  const r = await post('/v1/chat/completions', { model: 'claude-invoke', messages: say('tag-invoke-stream'), stream: true, stream_options: { include_usage: true } });
  assert.equal(r.status, 200);
  const frames = sse(r.text);
  assert.equal(frames.at(-1), '[DONE]');
  assert.equal(streamText(frames), `mock reply from ${SONNET_XR}`);
  assert.ok(frames.some((f) => f.usage?.completion_tokens === 4), 'a usage chunk');
  const e = await entry('tag-invoke-stream');
  assert.equal(e.op, 'invoke-with-response-stream');
  assert.equal(e.body.stream, undefined);
});

// ---- the Anthropic client ----

test('@anthropic-ai/sdk messages.create to Converse and to InvokeModel', async () => {
  const m = await anth.messages.create({ model: 'claude', max_tokens: 100, system: 'Terse.', messages: say('tag-anth1') });
  assert.equal(m.type, 'message');
  assert.equal(m.model, 'claude');
  assert.deepEqual(m.content, [{ type: 'text', text: `mock reply from ${HAIKU}` }]);
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(m.usage.output_tokens, 4);
  const e = await entry('tag-anth1');
  assert.deepEqual(e.body, { messages: [{ role: 'user', content: [{ text: 'Hello tag-anth1' }] }], system: [{ text: 'Terse.' }], inferenceConfig: { maxTokens: 100 } });
  const m2 = await anth.messages.create({ model: 'claude-invoke', max_tokens: 100, messages: say('tag-anth2'), top_k: 5 });
  assert.deepEqual(m2.content, [{ type: 'text', text: `mock reply from ${SONNET_XR}` }]);
  const e2 = await entry('tag-anth2');
  assert.deepEqual(e2.body, { max_tokens: 100, messages: [{ role: 'user', content: 'Hello tag-anth2' }], top_k: 5, anthropic_version: 'bedrock-2023-05-31' },
    'the client\'s own Anthropic body, without model, with anthropic_version');
});

test('@anthropic-ai/sdk messages.stream with a tool to Converse: input JSON deltas and finalMessage', async () => {
  const s = anth.messages.stream({
    model: 'claude', max_tokens: 200, messages: say('tag-anth-tool'),
    tools: [{ name: 'get_weather', description: 'w', input_schema: WEATHER_FN.function.parameters }],
  });
  const fragments = [];
  let text = '';
  s.on('inputJson', (p) => fragments.push(p));
  s.on('text', (d) => { text += d; });
  const m = await s.finalMessage();
  assert.equal(text, 'Looking.');
  assert.equal(fragments.length, 3);
  assert.deepEqual(JSON.parse(fragments.join('')), PARIS);
  assert.equal(m.stop_reason, 'tool_use');
  assert.equal(m.content[1].type, 'tool_use');
  assert.deepEqual(m.content[1].input, PARIS);
});

test('@anthropic-ai/sdk messages.stream to InvokeModel', async () => {
  const s = anth.messages.stream({ model: 'claude-invoke', max_tokens: 50, messages: say('tag-anth-istream') });
  const deltas = [];
  s.on('text', (d) => deltas.push(d));
  const m = await s.finalMessage();
  assert.deepEqual(deltas, ['mock ', 'reply ', 'from ', SONNET_XR]);
  assert.equal(m.stop_reason, 'end_turn');
  const e = await entry('tag-anth-istream');
  assert.equal(e.op, 'invoke-with-response-stream');
  assert.equal(e.body.stream, undefined, 'stream is the path, not a body member');
});

test('count_tokens for a Bedrock model is the estimate', async () => {
  const r = await post('/v1/messages/count_tokens', { model: 'claude', messages: say('tag-count') }, { 'anthropic-version': '2023-06-01' });
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json.input_tokens > 0);
  assert.equal(r.headers.get('x-moongate-token-count'), 'estimate');
});

// ---- credentials and endpoints ----

test('an ARN through aws_bedrock_runtime_endpoint: encoded as one label, signed for its region', async () => {
  const r = await oai.chat.completions.create({ model: 'claude-arn', messages: say('tag-arn') });
  assert.equal(r.choices[0].message.content, `mock reply from ${ARN}`);
  const e = await entry('tag-arn');
  assert.equal(e.raw_model, encodeURIComponent(ARN));
  assert.ok(e.raw_model.includes('%3A') && e.raw_model.includes('%2F'));
  assert.equal(e.auth.region, 'us-east-1', 'the region from the ARN');
  assert.equal(e.auth.verified, true);
});

test('a session token is sent and signed; a Bedrock API key is a bearer; the environment supplies keys', async () => {
  await oai.chat.completions.create({ model: 'claude-token', messages: say('tag-token') });
  const t = await entry('tag-token');
  assert.equal(t.auth.label, 't');
  assert.equal(t.auth.session_token, T.session_token);
  assert.equal(t.auth.signed_headers, 'accept;content-type;host;x-amz-date;x-amz-security-token');
  await oai.chat.completions.create({ model: 'claude-apikey', messages: say('tag-apikey') });
  const k = await entry('tag-apikey');
  assert.equal(k.auth.kind, 'bearer');
  assert.equal(k.headers.authorization, `Bearer ${BEARER}`);
  assert.equal(k.headers['x-amz-date'], undefined);
  await oai.chat.completions.create({ model: 'claude-env', messages: say('tag-env') });
  const v = await entry('tag-env');
  assert.equal(v.auth.label, 'env');
  assert.equal(v.auth.region, 'eu-west-3', 'AWS_REGION');
});

test('no secret in /model/info, and none in the error a bad signature produces', async () => {
  const info = await fetch(`${gw.url}/model/info`, { headers: { authorization: `Bearer ${MASTER}` } });
  const text = await info.text();
  assert.equal(info.status, 200);
  for (const s of [A.secret_access_key, T.secret_access_key, T.session_token, BEARER, WRONG_SECRET, A.access_key_id]) {
    assert.equal(text.includes(s), false, `/model/info shows ${s.slice(0, 6)}...`);
  }
  const r = await post('/v1/chat/completions', { model: 'claude-badsig', messages: say('tag-badsig') });
  assert.equal(r.status, 401, r.text);
  assert.match(r.json.error.message, /^litellm\.AuthenticationError: BedrockException Invalid Authentication - \{"message":"The request signature we calculated does not match/);
  assert.equal(r.text.includes(WRONG_SECRET), false);
  const e = await entry('tag-badsig');
  assert.equal(e.auth.kind, 'rejected');
  assert.equal(e.status, 403);
});

test('AWS_BEARER_TOKEN_BEDROCK and the AWS_* defaults: bearer auth to the endpoint from the environment', async () => {
  const r = await fetch(`${gw2.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER}` },
    body: JSON.stringify({ model: 'claude', messages: say('tag-envbearer') }),
  });
  assert.equal(r.status, 200, await r.text());
  const e = await entry('tag-envbearer');
  assert.equal(e.auth.kind, 'bearer');
  assert.equal(e.auth.bearer, ENV_BEARER);
});

test('secrets an upstream error echoes are scrubbed: session token, secret keys, environment keys', async () => {
  // each gateway knows its own: gw the deployments' keys and AWS_SECRET_ACCESS_KEY, gw2 its
  // AWS_BEARER_TOKEN_BEDROCK
  const known = [[gw, 'claude-err', [T.session_token, A.secret_access_key, E.secret_access_key]], [gw2, 'claude', [ENV_BEARER]]];
  for (const [g, model, secrets] of known) {
    const r = await fetch(`${g.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER}` },
      body: JSON.stringify({ model, messages: say('tag-echo') }),
    });
    const text = await r.text();
    assert.equal(r.status, 400, text);
    assert.match(text, /echo: /);
    for (const sec of secrets) {
      assert.equal(text.includes(sec), false, `${sec.slice(0, 6)}... is in ${text}`);
    }
  }
});

// ---- errors ----

test('upstream errors as LiteLLM maps BedrockException', async () => {
  const cases = [
    ['tag-e429', 429, /^litellm\.RateLimitError: BedrockException: Rate Limit Error - \{"message":"Too many requests, please wait before trying again\."\}/],
    ['tag-ectx', 400, /^litellm\.ContextWindowExceededError: BedrockException: Context Window Error - \{"message":"Input is too long for requested model\."\}/],
    ['tag-e403', 403, /^litellm\.PermissionDeniedError: BedrockException PermissionDeniedError - /],
    ['tag-e503', 503, /^litellm\.ServiceUnavailableError: BedrockException - /],
    ['tag-e408', 408, /^litellm\.Timeout: BedrockException: Timeout Error - /],
  ];
  for (const [tag, status, re] of cases) {
    const r = await post('/v1/chat/completions', { model: 'claude-err', messages: say(tag) });
    assert.equal(r.status, status, `${tag}: ${r.text}`);
    assert.match(r.json.error.message, re, tag);
    if (tag === 'tag-e429') assert.equal(r.headers.get('retry-after'), '7', 'Retry-After kept');
  }
  // an Anthropic client gets Anthropic's envelope for the same failure
  const a = await post('/v1/messages', { model: 'claude-err', max_tokens: 10, messages: say('tag-e429') }, { 'anthropic-version': '2023-06-01' });
  assert.equal(a.status, 429);
  assert.equal(a.json.type, 'error');
  assert.equal(a.json.error.type, 'rate_limit_error');
});

test('an upstream throttle falls back to another provider', async () => {
  const r = await post('/v1/chat/completions', { model: 'claude-throttled', messages: say('tag-fallback') });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.choices[0].message.content, 'mock reply from gpt-fb-up');
  assert.equal(r.headers.get('x-litellm-attempted-fallbacks'), '1');
  const e = await entry('tag-fallback');
  assert.equal(e.status, 429);
  const o = (await omock.log()).filter((x) => JSON.stringify(x.body).includes('tag-fallback'));
  assert.equal(o.length, 1, 'the fallback reached the openai mock');
});

test('parameters Bedrock does not take: UnsupportedParamsError, or dropped with drop_params', async () => {
  const r = await post('/v1/chat/completions', { model: 'claude', messages: say('tag-unsup'), n: 2, user: 'u-1' });
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /^litellm\.UnsupportedParamsError: bedrock does not support parameters: \['n', 'user'\], for model=anthropic\.claude-3-haiku-20240307-v1:0/);
  const d = await post('/v1/chat/completions', { model: 'claude-drop', messages: say('tag-dropped'), n: 2, user: 'u-1' });
  assert.equal(d.status, 200, d.text);
  const e = await entry('tag-dropped');
  assert.deepEqual(Object.keys(e.body), ['messages']);
  const emb = await post('/v1/embeddings', { model: 'claude', input: 'x' });
  assert.equal(emb.status, 400);
  assert.match(emb.json.error.message, /bedrock does not support/);
});

// ---- streams: exceptions, framing ----

test('an exception inside a stream is one error frame after the text so far', async () => {
  const r = await post('/v1/chat/completions', { model: 'claude', messages: say('tag-midstream'), stream: true });
  assert.equal(r.status, 200);
  const frames = sse(r.text);
  assert.equal(streamText(frames), 'partial answer ');
  const err = frames.find((f) => f !== '[DONE]' && f.error);
  assert.ok(err, `an error frame in ${r.text.slice(-400)}`);
  assert.match(err.error.message, /^litellm\.RateLimitError: BedrockException: Rate Limit Error - throttlingException \{"message":"Too many tokens, please wait before trying again\."\}/);
  assert.equal(frames.filter((f) => f !== '[DONE]' && f.error).length, 1, 'one error frame');
  // the Anthropic client sees Anthropic's error event
  const a = await post('/v1/messages', { model: 'claude', max_tokens: 50, stream: true, messages: say('tag-midstream') }, { 'anthropic-version': '2023-06-01' });
  assert.match(a.text, /event: error\ndata: \{"type":"error","error":\{"type":"rate_limit_error","message":"[^"]*Rate Limit Error - throttlingException/);
});

test('a corrupt frame or a truncated stream ends the stream with an error', async () => {
  const r = await post('/v1/chat/completions', { model: 'claude', messages: say('tag-badcrc'), stream: true });
  assert.equal(r.status, 200);
  const frames = sse(r.text);
  const err = frames.find((f) => f !== '[DONE]' && f.error);
  assert.ok(err, r.text.slice(-300));
  assert.match(err.error.message, /CRC/);
  const t = await post('/v1/chat/completions', { model: 'claude', messages: say('tag-truncated'), stream: true });
  const tf = sse(t.text);
  assert.equal(streamText(tf), 'one two');
  const terr = tf.find((f) => f !== '[DONE]' && f.error);
  assert.ok(terr, t.text.slice(-300));
  assert.match(terr.error.message, /middle of an event|stream ended inside a message/);
});

test('a stream split at every byte offset, and one byte per write, decodes the same', { timeout: 120000 }, async () => {
  const want = 'split streams decode the same whatever the reads';
  const base = await post('/v1/chat/completions', { model: 'claude', messages: say('tag-split base'), stream: true });
  assert.equal(streamText(sse(base.text)), want);
  const be = (await bmock.log()).filter((x) => JSON.stringify(x.body).includes('tag-split base'))[0];
  const total = be.sent_bytes;
  assert.ok(total > 300, `the stream has ${total} bytes`);
  // every offset: one rule per offset, matched by the offset the request carries
  const offsets = Array.from({ length: total - 1 }, (_, i) => i + 1);
  const rules = offsets.map((k) => ({ match: { contains: `tag-split-at-${k}-` }, times: 1, respond: { content: want, usage: SPLIT_USAGE, split_at: [k], write_interval_ms: 1 } }));
  rules.push({ match: { contains: 'tag-split-bytes' }, respond: { content: want, usage: SPLIT_USAGE, split_bytes: 1, write_interval_ms: 0 } });
  const cur = (await bmock.scriptState()).rules.map((r) => r.rule);
  await bmock.script({ rules: [...rules, ...cur] });
  const bytewise = await post('/v1/chat/completions', { model: 'claude', messages: say('tag-split-bytes'), stream: true });
  assert.equal(streamText(sse(bytewise.text)), want, 'one byte per write');
  const results = await pool(offsets.length, 8, async (i) => {
    const k = offsets[i];
    const r = await post('/v1/chat/completions', { model: 'claude', messages: say(`tag-split-at-${k}-`), stream: true });
    return { k, status: r.status, text: streamText(sse(r.text)), done: r.text.endsWith('data: [DONE]\n\n') };
  });
  const bad = results.filter((x) => x.status !== 200 || x.text !== want || !x.done);
  assert.deepEqual(bad.slice(0, 5), [], `${bad.length} of ${offsets.length} split offsets differ`);
  const split = (await bmock.log()).filter((x) => /tag-split-at-\d+-/.test(JSON.stringify(x.body)));
  assert.equal(split.length, offsets.length);
  assert.ok(split.every((x) => x.sent_bytes === total), 'every split stream is the same bytes');
});

test('SIGTERM: the gateway exits cleanly, with no sanitizer report on stderr', async () => {
  stopped = true;
  await assertCleanStop(gw);
});
