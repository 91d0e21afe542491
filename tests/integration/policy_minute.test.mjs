// Per-minute limits end with their minute.  usage-based-routing-v2 (LiteLLM
// keys rpm/tpm by "HH-MM"): a deployment that reached its rpm in one minute is
// usable again in the next.  Waits for the wall-clock minute to change (up
// to 60 s).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, mockModel, waitFor } from '../lib/harness.mjs';
import { req, chatBody } from './lib_policy.mjs';

const KEY = 'sk-test-policy-minute';
const mock = await startMock();
const gw = await startGateway({
  config: {
    model_list: [mockModel(mock, 'one', { model: 'openai/up-one', info: { id: 'one-1' }, extra: { rpm: 2 } })],
    router_settings: { routing_strategy: 'usage-based-routing-v2' },
    general_settings: { master_key: KEY },
  },
  workers: 2,
});
after(async () => { await gw.stop(); await mock.stop(); });

const chat = () => req(gw.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: chatBody('one') });

test('a deployment that reached its rpm in one minute serves again in the next', {
  timeout: 90000,
}, async () => {
  let limited = null;
  for (let i = 0; i < 10 && !limited; i++) {
    const r = await chat();
    if (r.status === 429) limited = r;
    else assert.equal(r.status, 200, r.text);
  }
  assert.ok(limited, 'rpm 2 was never reached');
  const minute = Math.floor(limited.tRecv / 60000);
  await waitFor(() => Math.floor(Date.now() / 60000) > minute, { timeout: 65000, interval: 200, what: 'the next minute' });
  const r = await chat();
  assert.equal(r.status, 200, `a new minute, yet: ${r.text}`);
});
