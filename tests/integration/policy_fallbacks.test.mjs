// Fallbacks across model groups, in order, with the mock provider answering
// 429 / 500 / context-window errors: fallbacks, context_window_fallbacks,
// default_fallbacks, request-level fallbacks, disable_fallbacks and
// max_fallbacks (checked in the mock's log order), LiteLLM's
// "Received Model Group=...\nAvailable Model Group Fallbacks=[...]" suffix, and
// a custom fallback policy (router_settings.fallback_policy) that drops the
// provider that just failed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startMock, startGateway, mockModel, tmpDir } from '../lib/harness.mjs';
import { req, chatBody } from './lib_policy.mjs';

const KEY = 'sk-test-policy-fallbacks';

const mock = await startMock();
// behaviour by upstream model
await mock.script({
  rules: [
    ['up-primary', { status: 429 }], ['up-allfail', { status: 429 }], ['up-fb500', { status: 500 }],
    ['up-fb429', { status: 429 }], ['up-lonely', { status: 500 }], ['up-solo', { status: 429 }],
    ['up-cw', { status: 400, error_code: 'context_length_exceeded' }],
    ['up-cw2', { status: 400, error_code: 'context_length_exceeded' }],
    ['up-chain', { status: 500 }], ['up-prov', { status: 500 }],
    ['up-nesta', { status: 500 }], ['up-nestb', { status: 500 }],
    ['up-ping', { status: 500 }], ['up-pong', { status: 500 }],
  ].map(([model, respond]) => ({ match: { model }, respond })),
});

const dep = (name, up, id, provider = 'openai') => mockModel(mock, name, { model: `${provider}/${up}`, info: { id } });
const common = [
  dep('fb-500', 'up-fb500', 'id-fb500'), dep('fb-429', 'up-fb429', 'id-fb429'), dep('fb-ok', 'up-fbok', 'id-fbok'),
];

const gw1 = await startGateway({
  config: {
    model_list: [
      ...common,
      dep('primary', 'up-primary', 'id-primary'), dep('allfail', 'up-allfail', 'id-allfail'),
      dep('solo', 'up-solo', 'id-solo'),
      dep('cw', 'up-cw', 'id-cw'), dep('cw-big', 'up-cwbig', 'id-cwbig'), dep('cw2', 'up-cw2', 'id-cw2'),
      dep('nest-a', 'up-nesta', 'id-nesta'), dep('nest-b', 'up-nestb', 'id-nestb'),
      dep('ping', 'up-ping', 'id-ping'), dep('pong', 'up-pong', 'id-pong'),
    ],
    router_settings: {
      num_retries: 0,
      disable_cooldowns: true,
      fallbacks: [{ primary: ['fb-500', 'fb-ok'] }, { allfail: ['fb-500', 'fb-429'] }, { cw2: ['fb-ok'] },
        { 'nest-a': ['nest-b'] }, { 'nest-b': ['fb-ok'] }, { ping: ['pong'] }, { pong: ['ping'] }],
      context_window_fallbacks: [{ cw: ['cw-big'] }],
    },
    general_settings: { master_key: KEY },
  },
  workers: 2,
});
const gw2 = await startGateway({
  config: {
    model_list: [...common, dep('chain', 'up-chain', 'id-chain'), dep('cwx', 'up-cw', 'id-cwx'),
      dep('lonely', 'up-lonely', 'id-lonely')],
    router_settings: {
      num_retries: 0, disable_cooldowns: true, max_fallbacks: 1,
      fallbacks: [{ chain: ['fb-500', 'fb-ok'] }, { cwx: ['fb-ok'] }, { 'fb-500': ['fb-429'] }],
      default_fallbacks: ['fb-ok'],
    },
    general_settings: { master_key: KEY },
  },
  workers: 1,
});
// a custom fallback policy: skip every deployment of the provider that just failed
const SKIP_PROVIDER = `-- skip the provider that just failed
local deployments = require "moongate.deployments"
local _M = { name = "skip_failed_provider", kind = "fallback", version = 1 }

function _M.validate(conf)
    if conf.skip_same_provider == nil then return nil, "conf.skip_same_provider is required" end
    return true
end

function _M.select(ctx, candidates, conf)
    local failed = ctx.failure and ctx.failure.deployment
    if not conf.skip_same_provider or failed == nil then
        return candidates
    end
    return deployments.filter(candidates, function(d) return d.provider ~= failed.provider end)
end

return _M
`;
const dir3 = tmpDir('mg-policy-fb-');
fs.writeFileSync(path.join(dir3, 'skip_failed_provider.lua'), SKIP_PROVIDER);
const gw3 = await startGateway({
  dir: dir3,
  config: {
    model_list: [
      dep('prov', 'up-prov', 'id-prov'),
      dep('fb-openai', 'up-fbo', 'id-fbo'),
      dep('fb-vllm', 'up-fbv', 'id-fbv', 'hosted_vllm'),
    ],
    router_settings: {
      num_retries: 0, disable_cooldowns: true,
      fallbacks: [{ prov: ['fb-openai', 'fb-vllm'] }],
      fallback_policy: './skip_failed_provider.lua',
      policy_args: { fallback: { skip_same_provider: true } },
    },
    general_settings: { master_key: KEY },
  },
  workers: 1,
});
after(async () => { await gw1.stop(); await gw2.stop(); await gw3.stop(); await mock.stop(); });

