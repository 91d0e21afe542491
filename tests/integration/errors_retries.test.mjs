// LiteLLM's router semantics on failures: retries (num_retries, default 2; never
// on 404), fallbacks in order with the "Received Model Group" suffix,
// request-level fallbacks, disable_fallbacks, and cooldowns.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, mockModel } from '../lib/harness.mjs';

const KEY = 'sk-test-master-retry';
const mock = await startMock();
const fail = (key, respond, times) => ({ match: { auth: `Bearer ${key}` }, respond, ...(times ? { times } : {}) });
await mock.script({
  rules: [
    fail('k-r2a', { status: 500, error_message: 'boom' }), fail('k-r2b', { status: 500, error_message: 'boom' }),
    fail('k-404a', { status: 404, error_message: 'gone', error_type: 'not_found_error' }),
    fail('k-404b', { status: 404, error_message: 'gone', error_type: 'not_found_error' }),
    fail('k-rqa', { status: 500 }), fail('k-rqb', { status: 500 }),
    { match: { model: 'up-recover' }, times: 2, respond: { status: 500 } },
    fail('k-fa', { status: 500, error_message: 'boom-fa', error_type: 'server_error' }),
    fail('k-fb', { status: 500, error_message: 'boom-fb', error_type: 'server_error' }),
    fail('k-ga', { status: 500, error_message: 'boom-ga', error_type: 'server_error' }),
    fail('k-gb', { status: 503, error_message: 'down-gb', error_type: 'server_error' }),
    fail('k-ra', { status: 500, error_message: 'boom-ra', error_type: 'server_error' }),
    fail('k-cd1', { status: 429, error_message: 'slow down' }), fail('k-cd2', { status: 429, error_message: 'slow down' }),
  ],
});
const dep = (group, key, id, extra = {}) => mockModel(mock, group, { model: `openai/up-${group}`, key, info: { id }, extra });
const fallbackGroups = [dep('fa', 'k-fa', 'fa-1'), dep('fb', 'k-fb', 'fb-1'), dep('fc', 'k-fc', 'fc-1'),
  dep('ga', 'k-ga', 'ga-1'), dep('gb', 'k-gb', 'gb-1'), dep('ra', 'k-ra', 'ra-1')];
// gw: no router fallbacks, so errors end "Available Model Group Fallbacks=None"
const gw = await startGateway({
  config: {
    model_list: [
      dep('r2', 'k-r2a', 'r2-a'), dep('r2', 'k-r2b', 'r2-b'),
      dep('r404', 'k-404a', 'r404-a'), dep('r404', 'k-404b', 'r404-b'),
      dep('rq', 'k-rqa', 'rq-a'), dep('rq', 'k-rqb', 'rq-b'),
      dep('recover', 'k-rec1', 'rec-1'), dep('recover', 'k-rec2', 'rec-2'),
      dep('cd', 'k-cd1', 'cd-1', { cooldown_time: 30 }), dep('cd', 'k-cd2', 'cd-2', { cooldown_time: 30 }),
      ...fallbackGroups,
    ],
    general_settings: { master_key: KEY },
  },
  workers: 2,
});
// gwf: router fallbacks configured
const gwf = await startGateway({
  config: {
    model_list: fallbackGroups,
    general_settings: { master_key: KEY },
    router_settings: { fallbacks: [{ fa: ['fb', 'fc'] }, { ga: ['gb'] }] },
  },
  workers: 2,
});
after(async () => { await gw.stop(); await gwf.stop(); await mock.stop(); });

const msgs = [{ role: 'user', content: 'hi' }];
/** Runs fn and returns the upstream requests (mock log entries) it caused. */
async function upstreamOf(fn) {
  const before = (await mock.log()).length;
  const r = await fn();
  return { r, log: (await mock.log()).slice(before) };
}

test('num_retries defaults to 2: three attempts, then LiteLLM\'s error with the group suffix', async () => {
  const { r, log } = await upstreamOf(() => gw.chat({ model: 'r2', messages: msgs }));
  assert.equal(r.status, 500, r.text);
  assert.equal(log.length, 3, 'one try and two retries');
  assert.ok(log.every((e) => e.model === 'up-r2'));
  assert.equal(r.json.error.message, 'litellm.InternalServerError: InternalServerError: OpenAIException - boom' +
    '. Received Model Group=r2\nAvailable Model Group Fallbacks=None');
});

test('a 404 is never retried', async () => {
  const { r, log } = await upstreamOf(() => gw.chat({ model: 'r404', messages: msgs }));
  assert.equal(r.status, 404, r.text);
  assert.equal(log.length, 1);
  assert.match(r.json.error.message, /^litellm\.NotFoundError: NotFoundError: OpenAIException - gone\. Received Model Group=r404/);
});

test('num_retries from the request', async () => {
  const { r, log } = await upstreamOf(() => gw.chat({ model: 'rq', messages: msgs, num_retries: 1 }));
  assert.equal(r.status, 500);
  assert.equal(log.length, 2);
  assert.ok(log.every((e) => e.body.num_retries === undefined), 'num_retries is not forwarded');
});

