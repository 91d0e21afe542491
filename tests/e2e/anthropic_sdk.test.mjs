// The official @anthropic-ai/sdk (pinned in tests/package.json) against moongate's
// /v1/messages, to an anthropic/ deployment (the Anthropic mock) and to an openai/ one (the C
// mock): messages.create, messages.stream (text; tool use with input JSON deltas and
// finalMessage), messages.countTokens, and the SDK's error classes for 401/429/529.  And the
// official openai client against an anthropic/ deployment: chat, a stream with tool calls
// whose assembled arguments parse, and usage with stream_options.include_usage.
//
// SDK 1.x sends `anthropic-version: 2026-10-21` and the key as `Authorization: Bearer`; the
// gateway takes the Bearer key and keeps the client's version on the pass-through.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, mockModel } from '../lib/harness.mjs';
import { startAnthropicMock } from '../lib/mock_anthropic.mjs';
import { OpenAI, client as openaiClient, collectChat, expectApiError, startGw } from './lib.mjs';

const MASTER = 'sk-e2e-anthropic-master';
const AKEY = 'sk-ant-e2e-upstream-0001';
const OKEY = 'sk-e2e-upstream-openai';

const amock = await startAnthropicMock({ keys: [AKEY] });
const omock = await startMock();
const anth = (name, upstream, extra = {}) => ({
  model_name: name, litellm_params: { model: `anthropic/${upstream}`, api_base: amock.base, api_key: AKEY, ...extra },
});
const gw = await startGw({
  config: {
    model_list: [
      anth('claude', 'claude-up'),
      anth('claude-err', 'claude-err-up', { cooldown_time: 0 }),
      mockModel(omock, 'gpt', { model: 'openai/gpt-up', key: OKEY }),
      mockModel(omock, 'gpt-tools', { model: 'openai/gpt-tools-up', key: OKEY }),
      mockModel(omock, 'gpt-err', { model: 'openai/gpt-err-up', key: OKEY, extra: { cooldown_time: 0 } }),
    ],
    router_settings: { num_retries: 0 },
    general_settings: { master_key: MASTER },
  },
});
after(async () => { await gw.stop(); await amock.stop(); await omock.stop(); });

