// OpenTelemetry (issue 13): litellm_settings.callbacks ["otel"] with LiteLLM's OTEL_*
// environment.  The test collector (tests/mocks/otel_collector.mjs) checks every export's
// shape; these tests check what arrives: one trace per request, a "Received Proxy Server
// Request" SERVER span whose parent is the client's traceparent, one "litellm_request"
// CLIENT child per upstream attempt (a retry shows two, a fallback shows the fallback's),
// and the traceparent each attempt sent the mock provider naming that attempt's span.
// Then what must not happen: a collector that is down, refuses or hangs never fails a
// request, its spans are counted (failed or dropped), never retried; nothing is added to
// upstream requests without "otel"; with 4 workers each trace arrives exactly once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startMock, startGateway, mockModel, waitFor, refusedPort, pool } from '../lib/harness.mjs';
import { sseData } from './lib_extra.mjs';
import { assertCleanStop, sanitizerReport } from './lib_rotation.mjs';
import { startCollector } from '../mocks/otel_collector.mjs';

const KEY = 'sk-test-master-otel';
const HONEYCOMB = 'hc-team-key-0123456789abcdef';
const SERVER = 'Received Proxy Server Request';
const ATTEMPT = 'litellm_request';
const msgs = [{ role: 'user', content: 'hi' }];

const hex = (n) => crypto.randomBytes(n).toString('hex');
const traceparent = (traceId = hex(16), parent = hex(8), flags = '01') => ({ traceId, parent, header: `00-${traceId}-${parent}-${flags}` });

const mock = await startMock();
await mock.script({
  rules: [
    { match: { model: 'up-retry' }, times: 1, respond: { status: 500, error_message: 'boom once' } },
    { match: { model: 'up-fa' }, respond: { status: 503, error_message: 'fa is down' } },
  ],
});
const models = [
  mockModel(mock, 'plain', { model: 'openai/up-plain', info: { id: 'plain-1' } }),
  mockModel(mock, 'retry', { model: 'openai/up-retry', info: { id: 'retry-1' } }),
  mockModel(mock, 'fa', { model: 'openai/up-fa', info: { id: 'fa-1' } }),
  mockModel(mock, 'fb', { model: 'openai/up-fb', info: { id: 'fb-1' } }),
];
const config = (extra = {}) => ({
  model_list: models,
  general_settings: { master_key: KEY },
  litellm_settings: { callbacks: ['otel'], ...extra },
  router_settings: { fallbacks: [{ fa: ['fb'] }] },
});
const fast = { OTEL_BSP_SCHEDULE_DELAY: '50' };
const gateways = [];
async function start(opts) {
  const g = await startGateway(opts);
  gateways.push(g);
  return g;
}

const col = await startCollector();
const gw = await start({
  config: config(),
  env: { ...fast, OTEL_ENDPOINT: col.url, OTEL_HEADERS: `x-honeycomb-team=${HONEYCOMB},x-dataset=moongate` },
});
const stops = [];
after(async () => {
  for (const g of gateways) await g.stop();
  for (const s of stops) await s();
  await mock.stop();
  await col.stop();
});

/** Sends one chat request with a fresh traceparent; returns {r, tp, log} (mock entries it caused). */
async function traced(g, body, { tp = traceparent(), headers = {} } = {}) {
  const before = (await mock.log()).length;
  const r = await g.chat({ messages: msgs, ...body }, { headers: { traceparent: tp.header, ...headers } });
  const log = (await mock.log()).slice(before);
  return { r, tp, log };
}

/** Waits until the collector has trace traceId's server span and n attempt spans. */
function traceOf(c, traceId, n, what = `trace ${traceId}`) {
  return c.waitSpans((spans) => {
    const mine = spans.filter((s) => s.traceId === traceId);
    const server = mine.filter((s) => s.name === SERVER);
    const attempts = mine.filter((s) => s.name === ATTEMPT).sort((a, b) => (a.start < b.start ? -1 : 1));
    return server.length >= 1 && attempts.length >= n && { server: server[0], attempts, all: mine };
  }, { what });
}

async function workerStates(g) {
  return (await g.state()).workers;
}

