// HTTP/1.1 server behaviour on the wire: keep-alive, pipelining, chunked
// request bodies, Expect: 100-continue, size limits, request smuggling
// defences, HTTP/1.0, HEAD and OPTIONS.  Raw sockets throughout, so every
// byte sent and received is under the test's control.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, mockModel } from '../lib/harness.mjs';
import { rawConnect, rawRequest, rawJsonPost, sseData } from './lib_extra.mjs';

const KEY = 'sk-test-master';
const MAX_BODY = 64 * 1024; // general_settings.max_request_size_mb below

const mock = await startMock();
const gw = await startGateway({
  config: {
    model_list: [mockModel(mock, 'm', { model: 'openai/up-m' })],
    general_settings: { master_key: KEY, max_request_size_mb: MAX_BODY / (1024 * 1024) },
  },
});
after(async () => { await gw.stop(); await mock.stop(); });

const chatBody = (content, extra = {}) => ({
  model: 'm', messages: [{ role: 'user', content: 'hi' }], mock: { content }, ...extra,
});

test('keep-alive: several requests are answered on one connection', async () => {
  const c = await rawConnect(gw.port);
  try {
    for (let i = 0; i < 3; i++) {
      await c.send(rawJsonPost('/v1/chat/completions', chatBody(`ka-${i}`), { key: KEY }));
      const r = await c.response();
      assert.equal(r.status, 200, r.body.toString());
      assert.equal(JSON.parse(r.body).choices[0].message.content, `ka-${i}`);
      assert.notEqual((r.headers.connection || '').toLowerCase(), 'close');
    }
    await c.send(rawRequest('GET', '/health/liveliness'));
    const r = await c.response();
    assert.equal(r.status, 200);
    assert.equal(c.ended, false, 'the connection is still open');
    // the mock saw the three exchanges
    const log = await mock.log();
    const ours = log.filter((e) => /^ka-/.test(e.body?.mock?.content));
    assert.equal(ours.length, 3);
  } finally { c.destroy(); }
});

test('pipelined requests are answered in order, even when the first is the slowest', async () => {
  const c = await rawConnect(gw.port);
  try {
    const reqs = Buffer.concat([
      rawJsonPost('/v1/chat/completions', chatBody('first', { mock: { content: 'first', latency_ms: 400 } }),
        { key: KEY, headers: { 'x-litellm-call-id': 'pipe-1' } }),
      rawRequest('GET', '/health/liveliness', { 'x-litellm-call-id': 'pipe-2' }),
      rawJsonPost('/v1/chat/completions', chatBody('third'), { key: KEY, headers: { 'x-litellm-call-id': 'pipe-3' } }),
      rawRequest('GET', '/v1/models', { Authorization: `Bearer ${KEY}`, 'x-litellm-call-id': 'pipe-4' }),
    ]);
    await c.send(reqs); // one write: all four requests arrive together
    const rs = [];
    for (let i = 0; i < 4; i++) rs.push(await c.response());
    assert.deepEqual(rs.map((r) => r.headers['x-litellm-call-id']), ['pipe-1', 'pipe-2', 'pipe-3', 'pipe-4']);
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200]);
    assert.equal(JSON.parse(rs[0].body).choices[0].message.content, 'first');
    assert.equal(JSON.parse(rs[1].body), "I'm alive!");
    assert.equal(JSON.parse(rs[2].body).choices[0].message.content, 'third');
    assert.equal(JSON.parse(rs[3].body).object, 'list');
  } finally { c.destroy(); }
});

test('a long pipeline (200 requests in one write) is answered completely and in order', async () => {
  const N = 200;
  const c = await rawConnect(gw.port);
  try {
    const reqs = [];
    for (let i = 0; i < N; i++) {
      reqs.push(i % 10 === 5
        ? rawJsonPost('/v1/chat/completions', chatBody(`p${i}`), { key: KEY, headers: { 'x-litellm-call-id': `lp-${i}` } })
        : rawRequest('GET', '/health/liveliness', { 'x-litellm-call-id': `lp-${i}` }));
    }
    await c.send(Buffer.concat(reqs));
    for (let i = 0; i < N; i++) {
      const r = await c.response({ timeout: 10000 });
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-litellm-call-id'], `lp-${i}`);
    }
    assert.equal(c.ended, false);
  } finally { c.destroy(); }
});

