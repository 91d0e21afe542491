// The basic path: a request through moongate reaches the mock provider with
// the deployment's credentials and comes back in OpenAI's shape.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, mockModel } from '../lib/harness.mjs';

const mock = await startMock();
const gw = await startGateway({
  config: {
    model_list: [mockModel(mock, 'gpt-4o', { model: 'openai/gpt-4o-mini', key: 'sk-upstream-k1' })],
    general_settings: { master_key: 'sk-test-master' },
  },
  workers: 2,
});
after(async () => { await gw.stop(); await mock.stop(); });

test('chat completion is forwarded with the deployment model and key', async () => {
  const r = await gw.chat({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], metadata: { x: 1 } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.object, 'chat.completion');
  assert.equal(r.json.model, 'gpt-4o');
  const log = await mock.log();
  const last = log[log.length - 1];
  assert.equal(last.headers.authorization, 'Bearer sk-upstream-k1');
  assert.equal(last.body.model, 'gpt-4o-mini');
  assert.equal(last.body.metadata, undefined, 'LiteLLM-only fields are not forwarded');
});

test('an unknown model gets LiteLLM\'s 400', async () => {
  const r = await gw.chat({ model: 'nope', messages: [] });
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /Invalid model name passed in model=nope/);
  assert.equal(r.json.error.code, '400');
});
