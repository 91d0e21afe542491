// Virtual keys on the request path, exact over 4 workers: blocked, expired and unknown keys,
// model lists, rpm/tpm windows, max parallel requests, budgets that concurrency cannot
// overshoot, team limits, the x-ratelimit and x-litellm-key-* headers, and the official openai
// client's error classes.  Keys are written into the embedded store the way another instance
// sharing the state directory would (tests/lib/journal.mjs); the management routes have their
// own tests.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import OpenAI from 'openai';
import { startMock, startGateway, mockModel, pool, waitFor, tmpDir } from '../lib/harness.mjs';
import { putKey, identPut, sha256hex } from '../lib/journal.mjs';

const MASTER = 'sk-limits-master-000111222333';
const K = {
  rpm: 'sk-limits-rpm-aaaaaaaaaaaaaaaa',
  budget: 'sk-limits-budget-bbbbbbbbbbbbbb',
  models: 'sk-limits-models-cccccccccccccc',
  blocked: 'sk-limits-blocked-dddddddddddd',
  expired: 'sk-limits-expired-eeeeeeeeeeee',
  parallel: 'sk-limits-parallel-ffffffffffff',
  tpm: 'sk-limits-tpm-gggggggggggggggg',
  team: 'sk-limits-team-hhhhhhhhhhhhhhh',
  plain: 'sk-limits-plain-iiiiiiiiiiiiii',
  blockedTeam: 'sk-limits-bteam-jjjjjjjjjjjjjj',
};

const mock = await startMock();
const dir = tmpDir('mg-limits-');
const state = path.join(dir, 'state');
putKey(state, K.rpm, { rpm_limit: 100, key_alias: 'rpm-key' });
// each request costs 10 * 1e-4 + 20 * 1e-4 = $0.003 (the mock's usage: 10 in, 20 out)
putKey(state, K.budget, { max_budget: 0.01 });
putKey(state, K.models, { models: ['gpt-4o'] });
putKey(state, K.blocked, { blocked: true });
putKey(state, K.expired, { expires: '2020-01-01T00:00:00Z' });
putKey(state, K.parallel, { max_parallel_requests: 2 });
putKey(state, K.tpm, { tpm_limit: 50 });
identPut(state, 'team', 'team-a', { team_id: 'team-a', team_alias: 'Team A', rpm_limit: 5, models: ['gpt-4o', 'priced'] });
putKey(state, K.team, { team_id: 'team-a' });
identPut(state, 'team', 'team-b', { team_id: 'team-b', blocked: true });
putKey(state, K.blockedTeam, { team_id: 'team-b' });
putKey(state, K.plain, {});

const gw = await startGateway({
  config: {
    model_list: [
      mockModel(mock, 'gpt-4o'),
      mockModel(mock, 'other'),
      mockModel(mock, 'priced', { info: { input_cost_per_token: 1e-4, output_cost_per_token: 1e-4 } }),
    ],
    general_settings: { master_key: MASTER },
    router_settings: { num_retries: 0 },
  },
  workers: 4,
  stateDir: state,
  dir,
});
after(async () => { await gw.stop(); await mock.stop(); });

const chat = (key, body = {}, headers = {}) =>
  // a new connection per request: the kernel spreads them over the workers
  fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, connection: 'close', ...headers },
    body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], ...body }),
  }).then(async (r) => {
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: r.status, headers: r.headers, json, text, worker: r.headers.get('x-moongate-worker') };
  });

test('a key without limits works; the master key still works', async () => {
  const r = await chat(K.plain);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-litellm-key-spend'), '0.0');
  assert.equal(r.headers.get('x-litellm-key-max-budget'), null, 'no budget: no header');
  const m = await chat(MASTER);
  assert.equal(m.status, 200);
  assert.equal(m.headers.get('x-litellm-key-spend'), null, 'the master key has no spend header');
});