test('chunked request bodies (with extensions and trailers) are decoded and forwarded', async () => {
  const body = JSON.stringify(chatBody('chunked-ok', { user: 'chunked-user' }));
  const parts = [body.slice(0, 7), body.slice(7, 40), body.slice(40)];
  let wire = '';
  parts.forEach((p, i) => { wire += `${Buffer.byteLength(p).toString(16)}${i === 1 ? ';ext=1' : ''}\r\n${p}\r\n`; });
  wire += '0\r\nX-Trailer: t\r\n\r\n';
  const c = await rawConnect(gw.port);
  try {
    await c.send(rawRequest('POST', '/v1/chat/completions', {
      Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked',
    }));
    // the body arrives in separate writes
    for (const piece of [wire.slice(0, 10), wire.slice(10, 60), wire.slice(60)]) await c.send(piece);
    const r = await c.response();
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(JSON.parse(r.body).choices[0].message.content, 'chunked-ok');
    const log = await mock.log();
    const e = log.find((x) => x.body?.user === 'chunked-user');
    assert.ok(e, 'the upstream received the decoded body');
    assert.deepEqual(e.body.messages, [{ role: 'user', content: 'hi' }]);
    assert.equal(e.headers['transfer-encoding'], undefined, 'not forwarded chunked');
  } finally { c.destroy(); }
});

test('Expect: 100-continue gets an interim 100 before the body is sent', async () => {
  const body = Buffer.from(JSON.stringify(chatBody('after-continue')));
  const c = await rawConnect(gw.port);
  try {
    await c.send(rawRequest('POST', '/v1/chat/completions', {
      Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json',
      'Content-Length': String(body.length), Expect: '100-continue',
    }));
    const interim = await c.response({ timeout: 5000 });
    assert.equal(interim.status, 100);
    assert.equal(c.buf.length, 0, 'nothing but the 100 before the body');
    await c.send(body);
    const r = await c.response();
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(JSON.parse(r.body).choices[0].message.content, 'after-continue');
  } finally { c.destroy(); }
});

test('Expect: 100-continue with a Content-Length over max_request_size_mb: 413, no 100, connection closed', async () => {
  const c = await rawConnect(gw.port);
  try {
    await c.send(rawRequest('POST', '/v1/chat/completions', {
      Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json',
      'Content-Length': String(10 * 1024 * 1024), Expect: '100-continue',
    }));
    const r = await c.response({ timeout: 5000 });
    assert.equal(r.status, 413, 'the first response is the 413 (no interim 100)');
    const j = JSON.parse(r.body);
    assert.equal(j.error.code, '413');
    assert.ok(await c.closed(5000), 'the server closes the connection');
  } finally { c.destroy(); }
});

test('a Content-Length over the limit is refused with 413 without reading the body', async () => {
  const c = await rawConnect(gw.port);
  try {
    await c.send(rawRequest('POST', '/v1/chat/completions', {
      Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json',
      'Content-Length': String(50 * 1024 * 1024),
    }, Buffer.alloc(1024, 0x20)));
    // only 1 KiB of the announced 50 MiB was sent: the answer must not wait for the rest
    const r = await c.response({ timeout: 5000 });
    assert.equal(r.status, 413);
    assert.ok(await c.closed(5000));
  } finally { c.destroy(); }
});

test('a chunked body that grows over the limit is refused with 413', async () => {
  const c = await rawConnect(gw.port);
  try {
    await c.send(rawRequest('POST', '/v1/chat/completions', {
      Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked',
    }));
    const piece = Buffer.alloc(16 * 1024, 0x20);
    let sent = 0;
    // bounded: at most 2x the limit
    while (sent < 2 * MAX_BODY && !c.ended && c.buf.length === 0) {
      await c.send(Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]));
      sent += piece.length;
      await c.changed(20); // give the server a chance to answer before the next piece
    }
    const r = await c.response({ timeout: 5000 });
    assert.equal(r.status, 413);
  } finally { c.destroy(); }
});

