// Issue 15 item 1, the ways in that hostile_fields/hostile_heads do not cover: "Every field
// from config, admin API, store or policy that can reach a header or request line is
// validated at the boundary (refused with 4xx naming the field, or encoded), and the header
// writer itself refuses CR, LF and NUL as a second line of defence."
//   - config: a credential_list value (merged into the deployments that name it), a
//     model_group_alias name, the api_base and organization of a config deployment;
//   - admin API: PATCH /model/{id}/update (hostile_fields covers POST /model/update only);
//   - policy output: a wildcard pattern's capture (the client's model name) substituted into
//     litellm_params.model, which azure/ puts in the URL path; a filter policy's decline
//     reason, which the client gets as its error message.
// Each case checks the raw response head (no injected header line), the upstream's request
// log (no injected header, no raw CR/LF in the path), and that the gateway still serves.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startMock, startGateway, mockModel, moongateBin, tmpDir } from '../lib/harness.mjs';
import { rawConnect, rawJsonPost } from './lib_extra.mjs';
import { assertCleanStop } from './lib_rotation.mjs';

const KEY = 'sk-test-master-hostile-paths';
const INJ = ['a\r\nX-Injected: yes', 'a\nX-Injected: yes', 'a\rX-Injected: yes'];

const mock = await startMock();
const gw = await startGateway({
  config: {
    model_list: [
      mockModel(mock, 'plain', { model: 'openai/up-plain' }),
      { model_name: 'openai/*', litellm_params: { model: 'openai/*', api_base: mock.url, api_key: 'sk-upstream-test' } },
      { model_name: 'azure/*', litellm_params: { model: 'azure/*', api_base: mock.base, api_key: 'sk-upstream-azure', api_version: '2024-06-01' } },
    ],
    general_settings: { master_key: KEY },
  },
});
after(async () => { await gw.stop(); await mock.stop(); });

/** One request on a raw socket: the head exactly as sent. */
async function raw(target, body) {
  const c = await rawConnect(gw.port);
  try {
    await c.send(rawJsonPost(target, body, { key: KEY }));
    const r = await c.response({ timeout: 10000 });
    return r;
  } finally { c.destroy(); }
}

/** The response head has no injected header line and the upstream got none. */
async function assertNotInjected(r, since) {
  assert.equal(r.headers['x-injected'], undefined, 'no X-Injected header in the response head');
  assert.ok(!r.headerList.some(([k]) => k.includes('injected')), `head: ${JSON.stringify(r.headerList)}`);
  const log = await mock.log(since);
  for (const e of log) {
    assert.equal(e.headers?.['x-injected'], undefined, `the upstream got an injected header: ${JSON.stringify(e.headers)}`);
    assert.ok(!/[\r\n]/.test(e.path || ''), `a raw CR/LF in the upstream path: ${JSON.stringify(e.path)}`);
  }
}
const lastSeq = async () => (await mock.log()).reduce((m, e) => Math.max(m, e.seq), 0);

