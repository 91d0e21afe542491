// Every management route of virtual keys, teams, users, customers and budgets, with
// LiteLLM's request fields, answers and errors, on the store MG_KEYS_STORE names (the
// embedded journal by default; PostgreSQL is skipped with a message while its store does
// not hold LiteLLM's identity tables).  Only a key's hash is stored, never the key.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startKeysGateway, call, post, get, expectStatus, probe, STORE, MASTER, stopsClean } from './keys_lib.mjs';

const sha = (s) => crypto.createHash('sha256').update(s).digest('hex');
const chat = (gw, key, model = 'm1') => call(gw, 'POST', '/v1/chat/completions',
  { model, messages: [{ role: 'user', content: 'hi' }] }, key);

// every log line is checked for keys below: log all of them
const inst = await startKeysGateway({ workers: 2, env: { LITELLM_LOG: 'DEBUG' } });
const { gw } = inst;
after(async () => { await inst.stop(); });
const skip = await probe(gw);
if (skip) console.log(`# SKIP: ${skip}`);
const t = (name, fn) => test(name, { skip: skip || false }, fn);

const secrets = []; // every raw key this file was given: none may be stored or logged

before(async () => {
  if (skip) return;
  expectStatus(await post(gw, '/team/new', { team_id: 'rt-a', team_alias: 'Route Team A', max_budget: 100, tpm_limit: 1000, rpm_limit: 100, models: ['m1', 'm2'] }), 200, 'team a');
  expectStatus(await post(gw, '/user/new', { user_id: 'rt-user', user_email: 'rt@example.com', user_role: 'internal_user', teams: ['rt-a'], auto_create_key: false }), 200, 'user');
});

// ---- /key/generate ----

t('/key/generate: LiteLLM\'s GenerateKeyResponse, sk- + 22 url-safe characters, token = SHA-256', async () => {
  const r = expectStatus(await post(gw, '/key/generate', {
    key_alias: 'rt-gen-1', duration: '1h', models: ['m1'], aliases: { 'my-m': 'm1' }, max_budget: 2.5,
    soft_budget: 1.5, budget_duration: '30d', tpm_limit: 500, rpm_limit: 50, max_parallel_requests: 3,
    model_rpm_limit: { m1: 10 }, model_tpm_limit: { m1: 100 }, model_max_budget: { m1: { budget_limit: 1, time_period: '1d' } },
    metadata: { app: 'x' }, tags: ['t1', 't2'], user_id: 'rt-user', team_id: 'rt-a', permissions: {}, blocked: false,
  }), 200, 'generate');
  secrets.push(r.key);
  assert.match(r.key, /^sk-[A-Za-z0-9_-]{22}$/);
  assert.equal(r.token, sha(r.key));
  assert.equal(r.token_id, r.token);
  assert.equal(r.key_name, `sk-...${r.key.slice(-4)}`);
  assert.equal(r.key_alias, 'rt-gen-1');
  assert.deepEqual(r.models, ['m1']);
  assert.deepEqual(r.aliases, { 'my-m': 'm1' });
  assert.equal(r.max_budget, 2.5);
  assert.equal(r.soft_budget, 1.5, 'soft_budget is answered (kept in the key\'s budget row)');
  assert.equal(r.litellm_budget_table.soft_budget, 1.5);
  assert.equal(typeof r.budget_id, 'string');
  assert.equal(r.tpm_limit, 500);
  assert.equal(r.rpm_limit, 50);
  assert.equal(r.max_parallel_requests, 3);
  assert.equal(r.budget_duration, '30d');
  const reset = Date.parse(r.budget_reset_at);
  assert.ok(Math.abs(reset - (Date.now() + 30 * 86400e3)) < 120e3, r.budget_reset_at);
  const exp = Date.parse(r.expires);
  assert.ok(Math.abs(exp - (Date.now() + 3600e3)) < 120e3, r.expires);
  assert.deepEqual(r.metadata.model_rpm_limit, { m1: 10 }, 'LiteLLM keeps model_rpm_limit in metadata');
  assert.deepEqual(r.metadata.model_tpm_limit, { m1: 100 });
  assert.deepEqual(r.metadata.tags, ['t1', 't2']);
  assert.deepEqual(r.tags, ['t1', 't2']);
  assert.equal(r.metadata.app, 'x');
  assert.deepEqual(r.model_max_budget, { m1: { budget_limit: 1, time_period: '1d' } });
  assert.equal(r.user_id, 'rt-user');
  assert.equal(r.team_id, 'rt-a');
  assert.equal(r.blocked, false);
  assert.equal(r.spend, 0);
  // the key calls what it may, not more
  expectStatus(await chat(gw, r.key, 'm1'), 200, 'allowed model');
  expectStatus(await chat(gw, r.key, 'my-m'), 200, 'an alias of the key');
  const no = await chat(gw, r.key, 'm2');
  assert.equal(no.status, 401, no.text);
  assert.match(no.json.error.message, /key not allowed to access model/);
});

t('/key/generate: a custom key, key_type, the master key making keys without a user', async () => {
  const custom = `sk-custom-${crypto.randomBytes(6).toString('hex')}`;
  secrets.push(custom);
  const r = expectStatus(await post(gw, '/key/generate', { key: custom, key_type: 'llm_api' }), 200, 'custom');
  assert.equal(r.key, custom);
  assert.equal(r.token, sha(custom));
  assert.equal(r.user_id, null);
  assert.deepEqual(r.allowed_routes, ['llm_api_routes']);
  expectStatus(await chat(gw, custom), 200, 'the custom key works');
  // an llm_api key may not call the management routes
  const m = await get(gw, '/key/info', custom);
  assert.equal(m.status, 403, m.text);
  assert.match(m.json.error.message, /Virtual key is not allowed to call this route/);
  // read_only: info routes only
  const ro = expectStatus(await post(gw, '/key/generate', { key_type: 'read_only', user_id: 'rt-user' }), 200, 'read_only');
  secrets.push(ro.key);
  assert.deepEqual(ro.allowed_routes, ['info_routes']);
  expectStatus(await get(gw, '/key/info', ro.key), 200, 'a read-only key reads its info');
  assert.equal((await chat(gw, ro.key)).status, 403);
});

