// Every file in examples/ runs here ("if an example isn't run by e2e, it will
// rot"): moongate starts on the example's exact text, its providers pointed at
// the mock through the environment (OPENAI_API_BASE, GROQ_API_BASE,
// AZURE_API_BASE, os.environ/VAR values), answers at least one request per
// model group and one stream through the official openai client, and then
// reloads on SIGHUP in the middle of a slow stream without dropping anything.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startMock, repoRoot, tmpDir } from '../lib/harness.mjs';
import { startBedrockMock } from '../lib/mock_bedrock.mjs';
import {
  startTokenMock, startVertexMock, startGeminiMock, makeServiceAccount, newTokenSecret, vertexModelPath,
} from '../lib/mock_google.mjs';
import {
  client, USER_HI, words, wordChunks, collectChat, providerEnv, minConfigGeneration,
  waitAllWorkersPast, backgroundLoad, withExtraModel, startGw,
} from './lib.mjs';

const examplesDir = path.join(repoRoot, 'examples');
const mock = await startMock();
after(async () => { await mock.stop(); });

const readExample = (name) => fs.readFileSync(path.join(examplesDir, name), 'utf8');

/**
 * Starts moongate on examples/<name>, run from a copy of the whole examples/
 * tree so that paths relative to the config (policies/...) resolve exactly
 * as they do for a user, and the SIGHUP test can edit the file on disk.
 */
async function startExample(name, env, workers = 2) {
  const dir = tmpDir('mg-e2e-example-');
  fs.cpSync(examplesDir, dir, { recursive: true });
  const text = readExample(name);
  // the harness reads the master key from an object config only
  const literal = /^\s*master_key:\s*(sk-[\w-]+)/m.exec(text);
  const masterKey = literal ? literal[1] : env.LITELLM_MASTER_KEY;
  assert.ok(masterKey, 'the example has a master key');
  const gw = await startGw({ config: text, dir, configName: name, env, workers, masterKey });
  return { gw, text, sdk: client(gw) };
}

async function freshMock() {
  await mock.reset();
  return (await mock.stats()).last_seq;
}

/** One non-stream chat request; returns { data, group (x-litellm-model-group), upstream log entry }. */
async function chatOnce(sdk, model, extra = {}) {
  const before = (await mock.stats()).last_seq;
  const { data, response } = await sdk.chat.completions
    .create({ model, messages: USER_HI, ...extra }).withResponse();
  const log = await mock.log(before);
  return { data, group: response.headers.get('x-litellm-model-group'), log, up: log.at(-1) };
}

/** A streamed chat request whose content the mock paces; checks it arrived whole and in order. */
async function streamOnce(sdk, model, n = 8) {
  const content = words(n, 's');
  const st = await collectChat(await sdk.chat.completions.create({
    model, messages: USER_HI, stream: true, stream_options: { include_usage: true }, mock: { content },
  }));
  assert.deepEqual(st.deltas, wordChunks(content), `stream through ${model}`);
  assert.equal(st.finish, 'stop');
  assert.ok(st.usage && st.usage.total_tokens > 0, 'the usage chunk arrived');
  for (const ch of st.chunks) assert.equal(ch.model, model);
  return st;
}

const PROBE = 'e2e-sighup-probe';
const PROBE_TEXT = 'reloaded by SIGHUP';
const PROBE_YAML = `  - model_name: ${PROBE}
    litellm_params:
      model: openai/e2e-probe
      mock_response: "${PROBE_TEXT}"
`;

/**
 * SIGHUP to the master while a slow stream is in flight, with other requests
 * going on: the stream completes intact, no request fails, every worker
 * applies the new config (a model group added to the file on disk appears).
 */
