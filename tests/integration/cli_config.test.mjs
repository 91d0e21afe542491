// The command line, environment variables and config.yaml handling that a
// LiteLLM user relies on: --version, --validate_config, errors naming
// file:line:column, unknown keys, os.environ/, environment_variables, include,
// PORT/HOST/NUM_WORKERS/CONFIG_FILE_PATH/LITELLM_MASTER_KEY, LiteLLM flags.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startMock, startGateway, mockModel, tmpDir, freePort, waitFor } from '../lib/harness.mjs';
import { runMoongateSync, spawnMoongate } from './lib_extra.mjs';

const mock = await startMock();
after(async () => { await mock.stop(); });

function writeConfig(text, name = 'config.yaml') {
  const d = tmpDir('mg-cli-');
  const p = path.join(d, name);
  fs.writeFileSync(p, text);
  return { dir: d, path: p };
}
const okYaml = `model_list:
  - model_name: a
    litellm_params:
      model: openai/up-a
      api_base: ${mock.url}
      api_key: sk-a
  - model_name: b
    litellm_params:
      model: openai/up-b
      api_base: ${mock.url}
      api_key: sk-b
`;

test('--version and -v print the version and exit 0', () => {
  for (const flag of ['--version', '-v']) {
    const r = runMoongateSync([flag]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^moongate: Current Version = \d+\.\d+\.\d+/);
  }
});

test('--validate_config: "moongate: config OK (N models)", exit 0', () => {
  const c = writeConfig(okYaml);
  const r = runMoongateSync(['--config', c.path, '--validate_config']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'moongate: config OK (2 models)');
});

const broken = [
  ['a string where a number belongs', `model_list:
  - model_name: a
    litellm_params:
      model: openai/x
      rpm: "abc"
`, 5, /rpm/],
  ['model_list is not a list', 'model_list: 5\n', 1, /model_list/],
  ['litellm_params without model', `model_list:
  - model_name: a
    litellm_params:
      api_base: http://127.0.0.1:1/v1
`, 3, /model/],
  ['a router setting of the wrong type', `model_list: []
router_settings:
  num_retries: "x"
`, 3, /num_retries/],
  ['broken YAML', `model_list:
  - model_name: a
    litellm_params: {model: openai/x
`, null, /YAML|yaml/],
];

for (const [name, yaml, line, what] of broken) {
  test(`--validate_config names file:line:column: ${name}`, () => {
    const c = writeConfig(yaml);
    const r = runMoongateSync(['--config', c.path, '--validate_config']);
    assert.equal(r.code, 1, `exit 1 (stdout ${r.stdout})`);
    const m = new RegExp(`${c.path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:(\\d+):(\\d+): `).exec(r.stderr);
    assert.ok(m, `stderr names ${c.path}:line:column: ${r.stderr}`);
    if (line !== null) assert.equal(Number(m[1]), line, r.stderr);
    assert.match(r.stderr, what);
  });

  test(`refuses to start with file:line:column: ${name}`, () => {
    const c = writeConfig(yaml);
    const r = runMoongateSync(['--config', c.path, '--host', '127.0.0.1', '--port', '0', '--state_dir', path.join(c.dir, 's')]);
    assert.notEqual(r.signal, 'SIGTERM', 'it must not start (the run would have timed out)');
    assert.notEqual(r.code, 0);
    assert.ok(!/listening on/.test(r.stdout), 'never listened');
    assert.ok(r.stderr.includes(`${c.path}:`), r.stderr);
  });
}

test('a missing config file is an error that names it', () => {
  const r = runMoongateSync(['--config', '/nonexistent/moongate-test.yaml', '--validate_config']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\/nonexistent\/moongate-test\.yaml/);
});

