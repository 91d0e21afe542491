// Issue 5, test 4: /moongate/state shows, per worker, each upstream client's
// live / idle / busy / connecting connections, whether it is draining (its
// connections are then draining connections) and its outstanding references,
// plus clients created/freed and connections opened/closed totals; POST
// /cache/flushall and /cache/purge (called by LiteLLM runbooks after a key
// rotation) answer 200 and say they are unnecessary.  Also: an api_base change
// through the model API takes effect like a key change; a retry that runs
// after a rotation returned uses the new key; an upstream RST mid-stream always
// ends the client's stream.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, waitFor } from '../lib/harness.mjs';
import {
  chat, byUser, streamOk, describeResult, poolStates, waitPoolAtRest, hitEveryWorker, assertCleanStop,
} from './lib_rotation.mjs';

const WORKERS = 2;
const MASTER = 'sk-state-master';
const mock = await startMock();
const config = (key) => ({
  model_list: [{ model_name: 'st-m', litellm_params: { model: 'openai/st-m', api_base: mock.url, api_key: key } }],
  general_settings: { master_key: MASTER },
});
const gw = await startGateway({ workers: WORKERS, config: config('sk-state-k1') });
let stopped = null;
after(async () => {
  if (!stopped) await gw.stop();
  await mock.stop();
});

const TOTALS = ['clients_live', 'clients_draining', 'connections_idle', 'connections_busy', 'clients_created',
  'clients_freed', 'connections_opened', 'connections_closed', 'evictions'];
const PER_CLIENT = { upstream: 'string', provider: 'string', refs: 'number', connections: 'number', idle: 'number',
  busy: 'number', connecting: 'number', draining: 'boolean' };

function assertShape(w) {
  assert.equal(typeof w.worker, 'number');
  assert.equal(typeof w.pid, 'number');
  const p = w.pool;
  assert.ok(p && typeof p === 'object', `worker ${w.worker}: pool`);
  for (const k of TOTALS) assert.equal(typeof p[k], 'number', `worker ${w.worker}: pool.${k}`);
  assert.ok(Array.isArray(p.clients), `worker ${w.worker}: pool.clients`);
  assert.equal(p.clients.length, p.clients_live);
  let idle = 0, busy = 0, draining = 0;
  for (const c of p.clients) {
    for (const [k, t] of Object.entries(PER_CLIENT)) assert.equal(typeof c[k], t, `worker ${w.worker}: client.${k}`);
    assert.equal(c.connections, c.idle + c.busy + c.connecting, `worker ${w.worker}: ${c.upstream} connections`);
    assert.ok(c.refs >= 1, `worker ${w.worker}: a live client has references`);
    idle += c.idle;
    busy += c.busy;
    draining += c.draining ? 1 : 0;
  }
  assert.equal(p.connections_idle, idle);
  assert.equal(p.connections_busy, busy);
  assert.equal(p.clients_draining, draining);
  assert.equal(p.clients_created - p.clients_freed, p.clients_live);
}

test('per worker: clients with live/idle/busy/connecting connections, draining flag, references; created/freed totals', { timeout: 60000 }, async () => {
  const ws0 = await poolStates(gw);
  assert.equal(ws0.length, WORKERS);
  for (const w of ws0) assertShape(w);
  // one running stream: its worker's client has a busy connection and a reference for the exchange
  const s = chat(gw, {
    model: 'st-m', messages: [{ role: 'user', content: 'x' }], stream: true, user: 'st-1',
    mock: { chunks: 8, chunk_interval_ms: 500 },
  }, { timeout: 60000 });
  const busyW = await waitFor(async () => {
    const ws = await poolStates(gw);
    return ws.find((w) => w.pool.connections_busy === 1);
  }, { timeout: 10000, interval: 50, what: 'a worker with the busy stream connection' });
  assertShape(busyW);
  const c = busyW.pool.clients[0];
  assert.equal(c.busy, 1);
  assert.ok(c.refs >= 2 + c.idle, `refs ${c.refs}: the snapshot's, the exchange's (+ idle connections)`);
  const freed0 = busyW.pool.clients_freed;

  // rotate: that worker's old client is now draining, busy 1, idle 0, still referenced
  gw.writeConfig(config('sk-state-k2'));
  const r = await gw.reload();
  assert.equal(r.status, 200, r.text);
  const drainW = await waitFor(async () => {
    const w = (await poolStates(gw)).find((x) => x.worker === busyW.worker);
    return w.pool.clients_draining === 1 && w;
  }, { timeout: 10000, interval: 50, what: 'the draining client in the state' });
  assertShape(drainW);
  const dc = drainW.pool.clients.find((x) => x.draining);
  assert.equal(dc.busy, 1, 'the draining client keeps its busy connection');
  assert.equal(dc.idle, 0, 'the draining client has no idle connection');
  assert.ok(dc.refs >= 1, 'the draining client is referenced by the running exchange');
  assert.equal(drainW.pool.clients.filter((x) => !x.draining).length, 1, 'one client for the new key');

  const res = await s;
  assert.ok(streamOk(res), describeResult(res));
  const e = byUser(await mock.log()).get('st-1');
  assert.equal(res.sha256, e.sent_sha256, 'the stream is byte-identical to what the mock sent');
  const ws = await waitPoolAtRest(gw, { live: 1 });
  const after1 = ws.find((x) => x.worker === busyW.worker);
  assert.ok(after1.pool.clients_freed > freed0, 'the draining client was freed after its stream');
  for (const w of ws) assertShape(w);
});

