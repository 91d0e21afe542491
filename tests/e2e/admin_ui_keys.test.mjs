// The admin page's "Keys, teams and spend" section under SERVER_ROOT_PATH=/llmproxy, driven
// by Debian's chromium through puppeteer-core against a gateway whose upstream is the mock
// provider with a priced model: sign in with a proxy admin user's key; create a team and a
// key through the page's forms; the key's secret is shown once (and gone from the page once
// its box is closed); a chat with it (the openai client) costs something and the spend shows
// on the page (the key's row, the month's total, the top-keys and top-models charts); the key
// blocked on the page is refused (401), unblocked it passes again; deleted (after the confirm
// step) it is gone and refused; the team blocked and deleted on the page; a route's refusal
// shows its error message; hostile aliases render as text.  Every request the page makes stays
// under /llmproxy; no answer it shows holds the admin's key or the upstream key.
//
// Saves a screenshot to <build>/test-artifacts/admin-ui-keys.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import puppeteer from 'puppeteer-core';
import { startGateway, startMock, mockModel, waitFor, tmpDir, buildDir } from '../lib/harness.mjs';

const PREFIX = '/llmproxy';
const MASTER = 'sk-admin-keys-master-5c2e81';
const UPSTREAM_KEY = 'sk-upstream-never-shown-71be0d';
const CHROMIUM = process.env.MG_CHROMIUM || '/usr/bin/chromium';
const HOSTILE = '<img src=x onerror=alert(1)>';
const HOSTILE_TEAM = '<b id=pwned>team</b><script>alert(2)</script>';
const PRICE_IN = 1e-4;
const PRICE_OUT = 2e-4;

let mock;
let gw;
let browser;
let adminKey;             // a proxy_admin user's key: the page signs in with it

async function call(p, { method = 'GET', body, key = MASTER } = {}) {
  const h = {};
  if (key) h.authorization = `Bearer ${key}`;
  if (body !== undefined) {
    h['content-type'] = 'application/json';
    body = JSON.stringify(body);
  }
  const r = await fetch(gw.url + PREFIX + p, { method, body, headers: h });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, text, json };
}