t('/key/generate: LiteLLM\'s refusals', async () => {
  const cases = [
    [{ key: 'notsk-abcdefgh1234' }, 400, /Invalid key format. LiteLLM Virtual Key must start with 'sk-'. Received: nots\*\*\*\*1234/],
    [{ max_budget: -1 }, 400, /max_budget cannot be negative. Received: -1.0/],
    [{ soft_budget: -2 }, 400, /soft_budget cannot be negative/],
    [{ duration: 'soon' }, 400, /Invalid duration 'soon'/],
    [{ budget_duration: '0d' }, 400, /Invalid budget_duration '0d'/],
    [{ team_id: 'no-such-team' }, 400, /Unable to find team object in database. Team ID: no-such-team/],
    [{ budget_id: 'no-such-budget' }, 400, /Budget not found/],
    [{ models: 'm1' }, 422, /valid list/],
    [{ max_budget: 'lots' }, 422, /valid number/],
    [{ rpm_limit: 1.5 }, 422, /valid integer/],
    [{ guardrails: ['pii'] }, 400, /guardrails on a virtual key is not implemented/],
    [{ key_type: 'superuser' }, 422, /key_type|llm_api/],
  ];
  for (const [body, status, re] of cases) {
    const r = await post(gw, '/key/generate', body);
    assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
    const msg = r.json?.error?.message ?? JSON.stringify(r.json?.detail);
    assert.match(msg, re, `${JSON.stringify(body)}: ${r.text}`);
  }
  // a unique alias
  expectStatus(await post(gw, '/key/generate', { key_alias: 'rt-dup' }), 200, 'first alias').key;
  const d = await post(gw, '/key/generate', { key_alias: 'rt-dup' });
  assert.equal(d.status, 400);
  assert.equal(d.json.error.message, "Key with alias 'rt-dup' already exists. Unique key aliases across all keys are required.");
  assert.equal(d.json.error.type, 'bad_request_error');
  assert.equal(d.json.error.param, 'key_alias');
  // a key value taken
  const v = `sk-taken-${crypto.randomBytes(4).toString('hex')}`;
  secrets.push(v);
  expectStatus(await post(gw, '/key/generate', { key: v }), 200, 'first');
  assert.equal((await post(gw, '/key/generate', { key: v })).status, 400);
});

t('/key/service-account/generate: a team key without a user', async () => {
  const r = expectStatus(await post(gw, '/key/service-account/generate', { team_id: 'rt-a', user_id: 'ignored' }), 200, 'sa');
  secrets.push(r.key);
  assert.equal(r.user_id, null);
  assert.equal(r.team_id, 'rt-a');
  const n = await post(gw, '/key/service-account/generate', {});
  assert.equal(n.status, 400);
  assert.match(n.json.error.message, /team_id is required for service account keys/);
});

// ---- /key/info, /key/update ----

t('/key/info: by ?key= (key or hash), the caller\'s own without it; never the token', async () => {
  const g = expectStatus(await post(gw, '/key/generate', { user_id: 'rt-user', max_budget: 3 }), 200, 'gen');
  secrets.push(g.key);
  for (const q of [g.key, g.token]) {
    const r = expectStatus(await get(gw, `/key/info?key=${encodeURIComponent(q)}`), 200, 'info');
    assert.equal(r.key, g.token, 'the key is answered as its hash');
    assert.equal(r.info.token, undefined);
    assert.equal(r.info.key_name, g.key_name);
    assert.equal(r.info.max_budget, 3);
    assert.equal(r.info.litellm_budget_table, null);
    assert.equal(r.info.spend, 0);
  }
  const own = expectStatus(await get(gw, '/key/info', g.key), 200, 'own');
  assert.equal(own.key, g.token);
  const nf = await get(gw, '/key/info?key=sk-unknown-key-xyz');
  assert.equal(nf.status, 404);
  assert.deepEqual(nf.json.error, { message: 'Key not found in database', type: 'not_found_error', param: 'key', code: '404' });
});

t('/key/update: by key or key_alias; changes apply to the next request; LiteLLM\'s errors', async () => {
  const g = expectStatus(await post(gw, '/key/generate', { key_alias: 'rt-upd', user_id: 'rt-user', team_id: 'rt-a', models: ['m1', 'm2'] }), 200, 'gen');
  secrets.push(g.key);
  expectStatus(await chat(gw, g.key, 'm2'), 200, 'm2 before');
  const u = expectStatus(await post(gw, '/key/update', { key: g.key, models: ['m1'], max_budget: 9, duration: '2h', metadata: { a: 1 }, tags: ['x'] }), 200, 'update');
  assert.equal(u.key, g.token, 'the key is answered as its hash');
  assert.deepEqual(u.models, ['m1']);
  assert.equal(u.max_budget, 9);
  assert.deepEqual(u.metadata, { a: 1, tags: ['x'] });
  assert.ok(Math.abs(Date.parse(u.expires) - (Date.now() + 7200e3)) < 120e3);
  assert.equal((await chat(gw, g.key, 'm2')).status, 401, 'm2 removed');
  const byAlias = expectStatus(await post(gw, '/key/update', { key_alias: 'rt-upd', rpm_limit: 7, duration: '-1' }), 200, 'by alias');
  assert.equal(byAlias.rpm_limit, 7);
  assert.equal(byAlias.expires, null, 'duration -1: never expires');
  assert.equal(byAlias.key_alias, 'rt-upd');
  // spend set by an admin: /key/info shows it
  expectStatus(await post(gw, '/key/update', { key: g.token, spend: 1.25 }), 200, 'spend');
  assert.equal(expectStatus(await get(gw, `/key/info?key=${g.token}`), 200, 'info').info.spend, 1.25);
  // errors
  const nf = await post(gw, '/key/update', { key: 'sk-nope-nope', max_budget: 1 });
  assert.equal(nf.status, 404, nf.text);
  assert.match(nf.json.error.message, /Key not found/);
  const none = await post(gw, '/key/update', { max_budget: 1 });
  assert.equal(none.status, 422, none.text);
  const team = await post(gw, '/key/update', { key: g.key, team_id: 'no-such' });
  assert.equal(team.status, 400, team.text);
  // moving to a team the key's user is not in (LiteLLM's validate_key_team_change)
  expectStatus(await post(gw, '/team/new', { team_id: 'rt-other' }), 200, 'other team');
  const mv = await post(gw, '/key/update', { key: g.key, team_id: 'rt-other' });
  assert.equal(mv.status, 403, mv.text);
  assert.match(mv.json.error.message, /User=rt-user is not a member of the team=rt-other/);
  const alias = await post(gw, '/key/update', { key: g.key, key_alias: 'rt-gen-1' });
  assert.equal(alias.status, 400);
  assert.match(alias.json.error.message, /already exists/);
});