async function sighupMidStream({ gw, sdk, text }, model, { transform = (t) => t, verify = null } = {}) {
  const ids0 = (await sdk.models.list()).data.map((m) => m.id);
  assert.ok(!ids0.includes(PROBE));
  const gen0 = await minConfigGeneration(gw);
  const edited = transform(withExtraModel(text, PROBE_YAML));
  assert.notEqual(edited, text);
  gw.writeConfig(edited);

  const content = words(25, 'hup');
  const expected = wordChunks(content);
  const stream = await sdk.chat.completions.create({
    model, messages: USER_HI, stream: true, mock: { content, chunk_interval_ms: 80 },
  });
  const load = backgroundLoad(async () => {
    const r = await sdk.chat.completions.create({ model, messages: USER_HI });
    return typeof r.choices[0].message.content === 'string' && r.choices[0].message.content.length > 0;
  });
  let reload = null;
  let chunksAtReload = null;
  let st;
  try {
    st = await collectChat(stream, (ch, s) => {
      if (reload === null && s.deltas.length === 1) {
        reload = (async () => {
          try {
            assert.ok(gw.child.kill('SIGHUP'), 'SIGHUP sent to the master');
            await waitAllWorkersPast(gw, gen0);
            chunksAtReload = s.deltas.length;
          } finally {
            await load.stop(); // the load covers before, during and just after the reload
          }
        })();
      }
    });
  } finally {
    if (reload === null) await load.stop();
  }
  assert.ok(reload, 'the stream produced content');
  await reload;
  const res = await load.stop();

  assert.deepEqual(st.deltas, expected, 'the stream in flight during the reload completed intact');
  assert.equal(st.finish, 'stop');
  assert.ok(chunksAtReload < expected.length,
    `the reload finished while the stream was still running (${chunksAtReload}/${expected.length} chunks)`);
  assert.equal(res.failed, 0, `no request failed across the reload: ${JSON.stringify(res.errors)}`);
  assert.ok(res.ok > 0, 'requests ran during the reload');
  assert.equal(gw.child.exitCode, null, 'the master is still running');

  // the new config is live (every worker applied it, see waitAllWorkersPast)
  const ids1 = (await sdk.models.list()).data.map((m) => m.id);
  assert.ok(ids1.includes(PROBE), `the reloaded model list has ${PROBE}: ${ids1}`);
  for (let i = 0; i < 6; i++) {
    const r = await sdk.chat.completions.create({ model: PROBE, messages: USER_HI });
    assert.equal(r.choices[0].message.content, PROBE_TEXT);
  }
  if (verify) await verify();
  await streamOnce(sdk, model);
  const ready = await fetch(`${gw.url}/health/readiness`);
  assert.equal(ready.status, 200);
}

/**
 * The SIGHUP check for an example on a Google mock (which paces streams by rule, not by a
 * body member): a stream in flight across the reload completes intact, every worker
 * applies the new config, the group answers afterwards.
 */
async function googleSighup({ gw, sdk, text }, model, gmock, upstream) {
  const gen0 = await minConfigGeneration(gw);
  gw.writeConfig(withExtraModel(text, PROBE_YAML));
  const content = words(20, 'hup');
  await gmock.script([{ match: { model: upstream, stream: true }, times: 1, respond: { content, chunk_interval_ms: 60 } }]);
  const stream = await sdk.chat.completions.create({ model, messages: USER_HI, stream: true });
  let reload = null;
  let chunksAtReload = null;
  const st = await collectChat(stream, (ch, s) => {
    if (reload === null && s.deltas.length === 1) {
      reload = (async () => {
        assert.ok(gw.child.kill('SIGHUP'), 'SIGHUP sent to the master');
        await waitAllWorkersPast(gw, gen0);
        chunksAtReload = s.deltas.length;
      })();
    }
  });
  assert.ok(reload, 'the stream produced content');
  await reload;
  assert.deepEqual(st.deltas, wordChunks(content), 'the stream in flight during the reload completed intact');
  assert.equal(st.finish, 'stop');
  assert.ok(chunksAtReload < wordChunks(content).length, 'the reload finished while the stream ran');
  assert.ok((await sdk.models.list()).data.some((m) => m.id === PROBE));
  const r = await sdk.chat.completions.create({ model, messages: USER_HI });
  assert.ok(r.choices[0].message.content.length > 0);
  assert.equal(gw.child.exitCode, null, 'the master is still running');
  await gmock.script([]);
}

