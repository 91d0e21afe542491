// The anthropic/ provider and /v1/messages end to end over raw HTTP: moongate with an
// anthropic/ deployment on the Anthropic mock (tests/mocks/anthropic_mock.mjs, which checks
// bodies and headers the way the real API does) and an openai/ deployment on the C mock.
//
// What the Anthropic mock receives for OpenAI requests (body, x-api-key, anthropic-version,
// no client credentials), streams with tool-call deltas and usage, upstream errors as
// OpenAI-format clients see them (LiteLLM's AnthropicException mapping), drop_params at
// request / deployment / global level, additional_drop_params, nulls never forwarded,
// /v1/messages passed through natively (only model changed, SSE relayed byte for byte but
// the restamped model), /v1/messages translated to an openai/ deployment and back,
// count_tokens both ways, Anthropic's error envelope, anthropic-beta reaching Anthropic and
// not OpenAI, retries / fallbacks / cooldowns across the two providers, and a
// mock_response deployment answering /v1/messages.
//
// Expected values: /work/notes/anthropic-litellm.md (LiteLLM) and issue 9; moongate's
// deliberate differences are named where a check relies on one.  Tests that fail because
// of a gateway bug (all fixed since) were marked todo while they failed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startMock, startGateway, mockModel, waitFor } from '../lib/harness.mjs';
import { startAnthropicMock } from '../lib/mock_anthropic.mjs';

const MASTER = 'sk-test-master-anthropic-prov';
const AKEY = 'sk-ant-upstream-deployment-0001';
const BADKEY = 'sk-ant-not-on-the-mock-list-99';
const OKEY = 'sk-upstream-openai-0001';

const amock = await startAnthropicMock({ keys: [AKEY] });
const omock = await startMock();

const anth = (name, upstream, extra = {}, id = undefined) => ({
  model_name: name,
  litellm_params: { model: `anthropic/${upstream}`, api_base: amock.base, api_key: AKEY, ...extra },
  ...(id ? { model_info: { id } } : {}),
});
const oai = (name, upstream, extra = {}, id = undefined) =>
  mockModel(omock, name, { model: `openai/${upstream}`, key: OKEY, extra, ...(id ? { info: { id } } : {}) });

const gw = await startGateway({
  config: {
    model_list: [
      anth('claude', 'claude-up', {}, 'claude-1'),
      oai('gpt', 'gpt-up', {}, 'gpt-1'),
      oai('gpt-tools', 'gpt-tools-up', { cooldown_time: 0 }),
      anth('claude-drop', 'claude-drop-up', { drop_params: true }),
      anth('claude-adp', 'claude-adp-up', { additional_drop_params: ['temperature'] }),
      anth('claude-defaults', 'claude-defaults-up', { max_tokens: 512, temperature: 0.25 }),
      anth('claude-badkey', 'claude-badkey-up', { api_key: BADKEY, cooldown_time: 0 }),
      anth('claude-err', 'claude-err-up', { cooldown_time: 0 }),
      oai('gpt-err', 'gpt-err-up', { cooldown_time: 0 }),
      // fallbacks across providers, both ways
      anth('claude-fb', 'claude-fb-up', { cooldown_time: 0 }),
      oai('gpt-fb', 'gpt-fb-up'),
      oai('gpt-fb2', 'gpt-fb2-up', { cooldown_time: 0 }),
      anth('claude-fb2', 'claude-fb2-up'),
      // one group over both providers: retries and cooldown cross them
      anth('mixed', 'mixed-a-up', { cooldown_time: 30 }, 'mixed-a'),
      oai('mixed', 'mixed-b-up', {}, 'mixed-b'),
      { model_name: 'mocked', litellm_params: { model: 'openai/mocked-up', mock_response: 'Hello from the mock.' } },
    ],
    router_settings: { fallbacks: [{ 'claude-fb': ['gpt-fb'] }, { 'gpt-fb2': ['claude-fb2'] }] },
    general_settings: { master_key: MASTER },
  },
});
// litellm_settings.drop_params: the global switch
const gwg = await startGateway({
  config: {
    model_list: [anth('claude', 'claude-global-up')],
    litellm_settings: { drop_params: true },
    general_settings: { master_key: MASTER },
  },
});
after(async () => { await gw.stop(); await gwg.stop(); await amock.stop(); await omock.stop(); });

