// Config reloads (POST /config/reload and SIGHUP) under a concurrent load loop:
// a config.yaml with a YAML syntax error, with wrong types, and an empty file
// are refused (HTTP error with file:line for the API, a log line for SIGHUP),
// the registry version stays where it was and the traffic sees zero failures.
// A good reload changes what is served and moves the version forward.
// /moongate/state shows per worker: pid, registry version, snapshot age, live
// snapshots, store and hint connection status, last load error.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, waitFor } from '../lib/harness.mjs';
import { req, everyWorker, loadLoop, waitResults, startLoaded, state, appliedVersions } from './lib_registry.mjs';

const KEY = 'sk-reload-master';
const W = 2;
const mock = await startMock();
const yaml = (models) => `model_list:\n${models.map((m) => `  - model_name: ${m}\n    litellm_params:\n      model: openai/${m}-up\n      api_base: ${mock.url}\n      api_key: sk-${m}\n`).join('')}general_settings:\n  master_key: ${KEY}\n`;
const good = yaml(['cfg-a']);
const gw = await startLoaded({ config: good, workers: W }, { key: KEY });
after(async () => { await gw.stop(); await mock.stop(); });

const BAD = {
  'YAML syntax error': [
    `model_list:\n  - model_name: cfg-a\n    litellm_params: {model: openai/a, api_base: "${mock.url}"\n  - model_name: x\n`,
    /config\.yaml:4:\d+: YAML syntax error/],
  'wrong type (litellm_params: 42)': [
    `model_list:\n  - model_name: cfg-a\n    litellm_params: 42\ngeneral_settings:\n  master_key: ${KEY}\n`,
    /config\.yaml:3:\d+: litellm_params must be a mapping/],
  'wrong type (model_list: a string)': [
    `model_list: "cfg-a"\ngeneral_settings:\n  master_key: ${KEY}\n`,
    /config\.yaml:1:\d+: model_list must be a list/],
  'wrong type (a setting that must be a number)': [
    `${good}moongate_settings:\n  registry_poll_interval_seconds: soon\n`,
    /config\.yaml:10:\d+: registry_poll_interval_seconds must be a number/],
  // an empty file has no line to point at: the file is named
  'empty file': ['', /config\.yaml: the config file is empty/],
};

const tagged = (prefix) => (i) => ({ port: gw.port, path: '/v1/chat/completions', method: 'POST', key: KEY, tag: `${prefix}-${i}`, kind: 'cfg-a',
  body: { model: 'cfg-a', messages: [{ role: 'user', content: `${prefix}-${i}` }] } });

test('bad reloads are refused (API and SIGHUP), the version does not move, traffic is unaffected', async () => {
  const loop = loadLoop({ concurrency: 6, maxMs: 60000, make: tagged('bad') });
  const v0 = await appliedVersions(gw.port);
  const gen0 = (await state(gw.port, KEY)).workers.map((w) => w.config_generation);
  try {
    await waitResults(loop, (rs) => rs.length >= 30, { what: 'load' });
    for (const [name, [text, re]] of Object.entries(BAD)) {
      // the API
      gw.writeConfig(text);
      const r = await req(gw.port, '/config/reload', { method: 'POST', key: KEY });
      assert.equal(r.status, 400, `${name}: ${r.text}`);
      assert.match(r.json.error.message, re, name);
      assert.ok(r.json.error.message.includes(gw.configPath), `${name}: names the file: ${r.json.error.message}`);
      assert.equal(r.json.error.type, 'config_error');
      assert.deepEqual(await appliedVersions(gw.port), v0, `${name}: version unchanged (API)`);

      // SIGHUP: the refusal is logged
      const logged = gw.output().stderr.length;
      process.kill(gw.child.pid, 'SIGHUP');
      const line = await waitFor(() => {
        const fresh = gw.output().stderr.slice(logged);
        return fresh.split('\n').find((l) => /config reload refused/.test(l));
      }, { timeout: 10000, what: `${name}: the SIGHUP refusal in the log` });
      assert.match(line, re, `${name}: ${line}`);
      assert.ok(line.includes(gw.configPath), line);
      assert.deepEqual(await appliedVersions(gw.port), v0, `${name}: version unchanged (SIGHUP)`);
    }
    await waitResults(loop, (rs) => rs.length >= 60, { what: 'more load' });
  } finally {
    await loop.stop();
  }
  const s = await state(gw.port, KEY);
  assert.deepEqual(s.workers.map((w) => w.config_generation), gen0, 'no config generation was applied');
  for (const w of s.workers) assert.equal(w.last_load_error, null);
  const rs = loop.results;
  const bad = rs.filter((r) => r.error || r.status !== 200);
  assert.deepEqual(bad.map((r) => `${r.status} ${r.error || r.text.slice(0, 200)}`), [], 'zero failures');
  assert.ok(rs.every((r) => v0.includes(r.version)), 'every response at the old version');
  assert.equal(new Set(rs.map((r) => r.worker)).size, W, 'the load reached every worker');
  console.log(`# ${Object.keys(BAD).length} bad files x (API + SIGHUP) refused under ${rs.length} requests, 0 failures`);
  gw.writeConfig(good);
});