// ---- /key/list ----

t('/key/list: pagination and LiteLLM\'s filters', async () => {
  const mine = [];
  for (let i = 0; i < 3; i++) {
    const g = expectStatus(await post(gw, '/key/generate', { user_id: 'rt-list-user', key_alias: `rt-list-${i}` }), 200, 'gen');
    secrets.push(g.key);
    mine.push(g.token);
  }
  const all = expectStatus(await get(gw, '/key/list?user_id=rt-list-user'), 200, 'list');
  assert.equal(all.total_count, 3);
  assert.deepEqual([...all.keys].sort(), [...mine].sort());
  assert.equal(all.current_page, 1);
  assert.equal(all.total_pages, 1);
  const p1 = expectStatus(await get(gw, '/key/list?user_id=rt-list-user&size=2&page=1&sort_by=key_alias&sort_order=asc'), 200, 'p1');
  const p2 = expectStatus(await get(gw, '/key/list?user_id=rt-list-user&size=2&page=2&sort_by=key_alias&sort_order=asc'), 200, 'p2');
  assert.equal(p1.total_pages, 2);
  assert.deepEqual(p1.keys, [mine[0], mine[1]]);
  assert.deepEqual(p2.keys, [mine[2]]);
  const full = expectStatus(await get(gw, '/key/list?key_alias=rt-list-1&return_full_object=true'), 200, 'full');
  assert.equal(full.keys.length, 1);
  assert.equal(full.keys[0].token, mine[1]);
  assert.equal(full.keys[0].key_alias, 'rt-list-1');
  const team = expectStatus(await get(gw, '/key/list?team_id=rt-a&size=100'), 200, 'team');
  assert.ok(team.keys.length >= 1);
  assert.equal((await get(gw, '/key/list?size=101')).status, 422);
  assert.equal((await get(gw, '/key/list?page=0')).status, 422);
  assert.equal((await get(gw, '/key/list?sort_by=bogus')).status, 400);
});

// ---- /key/regenerate, /key/block, /key/unblock, /key/delete, /key/health ----

t('/key/regenerate and /key/{key}/regenerate: a new key, the same row, the old key gone', async () => {
  const g = expectStatus(await post(gw, '/key/generate', { key_alias: 'rt-regen', models: ['m1'], user_id: 'rt-user' }), 200, 'gen');
  secrets.push(g.key);
  const r = expectStatus(await post(gw, `/key/${g.key}/regenerate`, { max_budget: 4 }), 200, 'regen');
  secrets.push(r.key);
  assert.notEqual(r.key, g.key);
  assert.match(r.key, /^sk-[A-Za-z0-9_-]{22}$/);
  assert.equal(r.token, sha(r.key));
  assert.equal(r.key_name, `sk-...${r.key.slice(-4)}`);
  assert.equal(r.key_alias, 'rt-regen');
  assert.deepEqual(r.models, ['m1']);
  assert.equal(r.max_budget, 4);
  assert.equal((await chat(gw, g.key)).status, 401, 'the old key is gone');
  expectStatus(await chat(gw, r.key), 200, 'the new key works');
  assert.equal((await get(gw, `/key/info?key=${g.token}`)).status, 404);
  // the body form, with a chosen new key
  const nk = `sk-chosen-${crypto.randomBytes(5).toString('hex')}`;
  secrets.push(nk);
  const r2 = expectStatus(await post(gw, '/key/regenerate', { key: r.token, new_key: nk }), 200, 'regen 2');
  assert.equal(r2.key, nk);
  expectStatus(await chat(gw, nk), 200, 'chosen key works');
  const bad = await post(gw, '/key/regenerate', { key: nk, new_key: 'plain' });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error.message, /New key must start with 'sk-'/);
  assert.equal((await post(gw, '/key/regenerate', { key: 'sk-not-here' })).status, 404);
  assert.equal((await post(gw, '/key/regenerate', {})).status, 400);
});

t('/key/block and /key/unblock: LiteLLM\'s row, the key refused while blocked', async () => {
  const g = expectStatus(await post(gw, '/key/generate', { user_id: 'rt-user' }), 200, 'gen');
  secrets.push(g.key);
  const b = expectStatus(await post(gw, '/key/block', { key: g.key }), 200, 'block');
  assert.equal(b.blocked, true);
  assert.equal(b.token, g.token);
  const no = await chat(gw, g.key);
  assert.equal(no.status, 401);
  assert.equal(no.json.error.message, "Authentication Error, Key is blocked. Update via `/key/unblock` if you're admin.");
  const u = expectStatus(await post(gw, '/key/unblock', { key: g.token }), 200, 'unblock');
  assert.equal(u.blocked, false);
  expectStatus(await chat(gw, g.key), 200, 'works again');
  const bad = await post(gw, '/key/block', { key: 'not-a-key' });
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.json.error, { message: 'Invalid key format.', type: 'bad_request_error', param: 'key', code: '400' });
  assert.equal((await post(gw, '/key/block', { key: 'sk-unknown-1234' })).status, 404);
});

