// tests/lib/mock_bedrock.mjs -- starts tests/mocks/bedrock_mock.mjs (the mock of the AWS
// Bedrock Runtime API) for a test, on 127.0.0.1 with a free port and a temporary
// directory, and gives the test its control API.
//
// The child is killed when the test process exits, also on failure: an 'exit' handler
// kills it, and the mock runs with --exit-on-eof on a stdin pipe, so it also goes away
// when this process dies without running handlers.  The temporary directory comes from
// harness.mjs's tmpDir, which removes it at exit.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot, tmpDir, waitFor, stopChild } from './harness.mjs';

export const bedrockMockScript = path.join(repoRoot, 'tests', 'mocks', 'bedrock_mock.mjs');

const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    try { process.kill(c.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
});

/**
 * Starts the mock.  opts: credentials ([{access_key_id, secret_access_key, session_token?,
 * label?}]: what a SigV4 signature is checked against), bearers (Bedrock API keys it
 * accepts), region (the region signatures must be scoped to, default any), log (also
 * write the JSON-lines log file, path in `logPath`), args (more command-line arguments).
 * Returns {port, base, url, child, output, logPath, log(since), script(rules|body),
 * scriptState(), reset(), stats(), stop()}.  `base` is what a `bedrock/` deployment's
 * api_base (or aws_bedrock_runtime_endpoint) points at.
 */
export async function startBedrockMock({ credentials = [], bearers = [], region = null, log = false, args = [] } = {}) {
  const dir = tmpDir('mg-bmock-');
  const portFile = path.join(dir, 'port');
  const logPath = log ? path.join(dir, 'requests.jsonl') : null;
  const a = [bedrockMockScript, '--port', '0', '--port-file', portFile, '--quiet', '--exit-on-eof'];
  for (const c of credentials) {
    a.push('--credential', [c.access_key_id, c.secret_access_key, c.session_token ?? '', c.label ?? ''].join(':'));
  }
  for (const b of bearers) a.push('--bearer', b);
  if (region) a.push('--region', region);
  if (logPath) a.push('--log', logPath);
  a.push(...args);
  const child = spawn(process.execPath, a, { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const output = () => ({ stdout: out, stderr: err });
  const exited = new Promise((r) => child.once('exit', (code, sig) => r({ code, sig })));
  const port = await Promise.race([
    waitFor(() => fs.existsSync(portFile) && parseInt(fs.readFileSync(portFile, 'utf8'), 10),
      { what: 'the Bedrock mock port', timeout: 10000 }),
    exited.then(({ code, sig }) => {
      throw new Error(`bedrock mock exited early (code ${code}, signal ${sig}):\n${err}`);
    }),
  ]);
  const base = `http://127.0.0.1:${port}`;
  async function ctl(p, init) {
    const r = await fetch(base + p, init);
    const text = await r.text();
    if (!r.ok) throw new Error(`bedrock mock ${p}: ${r.status} ${text}`);
    return JSON.parse(text);
  }
  return {
    port, base, url: base, child, output, logPath, exited,
    async log(since = 0) { return (await ctl(`/__mock/log?since=${since}`)).entries; },
    /** Installs rules: an array of rules, or a whole body {rules, default, append, credentials, bearer_tokens, region}. */
    async script(rules) {
      const body = Array.isArray(rules) ? { rules } : rules;
      return ctl('/__mock/script', { method: 'POST', body: JSON.stringify(body) });
    },
    async scriptState() { return ctl('/__mock/script'); },
    async reset() { return ctl('/__mock/reset', { method: 'POST' }); },
    async stats() { return ctl('/__mock/stats'); },
    stop: (sig = 'SIGTERM') => stopChild(child, sig),
  };
}
