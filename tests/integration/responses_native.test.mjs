// The Responses API passed through natively to OpenAI-wire deployments (tests/mocks/
// mg_mock_provider serves /v1/responses with stored responses), with the official `openai`
// client: create, stream (the upstream's response.* events relayed as they come), retrieve,
// input_items, delete, cancel; the ids the client sees name the deployment the way LiteLLM
// encodes them; previous_response_id sticks to the deployment that made the response among
// several (the others would answer "Previous response ... not found"), whatever the routing
// policy picks; a deployment deleted since is a clear 404, never another deployment.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startGateway } from '../lib/harness.mjs';
import { assertCleanStop } from './lib_rotation.mjs';

const MASTER = 'sk-resp-native';
const mocks = await Promise.all([startMock(), startMock(), startMock()]);
const dep = (m, i) => ({
  model_name: 'gpt', litellm_params: { model: 'openai/gpt-4o', api_base: m.url, api_key: `sk-up-${i}` },
  model_info: { id: `gpt-dep-${i}` },
});
const config = (n) => ({
  general_settings: { master_key: MASTER },
  router_settings: { routing_strategy: 'simple-shuffle', num_retries: 0 },
  model_list: mocks.slice(0, n).map(dep),
});
const gw = await startGateway({ config: config(3) });
const client = new OpenAI({ apiKey: MASTER, baseURL: `${gw.url}/v1`, maxRetries: 0 });
let stopped = false;
after(async () => {
  if (!stopped) await gw.stop();
  await Promise.all(mocks.map((m) => m.stop()));
});

/** Decodes an id moongate returned: {provider, model_id, response_id}. */
function decode(id) {
  assert.match(id, /^resp_/);
  const s = Buffer.from(id.slice(5), 'base64').toString('utf8');
  const m = /^litellm:custom_llm_provider:([^;]*);model_id:([^;]*);response_id:(.*)$/.exec(s);
  assert.ok(m, `not a LiteLLM-encoded id: ${s}`);
  return { provider: m[1], model_id: m[2], response_id: m[3] };
}

/** Which mock (index) saw a request since the marks, and what it got. */
async function whoGot(marks, pred = () => true) {
  const hits = [];
  for (let i = 0; i < mocks.length; i++) {
    for (const e of await mocks[i].log(marks[i])) if (pred(e)) hits.push({ i, e });
  }
  return hits;
}
const marks = async () => Promise.all(mocks.map(async (m) => {
  const l = await m.log(0);
  return l.length ? l[l.length - 1].seq : 0;
}));

test('create: the upstream object, its id naming the deployment, model as requested', async () => {
  const m0 = await marks();
  const r = await client.responses.create({ model: 'gpt', input: 'Say hi', instructions: 'be brief' });
  assert.equal(r.object, 'response');
  assert.equal(r.status, 'completed');
  assert.equal(r.model, 'gpt');
  assert.equal(r.output_text, 'mock reply from gpt-4o');
  assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
  const d = decode(r.id);
  assert.equal(d.provider, 'openai');
  assert.match(d.model_id, /^gpt-dep-\d$/);
  assert.match(d.response_id, /^resp_mock_\d+$/);
  const hits = await whoGot(m0);
  assert.equal(hits.length, 1);
  assert.equal(`gpt-dep-${hits[0].i}`, d.model_id);
  // the client's body, spliced: the deployment's model, LiteLLM's own fields left out
  assert.equal(hits[0].e.path, '/v1/responses');
  assert.equal(hits[0].e.body.model, 'gpt-4o');
  assert.equal(hits[0].e.body.instructions, 'be brief');
  assert.equal(hits[0].e.headers.authorization, `Bearer sk-up-${hits[0].i}`);
});

test('stream: the upstream events relayed in order, ids encoded, usage in the final response', async () => {
  const stream = client.responses.stream({ model: 'gpt', input: 'one two three' });
  const types = [];
  let text = '';
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'response.output_text.delta') text += ev.delta;
  }
  const final = await stream.finalResponse();
  assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress',
    'response.output_item.added', 'response.content_part.added']);
  assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done',
    'response.output_item.done', 'response.completed']);
  assert.ok(types.filter((t) => t === 'response.output_text.delta').length >= 3);
  assert.equal(text, 'mock reply from gpt-4o');
  assert.equal(final.output_text, text);
  assert.equal(final.model, 'gpt');
  assert.equal(decode(final.id).response_id.startsWith('resp_mock_'), true);
  assert.ok(final.usage.output_tokens > 0);
});

test('tools: function calls pass through, and their outputs go back on the same deployment', async () => {
  const tools = [{ type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } }];
  const r1 = await client.responses.create({
    model: 'gpt', input: 'weather in Paris?', tools,
    mock: { function_calls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] },
  });
  assert.equal(r1.output[0].type, 'function_call');
  assert.equal(r1.output[0].name, 'get_weather');
  assert.deepEqual(JSON.parse(r1.output[0].arguments), { city: 'Paris' });
  const m0 = await marks();
  const r2 = await client.responses.create({
    model: 'gpt', previous_response_id: r1.id, tools,
    input: [{ type: 'function_call_output', call_id: r1.output[0].call_id, output: '{"temp":21}' }],
  });
  assert.equal(r2.status, 'completed');
  const hits = await whoGot(m0);
  assert.equal(hits.length, 1);
  assert.equal(`gpt-dep-${hits[0].i}`, decode(r1.id).model_id);
  // the upstream gets its own id back, not the one moongate handed out
  assert.equal(hits[0].e.body.previous_response_id, decode(r1.id).response_id);
  assert.equal(hits[0].e.body.input[0].call_id, r1.output[0].call_id);
});

