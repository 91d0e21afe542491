// The Responses API on a chat-only provider: requests translated to chat completions and the
// answer back into a Responses object or the response.* event stream, as LiteLLM's completion
// bridge does, with the official `openai` client against the Anthropic mock (which checks the
// Messages request it gets: system, tool_use/tool_result pairing, no OpenAI-only fields).
// Codex-style use: tools, a function call, its output sent back in input, streaming.
// Nothing is stored: previous_response_id and GET of such a response are clear errors.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startGateway } from '../lib/harness.mjs';
import { assertCleanStop } from './lib_rotation.mjs';
import { startAnthropicMock } from '../lib/mock_anthropic.mjs';

const MASTER = 'sk-resp-xl';
const am = await startAnthropicMock({ keys: ['sk-ant-1'] });
const gw = await startGateway({
  config: {
    general_settings: { master_key: MASTER },
    router_settings: { num_retries: 0 },
    model_list: [
      { model_name: 'claude', litellm_params: { model: 'anthropic/claude-sonnet-4-5-20250929', api_base: am.base, api_key: 'sk-ant-1' }, model_info: { id: 'claude-dep' } },
      { model_name: 'offline', litellm_params: { model: 'openai/gpt-4o', mock_response: 'canned answer' } },
    ],
  },
});
const client = new OpenAI({ apiKey: MASTER, baseURL: `${gw.url}/v1`, maxRetries: 0 });
let stopped = false;
after(async () => {
  if (!stopped) await gw.stop();
  await am.stop();
});

const tools = [{
  type: 'function', name: 'get_weather', description: 'Weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}];

function decode(id) {
  const s = Buffer.from(id.slice(5), 'base64').toString('utf8');
  return /^litellm:custom_llm_provider:([^;]*);model_id:([^;]*);response_id:(.*)$/.exec(s);
}

test('create: instructions become the system prompt, the answer a Responses object', async () => {
  const since = (await am.log()).length;
  const r = await client.responses.create({
    model: 'claude', instructions: 'You are terse.', input: 'Hello there', max_output_tokens: 200, temperature: 0.5,
  });
  assert.equal(r.object, 'response');
  assert.equal(r.status, 'completed');
  assert.equal(r.model, 'claude');
  assert.equal(r.output_text, 'mock reply from claude-sonnet-4-5-20250929');
  assert.equal(r.output[0].type, 'message');
  assert.equal(r.instructions, 'You are terse.');
  assert.equal(r.store, false);
  assert.ok(r.usage.input_tokens > 0 && r.usage.output_tokens === 4);
  assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
  const d = decode(r.id);
  assert.ok(d, r.id);
  assert.equal(d[1], 'anthropic');
  assert.equal(d[2], 'claude-dep');
  assert.match(d[3], /^msg_mock_\d+$/);
  const sent = (await am.log()).slice(since);
  assert.equal(sent.length, 1);
  assert.equal(sent[0].check_error, null);
  assert.equal(sent[0].path, '/v1/messages');
  const body = sent[0].body;
  assert.ok(JSON.stringify(body.system).includes('You are terse.'));
  assert.equal(body.max_tokens, 200);
  assert.equal(body.temperature, 0.5);
  assert.equal(body.messages.length, 1);
  assert.equal(body.messages[0].role, 'user');
  assert.ok(JSON.stringify(body.messages[0].content).includes('Hello there'));
});

test('stream: the response.* sequence LiteLLM emits, deltas adding up to the final text', async () => {
  const stream = client.responses.stream({ model: 'claude', input: 'Stream please' });
  const events = [];
  for await (const ev of stream) events.push(ev);
  const final = await stream.finalResponse();
  const types = events.map((e) => e.type);
  assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress',
    'response.output_item.added', 'response.content_part.added']);
  assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done',
    'response.output_item.done', 'response.completed']);
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  const deltas = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta);
  assert.ok(deltas.length >= 2);
  assert.equal(deltas.join(''), final.output_text);
  assert.equal(final.output_text, 'mock reply from claude-sonnet-4-5-20250929');
  assert.equal(final.status, 'completed');
  assert.equal(events[0].response.id, final.id);
  assert.ok(final.usage.output_tokens > 0);
});