// scripted behaviours, matched on what a request carries (metadata.user_id on the Anthropic
// mock, the upstream model on the C mock)
await amock.script({
  rules: [
    { match: { user_id: 'tools-1' }, respond: { blocks: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', name: 'get_weather', input: { city: 'Paris' } }] } },
    { match: { user_id: 'stream-tools' }, respond: { blocks: [{ type: 'text', text: 'Let me look.' }, { type: 'tool_use', name: 'get_weather', input: { location: 'San Francisco, CA', unit: 'celsius' } }], json_chunks: 4 } },
    { match: { user_id: 'native-stream' }, respond: { blocks: [{ type: 'text', text: 'one two three' }, { type: 'tool_use', name: 'get_weather', input: { location: 'Oslo' } }], json_chunks: 3, pings: 2 } },
    { match: { user_id: 'midstream' }, respond: { content: 'partial answer here', error_event: { after_events: 5 } } },
    { match: { user_id: 'e401' }, respond: { status: 401, error_message: 'invalid x-api-key' } },
    { match: { user_id: 'e429' }, respond: { status: 429, retry_after: 7, error_message: 'Number of requests has exceeded your per-minute rate limit.' } },
    { match: { user_id: 'e529' }, respond: { status: 529 } },
    { match: { user_id: 'e400' }, respond: { status: 400, error_message: 'messages.0.content: the mock refuses this' } },
    { match: { model: 'claude-fb-up' }, respond: { status: 429, error_message: 'rate limited (fb)' } },
    { match: { model: 'mixed-a-up' }, respond: { status: 429, error_message: 'rate limited (mixed-a)' } },
  ],
});
const TOOL_CHUNK = (delta, finish = null) => ({
  id: 'chatcmpl-tools-1', object: 'chat.completion.chunk', created: 1700000000, model: 'gpt-tools-up',
  choices: [{ index: 0, delta, finish_reason: finish }],
});
await omock.script({
  rules: [
    { match: { model: 'gpt-err-up' }, respond: { status: 429, retry_after: 3, error_message: 'openai says slow down' } },
    { match: { model: 'gpt-fb2-up' }, respond: { status: 429, error_message: 'rate limited (fb2)' } },
    {
      match: { model: 'gpt-tools-up', stream: true },
      respond: {
        frames: [
          TOOL_CHUNK({ role: 'assistant', content: '' }),
          TOOL_CHUNK({ content: 'Looking it up.' }),
          TOOL_CHUNK({ tool_calls: [{ index: 0, id: 'call_w1', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
          TOOL_CHUNK({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
          TOOL_CHUNK({ tool_calls: [{ index: 0, function: { arguments: '"Rome"}' } }] }),
          TOOL_CHUNK({}, 'tool_calls'),
          { id: 'chatcmpl-tools-1', object: 'chat.completion.chunk', created: 1700000000, model: 'gpt-tools-up', choices: [], usage: { prompt_tokens: 31, completion_tokens: 12, total_tokens: 43 } },
        ],
      },
    },
    {
      match: { model: 'gpt-tools-up', stream: false },
      respond: {
        body: JSON.stringify({
          id: 'chatcmpl-tools-2', object: 'chat.completion', created: 1700000000, model: 'gpt-tools-up',
          choices: [{ index: 0, finish_reason: 'tool_calls', message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_w2', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome"}' } }] } }],
          usage: { prompt_tokens: 30, completion_tokens: 9, total_tokens: 39 },
        }),
      },
    },
  ],
});

// ---- helpers ----

/** POSTs JSON to the gateway; auth: 'bearer' (default), 'x-api-key' or 'none'. */
async function post(g, path, body, { headers = {}, auth = 'bearer', key = MASTER } = {}) {
  const h = { 'content-type': 'application/json', ...headers };
  if (auth === 'bearer') h.authorization = `Bearer ${key}`;
  if (auth === 'x-api-key') h['x-api-key'] = key;
  const r = await fetch(g.url + path, { method: 'POST', headers: h, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, text, json };
}
const chat = (body, opts) => post(gw, '/v1/chat/completions', body, opts);
const AV = { 'anthropic-version': '2023-06-01' };
const messages = (body, opts = {}) => post(gw, '/v1/messages', body, { ...opts, headers: { ...AV, ...(opts.headers || {}) } });
const HI = [{ role: 'user', content: 'hi' }];

/** [{event, data}] of an SSE body; data is parsed JSON, or the string '[DONE]'. */
function sse(text) {
  assert.ok(text.endsWith('\n\n'), `an SSE body ends with a blank line: ${JSON.stringify(text.slice(-40))}`);
  return text.slice(0, -2).split('\n\n').map((frame) => {
    let event = null;
    const data = [];
    for (const line of frame.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    const d = data.join('\n');
    return { event, data: d === '[DONE]' ? d : JSON.parse(d) };
  });
}

/** The one Anthropic mock entry (since seq) whose body carries this metadata.user_id. */
async function anthEntry(tag, since = 0) {
  const e = (await amock.log(since)).filter((x) => x.body?.metadata?.user_id === tag);
  assert.equal(e.length, 1, `one Anthropic upstream request tagged ${tag} (got ${e.length})`);
  return e[0];
}
/** The one C mock entry whose body carries this user. */
async function oaiEntry(tag, since = 0) {
  const e = (await omock.log(since)).filter((x) => x.body?.user === tag);
  assert.equal(e.length, 1, `one OpenAI upstream request tagged ${tag} (got ${e.length})`);
  return e[0];
}
/** Paths of every null inside a JSON value. */
function nulls(v, path = '$') {
  if (v === null) return [path];
  if (Array.isArray(v)) return v.flatMap((x, i) => nulls(x, `${path}[${i}]`));
  if (typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => nulls(x, `${path}.${k}`));
  return [];
}
const lastSeq = async (m) => (await m.stats()).last_seq;
const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');
/**
 * LiteLLM's end of a final error for a group without fallbacks of its own.  This gateway has
 * router fallbacks for other groups, so LiteLLM's run_async_fallback first appends "No
 * fallback model group found for original model_group=..." (policy_fallbacks.test.mjs).
 */
const groupSuffix = (group) => `Received Model Group=${group}\nAvailable Model Group Fallbacks=None`;

/** The OpenAI chunks of a stream, summarised. */
function chunks(frames) {
  const json = frames.filter((f) => f.data !== '[DONE]').map((f) => f.data);
  const s = { json, content: '', tools: {}, finish: [], usage: [], roleFirst: false };
  json.forEach((ch, i) => {
    if (ch.usage) s.usage.push({ at: i, usage: ch.usage });
    const c = ch.choices?.[0];
    if (!c) return;
    if (i === 0) s.roleFirst = c.delta?.role === 'assistant';
    if (typeof c.delta?.content === 'string') s.content += c.delta.content;
    for (const tc of c.delta?.tool_calls ?? []) {
      const t = (s.tools[tc.index] ??= { id: null, name: null, args: '', headers: 0 });
      if (tc.id) { t.id = tc.id; t.headers++; }
      if (tc.function?.name) t.name = tc.function.name;
      if (typeof tc.function?.arguments === 'string') t.args += tc.function.arguments;
    }
    if (c.finish_reason) s.finish.push({ at: i, reason: c.finish_reason });
  });
  return s;
}

// ---- OpenAI-format clients on anthropic/ ----

test('an OpenAI chat request reaches Anthropic translated, with the deployment key and 2023-06-01, no client credentials', async () => {
  const body = {
    model: 'claude',
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'What is the weather in Paris?' }],
    max_tokens: 50, temperature: 0.2, stop: 'END', user: 'fwd-1',
    tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }],
    tool_choice: 'auto',
  };
  const r = await chat(body, {
    headers: { 'x-api-key': 'sk-client-x-api-key-must-not-leak', 'anthropic-version': '2026-10-21', 'x-custom': 'nope' },
  });
  assert.equal(r.status, 200, r.text);
  const e = await anthEntry('fwd-1');
  assert.equal(e.check_error, null, 'the mock found nothing to refuse');
  assert.equal(e.path, '/v1/messages');
  assert.deepEqual(e.body, {
    model: 'claude-up',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'What is the weather in Paris?' }] }],
    system: [{ type: 'text', text: 'Be brief.' }],
    max_tokens: 50, temperature: 0.2, stop_sequences: ['END'], metadata: { user_id: 'fwd-1' },
    tools: [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }],
    tool_choice: { type: 'auto' },
  });
  assert.equal(e.headers['x-api-key'], AKEY, 'the deployment key as x-api-key');
  assert.equal(e.headers['anthropic-version'], '2023-06-01', 'LiteLLM overwrites the client version on the chat route');
  assert.equal(e.headers.authorization, undefined);
  assert.equal(e.headers['x-custom'], undefined);
  const all = JSON.stringify(e.headers);
  for (const secret of [MASTER, 'sk-client-x-api-key-must-not-leak']) assert.ok(!all.includes(secret), `${secret} reached the upstream`);
  // the answer, in OpenAI's shape; the id is Anthropic's (moongate keeps it)
  const j = r.json;
  assert.equal(j.object, 'chat.completion');
  assert.equal(j.model, 'claude');
  assert.match(j.id, /^msg_mock_\d+$/);
  assert.equal(j.choices[0].message.role, 'assistant');
  assert.equal(j.choices[0].message.content, 'mock reply from claude-up');
  assert.equal(j.choices[0].finish_reason, 'stop');
  assert.equal(j.usage.completion_tokens, 4);
  assert.ok(j.usage.prompt_tokens > 0);
  assert.equal(j.usage.total_tokens, j.usage.prompt_tokens + 4);
  assert.equal(r.headers.get('x-litellm-model-id'), 'claude-1');
});

