// The second line of defence against header injection (issue 15, item 1): the
// code that writes response heads to clients and request heads to upstreams
// refuses a head with a raw CR, LF or NUL, whatever field it came from.
//
// Models with hostile fields are added through POST /model/new.  The first
// line of defence (validating fields where they come in) may refuse them
// there with a 4xx; then there is nothing more to see here, and the test only
// checks that.  If they get in, a request to them must get a 500 saying which
// header was refused, the injected header must not appear on the wire, the
// upstream must receive nothing, and neither the answer nor the log may quote
// the key.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, mockModel, waitFor } from '../lib/harness.mjs';
import { rawConnect, rawJsonPost } from './lib_extra.mjs';

const KEY = 'sk-test-master';
const SECRET = 'sk-hostile-0123456789';

const mock = await startMock();
const gw = await startGateway({
  config: {
    model_list: [mockModel(mock, 'plain', { model: 'openai/up-plain' })],
    general_settings: { master_key: KEY },
  },
  env: { LITELLM_LOG: 'INFO' }, // the failed attempts are logged at info: check they hide the key
});
after(async () => { await gw.stop(); await mock.stop(); });

/** Adds a model; returns true if it got in, false if the boundary refused it (4xx). */
async function addModel(model_name, params) {
  const r = await gw.request('/model/new', {
    method: 'POST', body: { model_name, litellm_params: { model: 'openai/up-x', ...params } },
  });
  if (r.status >= 400 && r.status < 500) return false; // the first line of defence
  assert.equal(r.status, 200, r.text);
  return true;
}

/** One chat request on a raw socket, so the head is seen exactly as sent. */
async function rawChat(model, tag, extra = {}) {
  const c = await rawConnect(gw.port);
  try {
    await c.send(rawJsonPost('/v1/chat/completions', {
      model, messages: [{ role: 'user', content: 'hi' }], mock: { content: tag }, ...extra,
    }, { key: KEY }));
    const r = await c.response({ timeout: 10000 });
    return { r };
  } finally { c.destroy(); }
}

const upstreamSaw = async (tag) => (await mock.log()).filter((e) => e.body?.mock?.content === tag);

for (const stream of [false, true]) {
  test(`a model name with a bare LF never reaches a response head (${stream ? 'streaming' : 'complete'})`, async () => {
    const name = `inj-${stream ? 's' : 'c'}\nX-Injected: yes`;
    if (!await addModel(name, { api_base: mock.url, api_key: 'sk-upstream-test' })) return;
    const refusals = () => (gw.output().stderr.match(
      /\[error\].*refusing to send a 200 response head with a raw CR\/LF\/NUL in header "x-litellm-model-group"/g) || []).length;
    const before = refusals();
    const { r } = await rawChat(name, `lf-name-${stream}`, stream ? { stream: true } : {});
    assert.equal(r.status, 500, r.body.toString());
    assert.equal(r.headers['x-injected'], undefined, 'the injected header is not on the wire');
    assert.equal(r.headers['content-type'], 'application/json', 'a JSON error, not an event stream');
    assert.equal(r.headers.connection, 'close');
    const msg = JSON.parse(r.body).error.message;
    assert.match(msg, /^moongate refused to send a response head with a raw CR\/LF\/NUL in header "x-litellm-model-group" \(byte 0x0a at offset \d+\)$/);
    await waitFor(() => refusals() > before, { what: 'the refusal in the log', timeout: 5000 });
    // the gateway still serves
    const ok = await gw.chat({ model: 'plain', messages: [{ role: 'user', content: 'hi' }], mock: { content: 'after' } });
    assert.equal(ok.status, 200, ok.text);
  });
}

test('an api_base with CR/LF never reaches the upstream request line', async () => {
  const name = 'inj-base';
  if (!await addModel(name, { api_base: `${mock.url}\r\nX-Up: 1`, api_key: 'sk-upstream-test' })) return;
  const tag = 'crlf-base';
  const { r } = await rawChat(name, tag, { num_retries: 0 });
  assert.equal(r.status, 500, r.body.toString());
  assert.match(JSON.parse(r.body).error.message,
    /refusing to send an upstream request head with a raw CR\/LF\/NUL in the request line/);
  assert.deepEqual(await upstreamSaw(tag), [], 'the upstream received nothing');
  assert.ok(!(await mock.log()).some((e) => e.headers?.['x-up'] !== undefined), 'no X-Up header upstream');
});

test('an api_key with a bare LF never reaches the upstream, and the key is not quoted', async () => {
  const name = 'inj-key';
  if (!await addModel(name, { api_base: mock.url, api_key: `${SECRET}\nX-Up: 1` })) return;
  const tag = 'lf-key';
  const { r } = await rawChat(name, tag, { num_retries: 0 });
  assert.equal(r.status, 500, r.body.toString());
  const msg = JSON.parse(r.body).error.message;
  assert.match(msg, /refusing to send an upstream request head with a raw CR\/LF\/NUL in header "authorization" \(byte 0x0a at offset \d+\)/);
  assert.ok(!r.body.toString().includes(SECRET.slice(3)), 'the answer does not quote the key');
  // the attempt's failure is logged (info level) with the refusal, not with the key
  await waitFor(() => /attempt failed.*refusing to send an upstream request head with a raw CR\/LF\/NUL in header "authorization"/
    .test(gw.output().stderr), { what: 'the failed attempt in the log', timeout: 5000 });
  assert.ok(!gw.output().stderr.includes(SECRET.slice(3)), 'the log does not quote the key');
  assert.deepEqual(await upstreamSaw(tag), [], 'the upstream received nothing');
});