/** A chat with a virtual key through the official client: {status, completion | error}. */
async function chatWith(secret) {
  const client = new OpenAI({ apiKey: secret, baseURL: `${gw.url}${PREFIX}/v1`, maxRetries: 0, timeout: 10000 });
  try {
    const completion = await client.chat.completions.create({
      model: 'priced', messages: [{ role: 'user', content: 'a priced question' }],
    });
    return { status: 200, completion };
  } catch (e) {
    if (e instanceof OpenAI.APIError) return { status: e.status, error: e };
    throw e;
  }
}

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/deps.sh --test installs chromium`);
  mock = await startMock();
  gw = await startGateway({
    workers: 2,
    env: { SERVER_ROOT_PATH: PREFIX },
    waitReady: false,
    config: {
      model_list: [
        mockModel(mock, 'priced', { key: UPSTREAM_KEY,
          info: { input_cost_per_token: PRICE_IN, output_cost_per_token: PRICE_OUT } }),
        mockModel(mock, 'other', { key: UPSTREAM_KEY }),
      ],
      router_settings: { num_retries: 0 },
      general_settings: { master_key: MASTER },
    },
  });
  await waitFor(async () => {
    const r = await call('/moongate/state');
    return r.status === 200 && r.json.workers.length === 2 && r.json.workers.every((w) => w.state === 'ready');
  }, { timeout: 20000, what: 'both workers ready' });
  const u = await call('/user/new', { method: 'POST', body: { user_role: 'proxy_admin', user_alias: 'ui admin' } });
  assert.equal(u.status, 200, u.text);
  adminKey = u.json.key;
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: tmpDir('mg-chromium-'),
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (gw) await gw.stop();
  if (mock) await mock.stop();
});

test('keys, teams and spend: create, see the spend, block, delete; hostile aliases stay text', async () => {
  const page = await browser.newPage();
  await page.setViewport({ width: 1440, height: 1000 });
  const requests = [];
  const problems = [];
  const bodies = [];
  let dialogs = 0;
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', async (d) => { dialogs++; await d.dismiss(); }); // an alert() would be an injection
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('response', async (r) => {
    if (r.request().resourceType() === 'fetch') {
      try { bodies.push({ url: r.url(), text: await r.text() }); } catch { /* navigated away */ }
    }
  });
  const text = (sel) => page.$eval(sel, (e) => e.textContent);
  const visible = (sel) => page.$eval(sel, (e) => !e.hidden && e.offsetParent !== null);
  const setValue = (sel, v) => page.$eval(sel, (e, x) => { e.value = x; }, v);
  // the rows of a table as {alias, cells, buttons} (textContent only)
  const rowsOf = (table) => page.$$eval(`${table} tbody tr:not(.empty)`, (rs) => rs.map((r) => ({
    alias: r.cells[0].textContent,
    cells: [...r.cells].map((c) => c.textContent),
    buttons: [...r.querySelectorAll('button')].map((b) => b.textContent),
    keyName: r.dataset.keyName,
    team: r.dataset.team,
  })));
  const rowByAlias = async (table, alias) => (await rowsOf(table)).find((r) => r.alias === alias);
  // clicks the button labelled `label` in the row whose first cell is `alias`
  const clickIn = async (table, alias, label) => {
    const ok = await page.$$eval(`${table} tbody tr`, (rs, a, l) => {
      const r = rs.find((x) => x.cells[0] && x.cells[0].textContent === a);
      const b = r && [...r.querySelectorAll('button')].find((x) => x.textContent === l && !x.disabled);
      if (!b) return false;
      b.click();
      return true;
    }, alias, label);
    return ok;
  };

  await page.goto(`${gw.url}${PREFIX}/ui/`, { waitUntil: 'load' });
  await waitFor(() => visible('#login-form'), { timeout: 10000, what: 'the sign-in form' });
  await page.type('#key', adminKey);
  await page.click('#login-submit');
  await waitFor(async () => (await visible('#keys')) && (await rowsOf('#keys-table')).length >= 1,
    { timeout: 10000, what: 'the keys section (the admin user\'s own key listed)' });
  const own = await rowsOf('#keys-table');
  assert.equal(own.length, 1);
  assert.match(own[0].cells[1], /^sk-\.\.\.[A-Za-z0-9_-]{4}$/, 'a key is shown as sk-...abcd');
  assert.equal(own[0].cells[1], `sk-...${adminKey.slice(-4)}`);

  // a team through the page's form, with a hostile alias
  await page.type('#team-alias', HOSTILE_TEAM);
  await page.type('#team-budget', '5');
  await page.click('#team-create');
  const teamRow = await waitFor(() => rowByAlias('#teams-table', HOSTILE_TEAM),
    { timeout: 10000, what: 'the new team in the teams table' });
  const teams = (await call('/team/list')).json;
  assert.equal(teams.length, 1);
  const teamId = teams[0].team_id;
  assert.equal(teams[0].team_alias, HOSTILE_TEAM, 'the alias went to /team/new as typed');
  assert.equal(teamRow.team, teamId);
  assert.equal(teamRow.cells[2], '$0 / $5.00');
  assert.equal(teamRow.cells[3], 'active');
  assert.equal(await page.$('#pwned'), null, 'the team alias is text, not markup');

  // a refusal shows the route's own message: a key for a team that is gone (an option left
  // in the form after someone else deleted the team)
  await page.$eval('#key-team', (s) => {
    const o = document.createElement('option');
    o.value = 'no-such-team';
    o.textContent = 'stale';
    s.append(o);
    s.value = 'no-such-team';
  });
  const refusal = (await call('/key/generate', { method: 'POST', body: { team_id: 'no-such-team' } })).json.error.message;
  assert.ok(refusal.length > 0);
  await page.click('#key-create');
  await waitFor(async () => (await visible('#keys-error')) && (await text('#keys-error')) === refusal,
    { timeout: 10000, what: `the route's error "${refusal}" on the page` });
  assert.equal(await visible('#new-key'), false, 'no key was made');

  // a key through the form: alias, team, models, budget, rpm
  await waitFor(() => page.$$eval('#key-team option', (os) => os.some((o) => o.value && o.textContent !== 'stale')),
    { timeout: 10000, what: 'the team in the key form' });
  const teamOption = await page.$$eval('#key-team option', (os, a) => os.find((o) => o.textContent === a)?.value, HOSTILE_TEAM);
  assert.equal(teamOption, teamId, 'the team list offers the team by its alias');
  await page.select('#key-team', teamId);
  await page.type('#key-alias', HOSTILE);
  await page.type('#key-models', 'priced, other');
  await page.type('#key-budget', '1');
  await page.type('#key-rpm', '50');
  await page.click('#key-create');
  await waitFor(() => visible('#new-key'), { timeout: 10000, what: 'the new key\'s box' });
  const secret = await text('#new-key-secret');
  assert.match(secret, /^sk-[A-Za-z0-9_-]{22}$/, 'the secret is shown');
  assert.equal(await visible('#keys-error'), false, 'the earlier error is gone after a success');
  const keyRow = await waitFor(() => rowByAlias('#keys-table', HOSTILE), { timeout: 10000, what: 'the key in the list' });
  assert.equal(keyRow.cells[1], `sk-...${secret.slice(-4)}`);
  assert.equal(keyRow.cells[2], HOSTILE_TEAM, 'its team, by alias');
  assert.equal(keyRow.cells[3], 'priced, other');
  assert.equal(keyRow.cells[4], '$0 / $1.00');
  assert.equal(keyRow.cells[5], '50 / —');
  assert.equal(keyRow.cells[6], 'active');
  const listed = (await call('/key/list?return_full_object=true')).json.keys.find((k) => k.key_alias === HOSTILE);
  assert.deepEqual([listed.team_id, listed.models, listed.max_budget, listed.rpm_limit], [teamId, ['priced', 'other'], 1, 50],
    'the form\'s fields reached /key/generate');
  assert.equal(await page.$('img[src="x"]'), null, 'the key alias is text, not an image');

  // the copy button: the clipboard holds the secret (granted here), then the box is closed
  await browser.defaultBrowserContext().overridePermissions(new URL(gw.url).origin, ['clipboard-read', 'clipboard-write', 'clipboard-sanitized-write']);
  await page.click('#new-key-copy');
  await waitFor(async () => (await text('#new-key-status')) !== '', { timeout: 5000, what: 'the copy\'s outcome' });
  if ((await text('#new-key-status')) === 'copied') {
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret, 'the clipboard has the secret');
  } else {
    // no clipboard in this browser: the secret is selected for Ctrl+C instead
    assert.equal(await page.evaluate(() => String(window.getSelection())), secret);
  }
  await page.click('#new-key-dismiss');
  await waitFor(async () => !(await visible('#new-key')), { timeout: 5000, what: 'the box closed' });
  const html = await page.evaluate(() => document.documentElement.outerHTML);
  assert.ok(!html.includes(secret), 'the secret is gone from the page');
  assert.ok(!html.includes(listed.token), 'the key\'s hash is never in the page');
  assert.equal(await page.evaluate((s) => Object.values(sessionStorage).some((v) => v.includes(s)), secret), false);

  // a chat with the new key costs something: the spend shows on the page
  const ok = await chatWith(secret);
  assert.equal(ok.status, 200, ok.error?.message);
  const usage = ok.completion.usage;
  const cost = usage.prompt_tokens * PRICE_IN + usage.completion_tokens * PRICE_OUT;
  assert.ok(cost > 0);
  const shownCost = (await page.evaluate((v) => `$${Number(v.toPrecision(3))}`, cost));
  await waitFor(async () => (await rowByAlias('#keys-table', HOSTILE))?.cells[4] === `${shownCost} / $1.00`,
    { timeout: 15000, what: `the key's spend ${shownCost} in its row` });
  await waitFor(async () => (await text('#spend-total')) === shownCost,
    { timeout: 15000, what: `this month's spend ${shownCost}` });
  await waitFor(async () => {
    const bars = await page.$$eval('#spend-keys svg g.item', (gs) => gs.map((g) => [g.querySelector('.label').textContent,
      g.querySelector('.value').textContent, !!g.querySelector('rect.bar')]));
    return bars.length === 1 && bars[0][0] === HOSTILE.slice(0, 18) + '…' && bars[0][1] === shownCost && bars[0][2];
  }, { timeout: 15000, what: 'the key in the top-keys chart' });
  const models = await page.$$eval('#spend-models svg g.item', (gs) => gs.map((g) => [g.querySelector('.label').textContent,
    g.querySelector('.value').textContent]));
  assert.deepEqual(models, [['priced', shownCost]], 'the top-models chart');
  assert.equal(await page.$eval('#spend-keys svg title', (t) => t.textContent), `${HOSTILE}: ${shownCost}`);
  await waitFor(async () => (await rowByAlias('#teams-table', HOSTILE_TEAM))?.cells[2] === `${shownCost} / $5.00`,
    { timeout: 10000, what: 'the team\'s spend' });

  // blocked on the page: refused; unblocked: passes
  assert.ok(await clickIn('#keys-table', HOSTILE, 'Block'));
  await waitFor(async () => (await rowByAlias('#keys-table', HOSTILE))?.cells[6] === 'blocked',
    { timeout: 10000, what: 'the key blocked on the page' });
  const refused = await chatWith(secret);
  assert.equal(refused.status, 401, 'a blocked key is refused');
  assert.match(refused.error.message, /blocked/i);
  assert.ok(await clickIn('#keys-table', HOSTILE, 'Unblock'));
  await waitFor(async () => (await rowByAlias('#keys-table', HOSTILE))?.cells[6] === 'active',
    { timeout: 10000, what: 'the key unblocked' });
  assert.equal((await chatWith(secret)).status, 200, 'unblocked, it passes');

  // the team blocked on the page: its key is refused too, and marked
  assert.ok(await clickIn('#teams-table', HOSTILE_TEAM, 'Block'));
  await waitFor(async () => (await rowByAlias('#keys-table', HOSTILE))?.cells[6] === 'team blocked' &&
    (await rowByAlias('#teams-table', HOSTILE_TEAM))?.cells[3] === 'blocked', { timeout: 10000, what: 'the team blocked' });
  assert.equal((await chatWith(secret)).status, 401, 'a blocked team\'s key is refused');
  assert.ok(await clickIn('#teams-table', HOSTILE_TEAM, 'Unblock'));
  await waitFor(async () => (await rowByAlias('#keys-table', HOSTILE))?.cells[6] === 'active',
    { timeout: 10000, what: 'the team unblocked' });
  assert.equal((await chatWith(secret)).status, 200);

  // the screenshot, as a test artefact (the section with data in it)
  const dir = path.join(buildDir, 'test-artifacts');
  fs.mkdirSync(dir, { recursive: true });
  const shot = path.join(dir, 'admin-ui-keys.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`admin page keys screenshot: ${shot}`);

  // delete: a confirm step first; cancel keeps it
  assert.ok(await clickIn('#keys-table', HOSTILE, 'Delete'));
  await waitFor(async () => (await rowByAlias('#keys-table', HOSTILE))?.buttons.includes('Confirm delete'),
    { timeout: 5000, what: 'the confirm step' });
  assert.ok(await clickIn('#keys-table', HOSTILE, 'Cancel'));
  await waitFor(async () => (await rowByAlias('#keys-table', HOSTILE))?.buttons.includes('Delete'),
    { timeout: 5000, what: 'the row back after cancel' });
  assert.equal((await chatWith(secret)).status, 200, 'cancelled: the key still works');
  assert.ok(await clickIn('#keys-table', HOSTILE, 'Delete'));
  await waitFor(async () => (await rowByAlias('#keys-table', HOSTILE))?.buttons.includes('Confirm delete'),
    { timeout: 5000, what: 'the confirm step' });
  assert.ok(await clickIn('#keys-table', HOSTILE, 'Confirm delete'));
  await waitFor(async () => (await rowByAlias('#keys-table', HOSTILE)) === undefined,
    { timeout: 10000, what: 'the key gone from the list' });
  const gone = await chatWith(secret);
  assert.equal(gone.status, 401, 'a deleted key is refused');
  assert.ok(!(await call('/key/list?return_full_object=true')).json.keys.some((k) => k.key_alias === HOSTILE));

  // the team: delete with its confirm step
  assert.ok(await clickIn('#teams-table', HOSTILE_TEAM, 'Delete'));
  await waitFor(async () => (await rowByAlias('#teams-table', HOSTILE_TEAM))?.buttons.includes('Confirm delete'),
    { timeout: 5000, what: 'the team\'s confirm step' });
  assert.ok(await clickIn('#teams-table', HOSTILE_TEAM, 'Confirm delete'));
  await waitFor(async () => (await rowsOf('#teams-table')).length === 0, { timeout: 10000, what: 'the team gone' });
  assert.deepEqual((await call('/team/list')).json, []);
  await waitFor(async () => (await page.$$eval('#key-team option', (os) => os.map((o) => o.value))).join() === '',
    { timeout: 5000, what: 'the team gone from the key form' });

  // nothing injected; no credential in what the page shows or received (the secret is in
  // /key/generate's answer alone); every request under the prefix
  assert.equal(dialogs, 0, 'no alert() ran');
  assert.equal(await page.$('#pwned'), null);
  const shown = await page.evaluate(() => document.body.innerText);
  for (const s of [adminKey, MASTER, UPSTREAM_KEY, secret]) assert.ok(!shown.includes(s), `the page shows ${s.slice(0, 6)}...`);
  for (const s of [adminKey, MASTER, UPSTREAM_KEY]) {
    assert.ok(!bodies.some((b) => b.text.includes(s)), `an answer holds ${s.slice(0, 6)}...`);
  }
  assert.deepEqual(bodies.filter((b) => b.text.includes(secret)).map((b) => new URL(b.url).pathname), [`${PREFIX}/key/generate`]);
  const origin = new URL(gw.url).origin;
  assert.deepEqual(requests.filter((u) => new URL(u).origin !== origin || !new URL(u).pathname.startsWith(`${PREFIX}/`)), []);
  for (const p of ['/key/list', '/team/list', '/global/spend', '/global/spend/keys', '/global/spend/models',
    '/key/generate', '/team/new', '/key/block', '/key/unblock', '/key/delete', '/team/block', '/team/unblock', '/team/delete']) {
    assert.ok(requests.some((u) => new URL(u).pathname === PREFIX + p), `the page asked ${p}`);
  }
  assert.deepEqual(problems, [], 'no script error and no CSP refusal');
  await page.close();
});
