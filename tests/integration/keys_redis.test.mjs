// rpm_limit, tpm_limit and max_parallel_requests across replicas through one Redis: two
// instances (2 workers each) share a state directory (the same keys) and a Redis.  Exact
// across both (one atomic script per admission); Redis stopped: each instance holds the limits
// on its own counters and says so (/moongate/state, /metrics, one log line per worker and
// outage); Redis back: shared again.  Redis frozen (SIGSTOP): an admission waits at most
// rate_limit_redis_timeout_ms, then counts locally, and what Redis counted late is undone; a
// client that goes away while its admission waits leaves nothing held.  With a sanitizer build
// (MG_BUILD_DIR=build-asan) the instances' stderr must show no report when they stop.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startMock, startGateway, startRedis, mockModel, pool, waitFor, tmpDir } from '../lib/harness.mjs';
import { putKey, sha256hex } from '../lib/journal.mjs';
import { sanitizerBuild, sanitizerReport, stopAndCollect } from './lib_rotation.mjs';

console.log(`# keys_redis: ${sanitizerBuild().yes ? 'sanitizer build: reports are checked at stop' : 'not a sanitizer build'}`);

const MASTER = 'sk-redislim-master-0001112223';
const K = {
  rpm: 'sk-redislim-rpm-aaaaaaaaaaaaaaa',
  tpm: 'sk-redislim-tpm-bbbbbbbbbbbbbbb',
  par: 'sk-redislim-par-ccccccccccccccc',
  down: 'sk-redislim-down-dddddddddddddd',
  back: 'sk-redislim-back-eeeeeeeeeeeeee',
  late: 'sk-redislim-late-ffffffffffffff',
  park: 'sk-redislim-park-gggggggggggggg',
  both: 'sk-redislim-both-hhhhhhhhhhhhhh',
  budget: 'sk-redislim-budget-iiiiiiiiiiii',
};

const mock = await startMock();
let redis = await startRedis();
const dir = tmpDir('mg-keys-redis-');
const state = path.join(dir, 'state');
putKey(state, K.rpm, { rpm_limit: 100, key_alias: 'rpm-key' });
putKey(state, K.tpm, { tpm_limit: 50 });
putKey(state, K.par, { max_parallel_requests: 2 });
putKey(state, K.down, { rpm_limit: 3 });
putKey(state, K.back, { rpm_limit: 3 });
putKey(state, K.late, { rpm_limit: 10, max_parallel_requests: 1 });
putKey(state, K.park, { rpm_limit: 10, max_parallel_requests: 1 });
putKey(state, K.both, { rpm_limit: 5, tpm_limit: 1000, max_parallel_requests: 4 });
putKey(state, K.budget, { max_budget: 0.01, max_parallel_requests: 1 });

const config = (ms = {}) => ({
  model_list: [
    mockModel(mock, 'gpt-4o'),
    // each request costs 10 * 1e-4 + 20 * 1e-4 = $0.003 (the scripted usage: 10 in, 20 out)
    mockModel(mock, 'priced', { info: { input_cost_per_token: 1e-4, output_cost_per_token: 1e-4 } }),
  ],
  general_settings: { master_key: MASTER },
  router_settings: { num_retries: 0, redis_host: '127.0.0.1', redis_port: redis.port },
  moongate_settings: ms,
});
const env = {
  ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1:halt_on_error=1',
  UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || 'print_stacktrace=1:halt_on_error=1',
};
const A = await startGateway({ config: config(), workers: 2, stateDir: state, dir: tmpDir('mg-kr-a-'), env });
const B = await startGateway({ config: config(), workers: 2, stateDir: state, dir: tmpDir('mg-kr-b-'), env });
const gws = [A, B];
let C = null;
let stopped = false;
after(async () => {
  try { redis.child.kill('SIGCONT'); } catch { /* gone */ }
  if (!stopped) {
    for (const g of [A, B, C]) if (g) await g.stop();
  }
  await mock.stop();
  await redis.stop();
});

const hashOf = (key) => sha256hex(key);
const rkey = (key, what) => `{api_key:${hashOf(key)}}:moongate:${what}`;

const chat = (gw, key, body = {}, extra = {}) =>
  // a new connection per request: the kernel spreads them over the workers
  fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, connection: 'close' },
    body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], ...body }),
    ...extra,
  }).then(async (r) => {
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: r.status, headers: r.headers, json, text, worker: `${gw.port}/${r.headers.get('x-moongate-worker')}` };
  });