test('a head larger than 64 KiB gets 431', async () => {
  const c = await rawConnect(gw.port);
  try {
    await c.send(rawRequest('GET', '/health/liveliness', { 'X-Big': 'a'.repeat(70 * 1024) }));
    const r = await c.response({ timeout: 5000 });
    assert.equal(r.status, 431);
    assert.ok(await c.closed(5000));
  } finally { c.destroy(); }
});

test('a head that never ends gets 431 once it passes 64 KiB', async () => {
  const c = await rawConnect(gw.port);
  try {
    await c.send('GET /health/liveliness HTTP/1.1\r\nHost: x\r\n');
    for (let i = 0; i < 20 && !c.ended && c.buf.length === 0; i++) {
      // the server may close while we still write: the 431 must still arrive
      try { await c.send(`X-H${i}: ${'b'.repeat(8 * 1024)}\r\n`); } catch { break; }
    }
    const r = await c.response({ timeout: 5000 });
    assert.equal(r.status, 431);
  } finally { c.destroy(); }
});

test('a head just under 64 KiB is accepted', async () => {
  const c = await rawConnect(gw.port);
  try {
    await c.send(rawRequest('GET', '/health/liveliness', { 'X-Big': 'a'.repeat(60 * 1024) }));
    const r = await c.response({ timeout: 5000 });
    assert.equal(r.status, 200);
  } finally { c.destroy(); }
});

for (const [name, order] of [['Content-Length then Transfer-Encoding', 0], ['Transfer-Encoding then Content-Length', 1]]) {
  test(`smuggling: ${name} is refused with 400 and the connection closes`, async () => {
    const smuggled = rawRequest('GET', '/health/liveliness', { 'x-litellm-call-id': 'smuggled' });
    const inner = Buffer.concat([Buffer.from('0\r\n\r\n'), smuggled]);
    const hs = [['Authorization', `Bearer ${KEY}`], ['Content-Type', 'application/json']];
    const cl = ['Content-Length', String(inner.length)];
    const te = ['Transfer-Encoding', 'chunked'];
    hs.push(...(order === 0 ? [cl, te] : [te, cl]));
    const c = await rawConnect(gw.port);
    try {
      await c.send(rawRequest('POST', '/v1/chat/completions', hs, inner));
      const r = await c.response({ timeout: 5000 });
      assert.equal(r.status, 400);
      assert.ok(await c.closed(5000), 'closed after the 400');
      assert.ok(!c.buf.toString('latin1').includes('HTTP/1.1'), 'no second (smuggled) response');
    } finally { c.destroy(); }
  });
}

test('smuggling: two Content-Length headers are refused with 400', async () => {
  for (const values of [['5', '5'], ['5', '40']]) {
    const c = await rawConnect(gw.port);
    try {
      await c.send(rawRequest('POST', '/v1/chat/completions', [
        ['Authorization', `Bearer ${KEY}`], ['Content-Length', values[0]], ['Content-Length', values[1]],
      ], '{"a":1}'));
      const r = await c.response({ timeout: 5000 });
      assert.equal(r.status, 400, `Content-Length ${values}`);
      assert.ok(await c.closed(5000));
    } finally { c.destroy(); }
  }
});

test('smuggling: malformed framing headers are refused', async () => {
  const cases = [
    [['Content-Length', '5, 5']], // list value
    [['Content-Length', '+5']],
    [['Content-Length ', '5']], // whitespace before the colon
    [['Transfer-Encoding', 'chunked'], ['Transfer-Encoding', 'chunked']],
  ];
  for (const hs of cases) {
    const c = await rawConnect(gw.port);
    try {
      await c.send(rawRequest('POST', '/v1/chat/completions', [['Authorization', `Bearer ${KEY}`], ...hs], '{"a":1}'));
      const r = await c.response({ timeout: 5000 });
      assert.equal(r.status, 400, JSON.stringify(hs));
      assert.ok(await c.closed(5000));
    } finally { c.destroy(); }
  }
  // a transfer coding other than chunked is not understood
  const c = await rawConnect(gw.port);
  try {
    await c.send(rawRequest('POST', '/v1/chat/completions', { 'Transfer-Encoding': 'gzip, chunked' }, '0\r\n\r\n'));
    const r = await c.response({ timeout: 5000 });
    assert.ok(r.status === 501 || r.status === 400, `status ${r.status}`);
    assert.ok(await c.closed(5000));
  } finally { c.destroy(); }
});

