// GET /openapi.json against the routes moongate actually serves (SERVER_ROOT_PATH=/llmproxy):
//  - it is a valid OpenAPI 3.1 document (the official schema, through
//    @seriousme/openapi-schema-validator), served without a key;
//  - every documented operation answers something other than 404 and 405, and its
//    documented auth holds (no key: 401 unless public);
//  - every path the dispatch code (core/gateway/*.c) matches is documented: a route
//    added there without its row in core/gateway/mg_openapi.c fails here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { startGateway, waitFor, repoRoot } from '../lib/harness.mjs';

const PREFIX = '/llmproxy';
const MASTER = 'sk-openapi-master-31';
// a value for each path parameter, that names something this config has
const EXAMPLES = { model: 'doc-model', model_id: 'doc-model-id', asset: 'app.js', response_id: 'resp_not-a-moongate-id' };

let gw;
let doc;

before(async () => {
  gw = await startGateway({
    env: { SERVER_ROOT_PATH: PREFIX },
    waitReady: false,
    config: {
      model_list: [{ model_name: 'doc-model', litellm_params: { model: 'openai/gpt-4o', mock_response: 'ok' },
        model_info: { id: 'doc-model-id' } }],
      general_settings: { master_key: MASTER },
    },
  });
  await waitFor(async () => (await fetch(`${gw.url}${PREFIX}/health/readiness`)).status === 200,
    { timeout: 20000, what: 'readiness' });
  const r = await fetch(`${gw.url}${PREFIX}/openapi.json`);
  assert.equal(r.status, 200, 'served without a key');
  assert.match(r.headers.get('content-type'), /^application\/json/);
  doc = await r.json();
});

after(async () => { if (gw) await gw.stop(); });

function operations() {
  const ops = [];
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) ops.push({ path: p, method, op });
  }
  return ops;
}

const fillPath = (p) => p.replace(/\{([^}]+)\}/g, (_, name) => {
  assert.ok(name in EXAMPLES, `no example value for path parameter {${name}}`);
  return encodeURIComponent(EXAMPLES[name]);
});

async function send({ path: p, method }, key) {
  const headers = {};
  if (key) headers.authorization = `Bearer ${key}`;
  let body;
  if (method !== 'get') {
    headers['content-type'] = 'application/json';
    body = '{}';
  }
  return fetch(gw.url + PREFIX + fillPath(p), { method: method.toUpperCase(), headers, body, redirect: 'manual' });
}

test('a valid OpenAPI 3.1 document for this server', async () => {
  const v = new Validator();
  const res = await v.validate(doc);
  assert.equal(v.version, '3.1');
  assert.deepEqual(res.errors ?? [], [], JSON.stringify(res.errors, null, 1));
  assert.equal(res.valid, true);
  assert.deepEqual(doc.servers, [{ url: PREFIX }], 'the server URL is SERVER_ROOT_PATH');
  const ids = operations().map((o) => o.op.operationId);
  assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
  for (const o of operations()) {
    const params = (o.path.match(/\{[^}]+\}/g) || []).map((x) => x.slice(1, -1));
    const declared = (o.op.parameters || []).filter((x) => x.in === 'path').map((x) => x.name);
    assert.deepEqual(declared, params, `${o.method} ${o.path}: its path parameters`);
  }
});

test('every documented operation is served (neither 404 nor 405) and its auth holds', async () => {
  const ops = operations();
  assert.ok(ops.length >= 50, `${ops.length} operations`);
  for (const o of ops) {
    const r = await send(o, MASTER);
    const text = await r.text();
    // a 404 is a route the server does not know (FastAPI's "detail": "Not Found"), unless it
    // names the missing resource (a lookup by id of something that does not exist)
    const routeMiss = r.status === 404 && /"detail"\s*:\s*"Not Found"/.test(text);
    assert.ok(!routeMiss && r.status !== 405, `${o.method.toUpperCase()} ${o.path}: ${r.status} ${text.slice(0, 200)}`);
    const documented = Object.keys(o.op.responses);
    assert.ok(documented.includes(String(r.status)) || documented.includes('default'),
      `${o.method} ${o.path}: ${r.status} is documented (${documented})`);
    const auth = o.op['x-moongate-auth'];
    const anon = await send(o, null);
    await anon.text();
    if (auth === 'none') {
      assert.deepEqual(o.op.security, [], `${o.path}: public means no security requirement`);
      assert.notEqual(anon.status, 401, `${o.method} ${o.path} is public`);
    } else {
      assert.equal(anon.status, 401, `${o.method} ${o.path} needs a key`);
      assert.ok('401' in o.op.responses);
    }
  }
});

// ---- every route the dispatch code matches is in the document ----

// Path literals in the gateway's dispatch code, with how they are used: "exact" when the
// code compares the whole path with it (…_path_is(r, "…") and the known-route lists),
// else a piece of a path (a prefix, a suffix) that some documented path must contain.
function routeLiterals() {
  const dir = path.join(repoRoot, 'core', 'gateway');
  const out = [];
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.c') && n !== 'mg_openapi.c')) {
    const src = fs.readFileSync(path.join(dir, f), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')); // comments out, lines kept
    const lists = [...src.matchAll(/exact\[\]\s*=\s*\{[\s\S]*?\};/g)].map((m) => [m.index, m.index + m[0].length]);
    for (const m of src.matchAll(/"(\/[A-Za-z0-9_./{}:-]*)"/g)) {
      const lineStart = src.lastIndexOf('\n', m.index) + 1;
      const exact = /_path_is\(\s*r\s*,\s*$/.test(src.slice(lineStart, m.index)) ||
        lists.some(([a, b]) => m.index > a && m.index < b);
      const line = src.slice(0, m.index).split('\n').length;
      out.push({ lit: m[1], exact, where: `core/gateway/${f}:${line}` });
    }
  }
  return out;
}

test('every path the dispatch code matches is documented', () => {
  const documented = Object.keys(doc.paths);
  const lits = routeLiterals();
  assert.ok(lits.length > 40, `found the dispatch literals (${lits.length})`);
  assert.ok(lits.some((l) => l.lit === '/moongate/state' && l.exact), 'the scan sees exact matches');
  const missing = [];
  for (const { lit, exact, where } of lits) {
    const ok = exact ? documented.includes(lit) : documented.some((p) => p.includes(lit));
    if (!ok) missing.push(`${where}: "${lit}"${exact ? ' (an exact route)' : ''}`);
  }
  assert.deepEqual(missing, [], 'add a row to core/gateway/mg_openapi.c for each');
  // the scan is not vacuous: a route the table lacks is caught
  assert.ok(!documented.some((p) => p.includes('/no/such/route')));
});

test('/docs is a page of its own (no CDN): it loads only from this gateway', async () => {
  const r = await fetch(`${gw.url}${PREFIX}/docs`);
  assert.equal(r.status, 200);
  const html = await r.text();
  assert.match(r.headers.get('content-security-policy'), /default-src 'none'/);
  for (const m of html.matchAll(/(?:src|href)="([^"]+)"/g)) {
    assert.ok(!/^[a-z]+:|^\/\//i.test(m[1]), `relative URL only: ${m[1]}`);
  }
  const trailing = await fetch(`${gw.url}${PREFIX}/docs/`, { redirect: 'manual' });
  assert.equal(trailing.status, 302);
  assert.equal(trailing.headers.get('location'), '../docs');
});
