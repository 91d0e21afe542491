// A database created the way LiteLLM creates it, served by moongate unchanged.
//  - LiteLLM's tables come from tests/fixtures/litellm/schema.sql (Prisma's DDL for
//    litellm/proxy/schema.prisma, not moongate's own); the rows are written as LiteLLM writes
//    them: a virtual key (token = SHA-256 hex of the key), its team and user, and
//    LiteLLM_ProxyModelTable rows whose litellm_params are encrypted by
//    tests/fixtures/litellm/encrypt.py (PyNaCl SecretBox, and AES-GCM "v3:gcm:") under
//    LITELLM_SALT_KEY.
//  - moongate starts with that DATABASE_URL (Prisma's form, ?schema=public&connection_limit=5)
//    and LITELLM_SALT_KEY: the virtual key authenticates and reaches the mock provider with the
//    decrypted upstream key, a wrong key is 401, a model under another salt key is skipped
//    loudly while the rest serves.
//  - Nothing in LiteLLM's tables is altered: their schema (columns, defaults, constraints,
//    indexes, triggers) and rows are compared before and after, with several workers.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startMock, startPostgres, repoRoot } from '../lib/harness.mjs';
import { req, everyWorker, startLoaded, waitState } from './lib_registry.mjs';

const MASTER = 'sk-litellm-master-1234';
const SALT = 'litellm-salt-for-the-test';
const VKEY = 'sk-LiteLLMVirtualKey-0001';
const EXPIRED = 'sk-LiteLLMVirtualKey-expired';
const BLOCKED = 'sk-LiteLLMVirtualKey-blocked';
const UPSTREAM = 'sk-upstream-secret-from-litellm';
const W = 2;
const fixtures = path.join(repoRoot, 'tests', 'fixtures', 'litellm');
const python = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');

const mock = await startMock();
const pg = await startPostgres();
const extra = [];
after(async () => {
  for (const g of extra) await g.stop();
  await mock.stop();
  await pg.stop();
});

// psql on the LiteLLM database (trust auth on 127.0.0.1; the client may run as root)
function psql(args, input) {
  return execFileSync('psql', ['-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', '-d', 'litellm',
    '-v', 'ON_ERROR_STOP=1', '-At', ...args], { encoding: 'utf8', input }).trim();
}
const sql = (q) => psql(['-c', q]);
const lit = (s) => `'${String(s).replace(/'/g, "''")}'`;

function encrypt(algo, salt, params) {
  return execFileSync(python, [path.join(fixtures, 'encrypt.py'), algo, salt],
    { encoding: 'utf8', input: JSON.stringify(params) });
}

/** Everything about LiteLLM's tables: definitions, then every row of every one of them. */
function litellmState() {
  const tables = sql("SELECT relname FROM pg_class WHERE relname LIKE 'LiteLLM%' AND relkind = 'r' ORDER BY 1").split('\n');
  const parts = [
    sql(`SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
           pg_get_expr(d.adbin, d.adrelid) FROM pg_class c
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
         WHERE c.relname LIKE 'LiteLLM%' AND c.relkind = 'r' ORDER BY 1, 2`),
    sql(`SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conrelid::regclass::text LIKE '"LiteLLM%' ORDER BY 1, 2`),
    sql("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename LIKE 'LiteLLM%' ORDER BY 1, 2"),
    sql(`SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE tgrelid::regclass::text LIKE '"LiteLLM%'
         ORDER BY 1, 2`),
  ];
  for (const t of tables) parts.push(`${t}:\n${sql(`SELECT row_to_json(t)::text FROM "${t}" t ORDER BY 1`)}`);
  return { tables, text: parts.join('\n---\n') };
}