test('unknown, blocked and expired keys get 401 with LiteLLM\'s messages; nothing reaches the provider', async () => {
  const before = (await mock.stats()).requests;
  const u = await chat('sk-limits-unknown-zzzzzzzzzzzz');
  assert.equal(u.status, 401);
  assert.equal(u.json.error.type, 'token_not_found_in_db');
  assert.match(u.json.error.message, new RegExp(`Key Hash \\(Token\\) =${sha256hex('sk-limits-unknown-zzzzzzzzzzzz')}\\.`));
  const b = await chat(K.blocked);
  assert.equal(b.status, 401);
  assert.equal(b.json.error.message, 'Authentication Error, Key is blocked. Update via `/key/unblock` if you\'re admin.');
  const e = await chat(K.expired);
  assert.equal(e.status, 401);
  assert.equal(e.json.error.type, 'expired_key');
  assert.match(e.json.error.message, /^Authentication Error - Expired Key\. Key Expiry time 2020-01-01T00:00:00/);
  // the stored hash is not a key: whoever reads the table cannot call with it
  const h = await chat(sha256hex(K.plain));
  assert.equal(h.status, 401);
  const t = await chat(K.blockedTeam);
  assert.equal(t.status, 401);
  assert.match(t.json.error.message, /Team=team-b is blocked/);
  assert.equal((await mock.stats()).requests, before);
});

test('model lists: a key and its team may call only their models', async () => {
  assert.equal((await chat(K.models)).status, 200);
  const r = await chat(K.models, { model: 'other' });
  assert.equal(r.status, 401);
  assert.equal(r.json.error.type, 'key_model_access_denied');
  assert.equal(r.json.error.message, "key not allowed to access model. This key can only access models=['gpt-4o']. Tried to access other");
  const t = await chat(K.team, { model: 'other' });
  assert.equal(t.status, 401);
  assert.equal(t.json.error.type, 'team_model_access_denied');
});

test('rpm_limit 100 over 4 workers, 400 requests: exactly 100 succeed; the rest get LiteLLM\'s 429', async () => {
  const res = await pool(400, 16, () => chat(K.rpm));
  const ok = res.filter((r) => r.status === 200);
  const limited = res.filter((r) => r.status === 429);
  assert.equal(ok.length, 100, `succeeded: ${ok.length}`);
  assert.equal(limited.length, 300);
  assert.ok(new Set(res.map((r) => r.worker)).size >= 2, 'several workers answered');
  const m = limited[0].json.error.message;
  assert.match(m, new RegExp(`^Rate limit exceeded for api_key: (${sha256hex(K.rpm)}|\\.\\.\\.${sha256hex(K.rpm).slice(-4)})\\. Limit type: requests\\. Current limit: 100, Remaining: 0\\. Limit resets at: \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC$`));
  assert.ok(Number(limited[0].headers.get('retry-after')) >= 1);
  // the headers of the admitted ones count down to 0
  const rem = ok.map((r) => Number(r.headers.get('x-ratelimit-remaining-requests'))).sort((a, b) => a - b);
  assert.deepEqual(rem, Array.from({ length: 100 }, (_, i) => i));
  assert.equal(ok[0].headers.get('x-ratelimit-limit-requests'), '100');
});

