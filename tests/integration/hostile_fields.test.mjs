// Issue 15, the first line of defence and the request checks: every field that can
// reach a header, a request line or a URL is validated where it comes in (config,
// /model/new, /model/update, a stored row), api_base is parsed as a URL (its query
// goes after the route and is never shown), names are compared byte for byte (a NUL
// or invalid UTF-8 is a 400), error bodies stay UTF-8 JSON, and malformed request
// values (stream "yes", max_tokens out of range, messages []) are refused, not
// forwarded.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startMock, startGateway, startPostgres, mockModel, moongateBin, tmpDir, waitFor } from '../lib/harness.mjs';

const KEY = 'sk-test-master';
const QSECRET = 'qsecret-7f3a9c1b2d';

const mock = await startMock();
const gw = await startGateway({
  config: {
    model_list: [
      mockModel(mock, 'plain', { model: 'openai/up-plain' }),
      mockModel(mock, 'm', { model: 'openai/up-m' }),
      { model_name: 'withquery', litellm_params: { model: 'openai/up-q', api_base: `${mock.url}?key=${QSECRET}&v=2`, api_key: 'sk-upstream-test' } },
    ],
    general_settings: { master_key: KEY },
  },
});
after(async () => { await gw.stop(); await mock.stop(); });

const HOSTILE = [
  ['model_name', (v) => ({ model_name: v, litellm_params: { model: 'openai/x', api_base: mock.url } })],
  ['api_base', (v) => ({ model_name: 'h1', litellm_params: { model: 'openai/x', api_base: `${mock.url}${v}` } })],
  ['model_info.id', (v) => ({ model_name: 'h2', litellm_params: { model: 'openai/x', api_base: mock.url }, model_info: { id: v } })],
  ['api_key', (v) => ({ model_name: 'h3', litellm_params: { model: 'openai/x', api_base: mock.url, api_key: v } })],
  ['organization', (v) => ({ model_name: 'h4', litellm_params: { model: 'openai/x', api_base: mock.url, organization: v } })],
  ['api_version', (v) => ({ model_name: 'h5', litellm_params: { model: 'azure/x', api_base: mock.url, api_version: v } })],
  ['extra_headers', (v) => ({ model_name: 'h6', litellm_params: { model: 'openai/x', api_base: mock.url, extra_headers: { 'x-a': v } } })],
];

for (const [field, make] of HOSTILE) {
  for (const inj of ['a\r\nX-Injected: yes', 'a\nX-Injected: yes', 'a\u0000b']) {
    test(`/model/new refuses ${JSON.stringify(inj)} in ${field}, naming the field`, async () => {
      const r = await gw.request('/model/new', { method: 'POST', body: make(inj) });
      assert.ok(r.status === 400 || r.status === 422, `${r.status} ${r.text}`);
      if (inj.includes('\u0000')) {
        assert.match(r.text, /NUL|\\u0000/, 'a NUL is refused as such');
      } else {
        assert.ok(r.text.includes(field.split('.').pop()), `the error names ${field}: ${r.text}`);
      }
      assert.ok(!r.text.includes('X-Injected'), 'the value is not quoted back');
    });
  }
}

test('an extra header whose name is not a token is refused', async () => {
  const r = await gw.request('/model/new', {
    method: 'POST',
    body: { model_name: 'hn', litellm_params: { model: 'openai/x', api_base: mock.url, extra_headers: { 'x-a\r\nX-Injected': 'v' } } },
  });
  assert.ok(r.status === 400 || r.status === 422, `${r.status} ${r.text}`);
  assert.match(r.text, /header name/);
});

test('/model/update cannot inject into a stored model', async () => {
  const add = await gw.request('/model/new', {
    method: 'POST', body: { model_name: 'good', litellm_params: { model: 'openai/x', api_base: mock.url }, model_info: { id: 'good-1' } },
  });
  assert.equal(add.status, 200, add.text);
  for (const lp of [{ api_key: 'k\r\nX-Injected: yes' }, { api_base: `${mock.url}\r\nX-Up: 1` }]) {
    const r = await gw.request('/model/update', { method: 'POST', body: { model_info: { id: 'good-1' }, litellm_params: lp } });
    assert.ok(r.status === 400 || r.status === 422, `${r.status} ${r.text}`);
  }
  const info = await gw.request('/model/info?litellm_model_id=good-1');
  assert.equal(info.status, 200);
  assert.ok(!info.text.includes('Injected') && !info.text.includes('X-Up'));
});

test('a config file with a CR/LF in a model name is refused with file:line', () => {
  const d = tmpDir('mg-hf-');
  const cfg = path.join(d, 'config.yaml');
  fs.writeFileSync(cfg, 'model_list:\n  - model_name: "inj\\r\\nX-Injected: yes"\n    litellm_params:\n      model: openai/x\n');
  const r = spawnSync(moongateBin, ['--config', cfg, '--validate_config'], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr + r.stdout, /config\.yaml:2:\d+.*model_name must not contain control characters/);
});

test('api_base user:password@ is refused', async () => {
  const u = new URL(mock.url);
  const r = await gw.request('/model/new', {
    method: 'POST', body: { model_name: 'ui', litellm_params: { model: 'openai/x', api_base: `http://user:pw@${u.host}/v1` } },
  });
  assert.ok(r.status === 400 || r.status === 422, `${r.status} ${r.text}`);
  assert.match(r.text, /credentials/);
  assert.ok(!r.text.includes(':pw@'));
});

