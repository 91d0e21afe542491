// The official openai client against virtual keys: a wrong key is an AuthenticationError
// (401), not LiteLLM's "No connected db." 400; so is a key not allowed the model it asks
// for, a blocked key and an expired one; a good key gets its answer and /v1/models lists
// what it may call.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startKeysGateway, post, expectStatus, probe, stopsClean } from './keys_lib.mjs';
import { waitFor } from '../lib/harness.mjs';

const inst = await startKeysGateway({ workers: 2 });
const { gw } = inst;
after(async () => { await inst.stop(); });
const skip = await probe(gw);
if (skip) console.log(`# SKIP: ${skip}`);
const t = (name, fn) => test(name, { skip: skip || false }, fn);

const client = (apiKey) => new OpenAI({ apiKey, baseURL: `${gw.url}/v1`, maxRetries: 0 });
const ask = (c, model = 'm1') => c.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });

async function refusal(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('the call was not refused');
}

t('a good key: its answer and its models', async () => {
  const k = expectStatus(await post(gw, '/key/generate', { models: ['m1', 'm3'] }), 200, 'key');
  const c = client(k.key);
  const r = await ask(c);
  assert.equal(r.choices[0].message.content, 'answer from m1');
  const ids = [];
  for await (const m of c.models.list()) ids.push(m.id);
  assert.deepEqual(ids.sort(), ['m1', 'm3']);
});

t('a wrong key: AuthenticationError 401', async () => {
  for (const bad of ['sk-wrong-key-0000', 'not-even-sk']) {
    const e = await refusal(ask(client(bad)));
    assert.ok(e instanceof OpenAI.AuthenticationError, `${bad}: ${e}`);
    assert.equal(e.status, 401);
    assert.match(e.message, /Authentication Error/);
    assert.ok(!e.message.includes(bad), 'the key is not echoed');
  }
});

t('a key not allowed the model: AuthenticationError 401 naming the model', async () => {
  const k = expectStatus(await post(gw, '/key/generate', { models: ['m1'] }), 200, 'key');
  const e = await refusal(ask(client(k.key), 'm2'));
  assert.ok(e instanceof OpenAI.AuthenticationError, String(e));
  assert.equal(e.status, 401);
  assert.match(e.message, /key not allowed to access model. This key can only access models=\['m1'\]. Tried to access m2/);
});

t('a blocked key and an expired key: AuthenticationError 401', async () => {
  const k = expectStatus(await post(gw, '/key/generate', {}), 200, 'key');
  expectStatus(await post(gw, '/key/block', { key: k.key }), 200, 'block');
  const b = await refusal(ask(client(k.key)));
  assert.ok(b instanceof OpenAI.AuthenticationError, String(b));
  assert.match(b.message, /Key is blocked/);
  // a key whose expiry has passed (LiteLLM's durations are whole seconds at least)
  const x = expectStatus(await post(gw, '/key/generate', { duration: '1s' }), 200, 'short key');
  const expiry = Date.parse(x.expires);
  let e;
  await waitFor(async () => {
    if (Date.now() <= expiry) return false;
    try { await ask(client(x.key)); return false; } catch (err) { e = err; return true; }
  }, { timeout: 10000, what: 'the key to expire' });
  assert.ok(e instanceof OpenAI.AuthenticationError, String(e));
  assert.equal(e.status, 401);
  assert.match(e.message, /Authentication Error - Expired Key/);
});

stopsClean(test, inst);