// ---- the database LiteLLM made ----
pg.psql('CREATE DATABASE litellm');
psql(['-f', path.join(fixtures, 'schema.sql')]);
const token = sha256(VKEY);
const params = { model: 'openai/lt-upstream', api_base: mock.url, api_key: UPSTREAM, rpm: 100 };
const rows = [
  ['lt-model', 'lt-model', encrypt('nacl', SALT, params)],
  ['lt-model-v3', 'lt-model-v3', encrypt('v3', SALT, { ...params, model: 'openai/lt-upstream-v3' })],
  ['lt-wrong-salt', 'lt-wrong-salt', encrypt('nacl', 'a-different-salt', params)],
];
psql([], `
INSERT INTO "LiteLLM_TeamTable" (team_id, team_alias, admins, members, members_with_roles, models, updated_at)
  VALUES ('team-a', 'Team A', ARRAY['user-a'], ARRAY['user-a'],
          '[{"role": "admin", "user_id": "user-a"}]', ARRAY['lt-model', 'lt-model-v3', 'lt-wrong-salt'],
          '2025-01-02 03:04:05.678');
INSERT INTO "LiteLLM_UserTable" (user_id, user_email, user_role, teams, models, spend)
  VALUES ('user-a', 'a@example.com', 'internal_user', ARRAY['team-a'], ARRAY[]::text[], 0.5);
INSERT INTO "LiteLLM_VerificationToken" (token, key_name, key_alias, models, user_id, team_id, metadata,
    max_budget, spend, created_by, updated_by, expires)
  VALUES (${lit(token)}, 'sk-...0001', 'litellm-key', ARRAY['lt-model', 'lt-model-v3', 'lt-wrong-salt'],
          'user-a', 'team-a', '{}', 100, 0.125, 'user-a', 'user-a', '2099-01-01 00:00:00'),
         (${lit(sha256(EXPIRED))}, 'sk-...0002', 'expired', ARRAY['lt-model'], 'user-a', 'team-a', '{}',
          NULL, 0, 'user-a', 'user-a', '2020-01-01 00:00:00'),
         (${lit(sha256(BLOCKED))}, 'sk-...0003', 'blocked', ARRAY['lt-model'], 'user-a', 'team-a', '{}',
          NULL, 0, 'user-a', 'user-a', NULL);
UPDATE "LiteLLM_VerificationToken" SET blocked = true WHERE key_alias = 'blocked';
${rows.map(([id, name, p]) => `INSERT INTO "LiteLLM_ProxyModelTable" (model_id, model_name, litellm_params,
    model_info, created_by, updated_by, updated_at)
  VALUES (${lit(id)}, ${lit(name)}, ${lit(p)}::jsonb, ${lit(JSON.stringify({ id, db_model: true }))}::jsonb,
          'default_user_id', 'default_user_id', CURRENT_TIMESTAMP);`).join('\n')}
`);
assert.ok(!sql('SELECT litellm_params::text FROM "LiteLLM_ProxyModelTable"').includes(UPSTREAM),
  'the fixture rows hold ciphertext, not the upstream key');
const before = litellmState();

const env = {
  // Prisma's URL form, as a LiteLLM deployment has it
  DATABASE_URL: `postgresql://postgres@127.0.0.1:${pg.port}/litellm?schema=public&connection_limit=5`,
  LITELLM_SALT_KEY: SALT,
  LITELLM_MASTER_KEY: MASTER,
  STORE_MODEL_IN_DB: 'True',
};
const gw = await startLoaded({ config: { model_list: [] }, workers: W, env }, { key: MASTER });
extra.push(gw);

test('nothing in LiteLLM\'s tables is altered by connecting and loading', () => {
  const now = litellmState();
  assert.deepEqual(now.tables, before.tables, 'no LiteLLM table added or dropped');
  assert.equal(now.text, before.text);
  // moongate's own tables sit beside LiteLLM's
  assert.equal(sql("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'moongate_%'"), '4');
});

test('the virtual key LiteLLM stored authenticates on every worker and reaches the model LiteLLM stored', async () => {
  const seen = await everyWorker(gw.port, W, '/v1/chat/completions', { method: 'POST', key: VKEY,
    body: { model: 'lt-model', messages: [{ role: 'user', content: 'from-a-litellm-key' }] } });
  for (const [w, r] of seen) assert.equal(r.status, 200, `worker ${w}: ${r.text}`);
  const e = (await mock.log()).filter((x) => x.body?.messages?.[0]?.content === 'from-a-litellm-key');
  assert.ok(e.length >= W);
  // the decrypted litellm_params: the upstream key and model LiteLLM encrypted
  assert.equal(e[0].headers.authorization, `Bearer ${UPSTREAM}`);
  assert.equal(e[0].body.model, 'lt-upstream');

  // the AES-GCM ("v3:gcm:") row LiteLLM's newer versions write
  const v3 = await req(gw.port, '/v1/chat/completions', { method: 'POST', key: VKEY,
    body: { model: 'lt-model-v3', messages: [{ role: 'user', content: 'v3-row' }] } });
  assert.equal(v3.status, 200, v3.text);
  const e3 = (await mock.log()).find((x) => x.body?.messages?.[0]?.content === 'v3-row');
  assert.equal(e3.body.model, 'lt-upstream-v3');
  assert.equal(e3.headers.authorization, `Bearer ${UPSTREAM}`);

  // the master key serves the stored model too
  const mk = await req(gw.port, '/v1/chat/completions', { method: 'POST', key: MASTER,
    body: { model: 'lt-model', messages: [{ role: 'user', content: 'master' }] } });
  assert.equal(mk.status, 200, mk.text);
});

