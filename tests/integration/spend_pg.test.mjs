// Spend logs with DATABASE_URL, against a real PostgreSQL (as the postgres user):
//  - a database LiteLLM created (its tables, an older shape of them, a key row) is used as it
//    is: no column or index of an existing table changes; the missing tables are created the
//    way LiteLLM's migrations make them;
//  - every answered request has exactly one row, counted against the mock's log; the spend
//    columns (key, user, end user) and the daily aggregates add each row once;
//  - a lost acknowledgement (the connection cut right after the server committed, by a TCP
//    proxy between moongate and PostgreSQL) sends the batch again: nothing counts twice;
//  - PostgreSQL stopped during traffic and started again: rows wait on disk, all arrive,
//    none twice, the spend columns add once; the outage shows in /moongate/state;
//  - retention deletes old rows in LIMIT-bounded batches;
//  - the read routes answer from the database in LiteLLM's shapes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { startMock, startGateway, mockModel, pool, waitFor, startPostgres } from '../lib/harness.mjs';
import { sha256hex } from '../lib/journal.mjs';
import { call, spendGet, spendState, idCounts, sum, close, sanitizerReports } from './lib_spend.mjs';

const MASTER = 'sk-spend-pg-master-0123456789';
const MASTER_HASH = sha256hex(MASTER);

// ---- a TCP proxy that can drop the server's COMMIT acknowledgement ----

function startProxy(targetPort) {
  const st = { dropNextCommit: false, dropped: 0, conns: new Set() };
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const c = { client, upstream, spend: false, first: true };
    st.conns.add(c);
    let cbuf = Buffer.alloc(0);
    let sbuf = Buffer.alloc(0);
    const kill = () => { client.destroy(); upstream.destroy(); st.conns.delete(c); };
    client.on('error', kill);
    upstream.on('error', kill);
    client.on('close', kill);
    upstream.on('close', kill);
    client.on('data', (d) => {
      if (c.first) {
        // the startup message: who is connecting (moongate's spend connections say so)
        cbuf = Buffer.concat([cbuf, d]);
        if (cbuf.length < 4 || cbuf.length < cbuf.readUInt32BE(0)) return;
        c.spend = cbuf.subarray(8, cbuf.readUInt32BE(0)).toString('latin1').includes('moongate-spend');
        c.first = false;
        upstream.write(cbuf);
        return;
      }
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      sbuf = Buffer.concat([sbuf, d]);
      let at = 0;
      while (sbuf.length - at >= 5) {
        const len = sbuf.readUInt32BE(at + 1);
        if (sbuf.length - at < 1 + len) break;
        const type = String.fromCharCode(sbuf[at]);
        const payload = sbuf.subarray(at + 5, at + 1 + len);
        if (st.dropNextCommit && c.spend && type === 'C' && payload.toString('latin1').startsWith('COMMIT')) {
          // the server has committed; the client never hears of it
          st.dropNextCommit = false;
          st.dropped++;
          client.write(sbuf.subarray(0, at));
          kill();
          return;
        }
        at += 1 + len;
      }
      client.write(sbuf.subarray(0, at));
      sbuf = sbuf.subarray(at);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    st.port = server.address().port;
    st.close = () => { for (const c of st.conns) { c.client.destroy(); c.upstream.destroy(); } server.close(); };
    resolve(st);
  }));
}

// ---- the database as LiteLLM made it (an older release: fewer columns) ----