const WEATHER = {
  name: 'get_weather',
  description: 'Get the current weather in a given location',
  input_schema: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
};
const SF = { location: 'San Francisco, CA', unit: 'celsius' };
await amock.script({
  rules: [
    { match: { user_id: 'sdk-tool' }, times: 1, respond: { blocks: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', name: 'get_weather', input: SF }] } },
    { match: { user_id: 'sdk-tool' }, respond: { content: 'It is 15 degrees in San Francisco.' } },
    { match: { user_id: 'sdk-stream-tool' }, respond: { blocks: [{ type: 'text', text: 'Let me check.' }, { type: 'tool_use', name: 'get_weather', input: SF }], json_chunks: 4 } },
    { match: { user_id: 'oai-stream-tool' }, respond: { blocks: [{ type: 'text', text: 'One moment.' }, { type: 'tool_use', name: 'get_weather', input: SF }], json_chunks: 5 } },
    { match: { user_id: 'e401' }, respond: { status: 401, error_message: 'invalid x-api-key' } },
    { match: { user_id: 'e429' }, respond: { status: 429, retry_after: 5 } },
    { match: { user_id: 'e529' }, respond: { status: 529 } },
    { match: { endpoint: 'count_tokens', model: 'claude-up' }, respond: { usage: { input_tokens: 321 } } },
  ],
});
const CHUNK = (delta, finish = null) => ({
  id: 'chatcmpl-e2e-tools', object: 'chat.completion.chunk', created: 1700000000, model: 'gpt-tools-up',
  choices: [{ index: 0, delta, finish_reason: finish }],
});
await omock.script({
  rules: [
    { match: { model: 'gpt-err-up' }, respond: { status: 429, retry_after: 2, error_message: 'slow down (openai)' } },
    {
      match: { model: 'gpt-tools-up', stream: true },
      respond: {
        frames: [
          CHUNK({ role: 'assistant', content: '' }),
          CHUNK({ content: 'Looking it up.' }),
          CHUNK({ tool_calls: [{ index: 0, id: 'call_rome', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
          CHUNK({ tool_calls: [{ index: 0, function: { arguments: '{"location"' } }] }),
          CHUNK({ tool_calls: [{ index: 0, function: { arguments: ':"Rome"}' } }] }),
          CHUNK({}, 'tool_calls'),
          { ...CHUNK({}), choices: [], usage: { prompt_tokens: 40, completion_tokens: 11, total_tokens: 51 } },
        ],
      },
    },
    {
      match: { model: 'gpt-tools-up', stream: false },
      respond: {
        body: JSON.stringify({
          id: 'chatcmpl-e2e-tools-2', object: 'chat.completion', created: 1700000000, model: 'gpt-tools-up',
          choices: [{ index: 0, finish_reason: 'tool_calls', message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_rome2', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Rome"}' } }] } }],
          usage: { prompt_tokens: 38, completion_tokens: 7, total_tokens: 45 },
        }),
      },
    },
  ],
});

const sdk = new Anthropic({ apiKey: MASTER, baseURL: gw.url, maxRetries: 0 });
const hi = (model, extra = {}) => ({ model, max_tokens: 256, messages: [{ role: 'user', content: 'Hello, Claude' }], ...extra });
const tagged = (model, tag, extra = {}) => hi(model, { metadata: { user_id: tag }, ...extra });

async function anthEntry(tag) {
  const e = (await amock.log()).filter((x) => x.body?.metadata?.user_id === tag);
  assert.ok(e.length >= 1, `an Anthropic upstream request tagged ${tag}`);
  return e.at(-1);
}
async function oaiEntry(tag) {
  const e = (await omock.log()).filter((x) => x.body?.user === tag);
  assert.equal(e.length, 1, `one OpenAI upstream request tagged ${tag}`);
  return e[0];
}

// ---- @anthropic-ai/sdk -> anthropic/ ----

test('messages.create to anthropic/: the message, and what the upstream got', async () => {
  const { data: m, response } = await sdk.messages.create(tagged('claude', 'sdk-create')).withResponse();
  assert.equal(response.status, 200);
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.equal(m.model, 'claude', 'restamped to the name the client used');
  assert.match(m.id, /^msg_mock_\d+$/);
  assert.deepEqual(m.content, [{ type: 'text', text: 'mock reply from claude-up' }]);
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(m.usage.output_tokens, 4);
  assert.ok(m.usage.input_tokens > 0);
  const e = await anthEntry('sdk-create');
  assert.equal(e.check_error, null);
  assert.equal(e.body.model, 'claude-up');
  assert.equal(e.headers['x-api-key'], AKEY);
  assert.equal(e.headers.authorization, undefined, 'the client\'s Bearer key is not forwarded');
  assert.equal(e.headers['anthropic-version'], '2026-10-21', 'the SDK\'s version is kept on the pass-through');
});

test('messages.create with tools to anthropic/: tool_use, then the tool_result round trip', async () => {
  const first = await sdk.messages.create(tagged('claude', 'sdk-tool', { tools: [WEATHER], tool_choice: { type: 'auto' } }));
  assert.equal(first.stop_reason, 'tool_use');
  assert.equal(first.content[0].text, 'Checking.');
  const call = first.content[1];
  assert.equal(call.type, 'tool_use');
  assert.equal(call.name, 'get_weather');
  assert.deepEqual(call.input, SF);
  const second = await sdk.messages.create({
    model: 'claude', max_tokens: 256, tools: [WEATHER], metadata: { user_id: 'sdk-tool' },
    messages: [
      { role: 'user', content: 'Hello, Claude' },
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '15 degrees' }] },
    ],
  });
  assert.deepEqual(second.content, [{ type: 'text', text: 'It is 15 degrees in San Francisco.' }]);
  assert.equal(second.stop_reason, 'end_turn');
});

test('messages.stream to anthropic/: text deltas in order and the final message', async () => {
  const s = sdk.messages.stream(tagged('claude', 'sdk-stream'));
  const deltas = [];
  const events = [];
  s.on('text', (d) => deltas.push(d));
  s.on('streamEvent', (ev) => events.push(ev.type));
  const m = await s.finalMessage();
  assert.deepEqual(deltas, ['mock ', 'reply ', 'from ', 'claude-up']);
  assert.deepEqual(m.content, [{ type: 'text', text: 'mock reply from claude-up' }]);
  assert.equal(m.model, 'claude');
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(m.usage.output_tokens, 4);
  assert.equal(events[0], 'message_start');
  assert.equal(events.at(-1), 'message_stop');
});

test('messages.stream with tool use to anthropic/: input JSON deltas and finalMessage', async () => {
  const s = sdk.messages.stream(tagged('claude', 'sdk-stream-tool', { tools: [WEATHER] }));
  const fragments = [];
  let text = '';
  s.on('inputJson', (partial) => fragments.push(partial));
  s.on('text', (d) => { text += d; });
  const m = await s.finalMessage();
  assert.equal(fragments.length, 4);
  assert.deepEqual(JSON.parse(fragments.join('')), SF);
  assert.equal(text, 'Let me check.');
  assert.equal(m.stop_reason, 'tool_use');
  assert.equal(m.content[0].text, 'Let me check.');
  assert.equal(m.content[1].type, 'tool_use');
  assert.equal(m.content[1].name, 'get_weather');
  assert.deepEqual(m.content[1].input, SF);
});

