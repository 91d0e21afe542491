// SSE streaming: relayed chunk by chunk, [DONE] only on success, one error
// frame on an upstream failure, the upstream request closed within 1 s of a
// client disconnect, and bounded memory for a client that stops reading.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, mockModel, waitFor } from '../lib/harness.mjs';
import { rawConnect, rawJsonPost, sseData, rssKiB, tcpQueues } from './lib_extra.mjs';

const KEY = 'sk-test-master-stream';
const mock = await startMock();
const gw = await startGateway({
  config: {
    model_list: [
      mockModel(mock, 'm', { model: 'openai/up-m' }),
      mockModel(mock, 'big', { model: 'openai/up-big' }),
    ],
    general_settings: { master_key: KEY },
  },
});
after(async () => { await gw.stop(); await mock.stop(); });

let seq = 0;
function streamReq(mockBehaviour, extra = {}) {
  const user = `stream-${++seq}`;
  return {
    user,
    bytes: rawJsonPost('/v1/chat/completions', {
      model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true, user, mock: mockBehaviour, ...extra,
    }, { key: KEY }),
  };
}
async function entryFor(user) {
  return (await mock.log()).find((e) => e.body?.user === user);
}
/** Content frames (JSON) that carry non-empty delta.content. */
function contentFrames(frames) {
  return frames.filter((f) => f !== '[DONE]').map((f) => JSON.parse(f))
    .filter((j) => j.choices?.[0]?.delta?.content);
}

test('a stream is relayed chunk by chunk: the first chunk arrives while the upstream is still sending', async () => {
  const { user, bytes } = streamReq({ chunks: 5, chunk_interval_ms: 300 });
  const c = await rawConnect(gw.port);
  try {
    await c.send(bytes);
    // wait for the first content frame on the client side
    await c.until((b) => contentFrames(sseData(b.toString())).length >= 1, 10000, 'the first content chunk');
    const e = await entryFor(user);
    assert.equal(e.outcome, 'in_progress', 'the upstream has not finished when the client has the first chunk');
    assert.ok(e.chunks_sent < 5, `upstream had sent ${e.chunks_sent} of 5 chunks`);
    const r = await c.response({ timeout: 10000 });
    const frames = sseData(r.body.toString());
    assert.equal(contentFrames(frames).length, 5);
    assert.equal(frames[frames.length - 1], '[DONE]');
    assert.equal(frames.filter((f) => f === '[DONE]').length, 1);
    for (const f of frames.slice(0, -1)) assert.equal(JSON.parse(f).model, 'm', 'chunks carry the requested model name');
    const done = await entryFor(user);
    assert.equal(done.outcome, 'complete');
  } finally { c.destroy(); }
});

test('usage chunks pass through when stream_options.include_usage is set', async () => {
  const { bytes } = streamReq({ chunks: 3 }, { stream_options: { include_usage: true } });
  const c = await rawConnect(gw.port);
  try {
    await c.send(bytes);
    const r = await c.response({ timeout: 10000 });
    const frames = sseData(r.body.toString());
    const usage = frames.filter((f) => f !== '[DONE]').map((f) => JSON.parse(f)).filter((j) => j.usage);
    assert.equal(usage.length, 1);
    assert.deepEqual(usage[0].choices, []);
    assert.ok(usage[0].usage.total_tokens > 0);
    assert.equal(frames[frames.length - 1], '[DONE]');
  } finally { c.destroy(); }
});

test('an upstream reset mid-stream ends with exactly one error frame and no [DONE]', async () => {
  const { user, bytes } = streamReq({ chunks: 6, reset_after_chunks: 2 });
  const c = await rawConnect(gw.port);
  try {
    await c.send(bytes);
    const r = await c.response({ timeout: 10000 });
    assert.equal(r.status, 200);
    const frames = sseData(r.body.toString());
    assert.ok(!frames.includes('[DONE]'), 'no [DONE] after a failure');
    const parsed = frames.map((f) => JSON.parse(f));
    const errors = parsed.filter((j) => j.error);
    assert.equal(errors.length, 1, `one error frame: ${r.body.toString()}`);
    assert.equal(parsed[parsed.length - 1], errors[0], 'the error frame is the last one');
    assert.equal(typeof errors[0].error.message, 'string');
    assert.match(errors[0].error.code, /^\d{3}$/);
    assert.equal(contentFrames(frames).length, 2, 'the two chunks sent before the reset were relayed');
    assert.equal((await entryFor(user)).outcome, 'reset');
  } finally { c.destroy(); }
});

