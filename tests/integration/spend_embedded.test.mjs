// Spend logs without a database (the embedded store): one row per client request, streams and
// failures included, counted against the mock's log; a worker killed with -9 during traffic
// loses no row of an answered request and writes none twice; rows and totals survive a
// restart (the key's spend after it is what the log had); retention deletes old segments;
// the read routes answer in LiteLLM's shapes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startMock, startGateway, mockModel, pool, waitFor, tmpDir } from '../lib/harness.mjs';
import { putKey, identPut, sha256hex } from '../lib/journal.mjs';
import { call, spendGet, spendState, waitRows, idCounts, sum, close, sanitizerReports } from './lib_spend.mjs';

const MASTER = 'sk-spend-master-0123456789';
const KEY = 'sk-spend-key-aaaaaaaaaaaaaaaa';
const KEY_HASH = sha256hex(KEY);

const mock = await startMock();
const dir = tmpDir('mg-spend-emb-');
const state = path.join(dir, 'state');
identPut(state, 'team', 'team-1', { team_id: 'team-1', team_alias: 'Team One' });
identPut(state, 'user', 'user-1', { user_id: 'user-1' });
putKey(state, KEY, { key_alias: 'alias-1', team_id: 'team-1', user_id: 'user-1' });

const config = {
  model_list: [
    mockModel(mock, 'priced', { info: { input_cost_per_token: 1e-4, output_cost_per_token: 2e-4 } }),
  ],
  general_settings: { master_key: MASTER },
  router_settings: { num_retries: 0 },
};
const started = [];
let gw = await startGateway({ config, workers: 2, stateDir: state, dir });
started.push(gw);
after(async () => { await gw.stop(); await mock.stop(); });

let seq = 0;
const nextId = (p) => `${p}-${++seq}-${process.pid}`;

test('every answered request has exactly one row: successes, streams, failures', async () => {
  await mock.reset();
  const plan = [];
  for (let i = 0; i < 12; i++) plan.push({ kind: 'ok' });
  for (let i = 0; i < 6; i++) plan.push({ kind: 'stream', stream: true });
  for (let i = 0; i < 4; i++) plan.push({ kind: 'upstream500', mock: { status: 500 } });
  for (let i = 0; i < 2; i++) plan.push({ kind: 'nomodel', model: 'no-such-model' });
  for (let i = 0; i < 2; i++) plan.push({ kind: 'cut', stream: true, mock: { chunks: 6, reset_after_chunks: 3 } });
  const res = await pool(plan.length, 6, async (i) => {
    const p = plan[i];
    const r = await call(gw, KEY, { id: nextId('one'), user: `eu-${i}`, ...p });
    return { ...r, kind: p.kind };
  });
  for (const r of res) {
    if (r.kind === 'ok' || r.kind === 'stream') assert.ok(r.ok, `${r.kind}: ${r.status} ${r.text.slice(0, 200)}`);
    if (r.kind === 'upstream500') assert.equal(r.status, 500, r.text);
    if (r.kind === 'nomodel') assert.equal(r.status, 400, r.text);
  }
  const ids = new Set(res.map((r) => r.id));
  const rows = await waitRows(gw, (rs) => rs.filter((x) => ids.has(x.request_id)).length >= res.length);
  const mine = rows.filter((x) => ids.has(x.request_id));
  const counts = idCounts(mine);
  for (const r of res) assert.equal(counts.get(r.id), 1, `one row for ${r.kind} ${r.id}`);
  assert.equal(mine.length, res.length, 'no extra rows');
  const byId = new Map(mine.map((x) => [x.request_id, x]));
  for (const r of res) {
    const row = byId.get(r.id);
    assert.equal(row.end_user, r.user, 'the request\'s user is the end user');
    assert.equal(row.api_key, KEY_HASH, 'the key\'s hash');
    assert.equal(row.user, 'user-1');
    assert.equal(row.team_id, 'team-1');
    assert.equal(row.metadata.user_api_key_alias, 'alias-1');
    assert.equal(row.call_type, 'acompletion');
    const success = r.kind === 'ok' || r.kind === 'stream';
    assert.equal(row.status, success ? 'success' : 'failure', `${r.kind}: ${JSON.stringify(row)}`);
    assert.equal(row.metadata.status, row.status);
    if (success) {
      assert.ok(row.spend > 0 && row.prompt_tokens > 0, `${r.kind} is priced: ${row.spend}`);
      assert.ok(close(row.spend, row.prompt_tokens * 1e-4 + row.completion_tokens * 2e-4), 'spend from the prices');
      assert.equal(row.model_group, 'priced');
      assert.equal(row.custom_llm_provider, 'openai');
      assert.ok(!row.api_base.includes('?'));
    } else {
      assert.equal(row.metadata.error_information.error_code, String(r.status || 200));
    }
    if (r.kind === 'nomodel') assert.equal(row.model_id, '', 'never routed');
    assert.deepEqual(row.messages, {}, 'no prompt stored by default');
    assert.deepEqual(row.response, {});
  }
  // against the mock: every request that reached it has its row, and nothing else reached it
  const log = await mock.log();
  const upstreamUsers = log.map((e) => e.body && e.body.user).filter(Boolean).sort();
  const rowUsers = mine.filter((x) => x.model_id !== '').map((x) => x.end_user).sort();
  assert.deepEqual(rowUsers, upstreamUsers);
});