test('an Anthropic tool_use comes back as OpenAI tool_calls', async () => {
  const r = await chat({ model: 'claude', messages: HI, user: 'tools-1', tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }] });
  assert.equal(r.status, 200, r.text);
  const c = r.json.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  assert.equal(c.message.content, 'Checking.');
  assert.equal(c.message.tool_calls.length, 1);
  const tc = c.message.tool_calls[0];
  assert.match(tc.id, /^toolu_/);
  assert.equal(tc.type, 'function');
  assert.equal(tc.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(tc.function.arguments), { city: 'Paris' });
  assert.equal(tc.function.arguments, '{"city":"Paris"}', 'compact JSON (moongate)');
});

test('a stream to anthropic/: text and tool-call deltas, include_usage, [DONE]', async () => {
  const body = { model: 'claude', messages: HI, user: 'stream-tools', stream: true, stream_options: { include_usage: true }, tools: [{ type: 'function', function: { name: 'get_weather' } }] };
  const r = await chat(body);
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^text\/event-stream/);
  const frames = sse(r.text);
  assert.equal(frames.at(-1).data, '[DONE]');
  assert.equal(frames.filter((f) => f.data === '[DONE]').length, 1);
  const s = chunks(frames);
  assert.ok(s.roleFirst, 'the first chunk carries role assistant');
  for (const ch of s.json) {
    assert.equal(ch.object, 'chat.completion.chunk');
    assert.equal(ch.model, 'claude');
    assert.equal(ch.id, s.json[0].id);
  }
  assert.match(s.json[0].id, /^msg_mock_/);
  assert.equal(s.content, 'Let me look.');
  assert.deepEqual(Object.keys(s.tools), ['0']);
  assert.equal(s.tools[0].headers, 1, 'one chunk opens the tool call (id, name)');
  assert.match(s.tools[0].id, /^toolu_/);
  assert.equal(s.tools[0].name, 'get_weather');
  assert.deepEqual(JSON.parse(s.tools[0].args), { location: 'San Francisco, CA', unit: 'celsius' });
  assert.deepEqual(s.finish.map((f) => f.reason), ['tool_calls']);
  assert.equal(s.usage.length, 1, 'one chunk carries usage');
  assert.ok(s.usage[0].at > s.finish[0].at, 'usage comes after the finish chunk');
  const e = await anthEntry('stream-tools');
  assert.equal(e.body.stream, true);
  assert.equal(e.body.stream_options, undefined, 'Anthropic takes no stream_options');
  // the mock's output_tokens: the words of the text, ceil(JSON length / 4) per tool input
  const input = { location: 'San Francisco, CA', unit: 'celsius' };
  assert.equal(s.usage[0].usage.completion_tokens, 3 + Math.ceil(JSON.stringify(input).length / 4));
  assert.ok(s.usage[0].usage.prompt_tokens > 0);
  assert.equal(s.usage[0].usage.total_tokens, s.usage[0].usage.prompt_tokens + s.usage[0].usage.completion_tokens);
  // without include_usage no chunk carries usage
  const r2 = await chat({ ...body, user: 'stream-plain', stream_options: undefined });
  assert.equal(r2.status, 200, r2.text);
  const s2 = chunks(sse(r2.text));
  assert.equal(s2.usage.length, 0);
  assert.equal(s2.content, 'mock reply from claude-up');
});

