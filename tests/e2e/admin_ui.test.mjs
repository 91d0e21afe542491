// The admin page (/ui) under SERVER_ROOT_PATH=/llmproxy with 4 workers, driven by
// Debian's chromium through puppeteer-core: sign in with a wrong key (the API's error
// is shown) and with the master key, see every worker and its registry version, add
// a deployment with POST /model/new and see every worker's version change on the page.
// Every request the page makes must stay under /llmproxy; nothing it shows or receives
// may hold a prompt or a key.  Also: the recent-requests ring and the traffic series
// (GET /moongate/requests, /moongate/traffic) against what 4 workers actually served,
// and the assets' headers (CSP, ETag, 304).  The keys section is admin_ui_keys.test.mjs's.
//
// Saves a screenshot to <build>/test-artifacts/admin-ui.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { startGateway, waitFor, tmpDir, buildDir } from '../lib/harness.mjs';

const PREFIX = '/llmproxy';
const MASTER = 'sk-admin-ui-master-7f3a9c';
const UPSTREAM_KEY = 'sk-upstream-never-shown-4d8e2b';
const PROMPT = 'the-prompt-text-must-not-appear-9b1c';
const WORKERS = 4;
const CHROMIUM = process.env.MG_CHROMIUM || '/usr/bin/chromium';

const offline = (name, id, text) => ({
  model_name: name,
  litellm_params: { model: 'openai/gpt-4o-mini', mock_response: text, api_key: UPSTREAM_KEY },
  model_info: { id },
});

let gw;
let browser;

/** A request to the gateway under the prefix; key: the master key unless given (null: none). */
async function call(p, { method = 'GET', body, key = MASTER, headers = {} } = {}) {
  const h = { ...headers };
  if (key) h.authorization = `Bearer ${key}`;
  if (body !== undefined) {
    h['content-type'] = 'application/json';
    body = JSON.stringify(body);
  }
  const r = await fetch(gw.url + PREFIX + p, { method, body, headers: h, redirect: 'manual' });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, text, json };
}

const chat = (model, callId) => call('/v1/chat/completions', {
  method: 'POST',
  body: { model, messages: [{ role: 'user', content: PROMPT }] },
  headers: callId ? { 'x-litellm-call-id': callId } : {},
});

