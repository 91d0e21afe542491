// Issue 14: rotate an AWS secret access key while Bedrock streams run on the old one --
// first through the model API (POST /model/new with secret k1, POST /model/update to k2),
// then through config.yaml and POST /config/reload (k1 -> k3).  The Bedrock mock
// (tests/mocks/bedrock_mock.mjs) has the three secrets registered for the one access key
// id and recomputes every request's SigV4 signature with each of them: its log says which
// secret signed (label k1, k2 or k3), so "which key was used" is read from the signature
// itself, not from anything the gateway reports.
//
// Checked: the streams started on k1 complete; no request signed with k1 started after
// /model/update (or /config/reload) returned; every request sent after a rotation, on every
// worker, is signed with the new secret; the old upstream client drains and is freed; no
// secret is echoed by the model API; the gateway stops cleanly.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, waitFor } from '../lib/harness.mjs';
import { startBedrockMock } from '../lib/mock_bedrock.mjs';
import {
  chat, streamOk, describeResult, poolStates, hitEveryWorker, waitPoolAtRest, assertCleanStop,
} from './lib_rotation.mjs';

const N = 20;
const CHUNKS = 10;
const INTERVAL_MS = 300;           // ~3 s streams
const WORKERS = 2;
const MASTER = 'sk-rot-bedrock-master';
const AKID = 'AKIAROTATIONTEST0001';
const S = { k1: 'rotation/secret-k1+AAAAAAAAAAAAAAAA', k2: 'rotation/secret-k2+BBBBBBBBBBBBBBBB', k3: 'rotation/secret-k3+CCCCCCCCCCCCCCCC' };
const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const SONNET = 'anthropic.claude-3-5-sonnet-20240620-v1:0';

const bmock = await startBedrockMock({
  credentials: Object.entries(S).map(([label, secret]) => ({ access_key_id: AKID, secret_access_key: secret, label })),
});
await bmock.script({
  rules: [{ match: { contains: 'rotation-stream' }, respond: { chunks: CHUNKS, chunk_interval_ms: INTERVAL_MS } }],
});
// rot-b (model API) and rot-c (config) differ in model, so each has its own upstream client
const params = (secret, model = HAIKU) => ({
  model: `bedrock/${model}`, api_base: bmock.base, aws_region_name: 'us-east-1',
  aws_access_key_id: AKID, aws_secret_access_key: secret,
});
const config = (secret) => ({
  model_list: [{ model_name: 'rot-c', litellm_params: params(secret, SONNET), model_info: { id: 'rot-config-1' } }],
  general_settings: { master_key: MASTER },
});
const gw = await startGateway({
  workers: WORKERS,
  config: config(S.k1),
  env: { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_SESSION_TOKEN: '', AWS_BEARER_TOKEN_BEDROCK: '' },
});
let stopped = null;
after(async () => {
  if (!stopped) await gw.stop();
  await bmock.stop();
});

let seq = 0;
const tag = (t) => `${t}-${seq++}`;
const streamBody = (model, t) => ({ model, messages: [{ role: 'user', content: `rotation-stream ${t}` }], stream: true });
const shortBody = (model, t) => () => ({ model, messages: [{ role: 'user', content: `short ${tag(t)}` }] });
/** Mock entries whose request text carries the word w, and their signing labels. */
const entriesWith = async (w) => (await bmock.log()).filter((e) => JSON.stringify(e.body ?? '').includes(w));
/** Every answer was 200 and every request it stands for was signed with `label`, on every worker. */
async function assertBurstSigned(results, prefix, label) {
  const workers = new Set(results.map((r) => r.worker));
  for (const r of results) assert.equal(r.status, 200, describeResult(r));
  assert.equal(workers.size, WORKERS, 'the burst reached every worker');
  const es = await entriesWith(prefix);
  assert.equal(es.length, results.length, `every ${prefix} request reached the mock`);
  for (const e of es) {
    assert.equal(e.auth?.verified, true, `${e.seq}: ${JSON.stringify(e.auth)}`);
    assert.equal(e.auth.label, label, `${e.seq} was signed with ${e.auth.label}`);
  }
}

let streamsB;
let streamsC;
let tUpdate;
let tReload;

test('POST /model/new with secret k1: every worker signs with k1; 20 streams start on k1', async () => {
  const r = await gw.request('/model/new', {
    method: 'POST', body: { model_name: 'rot-b', litellm_params: params(S.k1), model_info: { id: 'rot-bedrock-1' } },
  });
  assert.equal(r.status, 200, r.text);
  for (const s of Object.values(S)) assert.equal(r.text.includes(s), false, 'the secret is not echoed');
  await assertBurstSigned(await hitEveryWorker(gw, WORKERS, shortBody('rot-b', 'warm-b')), 'warm-b', 'k1');
  streamsB = Array.from({ length: N }, (_, i) => chat(gw, streamBody('rot-b', `b${i}`), { timeout: 120000 }));
  await waitFor(async () => (await bmock.stats()).in_progress >= N,
    { timeout: 30000, interval: 50, what: `${N} streams in progress at the mock` });
});