test('upstream errors reach OpenAI-format clients as LiteLLM maps them (401, 429 + retry-after, 529 -> 500, 400)', async () => {
  const cases = [
    { tag: 'e401', group: 'claude-err', status: 401, prefix: 'litellm.AuthenticationError: AnthropicException - ', has: 'invalid x-api-key' },
    { tag: 'e429', group: 'claude-err', status: 429, prefix: 'litellm.RateLimitError: AnthropicException - ', has: '"rate_limit_error"' },
    { tag: 'e529', group: 'claude-err', status: 500, prefix: 'litellm.InternalServerError: AnthropicError - ', has: '"overloaded_error"' },
    { tag: 'e400', group: 'claude-err', status: 400, prefix: 'litellm.BadRequestError: AnthropicException - ', has: 'the mock refuses this' },
  ];
  for (const c of cases) {
    const r = await chat({ model: c.group, messages: HI, user: c.tag, num_retries: 0 });
    assert.equal(r.status, c.status, `${c.tag}: ${r.text}`);
    const m = r.json?.error?.message;
    assert.equal(typeof m, 'string', r.text);
    assert.ok(m.startsWith(c.prefix), `${c.tag}: ${m}`);
    assert.ok(m.includes(c.has), `${c.tag}: ${m}`);
    assert.ok(m.includes(groupSuffix(c.group)), `${c.tag}: ${m}`);
    assert.equal(r.json.error.code, String(c.status));
    assert.ok(!m.includes(BADKEY) && !m.includes(AKEY), 'no upstream key in the message');
    if (c.tag === 'e429') assert.equal(r.headers.get('retry-after'), '7');
  }
});

test('a real wrong deployment key: the Anthropic mock refuses it, the client gets 401 AuthenticationError', async () => {
  const since = await lastSeq(amock);
  const r = await chat({ model: 'claude-badkey', messages: HI, user: 'badkey-1', num_retries: 0 });
  assert.equal(r.status, 401, r.text);
  assert.match(r.json.error.message, /^litellm\.AuthenticationError: AnthropicException - .*invalid x-api-key/s);
  const e = await anthEntry('badkey-1', since);
  assert.equal(e.headers['x-api-key'], BADKEY);
  assert.equal(e.behaviour_source, 'checks');
});

test('an Anthropic error event mid-stream: OpenAI clients get LiteLLM\'s error frame and no [DONE]', async () => {
  const r = await chat({ model: 'claude', messages: HI, user: 'midstream', stream: true, stream_options: { include_usage: true } });
  assert.equal(r.status, 200, r.text);
  const frames = sse(r.text);
  assert.equal(frames.filter((f) => f.data === '[DONE]').length, 0, 'no [DONE] after an error');
  const last = frames.at(-1).data;
  assert.deepEqual(last, { error: {
    message: 'litellm.InternalServerError: AnthropicException - Overloaded. Handle with `litellm.InternalServerError`.',
    type: last.error?.type ?? null, param: null, code: '500',
  } });
  const s = chunks(frames.slice(0, -1));
  assert.ok(s.content.length > 0 && 'partial answer here'.startsWith(s.content), s.content);
  assert.equal(s.finish.length, 0);
  // an Anthropic-format client of the same deployment gets the upstream's error event as it was
  const r2 = await messages({ model: 'claude', max_tokens: 50, stream: true, messages: HI, metadata: { user_id: 'midstream' } });
  assert.equal(r2.status, 200, r2.text);
  const f2 = sse(r2.text);
  assert.equal(f2.at(-1).event, 'error');
  assert.deepEqual(f2.at(-1).data, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
  assert.equal(f2.filter((f) => f.event === 'message_stop').length, 0);
});

test('deployment defaults (litellm_params) fill what the request lacks on anthropic/',
  async () => {
    const r = await chat({ model: 'claude-defaults', messages: HI, user: 'defaults-1' });
    assert.equal(r.status, 200, r.text);
    const e = await anthEntry('defaults-1');
    assert.equal(e.body.temperature, 0.25);
    assert.equal(e.body.max_tokens, 512);
  });

// ---- drop_params, additional_drop_params, nulls ----

const SEED = { model: 'claude', messages: HI, seed: 7, num_retries: 0 };

test('an OpenAI parameter Anthropic lacks is refused with UnsupportedParamsError; nothing is sent', async () => {
  const since = await lastSeq(amock);
  const r = await chat({ ...SEED, user: 'drop-none' });
  assert.equal(r.status, 400, r.text);
  assert.ok(r.json.error.message.startsWith(
    "litellm.UnsupportedParamsError: anthropic does not support parameters: ['seed'], for model=claude-up. To drop these, "
    + 'set `litellm.drop_params=True` or for proxy:\n\n`litellm_settings:\n drop_params: true`\n. \n If you want to use these '
    + "params dynamically send allowed_openai_params=['seed'] in your request."), r.json.error.message);
  assert.ok(r.json.error.message.includes(groupSuffix('claude')), r.json.error.message);
  assert.equal((await amock.log(since)).length, 0, 'nothing reached Anthropic');
});

test('drop_params in the request, on the deployment (litellm_params) and globally (litellm_settings)', async () => {
  const r1 = await chat({ ...SEED, user: 'drop-req', drop_params: true, n: 2, frequency_penalty: 0.5 });
  assert.equal(r1.status, 200, r1.text);
  const e1 = await anthEntry('drop-req');
  for (const k of ['seed', 'n', 'frequency_penalty', 'drop_params']) assert.equal(e1.body[k], undefined, k);
  const r2 = await chat({ ...SEED, model: 'claude-drop', user: 'drop-dep' });
  assert.equal(r2.status, 200, r2.text);
  assert.equal((await anthEntry('drop-dep')).body.seed, undefined);
  const r3 = await post(gwg, '/v1/chat/completions', { ...SEED, user: 'drop-global' });
  assert.equal(r3.status, 200, r3.text);
  const e3 = await anthEntry('drop-global');
  assert.equal(e3.body.model, 'claude-global-up');
  assert.equal(e3.body.seed, undefined);
});

test('additional_drop_params on the deployment and in the request remove those parameters', async () => {
  const r1 = await chat({ model: 'claude-adp', messages: HI, temperature: 0.3, top_p: 0.9, user: 'adp-dep' });
  assert.equal(r1.status, 200, r1.text);
  const e1 = await anthEntry('adp-dep');
  assert.equal(e1.body.temperature, undefined);
  assert.equal(e1.body.top_p, 0.9);
  const r2 = await chat({ model: 'claude', messages: HI, top_p: 0.9, temperature: 0.4, user: 'adp-req', additional_drop_params: ['top_p'] });
  assert.equal(r2.status, 200, r2.text);
  const e2 = await anthEntry('adp-req');
  assert.equal(e2.body.top_p, undefined);
  assert.equal(e2.body.temperature, 0.4);
  assert.equal(e2.body.additional_drop_params, undefined);
  // the request's list joins the deployment's
  const r3 = await chat({ model: 'claude-adp', messages: HI, top_p: 0.9, temperature: 0.4, user: 'adp-both', additional_drop_params: ['top_p'] });
  assert.equal(r3.status, 200, r3.text);
  const e3 = await anthEntry('adp-both');
  assert.equal(e3.body.top_p, undefined);
  assert.equal(e3.body.temperature, undefined);
});

test('additional_drop_params makes an unsupported parameter go away instead of being refused',
  async () => {
    const r = await chat({ ...SEED, user: 'adp-seed', additional_drop_params: ['seed'] });
    assert.equal(r.status, 200, r.text);
    assert.equal((await anthEntry('adp-seed')).body.seed, undefined);
  });

test('null values are never forwarded (the vLLM encoding_format:null seed), to either provider', async () => {
  const r1 = await chat({ model: 'claude', messages: HI, temperature: null, top_p: null, stop: null, tools: null, tool_choice: null, seed: null, user: 'null-anth' });
  assert.equal(r1.status, 200, r1.text);
  const e1 = await anthEntry('null-anth');
  assert.equal(e1.check_error, null);
  assert.deepEqual(nulls(e1.body), [], JSON.stringify(e1.body));
  const r2 = await chat({ model: 'gpt', messages: HI, temperature: null, encoding_format: null, response_format: null, user: 'null-oai' });
  assert.equal(r2.status, 200, r2.text);
  const e2 = await oaiEntry('null-oai');
  assert.deepEqual(nulls(e2.body), [], JSON.stringify(e2.body));
  const since = await lastSeq(omock);
  const r3 = await post(gw, '/v1/embeddings', { model: 'gpt', input: 'x', encoding_format: null, dimensions: null });
  assert.equal(r3.status, 200, r3.text);
  const e3 = (await omock.log(since)).filter((x) => x.endpoint === 'embeddings');
  assert.equal(e3.length, 1);
  assert.ok(!('encoding_format' in e3[0].body) && !('dimensions' in e3[0].body), JSON.stringify(e3[0].body));
  const r4 = await messages({ model: 'claude', max_tokens: 20, messages: HI, temperature: null, metadata: { user_id: 'null-native' } });
  assert.equal(r4.status, 200, r4.text);
  assert.equal((await anthEntry('null-native')).body.temperature, undefined);
});

// ---- /v1/messages to anthropic/: native ----

test('/v1/messages to anthropic/ is passed through: only model changes; the client version is kept', async () => {
  const body = {
    model: 'claude',
    max_tokens: 300,
    system: [{ type: 'text', text: 'You are terse.', cache_control: { type: 'ephemeral' } }],
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'Weather in Oslo?' }] },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { location: 'Oslo' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: '3 degrees' }] },
    ],
    tools: [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { location: { type: 'string' } } } }],
    tool_choice: { type: 'auto' },
    temperature: 0.5, top_k: 20, stop_sequences: ['\n\nHuman:'],
    metadata: { user_id: 'native-1' },
  };
  const r = await messages(body, { auth: 'x-api-key' });
  assert.equal(r.status, 200, r.text);
  const e = await anthEntry('native-1');
  assert.deepEqual(e.body, { ...body, model: 'claude-up' });
  assert.equal(e.headers['x-api-key'], AKEY);
  assert.equal(e.headers['anthropic-version'], '2023-06-01');
  assert.ok(!JSON.stringify(e.headers).includes(MASTER));
  // the answer: the mock's bytes with model restamped
  assert.equal(r.json.type, 'message');
  assert.equal(r.json.model, 'claude');
  assert.equal(r.json.content[0].text, 'mock reply from claude-up');
  const back = r.text.replace('"model":"claude"', '"model":"claude-up"');
  assert.equal(Buffer.byteLength(back), e.sent_bytes);
  assert.equal(sha256(back), e.sent_sha256, 'the body is the upstream\'s but for model');
  // the /anthropic/ pass-through path, Bearer auth, and the SDK's newer version header
  const r2 = await post(gw, '/anthropic/v1/messages', { ...body, temperature: undefined, top_k: undefined, metadata: { user_id: 'native-2' } },
    { headers: { 'anthropic-version': '2026-10-21' } });
  assert.equal(r2.status, 200, r2.text);
  const e2 = await anthEntry('native-2');
  assert.equal(e2.headers['anthropic-version'], '2026-10-21', 'the client\'s version is kept on the pass-through');
  assert.equal(e2.check_error, null);
});