test('a worker killed with -9 during traffic: every answered request keeps its row, none twice', async () => {
  await mock.reset();
  const N = 300;
  const pids = await gw.workerPids();
  let killed = false;
  let done = 0;
  const res = await pool(N, 8, async (i) => {
    // a little latency keeps requests in flight when the kill lands
    const r = await call(gw, KEY, { id: nextId('kill'), user: `k-${i}`, stream: i % 3 === 0, mock: { latency_ms: 5 } });
    done++;
    if (!killed && done >= 60) {
      killed = true;
      process.kill(pids[0], 'SIGKILL');
    }
    return r;
  });
  assert.ok(killed);
  const answered = res.filter((r) => r.ok);
  assert.ok(answered.length > N / 2, `most requests answered (${answered.length})`);
  const sent = new Set(res.map((r) => r.id));
  const rows = await waitRows(gw, (rs) => answered.every((a) => rs.some((x) => x.request_id === a.id)),
    { what: 'the rows of every answered request' });
  const mine = rows.filter((x) => sent.has(x.request_id));
  const counts = idCounts(mine);
  for (const [id, n] of counts) assert.equal(n, 1, `${id} once`);
  for (const a of answered) assert.equal(counts.get(a.id), 1, `answered ${a.id} has its row`);
  // every row is a request the mock saw (or one refused before it)
  const log = await mock.log();
  const users = new Set(log.map((e) => e.body && e.body.user));
  for (const x of mine) assert.ok(users.has(x.end_user), `${x.request_id} reached the upstream`);
  // the worker came back and pushes into the same ring
  await waitFor(async () => {
    const p = await gw.workerPids();
    return p.length === 2 && p.every((x) => x > 0) && !p.includes(pids[0]);
  }, { what: 'the killed worker respawned' });
  const st = await spendState(gw);
  assert.equal(st.dropped_ring_full, 0);
  assert.equal(st.dropped_disk_full, 0);
  assert.equal(st.ring_corrupt_records, 0);
});