let tag = 0;
/** Sends one chat request; returns it with the upstream models the mock saw for it, in order. */
async function run(gw, model, extra = {}) {
  const content = `fb-${++tag}`;
  const r = await req(gw.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: chatBody(model, content, extra) });
  const log = (await mock.log()).filter((e) => e.body?.messages?.[0]?.content === content).sort((a, b) => a.seq - b.seq);
  r.upstream = log.map((e) => e.model);
  return r;
}
const SUFFIX = (group, list) => `. Received Model Group=${group}\nAvailable Model Group Fallbacks=${list}`;

// gw1 has no default_fallbacks, so a fallback group without its own entry has no nested fallbacks
test('fallbacks are tried in order across groups: 429, then 500, then the one that works', async () => {
  const r = await run(gw1, 'primary');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.upstream, ['up-primary', 'up-fb500', 'up-fbok']);
  assert.equal(r.modelId, 'id-fbok');
  assert.equal(r.headers['x-litellm-attempted-fallbacks'], '2');
});

test('when every fallback fails: the first error, LiteLLM\'s suffix and the last fallback error', async () => {
  const r = await run(gw1, 'allfail');
  assert.deepEqual(r.upstream, ['up-allfail', 'up-fb500', 'up-fb429']);
  assert.equal(r.status, 429, r.text);
  const m = r.json.error.message;
  assert.match(m, /^litellm\.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for up-allfail/);
  assert.match(m, /\. Received Model Group=\S+\nAvailable Model Group Fallbacks=\['fb-500', 'fb-429'\]\n/);
  // the last fallback (fb-429) has no entry of its own: LiteLLM notes it, and raises that error inside
  // its fallback block, so fb-429's message repeats itself after its own suffix
  const last = m.slice(m.indexOf('\nError doing the fallback: ') + '\nError doing the fallback: '.length);
  const own = last.slice(0, last.indexOf(SUFFIX('fb-429', 'None')));
  assert.match(own, /^litellm\.RateLimitError: .*up-fb429.*No fallback model group found for original model_group=fb-429\. Fallbacks=\[/s);
  assert.equal(last, `${own}${SUFFIX('fb-429', 'None')}\nError doing the fallback: ${own}`);
  assert.equal(r.json.error.code, '429');
});

test('the suffix names the group the client asked for (Received Model Group=<original>), after fallbacks too',
  async () => {
    const a = await run(gw1, 'allfail');
    assert.ok(a.json.error.message.includes(SUFFIX('allfail', "['fb-500', 'fb-429']")), a.json.error.message);
    const b = await run(gw1, 'primary', { fallbacks: ['fb-429'] });
    assert.ok(b.json.error.message.includes(SUFFIX('primary', "['fb-429']")), b.json.error.message);
  });

test('context_window_fallbacks: a context-window error goes to its own list, without retries', async () => {
  const r = await run(gw1, 'cw', { num_retries: 2 });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.upstream, ['up-cw', 'up-cwbig'], 'no retry of a context-window error, then cw-big');
  assert.equal(r.modelId, 'id-cwbig');
  // configured, but no entry for the group: the error is returned, generic fallbacks are not tried
  const r2 = await run(gw1, 'cw2');
  assert.deepEqual(r2.upstream, ['up-cw2']);
  assert.equal(r2.status, 400, r2.text);
  const m2 = r2.json.error.message;
  assert.match(m2, /^litellm\.ContextWindowExceededError: /);
  // LiteLLM raises the group's own error inside its fallback block: the message repeats itself
  const own = m2.slice(0, m2.indexOf(SUFFIX('cw2', 'None')));
  assert.ok(own.length > 0, m2);
  assert.equal(m2, `${own}${SUFFIX('cw2', 'None')}\nError doing the fallback: ${own}`);
});

