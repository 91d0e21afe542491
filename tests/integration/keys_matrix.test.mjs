// The permission matrix: every management route x every principal (no key, a wrong key, an
// internal user's key, another team's key, a team admin's key, a proxy admin's key, the
// master key, and the two viewer roles) has one expected status; a refused call changes
// nothing (everything the management routes show is the same before and after), and a
// call that is allowed does what it says.  Each cell gets fresh objects to act on: a team
// F (admin tadm; members ua and iview) with a key of ua's in it (max_budget 2), a user, a
// customer and a budget.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startKeysGateway, call, post, expectStatus, probe, principals, world, stopsClean } from './keys_lib.mjs';

const inst = await startKeysGateway({ workers: 2 });
const { gw } = inst;
after(async () => { await inst.stop(); });
const skip = await probe(gw);
if (skip) console.log(`# SKIP: ${skip}`);

const WHO = ['none', 'wrong', 'internal', 'other', 'teamadmin', 'padmin', 'master', 'viewer', 'iviewer'];
// expectation shorthands, in WHO's order
const row = (...s) => Object.fromEntries(WHO.map((w, i) => [w, s[i]]));
//                     none wrong int  other tadm padm mast view iview
const ADMIN_WRITE = row(401, 401, 401, 401, 401, 200, 200, 403, 401);
const ADMIN_READ = row(401, 401, 401, 401, 401, 200, 200, 200, 401);

let seq = 0;
/** Fresh objects for one cell (a user, customer or budget only for the rows about them). */
async function fixture(P, name) {
  const n = ++seq;
  const F = `fx-team-${n}`;
  const ok = async (path, body) => expectStatus(await post(gw, path, body), 200, `fixture ${path}`);
  await ok('/team/new', {
    team_id: F, max_budget: 50,
    members_with_roles: [{ role: 'admin', user_id: P.users.tadm }, { role: 'user', user_id: P.users.ua }, { role: 'user', user_id: P.users.iview }],
  });
  const key = await ok('/key/generate', { team_id: F, user_id: P.users.ua, max_budget: 2 });
  const user = `fx-user-${n}`;
  if (/^\/(user|key)/.test(name)) await ok('/user/new', { user_id: user, auto_create_key: false });
  const customer = `fx-cust-${n}`;
  if (/^\/(customer|end_user)/.test(name)) await ok('/customer/new', { user_id: customer, max_budget: 1 });
  const budget = `fx-budget-${n}`;
  if (/^\/budget/.test(name)) await ok('/budget/new', { budget_id: budget, max_budget: 1 });
  return { n, F, key: key.token, user, customer, budget };
}

/**
 * Removes what one cell made (its fixture, and whatever an allowed call created), so the
 * world every refused cell compares stays the principals plus one fixture: without this
 * each world() read grows with every cell before it (hundreds of teams and keys by the
 * end).  A delete of something the cell never made, or already deleted, answers 404 or
 * 400; anything else is a failure of the cleanup itself.
 */
async function cleanup(f) {
  const gone = async (path, body) => {
    const r = await post(gw, path, body);
    if (![200, 400, 404].includes(r.status)) throw new Error(`cleanup ${path}: ${r.status} ${r.text.slice(0, 200)}`);
  };
  // the fixture key first: '/key/update moving the key out of its team' leaves it outside F
  await gone('/key/delete', { keys: [f.key] });
  await Promise.all([
    ...[f.F, `fx-new-team-${f.n}`].map((t) => gone('/team/delete', { team_ids: [t] })),
    ...[f.user, `fx-new-user-${f.n}`, `fx-new-admin-${f.n}`, `fx-member-${f.n}`].map((u) => gone('/user/delete', { user_ids: [u] })),
    ...[f.customer, `fx-new-cust-${f.n}`, `fx-new-eu-${f.n}`].map((c) => gone('/customer/delete', { user_ids: [c] })),
    ...[f.budget, `fx-new-budget-${f.n}`].map((b) => gone('/budget/delete', { id: b })),
  ]);
}

