// Cooldowns are shared by every worker of an instance.  4 workers, a group of
// two deployments; one answers 429 once (router cooldown_time 3 s): until the
// cooldown is over, requests on every worker avoid it; afterwards it is used
// again.  With both deployments cooled down, every worker answers LiteLLM's
// "No deployments available" 429 naming both.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, mockModel, waitFor } from '../lib/harness.mjs';
import { req, chatBody } from './lib_policy.mjs';

const KEY = 'sk-test-policy-cooldown';
const WORKERS = 4;
const COOLDOWN_MS = 3000;

const mock = await startMock();
const gw = await startGateway({
  config: {
    model_list: [
      mockModel(mock, 'cg', { model: 'openai/up-bad', info: { id: 'c-bad' } }),
      mockModel(mock, 'cg', { model: 'openai/up-good', info: { id: 'c-good' } }),
      mockModel(mock, 'both', { model: 'openai/up-b1', info: { id: 'b1' } }),
      mockModel(mock, 'both', { model: 'openai/up-b2', info: { id: 'b2' } }),
    ],
    router_settings: { cooldown_time: COOLDOWN_MS / 1000 },
    general_settings: { master_key: KEY },
  },
  workers: WORKERS,
});
after(async () => { await gw.stop(); await mock.stop(); });

const chat = (model, content = 'hi') =>
  req(gw.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: chatBody(model, content) });

test('a deployment cooled down after a 429 is avoided by every worker until the cooldown ends, then used again', { timeout: 60000 }, async () => {
  await mock.script({ rules: [{ match: { model: 'up-bad' }, respond: { status: 429 } }] });
  const since = (await mock.stats()).last_seq;
  // until one request has met the 429 (its retry then goes to c-good)
  let e429 = null;
  for (let i = 0; i < 200 && !e429; i++) {
    const r = await chat('cg', `warm-${i}`);
    assert.equal(r.status, 200, r.text);
    e429 = (await mock.log(since)).find((e) => e.model === 'up-bad' && e.status === 429);
  }
  assert.ok(e429, 'no request reached c-bad');
  // from now on c-bad would answer 200: any request that reaches it shows in the log
  await mock.script({ rules: [] });
  const coolEnd = e429.t_end_ms + COOLDOWN_MS; // the cooldown started after the mock answered

  const perWorker = new Map();
  const during = [];
  for (let i = 0; i < 5000 && Date.now() < coolEnd - 250; i++) {
    const r = await chat('cg', `cool-${i}`);
    if (r.tRecv >= coolEnd) break;
    assert.equal(r.status, 200, r.text);
    during.push(r);
    perWorker.set(r.worker, (perWorker.get(r.worker) || 0) + 1);
    if ([...perWorker.values()].length === WORKERS && [...perWorker.values()].every((n) => n >= 10)) break;
  }
  const wrong = during.filter((r) => r.modelId !== 'c-good');
  assert.deepEqual(wrong.map((r) => `worker ${r.worker}: ${r.modelId}`), [], 'requests during the cooldown');
  assert.equal(perWorker.size, WORKERS, `workers seen during the cooldown: ${JSON.stringify([...perWorker])}`);
  console.log(`  ${during.length} requests during the ${COOLDOWN_MS} ms cooldown, per worker ${JSON.stringify([...perWorker])}`);

  // after the cooldown c-bad is picked again, on every worker
  const back = new Set();
  const problems = [];
  await waitFor(async () => {
    const r = await chat('cg', 'after');
    if (r.status !== 200) problems.push(`status ${r.status}: ${r.text}`);
    if (r.modelId === 'c-bad') {
      if (r.tRecv < coolEnd) problems.push(`worker ${r.worker} used c-bad ${coolEnd - r.tRecv} ms before the cooldown ended`);
      back.add(r.worker);
    }
    return back.size === WORKERS;
  }, { timeout: 20000, interval: 1, what: 'c-bad used again by every worker' });
  assert.deepEqual(problems, []);
  const badDuring = (await mock.log(since)).filter((e) => e.model === 'up-bad' && e.seq > e429.seq && e.t_start_ms < coolEnd);
  assert.deepEqual(badDuring.map((e) => e.t_start_ms - e429.t_end_ms), [], 'c-bad was called during its cooldown (ms after the 429)');
});

test('both deployments cooled down: every worker answers 429 "No deployments available" naming both', { timeout: 60000 }, async () => {
  await mock.script({ rules: [{ match: { model: 'up-b1' }, respond: { status: 429 } }, { match: { model: 'up-b2' }, respond: { status: 429 } }] });
  // the first request meets both 429s (one try each, num_retries 2)
  const first = await chat('both', 'both-0');
  assert.equal(first.status, 429, first.text);
  const t0 = Date.now();
  await mock.script({ rules: [] });
  const seen = new Map();
  for (let i = 1; i < 400 && seen.size < WORKERS && Date.now() - t0 < COOLDOWN_MS - 500; i++) {
    const r = await chat('both', `both-${i}`);
    if (Date.now() - t0 >= COOLDOWN_MS - 500) break;
    assert.equal(r.status, 429, `worker ${r.worker}: ${r.text}`);
    assert.match(r.json.error.message, /^No deployments available for selected model, Try again in 3 seconds\. Passed model=both\. pre-call-checks=False, cooldown_list=\[/);
    assert.match(r.json.error.message, /'b1'/);
    assert.match(r.json.error.message, /'b2'/);
    seen.set(r.worker, r.json.error.message);
  }
  assert.equal(seen.size, WORKERS, `workers that answered during the cooldown: ${[...seen.keys()]}`);
  // and after it, the group serves again
  await waitFor(async () => (await chat('both', 'both-after')).status === 200,
    { timeout: 15000, what: 'the group serving after the cooldown' });
});