test('the official openai client: RateLimitError for a limited key, AuthenticationError for a wrong one', async () => {
  const limited = new OpenAI({ apiKey: K.rpm, baseURL: `${gw.url}/v1`, maxRetries: 0 });
  await assert.rejects(limited.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.RateLimitError && e.status === 429);
  const wrong = new OpenAI({ apiKey: 'sk-limits-wrong-kkkkkkkkkkkkk', baseURL: `${gw.url}/v1`, maxRetries: 0 });
  await assert.rejects(wrong.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
});

test('a team\'s rpm_limit holds for all its keys together', async () => {
  const res = await pool(20, 8, () => chat(K.team));
  assert.equal(res.filter((r) => r.status === 200).length, 5);
  const l = res.find((r) => r.status === 429);
  assert.match(l.json.error.message, /^Rate limit exceeded for team: team-a\. Limit type: requests\. Current limit: 5/);
});

test('a budget of $0.01 with $0.003 requests: admitted while the spend is below it (LiteLLM\'s rule), refused after; concurrency adds no overshoot', async () => {
  // a concurrent burst first: reservations of the requests in flight count, so the burst
  // cannot spend more than requests sent one after another would
  await mock.script({ default: { usage: { prompt_tokens: 10, completion_tokens: 20 } } });
  const burst = await pool(40, 16, () => chat(K.budget, { model: 'priced', max_tokens: 20 }));
  const burstOk = burst.filter((r) => r.status === 200).length;
  assert.ok(burstOk >= 1 && burstOk <= 4, `burst admitted ${burstOk}`);
  // then one at a time until refused
  const seq = [];
  for (let i = 0; i < 10; i++) {
    const r = await chat(K.budget, { model: 'priced', max_tokens: 20 });
    seq.push(r);
    if (r.status !== 200) break;
  }
  const total = burstOk + seq.filter((r) => r.status === 200).length;
  // $0.003 each: the 4th request starts at $0.009 < $0.01 and crosses it; the 5th is refused
  assert.equal(total, 4, `requests admitted in all: ${total}`);
  const refused = seq[seq.length - 1];
  assert.equal(refused.status, 400);
  assert.equal(refused.json.error.type, 'budget_exceeded');
  assert.match(refused.json.error.message, /^Budget has been exceeded! Current cost: 0\.012[0-9]*, Max budget: 0\.01$/);
  // every worker refuses it, with the same settled spend: one request at a time until three
  // workers answered (the kernel picks the worker; bounded at 120 requests)
  const workers = new Set();
  for (let i = 0; i < 120 && (i < 12 || workers.size < 3); i++) {
    const r = await chat(K.budget, { model: 'priced', max_tokens: 20 });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /Current cost: 0\.012/);
    assert.match(r.headers.get('x-litellm-key-spend'), /^0\.012/);
    assert.equal(r.headers.get('x-litellm-key-max-budget'), '0.01');
    workers.add(r.worker);
  }
  assert.ok(workers.size >= 2, `the refusals came from workers ${[...workers]}`);
  await mock.reset();
});

test('max_parallel_requests 2: a third concurrent request gets 429 while two are in flight', async () => {
  await mock.script({ default: { latency_ms: 800 } });
  try {
    const slow = [chat(K.parallel), chat(K.parallel)];
    // wait until both are at the mock
    await waitFor(async () => (await mock.stats()).in_progress >= 2, { what: 'two requests in flight' });
    const third = await chat(K.parallel);
    assert.equal(third.status, 429, third.text);
    assert.match(third.json.error.message, /Limit type: max_parallel_requests\. Current limit: 2/);
    const done = await Promise.all(slow);
    assert.deepEqual(done.map((r) => r.status), [200, 200]);
  } finally {
    await mock.reset();
  }
  // freed: the next one passes
  assert.equal((await chat(K.parallel)).status, 200);
});

test('tpm_limit counts the tokens used (output tokens, as LiteLLM) within the window', async () => {
  // 20 completion tokens each: 50 allows 3 requests (0, 20, 40 < 50), not a 4th
  await mock.script({ default: { usage: { prompt_tokens: 10, completion_tokens: 20 } } });
  const res = [];
  for (let i = 0; i < 5; i++) res.push(await chat(K.tpm));
  await mock.reset();
  assert.deepEqual(res.map((r) => r.status), [200, 200, 200, 429, 429]);
  assert.match(res[3].json.error.message, /Limit type: tokens\. Current limit: 50/);
  assert.equal(res[0].headers.get('x-ratelimit-limit-tokens'), '50');
});

test('streams carry the rate-limit and spend headers too', async () => {
  const r = await chat(K.plain, { stream: true });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-litellm-key-spend') !== null, true);
  assert.match(r.text, /\[DONE\]/);
});
