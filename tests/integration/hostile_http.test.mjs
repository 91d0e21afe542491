// Hostile HTTP framing and JSON nesting (issue 15, item 6), on the wire with raw
// sockets.  Each case is a place where two HTTP parsers can disagree about
// where a message ends, so the gateway refuses it (400, or 431 for too many
// fields) and closes the connection, and nothing reaches the upstream:
//   - more than 100 header fields;
//   - a bare LF (or CR) as a line end in the request head;
//   - LF-only line ends in a chunked body;
//   - a chunk size followed by whitespace and no extension ("5 ");
//   - Transfer-Encoding in an HTTP/1.0 request;
// and a JSON body nested deeper than 200 levels is a 400 that says so.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, mockModel } from '../lib/harness.mjs';
import { rawConnect, rawRequest, rawJsonPost } from './lib_extra.mjs';

const KEY = 'sk-test-master';

const mock = await startMock();
const gw = await startGateway({
  config: {
    model_list: [mockModel(mock, 'm', { model: 'openai/up-m' })],
    general_settings: { master_key: KEY },
  },
});
after(async () => { await gw.stop(); await mock.stop(); });

const chatBody = (content, extra = {}) => ({
  model: 'm', messages: [{ role: 'user', content: 'hi' }], mock: { content }, ...extra,
});

/**
 * Sends raw bytes on a fresh connection; returns the response and (for a refusal,
 * refused: true) whether the server then closed the connection.
 */
async function exchange(bytes, { refused = true } = {}) {
  const c = await rawConnect(gw.port);
  try {
    await c.send(bytes);
    const r = await c.response({ timeout: 5000 });
    const closed = refused ? await c.closed(5000) : null;
    const rest = c.buf.toString('latin1');
    return { r, closed, rest };
  } finally { c.destroy(); }
}

/** The mock's log entries whose mock content is tag. */
async function upstreamSaw(tag) {
  return (await mock.log()).filter((e) => e.body?.mock?.content === tag);
}

/** A chunked chat request whose body is framed by frame(chunks) (chunks: strings). */
function chunkedChat(tag, frame) {
  const body = JSON.stringify(chatBody(tag));
  const parts = [body.slice(0, 10), body.slice(10)];
  const head = rawRequest('POST', '/v1/chat/completions', {
    Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked',
  });
  return Buffer.concat([head, Buffer.from(frame(parts), 'latin1')]);
}

const hex = (s) => Buffer.byteLength(s).toString(16);

test('100 header fields are served; the 101st gets 431 and the connection closes', async () => {
  const fields = (n) => Array.from({ length: n - 2 }, (_, i) => [`X-F${i}`, 'v']);
  // Host and Authorization count too
  const ok = await exchange(rawRequest('GET', '/v1/models', [['Authorization', `Bearer ${KEY}`], ...fields(100)]),
    { refused: false });
  assert.equal(ok.r.status, 200, ok.r.body.toString());
  const bad = await exchange(rawRequest('GET', '/v1/models', [['Authorization', `Bearer ${KEY}`], ...fields(101)]));
  assert.equal(bad.r.status, 431);
  assert.match(JSON.parse(bad.r.body).error.message, /too many header fields \(more than 100\)/);
  assert.ok(bad.closed, 'closed after the 431');
});

test('a bare LF in the request head is refused with 400, and no second request hides behind it', async () => {
  const cases = [
    'GET /health/liveliness HTTP/1.1\nHost: x\n\n',
    'GET /health/liveliness HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n',
    // a front proxy that takes only CRLF as a line end sees one header "X-A: 1\nGET ..."
    'GET /health/liveliness HTTP/1.1\r\nX-A: 1\nContent-Length: 0\r\nHost: x\r\n\r\n',
  ];
  for (const wire of cases) {
    const { r, closed, rest } = await exchange(Buffer.from(wire, 'latin1'));
    assert.equal(r.status, 400, JSON.stringify(wire));
    assert.match(JSON.parse(r.body).error.message, /bare LF/);
    assert.ok(closed, 'closed after the 400');
    assert.ok(!rest.includes('HTTP/1.1'), 'no second response');
  }
  // a bare CR as well
  const { r } = await exchange(Buffer.from('GET /health/liveliness HTTP/1.1\r\nHost: x\rX-A: 1\r\n\r\n', 'latin1'));
  assert.equal(r.status, 400);
  assert.match(JSON.parse(r.body).error.message, /bare CR/);
});