test('PATCH /model/{id}/update with a new api_base: requests after it returned go to the new endpoint on every worker; the old client drains', { timeout: 60000 }, async () => {
  const mockB = await startMock();
  try {
    const ID = 'st-base-1';
    const r0 = await gw.request('/model/new', {
      method: 'POST',
      body: { model_name: 'st-b', litellm_params: { model: 'openai/st-b', api_base: mock.url, api_key: 'sk-state-b' }, model_info: { id: ID } },
    });
    assert.equal(r0.status, 200, r0.text);
    const body = (u, stream) => ({
      model: 'st-b', messages: [{ role: 'user', content: 'x' }], user: u, stream,
      ...(stream ? { mock: { chunks: 6, chunk_interval_ms: 400, created: 1700000000, response_id: 'chatcmpl-b' } } : {}),
    });
    const streams = Array.from({ length: 10 }, (_, i) => chat(gw, body(`b-s-${i}`, true), { timeout: 60000 }));
    await waitFor(async () => (await mock.stats()).in_progress >= 10, { timeout: 10000, interval: 50, what: '10 streams on endpoint A' });
    const r = await gw.request(`/model/${ID}/update`, { method: 'PATCH', body: { litellm_params: { api_base: mockB.url } } });
    const tRet = Date.now();
    assert.equal(r.status, 200, r.text);
    let k = 0;
    const burst = await hitEveryWorker(gw, WORKERS, () => body(`b-after-${k++}`, false));
    const logB = byUser(await mockB.log());
    for (const x of burst) {
      assert.equal(x.status, 200, describeResult(x));
      assert.ok(logB.get(x.user), `${x.user} (worker ${x.worker}) went to the new api_base`);
    }
    const results = await Promise.all(streams);
    const logA = byUser(await mock.log());
    for (const x of results) {
      assert.ok(streamOk(x), describeResult(x));
      assert.equal(x.sha256, logA.get(x.user).sent_sha256, `${x.user}: byte-identical`);
    }
    const lateA = (await mock.log()).filter((e) => e.body?.model === 'st-b' && e.t_start_ms > tRet);
    assert.deepEqual(lateA.map((e) => e.body.user), [], 'no request reached the old api_base after the PATCH returned');
    // at rest: st-m's client and st-b's (new endpoint) client per worker
    await waitPoolAtRest(gw, { live: 2 });
    const d = await gw.request('/model/delete', { method: 'POST', body: { id: ID } });
    assert.equal(d.status, 200, d.text);
    await waitPoolAtRest(gw, { live: 1 });
  } finally {
    await mockB.stop();
  }
});

test('a retry that runs after a rotation returned uses the new key (the draining client takes no new exchange)',
  async () => {
    gw.writeConfig(config('sk-state-r1'));
    assert.equal((await gw.reload()).status, 200);
    await mock.script({ rules: [{ match: { auth: 'Bearer sk-state-r1', model: 'st-m' }, times: 1, respond: { status: 429, retry_after: 2 } }] });
    try {
      const p = chat(gw, { model: 'st-m', messages: [{ role: 'user', content: 'x' }], num_retries: 1, user: 'retry-1' }, { timeout: 30000 });
      await waitFor(async () => (await mock.log()).some((e) => e.body?.user === 'retry-1' && e.status === 429),
        { timeout: 10000, interval: 20, what: 'the first attempt (429, retry-after 2 s)' });
      gw.writeConfig(config('sk-state-r2'));
      const r = await gw.reload();
      const tRet = Date.now();
      assert.equal(r.status, 200, r.text);
      const res = await p;
      assert.equal(res.status, 200, describeResult(res));
      const late = (await mock.log()).filter((e) => e.body?.user === 'retry-1' && e.t_start_ms > tRet);
      assert.ok(late.length >= 1, 'the retry ran after the rotation returned');
      for (const e of late) assert.equal(e.headers.authorization, 'Bearer sk-state-r2', `retry after the rotation used ${e.headers.authorization}`);
    } finally {
      await mock.script({ rules: [] });
      await waitPoolAtRest(gw, { live: 1 });
    }
  });

