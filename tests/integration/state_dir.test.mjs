// Issue 10, "The README's two commands, in order, on a fresh clone": without --state_dir the
// embedded store lives outside the config's directory, in one directory per config file
// (core/registry/mg_config.c mg_config_state_dir): /var/lib/moongate/<hash> as root,
// $XDG_STATE_HOME/moongate/<hash> otherwise (else $HOME/.local/state/moongate/<hash>, else
// /tmp/moongate-<uid>/<hash>), <hash> being the first 16 hex digits of the SHA-256 of the
// config's real path.  moongate says where at start ("moongate: embedded store in ...").
//
// Checked here: the printed line, that POST /model/new lands there and survives a restart,
// that a relative --config names the same directory, that nothing is written next to the
// config, and each non-root branch (run as nobody through setpriv when the tests run as root,
// as CI does).  Every directory this file creates is removed at the end, /var/lib/moongate
// itself only if this file created it and it is empty.
//
// moongate is spawned here with exactly the environment each case needs (no --state_dir and
// no MOONGATE_STATE_DIR from the caller's environment).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { moongateBin, tmpDir, waitFor, startMock } from '../lib/harness.mjs';
import { trackChild } from './lib_extra.mjs';
import { req } from './lib_registry.mjs';
import { sanitizerReport } from './lib_rotation.mjs';

const KEY = 'sk-test-master-statedir';
const isRoot = process.getuid() === 0;
const VAR_LIB = '/var/lib/moongate';
const varLibExisted = fs.existsSync(VAR_LIB);
const created = new Set(); // state directories this file made moongate create
const parents = new Set(); // their parents that may be new: removed if empty

const mock = await startMock();
after(async () => {
  await mock.stop();
  for (const d of created) fs.rmSync(d, { recursive: true, force: true });
  for (const d of parents) {
    try { fs.rmdirSync(d); } catch { /* not empty, or gone */ }
  }
  if (isRoot && !varLibExisted) {
    try { fs.rmdirSync(VAR_LIB); } catch { /* not empty: someone else uses it */ }
  }
});

const hashOf = (cfg) => crypto.createHash('sha256').update(fs.realpathSync(cfg)).digest('hex').slice(0, 16);

/** A config in a fresh directory (readable by nobody, for the setpriv cases). */
function writeConfig() {
  const dir = tmpDir('mg-sd-cfg-');
  fs.chmodSync(dir, 0o755);
  const cfg = path.join(dir, 'config.yaml');
  fs.writeFileSync(cfg, JSON.stringify({
    model_list: [{ model_name: 'base', litellm_params: { model: 'openai/base-up', api_base: mock.url, api_key: 'sk-upstream-sd-0001' } }],
    general_settings: { master_key: KEY },
  }, null, 2));
  fs.chmodSync(cfg, 0o644);
  return { dir, cfg };
}

const NOBODY = 65534;

/**
 * Starts moongate with --config (as given) and no --state_dir, in cwd, with exactly env
 * (plus PATH); asUser: a uid to run as (setpriv).  Resolves once it is ready.
 */
async function start({ config, cwd, env, asUser = null }) {
  const args = ['--config', config, '--host', '127.0.0.1', '--port', '0', '--num_workers', '1'];
  const cmd = asUser === null ? moongateBin : 'setpriv';
  const a = asUser === null ? args
    : [`--reuid=${asUser}`, `--regid=${asUser}`, '--clear-groups', '--', moongateBin, ...args];
  const child = trackChild(spawn(cmd, a, {
    cwd, stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, LITELLM_LOG: 'WARNING', ...env },
  }));
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((r) => child.once('exit', (code, sig) => r({ code, sig })));
  const port = await Promise.race([
    waitFor(() => {
      const m = /moongate: listening on [^:\s]+:(\d+)/.exec(out);
      return m && Number(m[1]);
    }, { what: 'moongate to listen', timeout: 20000 }),
    exited.then(({ code, sig }) => { throw new Error(`moongate exited early (${code}/${sig}):\n${out}\n${err}`); }),
  ]);
  await waitFor(async () => (await req(port, '/health/readiness')).status === 200, { what: 'readiness', timeout: 20000 });
  const storeLine = /^moongate: embedded store in (.+)$/m.exec(out);
  return {
    port, child, output: () => ({ stdout: out, stderr: err }),
    storeDir: storeLine ? storeLine[1] : null,
    /** SIGTERM; asserts a clean exit (code 0, no sanitizer report). */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } }, 15000);
      const r = await exited;
      clearTimeout(t);
      await new Promise((res) => (child.stderr.closed ? res() : child.stderr.once('close', res)));
      assert.equal(r.code, 0, `moongate exit (signal ${r.sig}):\n${err}`);
      assert.equal(sanitizerReport(err), null, 'no sanitizer report');
      return r;
    },
  };
}