/** A chat request on a connection of its own (so that requests spread over the workers). */
const noKeepAlive = new http.Agent({ keepAlive: false, maxSockets: Infinity });
function chatOwnConnection(model, callId) {
  const body = JSON.stringify({ model, messages: [{ role: 'user', content: PROMPT }] });
  return new Promise((resolve, reject) => {
    const req = http.request(`${gw.url}${PREFIX}/v1/chat/completions`, {
      method: 'POST', agent: noKeepAlive,
      headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json', 'x-litellm-call-id': callId },
    }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.setTimeout(10000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/deps.sh --test installs chromium`);
  gw = await startGateway({
    workers: WORKERS,
    env: { SERVER_ROOT_PATH: PREFIX },
    waitReady: false,
    config: {
      model_list: [offline('ui-fast', 'ui-fast-a', 'answer a'), offline('ui-fast', 'ui-fast-b', 'answer b'),
        offline('ui-other', 'ui-other-1', 'answer c')],
      router_settings: { num_retries: 0 },
      general_settings: { master_key: MASTER },
    },
  });
  await waitFor(async () => {
    const r = await call('/moongate/state');
    const ws = r.json?.workers;
    return r.status === 200 && ws?.length === WORKERS && ws.every((w) => w.state === 'ready');
  }, { timeout: 20000, what: 'every worker to load the registry' });
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: tmpDir('mg-chromium-'),
    // root in a container: chromium's sandbox needs user namespaces it may not have
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (gw) await gw.stop();
});

test('the recent-requests ring and the traffic series hold what every worker served', async () => {
  // rounds of concurrent requests on their own connections until two workers or more
  // answered (which worker accepts is the kernel's choice); at most 8 rounds of 8
  const sent = [];
  for (let round = 0; round < 8 && (round < 2 || new Set(sent.map((s) => s.worker)).size < 2); round++) {
    const batch = await Promise.all(Array.from({ length: 8 }, (_, i) => {
      const id = `ui-ring-${round}-${i}-${Date.now()}`;
      return chatOwnConnection(i % 4 === 3 ? 'ui-other' : 'ui-fast', id).then((r) => ({ id, r }));
    }));
    for (const { id, r } of batch) {
      assert.equal(r.status, 200, r.text);
      sent.push({ id, worker: Number(r.headers['x-moongate-worker']), dep: r.headers['x-litellm-model-id'],
        group: r.headers['x-litellm-model-group'] });
    }
  }
  assert.ok(new Set(sent.map((s) => s.worker)).size > 1, 'the requests reached more than one worker');
  assert.ok(sent.length <= WORKERS * 64, 'no more than the rings hold');
  const bad = `ui-ring-bad-${Date.now()}`;
  assert.equal((await chat('no-such-group', bad)).status, 400);

  const all = await waitFor(async () => {
    const r = await call('/moongate/requests?limit=1000');
    const byId = new Map((r.json?.requests || []).map((q) => [q.call_id, q]));
    return sent.every((s) => byId.has(s.id)) && byId.has(bad) ? { r, byId } : null;
  }, { timeout: 10000, what: 'every request in /moongate/requests' });
  assert.equal(all.r.json.enabled, true);
  for (const s of sent) {
    const q = all.byId.get(s.id);
    assert.equal(q.worker, s.worker, `${s.id}: the worker that answered it`);
    assert.equal(q.status, 200);
    assert.equal(q.deployment_id, s.dep);
    assert.equal(q.model_group, s.group);
    assert.equal(q.route, '/v1/chat/completions', 'the path under the prefix');
    assert.deepEqual([q.prompt_tokens, q.completion_tokens, q.total_tokens], [10, 20, 30]);
    assert.equal(q.stream, false);
    assert.ok(q.latency_ms >= 0 && Number.isFinite(q.time_ms));
  }
  const b = all.byId.get(bad);
  assert.equal(b.status, 400);
  assert.equal(b.deployment_id, null);
  assert.equal(b.model, 'no-such-group');
  const times = all.r.json.requests.map((q) => q.time_ms);
  assert.deepEqual(times, [...times].sort((x, y) => y - x), 'newest first');
  assert.ok(!all.r.text.includes(PROMPT) && !all.r.text.includes(UPSTREAM_KEY) && !all.r.text.includes(MASTER));
  assert.equal((await call('/moongate/requests?limit=3')).json.requests.length, 3, 'limit');

  // the series count every request whose last attempt went to a deployment
  const want = {};
  for (const s of sent) want[s.dep] = (want[s.dep] || 0) + 1;
  const t = await call('/moongate/traffic');
  assert.equal(t.status, 200);
  assert.equal(t.json.bucket_seconds, 10);
  const got = {};
  for (const d of t.json.deployments) {
    assert.equal(d.series.length, t.json.buckets);
    got[d.id] = d.series.reduce((a, x) => a + x.requests, 0);
    for (const x of d.series) if (x.requests === 0) assert.equal(x.latency_ms, null);
  }
  for (const [dep, n] of Object.entries(want)) assert.ok(got[dep] >= n, `${dep}: ${got[dep]} >= ${n} in the series`);

  // admin only, like every state route
  assert.equal((await call('/moongate/requests', { key: null })).status, 401);
  assert.equal((await call('/moongate/traffic', { key: null })).status, 401);
});

test('the assets: under the prefix only, strict CSP, content types, ETag and 304', async () => {
  const redirect = await call('/ui', { key: null });
  assert.equal(redirect.status, 302);
  assert.equal(redirect.headers.get('location'), 'ui/', 'relative: the prefix is kept');
  const types = { '/ui/': 'text/html', '/ui/app.js': 'text/javascript', '/ui/app.css': 'text/css',
    '/ui/favicon.svg': 'image/svg+xml', '/docs': 'text/html', '/ui/docs.js': 'text/javascript' };
  for (const [p, type] of Object.entries(types)) {
    const r = await call(p, { key: null });
    assert.equal(r.status, 200, p);
    assert.ok(r.headers.get('content-type').startsWith(type), `${p}: ${r.headers.get('content-type')}`);
    const csp = r.headers.get('content-security-policy');
    assert.match(csp, /default-src 'none'/, p);
    assert.match(csp, /script-src 'self';/, p);
    assert.match(csp, /connect-src 'self';/, p);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    const etag = r.headers.get('etag');
    assert.match(etag, /^"[0-9a-f]{32}"$/, p);
    const again = await call(p, { key: null, headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304, `${p} revalidates`);
    assert.equal(again.text, '');
    const changed = await call(p, { key: null, headers: { 'if-none-match': '"0000"' } });
    assert.equal(changed.status, 200);
  }
  assert.equal((await call('/ui/no-such.js', { key: null })).status, 404);
  assert.equal((await call('/ui/app.js', { method: 'POST', key: null })).status, 405);
  const outside = await fetch(`${gw.url}/ui/`);
  assert.equal(outside.status, 404, 'nothing outside SERVER_ROOT_PATH');
});

test('the page: wrong key, master key, every worker, and the versions change after /model/new', async () => {
  const page = await browser.newPage();
  await page.setViewport({ width: 1440, height: 1000 });
  const requests = [];
  const problems = [];
  const bodies = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('response', async (r) => {
    if (r.request().resourceType() === 'fetch') {
      try { bodies.push(await r.text()); } catch { /* navigated away */ }
    }
  });
  const text = (sel) => page.$eval(sel, (e) => e.textContent);
  const visible = (sel) => page.$eval(sel, (e) => !e.hidden && e.offsetParent !== null);

  await page.goto(`${gw.url}${PREFIX}/ui`, { waitUntil: 'load' });
  assert.equal(new URL(page.url()).pathname, `${PREFIX}/ui/`, 'redirected to the page under the prefix');
  await waitFor(() => visible('#login-form'), { timeout: 10000, what: 'the sign-in form' });

  // a wrong key: the page shows the error the API gave, and keeps nothing
  const wrong = 'sk-not-the-master-key-1234';
  const expected = (await call('/moongate/state', { key: wrong })).json.error.message;
  assert.ok(expected.length > 0);
  await page.type('#key', wrong);
  await page.click('#login-submit');
  await waitFor(async () => (await visible('#login-error')) && (await text('#login-error')) === expected,
    { timeout: 10000, what: `the API's error "${expected}" on the page` });
  assert.equal(await page.$eval('#dash', (e) => e.hidden), true, 'no dashboard for a wrong key');
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused key is not kept');

  // the master key
  await page.$eval('#key', (e) => { e.value = ''; });
  await page.type('#key', MASTER);
  await page.click('#login-submit');
  const state = (await call('/moongate/state')).json;
  const v0 = state.workers[0].registry_version;
  const workerRows = () => page.$$eval('#workers-table tbody tr[data-worker]', (rows) => rows.map((r) => ({
    worker: Number(r.dataset.worker),
    version: Number(r.querySelector('.registry-version').textContent),
    policy: r.querySelector('.policy-version').textContent,
  })));
  await waitFor(async () => {
    const rows = await workerRows();
    return rows.length === WORKERS && rows.every((r) => r.version === v0);
  }, { timeout: 10000, what: `${WORKERS} workers at registry version ${v0} on the page` });
  const rows0 = await workerRows();
  assert.deepEqual(rows0.map((r) => r.worker).sort(), [0, 1, 2, 3]);
  for (const r of rows0) assert.match(r.policy, /^[0-9a-f]{6,}$/, 'each worker shows its policy version');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('moongate.admin.key')), MASTER,
    'the key lives in this tab\'s session storage');

  // add a deployment: every worker's version on the page moves to the one /model/new answered
  const added = await call('/model/new', {
    method: 'POST',
    body: { model_name: 'ui-added', litellm_params: { model: 'openai/gpt-4o', mock_response: 'added', api_key: UPSTREAM_KEY },
      model_info: { id: 'ui-added-1' } },
  });
  assert.equal(added.status, 200, added.text);
  const v1 = added.json.version;
  assert.ok(v1 > v0, `the new version ${v1} is after ${v0}`);
  await waitFor(async () => {
    const rows = await workerRows();
    return rows.length === WORKERS && rows.every((r) => r.version === v1);
  }, { timeout: 15000, what: `every worker at registry version ${v1} on the page` });
  await waitFor(() => page.$('#deployments-table tr[data-deployment="ui-added-1"]'),
    { timeout: 15000, what: 'the new deployment in the table' });

  // traffic: a request with a known call id shows up in recent requests and as a chart
  const callId = `ui-page-${Date.now()}`;
  assert.equal((await chat('ui-added', callId)).status, 200);
  for (let i = 0; i < 6; i++) assert.equal((await chat(i % 2 ? 'ui-fast' : 'ui-other')).status, 200);
  await waitFor(() => page.$(`#requests-table tr[data-call-id="${callId}"]`),
    { timeout: 10000, what: 'the request in the recent-requests table' });
  await waitFor(() => page.$('#charts figure[data-deployment="ui-added-1"] svg rect.bar'),
    { timeout: 10000, what: 'a traffic chart for the new deployment' });
  const policies = await page.$$eval('#policies-table tbody tr', (rs) => rs.map((r) => r.cells[0].textContent));
  assert.ok(policies.includes('routing') && policies.includes('fallback'), policies.join(','));
  // keys, teams and spend: no virtual key or team here, and the page makes none up
  await waitFor(async () => (await text('#keys-table tbody')) === 'No virtual key yet.' &&
    (await text('#teams-table tbody')) === 'No team yet.', { timeout: 10000, what: 'the empty keys and teams tables' });
  await waitFor(async () => /^\$/.test(await text('#spend-total')), { timeout: 10000, what: 'this month\'s spend' });

  // the screenshot, as a test artefact
  const dir = path.join(buildDir, 'test-artifacts');
  fs.mkdirSync(dir, { recursive: true });
  const shot = path.join(dir, 'admin-ui.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`admin page screenshot: ${shot}`);

  // a reload keeps the session (sessionStorage), signing out forgets it
  await page.reload({ waitUntil: 'load' });
  await waitFor(async () => (await workerRows()).length === WORKERS, { timeout: 10000, what: 'the page after a reload' });
  await page.click('#logout');
  await waitFor(() => visible('#login-form'), { timeout: 5000, what: 'the sign-in form after sign-out' });
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);

  // nothing shown or received holds a prompt or a key; every request stayed under the prefix
  const shown = await page.evaluate(() => document.body.innerText);
  for (const secret of [UPSTREAM_KEY, PROMPT, MASTER]) {
    assert.ok(!shown.includes(secret), `the page shows ${secret.slice(0, 6)}...`);
    assert.ok(!bodies.some((b) => b.includes(secret)), `an API answer holds ${secret.slice(0, 6)}...`);
  }
  assert.ok(requests.length > 10, `the page made requests (${requests.length})`);
  const origin = new URL(gw.url).origin;
  const outside = requests.filter((u) => {
    const x = new URL(u);
    return x.origin !== origin || !x.pathname.startsWith(`${PREFIX}/`);
  });
  assert.deepEqual(outside, [], 'every request the page made is under /llmproxy on this gateway');
  for (const p of ['/moongate/state', '/model/info', '/moongate/requests', '/moongate/traffic', '/ui/app.js']) {
    assert.ok(requests.some((u) => new URL(u).pathname === PREFIX + p), `the page asked ${p}`);
  }
  assert.deepEqual(problems, [], 'no script error and no CSP refusal');
  await page.close();
});

test('/docs lists the operations of /openapi.json, under the prefix', async () => {
  const page = await browser.newPage();
  const requests = [];
  page.on('request', (r) => requests.push(new URL(r.url()).pathname));
  await page.goto(`${gw.url}${PREFIX}/docs`, { waitUntil: 'load' });
  await waitFor(() => page.$('#post_v1_chat_completions'), { timeout: 10000, what: 'the operations on /docs' });
  const doc = (await call('/openapi.json', { key: null })).json;
  const n = Object.values(doc.paths).reduce((a, item) => a + Object.keys(item).length, 0);
  assert.equal(await page.$$eval('#ops .op', (e) => e.length), n, 'one row per operation');
  assert.deepEqual(requests.filter((p) => !p.startsWith(`${PREFIX}/`)), []);
  await page.close();
});
