// tests/lib/mock_google.mjs -- starts the Google mocks for a test (tests/mocks/
// gemini_mock.mjs, vertex_mock.mjs, google_token_mock.mjs) on 127.0.0.1 with free ports
// and temporary directories, and makes service accounts: an RSA key pair generated here
// (node:crypto), the key file JSON Google would issue (private half, token_uri pointing at
// the mock token endpoint), the public half registered with the token mock.
//
// Children are killed when the test process exits (an 'exit' handler, and --exit-on-eof on
// a stdin pipe for when this process dies without running handlers).

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot, tmpDir, waitFor, stopChild } from './harness.mjs';

const mocksDir = path.join(repoRoot, 'tests', 'mocks');
const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    try { process.kill(c.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
});

async function startNodeMock(script, args, what) {
  const dir = tmpDir('mg-gmock-');
  const portFile = path.join(dir, 'port');
  const a = [path.join(mocksDir, script), '--port', '0', '--port-file', portFile, '--quiet', '--exit-on-eof', ...args];
  const child = spawn(process.execPath, a, { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((r) => child.once('exit', (code, sig) => r({ code, sig })));
  const port = await Promise.race([
    waitFor(() => fs.existsSync(portFile) && parseInt(fs.readFileSync(portFile, 'utf8'), 10),
      { what: `the ${what} port`, timeout: 10000 }),
    exited.then(({ code, sig }) => { throw new Error(`${what} exited early (code ${code}, signal ${sig}):\n${err}`); }),
  ]);
  const base = `http://127.0.0.1:${port}`;
  async function ctl(p, init) {
    const r = await fetch(base + p, init);
    const text = await r.text();
    if (!r.ok) throw new Error(`${what} ${p}: ${r.status} ${text}`);
    return JSON.parse(text);
  }
  return {
    port, base, child, exited, output: () => ({ stdout: out, stderr: err }),
    ctl,
    async log(since = 0) { return (await ctl(`/__mock/log?since=${since}`)).entries; },
    async script(rules) {
      const body = Array.isArray(rules) ? { rules } : rules;
      return ctl('/__mock/script', { method: 'POST', body: JSON.stringify(body) });
    },
    async reset() { return ctl('/__mock/reset', { method: 'POST' }); },
    async stats() { return ctl('/__mock/stats'); },
    stop: (sig = 'SIGTERM') => stopChild(child, sig),
  };
}

/** A shared HMAC secret for the token and Vertex mocks. */
export const newTokenSecret = () => crypto.randomBytes(16).toString('hex');

/** The mock token endpoint; tokenUri is what a key file's token_uri names. */
export async function startTokenMock({ secret }) {
  const m = await startNodeMock('google_token_mock.mjs', ['--token-secret', secret], 'Google token mock');
  m.tokenUri = `${m.base}/token`;
  m.accounts = async (accounts, append = false) => m.ctl('/__mock/accounts', {
    method: 'POST',
    body: JSON.stringify({ append, accounts: accounts.map((a) => ({ client_email: a.email, public_key: a.publicPem, private_key_id: a.kid })) }),
  });
  m.tokens = async () => (await m.ctl('/__mock/tokens')).tokens;
  return m;
}

export async function startVertexMock({ secret, args = [] }) {
  return startNodeMock('vertex_mock.mjs', ['--token-secret', secret, ...args], 'Vertex mock');
}

export async function startGeminiMock({ keys = [], args = [] } = {}) {
  const a = [];
  for (const k of keys) a.push('--api-key', k);
  return startNodeMock('gemini_mock.mjs', [...a, ...args], 'Gemini mock');
}

/**
 * A service account: a fresh RSA key pair, and the key file JSON Google issues for it.
 * Returns { email, kid, project, json (object), text (JSON text), publicPem, privatePem }.
 */
export function makeServiceAccount({ email, tokenUri, project = 'mock-project', kid } = {}) {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' });
  const keyId = kid ?? crypto.randomBytes(20).toString('hex');
  const json = {
    type: 'service_account',
    project_id: project,
    private_key_id: keyId,
    private_key: privatePem,
    client_email: email,
    client_id: String(100000000000000000000n + BigInt(crypto.randomInt(1e9))),
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: tokenUri,
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(email)}`,
    universe_domain: 'googleapis.com',
  };
  return { email, kid: keyId, project, json, text: JSON.stringify(json), publicPem, privatePem };
}

/** The Vertex path of a model, for api_base (LiteLLM appends :method to a custom base). */
export function vertexModelPath(base, { project = 'mock-project', location = 'us-central1', publisher = 'google', model }) {
  return `${base}/v1/projects/${project}/locations/${location}/publishers/${publisher}/models/${model}`;
}
