#!/usr/bin/env node
// tests/mocks/google_token_mock.mjs -- a mock of Google's OAuth 2.0 token endpoint
// (https://oauth2.googleapis.com/token) for service-account JWT assertions (RFC 7523).
//
// POST /token with grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>.
// The assertion is checked as Google checks it: RS256, signed by the private key of a
// registered service account (the test registers each account's PUBLIC key, generated with
// node:crypto, through POST /__mock/accounts), iss = that account's client_email, aud = this
// endpoint's own URL, scope containing cloud-platform, iat/exp integers with exp - iat at
// most one hour and the assertion not expired; kid, when given, must be the account's
// private_key_id.  A refusal is Google's {"error":"invalid_grant","error_description":...}.
// A good assertion gets a distinct token each time:
//   ya29.mock.<base64url {"e": client_email, "n": serial, "x": expiry ms}>.<base64url HMAC>
// signed with --token-secret, so the Vertex mock (same secret) accepts exactly the tokens
// this endpoint minted and knows which account minted each.
//
// Control API (tests/mocks/README.md): /__mock/script (behaviours: latency_ms, hang,
// reset_before_response, status + body, expires_in; rules match on iss and path),
// /__mock/log (one entry per token request: iss, kid, ok, refusal, token serial),
// /__mock/stats (+ minted, refused, by_iss), /__mock/reset, and:
//   POST /__mock/accounts {"accounts":[{client_email, public_key, private_key_id}], "append"}
//   GET  /__mock/tokens   every token minted: {serial, client_email, expires_ms, token}

import crypto from 'node:crypto';
import { commandLine, createMock, GoogleError, COMMON_BEHAVIOURS } from './google_common.mjs';

const opts = commandLine('google_token_mock', { 'token-secret': { type: 'string' } });
if (!opts['token-secret']) {
  process.stderr.write('google_token_mock: --token-secret is required (shared with vertex_mock.mjs)\n');
  process.exit(2);
}
const secret = opts['token-secret'];
const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

let accounts = new Map(); // client_email -> { key: KeyObject, kid }
let minted = [];
let serial = 0;
let refused = 0;
const byIss = {};

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function mintToken(email, expiresMs, n, key) {
  const payload = b64url(JSON.stringify({ e: email, n, x: expiresMs }));
  const mac = crypto.createHmac('sha256', key).update(payload).digest('base64url');
  return `ya29.mock.${payload}.${mac}`;
}

class Refusal extends Error {
  constructor(desc, error = 'invalid_grant', status = 400) {
    super(desc);
    this.error = error;
    this.status = status;
  }
}

