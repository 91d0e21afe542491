// tests/integration/keys_lib.mjs -- what the virtual-key tests (keys_*.test.mjs) share:
// a gateway on the store the run asks for (MG_KEYS_STORE=journal, the default, or
// postgres), management calls with the master key, and a set of principals (users, teams,
// keys) the permission tests act as.
//
// PostgreSQL: another change teaches the PostgreSQL store LiteLLM's identity tables; until
// it lands, its ident_* mutations answer "not implemented yet" and the PostgreSQL runs skip
// with that message (probe()).
import { startGateway, startPostgres } from '../lib/harness.mjs';

export const MASTER = 'sk-keys-master-1234';
export const STORE = process.env.MG_KEYS_STORE || 'journal';
const SANITIZER_RE = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: (Address|Undefined|Leak)Sanitizer|==\d+==ERROR:/;

/** model_list entries answered by moongate itself (mock_response): no upstream needed. */
export function models(names = ['m1', 'm2', 'm3']) {
  return names.map((n) => ({
    model_name: n,
    litellm_params: { model: `openai/${n}`, mock_response: `answer from ${n}` },
    model_info: n === 'm3' ? { id: `dep-${n}`, access_groups: ['grp-x'] } : { id: `dep-${n}` },
  }));
}

/**
 * Starts moongate on the store of this run.  Returns {gw, pg, stop()}.
 */
export async function startKeysGateway({ workers = 1, config = {}, env = {} } = {}) {
  let pg = null;
  const e = { ...env };
  if (STORE === 'postgres') {
    pg = await startPostgres();
    e.DATABASE_URL = pg.url;
    e.STORE_MODEL_IN_DB = 'True';
  }
  const cfg = {
    model_list: models(),
    ...config,
    general_settings: { master_key: MASTER, ...(config.general_settings || {}) },
  };
  const gw = await startGateway({ config: cfg, workers, env: e });
  let stopped = false;
  return {
    gw, pg,
    async stop() {
      if (!stopped) await gw.stop();
      stopped = true;
      if (pg) await pg.stop();
    },
    /** Stops moongate with SIGTERM; its exit status and sanitizer reports (ASan builds). */
    async stopClean() {
      const exited = gw.exited;
      await gw.stop();
      stopped = true;
      const { code, sig } = await exited;
      const m = SANITIZER_RE.exec(gw.output().stderr);
      return { code, sig, report: m ? gw.output().stderr.slice(Math.max(0, m.index - 200), m.index + 3000) : null };
    },
  };
}

/** The last test of a file: the gateway stops cleanly (exit 0, no sanitizer report). */
export function stopsClean(test, inst) {
  test('the gateway stops cleanly: exit 0, no sanitizer report', async () => {
    const { code, report } = await inst.stopClean();
    if (report) throw new Error(`sanitizer report:\n${report}`);
    if (code !== 0) throw new Error(`moongate exited with ${code}: ${inst.gw.output().stderr.slice(-2000)}`);
  });
}

/** A call: {status, json, text, headers}.  key undefined: the master key; null: none. */
export async function call(gw, method, path, body, key) {
  const h = {};
  const k = key === undefined ? MASTER : key;
  if (k) h.authorization = `Bearer ${k}`;
  let data;
  if (body !== undefined) {
    h['content-type'] = 'application/json';
    data = JSON.stringify(body);
  }
  const r = await fetch(gw.url + path, { method, headers: h, body: data });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text, headers: r.headers };
}

export const post = (gw, path, body, key) => call(gw, 'POST', path, body ?? {}, key);
export const get = (gw, path, key) => call(gw, 'GET', path, undefined, key);

/** Fails with the answer when the status is not the one expected. */
export function expectStatus(r, status, what) {
  if (r.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${r.status}: ${r.text.slice(0, 600)}`);
  }
  return r.json;
}

/**
 * Whether this store can hold virtual keys: a first mutation either works or answers the
 * PostgreSQL store's "not implemented yet".  Returns null (go) or the reason to skip.
 */
export async function probe(gw) {
  const r = await post(gw, '/budget/new', { budget_id: 'probe-budget', max_budget: 1 });
  if (r.status === 200) {
    expectStatus(await post(gw, '/budget/delete', { id: 'probe-budget' }), 200, 'probe cleanup');
    return null;
  }
  const msg = r.json?.error?.message || r.json?.detail?.error || r.text;
  if (/not implemented yet/.test(msg)) {
    return `the ${STORE} store does not hold LiteLLM's identity tables yet: ${msg}`;
  }
  throw new Error(`the store refused a budget: ${r.status} ${r.text}`);
}

/**
 * The principals of the permission tests:
 *   internal   user "ua", internal_user, a member (role user) of team A; a personal key
 *   other      user "ub", internal_user, a member of team B; a team-B key
 *   teamadmin  user "tadm", internal_user, the admin of team A; a team-A key
 *   padmin     user "padm", proxy_admin; a personal key
 *   viewer     user "view", proxy_admin_viewer; a personal key
 *   iviewer    user "iview", internal_user_viewer, a member of team A; a personal key
 *   master     the master key; wrong: a key that does not exist; none: no key
 */
export async function principals(gw, { prefix = '' } = {}) {
  const p = (s) => `${prefix}${s}`;
  const A = p('team-a'), B = p('team-b');
  const mk = async (path, body) => expectStatus(await post(gw, path, body), 200, `${path} ${JSON.stringify(body)}`);
  await mk('/team/new', { team_id: A, team_alias: `${A}-alias`, max_budget: 50, models: [] });
  await mk('/team/new', { team_id: B, team_alias: `${B}-alias` });
  const users = [
    ['ua', 'internal_user', [A]], ['ub', 'internal_user', [B]], ['tadm', 'internal_user', []],
    ['padm', 'proxy_admin', []], ['view', 'proxy_admin_viewer', []], ['iview', 'internal_user_viewer', [A]],
  ];
  for (const [u, role, teams] of users) {
    await mk('/user/new', { user_id: p(u), user_role: role, teams, auto_create_key: false });
  }
  await mk('/team/member_add', { team_id: A, member: { role: 'admin', user_id: p('tadm') } });
  const key = async (body) => (await mk('/key/generate', body)).key;
  return {
    A, B,
    users: Object.fromEntries(users.map(([u]) => [u, p(u)])),
    keys: {
      internal: await key({ user_id: p('ua') }),
      other: await key({ user_id: p('ub'), team_id: B }),
      teamadmin: await key({ user_id: p('tadm'), team_id: A }),
      padmin: await key({ user_id: p('padm') }),
      viewer: await key({ user_id: p('view') }),
      iviewer: await key({ user_id: p('iview') }),
      master: MASTER,
      wrong: 'sk-this-key-does-not-exist-0000',
      none: null,
    },
  };
}

/** Everything the management routes show, read with the master key (for "nothing changed"). */
export async function world(gw) {
  const keys = [];
  for (let page = 1; page < 100; page++) {
    const r = expectStatus(await get(gw, `/key/list?return_full_object=true&size=100&page=${page}&sort_by=token&sort_order=asc`), 200, 'key list');
    keys.push(...r.keys);
    if (page >= r.total_pages) break;
  }
  const users = expectStatus(await get(gw, '/user/list?page_size=100&sort_by=user_id&sort_order=asc'), 200, 'user list');
  return {
    keys,
    teams: expectStatus(await get(gw, '/team/list'), 200, 'team list'),
    users: users.users,
    customers: expectStatus(await get(gw, '/customer/list'), 200, 'customer list'),
    budgets: expectStatus(await get(gw, '/budget/list'), 200, 'budget list'),
  };
}
