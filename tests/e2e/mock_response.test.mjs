// mock_response deployments answer offline, in exactly LiteLLM's shapes
// (/work/notes/litellm-behaviour.md §1): usage 10/20/30, a chatcmpl-<uuid4>
// id, and streams cut into 3-character slices with the role on the first
// chunk only.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, mockModel } from '../lib/harness.mjs';
import { OpenAI, client, USER_HI, collectChat, collectText, sseData, expectApiError, noFallbackSuffix, startGw } from './lib.mjs';

const TEXT = 'Hello, moongate e2e!'; // 20 characters: the last slice is short
const slices = (s) => Array.from({ length: Math.ceil(s.length / 3) }, (_, i) => s.slice(3 * i, 3 * i + 3));
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}';
const MOCK_USAGE = { completion_tokens: 20, prompt_tokens: 10, total_tokens: 30 };

const mock = await startMock(); // only the "plain" group may reach it
const offline = (name, mockResponse, info) => {
  const e = { model_name: name, litellm_params: { model: 'openai/gpt-4o', mock_response: mockResponse } };
  if (info) e.model_info = info;
  return e;
};
const gw = await startGw({
  config: {
    model_list: [
      offline('mocked', TEXT),
      offline('mocked-ratelimit', 'litellm.RateLimitError'),
      offline('mocked-ctx', 'litellm.ContextWindowExceededError'),
      offline('mocked-500', 'litellm.InternalServerError'),
      offline('mocked-emb', [0.5, -0.25, 0.125], { mode: 'embedding' }),
      mockModel(mock, 'plain', { model: 'openai/gpt-4o-mini' }),
    ],
    router_settings: { num_retries: 0 },
    general_settings: { master_key: 'sk-e2e-mock-response' },
  },
});
after(async () => { await gw.stop(); await mock.stop(); });

const sdk = client(gw);

test('non-stream: LiteLLM\'s mock body (same keys, key order and values)', async () => {
  const res = await sdk.chat.completions.create({ model: 'mocked', messages: USER_HI }).asResponse();
  assert.equal(res.status, 200);
  const raw = await res.text();
  const j = JSON.parse(raw);
  assert.deepEqual(Object.keys(j), ['id', 'created', 'model', 'object', 'choices', 'usage'],
    'exclude_none: no system_fingerprint, keys in pydantic order');
  assert.match(j.id, new RegExp(`^chatcmpl-${UUID}$`));
  assert.ok(Number.isInteger(j.created) && Math.abs(j.created - Date.now() / 1000) < 3600);
  assert.equal(j.model, 'mocked', 'the requested group name');
  assert.equal(j.object, 'chat.completion');
  assert.deepEqual(j.choices, [{ finish_reason: 'stop', index: 0, message: { content: TEXT, role: 'assistant' } }]);
  assert.deepEqual(j.usage, MOCK_USAGE);
  assert.deepEqual(Object.keys(j.usage), ['completion_tokens', 'prompt_tokens', 'total_tokens']);
  // and the SDK reads it
  const r = await sdk.chat.completions.create({ model: 'mocked', messages: USER_HI });
  assert.equal(r.choices[0].message.content, TEXT);
  assert.notEqual(r.id, j.id, 'a fresh id per call');
});

test('stream: 3-character slices, role on the first chunk, then finish_reason stop', async () => {
  const stream = await sdk.chat.completions.create({ model: 'mocked', messages: USER_HI, stream: true });
  const st = await collectChat(stream);
  assert.deepEqual(st.deltas, slices(TEXT));
  assert.equal(st.text, TEXT);
  assert.deepEqual(st.roles, [{ at: 0, role: 'assistant' }], 'role only on the first chunk');
  assert.equal(st.chunks.length, slices(TEXT).length + 1, 'the slices, then one finish chunk');
  const last = st.chunks.at(-1);
  assert.deepEqual(last.choices, [{ finish_reason: 'stop', index: 0, delta: {} }]);
  assert.equal(st.usage, null);
  for (const ch of st.chunks) {
    assert.equal(ch.id, st.chunks[0].id, 'one id for the whole stream');
    assert.equal(ch.model, 'mocked');
    assert.equal(ch.object, 'chat.completion.chunk');
  }
  assert.match(st.chunks[0].id, new RegExp(`^chatcmpl-${UUID}$`));
  // no finish_reason:null on the content chunks (exclude_none)
  for (const ch of st.chunks.slice(0, -1)) assert.ok(!('finish_reason' in ch.choices[0]), JSON.stringify(ch));
});