test('a retried request: one trace, the client\'s traceparent as parent, two attempt children, each traceparent upstream', async () => {
  const { r, tp, log } = await traced(gw, { model: 'retry', max_tokens: 7, temperature: 0.5 });
  assert.equal(r.status, 200, r.text);
  assert.equal(log.length, 2, 'a failure and a retry');
  const t = await traceOf(col, tp.traceId, 2);
  assert.equal(t.all.length, 3, 'one server span and two children, nothing else');
  const s = t.server;
  assert.equal(s.parentSpanId, tp.parent, 'the client\'s span is the parent');
  assert.equal(s.kind, 2, 'SERVER');
  assert.equal(s.status.code, 1, 'OK');
  assert.equal(s.attributes['http.response.status_code'], 200);
  assert.equal(s.attributes['gen_ai.request.model'], 'retry');
  assert.equal(s.attributes['litellm.model_group'], 'retry');
  assert.equal(s.attributes['litellm.attempts'], 2);
  assert.equal(s.attributes['litellm.call_id'], r.headers.get('x-litellm-call-id'));
  assert.ok(s.attributes['gen_ai.usage.input_tokens'] > 0);
  assert.equal(s.resource['service.name'], 'litellm', 'LiteLLM\'s default service name');
  const [a1, a2] = t.attempts;
  for (const a of t.attempts) {
    assert.equal(a.parentSpanId, s.spanId, 'attempts are children of the request span');
    assert.equal(a.kind, 3, 'CLIENT');
    assert.equal(a.attributes['gen_ai.system'], 'openai');
    assert.equal(a.attributes['gen_ai.request.model'], 'up-retry');
    assert.equal(a.attributes['metadata.model_group'], 'retry');
    assert.equal(a.attributes['litellm.model_id'], 'retry-1');
    assert.equal(a.attributes['metadata.api_base'], mock.url);
    assert.equal(a.attributes['llm.is_streaming'], 'False');
    assert.equal(a.attributes['gen_ai.request.max_tokens'], 7);
    assert.equal(a.attributes['gen_ai.request.temperature'], 0.5);
    assert.ok(a.start >= s.start && a.end <= s.end, 'inside the request span');
  }
  assert.equal(a1.status.code, 2, 'the first attempt failed');
  assert.equal(a1.attributes['http.response.status_code'], 500);
  assert.match(a1.status.message, /boom once/);
  assert.equal(a1.attributes['error.type'], 'InternalServerError');
  assert.equal(a2.status.code, 1, 'the retry succeeded');
  assert.equal(a2.attributes['http.response.status_code'], 200);
  assert.equal(a2.attributes['gen_ai.response.model'], 'up-retry');
  assert.ok(a2.attributes['gen_ai.usage.output_tokens'] > 0);
  assert.ok(a1.end <= a2.start, 'one after the other');
  // the trace reaches the provider: each attempt sent its own span as the parent
  assert.deepEqual(log.map((e) => e.headers.traceparent), [
    `00-${tp.traceId}-${a1.spanId}-01`, `00-${tp.traceId}-${a2.spanId}-01`]);
  assert.deepEqual(col.problems(), [], 'every export had the OTLP/JSON shape');
});

test('OTEL_HEADERS reach the collector, JSON encoded; the key is never shown', async () => {
  const { tp } = await traced(gw, { model: 'plain' });
  await traceOf(col, tp.traceId, 1);
  const reqs = col.requests().filter((q) => q.status === 200);
  assert.ok(reqs.length > 0);
  for (const q of reqs) {
    assert.equal(q.headers['x-honeycomb-team'], HONEYCOMB);
    assert.equal(q.headers['x-dataset'], 'moongate');
    assert.equal(q.headers['content-type'], 'application/json');
  }
  const state = JSON.stringify(await gw.state());
  assert.ok(!state.includes(HONEYCOMB), '/moongate/state does not show it');
  const [w] = await workerStates(gw);
  assert.equal(w.otel.exporter, 'otlp_http');
  assert.equal(w.otel.endpoint, `${col.url}/v1/traces`, 'LiteLLM appends /v1/traces');
  assert.ok(!gw.output().stderr.includes(HONEYCOMB));
});