test('the read routes answer in LiteLLM\'s shapes', async () => {
  await call(gw, MASTER, { id: nextId('admin'), user: 'admin-user' });
  const all = await waitRows(gw, (rs) => rs.some((x) => x.end_user === 'admin-user'));
  // rows carry LiteLLM_SpendLogs' columns
  for (const k of ['request_id', 'call_type', 'api_key', 'spend', 'total_tokens', 'prompt_tokens',
    'completion_tokens', 'startTime', 'endTime', 'completionStartTime', 'model', 'model_id',
    'model_group', 'custom_llm_provider', 'api_base', 'user', 'metadata', 'cache_hit', 'cache_key',
    'request_tags', 'team_id', 'organization_id', 'end_user', 'requester_ip_address', 'messages',
    'response', 'session_id', 'status', 'proxy_server_request']) {
    assert.ok(k in all[0], `a row has ${k}`);
  }
  assert.match(all[0].startTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/);
  const times = all.map((x) => Date.parse(x.startTime));
  assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
  const admin = all.find((x) => x.end_user === 'admin-user');
  assert.equal(admin.api_key, sha256hex(MASTER), 'the master key\'s hash, as LiteLLM stores it');
  assert.equal(admin.user, 'default_user_id');

  const byKey = await spendGet(gw, `/spend/logs?api_key=${KEY}`);
  assert.ok(byKey.length > 0 && byKey.every((x) => x.api_key === KEY_HASH), 'sk- keys are hashed');
  assert.deepEqual((await spendGet(gw, `/spend/logs?api_key=${KEY_HASH}`)).length, byKey.length);
  const one = await spendGet(gw, `/spend/logs?request_id=${admin.request_id}`);
  assert.equal(one.length, 1);
  assert.equal(one[0].request_id, admin.request_id);
  const byUser = await spendGet(gw, '/spend/logs?user_id=user-1');
  assert.equal(byUser.length, byKey.length);

  const day = (d) => new Date(Date.now() + d * 86400000).toISOString().slice(0, 10);
  const summary = await spendGet(gw, `/spend/logs?start_date=${day(-1)}&end_date=${day(3)}`);
  assert.ok(Array.isArray(summary) && summary.length >= 1);
  const today = summary.find((x) => x.startTime === day(0));
  assert.ok(today, JSON.stringify(summary));
  assert.ok(close(today.spend, sum(all.filter((x) => x.startTime.startsWith(day(0))))), 'the day\'s spend');
  assert.ok(close(today[KEY_HASH], sum(byKey)), 'per key');
  assert.ok(close(today.users['user-1'], sum(byKey)), 'per user');
  assert.ok(close(today.models.priced, sum(all.filter((x) => x.model === 'priced'))), 'per model');
  assert.deepEqual(summary.at(-1), { startTime: day(3), spend: 0, users: {}, models: {} },
    'the days after the last one up to end_date, empty');
  const unsum = await spendGet(gw, `/spend/logs?start_date=${day(-1)}&end_date=${day(3)}&summarize=false`);
  assert.equal(unsum.length, all.length);

  const g = await spendGet(gw, '/global/spend');
  assert.deepEqual(Object.keys(g).sort(), ['max_budget', 'spend']);
  assert.ok(close(g.spend, sum(all)), 'this month\'s spend');
  const keys = await spendGet(gw, '/global/spend/keys?limit=5');
  const k = keys.find((x) => x.api_key === KEY_HASH);
  assert.ok(close(k.total_spend, sum(byKey)));
  assert.equal(k.team_id, 'team-1');
  assert.equal(k.key_alias, 'alias-1');
  assert.equal((await gw.request('/global/spend/keys?limit=0')).status, 422);
  const models = await spendGet(gw, '/global/spend/models');
  assert.deepEqual(Object.keys(models[0]).sort(), ['model', 'total_spend']);

  const teams = await spendGet(gw, `/global/spend/report?start_date=${day(-1)}&end_date=${day(1)}&group_by=team`);
  assert.equal(teams[0].group_by_day, `${day(0)}T00:00:00+00:00`);
  const t1 = teams[0].teams.find((x) => x.team_name === 'team-1');
  assert.ok(t1 && close(t1.total_spend, sum(byKey)), JSON.stringify(teams));
  assert.ok(t1.metadata.every((m) => 'model' in m && 'api_key' in m && 'spend' in m && 'total_tokens' in m));
  assert.ok(teams[0].teams.some((x) => x.team_name === 'Unassigned Team'), 'the master key has no team');
  const cust = await spendGet(gw, `/global/spend/report?start_date=${day(-1)}&end_date=${day(1)}&group_by=customer`);
  assert.ok(cust[0].customers.some((x) => x.customer === 'admin-user'));
  const bykey = await spendGet(gw, `/global/spend/report?start_date=${day(-1)}&end_date=${day(1)}&group_by=api_key`);
  const bk = bykey.find((x) => x.api_key === KEY_HASH);
  assert.ok(close(bk.total_cost, sum(byKey)));
  assert.equal(bk.total_input_tokens, sum(byKey, 'prompt_tokens'));
  assert.deepEqual(Object.keys(bk.model_details[0]).sort(),
    ['model', 'total_cost', 'total_input_tokens', 'total_output_tokens']);
  const nodates = await gw.request('/global/spend/report');
  assert.equal(nodates.status, 400);
  assert.deepEqual(nodates.json, { detail: { error: 'Please provide start_date and end_date' } });

  // admin only for now
  const denied = await gw.request('/spend/logs', { key: KEY });
  assert.equal(denied.status, 401, denied.text);
  assert.equal((await gw.request('/spend/logs', { key: '' })).status, 401);
});

test('a restart keeps the rows and the totals; the key\'s spend goes on from there', async () => {
  const before = await spendGet(gw, '/spend/logs');
  const keySpend = sum(before.filter((x) => x.api_key === KEY_HASH));
  const g = await spendGet(gw, '/global/spend');
  await gw.stop();
  gw = await startGateway({ config, workers: 2, stateDir: state, dir });
  started.push(gw);
  const afterRows = await spendGet(gw, '/spend/logs');
  assert.equal(afterRows.length, before.length);
  assert.deepEqual(new Set(afterRows.map((x) => x.request_id)), new Set(before.map((x) => x.request_id)));
  assert.ok(close((await spendGet(gw, '/global/spend')).spend, g.spend));
  const st = await spendState(gw);
  assert.ok(st.sink.totals_entities >= 3, 'key, team, user totals');
  // the key's spend the budgets start from is the persisted total
  const r = await call(gw, KEY, { id: nextId('after'), user: 'after-restart' });
  assert.equal(r.status, 200);
  const resp = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ model: 'priced', messages: [{ role: 'user', content: 'x' }] }),
  });
  await resp.text();
  const header = Number(resp.headers.get('x-litellm-key-spend'));
  const rows = await waitRows(gw, (rs) => rs.some((x) => x.end_user === 'after-restart'));
  const expect = keySpend + sum(rows.filter((x) => x.end_user === 'after-restart'));
  assert.ok(close(header, expect, 1e-6), `x-litellm-key-spend ${header}, the log says ${expect}`);
});