test('stream: raw frames, usage chunk with include_usage, then [DONE]', async () => {
  const res = await sdk.chat.completions.create({
    model: 'mocked', messages: USER_HI, stream: true, stream_options: { include_usage: true },
  }).asResponse();
  const frames = sseData(await res.text());
  assert.equal(frames.at(-1), '[DONE]');
  const chunks = frames.slice(0, -1).map((f) => JSON.parse(f));
  const first = chunks[0];
  assert.deepEqual(Object.keys(first), ['id', 'created', 'model', 'object', 'choices']);
  assert.deepEqual(first.choices, [{ index: 0, delta: { content: 'Hel', role: 'assistant' } }]);
  const usage = chunks.at(-1);
  assert.deepEqual(usage.choices, []);
  assert.deepEqual(usage.usage, MOCK_USAGE);
  assert.deepEqual(chunks.at(-2).choices, [{ finish_reason: 'stop', index: 0, delta: {} }]);
});

test('a request-level mock_response answers offline and is never forwarded', async () => {
  const before = (await mock.stats()).last_seq;
  const r = await sdk.chat.completions.create({ model: 'plain', messages: USER_HI, mock_response: 'abcdefg' });
  assert.equal(r.choices[0].message.content, 'abcdefg');
  assert.deepEqual(r.usage, { completion_tokens: 20, prompt_tokens: 10, total_tokens: 30 });
  assert.equal(r.model, 'plain');
  const st = await collectChat(await sdk.chat.completions.create({
    model: 'plain', messages: USER_HI, stream: true, mock_response: 'abcdefg',
  }));
  assert.deepEqual(st.deltas, ['abc', 'def', 'g']);
  assert.equal((await mock.log(before)).length, 0, 'the upstream was not called');
  // without mock_response the same group does reach the upstream
  const up = await sdk.chat.completions.create({ model: 'plain', messages: USER_HI });
  assert.equal(up.choices[0].message.content, 'mock reply from gpt-4o-mini');
  const log = await mock.log(before);
  assert.equal(log.length, 1);
  assert.ok(!('mock_response' in log[0].body));
});

test('n=2: LiteLLM\'s mock answers with n identical choices', async () => {
  const r = await sdk.chat.completions.create({ model: 'mocked', messages: USER_HI, n: 2 });
  assert.deepEqual(r.choices.map((c) => [c.index, c.message.content]), [[0, TEXT], [1, TEXT]]);
});

test('mock_response "litellm.RateLimitError" -> RateLimitError 429', async () => {
  await expectApiError(sdk.chat.completions.create({ model: 'mocked-ratelimit', messages: USER_HI }), OpenAI.RateLimitError, {
    status: 429, code: '429', type: 'throttling_error',
    message: `litellm.RateLimitError: this is a mock rate limit error${noFallbackSuffix('mocked-ratelimit')}`,
  });
});

test('mock_response "litellm.ContextWindowExceededError" -> BadRequestError 400', async () => {
  await expectApiError(sdk.chat.completions.create({ model: 'mocked-ctx', messages: USER_HI }), OpenAI.BadRequestError, {
    status: 400, code: '400',
    message: /^litellm\.ContextWindowExceededError: this is a mock context window exceeded error\n/,
  });
});

test('mock_response "litellm.InternalServerError" -> InternalServerError 500', async () => {
  await expectApiError(sdk.chat.completions.create({ model: 'mocked-500', messages: USER_HI, stream: true }), OpenAI.InternalServerError, {
    status: 500, code: '500',
    message: `litellm.InternalServerError: this is a mock internal server error${noFallbackSuffix('mocked-500')}`,
  });
});

test('embeddings: a list mock_response is the vector; usage as LiteLLM\'s mock_embedding', async () => {
  const r = await sdk.embeddings.create({ model: 'mocked-emb', input: 'anything', encoding_format: 'float' });
  assert.equal(r.object, 'list');
  assert.deepEqual(r.data, [{ embedding: [0.5, -0.25, 0.125], index: 0, object: 'embedding' }]);
  assert.deepEqual(r.usage, { prompt_tokens: 10, completion_tokens: 0, total_tokens: 0 });
});

test('legacy completions: text_completion object, and 3-character slices when streaming', async () => {
  const r = await sdk.completions.create({ model: 'mocked', prompt: 'x' });
  assert.equal(r.object, 'text_completion');
  assert.match(r.id, new RegExp(`^cmpl-${UUID}$`));
  assert.equal(r.model, 'mocked');
  assert.deepEqual(r.choices, [{ finish_reason: 'stop', index: 0, text: TEXT }]);
  assert.deepEqual(r.usage, MOCK_USAGE);
  const st = await collectText(await sdk.completions.create({ model: 'mocked', prompt: 'x', stream: true }));
  assert.deepEqual(st.deltas, slices(TEXT));
  assert.equal(st.finish, 'stop');
});

test('nothing in this file reached a network upstream except the "plain" group', async () => {
  const log = await mock.log();
  assert.ok(log.every((e) => e.body?.model === 'gpt-4o-mini'), JSON.stringify(log.map((e) => e.body?.model)));
});
