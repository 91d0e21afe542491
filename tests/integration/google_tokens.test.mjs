// The access-token step of vertex_ai/ end to end (ops->prepare and the per-worker token
// cache, core/providers/mg_token.h): the mock token endpoint (tests/mocks/
// google_token_mock.mjs) verifies each JWT assertion against the public half of a key this
// test generated, the Vertex mock accepts only tokens it minted and says which key minted
// each.
//
// Checked: a burst on a cold cache makes exactly one token request per worker that served
// it; a client that goes away while its request waits for a token leaves nothing behind
// (the others are served, the fetch still fills the cache, nothing is sent for the gone
// client); a refusing token endpoint is a 401 AuthenticationError whose message names the
// refusal and never holds the private key, the assertion or a token; a token endpoint that
// is down or hangs is a retriable error or a timeout; short-lived tokens are refreshed
// before they expire (no request ever carries an expired one).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startGateway, waitFor } from '../lib/harness.mjs';
import { chat, assertCleanStop } from './lib_rotation.mjs';
import {
  startTokenMock, startVertexMock, makeServiceAccount, newTokenSecret, vertexModelPath,
} from '../lib/mock_google.mjs';

const MASTER = 'sk-test-master-google-tokens';
const secret = newTokenSecret();
const tok = await startTokenMock({ secret });
const vx = await startVertexMock({ secret });
const mk = (email) => makeServiceAccount({ email, tokenUri: tok.tokenUri, project: 'proj-t' });
const SA = {
  burst: mk('burst@proj-t.iam.gserviceaccount.com'),
  gone: mk('gone@proj-t.iam.gserviceaccount.com'),
  short: mk('short@proj-t.iam.gserviceaccount.com'),
  down: mk('down@proj-t.iam.gserviceaccount.com'),
  hang: mk('hang@proj-t.iam.gserviceaccount.com'),
  unknown: mk('unknown@proj-t.iam.gserviceaccount.com'), // never registered: refused
};
await tok.accounts(Object.values(SA).filter((s) => s !== SA.unknown));

const dep = (name, sa, model, extra = {}) => ({
  model_name: name,
  litellm_params: {
    model: `vertex_ai/${model}`, vertex_project: 'proj-t', vertex_location: 'us-central1',
    vertex_credentials: sa.text, api_base: vertexModelPath(vx.base, { project: 'proj-t', model }),
    cooldown_time: 0, ...extra,
  },
});
const config = {
  model_list: [
    dep('burst', SA.burst, 'gemini-burst'),
    dep('gone', SA.gone, 'gemini-gone'),
    dep('short', SA.short, 'gemini-short'),
    dep('down', SA.down, 'gemini-down'),
    dep('hang', SA.hang, 'gemini-hang', { timeout: 1 }),
    dep('unknown', SA.unknown, 'gemini-unknown'),
  ],
  general_settings: { master_key: MASTER },
};
const WORKERS = 2;
const gw2 = await startGateway({ workers: WORKERS, config });
const gw1 = await startGateway({ workers: 1, config });
after(async () => { await gw2.stop(); await gw1.stop(); await vx.stop(); await tok.stop(); });

const body = (model, marker) => ({ model, messages: [{ role: 'user', content: `hello ${marker}` }], num_retries: 0 });
const mintedFor = async (email) => (await tok.stats()).by_iss[email] ?? 0;

test('a burst on a cold cache: one token request per worker, every request served with it', async () => {
  await tok.script([{ match: { iss: SA.burst.email }, respond: { latency_ms: 400 } }]); // they pile up
  const N = 40;
  const rs = await Promise.all(Array.from({ length: N }, (_, i) => chat(gw2, body('burst', `b-${i}`), { timeout: 30000 })));
  const workers = new Set();
  for (const r of rs) {
    assert.equal(r.status, 200, r.text);
    workers.add(r.worker);
  }
  assert.equal(await mintedFor(SA.burst.email), workers.size,
    `one token per worker that served the burst (workers ${[...workers]})`);
  const entries = (await vx.log()).filter((e) => e.model === 'gemini-burst');
  assert.equal(entries.length, N);
  const serials = new Set(entries.map((e) => e.token_serial));
  assert.equal(serials.size, workers.size, 'each worker used its one token');
  for (const e of entries) assert.equal(e.sa, SA.burst.email);
  // warm now: more requests, no more token requests
  await Promise.all(Array.from({ length: 10 }, (_, i) => chat(gw2, body('burst', `w-${i}`), { timeout: 30000 })));
  assert.equal(await mintedFor(SA.burst.email), workers.size);
  await tok.script([]);
});