test('a wrong, an expired and a blocked key are 401', async () => {
  // (the token itself, 64 hex digits, is taken as already hashed, as LiteLLM does: not tried here)
  for (const key of ['sk-LiteLLMVirtualKey-0002', `${VKEY}x`, 'not-a-litellm-key']) {
    const seen = await everyWorker(gw.port, W, '/v1/chat/completions', { method: 'POST', key,
      body: { model: 'lt-model', messages: [{ role: 'user', content: 'wrong' }] } });
    for (const [w, r] of seen) assert.equal(r.status, 401, `worker ${w}, key ${key.slice(0, 6)}...: ${r.text}`);
  }
  // LiteLLM's expired and blocked keys stay refused (its UTC timestamp read as UTC)
  const ex = await req(gw.port, '/v1/chat/completions', { method: 'POST', key: EXPIRED,
    body: { model: 'lt-model', messages: [{ role: 'user', content: 'wrong' }] } });
  assert.equal(ex.status, 401, ex.text);
  assert.match(ex.json.error.message, /Expired Key/);
  const bl = await req(gw.port, '/v1/chat/completions', { method: 'POST', key: BLOCKED,
    body: { model: 'lt-model', messages: [{ role: 'user', content: 'wrong' }] } });
  assert.equal(bl.status, 401, bl.text);
  assert.match(bl.json.error.message, /blocked/);
  assert.ok(!(await mock.log()).some((x) => x.body?.messages?.[0]?.content === 'wrong'), 'nothing reached upstream');
});

test('a row encrypted under another salt key is skipped loudly; the others serve', async () => {
  const s = await waitState(gw.port, MASTER, (ws) => ws.length === W &&
    ws.every((w) => (w.snapshot_warnings || []).some((x) => /"lt-wrong-salt"/.test(x))),
  { what: 'the unreadable row to be reported' });
  const why = s.workers[0].snapshot_warnings.find((x) => /"lt-wrong-salt"/.test(x));
  assert.match(why, /LiteLLM_ProxyModelTable: cannot decrypt litellm_params\.model: wrong LITELLM_SALT_KEY/);
  assert.ok(!why.includes(SALT), 'the salt key is never shown');
  const r = await req(gw.port, '/v1/chat/completions', { method: 'POST', key: VKEY,
    body: { model: 'lt-wrong-salt', messages: [{ role: 'user', content: 'x' }] } });
  assert.equal(r.status, 503, r.text);
  assert.match(r.json.error.message, /LITELLM_SALT_KEY/);
  assert.ok(!gw.output().stderr.includes(UPSTREAM) && !gw.output().stdout.includes(UPSTREAM),
    'the upstream key never appears in the logs');
});

test('after traffic LiteLLM\'s tables are still as LiteLLM made them', () => {
  const now = litellmState();
  // the spend pipeline, when it runs, adds to spend columns and to LiteLLM_SpendLogs: those are
  // LiteLLM's own writes, not alterations; compare what existed before, spend set aside
  const noSpend = (t) => t.replace(/"(spend|model_spend|last_active)":[^,}]*(,)?/g, '');
  for (const t of before.tables) assert.ok(now.tables.includes(t), `table ${t} is gone`);
  const defs = (t) => t.split('\n---\n').slice(0, 4).join('\n---\n');
  assert.equal(defs(now.text), defs(before.text), 'definitions of LiteLLM\'s tables');
  const rowsOf = (st) => Object.fromEntries(st.text.split('\n---\n').slice(4).map((p) => [p.split(':\n')[0], noSpend(p)]));
  const b = rowsOf(before);
  const n = rowsOf(now);
  for (const t of before.tables) assert.equal(n[t], b[t], `rows of ${t}`);
});