test('a chunked body with LF-only line ends is refused with 400 and never forwarded', async () => {
  const frames = {
    'size line': (p) => p.map((x) => `${hex(x)}\n${x}\r\n`).join('') + '0\r\n\r\n',
    'after data': (p) => p.map((x) => `${hex(x)}\r\n${x}\n`).join('') + '0\r\n\r\n',
    'last chunk': (p) => p.map((x) => `${hex(x)}\r\n${x}\r\n`).join('') + '0\n\r\n',
    'final line': (p) => p.map((x) => `${hex(x)}\r\n${x}\r\n`).join('') + '0\r\n\n',
    trailer: (p) => p.map((x) => `${hex(x)}\r\n${x}\r\n`).join('') + '0\r\nX-T: 1\n\r\n',
  };
  for (const [where, frame] of Object.entries(frames)) {
    const tag = `lf-only-${where}`;
    const { r, closed } = await exchange(chunkedChat(tag, frame));
    assert.equal(r.status, 400, `${where}: ${r.body}`);
    assert.ok(closed, `${where}: closed after the 400`);
    assert.deepEqual(await upstreamSaw(tag), [], `${where}: nothing forwarded`);
  }
  // the same body with CRLF everywhere is served (the framing above is the only difference)
  const tag = 'crlf-chunks';
  const { r } = await exchange(chunkedChat(tag,
    (p) => p.map((x) => `${hex(x)}\r\n${x}\r\n`).join('') + '0\r\nX-T: 1\r\n\r\n'), { refused: false });
  assert.equal(r.status, 200, r.body.toString());
  assert.equal((await upstreamSaw(tag)).length, 1);
});

test('a chunk size followed by whitespace and no extension ("5 ") is refused with 400', async () => {
  for (const [name, sep] of [['space', ' '], ['tab', '\t'], ['garbage', ' x'], ['spaces', '   ']]) {
    const tag = `size-ws-${name}`;
    const { r, closed } = await exchange(chunkedChat(tag,
      (p) => p.map((x) => `${hex(x)}${sep}\r\n${x}\r\n`).join('') + '0\r\n\r\n'));
    assert.equal(r.status, 400, `${name}: ${r.body}`);
    assert.ok(closed, `${name}: closed after the 400`);
    assert.deepEqual(await upstreamSaw(tag), [], `${name}: nothing forwarded`);
  }
  // whitespace before an extension is what RFC 9112 allows (BWS ";"): served
  const tag = 'size-ws-ext';
  const { r } = await exchange(chunkedChat(tag,
    (p) => p.map((x) => `${hex(x)} ;e=1\r\n${x}\r\n`).join('') + '0\r\n\r\n'), { refused: false });
  assert.equal(r.status, 200, r.body.toString());
  assert.equal((await upstreamSaw(tag)).length, 1);
});

test('HTTP/1.0 with Transfer-Encoding is refused with 400 and the connection closes', async () => {
  const tag = 'http10-te';
  const body = JSON.stringify(chatBody(tag));
  const wire = Buffer.concat([
    rawRequest('POST', '/v1/chat/completions', {
      Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked',
      Connection: 'keep-alive',
    }, null, '1.0'),
    Buffer.from(`${hex(body)}\r\n${body}\r\n0\r\n\r\n`),
  ]);
  const { r, closed, rest } = await exchange(wire);
  assert.equal(r.status, 400, r.body.toString());
  assert.match(JSON.parse(r.body).error.message, /Transfer-Encoding in an HTTP\/1\.0 request/);
  assert.ok(closed, 'closed after the 400');
  assert.ok(!rest.includes('HTTP/1.'), 'the body was not read as a second request');
  assert.deepEqual(await upstreamSaw(tag), []);
  // HTTP/1.0 with Content-Length is served
  const ok = await exchange(rawJsonPost('/v1/chat/completions', chatBody('http10-cl'), { key: KEY, version: '1.0' }),
    { refused: false });
  assert.equal(ok.r.status, 200, ok.r.body.toString());
});

test('JSON nested deeper than 200 levels is refused with 400 naming the limit; 200 levels are forwarded', async () => {
  // the body object is level 1, "x" opens levels 2..n
  const nested = (levels) => `${'['.repeat(levels - 1)}1${']'.repeat(levels - 1)}`;
  const wire = (tag, levels) => {
    const b = JSON.stringify(chatBody(tag));
    return `${b.slice(0, -1)},"x":${nested(levels)}}`;
  };
  const ok = await gw.chat(wire('depth-200', 200), { headers: { 'content-type': 'application/json' } });
  assert.equal(ok.status, 200, ok.text);
  assert.equal((await upstreamSaw('depth-200')).length, 1);

  const body = wire('depth-201', 201);
  const bad = await gw.chat(body, { headers: { 'content-type': 'application/json' } });
  assert.equal(bad.status, 400, bad.text);
  const offset = body.indexOf('['.repeat(200)) + 199; // the bracket that opens level 201
  assert.equal(bad.json.error.message,
    `Invalid JSON payload: Nesting deeper than 200 levels: line 1 column ${offset + 1} (char ${offset})`);
  assert.deepEqual(await upstreamSaw('depth-201'), [], 'nothing forwarded');
});