test('a fallback shows the fallback\'s attempt', async () => {
  const { r, tp, log } = await traced(gw, { model: 'fa', num_retries: 0 });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(log.map((e) => e.model), ['up-fa', 'up-fb']);
  const t = await traceOf(col, tp.traceId, 2);
  assert.deepEqual(t.attempts.map((a) => [a.attributes['litellm.model_group'], a.status.code]),
    [['fa', 2], ['fb', 1]]);
  assert.equal(t.server.attributes['litellm.model_group'], 'fa', 'the group the client asked for');
  assert.equal(t.server.attributes['litellm.model_id'], 'fb-1', 'the deployment that answered');
  assert.equal(log[1].headers.traceparent, `00-${tp.traceId}-${t.attempts[1].spanId}-01`);
});

test('a request that fails for good: the request span and its attempt carry the error', async () => {
  const { r, tp } = await traced(gw, { model: 'fa', num_retries: 0, disable_fallbacks: true });
  assert.equal(r.status, 503, r.text);
  const t = await traceOf(col, tp.traceId, 1);
  assert.equal(t.server.status.code, 2);
  assert.equal(t.server.attributes['http.response.status_code'], 503);
  assert.equal(t.server.attributes['error.code'], '503');
  assert.match(t.server.status.message, /fa is down/);
  assert.equal(t.attempts[0].status.code, 2);
});

test('a stream: llm.is_streaming and its usage', async () => {
  const tp = traceparent();
  const r = await gw.chat({ model: 'plain', messages: msgs, stream: true, stream_options: { include_usage: true } },
    { headers: { traceparent: tp.header } });
  assert.equal(r.status, 200);
  assert.ok(sseData(r.text).includes('[DONE]'));
  const t = await traceOf(col, tp.traceId, 1);
  assert.equal(t.server.attributes['llm.is_streaming'], 'True');
  assert.equal(t.attempts[0].status.code, 1);
  assert.ok(t.attempts[0].attributes['gen_ai.usage.output_tokens'] > 0);
});

test('no traceparent, or an invalid one: a new trace; tracestate is passed on with a valid one', async () => {
  const before = (await mock.log()).length;
  const plain = await gw.chat({ model: 'plain', messages: msgs });
  const bad = `00-${hex(16).toUpperCase()}-${hex(8)}-01`;
  const invalid = await gw.chat({ model: 'plain', messages: msgs }, { headers: { traceparent: bad } });
  const tp = traceparent();
  const withState = await gw.chat({ model: 'plain', messages: msgs },
    { headers: { traceparent: tp.header, tracestate: 'vendor=abc123,other=x' } });
  assert.deepEqual([plain.status, invalid.status, withState.status], [200, 200, 200]);
  const log = (await mock.log()).slice(before);
  assert.equal(log.length, 3);
  const ids = log.map((e) => /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(e.headers.traceparent));
  assert.ok(ids.every(Boolean), 'every attempt sends a valid traceparent');
  assert.notEqual(ids[1][1], bad.slice(3, 35).toLowerCase(), 'the invalid id is not reused');
  assert.equal(ids[2][1], tp.traceId);
  assert.equal(log[2].headers.tracestate, 'vendor=abc123,other=x');
  assert.equal(log[0].headers.tracestate, undefined);
  for (const m of ids.slice(0, 2)) {
    const t = await traceOf(col, m[1], 1);
    assert.equal(t.server.parentSpanId, null, 'a root span');
    assert.equal(t.attempts[0].spanId, m[2]);
  }
  await waitFor(async () => (await workerStates(gw))[0].otel.invalid_traceparents >= 1,
    { what: 'the invalid traceparent counted' });
});

test('a traceparent that says "not sampled": nothing exported, the provider still gets the trace', async () => {
  const tp = traceparent(hex(16), hex(8), '00');
  const { r, log } = await traced(gw, { model: 'plain' }, { tp });
  assert.equal(r.status, 200);
  assert.match(log[0].headers.traceparent, new RegExp(`^00-${tp.traceId}-[0-9a-f]{16}-00$`));
  // spans leave a worker in order: once a later trace arrived, the unsampled one would have
  const { tp: later } = await traced(gw, { model: 'plain' });
  await traceOf(col, later.traceId, 1);
  assert.equal(col.spans().filter((s) => s.traceId === tp.traceId).length, 0);
  await waitFor(async () => (await workerStates(gw))[0].otel.spans_not_sampled >= 2,
    { what: 'the unsampled spans counted' });
});

