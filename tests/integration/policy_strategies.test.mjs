// router_settings.routing_strategy values map to the built-in policies, and
// each one's decisions show in the mock provider's log (2 workers each, so
// the statistics they use must be shared): least-busy (in-flight requests),
// latency-based-routing (measured latency), usage-based-routing-v2 (rpm/tpm
// of this minute), cost-based-routing (input/output cost per token).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, mockModel, waitFor } from '../lib/harness.mjs';
import { req, chatBody, awayFromMinuteEnd } from './lib_policy.mjs';

const KEY = 'sk-test-policy-strategies';
const mock = await startMock();
const gws = [];
after(async () => { for (const g of gws) await g.stop(); await mock.stop(); });

async function gateway(strategy, models, extra = {}) {
  const g = await startGateway({
    config: {
      model_list: models,
      router_settings: { routing_strategy: strategy, ...extra },
      general_settings: { master_key: KEY },
    },
    workers: 2,
  });
  gws.push(g);
  return g;
}
const dep = (group, up, id, extra = {}) => mockModel(mock, group, { model: `openai/${up}`, info: { id }, extra });
let tag = 0;
const chat = (g, model, content) =>
  req(g.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: chatBody(model, content ?? `s-${++tag}`) });
async function routingPolicyName(g) {
  const info = await req(g.port, '/policy/info', { key: KEY });
  return info.json.data.find((p) => p.kind === 'routing').name;
}

test('least-busy: a deployment with a request in flight (on any worker) is avoided; ties go to the first', async () => {
  const g = await gateway('least-busy', [dep('lb', 'up-lb1', 'lb1'), dep('lb', 'up-lb2', 'lb2')]);
  assert.equal(await routingPolicyName(g), 'least_busy');
  await mock.script({ rules: [{ match: { model: 'up-lb1' }, times: 1, respond: { latency_ms: 5000 } }] });
  const slow = chat(g, 'lb', 'slow'); // both idle: the first configured one
  await waitFor(async () => (await mock.log()).some((e) => e.model === 'up-lb1' && e.outcome === 'in_progress'),
    { what: 'the slow request in flight on lb1' });
  const perWorker = new Map();
  for (let i = 0; i < 200 && !(perWorker.size === 2 && [...perWorker.values()].every((n) => n >= 3)); i++) {
    const r = await chat(g, 'lb');
    assert.equal(r.status, 200, r.text);
    // once the slow request is over, lb1 may be picked again: stop
    if ((await mock.log()).find((e) => e.body?.messages?.[0]?.content === 'slow')?.outcome !== 'in_progress') break;
    assert.equal(r.modelId, 'lb2', `request ${i} on worker ${r.worker} went to ${r.modelId} while lb1 was busy`);
    perWorker.set(r.worker, (perWorker.get(r.worker) || 0) + 1);
  }
  assert.equal(perWorker.size, 2, `both workers saw lb1 busy: ${JSON.stringify([...perWorker])}`);
  const s = await slow;
  assert.equal(s.status, 200);
  assert.equal(s.modelId, 'lb1');
  const r = await chat(g, 'lb');
  assert.equal(r.modelId, 'lb1', 'idle again: ties go to the first configured');
});

test('latency-based-routing: unseen deployments are tried first, then the faster one is used', async () => {
  const g = await gateway('latency-based-routing', [dep('lat', 'up-lat1', 'lat1'), dep('lat', 'up-lat2', 'lat2')]);
  assert.equal(await routingPolicyName(g), 'latency_based');
  await mock.script({ rules: [{ match: { model: 'up-lat1' }, respond: { latency_ms: 150 } }] });
  const first = [];
  for (let i = 0; i < 2; i++) first.push((await chat(g, 'lat')).modelId);
  assert.deepEqual(first.sort(), ['lat1', 'lat2'], 'each unseen deployment (score 0) is tried once');
  for (let i = 0; i < 20; i++) {
    const r = await chat(g, 'lat');
    assert.equal(r.status, 200);
    assert.equal(r.modelId, 'lat2', `request ${i} (worker ${r.worker}) went to the slow deployment`);
  }
  await mock.script({ rules: [] });
});