test('an error event from the upstream mid-stream is the last frame: no [DONE] after it',
  async () => {
    for (const done of [false, true]) {
      const chunk = { id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'up-m', choices: [{ index: 0, delta: { content: 'partial' }, finish_reason: null }] };
      const err = { error: { message: 'overloaded mid-stream', type: 'server_error', param: null, code: '500' } };
      const { bytes } = streamReq({ frames: [chunk, err], done });
      const c = await rawConnect(gw.port);
      try {
        await c.send(bytes);
        const r = await c.response({ timeout: 10000 });
        const frames = sseData(r.body.toString());
        assert.ok(!frames.includes('[DONE]'), `done=${done}: no [DONE] after an error: ${JSON.stringify(frames)}`);
        assert.equal(frames.map((f) => JSON.parse(f)).filter((j) => j.error).length, 1);
      } finally { c.destroy(); }
    }
  });

test('an upstream that stalls mid-stream hits stream_timeout: one error frame, no [DONE]', async () => {
  const { user, bytes } = streamReq({ chunks: 6, hang_after_chunks: 2 }, { stream_timeout: 1 });
  const c = await rawConnect(gw.port);
  try {
    await c.send(bytes);
    const r = await c.response({ timeout: 15000 });
    const frames = sseData(r.body.toString());
    assert.ok(!frames.includes('[DONE]'));
    const errors = frames.map((f) => JSON.parse(f)).filter((j) => j.error);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].error.code, '408');
    assert.match(errors[0].error.message, /^litellm\.Timeout: /);
    await waitFor(async () => (await entryFor(user)).outcome !== 'in_progress', { what: 'the upstream request to end' });
    assert.equal((await entryFor(user)).outcome, 'hang_closed', 'moongate closed the stalled upstream request');
  } finally { c.destroy(); }
});

test('an error before the first byte is a plain JSON error, not a stream', async () => {
  const { bytes } = streamReq({ status: 429 }, { num_retries: 0 });
  const c = await rawConnect(gw.port);
  try {
    await c.send(bytes);
    const r = await c.response({ timeout: 10000 });
    assert.equal(r.status, 429);
    assert.match(r.headers['content-type'], /application\/json/);
    assert.match(JSON.parse(r.body).error.message, /^litellm\.RateLimitError: /);
  } finally { c.destroy(); }
});

test('a client that disconnects mid-stream: moongate closes the upstream request within 1 s', async () => {
  const { user, bytes } = streamReq({ chunks: 100, chunk_interval_ms: 100 });
  const c = await rawConnect(gw.port);
  await c.send(bytes);
  await c.until((b) => contentFrames(sseData(b.toString())).length >= 2, 10000, 'two content chunks');
  const tClose = Date.now();
  c.destroy();
  await waitFor(async () => (await entryFor(user)).outcome !== 'in_progress',
    { what: 'the upstream request to end', timeout: 5000 });
  const e = await entryFor(user);
  assert.equal(e.outcome, 'client_closed');
  assert.ok(e.chunks_sent < 100);
  const lag = e.t_end_ms - tClose;
  assert.ok(lag <= 1000, `upstream closed ${lag} ms after the client left (bound: 1000 ms)`);
});

test('a client that disconnects while waiting for the first byte: upstream closed within 1 s', async () => {
  const user = `wait-${++seq}`;
  const c = await rawConnect(gw.port);
  await c.send(rawJsonPost('/v1/chat/completions', {
    model: 'm', messages: [{ role: 'user', content: 'hi' }], user, mock: { latency_ms: 10000 },
  }, { key: KEY }));
  await waitFor(async () => (await entryFor(user))?.outcome === 'in_progress', { what: 'the upstream request to start' });
  const tClose = Date.now();
  c.destroy();
  await waitFor(async () => (await entryFor(user)).outcome !== 'in_progress',
    { what: 'the upstream request to end', timeout: 5000 });
  const e = await entryFor(user);
  assert.equal(e.outcome, 'client_closed');
  assert.ok(e.t_end_ms - tClose <= 1000, `upstream closed ${e.t_end_ms - tClose} ms after the client left`);
});

