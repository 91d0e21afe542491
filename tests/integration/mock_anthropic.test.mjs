// Self-test of tests/mocks/anthropic_mock.mjs against the official @anthropic-ai/sdk client:
// create, stream (text, tool input JSON and thinking deltas), countTokens and models, scripted
// errors surfacing as the SDK's error classes, the request checks (checks.json), the
// behaviours (times, resets, hangs, stream errors) and the fixtures under
// tests/fixtures/providers/anthropic/messages (MG_UPDATE_FIXTURES=1 rewrites the response
// fixtures from the mock).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { repoRoot, waitFor } from '../lib/harness.mjs';
import { startAnthropicMock } from '../lib/mock_anthropic.mjs';

const KEY = 'sk-ant-mocktest-0001';
const MODEL = 'claude-sonnet-4-5-20250929';
const FX = path.join(repoRoot, 'tests', 'fixtures', 'providers', 'anthropic', 'messages');
const fixture = (rel) => fs.readFileSync(path.join(FX, rel), 'utf8');
const fixtureJson = (rel) => JSON.parse(fixture(rel));

const mock = await startAnthropicMock({ keys: [KEY], log: true });
after(() => mock.stop());

// SDK 1.x sends anthropic-version 2026-10-21 and the key as a bearer token; LiteLLM (and so
// moongate) send 2023-06-01 and x-api-key, which `legacy` imitates.
const client = new Anthropic({ apiKey: KEY, baseURL: mock.base, maxRetries: 0 });
const legacy = new Anthropic({
  apiKey: KEY, baseURL: mock.base, maxRetries: 0,
  defaultHeaders: { 'anthropic-version': '2023-06-01', 'x-api-key': KEY, authorization: null },
});
const HEADERS = { 'x-api-key': KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' };

let tag = 0;
/** A unique model name, so each test scripts its own rules. */
const modelFor = (what) => `claude-test-${what}-${++tag}`;
const hi = (model, extra = {}) => ({ model, max_tokens: 256, messages: [{ role: 'user', content: 'Hello, Claude' }], ...extra });
async function lastEntry(model) {
  return (await mock.log()).filter((e) => e.model === model).at(-1);
}
async function post(p, body, headers = HEADERS) {
  const r = await fetch(mock.base + p, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, text, json };
}
/** Parses an SSE transcript into [{event, data}]. */
function parseSse(text) {
  assert.ok(text.endsWith('\n\n'), 'an SSE transcript ends with a blank line');
  return text.slice(0, -2).split('\n\n').map((frame) => {
    const lines = frame.split('\n');
    assert.equal(lines.length, 2, `one event line and one data line: ${frame}`);
    assert.match(lines[0], /^event: [a-z_]+$/);
    assert.match(lines[1], /^data: /);
    return { event: lines[0].slice(7), data: JSON.parse(lines[1].slice(6)) };
  });
}
const WEATHER = {
  name: 'get_weather',
  description: 'Get the current weather in a given location',
  input_schema: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
};

test('messages.create returns a text message, and the log shows what the SDK sent', async () => {
  const model = modelFor('text');
  const m = await client.messages.create(hi(model));
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.equal(m.model, model);
  assert.match(m.id, /^msg_/);
  assert.deepEqual(m.content, [{ type: 'text', text: `mock reply from ${model}` }]);
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(m.stop_sequence, null);
  assert.ok(Number.isInteger(m.usage.input_tokens) && m.usage.input_tokens > 0);
  assert.equal(m.usage.output_tokens, 4);
  assert.equal(m.usage.cache_creation_input_tokens, 0);
  assert.equal(m.usage.cache_read_input_tokens, 0);
  const e = await lastEntry(model);
  assert.equal(e.method, 'POST');
  assert.equal(e.path, '/v1/messages');
  assert.equal(e.endpoint, 'messages');
  assert.equal(e.headers.authorization, `Bearer ${KEY}`);
  assert.equal(e.headers['anthropic-version'], '2026-10-21');
  assert.deepEqual(e.body.messages, [{ role: 'user', content: 'Hello, Claude' }]);
  assert.equal(e.status, 200);
  assert.equal(e.outcome, 'complete');
  assert.equal(e.check_error, null);
  assert.equal(e.behaviour_source, 'default');
});

test('the 2023-06-01 dialect (x-api-key, sampling parameters) is accepted too', async () => {
  const model = modelFor('legacy');
  const m = await legacy.messages.create(hi(model, { temperature: 0.3, top_p: 0.9, top_k: 40 }));
  assert.equal(m.content[0].text, `mock reply from ${model}`);
  const e = await lastEntry(model);
  assert.equal(e.headers['x-api-key'], KEY);
  assert.equal(e.headers.authorization, undefined);
  assert.equal(e.headers['anthropic-version'], '2023-06-01');
  assert.equal(e.body.temperature, 0.3);
});

test('messages.create with tools: a scripted tool_use, then the tool_result round trip', async () => {
  const model = modelFor('tool');
  const input = { location: 'San Francisco, CA' };
  await mock.script({
    append: true,
    rules: [
      { match: { model }, times: 1, respond: { id: 'call', blocks: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', name: 'get_weather', input }] } },
      { match: { model }, respond: { id: 'answer', content: 'It is 15 degrees.' } },
    ],
  });
  const first = await client.messages.create(hi(model, { tools: [WEATHER], tool_choice: { type: 'auto' } }));
  assert.equal(first.stop_reason, 'tool_use');
  assert.equal(first.content.length, 2);
  const call = first.content[1];
  assert.equal(call.type, 'tool_use');
  assert.equal(call.name, 'get_weather');
  assert.deepEqual(call.input, input);
  assert.match(call.id, /^toolu_/);
  const second = await client.messages.create({
    model, max_tokens: 256, tools: [WEATHER],
    messages: [
      { role: 'user', content: 'Hello, Claude' },
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '15 degrees' }] },
    ],
  });
  assert.deepEqual(second.content, [{ type: 'text', text: 'It is 15 degrees.' }]);
  assert.equal(second.stop_reason, 'end_turn');
  const entries = (await mock.log()).filter((e) => e.model === model);
  assert.deepEqual(entries.map((e) => e.behaviour_id), ['call', 'answer']);
  assert.deepEqual(entries.map((e) => e.rule_index !== null), [true, true]);
});