const limits = async (gw) => (await gw.state()).workers.map((w) => w.limits);
const sum = (ls, f) => ls.reduce((n, l) => n + f(l), 0);
const allConnected = async (list = gws) => {
  for (const g of list) {
    const ls = await limits(g);
    if (ls.length === 0 || !ls.every((l) => l && l.redis_connected && l.backend === 'redis')) return false;
  }
  return true;
};
// the workers' limits once pred holds for them (each worker publishes its state every 250 ms)
const until = async (list, pred, what) => {
  let last = [];
  try {
    await waitFor(async () => {
      last = [];
      for (const g of list) last.push(...await limits(g));
      return pred(last);
    }, { what });
  } catch (e) {
    throw new Error(`${e.message}: ${JSON.stringify(last)}`);
  }
  return last;
};
const count = (text, re) => (text.match(re) || []).length;
const metric = (text, name, labels) => {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.every((x) => l.includes(x)));
  return line === undefined ? null : Number(line.split(' ').pop());
};

await waitFor(() => allConnected(), { what: 'every worker of both instances on Redis', timeout: 20000 });

test('rpm_limit 100 over 2 replicas x 2 workers sharing Redis, 400 requests: exactly 100 succeed, with LiteLLM\'s 429', async () => {
  const res = await pool(400, 16, (i) => chat(gws[i % 2], K.rpm));
  const ok = res.filter((r) => r.status === 200);
  const limited = res.filter((r) => r.status === 429);
  assert.equal(ok.length, 100, `succeeded: ${ok.length}`);
  assert.equal(limited.length, 300, res.filter((r) => r.status !== 200 && r.status !== 429).map((r) => `${r.status} ${r.text}`).join('\n'));
  const okWorkers = new Set(ok.map((r) => r.worker));
  assert.ok([...okWorkers].some((w) => w.startsWith(`${A.port}/`)) && [...okWorkers].some((w) => w.startsWith(`${B.port}/`)),
    `both replicas admitted some: ${[...okWorkers]}`);
  const m = limited[0].json.error.message;
  assert.match(m, new RegExp(`^Rate limit exceeded for api_key: (${hashOf(K.rpm)}|\\.\\.\\.${hashOf(K.rpm).slice(-4)})\\. Limit type: requests\\. Current limit: 100, Remaining: 0\\. Limit resets at: \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC$`));
  assert.equal(limited[0].json.error.type, 'throttling_error');
  assert.ok(Number(limited[0].headers.get('retry-after')) >= 1);
  // one counter for both replicas: the admitted requests' remaining counts are 99..0, once each
  const rem = ok.map((r) => Number(r.headers.get('x-ratelimit-remaining-requests'))).sort((a, b) => a - b);
  assert.deepEqual(rem, Array.from({ length: 100 }, (_, i) => i));
  assert.equal(ok[0].headers.get('x-ratelimit-limit-requests'), '100');
  assert.equal(ok[0].headers.get('x-ratelimit-api_key-limit-requests'), '100');
  // the window is in Redis, under the key's hash tag
  assert.equal(redis.cli('HGET', rkey(K.rpm, 'requests'), 'n'), '100');
  const ttl = Number(redis.cli('TTL', rkey(K.rpm, 'requests')));
  assert.ok(ttl > 0 && ttl <= 60, `the window expires with itself (ttl ${ttl})`);
  // and nothing was decided locally (the workers publish their state every 250 ms)
  const all = await until([A, B], (ls) => sum(ls, (l) => l.admitted) === 100 && sum(ls, (l) => l.refused) === 300,
    'the workers\' counts');
  assert.equal(sum(all, (l) => l.fallbacks), 0, JSON.stringify(all));
});

test('tpm_limit across the replicas: output tokens settle into the shared window', async () => {
  // 20 completion tokens each: 50 allows 3 requests (0, 20, 40 < 50), not a 4th
  await mock.script({ default: { usage: { prompt_tokens: 10, completion_tokens: 20 } } });
  try {
    const res = [];
    for (let i = 0; i < 5; i++) {
      const r = await chat(gws[i % 2], K.tpm);
      res.push(r);
      if (r.status === 200) {
        // settlement is fire and forget: the next admission (on the other replica) must see it
        const want = String(20 * res.filter((x) => x.status === 200).length);
        await waitFor(() => redis.cli('HGET', rkey(K.tpm, 'tokens'), 'n') === want, { what: `tokens = ${want}` });
      }
    }
    assert.deepEqual(res.map((r) => r.status), [200, 200, 200, 429, 429]);
    assert.match(res[3].json.error.message, /^Rate limit exceeded for api_key: .*\. Limit type: tokens\. Current limit: 50, Remaining: 0\./);
    assert.equal(res[0].headers.get('x-ratelimit-limit-tokens'), '50');
    assert.equal(res[1].headers.get('x-ratelimit-remaining-tokens'), '29', 'B saw A\'s 20 tokens (+1 reserved)');
  } finally {
    await mock.reset();
  }
});