test('a retry never goes to a deployment deleted while it waited', async () => {
  const id = 'st-del-1';
  const add = await gw.request('/model/new', {
    method: 'POST',
    body: { model_name: 'st-del', litellm_params: { model: 'openai/st-m', api_base: mock.url, api_key: 'sk-state-del' }, model_info: { id } },
  });
  assert.equal(add.status, 200, add.text);
  await mock.script({ rules: [{ match: { auth: 'Bearer sk-state-del' }, times: 1, respond: { status: 429, retry_after: 2 } }] });
  try {
    const p = chat(gw, { model: 'st-del', messages: [{ role: 'user', content: 'x' }], num_retries: 1, user: 'del-1' }, { timeout: 30000 });
    await waitFor(async () => (await mock.log()).some((e) => e.body?.user === 'del-1' && e.status === 429),
      { timeout: 10000, interval: 20, what: 'the first attempt (429, retry-after 2 s)' });
    const d = await gw.request('/model/delete', { method: 'POST', body: { id } });
    const tDel = Date.now();
    assert.equal(d.status, 200, d.text);
    const res = await p;
    assert.ok(res.status >= 400, `the request was answered by a deleted deployment: ${describeResult(res)}`);
    assert.match(res.text, /"error"/, describeResult(res));
    const late = (await mock.log()).filter((e) => e.body?.user === 'del-1' && e.t_start_ms > tDel);
    assert.deepEqual(late.map((e) => e.headers.authorization), [], 'an upstream request after the delete returned');
  } finally {
    await mock.script({ rules: [] });
  }
});

test('POST /cache/flushall and /cache/purge answer 200 and say they are unnecessary', async () => {
  for (const p of ['/cache/flushall', '/cache/purge']) {
    const r = await gw.request(p, { method: 'POST' });
    assert.equal(r.status, 200, `${p}: ${r.text}`);
    assert.equal(r.json?.status, 'success', `${p}: ${r.text}`);
    assert.match(r.json.message, /no cache|unnecessary|not needed|nothing/i, `${p}: ${r.text}`);
  }
});

test('the /cache/* answer echoes only the endpoint path, not the request head (it holds the master key)',
  async () => {
    for (const p of ['/cache/flushall', '/cache/purge']) {
      const r = await gw.request(p, { method: 'POST', headers: { 'x-canary': 'canary-value' } });
      assert.equal(r.status, 200);
      assert.ok(!r.text.includes(MASTER), `${p}: the master key is in the response: ${r.text}`);
      assert.ok(!r.text.includes('canary-value'), `${p}: request headers are in the response: ${r.text}`);
      assert.equal(r.json.endpoint, p);
    }
  });

test('an upstream RST right after some stream chunks always ends the client\'s stream with an error frame (up to 1600 streams, 8 at a time)',
  { timeout: 180000 },
  async () => {
    const hung = [];
    let next = 0;
    async function loop() {
      while (next < 1600 && hung.length === 0) {
        const i = next++;
        const r = await chat(gw, {
          model: 'st-m', messages: [{ role: 'user', content: 'x' }], stream: true, user: `rst-${i}`,
          mock: { chunks: 6, chunk_interval_ms: 0, reset_after_chunks: 2 },
        }, { timeout: 5000 });
        if (r.error && /client timeout/.test(r.error)) {
          hung.push(`rst-${i} (call id ${r.headers['x-litellm-call-id']}): ${describeResult(r)}`);
          continue;
        }
        const f = r.text.split('\n\n').filter((x) => x.startsWith('data: '));
        assert.ok(f.length > 0 && f[f.length - 1].startsWith('data: {"error"'), `rst-${i}: ends with an error frame: ${describeResult(r)}`);
        assert.equal(r.complete, true, `rst-${i}: the chunked response ends`);
      }
    }
    await Promise.all(Array.from({ length: 8 }, loop));
    assert.deepEqual(hung, [], 'streams left hanging after the upstream reset');
  });

test('SIGTERM: the gateway exits cleanly with no sanitizer report on stderr', async () => {
  stopped = await assertCleanStop(gw);
});