const LITELLM_DDL = `
CREATE TABLE "LiteLLM_BudgetTable" ("budget_id" TEXT NOT NULL, "max_budget" DOUBLE PRECISION,
  "soft_budget" DOUBLE PRECISION, "max_parallel_requests" INTEGER, "tpm_limit" BIGINT,
  "rpm_limit" BIGINT, "model_max_budget" JSONB, "budget_duration" TEXT, "budget_reset_at" TIMESTAMP(3),
  "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "created_by" TEXT NOT NULL,
  "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_by" TEXT NOT NULL,
  CONSTRAINT "LiteLLM_BudgetTable_pkey" PRIMARY KEY ("budget_id"));
CREATE TABLE "LiteLLM_TeamTable" ("team_id" TEXT NOT NULL, "team_alias" TEXT, "organization_id" TEXT,
  "admins" TEXT[], "members" TEXT[], "members_with_roles" JSONB NOT NULL DEFAULT '{}',
  "metadata" JSONB NOT NULL DEFAULT '{}', "max_budget" DOUBLE PRECISION,
  "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0, "models" TEXT[], "max_parallel_requests" INTEGER,
  "tpm_limit" BIGINT, "rpm_limit" BIGINT, "budget_duration" TEXT, "budget_reset_at" TIMESTAMP(3),
  "blocked" BOOLEAN NOT NULL DEFAULT false,
  "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  "model_spend" JSONB NOT NULL DEFAULT '{}', "model_max_budget" JSONB NOT NULL DEFAULT '{}',
  "model_id" INTEGER, CONSTRAINT "LiteLLM_TeamTable_pkey" PRIMARY KEY ("team_id"));
CREATE TABLE "LiteLLM_UserTable" ("user_id" TEXT NOT NULL, "user_alias" TEXT, "team_id" TEXT,
  "organization_id" TEXT, "password" TEXT, "teams" TEXT[] DEFAULT ARRAY[]::TEXT[], "user_role" TEXT,
  "max_budget" DOUBLE PRECISION, "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0, "user_email" TEXT,
  "models" TEXT[], "metadata" JSONB NOT NULL DEFAULT '{}', "max_parallel_requests" INTEGER,
  "tpm_limit" BIGINT, "rpm_limit" BIGINT, "budget_duration" TEXT, "budget_reset_at" TIMESTAMP(3),
  "allowed_cache_controls" TEXT[] DEFAULT ARRAY[]::TEXT[],
  "model_spend" JSONB NOT NULL DEFAULT '{}', "model_max_budget" JSONB NOT NULL DEFAULT '{}',
  CONSTRAINT "LiteLLM_UserTable_pkey" PRIMARY KEY ("user_id"));
CREATE TABLE "LiteLLM_VerificationToken" ("token" TEXT NOT NULL, "key_name" TEXT, "key_alias" TEXT,
  "soft_budget_cooldown" BOOLEAN NOT NULL DEFAULT false, "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
  "expires" TIMESTAMP(3), "models" TEXT[], "aliases" JSONB NOT NULL DEFAULT '{}',
  "config" JSONB NOT NULL DEFAULT '{}', "user_id" TEXT, "team_id" TEXT,
  "permissions" JSONB NOT NULL DEFAULT '{}', "max_parallel_requests" INTEGER,
  "metadata" JSONB NOT NULL DEFAULT '{}', "blocked" BOOLEAN, "tpm_limit" BIGINT, "rpm_limit" BIGINT,
  "max_budget" DOUBLE PRECISION, "budget_duration" TEXT, "budget_reset_at" TIMESTAMP(3),
  "allowed_cache_controls" TEXT[] DEFAULT ARRAY[]::TEXT[], "model_spend" JSONB NOT NULL DEFAULT '{}',
  "model_max_budget" JSONB NOT NULL DEFAULT '{}', "budget_id" TEXT, "organization_id" TEXT,
  "created_at" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP, "created_by" TEXT,
  "updated_at" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP, "updated_by" TEXT,
  CONSTRAINT "LiteLLM_VerificationToken_pkey" PRIMARY KEY ("token"));
CREATE INDEX "LiteLLM_VerificationToken_team_id_idx" ON "LiteLLM_VerificationToken"("team_id");
CREATE TABLE "LiteLLM_EndUserTable" ("user_id" TEXT NOT NULL, "alias" TEXT,
  "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0, "allowed_model_region" TEXT, "default_model" TEXT,
  "budget_id" TEXT, "blocked" BOOLEAN NOT NULL DEFAULT false,
  CONSTRAINT "LiteLLM_EndUserTable_pkey" PRIMARY KEY ("user_id"));
CREATE TABLE "LiteLLM_SpendLogs" ("request_id" TEXT NOT NULL, "call_type" TEXT NOT NULL,
  "api_key" TEXT NOT NULL DEFAULT '', "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
  "total_tokens" INTEGER NOT NULL DEFAULT 0, "prompt_tokens" INTEGER NOT NULL DEFAULT 0,
  "completion_tokens" INTEGER NOT NULL DEFAULT 0, "startTime" TIMESTAMP(3) NOT NULL,
  "endTime" TIMESTAMP(3) NOT NULL, "completionStartTime" TIMESTAMP(3),
  "model" TEXT NOT NULL DEFAULT '', "model_id" TEXT DEFAULT '', "model_group" TEXT DEFAULT '',
  "custom_llm_provider" TEXT DEFAULT '', "api_base" TEXT DEFAULT '', "user" TEXT DEFAULT '',
  "metadata" JSONB DEFAULT '{}', "cache_hit" TEXT DEFAULT '', "cache_key" TEXT DEFAULT '',
  "request_tags" JSONB DEFAULT '[]', "team_id" TEXT, "end_user" TEXT, "requester_ip_address" TEXT,
  "messages" JSONB DEFAULT '{}', "response" JSONB DEFAULT '{}', "session_id" TEXT, "status" TEXT,
  CONSTRAINT "LiteLLM_SpendLogs_pkey" PRIMARY KEY ("request_id"));
CREATE INDEX "LiteLLM_SpendLogs_startTime_idx" ON "LiteLLM_SpendLogs"("startTime");
CREATE INDEX "LiteLLM_SpendLogs_end_user_idx" ON "LiteLLM_SpendLogs"("end_user");
CREATE TABLE "LiteLLM_DailyUserSpend" ("id" TEXT NOT NULL, "user_id" TEXT NOT NULL,
  "date" TEXT NOT NULL, "api_key" TEXT NOT NULL, "model" TEXT NOT NULL, "model_group" TEXT,
  "custom_llm_provider" TEXT, "prompt_tokens" INTEGER NOT NULL DEFAULT 0,
  "completion_tokens" INTEGER NOT NULL DEFAULT 0, "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
  "api_requests" INTEGER NOT NULL DEFAULT 0, "successful_requests" INTEGER NOT NULL DEFAULT 0,
  "failed_requests" INTEGER NOT NULL DEFAULT 0,
  "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updated_at" TIMESTAMP(3) NOT NULL,
  CONSTRAINT "LiteLLM_DailyUserSpend_pkey" PRIMARY KEY ("id"));
CREATE UNIQUE INDEX "LiteLLM_DailyUserSpend_user_id_date_api_key_model_custom_ll_key"
  ON "LiteLLM_DailyUserSpend"("user_id", "date", "api_key", "model", "custom_llm_provider");
CREATE INDEX "LiteLLM_DailyUserSpend_date_idx" ON "LiteLLM_DailyUserSpend"("date");
INSERT INTO "LiteLLM_UserTable" (user_id, user_role, spend) VALUES ('default_user_id', 'proxy_admin', 1.5);
INSERT INTO "LiteLLM_VerificationToken" (token, key_name, spend, user_id)
  VALUES ('${MASTER_HASH}', 'sk-...6789', 2.0, 'default_user_id');
`;