test('a good reload (API, then SIGHUP) changes what is served and moves the version forward', async () => {
  const loop = loadLoop({ concurrency: 4, maxMs: 60000, make: tagged('good') });
  try {
    const v0 = Math.max(...await appliedVersions(gw.port));
    // the API: add cfg-b and rotate cfg-a's key
    gw.writeConfig(yaml(['cfg-a', 'cfg-b']).replace('api_key: sk-cfg-a', 'api_key: sk-cfg-a-rotated'));
    const r = await req(gw.port, '/config/reload', { method: 'POST', key: KEY });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.message, 'config reloaded');
    assert.ok(r.json.version > v0, `version ${v0} -> ${r.json.version}`);
    const t1 = r.tHead;
    assert.ok((await appliedVersions(gw.port)).every((v) => v >= r.json.version), 'every worker applied it before the call returned');
    const b = await everyWorker(gw.port, W, '/v1/chat/completions', { method: 'POST', key: KEY, body: { model: 'cfg-b', messages: [{ role: 'user', content: 'b' }] } });
    for (const [w, x] of b) {
      assert.equal(x.status, 200, `worker ${w}: ${x.text}`);
      assert.ok(x.version >= r.json.version);
    }
    // the rotated key: no request sent after the reload returned uses the old one
    await waitResults(loop, (rs) => new Set(rs.filter((x) => x.tSend > t1).map((x) => x.worker)).size === W, { what: 'load on every worker after the reload' });
    const byTag = new Map(loop.results.map((x) => [x.tag, x]));
    const stale = (await mock.log()).filter((e) => {
      const x = byTag.get(e.body?.messages?.[0]?.content);
      return x && x.tSend > t1 && e.headers.authorization !== 'Bearer sk-cfg-a-rotated';
    });
    assert.deepEqual(stale.map((e) => e.headers.authorization), [], 'old key used after the reload returned');

    // SIGHUP: add cfg-c
    const v1 = r.json.version;
    gw.writeConfig(yaml(['cfg-a', 'cfg-b', 'cfg-c']).replace('api_key: sk-cfg-a', 'api_key: sk-cfg-a-rotated'));
    process.kill(gw.child.pid, 'SIGHUP');
    await waitFor(async () => (await appliedVersions(gw.port)).every((v) => v > v1), { timeout: 10000, what: 'the SIGHUP reload to apply' });
    const c = await everyWorker(gw.port, W, '/v1/chat/completions', { method: 'POST', key: KEY, body: { model: 'cfg-c', messages: [{ role: 'user', content: 'c' }] } });
    for (const [w, x] of c) assert.equal(x.status, 200, `worker ${w}: ${x.text}`);
    const models = await everyWorker(gw.port, W, '/v1/models', { key: KEY });
    for (const [w, x] of models) {
      assert.deepEqual(x.json.data.map((m) => m.id).sort(), ['cfg-a', 'cfg-b', 'cfg-c'], `worker ${w}`);
    }
  } finally {
    await loop.stop();
  }
  const bad = loop.results.filter((r) => r.error || r.status !== 200);
  assert.deepEqual(bad.map((r) => `${r.status} ${r.error || r.text.slice(0, 200)}`), [], 'zero failures across good reloads');
  const versions = loop.results.sort((a, b) => a.tRecv - b.tRecv).map((r) => r.version);
  console.log(`# good reloads: ${loop.results.length} requests, versions seen ${[...new Set(versions)].join(',')}`);
});

test('/moongate/state shows, per worker: pid, registry version, snapshot age, live snapshots, store and hints, last load error', async () => {
  const s = await state(gw.port, KEY);
  assert.equal(s.workers.length, W);
  const pids = new Set();
  for (const w of s.workers) {
    assert.ok(Number.isInteger(w.pid) && w.pid > 0, 'pid');
    pids.add(w.pid);
    assert.ok(Number.isInteger(w.registry_version) && w.registry_version >= 0, 'registry_version');
    assert.equal(typeof w.snapshot_age_seconds, 'number');
    assert.ok(w.snapshot_age_seconds >= 0);
    assert.ok(Number.isInteger(w.live_snapshots) && w.live_snapshots >= 1, 'live_snapshots');
    assert.equal(w.store.type, 'journal');
    assert.equal(w.store.connected, true);
    assert.equal(typeof w.hints, 'object');
    assert.equal(w.hints.master_connected, true);
    assert.ok('last_load_error' in w);
    assert.equal(w.state, 'ready');
  }
  assert.equal(pids.size, W);
  const r = await req(gw.port, '/moongate/state', { key: 'sk-wrong' });
  assert.ok(r.status === 401 || r.status === 403 || r.status === 400, `master key only: ${r.status}`);
});