test('a query in api_base goes after the route, and is never shown', async () => {
  const r = await gw.chat({ model: 'withquery', messages: [{ role: 'user', content: 'hi' }], mock: { content: 'q1' } });
  assert.equal(r.status, 200, r.text);
  const log = await mock.log();
  const e = log.find((x) => x.body?.mock?.content === 'q1');
  assert.ok(e, 'the upstream got it');
  assert.equal(e.path, `/v1/chat/completions?key=${QSECRET}&v=2`, 'the route, then the query');
  assert.equal(r.headers.get('x-litellm-model-api-base').includes(QSECRET), false);
  for (const p of ['/model/info', '/v2/model/info', '/health?model=withquery', '/moongate/state']) {
    const s = await gw.request(p);
    assert.ok(!s.text.includes(QSECRET), `${p} shows the query secret`);
  }
  const info = await gw.request('/model/info');
  assert.match(info.text, /key=<redacted>/);
});

test('a NUL in the model name is a 400, not a lookup of the prefix', async () => {
  const before = (await mock.log()).length;
  const r = await gw.chat({ model: 'm\u0000x', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(r.status, 400, r.text);
  assert.match(r.json.error.message, /NUL/);
  assert.equal((await mock.log()).length, before, 'nothing was forwarded');
});

async function rawPost(body) {
  const r = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST', body, headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
  });
  const buf = Buffer.from(await r.arrayBuffer());
  return { status: r.status, buf };
}

test('invalid UTF-8 in a model name is a 400 whose body is UTF-8 JSON', async () => {
  const body = Buffer.concat([Buffer.from('{"model":"bad'), Buffer.from([0xff, 0xfe, 0xc3]),
    Buffer.from('","messages":[{"role":"user","content":"hi"}]}')]);
  const r = await rawPost(body);
  assert.equal(r.status, 400);
  const text = new TextDecoder('utf-8', { fatal: true }).decode(r.buf); // throws on invalid UTF-8
  const j = JSON.parse(text);
  assert.match(j.error.message, /UTF-8/);
});

test('invalid UTF-8 quoted in any error message is escaped', async () => {
  // an unknown path model (Azure style) with raw bytes: the "Invalid model name" message quotes it
  const r = await fetch(`${gw.url}/openai/deployments/x%FFy/chat/completions`, {
    method: 'POST', body: '{"messages":[{"role":"user","content":"hi"}]}',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
  });
  const buf = Buffer.from(await r.arrayBuffer());
  assert.equal(r.status, 400);
  JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf));
});

for (const [what, extra, re] of [
  ['stream "yes"', { stream: 'yes' }, /stream/],
  ['max_tokens 1e400', '1e400', /max_tokens/],
  ['max_tokens -1', { max_tokens: -1 }, /max_tokens.*minimum/],
  ['max_tokens 2^64', '18446744073709551616', /max_tokens.*maximum/],
  ['max_tokens 1.5', { max_tokens: 1.5 }, /max_tokens/],
  ['messages []', { messages: [] }, /messages.*empty/],
]) {
  test(`${what} is refused with a 400 that says what is wrong, and not forwarded`, async () => {
    const before = (await mock.log()).length;
    let body;
    if (typeof extra === 'string') {
      body = `{"model":"plain","messages":[{"role":"user","content":"hi"}],"max_tokens":${extra}}`;
    } else {
      body = JSON.stringify({ model: 'plain', messages: [{ role: 'user', content: 'hi' }], ...extra });
    }
    const r = await rawPost(body);
    assert.equal(r.status, 400, r.buf.toString());
    const j = JSON.parse(r.buf.toString());
    assert.match(j.error.message, re);
    assert.equal((await mock.log()).length, before, 'nothing was forwarded');
  });
}

test('an unknown model with messages [] is still "Invalid model name" (LiteLLM resolves first)', async () => {
  const r = await gw.chat({ model: 'nope', messages: [] });
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /Invalid model name passed in model=nope/);
});

test('a stored row with a CR/LF model name is skipped, and never reaches a head', async () => {
  const pg = await startPostgres();
  const pmock = mock;
  const g = await startGateway({
    config: { model_list: [mockModel(pmock, 'ok')], general_settings: { master_key: KEY, store_model_in_db: true } },
    env: { DATABASE_URL: pg.url },
  });
  try {
    const v = Number(pg.psql('SELECT version FROM moongate_registry WHERE id = 1'));
    pg.psql(`INSERT INTO moongate_models (model_id, model_name, litellm_params) VALUES ('row-inj', E'inj\\r\\nX-Injected: yes', '{"model":"openai/x","api_base":"${pmock.url}"}'::jsonb)`);
    pg.psql(`UPDATE moongate_registry SET version = ${v + 1} WHERE id = 1`);
    await waitFor(async () => {
      const r = await g.chat({ model: 'ok', messages: [{ role: 'user', content: 'hi' }] });
      return Number(r.headers.get('x-moongate-registry-version')) >= v + 1;
    }, { what: 'the new version', timeout: 15000 });
    const r = await g.chat({ model: 'inj\r\nX-Injected: yes', messages: [{ role: 'user', content: 'hi' }] });
    assert.notEqual(r.status, 200, r.text);
    assert.equal(r.headers.get('x-injected'), null);
    const info = await g.request('/model/info');
    assert.ok(!info.text.includes('row-inj'), 'the row is not served');
    const st = await g.state();
    assert.match(JSON.stringify(st), /control characters/, 'the skip and its reason are visible');
  } finally {
    await g.stop();
    await pg.stop();
  }
});