t('/key/delete: by keys (key or hash) or key_aliases; the keys stop working', async () => {
  const a = expectStatus(await post(gw, '/key/generate', {}), 200, 'a');
  const b = expectStatus(await post(gw, '/key/generate', {}), 200, 'b');
  const c = expectStatus(await post(gw, '/key/generate', { key_alias: 'rt-del-c' }), 200, 'c');
  secrets.push(a.key, b.key, c.key);
  const d = expectStatus(await post(gw, '/key/delete', { keys: [a.key, b.token] }), 200, 'delete');
  assert.deepEqual(d, { deleted_keys: [a.token, b.token] }, 'a raw key is answered as its hash');
  assert.equal((await chat(gw, a.key)).status, 401);
  assert.equal((await chat(gw, b.key)).status, 401);
  const e = expectStatus(await post(gw, '/key/delete', { key_aliases: ['rt-del-c'] }), 200, 'by alias');
  assert.deepEqual(e, { deleted_keys: ['rt-del-c'] });
  assert.equal((await chat(gw, c.key)).status, 401);
  const nf = await post(gw, '/key/delete', { keys: ['sk-never-existed'] });
  assert.equal(nf.status, 404, nf.text);
  const empty = await post(gw, '/key/delete', {});
  assert.equal(empty.status, 422);
});

t('/key/health', async () => {
  const g = expectStatus(await post(gw, '/key/generate', {}), 200, 'gen');
  secrets.push(g.key);
  assert.deepEqual(expectStatus(await post(gw, '/key/health', {}, g.key), 200, 'health'), { key: 'healthy', logging_callbacks: null });
});

// ---- teams ----

t('/team/new, /team/info, /team/list, /team/update: LiteLLM_TeamTable rows', async () => {
  expectStatus(await post(gw, '/user/new', { user_id: 'rt-tm1', auto_create_key: false }), 200, 'user');
  const n = expectStatus(await post(gw, '/team/new', {
    team_id: 'rt-t1', team_alias: 'T one', max_budget: 5, budget_duration: '1d', tpm_limit: 10, rpm_limit: 2,
    models: ['m1'], metadata: { dept: 'x' }, tags: ['a'], members_with_roles: [{ role: 'admin', user_id: 'rt-tm1' }, { role: 'user', user_id: 'rt-tm2', user_email: 'tm2@example.com' }],
  }), 200, 'team new');
  assert.equal(n.team_id, 'rt-t1');
  assert.equal(n.team_alias, 'T one');
  assert.equal(n.max_budget, 5);
  assert.equal(n.budget_duration, '1d');
  assert.ok(Math.abs(Date.parse(n.budget_reset_at) - (Date.now() + 86400e3)) < 120e3);
  assert.deepEqual(n.models, ['m1']);
  assert.deepEqual(n.metadata, { dept: 'x', tags: ['a'] });
  assert.equal(n.blocked, false);
  assert.equal(n.spend, 0);
  assert.deepEqual(n.members_with_roles.map((m) => [m.user_id, m.role]), [['rt-tm1', 'admin'], ['rt-tm2', 'user']]);
  // LiteLLM adds the team to the members' user rows (creating missing users)
  const u1 = expectStatus(await get(gw, '/user/info?user_id=rt-tm1'), 200, 'user 1');
  assert.deepEqual(u1.user_info.teams, ['rt-t1']);
  const u2 = expectStatus(await get(gw, '/user/info?user_id=rt-tm2'), 200, 'user 2 (created)');
  assert.deepEqual(u2.user_info.teams, ['rt-t1']);
  assert.equal(u2.teams[0].team_id, 'rt-t1');
  const dup = await post(gw, '/team/new', { team_id: 'rt-t1' });
  assert.equal(dup.status, 400);
  assert.equal(dup.json.error.message, "{'error': 'Team id = rt-t1 already exists. Please use a different team id.'}");
  const k = expectStatus(await post(gw, '/key/generate', { team_id: 'rt-t1' }), 200, 'team key');
  secrets.push(k.key);
  const info = expectStatus(await get(gw, '/team/info?team_id=rt-t1'), 200, 'info');
  assert.equal(info.team_id, 'rt-t1');
  assert.equal(info.team_info.team_alias, 'T one');
  assert.deepEqual(info.keys.map((x) => x.token), [k.token]);
  assert.deepEqual(info.team_memberships, []);
  const nf = await get(gw, '/team/info?team_id=nope');
  assert.equal(nf.status, 404);
  assert.equal(nf.json.error.message, "{'message': 'Team not found, passed team id: nope.'}");
  assert.equal((await get(gw, '/team/info')).status, 422);
  const list = expectStatus(await get(gw, '/team/list'), 200, 'list');
  const mine = list.find((x) => x.team_id === 'rt-t1');
  assert.ok(mine && Array.isArray(mine.keys) && mine.keys.length === 1);
  const byUser = expectStatus(await get(gw, '/team/list?user_id=rt-tm2'), 200, 'by user');
  assert.deepEqual(byUser.map((x) => x.team_id), ['rt-t1']);
  const up = expectStatus(await post(gw, '/team/update', { team_id: 'rt-t1', max_budget: 7, models: ['m1', 'm2'], team_alias: 'T 1' }), 200, 'update');
  assert.equal(up.team_id, 'rt-t1');
  assert.equal(up.data.max_budget, 7);
  assert.equal(up.data.team_alias, 'T 1');
  expectStatus(await chat(gw, k.key, 'm2'), 200, 'the team may call m2 now');
  const upn = await post(gw, '/team/update', { team_id: 'nope' });
  assert.equal(upn.status, 404);
  assert.deepEqual(upn.json, { detail: { error: 'Team not found, passed team_id=nope' } });
  assert.deepEqual((await post(gw, '/team/update', {})).json, { detail: { error: 'No team id passed in' } });
});