test('/v1/messages streams to anthropic/ are relayed event by event with model restamped', async () => {
  const r = await messages({ model: 'claude', max_tokens: 100, stream: true, messages: HI, metadata: { user_id: 'native-stream' }, tools: [{ name: 'get_weather', input_schema: { type: 'object' } }] });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^text\/event-stream/);
  const frames = sse(r.text);
  for (const f of frames) assert.equal(f.event, f.data.type, 'event name = data type');
  assert.equal(frames[0].data.type, 'message_start');
  assert.equal(frames[0].data.message.model, 'claude');
  assert.equal(frames.at(-1).data.type, 'message_stop');
  assert.equal(frames.filter((f) => f.event === 'ping').length, 2, 'pings are relayed too');
  const e = await anthEntry('native-stream');
  assert.equal(e.events_sent, frames.length, 'as many events as the upstream sent');
  const back = r.text.replace('"model":"claude"', '"model":"claude-up"');
  assert.equal(sha256(back), e.sent_sha256, 'byte for byte but the model');
  const input = frames.filter((f) => f.data.delta?.type === 'input_json_delta').map((f) => f.data.delta.partial_json).join('');
  assert.deepEqual(JSON.parse(input), { location: 'Oslo' });
});

test('Anthropic errors reach /v1/messages clients unchanged: 529 stays 529 overloaded_error; 429 keeps retry-after', async () => {
  const r = await messages({ model: 'claude-err', max_tokens: 10, messages: HI, metadata: { user_id: 'e529' }, num_retries: 0 });
  assert.equal(r.status, 529, r.text);
  assert.equal(r.json.type, 'error');
  assert.deepEqual(r.json.error, { type: 'overloaded_error', message: 'Overloaded' });
  const r2 = await messages({ model: 'claude-err', max_tokens: 10, messages: HI, metadata: { user_id: 'e429' }, num_retries: 0 });
  assert.equal(r2.status, 429, r2.text);
  assert.deepEqual(r2.json.error, { type: 'rate_limit_error', message: 'Number of requests has exceeded your per-minute rate limit.' });
  assert.equal(r2.headers.get('retry-after'), '7');
  const r3 = await messages({ model: 'claude-badkey', max_tokens: 10, messages: HI, metadata: { user_id: 'badkey-native' }, num_retries: 0 });
  assert.equal(r3.status, 401, r3.text);
  assert.deepEqual(r3.json.error, { type: 'authentication_error', message: 'invalid x-api-key' });
});