test('max_parallel_requests across the replicas: one in flight on each, a third is refused on either', async () => {
  await mock.script({ default: { latency_ms: 1500 } });
  try {
    const slow = [chat(A, K.par), chat(B, K.par)];
    await waitFor(async () => (await mock.stats()).in_progress >= 2, { what: 'two requests in flight' });
    assert.equal(redis.cli('ZCARD', rkey(K.par, 'parallel')), '2');
    for (const g of gws) {
      const third = await chat(g, K.par);
      assert.equal(third.status, 429, third.text);
      assert.match(third.json.error.message, /Limit type: max_parallel_requests\. Current limit: 2, Remaining: 0\./);
    }
    const done = await Promise.all(slow);
    assert.deepEqual(done.map((r) => r.status), [200, 200]);
  } finally {
    await mock.reset();
  }
  // released (fire and forget): the set empties, and the next one passes
  await waitFor(() => redis.cli('ZCARD', rkey(K.par, 'parallel')) === '0', { what: 'the slots released' });
  assert.equal((await chat(B, K.par)).status, 200);
});

test('every descriptor of a request in one script: a key with rpm, tpm and parallel limits counts each once', async () => {
  const res = await pool(12, 4, (i) => chat(gws[i % 2], K.both));
  assert.equal(res.filter((r) => r.status === 200).length, 5);
  assert.ok(res.filter((r) => r.status === 429).every((r) => /Limit type: requests\. Current limit: 5/.test(r.json.error.message)));
  assert.equal(redis.cli('HGET', rkey(K.both, 'requests'), 'n'), '5');
  await waitFor(() => redis.cli('ZCARD', rkey(K.both, 'parallel')) === '0', { what: 'the slots released' });
  // every settlement consumed its marker: nothing is left to settle twice
  await waitFor(() => redis.cli('--scan', '--pattern', `{api_key:${hashOf(K.both)}}:moongate:counted:*`) === '',
    { what: 'the markers consumed' });
});

test('a request refused by a rate limit gives its budget reservation back once', async () => {
  // budgets stay per instance (A here); every refused request reserved its worst case first
  const usage = { usage: { prompt_tokens: 10, completion_tokens: 20 } };
  const body = { model: 'priced', max_tokens: 20 };
  const free = () => waitFor(() => redis.cli('ZCARD', rkey(K.budget, 'parallel')) === '0', { what: 'the slot released' });
  await mock.script({ default: { ...usage, latency_ms: 1500 } });
  let slow;
  try {
    slow = chat(A, K.budget, body);
    await waitFor(async () => (await mock.stats()).in_progress >= 1, { what: 'one request in flight' });
    await mock.script({ default: usage });
    const refused = await pool(20, 1, () => chat(A, K.budget, body)); // one at a time: only the slot refuses
    assert.ok(refused.every((r) => r.status === 429 && /max_parallel_requests/.test(r.json.error.message)),
      refused.map((r) => r.status).join(','));
    assert.equal((await slow).status, 200);
    await free();
    // $0.003 spent, nothing reserved: $0.003 -> 0.006 -> 0.009 -> 0.012 (the 3rd crosses), then refused
    const seq = [];
    for (let i = 0; i < 10; i++) {
      const r = await chat(A, K.budget, body);
      seq.push(r);
      if (r.status !== 200) break;
      await free();
    }
    assert.deepEqual(seq.map((r) => r.status), [200, 200, 200, 400], seq.map((r) => r.text).join('\n'));
    assert.match(seq[3].json.error.message, /^Budget has been exceeded! Current cost: 0\.012[0-9]*, Max budget: 0\.01$/);
  } finally {
    await mock.reset();
  }
});