test('context_window_fallbacks not configured: the generic fallbacks are used', async () => {
  const r = await run(gw2, 'cwx');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.upstream, ['up-cw', 'up-fbok']);
});

test('default_fallbacks for a group without its own entry', async () => {
  const r = await run(gw2, 'lonely');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.upstream, ['up-lonely', 'up-fbok']);
});

test('request-level fallbacks are tried in order and win over the configured ones', async () => {
  const r = await run(gw1, 'solo', { fallbacks: ['fb-500', 'fb-ok'] });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.upstream, ['up-solo', 'up-fb500', 'up-fbok']);
  const r2 = await run(gw1, 'primary', { fallbacks: ['fb-429'] });
  assert.deepEqual(r2.upstream, ['up-primary', 'up-fb429']);
  assert.equal(r2.status, 429);
  assert.match(r2.json.error.message, /\nAvailable Model Group Fallbacks=\['fb-429'\]\nError doing the fallback: /);
  // the fallbacks field is not forwarded upstream
  const log = await mock.log();
  assert.ok(log.every((e) => e.body?.fallbacks === undefined));
});

test('disable_fallbacks: only the group itself, and no suffix', async () => {
  const r = await run(gw1, 'primary', { disable_fallbacks: true });
  assert.deepEqual(r.upstream, ['up-primary']);
  assert.equal(r.status, 429);
  assert.ok(!r.json.error.message.includes('Received Model Group'), r.json.error.message);
});

// LiteLLM (router_utils/fallback_event_handlers.py::run_async_fallback): the depth check runs once
// per fallback list, every group of the list is then tried, and each fallback group runs with its
// own fallbacks at depth + 1 -- so max_fallbacks bounds nesting, not the length of one list.
test('max_fallbacks: 1 still walks the whole fallback list, but no nested fallbacks',
  async () => {
    const r = await run(gw2, 'chain');
    assert.deepEqual(r.upstream, ['up-chain', 'up-fb500', 'up-fbok'], 'fb-500\'s own fallback (fb-429) is past the depth');
    assert.equal(r.status, 200, r.text);
  });

test('a fallback group\'s own fallbacks are tried (nested, within max_fallbacks)',
  async () => {
    const r = await run(gw1, 'nest-a');
    assert.deepEqual(r.upstream, ['up-nesta', 'up-nestb', 'up-fbok']);
    assert.equal(r.status, 200, r.text);
  });

test('fallbacks that point at each other stop at max_fallbacks (default 5) levels deep', async () => {
  const r = await run(gw1, 'ping');
  // LiteLLM: ping, then pong at depth 1, its own fallback ping at depth 2, ... pong at depth 5
  assert.deepEqual(r.upstream, ['up-ping', 'up-pong', 'up-ping', 'up-pong', 'up-ping', 'up-pong']);
  assert.equal(r.status, 500, r.text);
  const m = r.json.error.message;
  assert.ok(m.startsWith('litellm.InternalServerError: '), m);
  assert.equal(m.split('\nError doing the fallback: ').length - 1 >= 5, true, m);
});

test('a custom fallback policy that drops the failed provider is honoured', async () => {
  const info = await req(gw3.port, '/policy/info', { key: KEY });
  const fb = info.json.data.find((p) => p.kind === 'fallback');
  assert.equal(fb.name, 'skip_failed_provider');
  assert.equal(fb.origin, 'file');
  const r = await run(gw3, 'prov');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.upstream, ['up-prov', 'up-fbv'], 'fb-openai (same provider as the failure) skipped');
  assert.equal(r.modelId, 'id-fbv');
  const st = await req(gw3.port, '/moongate/state', { key: KEY });
  const p = st.json.workers[0].policies.policies[1];
  assert.equal(p.kind, 'fallback');
  assert.ok(p.calls >= 1);
  assert.equal(p.errors, 0);
});