test('an Anthropic upstream error body reaches a /v1/messages client byte for byte (request_id included)',
  async () => {
    const r = await messages({ model: 'claude-err', max_tokens: 10, messages: HI, metadata: { user_id: 'e529' }, num_retries: 0 });
    assert.equal(r.status, 529);
    assert.match(r.json.request_id ?? '', /^req_mock_\d+$/);
  });

// ---- /v1/messages to openai/: translated ----

test('/v1/messages to openai/ is translated to chat completions and the answer back to a message', async () => {
  const r = await messages({
    model: 'gpt', max_tokens: 20, system: 'Be brief.', temperature: 0.1, stop_sequences: ['END'],
    messages: [{ role: 'user', content: 'hi there' }], metadata: { user_id: 'm2o-1' },
  }, { headers: { 'anthropic-beta': 'prompt-caching-2024-07-31' } });
  assert.equal(r.status, 200, r.text);
  const e = await oaiEntry('m2o-1');
  assert.equal(e.path, '/v1/chat/completions');
  assert.deepEqual(e.body, {
    model: 'gpt-up', max_tokens: 20, temperature: 0.1, stop: ['END'], user: 'm2o-1',
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hi there' }],
  });
  assert.equal(e.headers.authorization, `Bearer ${OKEY}`);
  const j = r.json;
  assert.equal(j.type, 'message');
  assert.equal(j.role, 'assistant');
  assert.equal(j.model, 'gpt');
  assert.match(j.id, /^msg_/);
  assert.deepEqual(j.content, [{ type: 'text', text: 'mock reply from gpt-up' }]);
  assert.equal(j.stop_reason, 'end_turn');
  assert.equal(j.stop_sequence, null);
  assert.equal(j.usage.output_tokens, 4);
  assert.ok(Number.isInteger(j.usage.input_tokens) && j.usage.input_tokens > 0);
});

test('/v1/messages streamed to openai/: Anthropic events from OpenAI chunks, usage from the usage chunk', async () => {
  const r = await messages({ model: 'gpt', max_tokens: 20, stream: true, messages: HI, metadata: { user_id: 'm2o-stream' } });
  assert.equal(r.status, 200, r.text);
  const e = await oaiEntry('m2o-stream');
  assert.equal(e.body.stream, true);
  assert.deepEqual(e.body.stream_options, { include_usage: true }, 'moongate asks the upstream for usage');
  const frames = sse(r.text);
  for (const f of frames) assert.equal(f.event, f.data.type);
  assert.deepEqual(frames.map((f) => f.event), ['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta',
    'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
  assert.equal(frames[0].data.message.model, 'gpt');
  assert.deepEqual(frames[1].data.content_block, { type: 'text', text: '' });
  assert.equal(frames.slice(2, 6).map((f) => f.data.delta.text).join(''), 'mock reply from gpt-up');
  const md = frames[7].data;
  assert.equal(md.delta.stop_reason, 'end_turn');
  assert.equal(md.usage.output_tokens, 4);
  assert.ok(md.usage.input_tokens > 0);
});

test('/v1/messages to openai/ with tools: tool_calls become tool_use blocks, streamed as input_json_delta', async () => {
  const tools = [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }];
  const r = await messages({ model: 'gpt-tools', max_tokens: 50, messages: HI, tools, tool_choice: { type: 'any' }, metadata: { user_id: 'm2o-tools' } });
  assert.equal(r.status, 200, r.text);
  const e = await oaiEntry('m2o-tools');
  assert.deepEqual(e.body.tools, [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: tools[0].input_schema } }]);
  assert.equal(e.body.tool_choice, 'required');
  assert.deepEqual(r.json.content, [{ type: 'tool_use', id: 'call_w2', name: 'get_weather', input: { city: 'Rome' } }]);
  assert.equal(r.json.stop_reason, 'tool_use');
  assert.equal(r.json.usage.input_tokens, 30);
  assert.equal(r.json.usage.output_tokens, 9);

  const rs = await messages({ model: 'gpt-tools', max_tokens: 50, stream: true, messages: HI, tools, metadata: { user_id: 'm2o-tools-s' } });
  assert.equal(rs.status, 200, rs.text);
  const frames = sse(rs.text);
  assert.deepEqual(frames.map((f) => f.event), ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop',
    'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
  assert.deepEqual(frames[4].data.content_block, { type: 'tool_use', id: 'call_w1', name: 'get_weather', input: {} });
  assert.equal(frames[4].data.index, 1);
  const input = frames.filter((f) => f.data.delta?.type === 'input_json_delta').map((f) => f.data.delta.partial_json).join('');
  assert.deepEqual(JSON.parse(input), { city: 'Rome' });
  assert.deepEqual(frames[8].data.delta.stop_reason, 'tool_use');
  assert.equal(frames[8].data.usage.input_tokens, 31);
  assert.equal(frames[8].data.usage.output_tokens, 12);
});

