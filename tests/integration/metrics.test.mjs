// GET /metrics: one scrape answers for the whole instance (every worker, through shared
// memory), in a text format Prometheus' own promtool and the reference Python client parse,
// with LiteLLM's family names and labels, cumulative histograms, bounded label values, and
// moongate's per-worker registry versions that follow a /model/new.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startMock, startGateway, mockModel, pool, waitFor, tmpDir, repoRoot } from '../lib/harness.mjs';

const MASTER = 'sk-metrics-master-0123456789';
const mock = await startMock();
const gw = await startGateway({
  config: {
    model_list: [
      mockModel(mock, 'gpt-4o', { key: 'sk-upstream-metrics-secret-1' }),
      mockModel(mock, 'flaky', { key: 'sk-upstream-metrics-secret-2' }),
      { model_name: 'backup', litellm_params: { model: 'openai/gpt-4o-mini', mock_response: 'from backup' } },
    ],
    router_settings: { fallbacks: [{ flaky: ['backup'] }], num_retries: 0 },
    general_settings: { master_key: MASTER },
  },
  workers: 4,
});
after(async () => { await gw.stop(); await mock.stop(); });

/** Parses the text format into [{name, labels, value}] (our reading; promtool and the
 * Python client check the format itself). */
function parse(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unparseable line: ${line}`);
    const labels = {};
    if (m[3]) {
      for (const lm of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
    }
    out.push({ name: m[1], labels, value: Number(m[4] === '+Inf' ? Infinity : m[4]) });
  }
  return out;
}

async function scrape(opts = {}) {
  const r = await gw.request('/metrics', { key: null, ...opts });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return r.text;
}

const sum = (samples, name, pred = () => true) =>
  samples.filter((s) => s.name === name && pred(s.labels)).reduce((a, s) => a + s.value, 0);

const chatRaw = (body, key = MASTER) =>
  // a new connection per request, so the kernel spreads them over the workers
  fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, connection: 'close' },
    body: JSON.stringify(body),
  }).then(async (r) => ({ status: r.status, worker: r.headers.get('x-moongate-worker'), text: await r.text() }));

test('N requests over 4 workers are N in one scrape, whichever worker answers it', async () => {
  const N = 200;
  const res = await pool(N, 8, () => chatRaw({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }));
  assert.ok(res.every((r) => r.status === 200), 'every request succeeded');
  const workers = new Set(res.map((r) => r.worker));
  assert.ok(workers.size >= 2, `requests reached several workers (${[...workers]})`);
  // several scrapes, each answered by some worker: all agree
  for (let i = 0; i < 6; i++) {
    const s = parse(await scrape());
    const ok = (l) => l.requested_model === 'gpt-4o' && l.status_code === '200';
    assert.equal(sum(s, 'litellm_proxy_total_requests_metric_total', ok), N);
    assert.equal(sum(s, 'litellm_deployment_success_responses_total', (l) => l.requested_model === 'gpt-4o'), N);
    assert.equal(sum(s, 'litellm_deployment_total_requests_total', (l) => l.requested_model === 'gpt-4o'), N);
    assert.equal(sum(s, 'litellm_request_total_latency_metric_count', (l) => l.requested_model === 'gpt-4o'), N);
    assert.equal(sum(s, 'litellm_llm_api_latency_metric_count', (l) => l.requested_model === 'gpt-4o'), N);
    // tokens: the mock's usage, summed
    const inTok = sum(s, 'litellm_input_tokens_metric_total', (l) => l.requested_model === 'gpt-4o');
    const outTok = sum(s, 'litellm_output_tokens_metric_total', (l) => l.requested_model === 'gpt-4o');
    const totTok = sum(s, 'litellm_total_tokens_metric_total', (l) => l.requested_model === 'gpt-4o');
    assert.ok(inTok > 0 && outTok > 0, 'tokens counted');
    assert.equal(totTok, inTok + outTok);
  }
});

test('the exposition parses with promtool and with the reference Python client', async () => {
  const text = await scrape();
  const dir = tmpDir('mg-metrics-');
  const f = path.join(dir, 'metrics.txt');
  fs.writeFileSync(f, text);
  // promtool: exit 0 means the text parsed (lint findings would also fail it)
  execFileSync('sh', ['-c', `promtool check metrics < ${f}`], { stdio: 'pipe' });
  const py = path.join(repoRoot, 'tests', 'unit', 'c', 'base', 'prom_readback.py');
  const lines = execFileSync(fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3', [py, f], { encoding: 'utf8' }).trim().split('\n');
  assert.ok(lines.length > 50, 'the reference parser read the samples');
  const fams = new Set(lines.map((l) => JSON.parse(l)[0]));
  for (const name of ['litellm_proxy_total_requests_metric', 'litellm_request_total_latency_metric',
    'litellm_llm_api_latency_metric', 'litellm_deployment_state', 'litellm_deployment_total_requests',
    'moongate_registry_version', 'litellm_in_flight_requests']) {
    assert.ok(fams.has(name), `family ${name} read back`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('histograms are cumulative and monotonic, +Inf equals _count, with LiteLLM\'s buckets', async () => {
  const s = parse(await scrape());
  const series = new Map();
  for (const x of s.filter((x) => x.name.endsWith('_bucket'))) {
    const { le, ...rest } = x.labels;
    const key = x.name + JSON.stringify(rest);
    if (!series.has(key)) series.set(key, { base: x.name.slice(0, -7), rest, buckets: [] });
    series.get(key).buckets.push([le === '+Inf' ? Infinity : Number(le), x.value]);
  }
  assert.ok(series.size > 0);
  for (const { base, rest, buckets } of series.values()) {
    for (let i = 1; i < buckets.length; i++) {
      assert.ok(buckets[i][0] > buckets[i - 1][0], `${base}: bounds ascend`);
      assert.ok(buckets[i][1] >= buckets[i - 1][1], `${base}: counts are cumulative`);
    }
    assert.equal(buckets[buckets.length - 1][0], Infinity);
    const count = s.find((x) => x.name === `${base}_count` && JSON.stringify(x.labels) === JSON.stringify(rest));
    assert.equal(buckets[buckets.length - 1][1], count.value, `${base}: +Inf bucket is _count`);
  }
  const lat = [...series.values()].find((x) => x.base === 'litellm_request_total_latency_metric');
  assert.deepEqual(lat.buckets.map((b) => b[0]).slice(0, 8), [0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5, 1]);
  assert.equal(lat.buckets.length, 36, 'LiteLLM\'s LATENCY_BUCKETS (35 bounds and +Inf)');
});

test('failures: proxy-level with status and class, deployment-level, fallbacks, cooldowns', async () => {
  await mock.script({ rules: [{ match: { auth: 'Bearer sk-upstream-metrics-secret-2' }, respond: { status: 429 } }] });
  const before = parse(await scrape());
  const fb = await chatRaw({ model: 'flaky', messages: [{ role: 'user', content: 'x' }] });
  assert.equal(fb.status, 200, fb.text);
  const bad = await chatRaw({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }, 'sk-wrong');
  assert.notEqual(bad.status, 200);
  const s = parse(await scrape());
  const delta = (name, pred) => sum(s, name, pred) - sum(before, name, pred);
  assert.equal(delta('litellm_deployment_failure_responses_total',
    (l) => l.requested_model === 'flaky' && l.exception_status === '429' && l.exception_class === 'Openai.RateLimitError'), 1);
  assert.equal(delta('litellm_deployment_successful_fallbacks_total',
    (l) => l.requested_model === 'flaky' && l.fallback_model === 'backup' && l.exception_status === '429'), 1);
  assert.equal(delta('litellm_proxy_total_requests_metric_total', (l) => l.requested_model === 'flaky' && l.status_code === '200'), 1);
  assert.equal(delta('litellm_proxy_failed_requests_metric_total',
    (l) => l.exception_status === String(bad.status) && l.requested_model === 'None' && l.hashed_api_key === 'None'), 1);
  await mock.reset();
});

test('label values are bounded and hold no secret', async () => {
  // made-up model names do not become series
  await pool(20, 4, (i) => chatRaw({ model: `made-up-${i}`, messages: [{ role: 'user', content: 'x' }] }));
  const text = await scrape();
  assert.doesNotMatch(text, /made-up-/);
  assert.doesNotMatch(text, /sk-upstream-metrics-secret/);
  assert.doesNotMatch(text, new RegExp(MASTER));
  // the master key appears as LiteLLM's hash_token (sha256 hex), never raw
  const { createHash } = await import('node:crypto');
  const h = createHash('sha256').update(MASTER).digest('hex');
  assert.match(text, new RegExp(`hashed_api_key="${h}"`));
  assert.doesNotMatch(text, /call_id|chatcmpl-/);
});

test('per-worker registry versions follow /model/new; every live worker is shown', async () => {
  const s0 = parse(await scrape());
  const v0 = s0.filter((x) => x.name === 'moongate_registry_version');
  assert.deepEqual(v0.map((x) => x.labels.worker).sort(), ['0', '1', '2', '3']);
  const add = await gw.request('/model/new', {
    method: 'POST',
    body: { model_name: 'added', litellm_params: { model: 'openai/x', mock_response: 'hi' } },
  });
  assert.equal(add.status, 200, add.text);
  const st = await gw.state();
  const target = Math.max(...st.workers.map((w) => w.registry_version));
  const s1 = parse(await scrape());
  const v1 = s1.filter((x) => x.name === 'moongate_registry_version');
  assert.equal(v1.length, 4);
  for (const x of v1) assert.equal(x.value, target, `worker ${x.labels.worker} serves version ${target}`);
  assert.ok(target > Math.max(...v0.map((x) => x.value)));
  // snapshot ages are per worker and small after the change
  const ages = s1.filter((x) => x.name === 'moongate_snapshot_age_seconds');
  assert.equal(ages.length, 4);
  // the new deployment has a state gauge; a deleted one loses its
  const dep = s1.filter((x) => x.name === 'litellm_deployment_state');
  assert.ok(dep.length >= 4);
});

test('a killed worker\'s gauges go away and come back from its successor', async () => {
  const pids = await gw.workerPids();
  process.kill(pids[1], 'SIGKILL');
  await waitFor(async () => {
    const p = await gw.workerPids();
    return p.length === 4 && p.every((x) => x > 0) && !p.includes(pids[1]);
  }, { what: 'the worker to be respawned', timeout: 20000 });
  await waitFor(async () => {
    const s = parse(await scrape());
    return s.filter((x) => x.name === 'moongate_registry_version').length === 4;
  }, { what: 'the respawned worker in /metrics', timeout: 20000 });
  // counters survive a worker's death: they live in shared memory
  const s = parse(await scrape());
  assert.ok(sum(s, 'litellm_proxy_total_requests_metric_total', (l) => l.requested_model === 'gpt-4o') >= 200);
});

test('in-flight requests are summed over workers', async () => {
  await mock.script({ default: { latency_ms: 1500 } });
  const slow = Array.from({ length: 3 }, () => chatRaw({ model: 'gpt-4o', messages: [{ role: 'user', content: 'slow' }] }));
  await waitFor(async () => {
    const s = parse(await scrape());
    // the scrape itself is one request in flight
    return sum(s, 'litellm_in_flight_requests') >= 4;
  }, { what: 'three slow requests in flight', timeout: 10000 });
  await Promise.all(slow);
  await mock.reset();
});

test('require_auth_for_metrics_endpoint: a key is needed', async () => {
  const g2 = await startGateway({
    config: {
      model_list: [mockModel(mock, 'm')],
      general_settings: { master_key: MASTER },
      litellm_settings: { require_auth_for_metrics_endpoint: true, callbacks: ['prometheus'] },
    },
  });
  try {
    const r = await g2.request('/metrics', { key: null });
    assert.equal(r.status, 401, r.text);
    const ok = await g2.request('/metrics');
    assert.equal(ok.status, 200);
    assert.match(ok.text, /# TYPE litellm_proxy_total_requests_metric_total counter/);
    assert.doesNotMatch(g2.output().stderr, /"prometheus"/, 'prometheus is not warned about');
  } finally {
    await g2.stop();
  }
});

test('an unimplemented callback is named in one warning', async () => {
  const g3 = await startGateway({
    config: { model_list: [mockModel(mock, 'm')], litellm_settings: { callbacks: ['prometheus', 'langfuse'] } },
  });
  try {
    const err = g3.output().stderr;
    assert.match(err, /"langfuse"/);
    const st = await g3.state();
    assert.ok(JSON.stringify(st).includes('langfuse'));
  } finally {
    await g3.stop();
  }
});