test('HTTP/1.0 without keep-alive: answered, then the connection closes', async () => {
  const c = await rawConnect(gw.port);
  try {
    await c.send(rawJsonPost('/v1/chat/completions', chatBody('ten'), { key: KEY, version: '1.0' }));
    const r = await c.response();
    assert.equal(r.status, 200);
    assert.equal(r.chunked, false);
    assert.equal(JSON.parse(r.body).choices[0].message.content, 'ten');
    assert.ok(await c.closed(5000), 'HTTP/1.0 defaults to close');
  } finally { c.destroy(); }
});

test('HTTP/1.0 with Connection: keep-alive stays open', async () => {
  const c = await rawConnect(gw.port);
  try {
    for (let i = 0; i < 2; i++) {
      await c.send(rawRequest('GET', '/health/liveliness', { Connection: 'keep-alive' }, null, '1.0'));
      const r = await c.response();
      assert.equal(r.status, 200);
      assert.equal((r.headers.connection || '').toLowerCase(), 'keep-alive');
    }
    assert.equal(c.ended, false);
  } finally { c.destroy(); }
});

test('HTTP/1.0 streaming: no chunked framing, the body ends with the connection', async () => {
  const c = await rawConnect(gw.port);
  try {
    await c.send(rawJsonPost('/v1/chat/completions', chatBody('a b c', { stream: true }), { key: KEY, version: '1.0' }));
    assert.ok(await c.closed(10000));
    const r = await c.response();
    assert.equal(r.status, 200);
    assert.equal(r.headers['transfer-encoding'], undefined);
    const frames = sseData(r.body.toString());
    assert.equal(frames[frames.length - 1], '[DONE]');
  } finally { c.destroy(); }
});

test('HEAD: the headers of GET, no body, and the connection stays usable', async () => {
  const c = await rawConnect(gw.port);
  try {
    await c.send(rawRequest('GET', '/health/liveliness'));
    const g = await c.response();
    await c.send(rawRequest('HEAD', '/health/liveliness'));
    const h = await c.response({ head: true });
    assert.equal(h.status, 200);
    assert.equal(h.headers['content-length'], g.headers['content-length']);
    assert.equal(h.headers['content-type'], g.headers['content-type']);
    // no body bytes followed: the next response starts right at the status line
    await c.send(rawRequest('GET', '/health/readiness'));
    const n = await c.response();
    assert.equal(n.status, 200);
    assert.equal(JSON.parse(n.body).status, 'healthy');
  } finally { c.destroy(); }
});

test('OPTIONS (CORS preflight) is answered 200 without a key', async () => {
  const c = await rawConnect(gw.port);
  try {
    for (const p of ['/v1/chat/completions', '/health/liveliness', '/health/readiness']) {
      await c.send(rawRequest('OPTIONS', p, {
        Origin: 'http://example.test', 'Access-Control-Request-Method': 'POST',
      }));
      const r = await c.response();
      assert.equal(r.status, 200, p);
      assert.ok(r.headers['access-control-allow-methods'], `${p}: access-control-allow-methods`);
      assert.match(r.headers.allow || '', /OPTIONS/);
    }
  } finally { c.destroy(); }
});

test('a malformed request line gets 400 and close', async () => {
  const c = await rawConnect(gw.port);
  try {
    await c.send('GARBAGE\r\n\r\n');
    const r = await c.response({ timeout: 5000 });
    assert.equal(r.status, 400);
    assert.ok(await c.closed(5000));
  } finally { c.destroy(); }
});

test('an idle keep-alive connection is closed after keepalive_timeout', async () => {
  const g = await startGateway({
    config: { model_list: [mockModel(mock, 'm')], moongate_settings: { keepalive_timeout_seconds: 1 } },
  });
  const c = await rawConnect(g.port);
  try {
    await c.send(rawRequest('GET', '/health/liveliness'));
    assert.equal((await c.response()).status, 200);
    assert.ok(await c.closed(5000), 'closed by the server once idle');
    assert.equal(c.buf.length, 0, 'without sending anything');
  } finally { c.destroy(); await g.stop(); }
});