test('an OpenAI upstream error reaches a /v1/messages client in Anthropic\'s envelope', async () => {
  const r = await messages({ model: 'gpt-err', max_tokens: 10, messages: HI, num_retries: 0 });
  assert.equal(r.status, 429, r.text);
  assert.equal(r.json.type, 'error');
  assert.equal(r.json.error.type, 'rate_limit_error');
  assert.match(r.json.error.message, /openai says slow down/);
  assert.ok(!/^litellm\./.test(r.json.error.message), `LiteLLM's class prefix is stripped: ${r.json.error.message}`);
  assert.equal(r.headers.get('retry-after'), '3');
});

// ---- count_tokens ----

test('count_tokens: passed to an anthropic/ deployment; estimated for an openai/ one', async () => {
  const body = { model: 'claude', system: 'You are a scientist', messages: [{ role: 'user', content: 'Hello, Claude' }] };
  // count_tokens bodies carry no metadata: the rule matches the endpoint and the upstream model
  await amock.script({ append: true, rules: [{ match: { endpoint: 'count_tokens', model: 'claude-up' }, times: 1, respond: { usage: { input_tokens: 4242 } } }] });
  const since = await lastSeq(amock);
  const r = await post(gw, '/v1/messages/count_tokens', body, { headers: AV });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { input_tokens: 4242 });
  assert.equal(r.headers.get('x-moongate-token-count'), null);
  const e = (await amock.log(since)).filter((x) => x.endpoint === 'count_tokens');
  assert.equal(e.length, 1);
  assert.equal(e[0].path, '/v1/messages/count_tokens');
  assert.deepEqual(e[0].body, { model: 'claude-up', system: 'You are a scientist', messages: [{ role: 'user', content: 'Hello, Claude' }] });
  assert.equal(e[0].headers['x-api-key'], AKEY);
  assert.equal(e[0].check_error, null);

  const oSince = await lastSeq(omock);
  const r2 = await post(gw, '/v1/messages/count_tokens', { ...body, model: 'gpt' }, { headers: AV });
  assert.equal(r2.status, 200, r2.text);
  assert.equal(r2.headers.get('x-moongate-token-count'), 'estimate');
  assert.deepEqual(Object.keys(r2.json), ['input_tokens']);
  assert.ok(Number.isInteger(r2.json.input_tokens) && r2.json.input_tokens > 0, r2.text);
  const longer = await post(gw, '/v1/messages/count_tokens', { ...body, model: 'gpt', messages: [{ role: 'user', content: 'Hello, Claude '.repeat(40) }] }, { headers: AV });
  assert.ok(longer.json.input_tokens > r2.json.input_tokens + 100, `${longer.text} vs ${r2.text}`);
  assert.equal((await omock.log(oSince)).length, 0, 'nothing reached the OpenAI upstream');
  // the /anthropic/ path too
  const r3 = await post(gw, '/anthropic/v1/messages/count_tokens', { ...body, model: 'gpt' }, { headers: AV });
  assert.deepEqual(r3.json, r2.json);
});

// ---- Anthropic's error envelope for the gateway's own errors ----

test('/v1/messages errors use Anthropic\'s envelope: unknown model, bad or missing key, missing max_tokens, invalid JSON', async () => {
  const check = (r, status, type, msg) => {
    assert.equal(r.status, status, r.text);
    assert.deepEqual(Object.keys(r.json).sort(), ['error', 'type'], r.text);
    assert.equal(r.json.type, 'error');
    assert.equal(r.json.error.type, type, r.text);
    if (msg instanceof RegExp) assert.match(r.json.error.message, msg);
    else assert.equal(r.json.error.message, msg);
  };
  check(await messages({ model: 'no-such-model', max_tokens: 5, messages: HI }), 400, 'invalid_request_error',
    'anthropic_messages: Invalid model name passed in model=no-such-model. Call `/v1/models` to view available models for your key.');
  check(await messages({ model: 'claude', max_tokens: 5, messages: HI }, { auth: 'none' }), 401, 'authentication_error',
    'Authentication Error, No api key passed in.');
  check(await messages({ model: 'claude', max_tokens: 5, messages: HI }, { auth: 'x-api-key', key: 'sk-not-the-master' }), 401,
    'authentication_error', /^Authentication Error, Invalid proxy server token passed\./);
  check(await messages({ model: 'claude', messages: HI }), 400, 'invalid_request_error', /max_tokens/);
  check(await messages('{"model":"claude","max_tokens":5,"messages":[', {}), 400, 'invalid_request_error', /^Invalid JSON payload/);
  check(await post(gw, '/v1/messages/count_tokens', { messages: HI }, { headers: AV }), 400, 'invalid_request_error', /model/);
});

// ---- header hygiene ----

test('a client\'s anthropic-beta reaches the Anthropic mock and never the OpenAI mock', async () => {
  const BETA = 'prompt-caching-2024-07-31,token-efficient-tools-2025-02-19';
  const h = { 'anthropic-beta': BETA };
  const r1 = await messages({ model: 'claude', max_tokens: 10, messages: HI, metadata: { user_id: 'beta-anth' } }, { headers: h });
  assert.equal(r1.status, 200, r1.text);
  assert.equal((await anthEntry('beta-anth')).headers['anthropic-beta'], BETA);
  const r2 = await chat({ model: 'claude', messages: HI, user: 'beta-anth-chat' }, { headers: h });
  assert.equal(r2.status, 200, r2.text);
  assert.equal((await anthEntry('beta-anth-chat')).headers['anthropic-beta'], BETA);
  for (const [route, send] of [
    ['messages', () => messages({ model: 'gpt', max_tokens: 10, messages: HI, metadata: { user_id: 'beta-oai' } }, { headers: h })],
    ['chat', () => chat({ model: 'gpt', messages: HI, user: 'beta-oai-chat' }, { headers: { ...h, ...AV } })],
  ]) {
    const r = await send();
    assert.equal(r.status, 200, `${route}: ${r.text}`);
    const e = await oaiEntry(route === 'messages' ? 'beta-oai' : 'beta-oai-chat');
    assert.equal(e.headers['anthropic-beta'], undefined, `${route}: anthropic-beta reached the OpenAI upstream`);
    assert.equal(e.headers['anthropic-version'], undefined, `${route}: anthropic-version reached the OpenAI upstream`);
    assert.equal(e.headers['x-api-key'], undefined);
  }
});