// [name, (fixture, principals) -> [method, path, body], expectations]
const ROWS = [
  ['/key/generate in team F', (f) => ['POST', '/key/generate', { team_id: f.F }], row(401, 401, 200, 400, 200, 200, 200, 403, 401)],
  ['/key/generate for another user', (f) => ['POST', '/key/generate', { user_id: f.user }], row(401, 401, 403, 403, 403, 200, 200, 403, 401)],
  ['/key/generate above the team budget', (f) => ['POST', '/key/generate', { team_id: f.F, max_budget: 1000 }], row(401, 401, 400, 400, 400, 200, 200, 403, 401)],
  ['/key/service-account/generate in team F', (f) => ['POST', '/key/service-account/generate', { team_id: f.F }], row(401, 401, 403, 400, 200, 200, 200, 403, 401)],
  ['/key/update lowering the budget', (f) => ['POST', '/key/update', { key: f.key, max_budget: 1 }], row(401, 401, 200, 403, 200, 200, 200, 403, 401)],
  ['/key/update raising the budget', (f) => ['POST', '/key/update', { key: f.key, max_budget: 20 }], row(401, 401, 400, 403, 200, 200, 200, 403, 401)],
  ['/key/update adding models', (f) => ['POST', '/key/update', { key: f.key, models: ['m1'] }], row(401, 401, 200, 403, 200, 200, 200, 403, 401)],
  ['/key/update setting spend', (f) => ['POST', '/key/update', { key: f.key, spend: 5 }], row(401, 401, 403, 403, 403, 200, 200, 403, 401)],
  ['/key/update moving the key out of its team', (f) => ['POST', '/key/update', { key: f.key, team_id: null }], row(401, 401, 403, 403, 403, 200, 200, 403, 401)],
  ['/key/update unblocking', async (f) => { expectStatus(await post(gw, '/key/block', { key: f.key }), 200, 'block'); return ['POST', '/key/update', { key: f.key, blocked: false }]; }, row(401, 401, 403, 403, 403, 200, 200, 403, 401)],
  ['/key/delete', (f) => ['POST', '/key/delete', { keys: [f.key] }], row(401, 401, 200, 403, 200, 200, 200, 403, 401)],
  ['/key/info', (f) => ['GET', `/key/info?key=${f.key}`], row(401, 401, 200, 403, 200, 200, 200, 200, 200)],
  ['/key/list of team F', (f) => ['GET', `/key/list?team_id=${f.F}`], row(401, 401, 200, 403, 200, 200, 200, 200, 200)],
  ['/key/list of another user', (f) => ['GET', `/key/list?user_id=${f.user}`], row(401, 401, 403, 403, 403, 200, 200, 200, 403)],
  ['/key/{key}/regenerate', (f) => ['POST', `/key/${f.key}/regenerate`, {}], row(401, 401, 200, 403, 200, 200, 200, 403, 401)],
  ['/key/regenerate', (f) => ['POST', '/key/regenerate', { key: f.key }], row(401, 401, 200, 403, 200, 200, 200, 403, 401)],
  ['/key/block', (f) => ['POST', '/key/block', { key: f.key }], row(401, 401, 200, 403, 200, 200, 200, 403, 401)],
  ['/key/unblock', async (f) => { expectStatus(await post(gw, '/key/block', { key: f.key }), 200, 'block'); return ['POST', '/key/unblock', { key: f.key }]; }, row(401, 401, 403, 403, 403, 200, 200, 403, 401)],
  ['/key/health', () => ['POST', '/key/health', {}], row(401, 401, 200, 200, 200, 200, 200, 200, 200)],
  ['/team/new', (f) => ['POST', '/team/new', { team_id: `fx-new-team-${f.n}` }], ADMIN_WRITE],
  ['/team/update', (f) => ['POST', '/team/update', { team_id: f.F, max_budget: 500 }], ADMIN_WRITE],
  ['/team/delete', (f) => ['POST', '/team/delete', { team_ids: [f.F] }], ADMIN_WRITE],
  ['/team/info', (f) => ['GET', `/team/info?team_id=${f.F}`], row(401, 401, 200, 403, 200, 200, 200, 200, 200)],
  ['/team/list (every team)', () => ['GET', '/team/list'], ADMIN_READ],
  ['/team/list of user ua', (f, P) => ['GET', `/team/list?user_id=${P.users.ua}`], row(401, 401, 200, 401, 401, 200, 200, 200, 401)],
  ['/team/member_add', (f) => ['POST', '/team/member_add', { team_id: f.F, member: { role: 'user', user_id: `fx-member-${f.n}` } }], row(401, 401, 403, 403, 200, 200, 200, 403, 403)],
  ['/team/member_add as an admin', (f) => ['POST', '/team/member_add', { team_id: f.F, member: { role: 'admin', user_id: `fx-member-${f.n}` } }], row(401, 401, 403, 403, 200, 200, 200, 403, 403)],
  ['/team/member_delete', (f, P) => ['POST', '/team/member_delete', { team_id: f.F, user_id: P.users.ua }], row(401, 401, 403, 403, 200, 200, 200, 403, 403)],
  ['/team/block', (f) => ['POST', '/team/block', { team_id: f.F }], ADMIN_WRITE],
  ['/team/unblock', (f) => ['POST', '/team/unblock', { team_id: f.F }], ADMIN_WRITE],
  ['/user/new', (f) => ['POST', '/user/new', { user_id: `fx-new-user-${f.n}` }], ADMIN_WRITE],
  ['/user/new as a proxy admin', (f) => ['POST', '/user/new', { user_id: `fx-new-admin-${f.n}`, user_role: 'proxy_admin' }], ADMIN_WRITE],
  ['/user/update', (f) => ['POST', '/user/update', { user_id: f.user, max_budget: 3 }], ADMIN_WRITE],
  ['/user/update of oneself', (f, P) => ['POST', '/user/update', { user_id: P.users.ua, user_role: 'proxy_admin' }], ADMIN_WRITE,
    // the admins' 200 made ua a proxy admin: undo it for the next cells
    async (f, P) => expectStatus(await post(gw, '/user/update', { user_id: P.users.ua, user_role: 'internal_user' }), 200, 'undo')],
  ['/user/delete', (f) => ['POST', '/user/delete', { user_ids: [f.user] }], ADMIN_WRITE],
  ['/user/info of ua', (f, P) => ['GET', `/user/info?user_id=${P.users.ua}`], row(401, 401, 200, 403, 403, 200, 200, 200, 403)],
  ['/user/info of oneself', () => ['GET', '/user/info'], row(401, 401, 200, 200, 200, 200, 200, 200, 200)],
  ['/user/list', () => ['GET', '/user/list'], ADMIN_READ],
  ['/customer/new', (f) => ['POST', '/customer/new', { user_id: `fx-new-cust-${f.n}` }], ADMIN_WRITE],
  ['/customer/update', (f) => ['POST', '/customer/update', { user_id: f.customer, max_budget: 5 }], ADMIN_WRITE],
  ['/customer/delete', (f) => ['POST', '/customer/delete', { user_ids: [f.customer] }], ADMIN_WRITE],
  ['/customer/info', (f) => ['GET', `/customer/info?end_user_id=${f.customer}`], ADMIN_READ],
  ['/customer/list', () => ['GET', '/customer/list'], ADMIN_READ],
  ['/customer/block', (f) => ['POST', '/customer/block', { user_ids: [f.customer] }], ADMIN_WRITE],
  ['/customer/unblock', (f) => ['POST', '/customer/unblock', { user_ids: [f.customer] }], ADMIN_WRITE],
  ['/end_user/new', (f) => ['POST', '/end_user/new', { user_id: `fx-new-eu-${f.n}` }], ADMIN_WRITE],
  ['/budget/new', (f) => ['POST', '/budget/new', { budget_id: `fx-new-budget-${f.n}` }], ADMIN_WRITE],
  ['/budget/update', (f) => ['POST', '/budget/update', { budget_id: f.budget, max_budget: 9 }], ADMIN_WRITE],
  ['/budget/delete', (f) => ['POST', '/budget/delete', { id: f.budget }], ADMIN_WRITE],
  ['/budget/info', (f) => ['POST', '/budget/info', { budgets: [f.budget] }], ADMIN_READ],
  ['/budget/list', () => ['GET', '/budget/list'], ADMIN_READ],
  ['/model/new (model management)', (f) => ['POST', '/model/new', { model_name: `fx-model-${f.n}`, litellm_params: { model: 'openai/x', mock_response: 'y' } }], row(401, 401, 401, 401, 401, 200, 200, 401, 401)],
];