const SCHEMA_Q = `SELECT table_name || '.' || column_name || ':' || data_type || ':' || is_nullable || ':' ||
  coalesce(column_default, '') FROM information_schema.columns WHERE table_schema = 'public'
  AND table_name IN ('LiteLLM_SpendLogs', 'LiteLLM_VerificationToken', 'LiteLLM_UserTable',
  'LiteLLM_TeamTable', 'LiteLLM_EndUserTable', 'LiteLLM_DailyUserSpend', 'LiteLLM_BudgetTable')
  UNION ALL SELECT indexname || ':' || indexdef FROM pg_indexes WHERE schemaname = 'public'
  AND tablename IN ('LiteLLM_SpendLogs', 'LiteLLM_VerificationToken', 'LiteLLM_UserTable',
  'LiteLLM_TeamTable', 'LiteLLM_EndUserTable', 'LiteLLM_DailyUserSpend', 'LiteLLM_BudgetTable')
  ORDER BY 1`;

const pg = await startPostgres();
pg.psql('CREATE DATABASE litellm');
pg.psql('CREATE DATABASE fresh');
pg.psql('CREATE DATABASE ret');
/** psql on one database of the test server (the harness's psql uses the default one). */
function pgIn(db, sql) {
  const asRoot = process.getuid && process.getuid() === 0;
  const args = ['-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', '-d', db, '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql];
  const r = asRoot ? spawnSync('runuser', ['-u', 'postgres', '--', 'psql', ...args], { encoding: 'utf8' })
    : spawnSync('psql', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql ${db}: ${r.stderr}`);
  return r.stdout.trim();
}
pgIn('litellm', LITELLM_DDL);
const schemaBefore = pgIn('litellm', SCHEMA_Q);

const proxy = await startProxy(pg.port);
const mock = await startMock();
const config = (db, extra = {}) => ({
  model_list: [
    mockModel(mock, 'priced', { info: { input_cost_per_token: 1e-4, output_cost_per_token: 2e-4 } }),
  ],
  general_settings: {
    master_key: MASTER,
    database_url: `postgresql://postgres@127.0.0.1:${proxy.port}/${db}?sslmode=disable`,
    ...extra,
  },
  router_settings: { num_retries: 0 },
});
const gw = await startGateway({ config: config('litellm'), workers: 2 });
const started = [gw];
after(async () => { await gw.stop(); await mock.stop(); proxy.close(); await pg.stop(); });