// ---- retries, fallbacks and cooldowns across providers ----

test('an Anthropic-format request whose anthropic/ group answers 429 falls back to an openai/ group, translated', async () => {
  const aSince = await lastSeq(amock);
  const r = await messages({ model: 'claude-fb', max_tokens: 20, messages: HI, metadata: { user_id: 'fb-1' }, num_retries: 0 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-litellm-model-group'), 'gpt-fb');
  assert.equal(r.headers.get('x-litellm-attempted-fallbacks'), '1');
  assert.equal(r.json.type, 'message');
  assert.deepEqual(r.json.content, [{ type: 'text', text: 'mock reply from gpt-fb-up' }]);
  const first = await anthEntry('fb-1', aSince);
  assert.equal(first.status, 429);
  assert.equal(first.body.model, 'claude-fb-up');
  const second = await oaiEntry('fb-1');
  assert.deepEqual(second.body, { model: 'gpt-fb-up', max_tokens: 20, messages: HI, user: 'fb-1' }, 'translated on the fallback attempt');
});

test('the reverse: an openai/ group answering 429 falls back to anthropic/, for both client formats', async () => {
  const r = await chat({ model: 'gpt-fb2', messages: HI, user: 'fb2-chat', num_retries: 0 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-litellm-model-group'), 'claude-fb2');
  assert.equal(r.json.object, 'chat.completion');
  assert.equal(r.json.choices[0].message.content, 'mock reply from claude-fb2-up');
  assert.equal((await oaiEntry('fb2-chat')).status, 429);
  const e = await anthEntry('fb2-chat');
  assert.deepEqual(e.body.messages, [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }]);
  assert.equal(e.body.max_tokens, 4096, 'LiteLLM\'s default max_tokens');
  // an Anthropic-format client: translated to OpenAI first, then passed through natively
  const body = { model: 'gpt-fb2', max_tokens: 33, messages: HI, metadata: { user_id: 'fb2-native' }, top_k: 4 };
  const r2 = await messages({ ...body, num_retries: 0 });
  assert.equal(r2.status, 200, r2.text);
  assert.equal(r2.json.content[0].text, 'mock reply from claude-fb2-up');
  assert.equal((await oaiEntry('fb2-native')).body.model, 'gpt-fb2-up');
  assert.deepEqual((await anthEntry('fb2-native')).body, { ...body, model: 'claude-fb2-up' });
});

test('a group over both providers: a 429 on anthropic/ is retried on openai/, then the deployment cools down', async () => {
  const aSince = await lastSeq(amock);
  let hit = null;
  for (let i = 0; i < 50 && !hit; i++) {
    const tag = `mixed-${i}`;
    const r = await messages({ model: 'mixed', max_tokens: 10, messages: HI, metadata: { user_id: tag } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-litellm-model-id'), 'mixed-b', 'every answer comes from the openai/ deployment');
    assert.equal(r.json.content[0].text, 'mock reply from mixed-b-up');
    const a = (await amock.log(aSince)).find((e) => e.body?.metadata?.user_id === tag);
    if (a) {
      assert.equal(a.status, 429);
      assert.equal(r.headers.get('x-litellm-attempted-retries'), '1');
      hit = a;
    }
  }
  assert.ok(hit, 'no request went to the anthropic/ deployment first');
  // cooled down (cooldown_time 30): later requests never reach it
  const after429 = await lastSeq(amock);
  for (let i = 0; i < 10; i++) {
    const r = await messages({ model: 'mixed', max_tokens: 10, messages: HI, metadata: { user_id: `mixed-cool-${i}` } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-litellm-model-id'), 'mixed-b');
    assert.equal(r.headers.get('x-litellm-attempted-retries'), '0');
  }
  assert.deepEqual((await amock.log(after429)).map((e) => e.body?.metadata?.user_id), [], 'the cooled-down deployment was called');
});

// ---- mock_response ----

test('a mock_response deployment answers /v1/messages in Anthropic\'s format, whole and streamed', async () => {
  const r = await messages({ model: 'mocked', max_tokens: 10, messages: HI });
  assert.equal(r.status, 200, r.text);
  const j = r.json;
  assert.equal(j.type, 'message');
  assert.equal(j.role, 'assistant');
  assert.equal(j.model, 'mocked');
  assert.match(j.id, /^msg_/);
  assert.deepEqual(j.content, [{ type: 'text', text: 'Hello from the mock.' }]);
  assert.equal(j.stop_reason, 'end_turn');
  assert.equal(j.usage.input_tokens, 10);
  assert.equal(j.usage.output_tokens, 20);
  const rs = await messages({ model: 'mocked', max_tokens: 10, messages: HI, stream: true });
  assert.equal(rs.status, 200, rs.text);
  const frames = sse(rs.text);
  for (const f of frames) assert.equal(f.event, f.data.type);
  assert.equal(frames[0].event, 'message_start');
  assert.equal(frames.at(-1).event, 'message_stop');
  assert.equal(frames.filter((f) => f.data.delta?.type === 'text_delta').map((f) => f.data.delta.text).join(''), 'Hello from the mock.');
  const md = frames.find((f) => f.event === 'message_delta').data;
  assert.equal(md.delta.stop_reason, 'end_turn');
  assert.equal(md.usage.output_tokens, 20);
  // and a request-level mock_response on /v1/messages
  const r3 = await messages({ model: 'claude', max_tokens: 10, messages: HI, mock_response: 'per-request mock' });
  assert.equal(r3.status, 200, r3.text);
  assert.deepEqual(r3.json.content, [{ type: 'text', text: 'per-request mock' }]);
});

test('the Anthropic mock saw no request it had to refuse', async () => {
  const bad = (await amock.log()).filter((e) => e.check_error && e.headers['x-api-key'] !== BADKEY);
  assert.deepEqual(bad.map((e) => `${e.path} ${e.check_error}`), []);
  await waitFor(async () => (await amock.stats()).in_progress === 0, { timeout: 5000, what: 'no Anthropic request in flight' });
});