test('a forced tool_choice makes the default answer a tool_use of that tool', async () => {
  const model = modelFor('forced');
  const m = await client.messages.create(hi(model, { tools: [WEATHER], tool_choice: { type: 'tool', name: 'get_weather' } }));
  assert.equal(m.stop_reason, 'tool_use');
  assert.equal(m.content[0].type, 'tool_use');
  assert.equal(m.content[0].name, 'get_weather');
});

test('messages.stream delivers text deltas in order and a final message', async () => {
  const model = modelFor('stream');
  await mock.script({ append: true, rules: [{ match: { model, stream: true }, respond: { content: 'one two three four five' } }] });
  const s = client.messages.stream(hi(model));
  const deltas = [];
  const events = [];
  s.on('text', (d) => deltas.push(d));
  s.on('streamEvent', (ev) => events.push(ev.type));
  const m = await s.finalMessage();
  assert.deepEqual(deltas, ['one ', 'two ', 'three ', 'four ', 'five']);
  assert.deepEqual(m.content, [{ type: 'text', text: 'one two three four five' }]);
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(m.usage.output_tokens, 5);
  assert.deepEqual(events, ['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta',
    'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
  const e = await lastEntry(model);
  assert.equal(e.stream, true);
  assert.equal(e.events_sent, 11, 'the ping is an SSE event too');
  assert.equal(e.outcome, 'complete');
});

test('messages.stream delivers tool input as several input_json_delta fragments', async () => {
  const model = modelFor('streamtool');
  const input = { location: 'San Francisco, CA', unit: 'celsius', days: [1, 2, 3] };
  await mock.script({
    append: true,
    rules: [{ match: { model }, respond: { blocks: [{ type: 'text', text: 'Let me check.' }, { type: 'tool_use', name: 'get_weather', input }], json_chunks: 5 } }],
  });
  const s = client.messages.stream(hi(model, { tools: [WEATHER] }));
  const fragments = [];
  s.on('inputJson', (partial) => fragments.push(partial));
  const m = await s.finalMessage();
  assert.equal(fragments.length, 5);
  assert.ok(fragments.every((f) => f.length > 0));
  assert.equal(fragments.join(''), JSON.stringify(input));
  assert.equal(m.stop_reason, 'tool_use');
  assert.deepEqual(m.content[1].input, input);
  assert.equal(m.content[0].text, 'Let me check.');
});

test('messages.stream delivers thinking deltas and the signature', async () => {
  const model = modelFor('think');
  const s = client.messages.stream(hi(model, { max_tokens: 4096, thinking: { type: 'enabled', budget_tokens: 2048 } }));
  const thinking = [];
  let signature = null;
  s.on('thinking', (d) => thinking.push(d));
  s.on('signature', (sig) => { signature = sig; });
  const m = await s.finalMessage();
  assert.equal(m.content[0].type, 'thinking');
  assert.equal(thinking.join(''), m.content[0].thinking);
  assert.ok(thinking.length > 1);
  assert.ok(signature && signature === m.content[0].signature);
  assert.equal(m.content[1].type, 'text');
});

test('messages.countTokens and models.list', async () => {
  const model = modelFor('count');
  const n = await client.messages.countTokens({ model, messages: [{ role: 'user', content: 'Hello, Claude' }] });
  assert.ok(Number.isInteger(n.input_tokens) && n.input_tokens > 0);
  await mock.script({ append: true, rules: [{ match: { model, endpoint: 'count_tokens' }, respond: { usage: { input_tokens: 77 } } }] });
  const scripted = await client.messages.countTokens({ model, messages: [{ role: 'user', content: 'Hello, Claude' }] });
  assert.equal(scripted.input_tokens, 77);
  const e = await lastEntry(model);
  assert.equal(e.path, '/v1/messages/count_tokens');
  const ids = [];
  for await (const info of client.models.list()) ids.push(info.id);
  assert.ok(ids.includes(MODEL), ids.join(','));
  const one = await client.models.retrieve(MODEL);
  assert.equal(one.id, MODEL);
  await assert.rejects(client.models.retrieve('claude-no-such-model'), (err) => err instanceof Anthropic.NotFoundError);
});

test('a scripted 529 surfaces as the SDK OverloadedError (status 529, overloaded_error)', async () => {
  const model = modelFor('529');
  await mock.script({ append: true, rules: [{ match: { model }, times: 1, respond: { status: 529 } }] });
  await assert.rejects(client.messages.create(hi(model)), (err) => {
    assert.ok(err instanceof Anthropic.APIError);
    assert.equal(err.status, 529);
    assert.equal(err.constructor.name, 'OverloadedError');
    assert.equal(err.error.error.type, 'overloaded_error');
    assert.match(err.requestID, /^req_mock_\d+$/);
    return true;
  });
  const after529 = await client.messages.create(hi(model));
  assert.equal(after529.content[0].text, `mock reply from ${model}`, 'times: 1 served the error once');
});

test('a scripted 429 surfaces as RateLimitError with retry-after, and maxRetries 0 sends once', async () => {
  const model = modelFor('429');
  await mock.script({ append: true, rules: [{ match: { model }, respond: { status: 429, retry_after: 7 } }] });
  await assert.rejects(client.messages.create(hi(model)), (err) => {
    assert.ok(err instanceof Anthropic.RateLimitError);
    assert.equal(err.status, 429);
    assert.equal(err.headers.get('retry-after'), '7');
    assert.equal(err.error.error.type, 'rate_limit_error');
    return true;
  });
  assert.equal((await mock.log()).filter((e) => e.model === model).length, 1);
});

test('a scripted 401 and a wrong key are AuthenticationErrors', async () => {
  const model = modelFor('401');
  const wrong = new Anthropic({ apiKey: 'sk-ant-wrong-key', baseURL: mock.base, maxRetries: 0 });
  await assert.rejects(wrong.messages.create(hi(model)), (err) => {
    assert.ok(err instanceof Anthropic.AuthenticationError);
    assert.equal(err.error.error.message, 'Invalid bearer token');
    return true;
  });
  const e = await lastEntry(model);
  assert.equal(e.check_error, 'Invalid bearer token');
  assert.equal(e.behaviour_source, 'checks');
});

test('an unknown top-level field is a 400 BadRequestError naming the field', async () => {
  const model = modelFor('extra');
  await assert.rejects(client.messages.create({ ...hi(model), frequency_penalty: 0.5 }), (err) => {
    assert.ok(err instanceof Anthropic.BadRequestError);
    assert.equal(err.status, 400);
    assert.equal(err.error.error.type, 'invalid_request_error');
    assert.equal(err.error.error.message, 'frequency_penalty: Extra inputs are not permitted');
    return true;
  });
});

test('a missing anthropic-version header is a 400 with the envelope and a request-id', async () => {
  const { 'anthropic-version': _v, ...headers } = HEADERS;
  const r = await post('/v1/messages', hi(modelFor('nover')), headers);
  assert.equal(r.status, 400);
  assert.deepEqual(r.json.error, { type: 'invalid_request_error', message: 'anthropic-version: header is required' });
  assert.equal(r.json.type, 'error');
  assert.match(r.headers.get('request-id'), /^req_mock_\d+$/);
  assert.equal(r.json.request_id, r.headers.get('request-id'));
});

test('the request checks answer as checks.json says', async () => {
  const { cases } = fixtureJson('checks.json');
  assert.ok(cases.length > 40);
  for (const c of cases) {
    const body = structuredClone(fixtureJson(`requests/${c.base ?? 'text'}.json`));
    Object.assign(body, c.set || {});
    for (const k of c.unset || []) delete body[k];
    const headers = { ...HEADERS, 'anthropic-version': c.version ?? '2023-06-01' };
    for (const [k, v] of Object.entries(c.headers || {})) {
      if (v === null) delete headers[k];
      else headers[k] = v.replace('<key>', KEY);
    }
    const r = await post(c.endpoint ?? '/v1/messages', c.raw ?? body, headers);
    assert.equal(r.status, c.status, `${c.name}: ${r.text}`);
    assert.ok(r.headers.get('request-id'), `${c.name}: request-id header`);
    if (c.status === 200) continue;
    assert.equal(r.json.type, 'error', c.name);
    assert.equal(r.json.error.type, c.type, c.name);
    if (c.message !== undefined) assert.equal(r.json.error.message, c.message, c.name);
    else assert.ok(r.json.error.message.startsWith(c.message_prefix), `${c.name}: ${r.json.error.message}`);
    assert.equal(r.json.request_id, r.headers.get('request-id'), c.name);
  }
});

test('every request fixture is accepted, and streaming ones stream', async () => {
  const names = fs.readdirSync(path.join(FX, 'requests')).filter((n) => n.endsWith('.json'));
  assert.ok(names.length >= 10);
  for (const n of names) {
    const body = fixtureJson(`requests/${n}`);
    const p = n.startsWith('count_tokens') ? '/v1/messages/count_tokens' : '/v1/messages';
    const r = await post(p, body);
    assert.equal(r.status, 200, `${n}: ${r.text}`);
    if (body.stream) {
      assert.match(r.headers.get('content-type'), /^text\/event-stream/);
      const events = parseSse(r.text);
      assert.equal(events[0].event, 'message_start', n);
      assert.equal(events.at(-1).event, 'message_stop', n);
    }
  }
});

test('the response fixtures are the mock answers the scenarios describe', async () => {
  const { responses } = fixtureJson('scenarios.json');
  const update = process.env.MG_UPDATE_FIXTURES === '1';
  for (const s of responses) {
    await mock.script({ default: s.respond });
    const body = s.request ? fixture(`requests/${s.request}.json`) : undefined;
    const r = await fetch(mock.base + (s.path ?? '/v1/messages'), { method: s.method ?? 'POST', headers: HEADERS, body });
    assert.equal(r.status, s.status ?? 200, s.file);
    let text = await r.text();
    if (s.file.endsWith('.json')) {
      const j = JSON.parse(text);
      if (j.request_id) j.request_id = 'req_011CSHoEeqs5C35K2UUqR7Fy';
      text = `${JSON.stringify(j, null, 2)}\n`;
    }
    if (update) fs.writeFileSync(path.join(FX, 'responses', s.file), text);
    else assert.equal(text, fixture(`responses/${s.file}`), `${s.file} differs from the mock's answer (MG_UPDATE_FIXTURES=1 rewrites it)`);
  }
  await mock.script({ append: true, default: null });
});

test('each SSE fixture is a well-formed stream, and the SDK folds it into its JSON twin', async () => {
  for (const [sseFile, jsonFile] of [['text.sse', 'text.json'], ['tool_use.sse', 'tool_use.json'], ['thinking.sse', 'thinking.json']]) {
    const text = fixture(`responses/${sseFile}`);
    const events = parseSse(text);
    assert.equal(events[0].event, 'message_start');
    assert.equal(events.at(-1).event, 'message_stop');
    for (const e of events) assert.equal(e.data.type, e.event, `${sseFile}: event name and data type agree`);
    const json = {};
    for (const e of events) {
      if (e.event === 'content_block_start') json[e.data.index] = '';
      if (e.data.delta?.type === 'input_json_delta') json[e.data.index] += e.data.delta.partial_json;
    }
    for (const s of Object.values(json)) if (s) JSON.parse(s);
    // serve the transcript verbatim and let the SDK accumulate it
    const model = modelFor('fixture');
    await mock.script({ append: true, rules: [{ match: { model }, respond: { body: text } }] });
    const { parsed_output: parsed, ...m } = await client.messages.stream(hi(model)).finalMessage();
    assert.equal(parsed ?? null, null, 'no output_format, so nothing parsed');
    assert.deepEqual(JSON.parse(JSON.stringify(m)), fixtureJson(`responses/${jsonFile}`), sseFile);
  }
  const err = parseSse(fixture('responses/error_mid_stream.sse'));
  assert.equal(err.at(-1).event, 'error');
  assert.deepEqual(err.at(-1).data, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
});

test('an error event mid-stream fails the SDK stream with the error type', async () => {
  const model = modelFor('sseerr');
  await mock.script({ append: true, rules: [{ match: { model }, respond: { error_event: { type: 'overloaded_error', message: 'Overloaded', after_events: 4 } } }] });
  const s = client.messages.stream(hi(model));
  await assert.rejects(s.finalMessage(), (err) => {
    assert.ok(err instanceof Anthropic.APIError, err.constructor.name);
    assert.match(err.message, /overloaded_error|Overloaded/);
    return true;
  });
  const e = await lastEntry(model);
  assert.equal(e.events_sent, 5, 'four events, then the error event');
  assert.equal(e.outcome, 'complete');
});

test('reset_after_events cuts the stream with a TCP reset', async () => {
  const model = modelFor('reset');
  await mock.script({ append: true, rules: [{ match: { model }, respond: { reset_after_events: 3 } }] });
  await assert.rejects(client.messages.stream(hi(model)).finalMessage(), (err) => err instanceof Anthropic.APIConnectionError);
  const e = await lastEntry(model);
  assert.equal(e.outcome, 'reset');
  assert.equal(e.events_sent, 3);
});

test('reset_before_response sends nothing and resets the connection', async () => {
  const model = modelFor('rst0');
  await mock.script({ append: true, rules: [{ match: { model }, respond: { reset_before_response: true } }] });
  await assert.rejects(client.messages.create(hi(model)), (err) => err instanceof Anthropic.APIConnectionError);
  const e = await lastEntry(model);
  assert.equal(e.outcome, 'reset');
  assert.equal(e.status, null);
  assert.equal(e.sent_bytes, 0);
});

test('a hanging request ends when the client gives up (outcome hang_closed)', async () => {
  const model = modelFor('hang');
  await mock.script({ append: true, rules: [{ match: { model }, respond: { hang: true } }] });
  const ac = new AbortController();
  const p = client.messages.create(hi(model), { signal: ac.signal });
  await waitFor(async () => (await lastEntry(model))?.outcome === 'in_progress', { what: 'the hanging request in the log' });
  ac.abort();
  await assert.rejects(p, (err) => err instanceof Anthropic.APIUserAbortError);
  await waitFor(async () => (await lastEntry(model)).outcome === 'hang_closed', { what: 'outcome hang_closed' });
});

test('checks: false lets a rule serve a request the real API would refuse', async () => {
  const model = modelFor('nocheck');
  await mock.script({ append: true, rules: [{ match: { model }, respond: { checks: false, content: 'served anyway' } }] });
  const r = await post('/v1/messages', { model, messages: [], n: 2 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.content[0].text, 'served anyway');
});

test('a rejected request does not use up a rule', async () => {
  const model = modelFor('keep');
  await mock.script({ append: true, rules: [{ match: { model }, times: 1, respond: { id: 'once', status: 529 } }] });
  const bad = await post('/v1/messages', { ...hi(model), n: 1 });
  assert.equal(bad.status, 400);
  const good = await post('/v1/messages', hi(model));
  assert.equal(good.status, 529);
  const state = await mock.scriptState();
  const rule = state.rules.find((x) => x.rule.match?.model === model);
  assert.deepEqual([rule.remaining, rule.hits], [0, 1]);
});

test('the control API refuses unknown behaviour, match and script fields', async () => {
  for (const body of [
    { rules: [{ respond: { chunkz: 3 } }] },
    { rules: [{ match: { modle: 'x' } }] },
    { rules: [{ respond: { blocks: [{ type: 'image' }] } }] },
    { default: { status: 'oops' } },
    { rulez: [] },
  ]) {
    const r = await fetch(`${mock.base}/__mock/script`, { method: 'POST', body: JSON.stringify(body) });
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal((await r.json()).error.type, 'mock_error');
  }
});

test('the log filters by seq, records query and lowercased headers, and the log file gets each request', async () => {
  const model = modelFor('log');
  const r = await fetch(`${mock.base}/v1/messages?beta=true`, {
    method: 'POST', headers: { ...HEADERS, 'X-Custom-Header': 'Yes' }, body: JSON.stringify(hi(model)),
  });
  assert.equal(r.status, 200);
  const e = await lastEntry(model);
  assert.deepEqual(e.query, { beta: 'true' });
  assert.equal(e.path, '/v1/messages');
  assert.equal(e.headers['x-custom-header'], 'Yes');
  const later = await mock.log(e.seq - 1);
  assert.equal(later[0].seq, e.seq);
  assert.equal((await mock.log(e.seq)).some((x) => x.seq === e.seq), false);
  await waitFor(() => fs.readFileSync(mock.logPath, 'utf8').split('\n').filter(Boolean)
    .map((l) => JSON.parse(l)).some((x) => x.seq === e.seq && x.outcome === 'complete'), { what: 'the log file line' });
});

test('reset clears the log and the rules', async () => {
  await mock.script({ append: true, rules: [{ match: { model: 'x' }, respond: { status: 500 } }] });
  await mock.reset();
  assert.deepEqual(await mock.log(), []);
  assert.deepEqual((await mock.scriptState()).rules, []);
  const model = modelFor('afterreset');
  const m = await client.messages.create(hi(model));
  assert.equal(m.content[0].text, `mock reply from ${model}`);
  assert.equal((await mock.log())[0].seq, 1);
});

test('chunk_interval_ms paces the deltas: the first arrives while the next is still held back', async () => {
  const model = modelFor('paced');
  await mock.script({ append: true, rules: [{ match: { model }, respond: { content: 'a b c', chunk_interval_ms: 60000 } }] });
  const ac = new AbortController();
  const r = await fetch(`${mock.base}/v1/messages`, {
    method: 'POST', headers: HEADERS, body: JSON.stringify(hi(model, { stream: true })), signal: ac.signal,
  });
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let text = '';
  while (!text.includes('text_delta')) {
    const { value, done } = await reader.read();
    assert.equal(done, false, 'the stream ended before its first delta');
    text += dec.decode(value);
  }
  const deltas = parseSse(text).filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text);
  assert.deepEqual(deltas, ['a '], 'one delta, the next one is a minute away');
  const during = await lastEntry(model);
  assert.equal(during.outcome, 'in_progress');
  assert.equal(during.events_sent, 4, 'message_start, content_block_start, ping, the first delta');
  ac.abort();
  await waitFor(async () => (await lastEntry(model)).outcome === 'client_closed', { what: 'outcome client_closed' });
});

test('pings, ping_every, headers and close_after_response shape the stream', async () => {
  const model = modelFor('pings');
  await mock.script({
    append: true,
    rules: [{ match: { model }, respond: { content: 'x y z', pings: 2, ping_every: 1, headers: { 'x-mock': 'yes' }, close_after_response: true } }],
  });
  const r = await post('/v1/messages', hi(model, { stream: true }));
  assert.equal(r.headers.get('x-mock'), 'yes');
  assert.equal(r.headers.get('connection'), 'close');
  const names = parseSse(r.text).map((e) => e.event);
  assert.deepEqual(names, ['message_start', 'content_block_start', 'ping', 'ping',
    'content_block_delta', 'ping', 'content_block_delta', 'ping', 'content_block_delta', 'ping',
    'content_block_stop', 'message_delta', 'message_stop']);
});

test('hang_after_events stalls a stream until the client leaves; latency_ms can be cut short too', async () => {
  const model = modelFor('stall');
  await mock.script({ append: true, rules: [{ match: { model }, respond: { hang_after_events: 2 } }] });
  const ac = new AbortController();
  const s = client.messages.stream(hi(model), { signal: ac.signal });
  const seen = [];
  s.on('streamEvent', (ev) => seen.push(ev.type));
  await waitFor(() => seen.length === 2, { what: 'the two events before the stall' });
  ac.abort();
  await assert.rejects(s.finalMessage(), (err) => err instanceof Anthropic.APIUserAbortError);
  await waitFor(async () => (await lastEntry(model)).outcome === 'hang_closed', { what: 'outcome hang_closed' });
  assert.equal((await lastEntry(model)).events_sent, 2);

  const slow = modelFor('slow');
  await mock.script({ append: true, rules: [{ match: { model: slow }, respond: { latency_ms: 60000 } }] });
  const ac2 = new AbortController();
  const p = client.messages.create(hi(slow), { signal: ac2.signal });
  await waitFor(async () => (await lastEntry(slow))?.outcome === 'in_progress', { what: 'the delayed request in the log' });
  ac2.abort();
  await assert.rejects(p, (err) => err instanceof Anthropic.APIUserAbortError);
  await waitFor(async () => (await lastEntry(slow)).outcome === 'client_closed', { what: 'outcome client_closed' });
  assert.equal((await lastEntry(slow)).status, null);
});

test('events sends a scripted SSE transcript; malformed truncates the JSON', async () => {
  const model = modelFor('raw');
  const ping = 'event: ping\ndata: {"type":"ping"}\n\n';
  await mock.script({
    append: true,
    rules: [
      { match: { model, stream: true }, respond: { events: [{ event: 'message_stop', data: { type: 'message_stop' } }, ping] } },
      { match: { model, stream: false }, respond: { malformed: true } },
    ],
  });
  const r = await post('/v1/messages', hi(model, { stream: true }));
  assert.equal(r.text, `event: message_stop\ndata: {"type":"message_stop"}\n\n${ping}`);
  const bad = await post('/v1/messages', hi(model));
  assert.equal(bad.status, 200);
  assert.equal(bad.json, null, 'the body is not JSON');
  assert.ok(bad.text.startsWith('{"id":"msg_mock_'), bad.text);
});