let seq = 0;
const nextId = (p) => `${p}-${++seq}-${process.pid}`;
const dbRows = (where = 'true') => pgIn('litellm',
  `SELECT request_id || '|' || spend || '|' || coalesce(end_user, '') || '|' || status FROM "LiteLLM_SpendLogs" WHERE ${where}`)
  .split('\n').filter(Boolean).map((l) => { const [id, spend, eu, status] = l.split('|'); return { id, spend: Number(spend), eu, status }; });
const num = (db, sql) => Number(pgIn(db, sql));

async function waitAcked(g, what) {
  return waitFor(async () => {
    const s = await spendState(g);
    return s.queued_rows === 0 && s.rows_drained === s.rows_pushed && s.sink.connected ? s : null;
  }, { timeout: 30000, interval: 100, what: `${what}: every row acknowledged` });
}

let expectTokenSpend = 2.0; // the key row's spend before moongate
let expectUserSpend = 1.5;

test('every answered request has one row in LiteLLM_SpendLogs; spend columns and daily aggregates add each once', async () => {
  await mock.reset();
  const plan = [];
  for (let i = 0; i < 10; i++) plan.push({});
  for (let i = 0; i < 5; i++) plan.push({ stream: true });
  for (let i = 0; i < 3; i++) plan.push({ mock: { status: 500 } });
  const res = await pool(plan.length, 4, (i) => call(gw, MASTER, { id: nextId('pg'), user: `eu-pg-${i % 4}`, ...plan[i] }));
  await waitAcked(gw, 'the first batch');
  const ids = res.map((r) => r.id);
  const rows = dbRows(`request_id IN (${ids.map((x) => `'${x}'`).join(',')})`);
  assert.equal(rows.length, res.length, 'one row per request');
  assert.equal(rows.filter((x) => x.status === 'failure').length, 3);
  const log = await mock.log();
  assert.equal(log.length, res.length, 'every one reached the mock once (no retries)');
  const spent = sum(rows);
  assert.ok(spent > 0);
  expectTokenSpend += spent;
  expectUserSpend += spent;
  assert.ok(close(num('litellm', `SELECT spend FROM "LiteLLM_VerificationToken" WHERE token = '${MASTER_HASH}'`), expectTokenSpend),
    'the key row\'s spend: what it had plus every row');
  assert.ok(close(num('litellm', `SELECT spend FROM "LiteLLM_UserTable" WHERE user_id = 'default_user_id'`), expectUserSpend));
  for (let e = 0; e < 4; e++) {
    const want = sum(rows.filter((x) => x.eu === `eu-pg-${e}`));
    assert.ok(close(num('litellm', `SELECT spend FROM "LiteLLM_EndUserTable" WHERE user_id = 'eu-pg-${e}'`), want),
      `end user eu-pg-${e} upserted with its spend`);
  }
  assert.ok(close(num('litellm', `SELECT sum(spend) FROM "LiteLLM_DailyUserSpend"`), spent));
  assert.equal(num('litellm', `SELECT sum(api_requests) FROM "LiteLLM_DailyUserSpend"`), res.length);
  assert.equal(num('litellm', `SELECT sum(failed_requests) FROM "LiteLLM_DailyUserSpend"`), 3);
  assert.equal(num('litellm', `SELECT count(*) FROM "LiteLLM_DailyUserSpend"`), 1, 'one aggregate row, updated in place');
  // LiteLLM's own columns, as LiteLLM writes them
  const one = JSON.parse(pgIn('litellm', `SELECT to_jsonb(s) FROM "LiteLLM_SpendLogs" s WHERE request_id = '${ids[0]}'`));
  assert.equal(one.api_key, MASTER_HASH);
  assert.equal(one.user, 'default_user_id');
  assert.equal(one.call_type, 'acompletion');
  assert.equal(one.cache_hit, 'False');
  assert.equal(one.metadata.status, 'success');
  assert.ok(one.metadata.moongate_row_id, 'the row id that makes a batch idempotent');
});

