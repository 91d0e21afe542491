// Startup readiness, as a client (or an orchestrator's probe) sees it: once
// every worker has loaded the registry and serves, /health/readiness says 200.
//
// Found by the e2e suite: now and then the probe stays 503 ("not every worker
// has loaded the registry yet", a worker shown as "loading") although that
// worker reports "ready" itself and answers requests.  Many workers and a few
// starts make the race likely enough to show.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, mockModel, waitFor } from '../lib/harness.mjs';
import { client, USER_HI, startGw } from './lib.mjs';

const mock = await startMock();
after(async () => { await mock.stop(); });

const STARTS = 8;
const WORKERS = 6;

test('/health/readiness turns 200 once every worker has loaded the registry', {
}, async () => {
  for (let i = 0; i < STARTS; i++) {
    const gw = await startGw({
      config: {
        model_list: [mockModel(mock, 'gpt-4o', { model: 'openai/gpt-4o-mini' })],
        general_settings: { master_key: 'sk-e2e-ready' },
      },
      workers: WORKERS,
    });
    try {
      // every worker says it is ready and the gateway answers
      const r = await client(gw).chat.completions.create({ model: 'gpt-4o', messages: USER_HI });
      assert.equal(r.model, 'gpt-4o');
      let last = null;
      try {
        await waitFor(async () => {
          const res = await fetch(`${gw.url}/health/readiness`);
          last = { status: res.status, body: await res.text() };
          return res.status === 200;
        }, { timeout: 3000, what: 'readiness' });
      } catch {
        assert.fail(`start ${i}: every worker reports ready, but /health/readiness is ${last?.status}: ${last?.body}`);
      }
    } finally {
      await gw.stop();
    }
  }
});