test('a retry that succeeds: 200 with x-litellm-attempted-retries', async () => {
  const { r, log } = await upstreamOf(() => gw.chat({ model: 'recover', messages: msgs }));
  assert.equal(r.status, 200, r.text);
  assert.equal(log.length, 3);
  assert.deepEqual(log.map((e) => e.status), [500, 500, 200]);
  assert.equal(r.headers.get('x-litellm-attempted-retries'), '2');
  assert.equal(r.headers.get('x-litellm-max-retries'), '2');
  assert.equal(r.headers.get('x-litellm-attempted-fallbacks'), '0');
});

test('fallbacks are tried in order; the first that works answers', async () => {
  const { r, log } = await upstreamOf(() => gwf.chat({ model: 'fa', messages: msgs, num_retries: 0 }));
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(log.map((e) => e.model), ['up-fa', 'up-fb', 'up-fc']);
  assert.equal(r.headers.get('x-litellm-model-group'), 'fc');
  assert.equal(r.headers.get('x-litellm-model-id'), 'fc-1');
  assert.equal(r.headers.get('x-litellm-attempted-fallbacks'), '2');
  assert.equal(r.json.model, 'fa', 'the response names the model the client asked for');
});

test('when every fallback fails: the first error, the fallback list and the last fallback error', async () => {
  const { r, log } = await upstreamOf(() => gwf.chat({ model: 'ga', messages: msgs, num_retries: 0 }));
  assert.equal(r.status, 500, r.text);
  assert.deepEqual(log.map((e) => e.model), ['up-ga', 'up-gb']);
  const m = r.json.error.message;
  assert.ok(m.startsWith('litellm.InternalServerError: InternalServerError: OpenAIException - boom-ga. Received Model Group='), m);
  assert.ok(m.includes("\nAvailable Model Group Fallbacks=['gb']\nError doing the fallback: " +
    'litellm.ServiceUnavailableError: ServiceUnavailableError: OpenAIException - down-gb'), m);
  assert.equal(r.json.error.code, '500');
});

test('when every fallback fails, "Received Model Group" names the group the client asked for',
  async () => {
    const r = await gwf.chat({ model: 'ga', messages: msgs, num_retries: 0 });
    assert.match(r.json.error.message, /^litellm\.InternalServerError: InternalServerError: OpenAIException - boom-ga\. Received Model Group=ga\n/);
  });

test('request-level fallbacks', async () => {
  const { r, log } = await upstreamOf(() => gw.chat({ model: 'ra', messages: msgs, num_retries: 0, fallbacks: ['fc'] }));
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(log.map((e) => e.model), ['up-ra', 'up-fc']);
  assert.ok(log.every((e) => e.body.fallbacks === undefined), 'fallbacks is not forwarded');
  assert.equal(r.headers.get('x-litellm-model-group'), 'fc');
});

test('request-level fallbacks win over the configured ones', async () => {
  const { r, log } = await upstreamOf(() => gwf.chat({ model: 'fa', messages: msgs, num_retries: 0, fallbacks: ['fc'] }));
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(log.map((e) => e.model), ['up-fa', 'up-fc']);
});

test('disable_fallbacks: only the group itself, and no suffix', async () => {
  const { r, log } = await upstreamOf(() => gwf.chat({ model: 'fa', messages: msgs, num_retries: 0, disable_fallbacks: true }));
  assert.equal(r.status, 500);
  assert.deepEqual(log.map((e) => e.model), ['up-fa']);
  assert.equal(r.json.error.message, 'litellm.InternalServerError: InternalServerError: OpenAIException - boom-fa');
  assert.ok(log.every((e) => e.body.disable_fallbacks === undefined));
});

test('cooldown: deployments that keep failing are skipped; then 429 "No deployments available"', async () => {
  // first request: each deployment answers 429 once (group of two -> cooled down for cooldown_time)
  const first = await upstreamOf(() => gw.chat({ model: 'cd', messages: msgs }));
  assert.equal(first.r.status, 429, first.r.text);
  assert.deepEqual(first.log.map((e) => e.model).sort(), ['up-cd', 'up-cd']);
  assert.equal(new Set(first.log.map((e) => e.headers.authorization)).size, 2, 'both deployments were tried');
  // now both are cooling down: no upstream request at all, on any worker
  for (let i = 0; i < 4; i++) {
    const { r, log } = await upstreamOf(() => gw.chat({ model: 'cd', messages: msgs }));
    assert.equal(log.length, 0, 'nothing sent upstream while cooling down');
    assert.equal(r.status, 429);
    assert.equal(r.json.error.type, 'None');
    assert.equal(r.json.error.param, 'None');
    assert.equal(r.json.error.code, '429');
    // cooldown_list names every cooled deployment of the router (as LiteLLM), so others may be there
    const m = /^No deployments available for selected model, Try again in 30 seconds\. Passed model=cd\. pre-call-checks=False, cooldown_list=\[(.*)\]$/.exec(r.json.error.message);
    assert.ok(m, r.json.error.message);
    const ids = m[1].split(', ');
    assert.ok(ids.includes("'cd-1'") && ids.includes("'cd-2'"), m[1]);
  }
});