test('unknown keys: a warning, and moongate starts', async () => {
  const gw = await startGateway({
    config: {
      model_list: [mockModel(mock, 'a')],
      totally_unknown_top_level: { x: 1 },
      general_settings: { master_key: 'sk-m', some_future_setting: true },
    },
  });
  try {
    assert.match(gw.output().stderr, /totally_unknown_top_level/);
    const r = await gw.chat({ model: 'a', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 200);
  } finally { await gw.stop(); }
});

test('os.environ/VAR is resolved (api_key, api_base, master_key)', async () => {
  const gw = await startGateway({
    env: { MG_T_UPKEY: 'sk-from-environ', MG_T_BASE: mock.url, MG_T_MASTER: 'sk-master-from-environ' },
    config: {
      model_list: [{ model_name: 'e', litellm_params: { model: 'openai/up-environ', api_base: 'os.environ/MG_T_BASE', api_key: 'os.environ/MG_T_UPKEY' } }],
      general_settings: { master_key: 'os.environ/MG_T_MASTER' },
    },
  });
  try {
    const r = await gw.chat({ model: 'e', messages: [{ role: 'user', content: 'x' }], user: 'environ-1' }, { key: 'sk-master-from-environ' });
    assert.equal(r.status, 200, r.text);
    const e = (await mock.log()).find((x) => x.body?.user === 'environ-1');
    assert.equal(e.headers.authorization, 'Bearer sk-from-environ');
    const no = await gw.chat({ model: 'e', messages: [] }, { key: 'os.environ/MG_T_MASTER' });
    assert.equal(no.status, 401, 'the literal string is not the key');
  } finally { await gw.stop(); }
});

test('environment_variables are set before os.environ/ is resolved', async () => {
  const gw = await startGateway({
    config: {
      environment_variables: { MG_T_FROM_CONFIG: 'sk-from-environment-variables' },
      model_list: [{ model_name: 'ev', litellm_params: { model: 'openai/up-ev', api_base: mock.url, api_key: 'os.environ/MG_T_FROM_CONFIG' } }],
    },
  });
  try {
    const r = await gw.chat({ model: 'ev', messages: [{ role: 'user', content: 'x' }], user: 'envvars-1' });
    assert.equal(r.status, 200, r.text);
    const e = (await mock.log()).find((x) => x.body?.user === 'envvars-1');
    assert.equal(e.headers.authorization, 'Bearer sk-from-environment-variables');
  } finally { await gw.stop(); }
});

test('include: a path relative to the config file; model_list is concatenated', async () => {
  const dir = tmpDir('mg-inc-');
  fs.mkdirSync(path.join(dir, 'more'));
  fs.writeFileSync(path.join(dir, 'more', 'models.yaml'), `model_list:
  - model_name: included
    litellm_params:
      model: openai/up-included
      api_base: ${mock.url}
      api_key: sk-inc
`);
  const gw = await startGateway({
    dir,
    config: `include:
  - more/models.yaml
model_list:
  - model_name: main
    litellm_params:
      model: openai/up-main
      api_base: ${mock.url}
      api_key: sk-main
general_settings:
  master_key: sk-inc-master
`,
  });
  try {
    gw.masterKey = 'sk-inc-master';
    const models = await gw.request('/v1/models');
    assert.deepEqual(models.json.data.map((d) => d.id).sort(), ['included', 'main']);
    for (const m of ['main', 'included']) {
      const r = await gw.chat({ model: m, messages: [{ role: 'user', content: 'x' }] });
      assert.equal(r.status, 200, r.text);
    }
    // validate_config from another directory agrees
    const v = runMoongateSync(['--config', gw.configPath, '--validate_config'], { cwd: '/' });
    assert.equal(v.stdout.trim(), 'moongate: config OK (2 models)', v.stderr);
  } finally { await gw.stop(); }
});

test('env PORT, HOST, NUM_WORKERS, CONFIG_FILE_PATH and LITELLM_MASTER_KEY', async () => {
  const c = writeConfig(okYaml);
  const port = await freePort();
  const gw = await spawnMoongate(['--state_dir', path.join(c.dir, 'state')], {
    env: { PORT: String(port), HOST: '127.0.0.1', NUM_WORKERS: '2', CONFIG_FILE_PATH: c.path, LITELLM_MASTER_KEY: 'sk-env-master' },
  });
  try {
    assert.equal(gw.port, port);
    assert.equal(gw.host, '127.0.0.1');
    const auth = { authorization: 'Bearer sk-env-master' };
    const state = await waitFor(async () => {
      const r = await fetch(`${gw.url}/moongate/state`, { headers: auth });
      return r.status === 200 && r.json();
    }, { what: 'state' });
    assert.equal(state.workers.length, 2);
    const body = JSON.stringify({ model: 'a', messages: [{ role: 'user', content: 'x' }] });
    const no = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    assert.equal(no.status, 401);
    const yes = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...auth } });
    assert.equal(yes.status, 200);
  } finally { await gw.stop(); }
});

test('flags win over the environment', async () => {
  const c = writeConfig(okYaml);
  const port = await freePort();
  const other = await freePort();
  const gw = await spawnMoongate(['--config', c.path, '--port', String(port), '--host', '127.0.0.1', '--num_workers', '1',
    '--state_dir', path.join(c.dir, 'state')], { env: { PORT: String(other), NUM_WORKERS: '3' } });
  try {
    assert.equal(gw.port, port);
    const s = await (await fetch(`${gw.url}/moongate/state`)).json();
    assert.equal(s.workers.length, 1);
  } finally { await gw.stop(); }
});

test('LiteLLM flags moongate ignores: a one-line warning each, and it starts', async () => {
  const gw = await startGateway({
    config: { model_list: [mockModel(mock, 'a')] },
    args: ['--run_gunicorn', '--telemetry', '--max_requests_before_restart', '100', '--use_prisma_db_push'],
  });
  try {
    const err = gw.output().stderr;
    for (const f of ['--run_gunicorn', '--telemetry', '--max_requests_before_restart', '--use_prisma_db_push']) {
      assert.match(err, new RegExp(`warning.*${f}|${f}.*warning`), `warning for ${f}`);
    }
    assert.equal((await gw.chat({ model: 'a', messages: [{ role: 'user', content: 'x' }] })).status, 200);
  } finally { await gw.stop(); }
});

test('LiteLLM flags moongate does not implement are refused: non-zero exit with a message', () => {
  const c = writeConfig(okYaml);
  for (const args of [['--ssl_keyfile_path', 'k.pem', '--ssl_certfile_path', 'c.pem'], ['--model', 'gpt-4o'], ['--test'], ['--health']]) {
    const r = runMoongateSync(['--config', c.path, '--port', '0', '--host', '127.0.0.1', ...args]);
    assert.notEqual(r.signal, 'SIGTERM', `${args[0]} must not start`);
    assert.notEqual(r.code, 0, args[0]);
    assert.ok(r.stderr.includes(args[0]), `${args[0]}: ${r.stderr}`);
  }
  const u = runMoongateSync(['--no-such-flag']);
  assert.notEqual(u.code, 0);
  assert.match(u.stderr, /--no-such-flag/);
});

test('--detailed_debug shows in /health/readiness', async () => {
  const gw = await startGateway({ config: { model_list: [mockModel(mock, 'a')] }, args: ['--detailed_debug'] });
  try {
    const r = await (await fetch(`${gw.url}/health/readiness`)).json();
    assert.equal(r.is_detailed_debug, true);
    assert.equal(r.log_level, 'DEBUG');
  } finally { await gw.stop(); }
});