test('every management route x every principal: one status, nothing changes when refused', { skip: skip || false }, async () => {
  const P = await principals(gw, { prefix: 'mx-' });
  const failures = [];
  let cells = 0, refused = 0;
  for (const [name, make, expect, undo] of ROWS) {
    for (const who of WHO) {
      const f = await fixture(P, name);
      const [method, path, body] = await make(f, P);
      const before = expect[who] >= 400 ? await world(gw) : null;
      const r = await call(gw, method, path, body, P.keys[who]);
      if (undo && r.status === 200) await undo(f, P);
      cells++;
      if (r.status !== expect[who]) {
        failures.push(`${name} as ${who}: expected ${expect[who]}, got ${r.status}: ${r.text.slice(0, 240)}`);
      } else if (r.status >= 400 && before !== null) {
        refused++;
        const afterw = await world(gw);
        try {
          assert.deepEqual(afterw, before);
        } catch {
          failures.push(`${name} as ${who}: refused with ${r.status}, but something changed`);
        }
        // the refusal is LiteLLM's envelope (or FastAPI's detail)
        if (!(r.json?.error?.message || r.json?.detail)) {
          failures.push(`${name} as ${who}: ${r.status} without an error body: ${r.text.slice(0, 200)}`);
        }
      }
      await cleanup(f);
    }
  }
  console.log(`# ${cells} cells, ${refused} refused`);
  assert.deepEqual(failures, []);
});