test('clients that reset mid-stream do not hurt the worker', async () => {
  const pid = (await gw.workerPids())[0];
  const before = (await mock.log()).length;
  const conns = [];
  for (let i = 0; i < 20; i++) {
    const { bytes } = streamReq({ chunks: 50, chunk_interval_ms: 20 });
    const c = await rawConnect(gw.port);
    await c.send(bytes);
    conns.push(c);
  }
  for (const c of conns) {
    await c.until((b) => contentFrames(sseData(b.toString())).length >= 1, 10000, 'a chunk');
    c.sock.resetAndDestroy(); // RST, not FIN
  }
  await waitFor(async () => (await mock.log()).slice(before).every((e) => e.outcome !== 'in_progress'),
    { what: 'every upstream request to end', timeout: 5000 });
  const ups = (await mock.log()).slice(before);
  assert.equal(ups.length, 20);
  assert.ok(ups.every((e) => e.outcome === 'client_closed'), JSON.stringify(ups.map((e) => e.outcome)));
  assert.deepEqual(await gw.workerPids(), [pid], 'the same worker is still running');
  const r = await gw.chat({ model: 'm', messages: [{ role: 'user', content: 'x' }] });
  assert.equal(r.status, 200);
});

test('a client that stops reading costs bounded memory: the upstream is held back (backpressure)', async (t) => {
  const CHUNKS = 1536;
  const CHUNK = 32 * 1024;
  const TOTAL = CHUNKS * CHUNK; // 48 MiB of content
  const content = 'x'.repeat(TOTAL);
  await mock.script({ append: true, rules: [{ match: { model: 'up-big' }, respond: { content, chunks: CHUNKS } }] });
  const pid = (await gw.workerPids())[0];
  const rss0 = rssKiB(pid);
  const user = `big-${++seq}`;
  const c = await rawConnect(gw.port);
  try {
    await c.send(rawJsonPost('/v1/chat/completions', {
      model: 'big', messages: [{ role: 'user', content: 'hi' }], stream: true, user,
    }, { key: KEY }));
    await c.until(() => c.bytesIn > 64 * 1024, 20000, 'the first 64 KiB');
    c.pause(); // stop reading: the kernel buffers fill up, then moongate must stop reading upstream

    // wait until nothing moves any more: the client's received bytes, moongate's RSS and the
    // mock's unsent queue are the same over consecutive polls
    let last = null;
    let stable = 0;
    let peak = rss0;
    await waitFor(() => {
      const rss = rssKiB(pid);
      peak = Math.max(peak, rss);
      const q = tcpQueues(mock.port).filter((x) => x.state === '01').reduce((a, x) => a + x.tx, 0);
      const now = `${c.bytesIn}/${q}`;
      stable = now === last ? stable + 1 : 0;
      last = now;
      return stable >= 5;
    }, { timeout: 30000, interval: 100, what: 'the stream to stall' });

    const e = await entryFor(user);
    const mockUnsent = tcpQueues(mock.port).filter((x) => x.state === '01').reduce((a, x) => a + x.tx, 0);
    const rssStall = rssKiB(pid);
    peak = Math.max(peak, rssStall);
    const growthKiB = peak - rss0;
    t.diagnostic(`worker RSS before ${rss0} KiB, peak while stalled ${peak} KiB (+${growthKiB} KiB); ` +
      `stream ${TOTAL >> 20} MiB; client had ${c.bytesIn} bytes; mock socket send queue ${mockUnsent} bytes; ` +
      `mock entry outcome ${e.outcome}, chunks generated ${e.chunks_sent}/${CHUNKS}`);
    assert.equal(e.outcome, 'in_progress', 'the mock cannot finish: its writes are held back');
    assert.ok(mockUnsent > 0, 'data waits in the mock\'s socket: moongate stopped reading upstream');
    assert.ok(c.bytesIn < TOTAL / 2, `most of the stream is still upstream (client has ${c.bytesIn})`);
    assert.ok(growthKiB < 16 * 1024, `worker RSS grew by ${growthKiB} KiB while ${TOTAL >> 20} MiB were pending`);

    // resume: everything arrives, intact
    c.resume();
    await c.until(() => c.endsWith('data: [DONE]\n\n\r\n0\r\n\r\n'), 60000, 'the end of the stream');
    const r = await c.response({ timeout: 5000 });
    const frames = sseData(r.body.toString());
    assert.equal(frames[frames.length - 1], '[DONE]');
    const text = contentFrames(frames).map((j) => j.choices[0].delta.content).join('');
    assert.equal(text.length, TOTAL);
    await waitFor(async () => (await entryFor(user)).outcome === 'complete', { what: 'the mock to finish' });
  } finally { c.destroy(); }
});
