// Self-test of the Google mocks (tests/mocks/google_token_mock.mjs, vertex_mock.mjs,
// gemini_mock.mjs), without moongate: the checks that make the provider tests meaningful
// must refuse what the real services refuse.  The token endpoint refuses an assertion
// signed by another key, for another audience or scope, expired or too long-lived; the
// Vertex mock refuses a forged or expired token; the Gemini mock refuses a key in the URL,
// a missing or unknown key, and bodies Google would refuse.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { waitFor } from '../lib/harness.mjs';
import {
  startTokenMock, startVertexMock, startGeminiMock, makeServiceAccount, newTokenSecret, vertexModelPath,
} from '../lib/mock_google.mjs';

const secret = newTokenSecret();
const tok = await startTokenMock({ secret });
const vx = await startVertexMock({ secret });
const gm = await startGeminiMock({ keys: ['AIzaSy-mock-self-test-key-000000000001'] });
after(async () => { await tok.stop(); await vx.stop(); await gm.stop(); });
const sa = makeServiceAccount({ email: 'self@proj.iam.gserviceaccount.com', tokenUri: tok.tokenUri });
const other = makeServiceAccount({ email: 'other@proj.iam.gserviceaccount.com', tokenUri: tok.tokenUri });
await tok.accounts([sa]);

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
function jwt(claims, { key = sa.privatePem, kid = sa.kid } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64({ alg: 'RS256', typ: 'JWT', kid });
  const body = b64({ iss: sa.email, scope: 'https://www.googleapis.com/auth/cloud-platform', aud: tok.tokenUri, iat: now, exp: now + 3600, ...claims });
  const sig = crypto.sign('RSA-SHA256', Buffer.from(`${head}.${body}`), key).toString('base64url');
  return `${head}.${body}.${sig}`;
}
async function exchange(assertion) {
  const r = await fetch(tok.tokenUri, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString(),
  });
  return { status: r.status, json: await r.json() };
}

test('token endpoint: a good assertion gets a distinct token each time', async () => {
  const a = await exchange(jwt({}));
  const b = await exchange(jwt({}));
  assert.equal(a.status, 200);
  assert.equal(a.json.token_type, 'Bearer');
  assert.equal(a.json.expires_in, 3599);
  assert.notEqual(a.json.access_token, b.json.access_token);
});

test('token endpoint: refuses another key, audience, scope, lifetime, or an unknown account', async () => {
  const now = Math.floor(Date.now() / 1000);
  const cases = [
    [jwt({}, { key: other.privatePem }), /Invalid JWT Signature/],
    [jwt({ aud: 'https://oauth2.googleapis.com/token' }), /audience/],
    [jwt({ scope: 'https://www.googleapis.com/auth/userinfo.email' }), /scope/],
    [jwt({ iat: now - 7200, exp: now - 3600 }), /short-lived/],
    [jwt({ exp: now + 7200 }), /short-lived/],
    [jwt({ iss: other.email }, { key: other.privatePem }), /account not found/],
    [jwt({}, { kid: 'another-key-id' }), /Invalid JWT Signature/],
    ['not.a.jwt', /Invalid JWT/],
  ];
  for (const [assertion, re] of cases) {
    const r = await exchange(assertion);
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.match(r.json.error_description, re);
  }
});

test('Vertex mock: only the token endpoint\'s unexpired tokens, named by account', async () => {
  const url = `${vertexModelPath(vx.base, { model: 'gemini-2.0-flash' })}:generateContent`;
  const body = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] });
  const call = (auth) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) }, body });
  const good = (await exchange(jwt({}))).json.access_token;
  assert.equal((await call(`Bearer ${good}`)).status, 200);
  assert.equal((await vx.log()).pop().sa, sa.email);
  assert.equal((await call(null)).status, 401);
  const forged = `${good.slice(0, -3)}abc`;
  assert.equal((await call(`Bearer ${forged}`)).status, 401);
  await tok.script([{ respond: { expires_in: 1 } }]);
  const shortLived = (await exchange(jwt({}))).json.access_token;
  await tok.script([]);
  assert.equal((await call(`Bearer ${shortLived}`)).status, 200);
  // once its second is over the same token is refused (polled, bounded)
  const r = await waitFor(async () => {
    const x = await call(`Bearer ${shortLived}`);
    return x.status === 401 ? x : (await x.text(), false);
  }, { timeout: 5000, interval: 100, what: 'the 1 s token to expire' });
  assert.match((await r.json()).error.message, /token expired/);
});

test('Gemini mock: the key in the header only; bodies checked as Google checks them', async () => {
  const url = `${gm.base}/v1beta/models/gemini-2.0-flash:generateContent`;
  const ok = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] });
  const post = (u, headers, body = ok) => fetch(u, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const key = { 'x-goog-api-key': 'AIzaSy-mock-self-test-key-000000000001' };
  assert.equal((await post(url, key)).status, 200);
  const inUrl = await post(`${url}?key=AIzaSy-mock-self-test-key-000000000001`, {});
  assert.equal(inUrl.status, 400);
  assert.match((await inUrl.json()).error.message, /not in the URL/);
  assert.equal((await post(url, {})).status, 403);
  const bad = await post(url, { 'x-goog-api-key': 'AIzaSy-unknown' });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error.message, /API key not valid/);
  for (const [body, re] of [
    [{ contents: [] }, /contents is not specified/],
    [{ contents: [{ role: 'assistant', parts: [{ text: 'x' }] }] }, /valid role/],
    [{ contents: [{ role: 'user', parts: [{ text: 'x' }] }], temperature: 1 }, /Unknown name "temperature"/],
    [{ contents: [{ role: 'user', parts: [{ text: 'x' }] }], generationConfig: { max_tokens: 3 } }, /Unknown name "max_tokens"/],
    [{ contents: [{ role: 'user', parts: [] }] }, /must not be empty/],
    [{ contents: [{ role: 'user', parts: [{ text: 'x' }] }], tools: [{ functionDeclarations: [{ name: 'f', parameters: { type: 'object', additionalProperties: false } }] }] }, /Unknown name "additionalProperties"/],
  ]) {
    const r = await post(url, key, JSON.stringify(body));
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.match((await r.json()).error.message, re);
  }
});