test('messages.countTokens to anthropic/ is Anthropic\'s own count', async () => {
  const { data, response } = await sdk.messages.countTokens({ model: 'claude', system: 'You are a scientist', messages: [{ role: 'user', content: 'Hello, Claude' }] }).withResponse();
  assert.deepEqual(data, { input_tokens: 321 });
  assert.equal(response.headers.get('x-moongate-token-count'), null);
});

// ---- @anthropic-ai/sdk -> openai/ ----

test('messages.create to openai/: translated to chat completions and back', async () => {
  const m = await sdk.messages.create(tagged('gpt', 'sdk-oai', { system: 'Be brief.' }));
  assert.equal(m.type, 'message');
  assert.equal(m.model, 'gpt');
  assert.match(m.id, /^msg_/);
  assert.deepEqual(m.content, [{ type: 'text', text: 'mock reply from gpt-up' }]);
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(m.usage.output_tokens, 4);
  assert.ok(m.usage.input_tokens > 0);
  const e = await oaiEntry('sdk-oai');
  assert.deepEqual(e.body, {
    model: 'gpt-up', max_tokens: 256, user: 'sdk-oai',
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello, Claude' }],
  });
  assert.equal(e.headers.authorization, `Bearer ${OKEY}`);
  assert.equal(e.headers['anthropic-version'], undefined);
});

test('messages.stream to openai/: text deltas and the final message with usage', async () => {
  const s = sdk.messages.stream(tagged('gpt', 'sdk-oai-stream'));
  let text = '';
  s.on('text', (d) => { text += d; });
  const m = await s.finalMessage();
  assert.equal(text, 'mock reply from gpt-up');
  assert.deepEqual(m.content, [{ type: 'text', text: 'mock reply from gpt-up' }]);
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(m.usage.output_tokens, 4);
  assert.ok(m.usage.input_tokens > 0);
  const e = await oaiEntry('sdk-oai-stream');
  assert.equal(e.body.stream, true);
});

test('messages.create and messages.stream with tool use to openai/', async () => {
  const m = await sdk.messages.create(tagged('gpt-tools', 'sdk-oai-tool', { tools: [WEATHER] }));
  assert.equal(m.stop_reason, 'tool_use');
  assert.deepEqual(m.content, [{ type: 'tool_use', id: 'call_rome2', name: 'get_weather', input: { location: 'Rome' } }]);
  assert.equal(m.usage.input_tokens, 38);
  assert.equal(m.usage.output_tokens, 7);

  const s = sdk.messages.stream(tagged('gpt-tools', 'sdk-oai-stream-tool', { tools: [WEATHER] }));
  const fragments = [];
  s.on('inputJson', (partial) => fragments.push(partial));
  const fm = await s.finalMessage();
  assert.deepEqual(JSON.parse(fragments.join('')), { location: 'Rome' });
  assert.equal(fm.stop_reason, 'tool_use');
  assert.equal(fm.content[0].type, 'text');
  assert.equal(fm.content[0].text, 'Looking it up.');
  assert.deepEqual(fm.content[1], { type: 'tool_use', id: 'call_rome', name: 'get_weather', input: { location: 'Rome' } });
  assert.equal(fm.usage.input_tokens, 40);
  assert.equal(fm.usage.output_tokens, 11);
});

test('messages.countTokens to openai/ is moongate\'s estimate, marked as such', async () => {
  const { data, response } = await sdk.messages.countTokens({ model: 'gpt', system: 'You are a scientist', messages: [{ role: 'user', content: 'Hello, Claude' }] }).withResponse();
  assert.deepEqual(Object.keys(data), ['input_tokens']);
  assert.ok(Number.isInteger(data.input_tokens) && data.input_tokens > 0);
  assert.equal(response.headers.get('x-moongate-token-count'), 'estimate');
});

// ---- SDK error classes ----

async function rejectsWith(promise, Class, check) {
  let err = null;
  try { await promise; } catch (e) { err = e; }
  assert.ok(err, `expected ${Class.name}`);
  assert.ok(err instanceof Class, `expected ${Class.name}, got ${err?.constructor?.name}: ${err?.message}`);
  check(err);
}