test('a database LiteLLM created is used as it is; missing tables are created as LiteLLM would', async () => {
  assert.equal(pgIn('litellm', SCHEMA_Q), schemaBefore, 'no column or index of an existing table changed');
  // the daily tables it did not have are there now, with LiteLLM's columns and unique key
  const cols = pgIn('litellm', `SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'LiteLLM_DailyTeamSpend'`);
  assert.equal(cols, 'id,team_id,date,api_key,model,model_group,custom_llm_provider,mcp_namespaced_tool_name,endpoint,prompt_tokens,completion_tokens,cache_read_input_tokens,cache_creation_input_tokens,spend,api_requests,successful_requests,failed_requests,created_at,updated_at');
  assert.match(pgIn('litellm', `SELECT indexdef FROM pg_indexes WHERE indexname = 'LiteLLM_DailyTeamSpend_team_id_date_api_key_model_custom_ll_key'`), /UNIQUE INDEX/);
  // a fresh database: every table, from LiteLLM's schema
  const g2 = await startGateway({ config: config('fresh'), workers: 1 });
  started.push(g2);
  try {
    await call(g2, MASTER, { id: nextId('fresh'), user: 'f' });
    await waitAcked(g2, 'the fresh database');
    const logCols = pgIn('fresh', `SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'LiteLLM_SpendLogs'`);
    assert.equal(logCols, 'request_id,call_type,api_key,spend,total_tokens,prompt_tokens,completion_tokens,startTime,endTime,request_duration_ms,completionStartTime,model,model_id,model_group,custom_llm_provider,api_base,user,metadata,cache_hit,cache_key,request_tags,team_id,organization_id,end_user,requester_ip_address,messages,response,session_id,status,mcp_namespaced_tool_name,agent_id,proxy_server_request');
    const idx = pgIn('fresh', `SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'LiteLLM_SpendLogs'`);
    assert.equal(idx, 'LiteLLM_SpendLogs_end_user_idx,LiteLLM_SpendLogs_pkey,LiteLLM_SpendLogs_session_id_idx,LiteLLM_SpendLogs_startTime_idx,LiteLLM_SpendLogs_startTime_request_id_idx');
    assert.equal(num('fresh', `SELECT count(*) FROM "LiteLLM_SpendLogs"`), 1);
    assert.equal(num('fresh', `SELECT request_duration_ms IS NOT NULL FROM "LiteLLM_SpendLogs"`) || 1, 1);
    for (const t of ['LiteLLM_DailyUserSpend', 'LiteLLM_DailyTeamSpend', 'LiteLLM_DailyOrganizationSpend', 'LiteLLM_DailyEndUserSpend', 'LiteLLM_DailyTagSpend']) {
      assert.equal(pgIn('fresh', `SELECT to_regclass('"${t}"') IS NOT NULL`), 't', t);
    }
    assert.equal(num('fresh', `SELECT count(*) FROM "LiteLLM_DailyEndUserSpend" WHERE end_user_id = 'f'`), 1);
  } finally {
    await g2.stop();
  }
});

test('a lost acknowledgement (cut after COMMIT) sends the batch again and counts nothing twice', async () => {
  const before0 = (await spendState(gw)).sink.retries;
  proxy.dropNextCommit = true;
  const res = await pool(8, 4, (i) => call(gw, MASTER, { id: nextId('lost'), user: `lost-${i}` }));
  assert.ok(res.every((r) => r.ok));
  await waitFor(() => proxy.dropped >= 1, { what: 'the proxy to drop a COMMIT acknowledgement' });
  const st = await waitAcked(gw, 'after the lost acknowledgement');
  assert.ok(st.sink.retries > before0, `the batch was sent again: retries ${before0} -> ${st.sink.retries}; `
    + `state ${JSON.stringify(st.sink)}; the gateway's spend log:\n${gw.output().stderr.split('\n').filter((l) => /spend/.test(l)).slice(-20).join('\n')}`);
  const rows = dbRows(`end_user LIKE 'lost-%'`);
  assert.equal(rows.length, 8, 'each row once');
  expectTokenSpend += sum(rows);
  expectUserSpend += sum(rows);
  assert.ok(close(num('litellm', `SELECT spend FROM "LiteLLM_VerificationToken" WHERE token = '${MASTER_HASH}'`), expectTokenSpend),
    'the key\'s spend was added once');
  assert.ok(close(num('litellm', `SELECT spend FROM "LiteLLM_UserTable" WHERE user_id = 'default_user_id'`), expectUserSpend));
  assert.equal(num('litellm', `SELECT sum(api_requests) FROM "LiteLLM_DailyUserSpend"`),
    num('litellm', `SELECT count(*) FROM "LiteLLM_SpendLogs"`), 'daily requests: once per row');
});