async function stillServes() {
  const ok = await gw.chat({ model: 'plain', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(ok.status, 200, ok.text);
}

// ---- config ----

function validate(config) {
  const d = tmpDir('mg-hp-');
  const cfg = path.join(d, 'config.yaml');
  fs.writeFileSync(cfg, JSON.stringify(config, null, 2));
  const r = spawnSync(moongateBin, ['--config', cfg, '--validate_config'], { encoding: 'utf8', timeout: 20000 });
  return { code: r.status, text: r.stdout + r.stderr };
}

const CRED_BUG = {};

for (const field of ['api_key', 'api_base', 'organization']) {
  test(`a CR/LF in a credential_list ${field} is refused at load, naming it`, CRED_BUG, () => {
    const value = field === 'api_base' ? `${mock.url}\r\nX-Up: 1` : 'k\r\nX-Injected: yes';
    const r = validate({
      credential_list: [{ credential_name: 'c1', credential_values: { [field]: value } }],
      model_list: [{ model_name: 'm', litellm_params: { model: 'openai/x', api_base: mock.url, litellm_credential_name: 'c1' } }],
    });
    assert.equal(r.code, 1, r.text);
    assert.match(r.text, new RegExp(`${field}.*control characters|control characters.*${field}`), r.text);
    assert.ok(!r.text.includes('X-Injected') && !r.text.includes('X-Up'), 'the value is not quoted back');
  });
}

test('a CR/LF credential_list api_key that got in still never reaches the upstream (the header writer refuses it)',
  async () => {
  const g = await startGateway({
    config: {
      credential_list: [{ credential_name: 'c1', credential_values: { api_key: 'sk-cred-hostile-0123456789\r\nX-Injected: yes' } }],
      model_list: [{ model_name: 'credm', litellm_params: { model: 'openai/up-cred', api_base: mock.url, litellm_credential_name: 'c1' } }],
      router_settings: { num_retries: 0 },
      general_settings: { master_key: KEY },
    },
  }).catch((e) => {
    // refused at start (the first line of defence): nothing more to see
    assert.match(e.message, /control characters/);
    return null;
  });
  if (g === null) return;
  try {
    const since = await lastSeq();
    const c = await rawConnect(g.port);
    try {
      await c.send(rawJsonPost('/v1/chat/completions', { model: 'credm', messages: [{ role: 'user', content: 'hi' }] }, { key: KEY }));
      const r = await c.response({ timeout: 10000 });
      assert.equal(r.status, 500, r.body.toString());
      assert.match(JSON.parse(r.body).error.message, /refusing to send an upstream request head with a raw CR\/LF\/NUL in header "authorization"/);
      assert.ok(!r.body.toString().includes('0123456789'), 'the key is not quoted');
      await assertNotInjected(r, since);
      assert.deepEqual(await mock.log(since), [], 'the upstream received nothing');
    } finally { c.destroy(); }
    assert.ok(!g.output().stderr.includes('0123456789'), 'the log does not quote the key');
  } finally {
    await g.stop();
  }
});

for (const field of ['api_base', 'organization', 'api_version']) {
  test(`a CR/LF in a config deployment's ${field} is refused at load, naming it`, () => {
    const lp = { model: field === 'api_version' ? 'azure/x' : 'openai/x', api_base: mock.url, [field]: field === 'api_base' ? `${mock.url}\r\nX-Up: 1` : 'v\r\nX-Injected: yes' };
    const r = validate({ model_list: [{ model_name: 'm', litellm_params: lp }] });
    assert.equal(r.code, 1, r.text);
    assert.match(r.text, new RegExp(`${field} must not contain control characters`), r.text);
  });
}

test('a model_group_alias name with CR/LF never reaches a response head', async () => {
  const name = 'alias\r\nX-Injected: yes';
  const r = validate({
    model_list: [{ model_name: 'm', litellm_params: { model: 'openai/x', api_base: mock.url } }],
    router_settings: { model_group_alias: { [name]: 'm' } },
  });
  if (r.code === 1) {
    assert.match(r.text, /model_group_alias.*control characters|control characters/, r.text);
    return;
  }
  // accepted: a request by that name must not put it in a head
  const g = await startGateway({
    config: {
      model_list: [mockModel(mock, 'm', { model: 'openai/up-alias' })],
      router_settings: { model_group_alias: { [name]: 'm' } },
      general_settings: { master_key: KEY },
    },
  });
  try {
    const since = await lastSeq();
    const c = await rawConnect(g.port);
    try {
      await c.send(rawJsonPost('/v1/chat/completions', { model: name, messages: [{ role: 'user', content: 'hi' }] }, { key: KEY }));
      const res = await c.response({ timeout: 10000 });
      await assertNotInjected(res, since);
    } finally { c.destroy(); }
  } finally {
    await g.stop();
  }
});

// ---- PATCH /model/{id}/update ----

test('PATCH /model/{id}/update refuses CR/LF/NUL in every header field, naming it, and changes nothing', async () => {
  const add = await gw.request('/model/new', {
    method: 'POST',
    body: { model_name: 'patchme', litellm_params: { model: 'openai/up-patch', api_base: mock.url, api_key: 'sk-upstream-patch-1' }, model_info: { id: 'patch-1' } },
  });
  assert.equal(add.status, 200, add.text);
  const fields = [
    ['api_key', (v) => ({ litellm_params: { api_key: v } })],
    ['api_base', (v) => ({ litellm_params: { api_base: `${mock.url}${v}` } })],
    ['organization', (v) => ({ litellm_params: { organization: v } })],
    ['model', (v) => ({ litellm_params: { model: `openai/up${v}` } })],
    ['model_name', (v) => ({ model_name: `patch${v}` })],
    ['extra_headers', (v) => ({ litellm_params: { extra_headers: { 'x-a': v } } })],
  ];
  const bad = [];
  for (const [field, make] of fields) {
    for (const inj of [...INJ, 'a\u0000b']) {
      const r = await gw.request('/model/patch-1/update', { method: 'PATCH', body: make(inj) });
      if (!(r.status === 400 || r.status === 422)) bad.push(`${field} ${JSON.stringify(inj)}: ${r.status} ${r.text}`);
      else if (!inj.includes('\u0000') && !r.text.includes(field)) bad.push(`${field}: the error does not name it: ${r.text}`);
      else if (r.text.includes('X-Injected')) bad.push(`${field}: the value is quoted back: ${r.text}`);
    }
  }
  assert.deepEqual(bad, []);
  const info = await gw.request('/model/info?litellm_model_id=patch-1');
  assert.equal(info.status, 200, info.text);
  assert.ok(!/Injected|X-Up/.test(info.text), info.text);
  assert.equal(info.json.data[0].model_name, 'patchme');
  const since = await lastSeq();
  const r = await raw('/v1/chat/completions', { model: 'patchme', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(r.status, 200, r.body.toString());
  await assertNotInjected(r, since);
  const up = (await mock.log(since)).find((e) => e.model === 'up-patch');
  assert.equal(up?.headers.authorization, 'Bearer sk-upstream-patch-1', 'the stored key is unchanged');
});

// ---- policy output ----

for (const [prov, stream] of [['openai', false], ['openai', true], ['azure', false]]) {
  for (const inj of INJ) {
    test(`a wildcard capture with ${JSON.stringify(inj)} (${prov}/*, ${stream ? 'stream' : 'complete'}) never reaches a head or the request line`, async () => {
      const since = await lastSeq();
      const r = await raw('/v1/chat/completions', { model: `${prov}/gpt${inj}`, messages: [{ role: 'user', content: 'hi' }], stream });
      assert.ok(r.status < 500 || /refus/.test(r.body.toString()), `${r.status} ${r.body}`);
      await assertNotInjected(r, since);
      if (r.status === 200) {
        // served: the name went upstream in the JSON body (openai) or percent-encoded in the path (azure)
        const e = (await mock.log(since))[0];
        assert.ok(e, 'the upstream got it');
        if (prov === 'azure') assert.match(e.path, /%0[DA]/i, `the capture is encoded in the path: ${e.path}`);
      }
      await stillServes();
    });
  }
}

test("a filter policy's decline reason with CR/LF reaches the client as an escaped error message only", async () => {
  const source = [
    'local _M = { name = "declines", kind = "filter", version = 1 }',
    'function _M.select(ctx, candidates, conf)',
    '    if ctx.model == "plain2" then return {}, "no\\r\\nX-Injected: yes" end',
    '    return candidates',
    'end',
    'return _M',
  ].join('\n');
  const g = await startGateway({
    config: {
      model_list: [mockModel(mock, 'plain2', { model: 'openai/up-plain2' }), mockModel(mock, 'plain3', { model: 'openai/up-plain3' })],
      general_settings: { master_key: KEY },
    },
  });
  try {
    const u = await g.request('/policy/update', { method: 'POST', body: { kind: 'filter', source } });
    assert.equal(u.status, 200, u.text);
    for (const stream of [false, true]) {
      const since = await lastSeq();
      const c = await rawConnect(g.port);
      try {
        await c.send(rawJsonPost('/v1/chat/completions', { model: 'plain2', messages: [{ role: 'user', content: 'hi' }], stream }, { key: KEY }));
        const r = await c.response({ timeout: 10000 });
        assert.ok(r.status >= 400 && r.status < 500, `${r.status} ${r.body}`);
        await assertNotInjected(r, since);
        assert.match(JSON.parse(r.body.toString()).error.message, /no\r\nX-Injected: yes/, 'the reason, JSON-escaped in the body');
        assert.deepEqual(await mock.log(since), [], 'nothing forwarded');
      } finally { c.destroy(); }
    }
    const ok = await g.chat({ model: 'plain3', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(ok.status, 200, ok.text);
  } finally {
    await g.stop();
  }
});

test('the gateway stops cleanly after all that (exit 0, no sanitizer report)', async () => {
  await assertCleanStop(gw);
});