test('@anthropic-ai/sdk error classes: 401 AuthenticationError, 429 RateLimitError, 529 OverloadedError', async () => {
  await rejectsWith(sdk.messages.create(tagged('claude-err', 'e401')), Anthropic.AuthenticationError, (err) => {
    assert.equal(err.status, 401);
    assert.deepEqual(err.error.error, { type: 'authentication_error', message: 'invalid x-api-key' });
  });
  await rejectsWith(sdk.messages.create(tagged('claude-err', 'e429')), Anthropic.RateLimitError, (err) => {
    assert.equal(err.status, 429);
    assert.equal(err.error.error.type, 'rate_limit_error');
    assert.equal(err.headers.get('retry-after'), '5');
  });
  await rejectsWith(sdk.messages.create(tagged('claude-err', 'e529')), Anthropic.OverloadedError, (err) => {
    assert.equal(err.status, 529);
    assert.deepEqual(err.error.error, { type: 'overloaded_error', message: 'Overloaded' });
  });
  // an OpenAI upstream's 429, in Anthropic's envelope
  await rejectsWith(sdk.messages.create(hi('gpt-err')), Anthropic.RateLimitError, (err) => {
    assert.equal(err.status, 429);
    assert.equal(err.error.type, 'error');
    assert.match(err.error.error.message, /slow down \(openai\)/);
  });
  // the gateway's own refusals
  const bad = new Anthropic({ apiKey: 'sk-not-the-master-key', baseURL: gw.url, maxRetries: 0 });
  await rejectsWith(bad.messages.create(hi('claude')), Anthropic.AuthenticationError, (err) => {
    assert.match(err.error.error.message, /^Authentication Error, Invalid proxy server token passed\./);
  });
  await rejectsWith(sdk.messages.create(hi('no-such-model')), Anthropic.BadRequestError, (err) => {
    assert.equal(err.error.error.type, 'invalid_request_error');
    assert.match(err.error.error.message, /^anthropic_messages: Invalid model name passed in model=no-such-model/);
  });
});

// ---- the openai client -> anthropic/ ----

const oai = openaiClient(gw);

test('openai client -> anthropic/: chat', async () => {
  const r = await oai.chat.completions.create({ model: 'claude', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hi' }], user: 'oai-chat' });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, 'claude');
  assert.equal(r.choices[0].message.content, 'mock reply from claude-up');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.usage.completion_tokens, 4);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  const e = await anthEntry('oai-chat');
  assert.deepEqual(e.body.system, [{ type: 'text', text: 'Be brief.' }]);
  assert.equal(e.headers['anthropic-version'], '2023-06-01');
  assert.equal(e.check_error, null);
});

test('openai client -> anthropic/: a stream with tool calls (assembled arguments parse) and usage', async () => {
  const stream = await oai.chat.completions.create({
    model: 'claude', messages: [{ role: 'user', content: 'weather?' }], user: 'oai-stream-tool', stream: true,
    stream_options: { include_usage: true },
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } } }],
  });
  const calls = {};
  const st = await collectChat(stream, (ch) => {
    for (const tc of ch.choices?.[0]?.delta?.tool_calls ?? []) {
      const c = (calls[tc.index] ??= { id: null, name: null, args: '' });
      if (tc.id) c.id = tc.id;
      if (tc.function?.name) c.name = tc.function.name;
      if (tc.function?.arguments) c.args += tc.function.arguments;
    }
  });
  assert.equal(st.text, 'One moment.');
  assert.equal(st.finish, 'tool_calls');
  assert.deepEqual(Object.keys(calls), ['0']);
  assert.match(calls[0].id, /^toolu_/);
  assert.equal(calls[0].name, 'get_weather');
  assert.deepEqual(JSON.parse(calls[0].args), SF);
  assert.ok(st.usage, 'a chunk carries usage');
  assert.equal(st.usage.completion_tokens, 2 + Math.ceil(JSON.stringify(SF).length / 4));
  assert.ok(st.usage.prompt_tokens > 0);
  assert.equal(st.usage.total_tokens, st.usage.prompt_tokens + st.usage.completion_tokens);
  assert.equal(st.chunks.filter((c) => c.usage).length, 1);
});

test('openai client -> anthropic/: error classes for 401, 429 and 529 (LiteLLM maps 529 to 500)', async () => {
  await expectApiError(oai.chat.completions.create({ model: 'claude-err', messages: [{ role: 'user', content: 'x' }], user: 'e401' }),
    OpenAI.AuthenticationError, { status: 401, message: /^litellm\.AuthenticationError: AnthropicException - .*invalid x-api-key/s });
  const rl = await expectApiError(oai.chat.completions.create({ model: 'claude-err', messages: [{ role: 'user', content: 'x' }], user: 'e429' }),
    OpenAI.RateLimitError, { status: 429, message: /^litellm\.RateLimitError: AnthropicException - / });
  assert.equal(rl.headers.get('retry-after'), '5');
  await expectApiError(oai.chat.completions.create({ model: 'claude-err', messages: [{ role: 'user', content: 'x' }], user: 'e529' }),
    OpenAI.InternalServerError, { status: 500, message: /^litellm\.InternalServerError: AnthropicError - .*overloaded_error/s });
});