/** Everything under dir, as relative paths. */
function tree(dir) {
  const out = [];
  const walk = (d, rel) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(r);
      if (e.isDirectory()) walk(path.join(d, e.name), r);
    }
  };
  walk(dir, '');
  return out.sort();
}

async function addModel(g, name) {
  const r = await req(g.port, '/model/new', {
    method: 'POST', key: KEY,
    body: { model_name: name, litellm_params: { model: 'openai/added-up', api_base: mock.url, api_key: 'sk-upstream-sd-0002' } },
  });
  assert.equal(r.status, 200, r.text);
}

async function modelNames(g) {
  const r = await req(g.port, '/v1/models', { key: KEY });
  assert.equal(r.status, 200, r.text);
  return r.json.data.map((m) => m.id).sort();
}

test(`the default store (${isRoot ? 'root: /var/lib/moongate/<hash>' : '$XDG_STATE_HOME/moongate/<hash>'}) is printed, holds /model/new, survives a restart, and nothing lands next to the config`, async () => {
  const { dir, cfg } = writeConfig();
  const home = tmpDir('mg-sd-home-');
  const xdg = tmpDir('mg-sd-xdg-');
  const want = isRoot ? path.join(VAR_LIB, hashOf(cfg)) : path.join(xdg, 'moongate', hashOf(cfg));
  assert.equal(fs.existsSync(want), false, `${want} exists before the test`);
  created.add(want);
  const env = { HOME: home, XDG_STATE_HOME: xdg };

  const g1 = await start({ config: cfg, env });
  try {
    assert.equal(g1.storeDir, want, g1.output().stdout);
    await addModel(g1, 'added-before-restart');
    assert.deepEqual(await modelNames(g1), ['added-before-restart', 'base']);
    assert.ok(fs.statSync(want).isDirectory(), `${want} was created`);
    assert.ok(tree(want).length > 0, 'the store wrote its files there');
    assert.deepEqual(tree(dir), ['config.yaml'], 'nothing next to the config');
    if (isRoot) assert.deepEqual(tree(xdg), [], 'as root, not in $XDG_STATE_HOME');
    assert.deepEqual(tree(home), [], 'nothing in $HOME');
  } finally {
    await g1.stop();
  }
  assert.deepEqual(tree(dir), ['config.yaml'], 'nothing next to the config after the stop either');

  const g2 = await start({ config: cfg, env });
  try {
    assert.equal(g2.storeDir, want, 'the same directory after a restart');
    assert.deepEqual(await modelNames(g2), ['added-before-restart', 'base'], 'the model added through the API is back');
  } finally {
    await g2.stop();
  }

  // a relative --config names the same file, so the same directory
  const g3 = await start({ config: 'config.yaml', cwd: dir, env });
  try {
    assert.equal(g3.storeDir, want, 'the hash is of the real path');
    assert.deepEqual(await modelNames(g3), ['added-before-restart', 'base']);
  } finally {
    await g3.stop();
  }
  assert.deepEqual(tree(dir), ['config.yaml']);
});

