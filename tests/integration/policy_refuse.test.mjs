// Policies that must not reach the fleet, and one that fails at run time.
//  - POST /policy/update refuses a policy that does not compile, whose
//    validate(conf) fails, that breaks the sandbox or that loops (400 with the
//    Lua error and line); nothing is committed.
//  - A broken routing_policy file is refused by POST /config/reload and by
//    SIGHUP, with file:line; the old policy keeps serving and the registry
//    version does not move.  A good file swaps the policy.
//  - A policy that loops only for some requests passes the check; those
//    requests are answered in the configured order, and the error is counted
//    in /moongate/state (errors, failing) and logged with the policy's name.
//  - `moongate policy check FILE` gives the same verdicts offline.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startMock, startGateway, mockModel, tmpDir, waitFor, moongateBin, repoRoot } from '../lib/harness.mjs';
import { req, chatBody, state, waitWorkers, sha256 } from './lib_policy.mjs';

const KEY = 'sk-test-policy-refuse';
const WORKERS = 2;

const policy = (name, body, extra = '') => `local _M = { name = "${name}", kind = "routing" }
${extra}
function _M.select(ctx, candidates, conf)
${body}
end

return _M
`;
const FIRST = policy('file_first', '    return { candidates[1] }');
const LAST = policy('file_last', '    return { candidates[#candidates] }');

const mock = await startMock();
const dir = tmpDir('mg-policy-refuse-');
const routerFile = path.join(dir, 'router.lua');
fs.writeFileSync(routerFile, FIRST);
const config = {
  model_list: [
    mockModel(mock, 'g', { model: 'openai/up-1', info: { id: 'd1' } }),
    mockModel(mock, 'g', { model: 'openai/up-2', info: { id: 'd2' } }),
    mockModel(mock, 'g', { model: 'openai/up-3', info: { id: 'd3' } }),
    mockModel(mock, 'loop', { model: 'openai/up-l1', info: { id: 'l1' } }),
    mockModel(mock, 'loop', { model: 'openai/up-l2', info: { id: 'l2' } }),
    mockModel(mock, 'loop', { model: 'openai/up-l3', info: { id: 'l3' } }),
  ],
  router_settings: { routing_policy: './router.lua', policy_args: { routing: { limit: 3 } } },
  general_settings: { master_key: KEY },
};
const gw = await startGateway({ config, workers: WORKERS, dir });
after(async () => { await gw.stop(); await mock.stop(); });

const chat = (model = 'g', opts = {}) =>
  req(gw.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: chatBody(model), ...opts });
const update = (source, kind = 'routing', key = KEY) =>
  req(gw.port, '/policy/update', { method: 'POST', key, body: { kind, source } });

/** n requests on fresh connections; all must be 200 from dep with policy version pv (and registry version rv). */
async function expectServing(n, { dep, pv, rv, model = 'g' }) {
  for (let i = 0; i < n; i++) {
    const r = await chat(model);
    assert.equal(r.status, 200, r.text);
    if (dep) assert.equal(r.modelId, dep, `request ${i} served by ${r.modelId}`);
    if (pv) assert.equal(r.polVersion, pv, `request ${i}: policy version`);
    if (rv !== undefined) assert.equal(r.regVersion, rv, `request ${i}: registry version`);
  }
}

let base; // {rv, pv} while router.lua = FIRST

test('the routing_policy file is loaded: origin file, named after the file, not JIT-compiled', async () => {
  const r = await chat();
  assert.equal(r.status, 200, r.text);
  assert.equal(r.modelId, 'd1');
  base = { rv: r.regVersion, pv: r.polVersion };
  const s = await waitWorkers(gw.port, KEY, WORKERS, (w) => w.policies && w.policies.version === base.pv);
  for (const w of s.workers) {
    const p = w.policies.policies[0];
    assert.equal(p.origin, 'file');
    assert.equal(p.name, 'router');
    assert.equal(p.hash, sha256(FIRST));
    assert.equal(w.policies.jit, false);
  }
});