const EXAMPLES = {
  'quickstart.yaml': async () => {
    const text = readExample('quickstart.yaml');
    const offlineText = /mock_response:\s*"([^"]+)"/.exec(text)[1];

    // 1. with a key: gpt-4o-mini goes to "OpenAI" (the mock)
    await freshMock();
    const ex = await startExample('quickstart.yaml', providerEnv(mock));
    try {
      const a = await chatOnce(ex.sdk, 'gpt-4o-mini');
      assert.equal(a.data.choices[0].message.content, 'mock reply from gpt-4o-mini');
      assert.equal(a.data.model, 'gpt-4o-mini');
      assert.equal(a.group, 'gpt-4o-mini');
      assert.equal(a.up.headers.authorization, 'Bearer sk-up-openai');
      assert.equal(a.up.body.model, 'gpt-4o-mini');

      const b = await chatOnce(ex.sdk, 'offline');
      assert.equal(b.data.choices[0].message.content, offlineText);
      assert.deepEqual(b.data.usage, { completion_tokens: 20, prompt_tokens: 10, total_tokens: 30 });
      assert.equal(b.log.length, 0, 'the mock_response group is answered offline');

      await streamOnce(ex.sdk, 'gpt-4o-mini');
      await sighupMidStream(ex, 'gpt-4o-mini');
    } finally {
      await ex.gw.stop();
    }

    // 2. no OPENAI_API_KEY: the fallback answers offline, the upstream is never called
    const before = await freshMock();
    assert.equal(process.env.OPENAI_API_KEY, undefined);
    const off = await startExample('quickstart.yaml', { OPENAI_API_BASE: mock.url }, 1);
    try {
      const { data, response } = await off.sdk.chat.completions
        .create({ model: 'gpt-4o-mini', messages: USER_HI }).withResponse();
      assert.equal(data.choices[0].message.content, offlineText);
      assert.equal(data.model, 'gpt-4o-mini', 'named after the group the client asked for');
      assert.equal(response.headers.get('x-litellm-model-group'), 'offline');
      assert.equal(response.headers.get('x-litellm-attempted-fallbacks'), '1');
      const st = await collectChat(await off.sdk.chat.completions.create({ model: 'gpt-4o-mini', messages: USER_HI, stream: true }));
      assert.equal(st.text, offlineText);
      assert.ok(st.deltas.every((d, i, all) => d.length === 3 || i === all.length - 1), '3-character slices');
      const o = await chatOnce(off.sdk, 'offline');
      assert.equal(o.data.choices[0].message.content, offlineText);
      assert.equal((await mock.log(before)).length, 0, 'no request left the machine for the mock/OpenAI');
    } finally {
      await off.gw.stop();
    }
  },

  'fallback.yaml': async () => {
    await freshMock();
    const ex = await startExample('fallback.yaml', providerEnv(mock));
    try {
      const want = { primary: 'gpt-4o-mini', secondary: 'gpt-4.1-mini', 'long-context': 'gpt-4.1' };
      for (const [group, upstream] of Object.entries(want)) {
        const r = await chatOnce(ex.sdk, group);
        assert.equal(r.data.choices[0].message.content, `mock reply from ${upstream}`);
        assert.equal(r.data.model, group);
        assert.equal(r.group, group);
        assert.equal(r.up.body.model, upstream);
        assert.equal(r.up.headers.authorization, 'Bearer sk-up-openai');
      }
      assert.deepEqual((await ex.sdk.models.list()).data.map((m) => m.id), ['primary', 'secondary', 'long-context']);

      // context window: primary -> long-context at once (no retries: context_window_fallbacks is set)
      await mock.script({ rules: [{ match: { model: 'gpt-4o-mini' }, respond: { status: 400, error_code: 'context_length_exceeded' } }] });
      const cw = await chatOnce(ex.sdk, 'primary');
      assert.equal(cw.data.choices[0].message.content, 'mock reply from gpt-4.1');
      assert.equal(cw.data.model, 'primary');
      assert.deepEqual(cw.log.map((e) => [e.body.model, e.status]), [['gpt-4o-mini', 400], ['gpt-4.1', 200]]);

      // a failing primary: two retries (num_retries: 2), then the "secondary" fallback
      await mock.script({ rules: [{ match: { model: 'gpt-4o-mini' }, respond: { status: 500 } }] });
      const fb = await chatOnce(ex.sdk, 'primary');
      assert.equal(fb.data.choices[0].message.content, 'mock reply from gpt-4.1-mini');
      assert.deepEqual(fb.log.map((e) => [e.body.model, e.status]),
        [['gpt-4o-mini', 500], ['gpt-4o-mini', 500], ['gpt-4o-mini', 500], ['gpt-4.1-mini', 200]]);
      await mock.script({ rules: [] });

      // default_fallbacks: an unknown model name is served by "secondary"
      const df = await chatOnce(ex.sdk, 'no-such-model');
      assert.equal(df.data.choices[0].message.content, 'mock reply from gpt-4.1-mini');

      await streamOnce(ex.sdk, 'long-context');
      await sighupMidStream(ex, 'secondary');
    } finally {
      await mock.script({ rules: [] });
      await ex.gw.stop();
    }
  },

  'multi-provider.yaml': async () => {
    await freshMock();
    const ex = await startExample('multi-provider.yaml', providerEnv(mock));
    try {
      assert.deepEqual((await ex.sdk.models.list()).data.map((m) => m.id), ['llama-3.1-8b', 'gpt-4o', 'text-embedding-3-small']);

      // llama-3.1-8b: two providers, weighted 3:1; poll until both have answered
      const seen = new Map();
      for (let i = 0; i < 300 && seen.size < 2; i++) {
        const r = await chatOnce(ex.sdk, 'llama-3.1-8b');
        assert.equal(r.data.model, 'llama-3.1-8b');
        assert.equal(r.data.choices[0].message.content, `mock reply from ${r.up.body.model}`);
        seen.set(r.up.body.model, r.up);
      }
      assert.deepEqual([...seen.keys()].sort(), ['llama-3.1-8b-instant', 'meta-llama/Llama-3.1-8B-Instruct']);
      const vllm = seen.get('meta-llama/Llama-3.1-8B-Instruct');
      assert.equal(vllm.path, '/v1/chat/completions', 'hosted_vllm at VLLM_API_BASE');
      assert.equal(vllm.headers.authorization, undefined, 'hosted_vllm has no key here');
      const groq = seen.get('llama-3.1-8b-instant');
      assert.equal(groq.path, '/v1/chat/completions', 'groq at GROQ_API_BASE');
      assert.equal(groq.headers.authorization, 'Bearer gsk-up-groq');

      // gpt-4o: Azure, deployment in the path, api-version, api-key header
      const az = await chatOnce(ex.sdk, 'gpt-4o');
      assert.equal(az.data.model, 'gpt-4o');
      assert.equal(az.up.path, '/openai/deployments/my-gpt4o-deployment/chat/completions?api-version=2024-10-21');
      assert.equal(az.up.headers['api-key'], 'az-up-key');
      assert.equal(az.up.headers.authorization, undefined);

      // text-embedding-3-small: OpenAI embeddings, through the SDK's base64 default
      const before = (await mock.stats()).last_seq;
      const emb = await ex.sdk.embeddings.create({ model: 'text-embedding-3-small', input: ['one', 'two'] });
      assert.equal(emb.data.length, 2);
      assert.ok(emb.data.every((d) => d.embedding.length === 8 && d.embedding.every(Number.isFinite)));
      const [e] = (await mock.log(before)).filter((x) => x.endpoint === 'embeddings');
      assert.equal(e.body.model, 'text-embedding-3-small');
      assert.equal(e.headers.authorization, 'Bearer sk-up-openai');

      await streamOnce(ex.sdk, 'llama-3.1-8b');
      await sighupMidStream(ex, 'gpt-4o');
    } finally {
      await ex.gw.stop();
    }
  },

  'custom-policy.yaml': async () => {
    await freshMock();
    const ex = await startExample('custom-policy.yaml', providerEnv(mock));
    const EU_PATH = '/openai/deployments/gpt-4o-mini-eu/chat/completions?api-version=2024-10-21';
    try {
      assert.deepEqual((await ex.sdk.models.list()).data.map((m) => m.id), ['chat']);
      const st = await ex.gw.state();
      for (const w of st.workers) {
        const p = w.policies.policies.find((x) => x.kind === 'routing');
        assert.equal(p.name, 'prefer_region');
        assert.equal(p.origin, 'file');
        assert.equal(p.loaded, true);
      }

      // prefer_region: eu -> the Azure EU deployment, every time
      for (let i = 0; i < 6; i++) {
        const r = await chatOnce(ex.sdk, 'chat');
        assert.equal(r.data.model, 'chat');
        assert.equal(r.up.path, EU_PATH);
        assert.equal(r.up.headers['api-key'], 'az-up-key');
        assert.equal(r.data.choices[0].message.content, 'mock reply from gpt-4o-mini-eu');
      }

      // the EU deployment fails: a retry leaves the region
      await mock.script({ rules: [{ match: { deployment: 'gpt-4o-mini-eu' }, respond: { status: 500 } }] });
      const out = await chatOnce(ex.sdk, 'chat');
      assert.equal(out.data.choices[0].message.content, 'mock reply from gpt-4o-mini');
      assert.deepEqual(out.log.at(-1).path, '/v1/chat/completions');
      assert.equal(out.log.at(-1).headers.authorization, 'Bearer sk-up-openai');
      assert.ok(out.log.slice(0, -1).length >= 1 && out.log.slice(0, -1).every((e) => e.path === EU_PATH && e.status === 500),
        JSON.stringify(out.log.map((e) => [e.path, e.status])));
      await mock.script({ rules: [] });

      await streamOnce(ex.sdk, 'chat');
      // the reload also switches the policy's region: afterwards "us" goes first
      await sighupMidStream(ex, 'chat', {
        transform: (t) => t.replace(/prefer_region: eu\b/, 'prefer_region: us'),
        verify: async () => {
          for (let i = 0; i < 6; i++) {
            const r = await chatOnce(ex.sdk, 'chat');
            assert.equal(r.up.path, '/v1/chat/completions', 'after the reload the US deployment is preferred');
            assert.equal(r.data.choices[0].message.content, 'mock reply from gpt-4o-mini');
          }
        },
      });
    } finally {
      await mock.script({ rules: [] });
      await ex.gw.stop();
    }
  },

  'azure.yaml': async () => {
    await freshMock();
    const env = providerEnv(mock, {
      AZURE_API_BASE_EASTUS: mock.base, AZURE_API_KEY_EASTUS: 'az-up-east',
      AZURE_API_BASE_SWEDEN: mock.base, AZURE_API_KEY_SWEDEN: 'az-up-sweden',
      AZURE_AD_TOKEN: 'entra-e2e-token', AZURE_V1_BASE: `${mock.base}/openai/v1`,
      AZURE_AI_API_BASE: mock.base, AZURE_AI_API_KEY: 'ai-up-key',
    });
    const ex = await startExample('azure.yaml', env);
    try {
      assert.deepEqual((await ex.sdk.models.list()).data.map((m) => m.id),
        ['chat', 'chat-strict', 'embeddings', 'gpt-v1', 'responses', 'mistral']);
      // chat: two regions, each at its deployment URL with its own key
      const seen = new Map();
      for (let i = 0; i < 300 && seen.size < 2; i++) {
        const r = await chatOnce(ex.sdk, 'chat');
        assert.equal(r.data.model, 'chat');
        seen.set(r.up.headers['api-key'], r.up.path);
      }
      assert.equal(seen.get('az-up-east'), '/openai/deployments/gpt-4o-eastus/chat/completions?api-version=2024-10-21');
      assert.equal(seen.get('az-up-sweden'), '/openai/deployments/gpt-4o-swedencentral/chat/completions?api-version=2024-10-21');
      // an Entra token as a bearer
      const strict = await chatOnce(ex.sdk, 'chat-strict');
      assert.equal(strict.up.headers.authorization, 'Bearer entra-e2e-token');
      assert.equal(strict.up.headers['api-key'], undefined);
      // no api_version: LiteLLM's default
      const before = (await mock.stats()).last_seq;
      const emb = await ex.sdk.embeddings.create({ model: 'embeddings', input: 'one' });
      assert.equal(emb.data.length, 1);
      assert.equal((await mock.log(before)).at(-1).path,
        '/openai/deployments/text-embedding-3-small/embeddings?api-version=2025-02-01-preview');
      // the v1 API: the deployment is the body's model
      const v1 = await chatOnce(ex.sdk, 'gpt-v1');
      assert.equal(v1.up.path, '/openai/v1/chat/completions');
      assert.equal(v1.up.body.model, 'gpt-4.1-mini');
      // Azure AI Foundry: a bearer off Azure's hosts
      const ai = await chatOnce(ex.sdk, 'mistral');
      assert.equal(ai.up.path, '/chat/completions');
      assert.equal(ai.up.headers.authorization, 'Bearer ai-up-key');
      assert.equal(ai.up.body.model, 'mistral-large-2411');
      // the Responses API natively, a follow-up on the deployment that stored the first
      const r1 = await ex.sdk.responses.create({ model: 'responses', input: 'hello' });
      assert.equal(r1.output_text, 'mock reply from gpt-4.1');
      const r2 = await ex.sdk.responses.create({ model: 'responses', input: 'again', previous_response_id: r1.id });
      assert.equal(r2.status, 'completed');
      assert.equal((await ex.sdk.responses.retrieve(r2.id)).id, r2.id);
      const rlog = (await mock.log(before)).filter((e) => e.endpoint.startsWith('response'));
      assert.equal(rlog[0].path, '/openai/responses?api-version=2025-04-01-preview');
      assert.equal(rlog[1].body.previous_response_id, 'resp_mock_' + rlog[0].seq);
      // a content-filter refusal in both regions: content_policy_fallbacks to chat-strict
      await mock.script({ rules: [{ match: { path: '/openai/deployments/gpt-4o-eastus/chat/completions' }, respond: { status: 400, error_code: 'content_filter' } },
        { match: { path: '/openai/deployments/gpt-4o-swedencentral/chat/completions' }, respond: { status: 400, error_code: 'content_filter' } }] });
      const fb = await chatOnce(ex.sdk, 'chat');
      assert.equal(fb.data.choices[0].message.content, 'mock reply from gpt-4o-strict');
      assert.equal(fb.up.headers.authorization, 'Bearer entra-e2e-token');
      await mock.script({ rules: [] });

      await streamOnce(ex.sdk, 'chat');
      await sighupMidStream(ex, 'chat');
    } finally {
      await mock.script({ rules: [] });
      await ex.gw.stop();
    }
  },

  'wildcard.yaml': async () => {
    await freshMock();
    const ex = await startExample('wildcard.yaml', providerEnv(mock));
    try {
      const ids = (await ex.sdk.models.list()).data.map((m) => m.id);
      assert.deepEqual(ids.slice(0, 3), ['openai/*', 'groq/*', 'gpt-4o']);

      const o = await chatOnce(ex.sdk, 'openai/gpt-4o-mini');
      assert.equal(o.data.model, 'openai/gpt-4o-mini');
      assert.equal(o.group, 'openai/*');
      assert.equal(o.up.body.model, 'gpt-4o-mini', 'the * is substituted');
      assert.equal(o.up.headers.authorization, 'Bearer sk-up-openai');

      const g = await chatOnce(ex.sdk, 'groq/llama-3.1-8b-instant');
      assert.equal(g.group, 'groq/*');
      assert.equal(g.up.body.model, 'llama-3.1-8b-instant');
      assert.equal(g.up.headers.authorization, 'Bearer gsk-up-groq');

      const exact = await chatOnce(ex.sdk, 'gpt-4o');
      assert.equal(exact.group, 'gpt-4o', 'an exact name wins over the patterns');
      assert.equal(exact.up.body.model, 'gpt-4o-2024-08-06');

      const bare = await chatOnce(ex.sdk, 'gpt-4o-mini');
      assert.equal(bare.group, 'openai/*', 'a bare OpenAI name reaches openai/* through the provider lookup');
      assert.equal(bare.up.body.model, 'gpt-4o-mini');
      assert.equal(bare.data.model, 'gpt-4o-mini');

      await streamOnce(ex.sdk, 'groq/llama-3.1-8b-instant');
      await sighupMidStream(ex, 'openai/gpt-4o-mini');
    } finally {
      await ex.gw.stop();
    }
  },
  'gemini.yaml': async () => {
    const GKEY = 'AIzaSy-e2e-gemini-key-0000000000000001';
    const gm = await startGeminiMock({ keys: [GKEY] });
    const ex = await startExample('gemini.yaml', providerEnv(mock, {
      GEMINI_API_KEY: GKEY, GEMINI_API_BASE: `${gm.base}/v1beta`,
    }));
    try {
      assert.deepEqual((await ex.sdk.models.list()).data.map((m) => m.id), ['gemini-flash', 'gemini-pro', 'gemini-embedding']);
      for (const [group, upstream] of [['gemini-flash', 'gemini-2.5-flash'], ['gemini-pro', 'gemini-2.5-pro']]) {
        const r = await ex.sdk.chat.completions.create({ model: group, messages: USER_HI });
        assert.equal(r.choices[0].message.content, `mock reply from ${upstream}`);
        const e = (await gm.log()).at(-1);
        assert.equal(e.path, `/v1beta/models/${upstream}:generateContent`);
        assert.equal(e.headers['x-goog-api-key'], GKEY);
      }
      const emb = await ex.sdk.embeddings.create({ model: 'gemini-embedding', input: 'hi' });
      assert.equal(emb.data[0].embedding.length, 8);
      // the fallback: a throttled pro answers from flash
      await gm.script([{ match: { model: 'gemini-2.5-pro' }, respond: { status: 429 } }]);
      const fb = await ex.sdk.chat.completions.create({ model: 'gemini-pro', messages: USER_HI });
      assert.equal(fb.choices[0].message.content, 'mock reply from gemini-2.5-flash');
      await gm.script([]);
      const st = await collectChat(await ex.sdk.chat.completions.create({
        model: 'gemini-flash', messages: USER_HI, stream: true, stream_options: { include_usage: true },
      }));
      assert.equal(st.text, 'mock reply from gemini-2.5-flash');
      assert.ok(st.usage.total_tokens > 0);
      await googleSighup(ex, 'gemini-flash', gm, 'gemini-2.5-flash');
    } finally {
      await ex.gw.stop();
      await gm.stop();
    }
  },

  'vertex.yaml': async () => {
    const secret = newTokenSecret();
    const tok = await startTokenMock({ secret });
    const vx = await startVertexMock({ secret });
    const sa = makeServiceAccount({ email: 'e2e@proj-e2e.iam.gserviceaccount.com', tokenUri: tok.tokenUri, project: 'proj-e2e' });
    await tok.accounts([sa]);
    const keyFile = path.join(tmpDir('mg-e2e-vertex-'), 'key.json');
    fs.writeFileSync(keyFile, sa.text);
    const base = (location, publisher, model) => vertexModelPath(vx.base, { project: 'proj-e2e', location, publisher, model });
    const ex = await startExample('vertex.yaml', providerEnv(mock, {
      VERTEX_CREDENTIALS: keyFile, VERTEXAI_PROJECT: 'proj-e2e',
      VERTEX_GEMINI_API_BASE: base('us-central1', 'google', 'gemini-2.5-flash'),
      VERTEX_CLAUDE_API_BASE: base('us-east5', 'anthropic', 'claude-sonnet-4-5@20250929'),
      VERTEX_EMBEDDING_API_BASE: base('us-central1', 'google', 'text-embedding-005'),
    }));
    try {
      assert.deepEqual((await ex.sdk.models.list()).data.map((m) => m.id), ['gemini-flash', 'claude-sonnet', 'vertex-embedding']);
      const g = await ex.sdk.chat.completions.create({ model: 'gemini-flash', messages: USER_HI });
      assert.equal(g.choices[0].message.content, 'mock reply from gemini-2.5-flash');
      const c = await ex.sdk.chat.completions.create({ model: 'claude-sonnet', messages: USER_HI });
      assert.equal(c.choices[0].message.content, 'mock reply from claude-sonnet-4-5@20250929');
      const emb = await ex.sdk.embeddings.create({ model: 'vertex-embedding', input: ['a', 'b'] });
      assert.equal(emb.data.length, 2);
      const log = await vx.log();
      assert.ok(log.length >= 3 && log.every((e) => e.sa === sa.email && e.status === 200), JSON.stringify(log.map((e) => [e.path, e.status, e.sa])));
      // the fallback: a throttled Claude answers from Gemini
      await vx.script([{ match: { publisher: 'anthropic' }, respond: { status: 429 } }]);
      const fb = await ex.sdk.chat.completions.create({ model: 'claude-sonnet', messages: USER_HI });
      assert.equal(fb.choices[0].message.content, 'mock reply from gemini-2.5-flash');
      await vx.script([]);
      const st = await collectChat(await ex.sdk.chat.completions.create({ model: 'claude-sonnet', messages: USER_HI, stream: true }));
      assert.equal(st.text, 'mock reply from claude-sonnet-4-5@20250929');
      await googleSighup(ex, 'gemini-flash', vx, 'gemini-2.5-flash');
    } finally {
      await ex.gw.stop();
      await vx.stop();
      await tok.stop();
    }
  },

  'bedrock.yaml': async () => {
    await freshMock();
    const AWS = { access_key_id: 'AKIAE2EEXAMPLE000001', secret_access_key: 'e2e/bedrock-secret+0001' };
    const bmock = await startBedrockMock({ credentials: [AWS], region: 'us-east-1' });
    const ex = await startExample('bedrock.yaml', providerEnv(mock, {
      AWS_ACCESS_KEY_ID: AWS.access_key_id, AWS_SECRET_ACCESS_KEY: AWS.secret_access_key,
      AWS_REGION_NAME: 'us-east-1', AWS_BEDROCK_RUNTIME_ENDPOINT: bmock.base,
    }));
    try {
      assert.deepEqual((await ex.sdk.models.list()).data.map((m) => m.id), ['claude-sonnet', 'claude-haiku', 'nova-pro', 'gpt-4o-mini']);
      const want = {
        'claude-sonnet': ['us.anthropic.claude-3-5-sonnet-20241022-v2:0', 'converse'],
        'claude-haiku': ['anthropic.claude-3-haiku-20240307-v1:0', 'invoke'],
        'nova-pro': ['amazon.nova-pro-v1:0', 'converse'],
      };
      for (const [group, [id, op]] of Object.entries(want)) {
        const before = (await bmock.stats()).last_seq;
        const { data, response } = await ex.sdk.chat.completions.create({ model: group, messages: USER_HI }).withResponse();
        assert.equal(data.model, group);
        assert.equal(data.choices[0].message.content, `mock reply from ${id}`);
        assert.equal(response.headers.get('x-litellm-model-group'), group);
        const up = (await bmock.log(before)).at(-1);
        assert.equal(up.model, id);
        assert.equal(up.op, op);
        assert.equal(up.check_error, null);
        assert.equal(up.auth.verified, true, 'signed with the environment\'s keys for us-east-1');
        if (group === 'nova-pro') assert.equal(up.body.inferenceConfig.maxTokens, 1024, 'the deployment default');
      }
      // a stream over ConverseStream
      const st = await collectChat(await ex.sdk.chat.completions.create({
        model: 'claude-sonnet', messages: USER_HI, stream: true, stream_options: { include_usage: true },
      }));
      assert.deepEqual(st.deltas, wordChunks('mock reply from us.anthropic.claude-3-5-sonnet-20241022-v2:0'));
      assert.equal(st.finish, 'stop');
      assert.ok(st.usage && st.usage.total_tokens > 0);
      // drop_params: an OpenAI parameter Bedrock does not take is dropped, not refused
      const dropped = await ex.sdk.chat.completions.create({ model: 'nova-pro', messages: USER_HI, seed: 7 });
      assert.equal(dropped.choices[0].message.content, 'mock reply from amazon.nova-pro-v1:0');
      // a Bedrock throttle (after the retry) falls back to OpenAI
      await bmock.script({ rules: [{ match: { model: 'us.anthropic.claude-3-5-sonnet-20241022-v2:0' }, respond: { status: 429 } }] });
      const fb = await chatOnce(ex.sdk, 'claude-sonnet');
      assert.equal(fb.data.choices[0].message.content, 'mock reply from gpt-4o-mini');
      assert.equal(fb.up.headers.authorization, 'Bearer sk-up-openai');
      await bmock.script({ rules: [] });
      await sighupMidStream(ex, 'gpt-4o-mini');
    } finally {
      await ex.gw.stop();
      await bmock.stop();
    }
  },
};

function listFiles(dir, rel = '') {
  const out = [];
  for (const ent of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${ent.name}` : ent.name;
    if (ent.isDirectory()) out.push(...listFiles(dir, r));
    else out.push(r);
  }
  return out.sort();
}

test('every file in examples/ is run here: each config has a test, every other file is used by one', () => {
  const files = listFiles(examplesDir);
  const configs = files.filter((f) => !f.includes('/') && /\.ya?ml$/.test(f));
  assert.ok(configs.length > 0);
  assert.deepEqual(configs, Object.keys(EXAMPLES).sort(), 'a config in examples/ without an e2e test (add it to EXAMPLES)');
  const texts = configs.map(readExample).join('\n');
  for (const f of files.filter((x) => !configs.includes(x))) {
    assert.ok(texts.includes(f), `examples/${f} is not referenced by any example config, so nothing runs it`);
  }
});

for (const [name, run] of Object.entries(EXAMPLES)) {
  test(`examples/${name}: every model group answers, a stream, SIGHUP mid-stream`, { timeout: 60000 }, run);
}