test('without "otel" nothing is added upstream and no exporter runs', async () => {
  const c2 = await startCollector();
  const g = await start({
    config: { model_list: models, general_settings: { master_key: KEY } },
    env: { ...fast, OTEL_ENDPOINT: c2.url },
  });
  stops.push(() => c2.stop());
  const { r, log } = await traced(g, { model: 'plain' });
  assert.equal(r.status, 200);
  assert.equal(log[0].headers.traceparent, undefined, 'the client\'s traceparent is not forwarded either');
  const [w] = await workerStates(g);
  assert.equal(w.otel, null);
  assert.equal(c2.requests().length, 0);
});

test('a collector that is down: requests succeed, failed exports are counted and never retried', async () => {
  const port = await refusedPort(); // nothing listens there
  const g = await start({ config: config(), env: { ...fast, OTEL_ENDPOINT: `http://127.0.0.1:${port}` } });
    const rs = await pool(20, 4, () => g.chat({ model: 'plain', messages: msgs }));
  assert.ok(rs.every((r) => r.status === 200), 'no request failed');
  const w = await waitFor(async () => {
    const [s] = await workerStates(g);
    return s.otel.exports_failed > 0 && s.otel.queued === 0 && !s.otel.export_in_flight && s.otel.spans_failed === 40 && s;
  }, { what: 'every span counted failed', timeout: 20000 });
  assert.equal(w.otel.spans_exported, 0);
  assert.match(w.otel.last_error, /connect|refused/i);
  assert.match(g.output().stderr, /otel: exporting \d+ spans to http:\/\/127\.0\.0\.1:\d+\/v1\/traces failed/);
});

test('a collector that refuses a batch: those spans are counted failed and not sent again', async () => {
  const c3 = await startCollector();
  c3.script([{ status: 503, times: 1 }]);
  const g = await start({ config: config(), env: { ...fast, OTEL_ENDPOINT: c3.url } });
  stops.push(() => c3.stop());
  const { r, tp } = await traced(g, { model: 'plain' });
  assert.equal(r.status, 200);
  await waitFor(async () => (await workerStates(g))[0].otel.exports_failed === 1, { what: 'the refused export' });
  const { tp: later } = await traced(g, { model: 'plain' });
  await traceOf(c3, later.traceId, 1);
  assert.equal(c3.spans().filter((s) => s.traceId === tp.traceId).length, 0, 'no retry of the refused batch');
  assert.equal(c3.requests()[0].status, 503);
  const [w] = await workerStates(g);
  assert.equal(w.otel.spans_failed, 2);
});

test('a collector that hangs: requests go on, the full queue drops spans (counted), the drain is bounded', async () => {
  const c4 = await startCollector();
  c4.script([{ hang: true, times: 1000 }]);
  const g = await start({
    config: config(),
    env: {
      ...fast, OTEL_ENDPOINT: c4.url, OTEL_BSP_MAX_QUEUE_SIZE: '4', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2',
      OTEL_BSP_EXPORT_TIMEOUT: '60000',
    },
  });
  stops.push(() => c4.stop());
  const first = await g.chat({ model: 'plain', messages: msgs });
  assert.equal(first.status, 200);
  await waitFor(async () => (await workerStates(g))[0].otel.export_in_flight, { what: 'an export hanging' });
  const rs = await pool(12, 4, () => g.chat({ model: 'plain', messages: msgs }));
  assert.ok(rs.every((r) => r.status === 200), 'requests are not held by the hanging export');
  const w = await waitFor(async () => {
    const [s] = await workerStates(g);
    return s.otel.spans_dropped > 0 && s;
  }, { what: 'dropped spans counted' });
  assert.ok(w.otel.export_in_flight, 'still hanging');
  assert.ok(w.otel.queued <= 4, 'the queue never grows past its size');
  assert.equal(w.otel.spans_ended, 26, '13 requests, 2 spans each');
  assert.match(g.output().stderr, /otel: the span queue is full/);
  await g.stop();
  const exit = await g.exited;
  assert.equal(exit.code, 0, 'the drain ended by itself, within its bound');
  assert.match(g.output().stderr, /otel: \d+ spans were not exported before the worker exited/);
});