test('what an allowed call does: a team admin adds a member, an owner lowers its key, nobody else', { skip: skip || false }, async () => {
  const P = await principals(gw, { prefix: 'mx2-' });
  const f = await fixture(P);
  expectStatus(await post(gw, '/team/member_add', { team_id: f.F, member: { role: 'user', user_id: 'mx2-newbie' } }, P.keys.teamadmin), 200, 'team admin adds');
  const info = expectStatus(await call(gw, 'GET', `/team/info?team_id=${f.F}`), 200, 'info');
  assert.ok(info.team_info.members_with_roles.some((m) => m.user_id === 'mx2-newbie'));
  expectStatus(await post(gw, '/key/update', { key: f.key, max_budget: 1.5 }, P.keys.internal), 200, 'owner lowers');
  assert.equal(expectStatus(await call(gw, 'GET', `/key/info?key=${f.key}`), 200, 'k').info.max_budget, 1.5);
  // an internal user's new key is its own, bounded as its caller: user_id set, no wider models
  const k = expectStatus(await post(gw, '/key/generate', { team_id: f.F }, P.keys.internal), 200, 'gen');
  assert.equal(k.user_id, P.users.ua);
  assert.equal(k.team_id, f.F);
  // a team key made by a member has at most the team's budget
  const over = await post(gw, '/key/generate', { team_id: f.F, max_budget: 51 }, P.keys.internal);
  assert.equal(over.status, 400);
  assert.match(over.json.error.message, /max budget higher than team max. Team max budget=50.0/);
});

stopsClean(test, inst);
