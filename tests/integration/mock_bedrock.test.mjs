// Self-test of tests/mocks/bedrock_mock.mjs, without moongate: the mock must refuse what
// bedrock-runtime refuses, or the provider tests that rely on it prove nothing.
//
// Requests are signed here by a SigV4 signer written in this file (AWS's documented
// algorithm; the mock's verifier is separate code), and then spoiled one way at a time:
// another secret, a body changed after signing, a header that was signed changed, a
// missing or wrong session token, a clock far off, another service, the path encoded
// only once.  The event-stream answers are decoded here with both CRCs checked, and a
// split stream must reassemble to the same bytes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { startBedrockMock } from '../lib/mock_bedrock.mjs';

const C = { access_key_id: 'AKIAMOCKSELFTEST0001', secret_access_key: 'self/test+secret0001', label: 'c' };
const T = { access_key_id: 'ASIAMOCKSELFTEST0002', secret_access_key: 'self/test+secret0002', session_token: 'tok-0002', label: 't' };
const mock = await startBedrockMock({ credentials: [C, T], bearers: ['ABSKselftest'] });
after(async () => { await mock.stop(); });

const hex = (b) => createHash('sha256').update(b).digest('hex');
const hmac = (k, s) => createHmac('sha256', k).update(s).digest();
/** encodeURIComponent plus the characters it leaves alone that AWS encodes. */
const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * Signs POST <path> (the wire path, segments already encoded once) and returns fetch init.
 * spoil: {secret, body, date, service, singleEncode, token, dropToken} changes one thing.
 */
