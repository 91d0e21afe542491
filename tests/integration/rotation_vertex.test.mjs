// Issue 14's rotation test for service-account keys (vertex_ai/): the seed's stale-key
// failure one level down.  A rotated vertex_credentials must never be answered from a token
// minted with the old key: the worker's token cache is keyed by the deployment's credential
// fingerprint, which covers the key's text (also when it comes from a file).
//
// Three ways to rotate, two workers each time, streams on the old key running across it:
//   1. config.yaml's inline vertex_credentials, POST /config/reload (SA1 -> SA2);
//   2. the key file a path names is replaced (same config text), POST /config/reload
//      (SA2 -> SA3);
//   3. a stored model, POST /model/update with new vertex_credentials (SA1 -> SA3).
// Checked each time: after the call returns, every request that reaches Vertex (on every
// worker) carries a token minted from the new key -- the Vertex mock names the account
// behind each token -- while the streams started before complete on the old one.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startGateway, waitFor, tmpDir } from '../lib/harness.mjs';
import { chat, streamOk, describeResult, hitEveryWorker, assertCleanStop } from './lib_rotation.mjs';
import {
  startTokenMock, startVertexMock, makeServiceAccount, newTokenSecret, vertexModelPath,
} from '../lib/mock_google.mjs';

const WORKERS = 2;
const NSTREAMS = 6;
const MASTER = 'sk-rot-vertex-master';
const secret = newTokenSecret();
const tok = await startTokenMock({ secret });
const vx = await startVertexMock({ secret });
const mk = (n) => makeServiceAccount({ email: `rot-sa${n}@proj-r.iam.gserviceaccount.com`, tokenUri: tok.tokenUri, project: 'proj-r' });
const SA1 = mk(1);
const SA2 = mk(2);
const SA3 = mk(3);
await tok.accounts([SA1, SA2, SA3]);
const keyFile = path.join(tmpDir('mg-rot-vertex-'), 'key.json');

const params = (creds, model = 'gemini-rot') => ({
  model: `vertex_ai/${model}`, vertex_project: 'proj-r', vertex_location: 'us-central1', vertex_credentials: creds,
  api_base: vertexModelPath(vx.base, { project: 'proj-r', model }),
});
const config = (creds) => ({
  model_list: [{ model_name: 'rot-v', litellm_params: params(creds) }],
  general_settings: { master_key: MASTER },
});
const gw = await startGateway({ workers: WORKERS, config: config(SA1.text) });
after(async () => { await gw.stop(); await vx.stop(); await tok.stop(); });

let seq = 0;
const short = (model) => () => ({ model, messages: [{ role: 'user', content: `hi ${++seq}` }], num_retries: 0 });
const stream = (model, i) => ({ model, stream: true, num_retries: 0, messages: [{ role: 'user', content: `stream ${i}` }] });

/** Starts streams that run across the rotation (the mock paces them). */
async function startStreams(model, upstream) {
  await vx.script([{ match: { model: upstream, stream: true }, respond: { content: 'a b c d e f g h i j', chunk_interval_ms: 150 } }]);
  const before = (await vx.stats()).in_progress;
  const ps = Array.from({ length: NSTREAMS }, (_, i) => chat(gw, stream(model, i), { timeout: 60000 }));
  await waitFor(async () => (await vx.stats()).in_progress >= before + NSTREAMS,
    { timeout: 20000, interval: 25, what: `${NSTREAMS} streams in progress at the Vertex mock` });
  return ps;
}

/** Every Vertex request after mark: from sa's tokens.  Returns them. */
async function allFrom(mark, sa, upstream) {
  const entries = (await vx.log(mark)).filter((e) => e.model === upstream && !e.stream);
  assert.ok(entries.length > 0);
  for (const e of entries) assert.equal(e.sa, sa.email, `request seq ${e.seq} (${e.path}) used a token of ${e.sa}`);
  return entries;
}

async function rotateAndCheck({ rotate, oldSa, newSa, model, upstream }) {
  const warm = await hitEveryWorker(gw, WORKERS, short(model));
  for (const r of warm) assert.equal(r.status, 200, describeResult(r));
  const streams = await startStreams(model, upstream);
  const r = await rotate();
  assert.equal(r.status, 200, r.text);
  const mark = (await vx.stats()).last_seq; // everything after this started after the call returned
  const burst = await hitEveryWorker(gw, WORKERS, short(model));
  for (const x of burst) assert.equal(x.status, 200, describeResult(x));
  await allFrom(mark, newSa, upstream);
  // the streams that started before kept their (old) token and ended cleanly
  const done = await Promise.all(streams);
  for (const d of done) assert.ok(streamOk(d), describeResult(d));
  const streamEntries = (await vx.log()).filter((e) => e.model === upstream && e.stream).slice(-NSTREAMS);
  for (const e of streamEntries) assert.equal(e.sa, oldSa.email);
  await vx.script([]);
  // and after they are gone, still only the new key
  const mark2 = (await vx.stats()).last_seq;
  await hitEveryWorker(gw, WORKERS, short(model));
  await allFrom(mark2, newSa, upstream);
}

test('inline vertex_credentials rotated by POST /config/reload: no request after it uses SA1\'s token', async () => {
  await rotateAndCheck({
    oldSa: SA1, newSa: SA2, model: 'rot-v', upstream: 'gemini-rot',
    rotate: () => { gw.writeConfig(config(SA2.text)); return gw.reload(); },
  });
  assert.ok((await tok.stats()).by_iss[SA2.email] >= 1, 'SA2 minted tokens');
});

test('a key file replaced under the same path, POST /config/reload: the new key is read and used', async () => {
  fs.writeFileSync(keyFile, SA2.text);
  gw.writeConfig(config(keyFile));
  assert.equal((await gw.reload()).status, 200);
  const mark = (await vx.stats()).last_seq;
  await hitEveryWorker(gw, WORKERS, short('rot-v'));
  await allFrom(mark, SA2, 'gemini-rot');
  await rotateAndCheck({
    oldSa: SA2, newSa: SA3, model: 'rot-v', upstream: 'gemini-rot',
    rotate: () => { fs.writeFileSync(keyFile, SA3.text); return gw.reload(); }, // config text unchanged
  });
});

test('a stored model rotated by POST /model/update: no request after it uses SA1\'s token', async () => {
  const created = await gw.request('/model/new', {
    method: 'POST',
    body: { model_name: 'rot-store', litellm_params: params(SA1.text, 'gemini-store'), model_info: { id: 'rot-store-1' } },
  });
  assert.equal(created.status, 200, created.text);
  assert.equal(created.json.litellm_params?.vertex_credentials, undefined, 'the key is not echoed');
  assert.ok(!created.text.includes('PRIVATE KEY'), 'no key material in the answer');
  await rotateAndCheck({
    oldSa: SA1, newSa: SA3, model: 'rot-store', upstream: 'gemini-store',
    rotate: () => gw.request('/model/update', {
      method: 'POST', body: { model_info: { id: 'rot-store-1' }, litellm_params: { vertex_credentials: SA3.text } },
    }),
  });
});

test('the gateway stops cleanly after the rotations (no sanitizer report)', async () => {
  await assertCleanStop(gw);
});