test('POST /policy/update refuses broken policies with the Lua error and line; nothing is committed', async () => {
  const cases = [
    ['a syntax error', policy('syn', '    return { candidates[1]'), /^policy refused: store:routing:5: '}' expected/],
    ['validate(conf) failing', policy('val', '    return candidates',
      'function _M.validate(conf)\n    if conf.limit ~= 7 then return nil, "conf.limit must be 7" end\n    return true\nend'),
    /validate\(conf\) refused the configuration: conf\.limit must be 7/],
    ['a run-time error while loading', 'local _M = {}\nlocal t = nil\nlocal x = t.field\nreturn _M\n', /^policy refused: store:routing:3: attempt to index/],
    ['a global', policy('glob', '    picked = candidates[1]\n    return { picked }'), /store:routing:4: .*may not set global 'picked'/],
    ['io', policy('io', '    io.write("x")\n    return candidates'), /store:routing:4: .*undefined global 'io'/],
    ['require of a C module', 'local ffi = require "ffi"\nreturn {}\n', /store:routing:1: .*not available to policies/],
    ['bytecode', '\u001bLJ\u0002\u0001junk', /bytecode/],
    ['no select()', 'return { name = "x" }\n', /a policy must return a table with select/],
    ['a wrong kind', 'return { kind = "fallback", select = function(ctx, c) return c end }\n', /kind/],
    ['an infinite loop in select()', policy('spin', '    while true do end'), /exceeded its budget[\s\S]*store:routing:4:/],
    ['an infinite loop at load', 'while true do end\nreturn {}\n', /exceeded its budget/],
    ['a result that is not a subset', policy('alien', '    return { { id = "x" } }'), /not one of the candidate views/],
  ];
  for (const [what, src, re] of cases) {
    const t0 = Date.now();
    const r = await update(src);
    assert.equal(r.status, 400, `${what}: ${r.status} ${r.text}`);
    assert.equal(r.json.error.type, 'policy_error', what);
    assert.equal(r.json.error.param, 'source', what);
    assert.equal(r.json.error.code, '400', what);
    assert.match(r.json.error.message, re, what);
    assert.ok(Date.now() - t0 < 10000, `${what}: refused in ${Date.now() - t0} ms`);
  }
  // wrong requests
  let r = await update(FIRST, 'routing', null);
  assert.equal(r.status, 401, r.text);
  r = await update(FIRST, 'router');
  assert.equal(r.status, 422, r.text);
  r = await update('', 'routing');
  assert.equal(r.status, 422, r.text);
  // nothing changed
  await expectServing(10, { dep: 'd1', pv: base.pv, rv: base.rv });
  const info = await req(gw.port, '/policy/info', { key: KEY });
  assert.equal(info.json.registry_version, base.rv);
  assert.equal(info.json.data.find((p) => p.kind === 'routing').origin, 'file');
});

async function reloadRefused(src, re) {
  fs.writeFileSync(routerFile, src);
  const r = await gw.reload();
  assert.equal(r.status, 400, r.text);
  assert.match(r.json.error.message, re);
  await expectServing(8, { dep: 'd1', pv: base.pv, rv: base.rv });
}

test('POST /config/reload refuses a broken policy file with file:line; the old policy keeps serving, the version stays', async () => {
  await reloadRefused(policy('file_bad', '    return { candidates[1]'),
    new RegExp(`routing policy refused: .*router\\.lua:5: '}' expected`));
  await reloadRefused(policy('file_val', '    return candidates',
    'function _M.validate(conf)\n    if conf.limit ~= 7 then return nil, "limit must be 7, got " .. tostring(conf.limit) end\n    return true\nend'),
  /router\.lua: validate\(conf\) refused the configuration: limit must be 7, got 3/);
  await reloadRefused(policy('file_spin', '    while true do end'), /exceeded its budget[\s\S]*router\.lua:4:/);
  await reloadRefused('return 1 +\n', /router\.lua:2:/);
  fs.rmSync(routerFile);
  const r = await gw.reload();
  assert.equal(r.status, 400, r.text);
  assert.match(r.json.error.message, /cannot open policy file/);
  await expectServing(4, { dep: 'd1', pv: base.pv, rv: base.rv });
  const s = await state(gw.port, KEY);
  for (const w of s.workers) assert.equal(w.registry_version, base.rv, `worker ${w.worker}`);
});

test('SIGHUP with a broken file is refused too; a good file then swaps the policy (SIGHUP and POST /config/reload)', async () => {
  const before = gw.output().stderr.length;
  fs.writeFileSync(routerFile, policy('file_bad', '    return { candidates[1]'));
  process.kill(gw.child.pid, 'SIGHUP');
  await waitFor(() => /router\.lua:5:/.test(gw.output().stderr.slice(before)),
    { what: 'the refused SIGHUP reload in the log', timeout: 15000 });
  await expectServing(8, { dep: 'd1', pv: base.pv, rv: base.rv });

  fs.writeFileSync(routerFile, LAST);
  process.kill(gw.child.pid, 'SIGHUP');
  const r = await waitFor(async () => {
    const x = await chat();
    return x.status === 200 && x.modelId === 'd3' && x.polVersion !== base.pv ? x : false;
  }, { what: 'the SIGHUP-loaded policy serving', timeout: 15000 });
  assert.ok(r.regVersion > base.rv, 'a policy change is a registry change');
  await waitWorkers(gw.port, KEY, WORKERS, (w) => w.policies && w.policies.version === r.polVersion);
  await expectServing(8, { dep: 'd3', pv: r.polVersion, rv: r.regVersion });

  fs.writeFileSync(routerFile, FIRST);
  const rel = await gw.reload();
  assert.equal(rel.status, 200, rel.text);
  // every request sent after the reload returned sees the new policy, on any worker
  const seen = new Set();
  for (let i = 0; i < 16; i++) {
    const x = await chat();
    assert.equal(x.status, 200);
    assert.equal(x.modelId, 'd1');
    assert.equal(x.polVersion, base.pv, 'the same source gives the same policy version');
    assert.ok(x.regVersion >= rel.json.version);
    seen.add(x.worker);
  }
  base.rv = (await chat()).regVersion;
});

