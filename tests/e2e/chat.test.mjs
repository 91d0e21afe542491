// Chat completions through the official openai npm client: plain answers,
// streams (order, usage, model restamp), failures in the middle of a stream,
// a client that walks away, and the SDK's own retries.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, mockModel, waitFor } from '../lib/harness.mjs';
import {
  OpenAI, client, USER_HI, wordChunks, words, collectChat, sseData, expectApiError, noFallbackSuffix, startGw,
} from './lib.mjs';

const mock = await startMock();
const gw = await startGw({
  config: {
    model_list: [
      mockModel(mock, 'gpt-4o', { model: 'openai/gpt-4o-mini', key: 'sk-upstream-chat' }),
      mockModel(mock, 'retry-me', { model: 'openai/gpt-4o-retry', key: 'sk-upstream-chat' }),
    ],
    // moongate's own retries off, so the SDK's retries are the ones that act
    router_settings: { num_retries: 0 },
    general_settings: { master_key: 'sk-e2e-chat' },
  },
  workers: 2,
});
after(async () => { await gw.stop(); await mock.stop(); });

const sdk = client(gw);

async function lastLog(pred = () => true) {
  const log = await mock.log();
  return log.filter(pred).at(-1);
}

test('non-stream: content, usage, id and the model restamped to the group name', async () => {
  const content = 'The quick brown fox jumps over the lazy dog.';
  const { data, response } = await sdk.chat.completions.create({
    model: 'gpt-4o',
    messages: [{ role: 'user', content: 'say the pangram' }],
    temperature: 0.2,
    mock: { content, response_id: 'chatcmpl-e2e-fixed', usage: { prompt_tokens: 11, completion_tokens: 9, total_tokens: 20 } },
  }).withResponse();
  assert.equal(response.status, 200);
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.id, 'chatcmpl-e2e-fixed');
  assert.equal(data.model, 'gpt-4o', 'the response names the group the client asked for');
  assert.equal(data.choices.length, 1);
  assert.equal(data.choices[0].message.role, 'assistant');
  assert.equal(data.choices[0].message.content, content);
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.deepEqual(data.usage, { prompt_tokens: 11, completion_tokens: 9, total_tokens: 20 });
  assert.equal(response.headers.get('x-litellm-model-group'), 'gpt-4o');

  const e = await lastLog((x) => x.endpoint === 'chat.completions');
  assert.equal(e.body.model, 'gpt-4o-mini', 'upstream gets the deployment model');
  assert.equal(e.headers.authorization, 'Bearer sk-upstream-chat', 'upstream gets the deployment key, not the client key');
  assert.equal(e.body.temperature, 0.2);
  assert.deepEqual(e.body.messages, [{ role: 'user', content: 'say the pangram' }]);
  assert.equal(e.body.stream, undefined);
});

test('non-stream: the default mock answer names the upstream model', async () => {
  const r = await sdk.chat.completions.create({ model: 'gpt-4o', messages: USER_HI });
  assert.equal(r.choices[0].message.content, 'mock reply from gpt-4o-mini');
  assert.equal(r.model, 'gpt-4o');
  assert.match(r.id, /^chatcmpl-mock-\d+$/, 'the upstream id is passed through');
  assert.equal(r.usage.completion_tokens, 4);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 4);
});

test('stream: deltas arrive in order and concatenate to what the mock sent', async () => {
  const content = words(12, 'tok');
  const stream = await sdk.chat.completions.create({
    model: 'gpt-4o', messages: USER_HI, stream: true, mock: { content },
  });
  const st = await collectChat(stream);
  assert.deepEqual(st.deltas, wordChunks(content), 'one delta per mock chunk, in order');
  assert.equal(st.text, content);
  assert.equal(st.finish, 'stop');
  assert.equal(st.usage, null, 'no usage chunk without stream_options.include_usage');
  assert.deepEqual(st.roles.map((r) => r.at), [0], 'role only on the first chunk');
  assert.equal(st.roles[0].role, 'assistant');
  for (const ch of st.chunks) {
    assert.equal(ch.object, 'chat.completion.chunk');
    assert.equal(ch.model, 'gpt-4o', 'every chunk is restamped to the group name');
    assert.equal(ch.id, st.chunks[0].id);
  }
  const e = await lastLog((x) => x.endpoint === 'chat.completions');
  assert.equal(e.body.stream, true);
  assert.equal(e.outcome, 'complete');
});