test('a drain sends what is queued before the worker exits', async () => {
  const c5 = await startCollector();
  const g = await start({ config: config(), env: { OTEL_ENDPOINT: c5.url, OTEL_BSP_SCHEDULE_DELAY: '600000' } });
  stops.push(() => c5.stop());
  const { r, tp } = await traced(g, { model: 'plain' });
  assert.equal(r.status, 200);
  const [w] = await workerStates(g);
  assert.equal(w.otel.spans_exported, 0, 'the batch timer is 10 minutes away');
  await g.stop();
  assert.equal((await g.exited).code, 0);
  const t = await traceOf(c5, tp.traceId, 1);
  assert.equal(t.all.length, 2);
});

test('4 workers: every request\'s trace arrives exactly once', async () => {
  const c6 = await startCollector();
  const g = await start({ config: config(), workers: 4, env: { ...fast, OTEL_ENDPOINT: c6.url } });
  stops.push(() => c6.stop());
  const N = 60;
  const tps = Array.from({ length: N }, () => traceparent());
  const rs = await pool(N, 8, (i) => g.chat({ model: 'plain', messages: msgs }, { headers: { traceparent: tps[i].header } }));
  assert.ok(rs.every((r) => r.status === 200));
  await c6.waitSpans((spans) => spans.filter((s) => s.name === SERVER).length >= N, { what: `${N} request spans` });
  const spans = c6.spans();
  for (const tp of tps) {
    const mine = spans.filter((s) => s.traceId === tp.traceId);
    assert.equal(mine.filter((s) => s.name === SERVER).length, 1, `trace ${tp.traceId}: one request span`);
    assert.equal(mine.filter((s) => s.name === ATTEMPT).length, 1, `trace ${tp.traceId}: one attempt`);
  }
  assert.equal(new Set(spans.map((s) => s.spanId)).size, spans.length, 'no span id twice');
  assert.equal(spans.length, 2 * N, 'nothing else, nothing twice');
  assert.deepEqual(c6.problems(), []);
});

test('OTEL_EXPORTER=console prints each span as a JSON line in the log', async () => {
  const g = await start({ config: config(), env: { ...fast, OTEL_EXPORTER: 'console' } });
    const { tp } = await traced(g, { model: 'plain' });
  const line = await waitFor(() => g.output().stderr.split('\n')
    .find((l) => l.includes('otel span ') && l.includes(tp.traceId) && l.includes(SERVER)), { what: 'the console span line' });
  const span = JSON.parse(line.slice(line.indexOf('otel span ') + 10));
  assert.equal(span.traceId, tp.traceId);
  assert.equal(span.parentSpanId, tp.parent);
  assert.equal(span.kind, 2);
});

test('OTEL_EXPORTER=otlp_grpc is refused with one warning; requests are served untraced', async () => {
  const g = await start({ config: config(), env: { OTEL_EXPORTER: 'otlp_grpc', OTEL_ENDPOINT: 'http://127.0.0.1:4317', OTEL_TRACES_SAMPLER: 'always_on' } });
    const { r, log } = await traced(g, { model: 'plain' });
  assert.equal(r.status, 200);
  assert.equal(log[0].headers.traceparent, undefined);
  const err = g.output().stderr;
  assert.equal(err.split('\n').filter((l) => l.includes('only otlp_http')).length, 1, err);
  assert.match(err, /OTEL_TRACES_SAMPLER is set, but moongate does not implement it/);
  assert.equal((await workerStates(g))[0].otel, null);
});

test('every gateway stops by itself, without a sanitizer report', async () => {
  for (const g of gateways) {
    if (g.child.exitCode === null && g.child.signalCode === null) {
      await assertCleanStop(g);
    } else {
      assert.equal((await g.exited).code, 0);
      const rep = sanitizerReport(g.output().stderr);
      assert.equal(rep, null, `sanitizer report:\n${rep}`);
    }
  }
});