test('retention deletes old rows in batches (whole segments), keeps the newer ones', async () => {
  const d2 = tmpDir('mg-spend-ret-');
  const g2 = await startGateway({
    config: {
      ...config,
      general_settings: {
        ...config.general_settings,
        maximum_spend_logs_retention_period: '3s',
        maximum_spend_logs_retention_interval: '1s',
      },
      moongate_settings: { spend_segment_max_seconds: 1 },
    },
    workers: 1,
    dir: d2,
    env: { SPEND_LOG_RUN_LOOPS: '1' }, // one segment per run: the batches are visible
  });
  started.push(g2);
  try {
    for (let i = 0; i < 6; i++) await call(g2, MASTER, { id: nextId('old'), user: `old-${i}` });
    await waitRows(g2, (rs) => rs.length === 6);
    const segsBefore = (await spendState(g2)).queue.segments;
    // rows older than 3 s go; new ones keep coming in meanwhile
    const st = await waitFor(async () => {
      await call(g2, MASTER, { id: nextId('new'), user: 'new' });
      const s = await spendState(g2);
      return s.retention.deleted_rows >= 6 ? s : null;
    }, { timeout: 30000, interval: 300, what: 'retention to delete the old rows' });
    assert.ok(st.retention.last_run_ms > 0);
    const rows = await spendGet(g2, '/spend/logs');
    assert.ok(!rows.some((x) => x.end_user.startsWith('old-')), 'the old rows are gone');
    assert.ok(rows.some((x) => x.end_user === 'new'), 'newer rows stay');
    assert.ok(segsBefore >= 1);
    const files = fs.readdirSync(path.join(g2.stateDir, 'spend')).filter((f) => f.endsWith('.q'));
    assert.ok(files.length < 20, `old segments deleted from disk (${files.length} left)`);
  } finally {
    await g2.stop();
  }
});

test('store_prompts_in_spend_logs: the request body and the response are kept (long strings cut as LiteLLM cuts them)', async () => {
  const d3 = tmpDir('mg-spend-prompts-');
  const g3 = await startGateway({
    config: { ...config, general_settings: { ...config.general_settings, store_prompts_in_spend_logs: true } },
    workers: 1,
    dir: d3,
  });
  started.push(g3);
  try {
    const long = 'y'.repeat(5000);
    const r = await call(g3, MASTER, { id: nextId('prompt'), user: 'p', extra: { messages: [{ role: 'user', content: long }] } });
    assert.equal(r.status, 200);
    const s = await call(g3, MASTER, { id: nextId('prompt-s'), user: 'ps', stream: true });
    assert.ok(s.ok);
    const rows = await waitRows(g3, (rs) => rs.length === 2);
    const row = rows.find((x) => x.end_user === 'p');
    assert.equal(row.proxy_server_request.model, 'priced', 'the request body');
    const content = row.proxy_server_request.messages[0].content;
    assert.ok(content.length < 2200 && content.includes('litellm_truncated skipped'), 'a long string is cut');
    assert.equal(row.response.object, 'chat.completion', 'the response');
    assert.ok(row.response.choices[0].message.content.length > 0);
    assert.deepEqual(row.messages, {}, 'messages stays {} as in LiteLLM');
    const st = await spendState(g3);
    assert.equal(st.store_prompts_in_spend_logs, true);
    assert.equal(st.ring_bytes_per_worker, 16 * 1024 * 1024, 'bigger rings when prompts are kept');
  } finally {
    await g3.stop();
  }
});

test('the spend state is in /moongate/state', async () => {
  const st = await spendState(gw);
  assert.equal(st.mode, 'embedded');
  assert.equal(st.sink.type, 'embedded');
  assert.equal(st.ring_bytes_per_worker, 4 * 1024 * 1024);
  assert.equal(st.queue.bound_bytes, 2048 * 1024 * 1024);
  assert.ok(st.queue.bytes_on_disk > 0);
  assert.equal(st.queue.error, null);
  assert.ok(st.rows_pushed >= st.rows_drained - 1);
});

test('no sanitizer report from any process (ASan/UBSan builds)', async () => {
  await gw.stop();
  assert.deepEqual(sanitizerReports(started), []);
});