test('a client that goes away while its request waits for a token leaves nothing behind', async () => {
  await tok.script([{ match: { iss: SA.gone.email }, times: 1, respond: { latency_ms: 1500 } }]);
  const seqBefore = (await vx.stats()).last_seq;
  const goneP = chat(gw1, body('gone', 'gone-client'), { abortAfterMs: 200, timeout: 30000 });
  const stayP = chat(gw1, body('gone', 'staying-client'), { timeout: 30000 });
  const gone = await goneP;
  assert.equal(gone.aborted, true);
  const stay = await stayP;
  assert.equal(stay.status, 200, stay.text);
  const entries = (await vx.log(seqBefore)).filter((e) => e.model === 'gemini-gone');
  assert.deepEqual(entries.map((e) => JSON.stringify(e.body).includes('staying-client')), [true],
    'only the client that stayed reached Vertex');
  assert.equal(await mintedFor(SA.gone.email), 1);
  // the only waiter leaves: the fetch still completes and fills the cache
  await tok.script([{ match: { iss: SA.gone.email }, times: 1, respond: { latency_ms: 800 } }]);
  const r = await gw1.request('/moongate/state'); // the worker is alive
  assert.equal(r.status, 200);
  const again = await chat(gw1, body('gone', 'after'), { timeout: 30000 });
  assert.equal(again.status, 200);
  assert.equal(await mintedFor(SA.gone.email), 1, 'the cached token, no new request');
  await tok.script([]);
});

test('a refusing token endpoint: 401 AuthenticationError, no secret in the message', async () => {
  const openai = new OpenAI({ apiKey: MASTER, baseURL: `${gw1.url}/v1`, maxRetries: 0 });
  await assert.rejects(openai.chat.completions.create(body('unknown', 'refused')), (e) => {
    assert.equal(e.status, 401, e.message);
    assert.match(e.message, /^401 litellm\.AuthenticationError: Vertex_aiException - token request for service account unknown@proj-t\.iam\.gserviceaccount\.com: token endpoint refused: invalid_grant: Invalid grant: account not found/);
    const pemBody = SA.unknown.privatePem.split('\n')[5];
    assert.ok(!e.message.includes(pemBody), 'no private key');
    assert.ok(!/eyJ[A-Za-z0-9_-]{10,}/.test(e.message), 'no assertion');
    assert.ok(!e.message.includes('ya29.'), 'no token');
    return true;
  });
  const entries = (await vx.log()).filter((e) => e.model === 'gemini-unknown');
  assert.equal(entries.length, 0, 'nothing was sent to Vertex');
  const refusals = (await tok.log()).filter((e) => e.iss === SA.unknown.email);
  assert.ok(refusals.length >= 1 && refusals.every((e) => e.ok === false));
  assert.match(refusals[0].refusal, /account not found/);
});

test('a token endpoint that is down is a retriable 500; one that hangs ends in a timeout', async () => {
  await tok.script([
    { match: { iss: SA.down.email }, respond: { status: 503, error_message: 'backend unavailable' } },
    { match: { iss: SA.hang.email }, respond: { hang: true } },
  ]);
  const down = await gw1.chat(body('down', 'down'));
  assert.equal(down.status, 500, down.text);
  assert.match(down.json.error.message, /Vertex_aiException - Connection error\. \(token request for service account down@/);
  const hang = await gw1.chat(body('hang', 'hang'));
  assert.equal(hang.status, 408, hang.text);
  assert.match(hang.json.error.message, /litellm\.Timeout/);
  assert.match(hang.json.error.message, /no access token for deployment/);
  await tok.script([]);
});

test('short-lived tokens are refreshed before they expire: no request carries an expired one', async () => {
  await tok.script([{ match: { iss: SA.short.email }, respond: { expires_in: 2 } }]);
  const seqBefore = (await vx.stats()).last_seq;
  let first = null;
  let n = 0;
  await waitFor(async () => {
    const r = await chat(gw1, body('short', `s-${n++}`), { timeout: 10000 });
    assert.equal(r.status, 200, `request ${n}: ${r.text}`);
    const e = (await vx.log(seqBefore)).filter((x) => x.model === 'gemini-short').pop();
    first ??= e.token_serial;
    // a second token, then at least one request with it after the first expired
    return e.token_serial !== first && n > 25;
  }, { timeout: 20000, interval: 100, what: 'a refreshed token in use' });
  const entries = (await vx.log(seqBefore)).filter((x) => x.model === 'gemini-short');
  assert.ok(entries.every((e) => e.status === 200 && e.check_error === null), 'no expired token reached Vertex');
  const serials = new Set(entries.map((e) => e.token_serial));
  assert.ok(serials.size >= 2);
  assert.ok(await mintedFor(SA.short.email) <= serials.size + 1, 'one refresh at a time, not one per request');
  await tok.script([]);
});

test('both gateways stop cleanly: a hung token fetch cancelled, no sanitizer report', async () => {
  await tok.script([{ match: { iss: SA.hang.email }, respond: { hang: true } }]);
  // a fetch hangs at the token endpoint while the gateway stops; the waiting client goes away
  const waiting = chat(gw1, body('hang', 'at-stop'), { abortAfterMs: 300, timeout: 30000 });
  await waitFor(async () => (await tok.log()).some((e) => e.iss === SA.hang.email && e.outcome === 'in_progress'),
    { timeout: 10000, what: 'a token request hanging at the endpoint' });
  await waiting;
  await assertCleanStop(gw1);
  await assertCleanStop(gw2);
  await tok.script([]);
});