test('POST /model/update to k2: every request that starts after it returned is signed with k2', async () => {
  const r = await gw.request('/model/update', {
    method: 'POST', body: { model_info: { id: 'rot-bedrock-1' }, litellm_params: { aws_secret_access_key: S.k2 } },
  });
  tUpdate = Date.now();
  assert.equal(r.status, 200, r.text);
  for (const s of Object.values(S)) assert.equal(r.text.includes(s), false, 'the secret is not echoed');
  assert.equal((await bmock.stats()).in_progress, N, 'the k1 streams are still running');
  // the k1 client drains: it keeps the streams' connections and no idle one (a worker that
  // ran no stream may have freed it already); rot-c's and rot-b's new client take the rest
  await waitFor(async () => {
    const ws = await poolStates(gw);
    let busy = 0;
    for (const w of ws) {
      const dr = w.pool.clients.filter((c) => c.draining);
      if (dr.length > 1 || w.pool.clients.length - dr.length !== 2 || dr.some((c) => c.idle !== 0)) return false;
      busy += dr.reduce((a, c) => a + c.busy, 0);
    }
    return busy === N;
  }, { timeout: 10000, interval: 100, what: 'the k1 client draining with the streams on every worker' });
  await assertBurstSigned(await hitEveryWorker(gw, WORKERS, shortBody('rot-b', 'after-update')), 'after-update', 'k2');
});

test('config.yaml with k3 and POST /config/reload: every request after it returned is signed with k3', async () => {
  await assertBurstSigned(await hitEveryWorker(gw, WORKERS, shortBody('rot-c', 'warm-c')), 'warm-c', 'k1');
  streamsC = Array.from({ length: N }, (_, i) => chat(gw, streamBody('rot-c', `c${i}`), { timeout: 120000 }));
  await waitFor(async () => (await entriesWith('rotation-stream c')).filter((e) => e.outcome === 'in_progress').length >= N,
    { timeout: 30000, interval: 50, what: `${N} config-model streams in progress at the mock` });
  gw.writeConfig(config(S.k3));
  const r = await gw.reload();
  tReload = Date.now();
  assert.equal(r.status, 200, r.text);
  await assertBurstSigned(await hitEveryWorker(gw, WORKERS, shortBody('rot-c', 'after-reload')), 'after-reload', 'k3');
  // the model API's model is still on k2
  await assertBurstSigned(await hitEveryWorker(gw, WORKERS, shortBody('rot-b', 'b-still-k2')), 'b-still-k2', 'k2');
});

test('every stream started on k1 completes, signed with k1 at its start', { timeout: 120000 }, async () => {
  const all = [...(await Promise.all(streamsB)), ...(await Promise.all(streamsC))];
  for (const r of all) assert.ok(streamOk(r), describeResult(r));
  await waitFor(async () => (await entriesWith('rotation-stream')).every((e) => e.outcome !== 'in_progress'),
    { timeout: 10000, what: 'the mock to log every stream as ended' });
  const es = await entriesWith('rotation-stream');
  assert.equal(es.length, 2 * N);
  for (const e of es) {
    assert.equal(e.auth.label, 'k1', `${e.seq}`);
    assert.equal(e.outcome, 'complete', `${e.seq}`);
    // messageStart, the deltas, contentBlockStop, messageStop, metadata
    assert.equal(e.events_sent, CHUNKS + 4, `${e.seq}: every event was sent`);
  }
});

test('no request signed with an old secret started after the rotation that retired it returned', async () => {
  const es = await bmock.log();
  const text = (e) => JSON.stringify(e.body ?? '');
  const late = (tags, t) => es.filter((e) => e.auth?.label === 'k1' && e.t_start_ms > t && tags.test(text(e)))
    .map((e) => `${e.seq} ${e.t_start_ms} ${text(e)}`);
  assert.deepEqual(late(/warm-b|after-update|b-still-k2/, tUpdate), [], `k1 requests for rot-b after ${tUpdate}`);
  assert.deepEqual(late(/warm-c|after-reload/, tReload), [], `k1 requests for rot-c after ${tReload}`);
  assert.ok(es.some((e) => e.auth?.label === 'k1' && /warm-c/.test(text(e)) && e.t_start_ms > tUpdate),
    'the check can fail: k1 still signed rot-c after the update of rot-b');
  assert.ok(es.every((e) => e.auth?.verified === true), 'every request the mock saw had a valid signature');
});

test('the retired clients are freed; at rest live clients == those the snapshot uses', async () => {
  const ws = await waitPoolAtRest(gw, { live: 2 });
  for (const w of ws) {
    assert.ok(w.pool.clients_freed >= 2, `worker ${w.worker}: clients_freed ${w.pool.clients_freed}`);
  }
});

test('SIGTERM: the gateway exits cleanly with no sanitizer report on stderr', async () => {
  stopped = await assertCleanStop(gw);
});