test('PostgreSQL stopped during traffic and started again: every row arrives, none twice', async () => {
  await mock.reset();
  const N = 200;
  let done = 0;
  let stopped = false;
  let outageSeen = null;
  const res = await pool(N, 4, async (i) => {
    const r = await call(gw, MASTER, { id: nextId('out'), user: `out-${i % 10}`, stream: i % 4 === 0 });
    done++;
    if (done === 40) {
      stopped = true;
      await pg.stop('fast');
    }
    if (stopped && !outageSeen && done > 60) {
      const s = await spendState(gw);
      if (!s.sink.connected) outageSeen = s;
    }
    if (done === 140) await pg.start();
    return r;
  });
  const answered = res.filter((r) => r.ok);
  assert.equal(answered.length, N, 'the database is not on the request path');
  assert.ok(outageSeen, 'the outage showed in /moongate/state');
  assert.ok(outageSeen.sink.last_error, 'with the error');
  assert.ok(outageSeen.queued_rows > 0, 'rows waited on disk');
  await waitAcked(gw, 'after the outage');
  const rows = dbRows(`end_user LIKE 'out-%'`);
  assert.equal(rows.length, N, 'every answered request has its row');
  assert.equal(new Set(rows.map((x) => x.id)).size, N);
  for (const a of answered) assert.ok(rows.some((x) => x.id === a.id));
  expectTokenSpend += sum(rows);
  expectUserSpend += sum(rows);
  assert.ok(close(num('litellm', `SELECT spend FROM "LiteLLM_VerificationToken" WHERE token = '${MASTER_HASH}'`), expectTokenSpend, 1e-7),
    'spend columns added once');
  assert.ok(close(num('litellm', `SELECT spend FROM "LiteLLM_UserTable" WHERE user_id = 'default_user_id'`), expectUserSpend, 1e-7));
  for (let e = 0; e < 10; e++) {
    const want = sum(rows.filter((x) => x.eu === `out-${e}`));
    assert.ok(close(num('litellm', `SELECT spend FROM "LiteLLM_EndUserTable" WHERE user_id = 'out-${e}'`), want, 1e-7));
  }
  assert.equal(num('litellm', `SELECT sum(api_requests) FROM "LiteLLM_DailyUserSpend"`),
    num('litellm', `SELECT count(*) FROM "LiteLLM_SpendLogs"`));
  const log = await mock.log();
  assert.equal(log.length, N, 'counted against the mock: one upstream call per row');
});

test('the read routes answer from the database in LiteLLM\'s shapes', async () => {
  const rows = await spendGet(gw, '/spend/logs');
  const n = num('litellm', `SELECT count(*) FROM "LiteLLM_SpendLogs"`);
  assert.equal(rows.length, n);
  assert.match(rows[0].startTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/);
  const times = rows.map((x) => Date.parse(x.startTime));
  assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
  const byKey = await spendGet(gw, `/spend/logs?api_key=${MASTER}`);
  assert.equal(byKey.length, n, 'sk- keys are hashed');
  const id = rows[3].request_id;
  assert.deepEqual((await spendGet(gw, `/spend/logs?request_id=${id}`)).map((x) => x.request_id), [id]);
  const g = await spendGet(gw, '/global/spend');
  assert.ok(close(g.spend, sum(rows), 1e-7));
  assert.equal(g.max_budget, 0);
  const day = (d) => new Date(Date.now() + d * 86400000).toISOString().slice(0, 10);
  const summary = await spendGet(gw, `/spend/logs?start_date=${day(-1)}&end_date=${day(1)}`);
  const today = summary.find((x) => x.startTime === day(0));
  assert.ok(close(today.spend, sum(rows), 1e-7));
  assert.ok(close(today.users.default_user_id, sum(rows), 1e-7));
  const keys = await spendGet(gw, '/global/spend/keys');
  assert.equal(keys[0].api_key, MASTER_HASH);
  const models = await spendGet(gw, '/global/spend/models?limit=1');
  assert.equal(models.length, 1);
  assert.equal(models[0].model, 'priced');
  const rep = await spendGet(gw, `/global/spend/report?start_date=${day(-1)}&end_date=${day(1)}&group_by=api_key`);
  assert.ok(close(rep[0].total_cost, sum(rows), 1e-7));
  const teams = await spendGet(gw, `/global/spend/report?start_date=${day(-1)}&end_date=${day(1)}`);
  assert.equal(teams[0].teams[0].team_name, 'Unassigned Team');
});