test('previous_response_id sticks to its deployment among three, for a whole chain', async () => {
  let prev = await client.responses.create({ model: 'gpt', input: 'start' });
  const owner = decode(prev.id).model_id;
  const m0 = await marks();
  for (let i = 0; i < 12; i++) {
    const next = await client.responses.create({ model: 'gpt', input: `turn ${i}`, previous_response_id: prev.id });
    assert.equal(decode(next.id).model_id, owner, `turn ${i} left its deployment`);
    assert.equal(next.previous_response_id, decode(prev.id).response_id);
    prev = next;
  }
  const hits = await whoGot(m0);
  assert.equal(hits.length, 12);
  assert.ok(hits.every((h) => `gpt-dep-${h.i}` === owner), 'a follow-up reached another deployment');
  // without the pin the policy spreads requests over all three (and the others would refuse)
  const m1 = await marks();
  for (let i = 0; i < 24; i++) await client.responses.create({ model: 'gpt', input: `free ${i}`, store: false });
  const spread = new Set((await whoGot(m1)).map((h) => h.i));
  assert.ok(spread.size >= 2, 'simple-shuffle used one deployment for 24 requests');
  // streaming follow-ups stick too
  const s = client.responses.stream({ model: 'gpt', input: 'streamed turn', previous_response_id: prev.id });
  const fin = await s.finalResponse();
  assert.equal(decode(fin.id).model_id, owner);
});

test('retrieve, input_items, delete and cancel go to the deployment the id names', async () => {
  const r = await client.responses.create({ model: 'gpt', input: [{ role: 'user', content: 'keep me' }] });
  const owner = Number(decode(r.id).model_id.slice(-1));
  const m0 = await marks();
  const got = await client.responses.retrieve(r.id);
  assert.equal(got.id, r.id);
  assert.equal(got.output_text, r.output_text);
  const items = await client.responses.inputItems.list(r.id, { order: 'asc', limit: 5 });
  assert.equal(items.data.length, 1);
  assert.equal(items.data[0].content, 'keep me');
  await assert.rejects(client.responses.cancel(r.id), (e) => {
    assert.equal(e.status, 400);
    assert.match(e.message, /Cannot cancel a synchronous response/);
    return true;
  });
  const del = await client.responses.delete(r.id).then(() => true);
  assert.ok(del);
  await assert.rejects(client.responses.retrieve(r.id), (e) => {
    assert.equal(e.status, 400); // LiteLLM's mapping of OpenAI's invalid_request_error
    assert.match(e.message, /not found/);
    return true;
  });
  const hits = await whoGot(m0);
  assert.ok(hits.length >= 5);
  assert.ok(hits.every((h) => h.i === owner), 'a stored-response call reached another deployment');
  const paths = hits.map((h) => `${h.e.method} ${h.e.path}`);
  const up = decode(r.id).response_id;
  assert.ok(paths.includes(`GET /v1/responses/${up}`));
  assert.ok(paths.includes(`GET /v1/responses/${up}/input_items?order=asc&limit=5`));
  assert.ok(paths.includes(`POST /v1/responses/${up}/cancel`));
  assert.ok(paths.includes(`DELETE /v1/responses/${up}`));
});

test('ids moongate did not issue, and routes without /v1', async () => {
  const foreign = await gw.request('/v1/responses/resp_67c9fdcecf488190bdd9a0409de3a1ec');
  assert.equal(foreign.status, 404);
  assert.match(foreign.json.error.message, /was not issued by this gateway/);
  const r = await gw.request('/responses', { method: 'POST', body: { model: 'gpt', input: 'no v1' } });
  assert.equal(r.status, 200);
  const g = await gw.request(`/responses/${encodeURIComponent(r.json.id)}`);
  assert.equal(g.status, 200);
  assert.equal(g.json.id, r.json.id);
  const bad = await gw.request('/v1/responses', { method: 'POST', body: { model: 'gpt', input: 'x', temperature: 9 } });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error.message, /temperature/);
  const auth = await gw.request('/v1/responses', { method: 'POST', body: { model: 'gpt', input: 'x' }, key: 'sk-wrong' });
  assert.notEqual(auth.status, 200);
});

test('a deleted deployment: its responses and their follow-ups are a clear 404', async () => {
  const r = await client.responses.create({ model: 'gpt', input: 'soon gone' });
  const owner = decode(r.id).model_id;
  // keep only the deployments that did not make it
  const keep = mocks.map(dep).filter((d) => d.model_info.id !== owner);
  gw.writeConfig({ ...config(3), model_list: keep });
  const rl = await gw.reload();
  assert.equal(rl.status, 200, rl.text);
  const m0 = await marks();
  await assert.rejects(client.responses.create({ model: 'gpt', input: 'next', previous_response_id: r.id }), (e) => {
    assert.equal(e.status, 404);
    assert.match(e.message, new RegExp(`deployment "${owner}".*no longer in the registry`));
    return true;
  });
  await assert.rejects(client.responses.retrieve(r.id), (e) => e.status === 404);
  assert.equal((await whoGot(m0)).length, 0, 'the follow-up went to another deployment');
  gw.writeConfig(config(3));
  assert.equal((await gw.reload()).status, 200);
});

test('moongate stops cleanly, with no sanitizer report in an ASan build', async () => {
  stopped = true;
  await assertCleanStop(gw);
});