test('two config files get two directories', async () => {
  const a = writeConfig();
  const b = writeConfig();
  const xdg = tmpDir('mg-sd-xdg-');
  const env = { HOME: tmpDir('mg-sd-home-'), XDG_STATE_HOME: xdg };
  const ga = await start({ config: a.cfg, env });
  const gb = await start({ config: b.cfg, env });
  try {
    for (const g of [ga, gb]) if (g.storeDir) created.add(g.storeDir);
    assert.notEqual(ga.storeDir, gb.storeDir);
    await addModel(ga, 'only-in-a');
    assert.deepEqual(await modelNames(gb), ['base'], "b does not see a's store");
  } finally {
    await ga.stop();
    await gb.stop();
  }
});

// ---- the non-root branches ----

const setprivOk = isRoot && spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', moongateBin, '--version'], { encoding: 'utf8', timeout: 10000 }).status === 0;
const asNobody = isRoot ? NOBODY : null;
const nonRootSkip = isRoot && !setprivOk ? 'running as root and cannot run moongate as nobody through setpriv' : false;

/** A directory the user running moongate may write. */
function writableDir(prefix) {
  const d = tmpDir(prefix);
  if (isRoot) fs.chownSync(d, NOBODY, NOBODY);
  return d;
}

const uid = isRoot ? NOBODY : process.getuid();
for (const [what, mkEnv, expect] of [
  ['$XDG_STATE_HOME/moongate/<hash>', (h, x) => ({ HOME: h, XDG_STATE_HOME: x }), (h, x, hash) => path.join(x, 'moongate', hash)],
  ['no XDG_STATE_HOME: $HOME/.local/state/moongate/<hash>', (h) => ({ HOME: h }), (h, x, hash) => path.join(h, '.local', 'state', 'moongate', hash)],
  ['a relative XDG_STATE_HOME is ignored (XDG spec): $HOME/.local/state/...', (h) => ({ HOME: h, XDG_STATE_HOME: 'relative/state' }), (h, x, hash) => path.join(h, '.local', 'state', 'moongate', hash)],
  ['neither: /tmp/moongate-<uid>/<hash>', () => ({}), (h, x, hash) => path.join('/tmp', `moongate-${uid}`, hash)],
]) {
  test(`not root: ${what}`, { skip: nonRootSkip }, async () => {
    const { dir, cfg } = writeConfig();
    const home = writableDir('mg-sd-home-');
    const xdg = writableDir('mg-sd-xdg-');
    const want = expect(home, xdg, hashOf(cfg));
    created.add(want);
    if (want.startsWith('/tmp/moongate-') && !fs.existsSync(path.dirname(want))) parents.add(path.dirname(want));
    fs.chmodSync(dir, 0o555); // the config's directory is read-only: moongate needs nothing there
    let g = null;
    try {
      g = await start({ config: cfg, cwd: dir, env: mkEnv(home, xdg), asUser: asNobody });
      assert.equal(g.storeDir, want, g.output().stdout);
      await addModel(g, 'added');
      assert.ok(fs.existsSync(want) && tree(want).length > 0, `the store is in ${want}`);
      assert.deepEqual(tree(dir), ['config.yaml'], 'nothing next to the config');
      assert.equal(fs.existsSync(path.join(dir, 'relative')), false, 'nothing under a relative XDG_STATE_HOME');
    } finally {
      if (g) await g.stop();
      fs.chmodSync(dir, 0o755);
    }
  });
}

test('MOONGATE_STATE_DIR still chooses the directory (--state_dir: the harness passes it to every other test)', async () => {
  const { dir, cfg } = writeConfig();
  const sd = path.join(tmpDir('mg-sd-flag-'), 'store');
  const env = { HOME: tmpDir('mg-sd-home-'), XDG_STATE_HOME: tmpDir('mg-sd-xdg-'), MOONGATE_STATE_DIR: sd };
  const g = await start({ config: cfg, env });
  try {
    assert.equal(g.storeDir, sd);
    await addModel(g, 'in-env-dir');
    assert.ok(tree(sd).length > 0);
    assert.deepEqual(tree(dir), ['config.yaml']);
  } finally {
    await g.stop();
  }
});