test('retention deletes rows older than the period in LIMIT-bounded batches', async () => {
  // 25 rows from ten days ago, as LiteLLM would have written them, and one from today
  const g3 = await startGateway({
    config: config('ret', { maximum_spend_logs_retention_period: '7d', maximum_spend_logs_retention_interval: '1s' }),
    workers: 1,
    env: { SPEND_LOG_CLEANUP_BATCH_SIZE: '10' },
  });
  started.push(g3);
  try {
    await call(g3, MASTER, { id: nextId('ret-new'), user: 'keep' });
    await waitAcked(g3, 'the new row');
    pgIn('ret', `INSERT INTO "LiteLLM_SpendLogs" (request_id, call_type, "startTime", "endTime", metadata)
      SELECT 'old-' || i, 'acompletion', now() - interval '10 days', now() - interval '10 days', '{}'
      FROM generate_series(1, 25) i`);
    const st = await waitFor(async () => {
      const s = await spendState(g3);
      return s.retention.deleted_rows >= 25 && !s.retention.running ? s : null;
    }, { timeout: 30000, interval: 200, what: 'retention to delete 25 old rows' });
    assert.equal(num('ret', `SELECT count(*) FROM "LiteLLM_SpendLogs" WHERE request_id LIKE 'old-%'`), 0);
    assert.equal(num('ret', `SELECT count(*) FROM "LiteLLM_SpendLogs" WHERE end_user = 'keep'`), 1, 'the new row stays');
    assert.ok(st.retention.batches >= 3, `batches of 10: ${st.retention.batches} DELETE statements`);
    assert.equal(st.retention.period_seconds, 7 * 86400);
  } finally {
    await g3.stop();
  }
});

test('the disk bound: with the database down, rows past spend_queue_max_mb are dropped and counted, never silently', async () => {
  const g4 = await startGateway({
    config: { ...config('ret'), moongate_settings: { spend_queue_max_mb: 0.1, spend_segment_max_mb: 0.02 } },
    workers: 1,
  });
  started.push(g4);
  try {
    await call(g4, MASTER, { id: nextId('bound-first'), user: 'b' });
    await waitAcked(g4, 'before the outage');
    await pg.stop('fast');
    const res = await pool(400, 4, (i) => call(g4, MASTER, { id: nextId('bound'), user: `b-${i}` }));
    assert.ok(res.every((r) => r.ok), 'answers do not wait for the disk queue');
    const st = await waitFor(async () => {
      const s = await spendState(g4);
      return s.rows_drained === s.rows_pushed ? s : null;
    }, { what: 'every row taken from the ring' });
    assert.ok(st.dropped_disk_full > 0, `rows dropped at the bound: ${st.dropped_disk_full}`);
    assert.ok(st.queue.bytes_on_disk <= st.queue.bound_bytes, 'the queue stays under its bound');
    assert.equal(st.queue.bound_bytes, Math.floor(0.1 * 1024 * 1024));
    assert.match(g4.output().stderr, /spend log queue full/, 'and said in the log');
    const kept = st.queued_rows;
    await pg.start();
    await waitAcked(g4, 'after the outage');
    assert.equal(num('ret', `SELECT count(*) FROM "LiteLLM_SpendLogs" WHERE end_user LIKE 'b-%'`) + st.dropped_disk_full, 400,
      'every row either arrived or was counted as dropped');
    assert.ok(kept > 0);
  } finally {
    await g4.stop();
  }
});

test('settings that are not durations are refused at start', async () => {
  const bad = startGateway({ config: config('ret', { maximum_spend_logs_retention_period: 'soon' }), workers: 1 });
  await assert.rejects(bad, /maximum_spend_logs_retention_period must be a duration/);
});

test('no sanitizer report from any process (ASan/UBSan builds)', async () => {
  await gw.stop();
  assert.deepEqual(sanitizerReports(started), []);
});