test('a policy that loops for some requests passes the check; those requests use the configured order, the error is counted and logged', async () => {
  const LOOPY = policy('loopy', [
    '    if ctx.model == "loop" then',
    '        while true do end',
    '    end',
    '    return { candidates[#candidates] }',
  ].join('\n'));
  const before = gw.output().stderr.length;
  const u = await update(LOOPY);
  assert.equal(u.status, 200, u.text);
  // one keep-alive connection: every request lands on the same worker
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const N = 12;
    let worker = null;
    for (let i = 0; i < N; i++) {
      const r = await chat('loop', { agent });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.modelId, 'l1', 'the configured order: the first deployment');
      assert.ok(r.regVersion >= u.json.version);
      if (worker === null) worker = r.worker;
      assert.equal(r.worker, worker, 'same connection, same worker');
    }
    const s = await waitWorkers(gw.port, KEY, WORKERS, (w) => w.worker !== worker ||
      (w.policies && w.policies.policies[0].errors >= N), { what: `worker ${worker} to count ${N} policy errors` });
    const w = s.workers.find((x) => x.worker === worker);
    const p = w.policies.policies[0];
    assert.equal(p.name, 'loopy');
    assert.equal(p.origin, 'store');
    assert.equal(p.errors, N);
    assert.equal(p.consecutive_errors, N);
    assert.equal(p.failing, true, 'a policy that keeps failing is reported');
    assert.match(p.last_error, /exceeded its budget/);
    assert.ok(w.policy_errors >= N);
    // the log names the policy
    const log = gw.output().stderr.slice(before);
    assert.match(log, /routing policy "loopy" \(registry version \d+\) failed .*using the configured order: .*exceeded its budget/);

    // other requests still follow the policy, and a success clears "failing"
    const ok = await chat('g', { agent });
    assert.equal(ok.status, 200);
    assert.equal(ok.modelId, 'd3');
    assert.equal(ok.worker, worker);
    await waitWorkers(gw.port, KEY, WORKERS, (x) => x.worker !== worker ||
      (x.policies.policies[0].failing === false && x.policies.policies[0].errors === N),
    { what: 'failing cleared after a success' });
  } finally {
    agent.destroy();
  }
});

test('moongate policy check FILE gives the same verdicts offline', async () => {
  const d = tmpDir('mg-policy-check-');
  const check = (name, src, ...args) => {
    const f = path.join(d, name);
    fs.writeFileSync(f, src);
    const r = spawnSync(moongateBin, ['policy', 'check', f, ...args], { encoding: 'utf8', timeout: 20000 });
    return { code: r.status, out: r.stdout, err: r.stderr, file: f };
  };
  let r = check('good.lua', FIRST);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`routing policy .*good\\.lua OK \\(sha256 ${sha256(FIRST).slice(0, 12)}\\)`));
  r = check('syntax.lua', policy('s', '    return { candidates[1]'));
  assert.equal(r.code, 1);
  assert.match(r.err, /refused: .*syntax\.lua:5: '}' expected/);
  r = check('spin.lua', policy('s', '    while true do end'));
  assert.equal(r.code, 1);
  assert.match(r.err, /exceeded its budget/);
  const V = policy('v', '    return candidates',
    'function _M.validate(conf)\n    if conf.limit ~= 7 then return nil, "conf.limit must be 7" end\n    return true\nend');
  r = check('v.lua', V);
  assert.equal(r.code, 1);
  assert.match(r.err, /conf\.limit must be 7/);
  r = check('v.lua', V, '--conf', '{"limit": 7}');
  assert.equal(r.code, 0, r.err);
  // the kind: declared in the module, or --kind
  const FB = 'local _M = { name = "fb", kind = "fallback" }\nfunction _M.select(ctx, c) return c end\nreturn _M\n';
  r = check('fb.lua', FB);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /fallback policy/);
  r = check('fb.lua', FB, '--kind', 'routing');
  assert.equal(r.code, 1);
  assert.match(r.err, /kind/);
  // the built-ins pass
  for (const f of ['routing/simple_shuffle', 'routing/least_busy', 'routing/latency_based', 'routing/usage_based_v2',
    'routing/cost_based', 'fallback/ordered', 'wildcard/litellm']) {
    const src = fs.readFileSync(path.join(repoRoot, 'policies', `${f}.lua`), 'utf8');
    r = check(f.replace('/', '_') + '.lua', src);
    assert.equal(r.code, 0, `${f}: ${r.err}`);
  }
});