function signed(path, bodyObj, cred, spoil = {}) {
  const body = JSON.stringify(bodyObj);
  const now = spoil.date ?? new Date();
  const amz = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amz.slice(0, 8);
  const region = 'us-east-1';
  const service = spoil.service ?? 'bedrock';
  const host = `127.0.0.1:${mock.port}`;
  const headers = { 'content-type': 'application/json', host, 'x-amz-date': amz };
  const token = spoil.token ?? cred.session_token;
  if (token && !spoil.dropToken) headers['x-amz-security-token'] = token;
  const names = Object.keys(headers).sort();
  const canonPath = spoil.singleEncode ? path : path.split('/').map(enc).join('/');
  const canonical = ['POST', canonPath, '', names.map((n) => `${n}:${headers[n]}\n`).join(''), names.join(';'), hex(body)].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const sts = `AWS4-HMAC-SHA256\n${amz}\n${scope}\n${hex(canonical)}`;
  const secret = spoil.secret ?? cred.secret_access_key;
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), 'aws4_request');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${cred.access_key_id}/${scope}, SignedHeaders=${names.join(';')}, Signature=${hmac(key, sts).toString('hex')}`;
  delete headers.host;
  return { method: 'POST', headers, body: spoil.body ?? body };
}

const MODEL = 'anthropic.claude-3-haiku-20240307-v1:0';
const PATH = `/model/${enc(MODEL)}/converse`;
const HI = { messages: [{ role: 'user', content: [{ text: 'hi' }] }] };
async function call(path, init) {
  const r = await fetch(mock.base + path, init);
  const buf = Buffer.from(await r.arrayBuffer());
  let json = null;
  try { json = JSON.parse(buf.toString('utf8')); } catch { /* event-stream bytes */ }
  return { status: r.status, type: r.headers.get('x-amzn-errortype'), ctype: r.headers.get('content-type'), buf, json };
}

test('a correct signature is accepted and the log names the credential', async () => {
  const r = await call(PATH, signed(`/model/${enc(MODEL)}/converse`, HI, C));
  assert.equal(r.status, 200, r.buf.toString());
  assert.equal(r.json.output.message.content[0].text, `mock reply from ${MODEL}`);
  assert.equal(r.json.stopReason, 'end_turn');
  const e = (await mock.log()).at(-1);
  assert.equal(e.auth.verified, true);
  assert.equal(e.auth.label, 'c');
  assert.equal(e.raw_model, enc(MODEL));
  const t = await call(PATH, signed(PATH, HI, T));
  assert.equal(t.status, 200, t.buf.toString());
  assert.equal((await mock.log()).at(-1).auth.session_token, T.session_token);
  const b = await call(PATH, { method: 'POST', headers: { authorization: 'Bearer ABSKselftest', 'content-type': 'application/json' }, body: JSON.stringify(HI) });
  assert.equal(b.status, 200);
});

test('every spoiled signature is refused as bedrock-runtime refuses it', async () => {
  const cases = [
    ['another secret', signed(PATH, HI, C, { secret: 'self/test+other' }), 'InvalidSignatureException'],
    ['the body changed after signing', signed(PATH, HI, C, { body: JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'ho' }] }] }) }), 'InvalidSignatureException'],
    ['the path encoded once in the canonical request', signed(PATH, HI, C, { singleEncode: true }), 'InvalidSignatureException'],
    ['another service', signed(PATH, HI, C, { service: 'bedrock-runtime' }), 'InvalidSignatureException'],
    ['a clock an hour off', signed(PATH, HI, C, { date: new Date(Date.now() - 3600e3) }), 'InvalidSignatureException'],
    ['no session token for a token credential', signed(PATH, HI, T, { dropToken: true }), 'UnrecognizedClientException'],
    ['a wrong session token', signed(PATH, HI, T, { token: 'tok-9999' }), 'UnrecognizedClientException'],
    ['an unknown access key id', signed(PATH, HI, { ...C, access_key_id: 'AKIAUNKNOWN000000000' }), 'UnrecognizedClientException'],
    ['no authorization', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(HI) }, 'MissingAuthenticationTokenException'],
    ['a wrong Bedrock API key', { method: 'POST', headers: { authorization: 'Bearer ABSKnope', 'content-type': 'application/json' }, body: JSON.stringify(HI) }, 'UnrecognizedClientException'],
  ];
  for (const [what, init, type] of cases) {
    const r = await call(PATH, init);
    assert.equal(r.status, 403, `${what}: ${r.buf}`);
    assert.equal(r.type.split(':')[0], type, what);
    assert.equal(typeof r.json.message, 'string', what);
  }
  // a signed header changed in transit
  const init = signed(PATH, HI, C);
  init.headers['x-amz-date'] = init.headers['x-amz-date'].replace(/\d{2}Z$/, (m) => `${String((+m.slice(0, 2) + 1) % 60).padStart(2, '0')}Z`);
  const r = await call(PATH, init);
  assert.equal(r.status, 403);
  assert.match(r.json.message, /^The request signature we calculated does not match the signature you provided/);
  assert.match(r.json.message, /The Canonical String for this request should have been/);
});

test('bodies bedrock-runtime refuses are refused', async () => {
  const bad = [
    [{ messages: [{ role: 'assistant', content: [{ text: 'x' }] }] }, /must start with a user message/],
    [{ messages: [{ role: 'user', content: [{ text: 'a' }] }, { role: 'user', content: [{ text: 'b' }] }] }, /must alternate between user and assistant/],
    [{ messages: [{ role: 'user', content: [{ text: ' ' }] }] }, /is blank/],
    [{ messages: [{ role: 'user', content: [{ text: 'x' }] }], model: MODEL }, /extraneous key \[model\]/],
    [{ messages: [{ role: 'user', content: [{ text: 'x' }] }, { role: 'assistant', content: [{ toolUse: { toolUseId: 't1', name: 'f', input: {} } }] }, { role: 'user', content: [{ toolResult: { toolUseId: 't1', content: [{ text: 'r' }] } }] }] }, /toolConfig field must be defined/],
    [{ messages: [{ role: 'user', content: [{ text: 'x' }] }], inferenceConfig: { temperature: 3 } }, /temperature/],
  ];
  for (const [body, re] of bad) {
    const r = await call(PATH, signed(PATH, body, C));
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.type.split(':')[0], 'ValidationException');
    assert.match(r.json.message, re);
  }
  const ip = `/model/${enc(MODEL)}/invoke`;
  const inv = await call(ip, signed(ip, { model: MODEL, anthropic_version: 'bedrock-2023-05-31', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }, C));
  assert.equal(inv.status, 400);
  assert.equal(inv.json.message, 'Malformed input request: #: extraneous key [model] is not permitted, please reformat your input and try again.');
  const inv2 = await call(ip, signed(ip, { max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }, C));
  assert.match(inv2.json.message, /required key \[anthropic_version\] not found/);
});

/** Decodes event-stream bytes, checking both CRCs; returns [{headers, payload}]. */
function decodeFrames(buf) {
  const out = [];
  let at = 0;
  while (at < buf.length) {
    const total = buf.readUInt32BE(at);
    const hlen = buf.readUInt32BE(at + 4);
    assert.equal(buf.readUInt32BE(at + 8), crc32(buf.subarray(at, at + 8)), `prelude CRC of the frame at ${at}`);
    assert.equal(buf.readUInt32BE(at + total - 4), crc32(buf.subarray(at, at + total - 4)), `message CRC of the frame at ${at}`);
    const headers = {};
    let h = at + 12;
    while (h < at + 12 + hlen) {
      const nl = buf[h];
      const name = buf.subarray(h + 1, h + 1 + nl).toString();
      assert.equal(buf[h + 1 + nl], 7, 'string headers');
      const vl = buf.readUInt16BE(h + 2 + nl);
      headers[name] = buf.subarray(h + 4 + nl, h + 4 + nl + vl).toString();
      h += 4 + nl + vl;
    }
    out.push({ headers, payload: JSON.parse(buf.subarray(at + 12 + hlen, at + total - 4).toString()) });
    at += total;
  }
  return out;
}

test('ConverseStream and InvokeModelWithResponseStream frames: CRCs, names, payloads, splits', async () => {
  await mock.script({ rules: [
    { match: { contains: 'split' }, respond: { content: 'a b c', split_bytes: 7, write_interval_ms: 0 } },
    { match: { contains: 'plain' }, respond: { content: 'a b c' } },
  ] });
  const sp = `/model/${enc(MODEL)}/converse-stream`;
  const plain = await call(sp, signed(sp, { messages: [{ role: 'user', content: [{ text: 'plain' }] }] }, C));
  assert.equal(plain.ctype, 'application/vnd.amazon.eventstream');
  const frames = decodeFrames(plain.buf);
  assert.deepEqual(frames.map((f) => f.headers[':event-type']), ['messageStart', 'contentBlockDelta', 'contentBlockDelta', 'contentBlockDelta', 'contentBlockStop', 'messageStop', 'metadata']);
  assert.ok(frames.every((f) => f.headers[':message-type'] === 'event' && f.headers[':content-type'] === 'application/json'));
  assert.equal(frames.slice(1, 4).map((f) => f.payload.delta.text).join(''), 'a b c');
  assert.ok(frames.every((f) => typeof f.payload.p === 'string'), 'padding on every payload');
  const split = await call(sp, signed(sp, { messages: [{ role: 'user', content: [{ text: 'split' }] }] }, C));
  assert.deepEqual(decodeFrames(split.buf).map((f) => f.payload), frames.map((f) => f.payload));
  const ip = `/model/${enc(MODEL)}/invoke-with-response-stream`;
  const inv = await call(ip, signed(ip, { anthropic_version: 'bedrock-2023-05-31', max_tokens: 9, messages: [{ role: 'user', content: 'plain' }] }, C));
  const ev = decodeFrames(inv.buf).map((f) => JSON.parse(Buffer.from(f.payload.bytes, 'base64').toString()));
  assert.deepEqual(ev.map((e) => e.type), ['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
  assert.ok(ev.at(-1)['amazon-bedrock-invocationMetrics'], 'invocation metrics on message_stop');
  await mock.script({ rules: [] });
});