test('usage-based-routing-v2: lowest tpm first, rpm limits of this minute exclude, then 429', async () => {
  const g = await gateway('usage-based-routing-v2', [
    dep('ub', 'up-ub1', 'ub1', { rpm: 2, tpm: 100000 }), dep('ub', 'up-ub2', 'ub2', { rpm: 2, tpm: 100000 }),
    dep('ubt', 'up-ubt', 'ubt1', { tpm: 40 }),
  ]);
  assert.equal(await routingPolicyName(g), 'usage_based_v2');
  await awayFromMinuteEnd(15000);
  const ids = [];
  for (let i = 0; i < 4; i++) {
    const r = await chat(g, 'ub', 'same');
    assert.equal(r.status, 200, r.text);
    ids.push(r.modelId);
  }
  // equal requests use equal tokens: each pair of requests goes to both deployments
  assert.notEqual(ids[0], ids[1], `lowest tpm first: ${ids}`);
  assert.notEqual(ids[2], ids[3], `lowest tpm first: ${ids}`);
  const r = await chat(g, 'ub', 'same');
  assert.equal(r.status, 429, `both at rpm 2 this minute: ${r.text}`);
  assert.match(r.json.error.message, /No deployments available/);
  assert.match(r.json.error.message, /Passed model=ub/);
  // tpm: a prompt estimated over the deployment's tpm is not sent
  const before = (await mock.stats()).last_seq;
  const big = await chat(g, 'ubt', 'x'.repeat(400));
  assert.equal(big.status, 429, big.text);
  assert.equal((await mock.log(before)).length, 0, 'nothing reached the provider');
  const small = await chat(g, 'ubt', 'hi');
  assert.equal(small.status, 200, small.text);
});

test('cost-based-routing: the cheapest deployment, until it reaches its rpm for this minute', async () => {
  const g = await gateway('cost-based-routing', [
    dep('cb', 'up-cb1', 'cb1', { input_cost_per_token: 0.00001, output_cost_per_token: 0.00002 }),
    dep('cb', 'up-cb2', 'cb2', { input_cost_per_token: 0.000001, output_cost_per_token: 0.000002, rpm: 3 }),
    dep('cb', 'up-cb3', 'cb3'), // unknown costs count 5.0 per token
  ]);
  assert.equal(await routingPolicyName(g), 'cost_based');
  await awayFromMinuteEnd(15000);
  const ids = [];
  for (let i = 0; i < 5; i++) {
    const r = await chat(g, 'cb');
    assert.equal(r.status, 200, r.text);
    ids.push(r.modelId);
  }
  assert.deepEqual(ids, ['cb2', 'cb2', 'cb2', 'cb1', 'cb1']);
});

test('simple-shuffle (the default) honours weights across workers', async () => {
  const g = await gateway('simple-shuffle', [
    dep('sh', 'up-sh1', 'sh1', { weight: 1 }), dep('sh', 'up-sh2', 'sh2', { weight: 3 }),
  ]);
  assert.equal(await routingPolicyName(g), 'simple_shuffle');
  const N = 800;
  let n1 = 0;
  for (let i = 0; i < N; i++) {
    const r = await chat(g, 'sh');
    assert.equal(r.status, 200);
    if (r.modelId === 'sh1') n1++;
  }
  // binomial(800, 0.25): sd = sqrt(800 * 0.25 * 0.75) = 12.2; 5 sd
  const sd = Math.sqrt(N * 0.25 * 0.75);
  assert.ok(Math.abs(n1 - N * 0.25) <= 5 * sd, `sh1 got ${n1} of ${N}, expected ${N * 0.25} +- ${5 * sd}`);
});