test('Redis stopped: each replica holds the limits on its own counters and says so; Redis back: shared again', async () => {
  const logFrom = gws.map((g) => g.output().stderr.length);
  await redis.stop();
  await waitFor(async () => {
    for (const g of gws) {
      const ls = await limits(g);
      if (!ls.every((l) => l.backend === 'local' && l.redis_connected === false && l.last_error)) return false;
    }
    return true;
  }, { what: 'every worker to report Redis down' });
  // per instance: 3 on A (its 2 workers share shared memory) and 3 on B
  const res = await pool(20, 4, (i) => chat(gws[i % 2], K.down));
  for (const g of gws) {
    const mine = res.filter((r) => r.worker.startsWith(`${g.port}/`));
    assert.equal(mine.filter((r) => r.status === 200).length, 3, `instance ${g.port}: ${mine.map((r) => r.status)}`);
    assert.ok(mine.filter((r) => r.status === 429).every((r) => /Current limit: 3/.test(r.json.error.message)));
  }
  for (const g of gws) {
    await until([g], (ls) => sum(ls, (l) => l.fallbacks_by_reason.disconnected) >= 10, 'the fallbacks counted');
    const metrics = (await g.request('/metrics')).text;
    for (let w = 0; w < 2; w++) {
      assert.equal(metric(metrics, 'moongate_limits_redis_up', [`worker="${w}"`]), 0, `worker ${w} of ${g.port}`);
    }
    assert.ok(metric(metrics, 'moongate_limits_local_fallbacks_total', ['kind="disconnected"']) >= 10);
    // logged once per worker and outage, whatever the reconnect attempts meanwhile
    const log = g.output().stderr.slice(logFrom[gws.indexOf(g)]);
    assert.equal(count(log, /rate limits: Redis .* hold per instance/g), 2, log);
  }

  redis = await startRedis({ port: redis.port });
  await waitFor(() => allConnected(), { what: 'every worker back on Redis', timeout: 20000 });
  for (const g of gws) {
    const log = g.output().stderr.slice(logFrom[gws.indexOf(g)]);
    assert.equal(count(log, /rate limits: Redis .* is back .* not merged/g), 2, log);
    const metrics = (await g.request('/metrics')).text;
    assert.equal(metric(metrics, 'moongate_limits_redis_up', ['worker="0"']), 1);
  }
  // shared again: 3 in all
  const back = await pool(12, 4, (i) => chat(gws[i % 2], K.back));
  assert.equal(back.filter((r) => r.status === 200).length, 3, back.map((r) => r.status).join(','));
  assert.equal(redis.cli('HGET', rkey(K.back, 'requests'), 'n'), '3');
});

test('Redis frozen past the deadline: the request is served on local counters and Redis\' late count is undone', async () => {
  const before = sum(await limits(A), (l) => l.fallbacks_by_reason.timeout);
  redis.child.kill('SIGSTOP');
  let r;
  try {
    r = await chat(A, K.late);
  } finally {
    redis.child.kill('SIGCONT');
  }
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-ratelimit-limit-requests'), '10');
  await until([A], (ls) => sum(ls, (l) => l.fallbacks_by_reason.timeout) >= before + 1, 'the timeout counted');
  await waitFor(() => allConnected([A]), { what: 'A back on Redis', timeout: 20000 });
  // the script ran when Redis woke up; the undo took it back: no request counted, no slot held
  await waitFor(() => redis.cli('ZCARD', rkey(K.late, 'parallel')) === '0' &&
    (redis.cli('HGET', rkey(K.late, 'requests'), 'n') || '0') === '0', { what: 'the late admission undone', timeout: 20000 });
  await until([A], (ls) => sum(ls, (l) => l.undone) >= 1, 'the undo counted');
  const again = await chat(A, K.late);
  assert.equal(again.status, 200, again.text);
  assert.equal(again.headers.get('x-ratelimit-remaining-requests'), '9');
});

test('a client that goes away while its admission waits on Redis leaves no slot held and nothing counted', async () => {
  // a long deadline, so the admission is still waiting when the client leaves
  C = await startGateway({ config: config({ rate_limit_redis_timeout_ms: 60000 }), workers: 1, stateDir: state, dir: tmpDir('mg-kr-c-'), env });
  await waitFor(() => allConnected([C]), { what: `C on Redis: ${JSON.stringify(await limits(C))}` });
  const at = (await mock.stats()).requests;
  redis.child.kill('SIGSTOP');
  try {
    const ac = new AbortController();
    const p = chat(C, K.park, {}, { signal: ac.signal }).catch((e) => e.name);
    await waitFor(async () => (await limits(C))[0].waiting === 1, { what: 'the admission waiting on Redis' });
    ac.abort();
    assert.equal(await p, 'AbortError');
    await waitFor(async () => (await limits(C))[0].waiting === 0, { what: 'the waiting admission cancelled' });
  } finally {
    redis.child.kill('SIGCONT');
  }
  await waitFor(() => redis.cli('ZCARD', rkey(K.park, 'parallel')) === '0' &&
    (redis.cli('HGET', rkey(K.park, 'requests'), 'n') || '0') === '0', { what: 'nothing held for the client that left' });
  await waitFor(async () => (await limits(C))[0].undone >= 1, { what: 'the undo counted' });
  assert.equal((await mock.stats()).requests, at, 'nothing went upstream');
  // max_parallel_requests 1: the slot is free
  const r = await chat(C, K.park);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-ratelimit-remaining-requests'), '9');
});

test('the instances stop cleanly (no sanitizer report with a sanitizer build)', async () => {
  stopped = true;
  for (const g of [A, B, C]) {
    const res = await stopAndCollect(g);
    assert.equal(res.timedOut, false);
    assert.equal(res.code, 0, res.stderr.slice(-2000));
    const rep = sanitizerReport(res.stderr);
    assert.equal(rep, null, rep || '');
  }
});
