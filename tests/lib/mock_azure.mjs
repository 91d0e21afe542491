// tests/lib/mock_azure.mjs -- starts tests/mocks/azure_mock.mjs (the mock of Azure OpenAI and
// of Azure AI's model inference endpoint) for a test, on 127.0.0.1 with a free port and a
// temporary directory, and gives the test its control API.
//
// The child is killed when the test process exits, also on failure: an 'exit' handler kills
// it, and it runs with --exit-on-eof on a stdin pipe, so it also goes away when this process
// dies without running handlers.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot, tmpDir, waitFor, stopChild } from './harness.mjs';

export const azureMockScript = path.join(repoRoot, 'tests', 'mocks', 'azure_mock.mjs');

const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    try { process.kill(c.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
});

/**
 * Starts the mock.  opts: keys (accepted api-key values; none: any), tokens (accepted
 * bearer tokens; none: any when no keys are set either), deployments (known deployment
 * names; none: any).  Returns {port, base, child, log(since), script(body|rules), reset(),
 * stats(), stop()}; `base` is what a deployment's api_base points at.
 */
export async function startAzureMock({ keys = [], tokens = [], deployments = null } = {}) {
  const dir = tmpDir('mg-azmock-');
  const portFile = path.join(dir, 'port');
  const a = [azureMockScript, '--port', '0', '--port-file', portFile, '--quiet', '--exit-on-eof'];
  for (const k of keys) a.push('--api-key', k);
  for (const t of tokens) a.push('--ad-token', t);
  if (deployments) a.push('--deployments', deployments.join(','));
  const child = spawn(process.execPath, a, { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((r) => child.once('exit', (code, sig) => r({ code, sig })));
  const port = await Promise.race([
    waitFor(() => fs.existsSync(portFile) && parseInt(fs.readFileSync(portFile, 'utf8'), 10),
      { what: 'the Azure mock port', timeout: 10000 }),
    exited.then(({ code, sig }) => {
      throw new Error(`azure mock exited early (code ${code}, signal ${sig}):\n${err}`);
    }),
  ]);
  const base = `http://127.0.0.1:${port}`;
  async function ctl(p, init) {
    const r = await fetch(base + p, init);
    const text = await r.text();
    if (!r.ok) throw new Error(`azure mock ${p}: ${r.status} ${text}`);
    return JSON.parse(text);
  }
  return {
    port, base, child, exited, stderr: () => err,
    async log(since = 0) { return (await ctl(`/__mock/log?since=${since}`)).entries; },
    /** Installs rules: an array of rules, or a whole body {rules, default, append, api_keys, ad_tokens}. */
    async script(rules) {
      const body = Array.isArray(rules) ? { rules } : rules;
      return ctl('/__mock/script', { method: 'POST', body: JSON.stringify(body) });
    },
    async reset() { return ctl('/__mock/reset', { method: 'POST' }); },
    async stats() { return ctl('/__mock/stats'); },
    stop: (sig = 'SIGTERM') => stopChild(child, sig),
  };
}
