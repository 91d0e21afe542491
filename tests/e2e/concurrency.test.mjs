// Concurrency sanity through the official openai npm client: 50 streams at
// once (bounded), each with its own content, all complete and none mixes up
// another's chunks.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, mockModel, waitFor } from '../lib/harness.mjs';
import { client, USER_HI, wordChunks, words, collectChat, startGw } from './lib.mjs';

const N = 50;
const mock = await startMock();
const gw = await startGw({
  config: {
    model_list: [
      mockModel(mock, 'gpt-4o', { model: 'openai/gpt-4o-mini' }),
      mockModel(mock, 'gpt-4o', { model: 'openai/gpt-4o-mini-b' }),
    ],
    general_settings: { master_key: 'sk-e2e-concurrency' },
  },
  workers: 2,
});
after(async () => { await gw.stop(); await mock.stop(); });

const sdk = client(gw);

test(`${N} parallel streams all complete with their own content`, async () => {
  const before = (await mock.stats()).last_seq;
  const results = await Promise.all(Array.from({ length: N }, async (_, i) => {
    const content = words(6, `r${i}x`);
    const stream = await sdk.chat.completions.create({
      model: 'gpt-4o', messages: [{ role: 'user', content: `stream ${i}` }], stream: true,
      stream_options: { include_usage: true },
      mock: { content, chunk_interval_ms: 20, id: `par-${i}` },
    });
    return { i, content, st: await collectChat(stream) };
  }));
  for (const { i, content, st } of results) {
    assert.deepEqual(st.deltas, wordChunks(content), `stream ${i} got its own chunks in order`);
    assert.equal(st.finish, 'stop', `stream ${i} finished`);
    assert.ok(st.usage, `stream ${i} got its usage chunk`);
    assert.equal(new Set(st.chunks.map((c) => c.id)).size, 1, `stream ${i} has one id`);
  }
  assert.equal(new Set(results.map((r) => r.st.chunks[0].id)).size, N, 'every stream is a different response');

  const log = (await mock.log(before)).filter((e) => e.behaviour_id?.startsWith('par-'));
  assert.equal(log.length, N, 'each stream reached the upstream exactly once');
  assert.ok(log.every((e) => e.outcome === 'complete' && e.status === 200));
  // the streams really overlapped: some upstream stream started before another ended
  const sorted = [...log].sort((a, b) => a.t_start_ms - b.t_start_ms);
  assert.ok(sorted.some((e, k) => k > 0 && e.t_start_ms < sorted[k - 1].t_end_ms), 'the streams ran concurrently');

  // nothing is left in flight in the gateway (the state request itself counts once)
  await waitFor(async () => (await gw.state()).workers.reduce((n, w) => n + w.in_flight, 0) <= 1,
    { what: 'the gateway to have no stream left in flight', timeout: 10000 });
});

test(`${N} parallel plain requests mixed with streams`, async () => {
  const jobs = Array.from({ length: N }, async (_, i) => {
    if (i % 2) {
      const r = await sdk.chat.completions.create({
        model: 'gpt-4o', messages: USER_HI, mock: { content: `plain answer ${i}` },
      });
      assert.equal(r.choices[0].message.content, `plain answer ${i}`);
      return 'plain';
    }
    const content = words(4, `m${i}y`);
    const st = await collectChat(await sdk.chat.completions.create({
      model: 'gpt-4o', messages: USER_HI, stream: true, mock: { content, chunk_interval_ms: 10 },
    }));
    assert.equal(st.text, content);
    return 'stream';
  });
  const kinds = await Promise.all(jobs);
  assert.equal(kinds.filter((k) => k === 'stream').length, N / 2);
});