test('stream with stream_options.include_usage: the final chunk carries usage', async () => {
  const content = 'usage comes last';
  const stream = await sdk.chat.completions.create({
    model: 'gpt-4o',
    messages: USER_HI,
    stream: true,
    stream_options: { include_usage: true },
    mock: { content, usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } },
  });
  const st = await collectChat(stream);
  assert.equal(st.text, content);
  const last = st.chunks.at(-1);
  assert.deepEqual(last.choices, [], 'the usage chunk has no choices');
  assert.deepEqual(last.usage, { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
  assert.equal(st.chunks.filter((c) => c.usage).length, 1, 'exactly one chunk carries usage');
  const e = await lastLog((x) => x.endpoint === 'chat.completions');
  assert.deepEqual(e.body.stream_options, { include_usage: true });
});

test('stream: the raw SSE ends with data: [DONE]', async () => {
  const res = await sdk.chat.completions.create({
    model: 'gpt-4o', messages: USER_HI, stream: true, mock: { content: 'a b c' },
  }).asResponse();
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const frames = sseData(await res.text());
  assert.equal(frames.at(-1), '[DONE]');
  assert.equal(frames.filter((f) => f === '[DONE]').length, 1);
  const content = frames.slice(0, -1).map((f) => JSON.parse(f).choices[0]?.delta?.content ?? '').join('');
  assert.equal(content, 'a b c');
});

test('stream: the upstream resets mid-stream -> the SDK iteration throws on the error frame', async () => {
  const content = words(6, 'part');
  const stream = await sdk.chat.completions.create({
    model: 'gpt-4o', messages: USER_HI, stream: true, mock: { content, reset_after_chunks: 3 },
  });
  const got = [];
  let err = null;
  try {
    for await (const ch of stream) {
      const d = ch.choices?.[0]?.delta?.content;
      if (d) got.push(d);
    }
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'the iteration must throw, not end quietly');
  assert.ok(err instanceof OpenAI.APIError, `APIError expected, got ${err?.constructor?.name}`);
  assert.equal(err.status, undefined, 'an in-stream error has no HTTP status (headers were 200)');
  assert.equal(err.code, '500');
  assert.match(err.message, /^litellm\.InternalServerError: InternalServerError: OpenAIException - Connection error\./);
  assert.ok(err.message.endsWith(noFallbackSuffix('gpt-4o')), err.message);
  assert.deepEqual(got, wordChunks(content).slice(0, 3), 'the chunks before the reset arrived intact');
});

test('stream: the raw SSE of a reset stream ends with one error frame and no [DONE]', async () => {
  const res = await sdk.chat.completions.create({
    model: 'gpt-4o', messages: USER_HI, stream: true, mock: { content: words(5), reset_after_chunks: 2 },
  }).asResponse();
  assert.equal(res.status, 200);
  const frames = sseData(await res.text());
  assert.ok(!frames.includes('[DONE]'), `no [DONE] after a failure: ${JSON.stringify(frames)}`);
  const errs = frames.filter((f) => f.startsWith('{') && JSON.parse(f).error);
  assert.equal(errs.length, 1, 'exactly one error frame');
  assert.equal(frames.at(-1), errs[0], 'the error frame is the last one');
  const body = JSON.parse(errs[0]).error;
  assert.equal(body.code, '500');
  assert.equal(typeof body.message, 'string');
});

test('stream: an upstream error before the first byte is a plain HTTP error (RateLimitError)', async () => {
  await expectApiError(
    sdk.chat.completions.create({ model: 'gpt-4o', messages: USER_HI, stream: true, mock: { status: 429 } }),
    OpenAI.RateLimitError,
    { status: 429, code: '429', type: 'throttling_error', message: /^litellm\.RateLimitError: RateLimitError: OpenAIException - .*\. Received Model Group=gpt-4o\nAvailable Model Group Fallbacks=None$/s },
  );
});

test('stream: a client that stops reading makes moongate close the upstream request', async () => {
  const before = (await mock.stats()).last_seq;
  const stream = await sdk.chat.completions.create({
    model: 'gpt-4o', messages: USER_HI, stream: true,
    mock: { content: words(200, 'slow'), chunk_interval_ms: 50, id: 'walk-away' },
  });
  let n = 0;
  for await (const ch of stream) {
    if (ch.choices?.[0]?.delta?.content) n++;
    if (n === 2) break; // the SDK aborts the request when the loop is left
  }
  assert.equal(n, 2);
  const e = await waitFor(async () => {
    const log = await mock.log(before);
    const x = log.find((l) => l.behaviour_id === 'walk-away');
    return x && x.outcome !== 'in_progress' && x;
  }, { timeout: 10000, what: 'the upstream stream to be closed' });
  assert.equal(e.outcome, 'client_closed');
  assert.ok(e.chunks_sent < 200, `the upstream stream was cut short (${e.chunks_sent} chunks)`);
});

test('the SDK\'s default retries recover from one upstream 500', async () => {
  await mock.script({ rules: [{ match: { model: 'gpt-4o-retry' }, times: 1, respond: { status: 500 } }] });
  try {
    const before = (await mock.stats()).last_seq;
    const retrying = client(gw, { maxRetries: undefined }); // the SDK default (2)
    assert.equal(retrying.maxRetries, 2);
    const r = await retrying.chat.completions.create({ model: 'retry-me', messages: USER_HI });
    assert.equal(r.choices[0].message.content, 'mock reply from gpt-4o-retry');
    assert.equal(r.model, 'retry-me');
    const log = (await mock.log(before)).filter((x) => x.model === 'gpt-4o-retry');
    assert.deepEqual(log.map((x) => x.status), [500, 200], 'one failure, then the SDK retry succeeded');
  } finally {
    await mock.script({ rules: [] });
  }
});