/** Verifies a JWT assertion; returns {iss, kid}.  Throws Refusal as Google words it. */
function verify(assertion, aud) {
  const parts = String(assertion || '').split('.');
  if (parts.length !== 3) throw new Refusal('Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
  let header;
  let claims;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    throw new Refusal('Invalid JWT: the header or claims are not base64url JSON.');
  }
  if (header.alg !== 'RS256') throw new Refusal(`Invalid JWT: alg "${header.alg}" is not RS256.`);
  if (header.typ !== undefined && header.typ !== 'JWT') throw new Refusal('Invalid JWT: typ is not JWT.');
  const acct = accounts.get(claims.iss);
  if (!acct) throw new Refusal('Invalid grant: account not found');
  if (header.kid !== undefined && acct.kid !== undefined && header.kid !== acct.kid) throw new Refusal('Invalid JWT Signature.');
  const ok = crypto.verify('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`), acct.key, Buffer.from(parts[2], 'base64url'));
  if (!ok) throw new Refusal('Invalid JWT Signature.');
  if (claims.aud !== aud) throw new Refusal(`Invalid JWT: audience "${claims.aud}" is not "${aud}".`);
  if (typeof claims.scope !== 'string' || !claims.scope.split(' ').includes(SCOPE)) throw new Refusal('Invalid OAuth scope or ID token audience provided.', 'invalid_scope');
  const now = Math.floor(Date.now() / 1000);
  if (!Number.isInteger(claims.iat) || !Number.isInteger(claims.exp) || claims.exp - claims.iat > 3600 ||
      claims.exp < now - 60 || claims.iat > now + 60) {
    throw new Refusal('Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
  }
  return { iss: claims.iss, kid: header.kid ?? null };
}

createMock({
  name: 'google_token_mock',
  opts,
  behaviourFields: [...COMMON_BEHAVIOURS, 'expires_in'],
  onReset() { minted = []; refused = 0; for (const k of Object.keys(byIss)) delete byIss[k]; },
  stats() { return { minted: minted.length, refused, by_iss: { ...byIss } }; },
  async extraControl(req, res, url, { readBody, sendJson }) {
    if (url.pathname === '/__mock/accounts' && req.method === 'POST') {
      let body;
      try { body = JSON.parse((await readBody(req)).toString('utf8')); } catch { sendJson(res, 400, { error: 'not JSON' }); return true; }
      const next = body.append ? new Map(accounts) : new Map();
      for (const a of body.accounts || []) {
        try {
          next.set(a.client_email, { key: crypto.createPublicKey(a.public_key), kid: a.private_key_id });
        } catch (e) {
          sendJson(res, 400, { error: `account ${a.client_email}: ${e.message}` });
          return true;
        }
      }
      accounts = next;
      sendJson(res, 200, { ok: true, accounts: [...accounts.keys()] });
      return true;
    }
    if (url.pathname === '/__mock/tokens') {
      sendJson(res, 200, { tokens: minted });
      return true;
    }
    return false;
  },
  async route(ctx) {
    const { req, url, entry } = ctx;
    const form = new URLSearchParams(typeof ctx.text === 'string' ? ctx.text : '');
    const assertion = form.get('assertion');
    let iss = null;
    try {
      iss = JSON.parse(Buffer.from(String(assertion || '').split('.')[1] || '', 'base64url').toString('utf8')).iss ?? null;
    } catch { /* refused below */ }
    entry.body = { grant_type: form.get('grant_type'), assertion_bytes: assertion ? assertion.length : 0 };
    entry.iss = iss;
    entry.match = { iss };
    const b = ctx.behaviour();
    if (await commonBehaviour2(ctx, b)) return;
    const host = req.headers.host;
    const aud = `http://${host}${url.pathname}`;
    try {
      if (req.method !== 'POST') throw new Refusal('Method not allowed', 'invalid_request', 405);
      if (!/^application\/x-www-form-urlencoded/.test(req.headers['content-type'] || '')) throw new Refusal('Bad Request', 'invalid_request');
      if (form.get('grant_type') !== GRANT) throw new Refusal(`Invalid grant_type: ${form.get('grant_type')}`, 'unsupported_grant_type');
      const v = verify(assertion, aud);
      entry.kid = v.kid;
      const expiresIn = b.expires_in ?? 3599;
      const n = ++serial;
      const expiresMs = Date.now() + expiresIn * 1000;
      const token = mintToken(v.iss, expiresMs, n, secret);
      minted.push({ serial: n, client_email: v.iss, expires_ms: expiresMs, token });
      byIss[v.iss] = (byIss[v.iss] || 0) + 1;
      entry.ok = true;
      entry.token_serial = n;
      ctx.json(200, { access_token: token, expires_in: expiresIn, token_type: 'Bearer' });
    } catch (e) {
      if (!(e instanceof Refusal)) throw e;
      refused++;
      entry.ok = false;
      entry.refusal = `${e.error}: ${e.message}`;
      ctx.json(e.status, { error: e.error, error_description: e.message });
    }
  },
});

/** latency, hang, reset, a scripted body, or a scripted refusal (OAuth's envelope). */
async function commonBehaviour2(ctx, b) {
  if (b.latency_ms) await ctx.sleep(b.latency_ms);
  if (ctx.gone()) return true;
  if (b.reset_before_response) { ctx.reset(); return true; }
  if (b.hang) { ctx.hang(); return true; }
  const headers = { ...(b.headers || {}) };
  if (b.body !== undefined) { ctx.json(b.status ?? 200, b.body, headers); return true; }
  if (b.status && b.status !== 200) {
    if (b.status >= 500) {
      ctx.error(new GoogleError(b.status, b.error_message ?? 'Internal error', b.error_status), headers);
    } else {
      refused++;
      ctx.json(b.status, { error: b.error_status ?? 'invalid_grant', error_description: b.error_message ?? 'Invalid JWT Signature.' }, headers);
    }
    return true;
  }
  return false;
}