t('/team/member_add, /team/member_delete: members_with_roles and the users\' teams', async () => {
  expectStatus(await post(gw, '/team/new', { team_id: 'rt-t2' }), 200, 'team');
  const a = expectStatus(await post(gw, '/team/member_add', { team_id: 'rt-t2', member: [{ role: 'user', user_id: 'rt-m1' }, { role: 'admin', user_email: 'm2@example.com' }] }), 200, 'add');
  assert.equal(a.team_id, 'rt-t2');
  assert.equal(a.members_with_roles.length, 2);
  assert.equal(a.updated_users.length, 2);
  assert.deepEqual(a.updated_team_memberships, []);
  const m2 = a.members_with_roles.find((m) => m.user_email === 'm2@example.com');
  assert.equal(typeof m2.user_id, 'string', 'a member named by email gets a user id');
  const dup = await post(gw, '/team/member_add', { team_id: 'rt-t2', member: { role: 'user', user_id: 'rt-m1' } });
  assert.equal(dup.status, 400);
  assert.match(dup.json.detail.error, /^User=rt-m1 already in team. Existing members=\[Member\(user_id='rt-m1'/);
  assert.equal((await post(gw, '/team/member_add', { team_id: 'nope', member: { role: 'user', user_id: 'x' } })).status, 404);
  assert.equal((await post(gw, '/team/member_add', { team_id: 'rt-t2', member: { role: 'owner', user_id: 'x' } })).status, 422);
  assert.deepEqual((await post(gw, '/team/member_add', { team_id: 'rt-t2' })).json, { detail: { error: 'No member/members passed in' } });
  assert.deepEqual(expectStatus(await get(gw, '/user/info?user_id=rt-m1'), 200, 'u').user_info.teams, ['rt-t2']);
  const d = expectStatus(await post(gw, '/team/member_delete', { team_id: 'rt-t2', user_id: 'rt-m1' }), 200, 'delete');
  assert.deepEqual(d.members_with_roles.map((m) => m.user_id), [m2.user_id]);
  assert.deepEqual(expectStatus(await get(gw, '/user/info?user_id=rt-m1'), 200, 'u').user_info.teams, []);
  const again = await post(gw, '/team/member_delete', { team_id: 'rt-t2', user_id: 'rt-m1' });
  assert.deepEqual(again.json, { detail: { error: 'User not found in team' } });
  assert.deepEqual((await post(gw, '/team/member_delete', { team_id: 'rt-t2' })).json,
    { detail: { error: 'Either user_id or user_email needs to be passed in' } });
});

t('/team/block, /team/unblock: the team\'s keys are refused while blocked', async () => {
  expectStatus(await post(gw, '/team/new', { team_id: 'rt-t3' }), 200, 'team');
  const k = expectStatus(await post(gw, '/key/generate', { team_id: 'rt-t3' }), 200, 'key');
  secrets.push(k.key);
  const b = expectStatus(await post(gw, '/team/block', { team_id: 'rt-t3' }), 200, 'block');
  assert.equal(b.blocked, true);
  const no = await chat(gw, k.key);
  assert.equal(no.status, 401);
  assert.match(no.json.error.message, /Team=rt-t3 is blocked/);
  assert.equal(expectStatus(await post(gw, '/team/unblock', { team_id: 'rt-t3' }), 200, 'unblock').blocked, false);
  expectStatus(await chat(gw, k.key), 200, 'works again');
  assert.deepEqual((await post(gw, '/team/block', { team_id: 'nope' })).json, { detail: { error: 'Team not found, passed team_id=nope' } });
});

t('/team/delete: the team, its keys and the members\' teams', async () => {
  expectStatus(await post(gw, '/team/new', { team_id: 'rt-t4', members_with_roles: [{ role: 'user', user_id: 'rt-t4-u' }] }), 200, 'team');
  const k = expectStatus(await post(gw, '/key/generate', { team_id: 'rt-t4', user_id: 'rt-t4-u' }), 200, 'key');
  secrets.push(k.key);
  const d = expectStatus(await post(gw, '/team/delete', { team_ids: ['rt-t4'] }), 200, 'delete');
  assert.deepEqual(d, { deleted_teams: ['rt-t4'] });
  assert.equal((await chat(gw, k.key)).status, 401, 'the team\'s key is gone');
  assert.equal((await get(gw, '/team/info?team_id=rt-t4')).status, 404);
  assert.deepEqual(expectStatus(await get(gw, '/user/info?user_id=rt-t4-u'), 200, 'u').user_info.teams, []);
  assert.deepEqual((await post(gw, '/team/delete', { team_ids: ['rt-t4'] })).json, { detail: { error: 'Team not found, passed team_id=rt-t4' } });
});

// ---- users ----

t('/user/new: the user, its teams and, as LiteLLM, a key for it', async () => {
  const u = expectStatus(await post(gw, '/user/new', {
    user_id: 'rt-u1', user_email: 'U1@Example.com', user_role: 'internal_user', teams: ['rt-a'], max_budget: 8,
    models: ['m1'], tpm_limit: 99, rpm_limit: 9, key_alias: 'rt-u1-key', metadata: { k: 'v' }, budget_duration: '7d',
  }), 200, 'user new');
  secrets.push(u.key);
  assert.equal(u.user_id, 'rt-u1');
  assert.equal(u.user_email, 'U1@Example.com');
  assert.equal(u.user_role, 'internal_user');
  assert.deepEqual(u.teams, ['rt-a']);
  assert.equal(u.max_budget, 8);
  assert.deepEqual(u.models, ['m1']);
  assert.match(u.key, /^sk-[A-Za-z0-9_-]{22}$/);
  assert.equal(u.key_alias, 'rt-u1-key');
  assert.equal(u.budget_duration, '7d');
  const ki = expectStatus(await get(gw, '/key/info', u.key), 200, 'the user\'s key');
  assert.equal(ki.info.user_id, 'rt-u1');
  assert.deepEqual(ki.info.models, ['m1']);
  assert.equal(ki.info.tpm_limit, 99);
  assert.equal(ki.info.max_budget, null, 'the budget is the user\'s, not the key\'s');
  expectStatus(await chat(gw, u.key, 'm1'), 200, 'the key works');
  const team = expectStatus(await get(gw, '/team/info?team_id=rt-a'), 200, 'team');
  assert.ok(team.team_info.members_with_roles.some((m) => m.user_id === 'rt-u1' && m.role === 'user'));
  const dupId = await post(gw, '/user/new', { user_id: 'rt-u1' });
  assert.equal(dupId.status, 409);
  assert.equal(dupId.json.error.message, "{'error': 'User with id rt-u1 already exists'}");
  const dupEmail = await post(gw, '/user/new', { user_email: 'u1@example.COM' });
  assert.equal(dupEmail.status, 409);
  assert.match(dupEmail.json.error.message, /User with email U1@Example.com already exists/);
  const nokey = expectStatus(await post(gw, '/user/new', { user_id: 'rt-u2', auto_create_key: false }), 200, 'no key');
  assert.equal(nokey.key, '');
  assert.equal((await post(gw, '/user/new', { user_role: 'god' })).status, 422);
  assert.equal((await post(gw, '/user/new', { teams: ['no-such-team'] })).status, 400);
});

t('/user/info, /user/update, /user/list, /user/delete', async () => {
  const u = expectStatus(await post(gw, '/user/new', { user_id: 'rt-u3', user_email: 'u3@example.com', teams: ['rt-a'] }), 200, 'user');
  secrets.push(u.key);
  const info = expectStatus(await get(gw, '/user/info?user_id=rt-u3'), 200, 'info');
  assert.equal(info.user_id, 'rt-u3');
  assert.equal(info.user_info.user_email, 'u3@example.com');
  assert.equal(info.keys.length, 1);
  assert.equal(info.keys[0].token, sha(u.key));
  assert.equal(info.keys[0].team_alias, 'None');
  assert.deepEqual(info.teams.map((x) => x.team_id), ['rt-a']);
  const own = expectStatus(await get(gw, '/user/info', u.key), 200, 'own');
  assert.equal(own.user_id, 'rt-u3');
  const nf = await get(gw, '/user/info?user_id=nobody');
  assert.equal(nf.status, 404);
  assert.equal(nf.json.error.message, 'User nobody not found');
  const up = expectStatus(await post(gw, '/user/update', { user_id: 'rt-u3', models: ['m2'], max_budget: 3, user_alias: 'three' }), 200, 'update');
  assert.equal(up.user_id, 'rt-u3');
  assert.deepEqual(up.data.models, ['m2']);
  assert.equal(up.data.max_budget, 3);
  assert.equal(up.data.user_alias, 'three');
  const no = await chat(gw, u.key, 'm1');
  assert.equal(no.status, 401, 'the user may not call m1 any more');
  assert.match(no.json.error.message, /User=rt-u3 not allowed to access model=m1/);
  assert.equal((await post(gw, '/user/update', { user_id: 'nobody', max_budget: 1 })).status, 404);
  assert.equal((await post(gw, '/user/update', { max_budget: 1 })).status, 400);
  const list = expectStatus(await get(gw, '/user/list?user_ids=rt-u3'), 200, 'list');
  assert.equal(list.total, 1);
  assert.equal(list.users[0].user_id, 'rt-u3');
  assert.equal(list.users[0].key_count, 1);
  assert.equal(list.page, 1);
  assert.equal(list.page_size, 25);
  const byTeam = expectStatus(await get(gw, '/user/list?team=rt-a&page_size=100'), 200, 'by team');
  assert.ok(byTeam.users.every((x) => x.teams.includes('rt-a')) && byTeam.users.some((x) => x.user_id === 'rt-u3'));
  const paged = expectStatus(await get(gw, '/user/list?page_size=1&page=2'), 200, 'paged');
  assert.equal(paged.users.length, 1);
  assert.equal(paged.total_pages, paged.total);
  const d = expectStatus(await post(gw, '/user/delete', { user_ids: ['rt-u3'] }), 200, 'delete');
  assert.equal(d, 1);
  assert.equal((await chat(gw, u.key)).status, 401, 'the user\'s keys are gone');
  const team = expectStatus(await get(gw, '/team/info?team_id=rt-a'), 200, 'team');
  assert.ok(!team.team_info.members_with_roles.some((m) => m.user_id === 'rt-u3'));
  assert.deepEqual((await post(gw, '/user/delete', { user_ids: ['rt-u3'] })).json, { detail: { error: 'User not found, passed user_id=rt-u3' } });
});

// ---- customers (end users) ----

t('/customer/new, /info, /update, /list, /block, /unblock, /delete (and /end_user/...)', async () => {
  const c = expectStatus(await post(gw, '/customer/new', { user_id: 'rt-c1', alias: 'Customer 1', max_budget: 2, budget_duration: '1d', rpm_limit: 5, default_model: 'm1', allowed_model_region: 'eu' }), 200, 'new');
  assert.equal(c.user_id, 'rt-c1');
  assert.equal(c.alias, 'Customer 1');
  assert.equal(c.blocked, false);
  assert.equal(c.default_model, 'm1');
  assert.equal(typeof c.budget_id, 'string');
  assert.equal(c.litellm_budget_table.max_budget, 2);
  assert.equal(c.litellm_budget_table.rpm_limit, 5);
  assert.equal(c.litellm_budget_table.budget_duration, '1d');
  const dup = await post(gw, '/customer/new', { user_id: 'rt-c1' });
  assert.equal(dup.status, 400);
  assert.deepEqual(dup.json.error, { message: 'Customer already exists, passed user_id=rt-c1. Please pass a new user_id.', type: 'bad_request', param: 'user_id', code: '400' });
  assert.equal((await post(gw, '/customer/new', { user_id: 'x', default_model: 'nope' })).status, 422);
  assert.equal((await post(gw, '/customer/new', {})).status, 422);
  const i = expectStatus(await get(gw, '/customer/info?end_user_id=rt-c1'), 200, 'info');
  assert.equal(i.litellm_budget_table.budget_id, c.budget_id);
  const nf = await get(gw, '/customer/info?end_user_id=nope');
  assert.equal(nf.status, 404);
  assert.deepEqual(nf.json.error, { message: 'End User Id=nope does not exist in db', type: 'not_found', param: 'end_user_id', code: '404' });
  const u = expectStatus(await post(gw, '/customer/update', { user_id: 'rt-c1', max_budget: 3, alias: 'C1' }), 200, 'update');
  assert.equal(u.alias, 'C1');
  assert.equal(u.budget_id, c.budget_id, 'the budget row is updated, not replaced');
  assert.equal(u.litellm_budget_table.max_budget, 3);
  assert.equal((await post(gw, '/customer/update', { user_id: 'nope' })).status, 404);
  const l = expectStatus(await get(gw, '/customer/list'), 200, 'list');
  assert.ok(l.some((x) => x.user_id === 'rt-c1' && x.litellm_budget_table.max_budget === 3));
  const b = expectStatus(await post(gw, '/customer/block', { user_ids: ['rt-c1', 'rt-c2'] }), 200, 'block');
  assert.deepEqual(b.blocked_users.map((x) => [x.user_id, x.blocked]), [['rt-c1', true], ['rt-c2', true]], 'blocking an unknown customer creates it (LiteLLM\'s upsert)');
  const ub = expectStatus(await post(gw, '/customer/unblock', { user_ids: ['rt-c1'] }), 200, 'unblock');
  assert.deepEqual(ub.unblocked_users.map((x) => [x.user_id, x.blocked]), [['rt-c1', false]]);
  assert.equal(expectStatus(await get(gw, '/end_user/info?end_user_id=rt-c2'), 200, 'alias route').blocked, true);
  const d = expectStatus(await post(gw, '/customer/delete', { user_ids: ['rt-c1', 'rt-c2'] }), 200, 'delete');
  assert.deepEqual(d, { deleted_customers: 2, message: "Successfully deleted customers with ids: ['rt-c1', 'rt-c2']" });
  const dn = await post(gw, '/customer/delete', { user_ids: ['rt-c1'] });
  assert.equal(dn.status, 404);
  assert.equal(dn.json.error.message, 'End User Id(s)=rt-c1 do not exist in db');
});

// ---- budgets ----

t('/budget/new, /update, /info, /list, /delete', async () => {
  const b = expectStatus(await post(gw, '/budget/new', { budget_id: 'rt-b1', max_budget: 10, soft_budget: 5, tpm_limit: 100, rpm_limit: 10, max_parallel_requests: 2, budget_duration: '1mo' }), 200, 'new');
  assert.equal(b.budget_id, 'rt-b1');
  assert.equal(b.max_budget, 10);
  assert.equal(b.soft_budget, 5);
  assert.equal(b.budget_duration, '1mo');
  assert.equal(typeof b.budget_reset_at, 'string');
  assert.equal(b.created_by, 'default_user_id');
  const dup = await post(gw, '/budget/new', { budget_id: 'rt-b1' });
  assert.deepEqual(dup.json, { detail: { error: "Budget with id 'rt-b1' already exists." } });
  assert.deepEqual((await post(gw, '/budget/new', { max_budget: -1 })).json, { detail: { error: 'max_budget must be a non-negative finite number. Received: -1.0' } });
  const u = expectStatus(await post(gw, '/budget/update', { budget_id: 'rt-b1', max_budget: 20 }), 200, 'update');
  assert.equal(u.max_budget, 20);
  assert.equal(u.soft_budget, 5);
  assert.deepEqual((await post(gw, '/budget/update', {})).json, { detail: { error: 'budget_id is required' } });
  assert.deepEqual(expectStatus(await post(gw, '/budget/info', { budgets: ['rt-b1', 'nope'] }), 200, 'info').map((x) => x.budget_id), ['rt-b1']);
  assert.deepEqual((await post(gw, '/budget/info', { budgets: [] })).json, { detail: { error: "Specify list of budget id's to query. Passed in=[]" } });
  assert.ok(expectStatus(await get(gw, '/budget/list'), 200, 'list').some((x) => x.budget_id === 'rt-b1'));
  // a key on the budget: the budget row's limits are the key's where it has none of its own
  const k = expectStatus(await post(gw, '/key/generate', { budget_id: 'rt-b1' }), 200, 'key on budget');
  secrets.push(k.key);
  const used = await post(gw, '/budget/delete', { id: 'rt-b1' });
  assert.equal(used.status, 400);
  assert.match(used.json.detail.error, /Budget rt-b1 is used by key/);
  expectStatus(await post(gw, '/key/delete', { keys: [k.key] }), 200, 'delete key');
  const d = expectStatus(await post(gw, '/budget/delete', { id: 'rt-b1' }), 200, 'delete');
  assert.equal(d.budget_id, 'rt-b1');
  assert.equal((await post(gw, '/budget/delete', { id: 'rt-b1' })).status, 404);
});

// ---- model lists for a key, methods, routing ----

t('/v1/models and /model/info show a virtual key only the models it may call', async () => {
  const k = expectStatus(await post(gw, '/key/generate', { models: ['m2'] }), 200, 'key');
  secrets.push(k.key);
  const l = expectStatus(await get(gw, '/v1/models', k.key), 200, 'models');
  assert.deepEqual(l.data.map((x) => x.id), ['m2']);
  const info = expectStatus(await get(gw, '/model/info', k.key), 200, 'model info');
  assert.deepEqual(info.data.map((x) => x.model_name), ['m2']);
  assert.equal((await get(gw, '/model/info?litellm_model_id=dep-m1', k.key)).status, 400);
  const all = expectStatus(await get(gw, '/v1/models'), 200, 'master');
  assert.deepEqual(all.data.map((x) => x.id).sort(), ['m1', 'm2', 'm3']);
  // a team key: the team's list
  const tk = expectStatus(await post(gw, '/key/generate', { team_id: 'rt-a' }), 200, 'team key');
  secrets.push(tk.key);
  assert.deepEqual(expectStatus(await get(gw, '/v1/models', tk.key), 200, 't').data.map((x) => x.id).sort(), ['m1', 'm2']);
  // an access group and a wildcard
  const ag = expectStatus(await post(gw, '/key/generate', { models: ['grp-x'] }), 200, 'group key');
  const wc = expectStatus(await post(gw, '/key/generate', { models: ['openai/m1*'] }), 200, 'wildcard key');
  secrets.push(ag.key, wc.key);
  assert.deepEqual(expectStatus(await get(gw, '/v1/models', ag.key), 200, 'g').data.map((x) => x.id), ['m3']);
  expectStatus(await chat(gw, ag.key, 'm3'), 200, 'the access group\'s model');
  assert.equal((await chat(gw, ag.key, 'm1')).status, 401);
  assert.deepEqual(expectStatus(await get(gw, '/v1/models', wc.key), 200, 'w').data.map((x) => x.id), ['m1']);
  expectStatus(await chat(gw, wc.key, 'm1'), 200, 'the wildcard\'s model');
  assert.equal((await chat(gw, wc.key, 'm2')).status, 401);
});

t('wrong methods are 405; unknown management paths 404 before authentication', async () => {
  assert.equal((await get(gw, '/key/generate')).status, 405);
  assert.equal((await post(gw, '/key/info')).status, 405);
  assert.equal((await call(gw, 'GET', '/key/nope', undefined, null)).status, 404);
  assert.equal((await call(gw, 'GET', '/key/info', undefined, null)).status, 401);
  const bad = await call(gw, 'POST', '/team/new', undefined, MASTER);
  assert.ok(bad.status === 200 || bad.status === 422, bad.text);
  const notjson = await fetch(gw.url + '/key/generate', { method: 'POST', headers: { authorization: `Bearer ${MASTER}` }, body: '{nope' });
  assert.equal(notjson.status, 422);
});

t('litellm_settings: default_key_generate_params fills, upperbound_key_generate_params bounds /key/generate', async () => {
  const other = await startKeysGateway({
    config: {
      litellm_settings: {
        default_key_generate_params: { max_budget: 5, duration: '1h', models: ['m1'] },
        upperbound_key_generate_params: { max_budget: 10, rpm_limit: 100, duration: '2h' },
      },
    },
  });
  try {
    const o = other.gw;
    if (await probe(o)) return;
    const d = expectStatus(await post(o, '/key/generate', {}), 200, 'defaults');
    assert.equal(d.max_budget, 5);
    assert.deepEqual(d.models, ['m1']);
    assert.equal(d.rpm_limit, 100, 'an upper bound fills what is not given');
    assert.ok(Math.abs(Date.parse(d.expires) - (Date.now() + 3600e3)) < 120e3, d.expires);
    const ok = expectStatus(await post(o, '/key/generate', { max_budget: 10, duration: '90m', models: ['m2'] }), 200, 'within');
    assert.equal(ok.max_budget, 10);
    assert.deepEqual(ok.models, ['m2']);
    const over = await post(o, '/key/generate', { max_budget: 11 });
    assert.equal(over.status, 400);
    assert.equal(over.json.error.message, "{'error': 'max_budget is over max limit set in config - user_value=11.0; max_value=10.0'}");
    const long = await post(o, '/key/generate', { duration: '3h' });
    assert.equal(long.status, 400);
    assert.match(long.json.error.message, /duration is over max limit set in config - user_value=3h; max_value=2h/);
    assert.equal((await post(o, '/key/generate', { duration: '-1' })).status, 400, 'never expiring is over any bound');
  } finally {
    await other.stop();
  }
});

t('soft_budget on /key/update: the key\'s budget row; a key on a budget takes its limits', async () => {
  const g = expectStatus(await post(gw, '/key/generate', {}), 200, 'gen');
  secrets.push(g.key);
  const u = expectStatus(await post(gw, '/key/update', { key: g.key, soft_budget: 0.5 }), 200, 'soft');
  assert.equal(u.litellm_budget_table.soft_budget, 0.5);
  const u2 = expectStatus(await post(gw, '/key/update', { key: g.key, soft_budget: 0.75 }), 200, 'soft again');
  assert.equal(u2.budget_id, u.budget_id, 'the same budget row');
  assert.equal(u2.litellm_budget_table.soft_budget, 0.75);
  // a key whose models come from nowhere but whose rpm comes from its budget row
  expectStatus(await post(gw, '/budget/new', { budget_id: 'rt-b2', rpm_limit: 3 }), 200, 'budget');
  const k = expectStatus(await post(gw, '/key/generate', { budget_id: 'rt-b2' }), 200, 'key');
  secrets.push(k.key);
  const info = expectStatus(await get(gw, `/key/info?key=${k.token}`), 200, 'info');
  assert.equal(info.info.litellm_budget_table.rpm_limit, 3);
});

t('only hashes are stored: no key this file made is in the state directory or the logs', async () => {
  assert.ok(secrets.length > 20, `${secrets.length} keys made`);
  const found = [];
  const walk = (d) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const text = fs.readFileSync(p, 'latin1');
        for (const s of secrets) if (text.includes(s)) found.push(`${p}: ${s.slice(0, 6)}...`);
      }
    }
  };
  if (STORE === 'journal') walk(gw.stateDir);
  else {
    const dump = inst.pg.psql('SELECT string_agg(row_to_json(t)::text, \'\') FROM "LiteLLM_VerificationToken" t');
    for (const s of secrets) if (dump.includes(s)) found.push(`postgres: ${s.slice(0, 6)}...`);
  }
  const out = gw.output();
  for (const s of secrets) if (out.stdout.includes(s) || out.stderr.includes(s)) found.push(`log: ${s.slice(0, 6)}...`);
  assert.deepEqual(found, []);
  if (STORE === 'journal') {
    const journal = fs.readdirSync(gw.stateDir, { withFileTypes: true }).filter((e) => e.isFile())
      .map((e) => fs.readFileSync(path.join(gw.stateDir, e.name), 'latin1')).join('');
    assert.ok(journal.includes(sha(secrets[0])), 'the key\'s hash is what is stored');
  }
});

stopsClean(test, inst);