test('tools: a function call, then its output in input, paired as Anthropic requires', async () => {
  await am.script([{ match: { model: 'claude-sonnet-4-5-20250929' }, times: 1, respond: {
    blocks: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', name: 'get_weather', input: { city: 'Paris' } }],
  } }]);
  const r1 = await client.responses.create({ model: 'claude', input: 'Weather in Paris?', tools, tool_choice: 'auto' });
  assert.equal(r1.output.length, 2);
  assert.equal(r1.output[0].type, 'message');
  assert.equal(r1.output[0].content[0].text, 'Checking.');
  const call = r1.output[1];
  assert.equal(call.type, 'function_call');
  assert.equal(call.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
  assert.match(call.call_id, /^toolu_/);
  // the client sends the conversation back (nothing is stored), with the call's output
  const since = (await am.log()).length;
  const r2 = await client.responses.create({
    model: 'claude', tools,
    input: [
      { role: 'user', content: 'Weather in Paris?' },
      ...r1.output,
      { type: 'function_call_output', call_id: call.call_id, output: '{"temp_c":21}' },
    ],
  });
  assert.equal(r2.status, 'completed');
  const sent = (await am.log()).slice(since);
  assert.equal(sent.length, 1);
  assert.equal(sent[0].check_error, null, `the mock refused the translation: ${sent[0].check_error}`);
  const msgs = sent[0].body.messages;
  assert.equal(msgs.length, 3);
  assert.equal(msgs[1].role, 'assistant');
  assert.deepEqual(msgs[1].content.map((b) => b.type), ['text', 'tool_use']);
  assert.equal(msgs[1].content[1].id, call.call_id);
  assert.equal(msgs[2].role, 'user');
  assert.equal(msgs[2].content[0].type, 'tool_result');
  assert.equal(msgs[2].content[0].tool_use_id, call.call_id);
  assert.equal(sent[0].body.tools[0].name, 'get_weather');
  assert.deepEqual(sent[0].body.tools[0].input_schema.required, ['city']);
});

test('tools streamed: a function_call item with argument deltas', async () => {
  await am.script([{ match: { model: 'claude-sonnet-4-5-20250929' }, times: 1, respond: {
    blocks: [{ type: 'tool_use', name: 'get_weather', input: { city: 'Oslo' } }], json_chunks: 3,
  } }]);
  const stream = client.responses.stream({ model: 'claude', input: 'Oslo?', tools, tool_choice: 'required' });
  const events = [];
  for await (const ev of stream) events.push(ev);
  const final = await stream.finalResponse();
  const types = events.map((e) => e.type);
  const added = events.find((e) => e.type === 'response.output_item.added');
  assert.equal(added.item.type, 'function_call');
  assert.equal(added.item.name, 'get_weather');
  assert.equal(types.filter((t) => t === 'response.function_call_arguments.delta').length, 3);
  assert.ok(types.includes('response.function_call_arguments.done'));
  assert.equal(types.at(-1), 'response.completed');
  assert.deepEqual(JSON.parse(final.output[0].arguments), { city: 'Oslo' });
  // tool_choice "required" went to Anthropic as {"type":"any"}
  const last = (await am.log()).at(-1);
  assert.equal(last.body.tool_choice.type, 'any');
});

test('an upstream error mid-stream: the SDK throws, nothing completes', async () => {
  await am.script([{ match: { model: 'claude-sonnet-4-5-20250929' }, times: 1, respond: {
    chunks: 4, error_event: { type: 'overloaded_error', message: 'Overloaded', after_events: 4 },
  } }]);
  const stream = client.responses.stream({ model: 'claude', input: 'fail midway' });
  const seen = [];
  await assert.rejects((async () => { for await (const ev of stream) seen.push(ev.type); })(), (e) => {
    assert.match(e.message, /Overloaded/);
    return true;
  });
  assert.ok(!seen.includes('response.completed'));
});

test('previous_response_id and GET of a translated response: clear errors, nothing stored', async () => {
  const r = await client.responses.create({ model: 'claude', input: 'remember me' });
  await assert.rejects(client.responses.create({ model: 'claude', input: 'and now?', previous_response_id: r.id }), (e) => {
    assert.equal(e.status, 400);
    assert.match(e.message, /through chat completions.*stores no responses/);
    return true;
  });
  await assert.rejects(client.responses.retrieve(r.id), (e) => {
    assert.equal(e.status, 404);
    assert.match(e.message, /provider anthropic.*through chat completions/);
    return true;
  });
  // an id from elsewhere sent to a translated deployment: not resolvable either
  await assert.rejects(client.responses.create({ model: 'claude', input: 'x', previous_response_id: 'resp_abc' }), (e) => {
    assert.equal(e.status, 400);
    assert.match(e.message, /send the whole conversation in 'input'/);
    return true;
  });
});

test('mock_response deployments answer Responses requests offline', async () => {
  const r = await client.responses.create({ model: 'offline', input: 'hi' });
  assert.equal(r.output_text, 'canned answer');
  assert.equal(r.status, 'completed');
  const s = client.responses.stream({ model: 'offline', input: 'hi' });
  const fin = await s.finalResponse();
  assert.equal(fin.output_text, 'canned answer');
});

test('moongate stops cleanly, with no sanitizer report in an ASan build', async () => {
  stopped = true;
  await assertCleanStop(gw);
});
