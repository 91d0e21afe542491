// Embeddings, legacy completions and the model list through the official
// openai npm client.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, mockModel } from '../lib/harness.mjs';
import { client, collectText, wordChunks, words, startGw } from './lib.mjs';

const mock = await startMock();
const gw = await startGw({
  config: {
    model_list: [
      mockModel(mock, 'gpt-4o', { model: 'openai/gpt-4o-mini', key: 'sk-upstream-ep' }),
      mockModel(mock, 'embedder', {
        model: 'openai/text-embedding-3-small', key: 'sk-upstream-emb', info: { mode: 'embedding' },
      }),
      mockModel(mock, 'instruct', { model: 'text-completion-openai/gpt-3.5-turbo-instruct', key: 'sk-upstream-ep' }),
      // a second deployment of gpt-4o: the group is listed once
      mockModel(mock, 'gpt-4o', { model: 'openai/gpt-4o', key: 'sk-upstream-ep' }),
    ],
    router_settings: { num_retries: 0 },
    general_settings: { master_key: 'sk-e2e-endpoints' },
  },
});
after(async () => { await gw.stop(); await mock.stop(); });

const sdk = client(gw);

/** The mock's embedding for `input`, asked for directly in float format. */
async function mockEmbedding(input, extra = {}) {
  const r = await fetch(`${mock.url}/embeddings`, {
    method: 'POST',
    body: JSON.stringify({ model: 'text-embedding-3-small', input, encoding_format: 'float', ...extra }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).data.map((d) => d.embedding);
}

function assertCloseVectors(got, want) {
  assert.equal(got.length, want.length, 'vector length');
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) < 1e-5, `component ${i}: ${got[i]} vs ${want[i]}`);
  }
}

async function logSince(seq, endpoint) {
  return (await mock.log(seq)).filter((e) => e.endpoint === endpoint);
}

test('embeddings: a single string, with the SDK\'s default base64 encoding, decodes end to end', async () => {
  const before = (await mock.stats()).last_seq;
  const r = await sdk.embeddings.create({ model: 'embedder', input: 'The food was delicious' });
  assert.equal(r.object, 'list');
  assert.equal(r.data.length, 1);
  assert.equal(r.data[0].object, 'embedding');
  assert.equal(r.data[0].index, 0);
  assert.ok(Array.isArray(r.data[0].embedding), 'the SDK decoded the base64 vector into numbers');
  assertCloseVectors(r.data[0].embedding, (await mockEmbedding('The food was delicious'))[0]);
  assert.ok(r.usage.prompt_tokens > 0);

  const [e] = await logSince(before, 'embeddings');
  assert.equal(e.body.encoding_format, 'base64', 'the SDK default reaches the upstream');
  assert.equal(e.body.model, 'text-embedding-3-small');
  assert.equal(e.body.input, 'The food was delicious');
  assert.equal(e.headers.authorization, 'Bearer sk-upstream-emb');
});

test('embeddings: an array input gets one vector per item, in order', async () => {
  const input = ['alpha', 'beta', 'gamma'];
  const r = await sdk.embeddings.create({ model: 'embedder', input });
  assert.deepEqual(r.data.map((d) => d.index), [0, 1, 2]);
  const want = await mockEmbedding(input);
  r.data.forEach((d, i) => assertCloseVectors(d.embedding, want[i]));
  assert.notDeepEqual(r.data[0].embedding, r.data[1].embedding, 'different inputs, different vectors');
});

test('embeddings: encoding_format float and dimensions pass through', async () => {
  const before = (await mock.stats()).last_seq;
  const r = await sdk.embeddings.create({
    model: 'embedder', input: ['x', 'y'], encoding_format: 'float', dimensions: 4,
  });
  assert.equal(r.data.length, 2);
  for (const d of r.data) {
    assert.equal(d.embedding.length, 4);
    assert.ok(d.embedding.every((v) => typeof v === 'number'));
  }
  const [e] = await logSince(before, 'embeddings');
  assert.equal(e.body.encoding_format, 'float');
  assert.equal(e.body.dimensions, 4);
});

test('embeddings: encoding_format null is never forwarded upstream', async () => {
  const before = (await mock.stats()).last_seq;
  // the SDK replaces a null encoding_format by base64 in embeddings.create, so post the raw body
  const r = await sdk.post('/embeddings', {
    body: { model: 'embedder', input: 'null format', encoding_format: null, user: null },
  });
  assert.equal(r.data.length, 1);
  assert.ok(Array.isArray(r.data[0].embedding), 'no format upstream means floats');
  const [e] = await logSince(before, 'embeddings');
  assert.ok(e, 'the request reached the upstream');
  assert.ok(!('encoding_format' in e.body), `encoding_format must not be sent: ${JSON.stringify(e.body)}`);
  assert.ok(!('user' in e.body), `null params must not be sent: ${JSON.stringify(e.body)}`);
});

test('completions (legacy): prompt in, text out, model restamped', async () => {
  const before = (await mock.stats()).last_seq;
  const r = await sdk.completions.create({
    model: 'instruct', prompt: 'Say this is a test', max_tokens: 7,
    mock: { content: 'This is a test', response_id: 'cmpl-e2e-1' },
  });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.id, 'cmpl-e2e-1');
  assert.equal(r.model, 'instruct');
  assert.equal(r.choices[0].text, 'This is a test');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.usage.completion_tokens, 4);
  const [e] = await logSince(before, 'completions');
  assert.equal(e.path, '/v1/completions');
  assert.equal(e.body.model, 'gpt-3.5-turbo-instruct');
  assert.equal(e.body.prompt, 'Say this is a test');
  assert.equal(e.body.max_tokens, 7);
});

test('completions (legacy): stream', async () => {
  const content = words(7, 'c');
  const stream = await sdk.completions.create({
    model: 'instruct', prompt: 'count', stream: true, mock: { content },
  });
  const st = await collectText(stream);
  assert.deepEqual(st.deltas, wordChunks(content));
  assert.equal(st.finish, 'stop');
  for (const ch of st.chunks) {
    assert.equal(ch.object, 'text_completion');
    assert.equal(ch.model, 'instruct');
  }
});

test('models.list: ids are the model groups, object "model", owned_by "openai"', async () => {
  const page = await sdk.models.list();
  assert.deepEqual(page.data.map((m) => m.id), ['gpt-4o', 'embedder', 'instruct']);
  for (const m of page.data) {
    assert.equal(m.object, 'model');
    assert.equal(m.owned_by, 'openai');
    assert.equal(m.created, 1677610602, 'LiteLLM\'s DEFAULT_MODEL_CREATED_AT_TIME');
  }
  const ids = [];
  for await (const m of sdk.models.list()) ids.push(m.id); // the SDK's auto-pagination
  assert.deepEqual(ids, ['gpt-4o', 'embedder', 'instruct']);
  const log = await mock.log();
  assert.ok(!log.some((e) => e.endpoint === 'models'), 'the model list is answered without calling upstream');
});
