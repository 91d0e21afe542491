// tests/e2e/lib.mjs -- helpers for the end-to-end tests: the official openai
// npm client pointed at a moongate started by tests/lib/harness.mjs, stream
// collection, SDK error checks, and the environment that points the
// examples' providers at the mock provider.
//
// Every wait is a poll with a deadline (harness waitFor); nothing sleeps to
// synchronise.

import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { waitFor, startGateway } from '../lib/harness.mjs';

export { OpenAI };

/** An SDK client for a gateway; maxRetries 0 unless told otherwise. */
export function client(gw, { key, ...opts } = {}) {
  return new OpenAI({
    apiKey: key === undefined ? gw.masterKey : key,
    baseURL: `${gw.url}/v1`,
    maxRetries: 0,
    ...opts,
  });
}

/**
 * startGateway, then waits until every worker reports "ready" in
 * /moongate/state (the workers' own view) instead of the readiness probe.
 * Readiness has a startup race of its own (the master can overwrite a
 * worker's "ready" with "starting" after fork(); see readiness.test.mjs),
 * which must not make every other e2e file flaky.  `masterKey` is needed
 * when `config` is YAML text.
 */
export async function startGw({ masterKey, ...opts }) {
  const gw = await startGateway({ ...opts, waitReady: false });
  if (masterKey) gw.masterKey = masterKey;
  const n = opts.workers ?? 1;
  await waitFor(async () => {
    const r = await gw.request('/moongate/state');
    const ws = r.json?.workers;
    return r.status === 200 && Array.isArray(ws) && ws.length === n && ws.every((w) => w.state === 'ready');
  }, { timeout: 20000, what: 'every worker to load the registry' });
  return gw;
}

export const USER_HI = [{ role: 'user', content: 'hi' }];

/**
 * The mock provider's split of `content` when `chunks` is unset: one chunk per
 * word, each word with the whitespace after it (tests/mocks/README.md).
 */
export function wordChunks(content) {
  return content.match(/\S+\s*/g) ?? [];
}

/** `n` distinct words, so a stream's order is visible in its concatenation. */
export function words(n, tag = 'w') {
  return Array.from({ length: n }, (_, i) => `${tag}${i}`).join(' ');
}

/**
 * Iterates an SDK chat stream to its end.  Returns every chunk, the non-empty
 * content deltas in arrival order, their concatenation, the finish_reason and
 * the usage (from the chunk that carries it).  onChunk(chunk, state) runs for
 * each chunk.
 */
export async function collectChat(stream, onChunk = null) {
  const st = { chunks: [], deltas: [], text: '', finish: null, usage: null, roles: [] };
  for await (const ch of stream) {
    st.chunks.push(ch);
    const c = ch.choices?.[0];
    if (c?.delta?.role) st.roles.push({ at: st.chunks.length - 1, role: c.delta.role });
    if (typeof c?.delta?.content === 'string' && c.delta.content !== '') {
      st.deltas.push(c.delta.content);
      st.text += c.delta.content;
    }
    if (c?.finish_reason) st.finish = c.finish_reason;
    if (ch.usage) st.usage = ch.usage;
    if (onChunk) await onChunk(ch, st);
  }
  return st;
}

/** Same for a legacy completions stream (choices[].text). */
export async function collectText(stream) {
  const st = { chunks: [], deltas: [], text: '', finish: null, usage: null };
  for await (const ch of stream) {
    st.chunks.push(ch);
    const c = ch.choices?.[0];
    if (typeof c?.text === 'string' && c.text !== '') {
      st.deltas.push(c.text);
      st.text += c.text;
    }
    if (c?.finish_reason) st.finish = c.finish_reason;
    if (ch.usage) st.usage = ch.usage;
  }
  return st;
}

/** The `data:` payloads of an SSE body, in order. */
export function sseData(text) {
  const out = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const lines = block.split(/\r?\n/).filter((l) => l.startsWith('data:'));
    if (lines.length) out.push(lines.map((l) => l.slice(5).replace(/^ /, '')).join('\n'));
  }
  return out;
}

/**
 * Awaits `promise`, which must reject with an instance of `Class`; checks the
 * given fields (status, code, type, param; message: string = exact
 * error.error.message, RegExp = matched against it).  Returns the error.
 */
export async function expectApiError(promise, Class, want = {}) {
  let err = null;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected ${Class.name}, the call succeeded`);
  assert.ok(err instanceof Class,
    `expected ${Class.name}, got ${err?.constructor?.name}: ${err?.message}`);
  if ('exactClass' in want) {
    assert.equal(err.constructor, want.exactClass, `expected exactly ${want.exactClass.name}`);
  }
  if ('status' in want) assert.equal(err.status, want.status, `status (message: ${err.message})`);
  for (const f of ['code', 'type', 'param']) {
    if (f in want) assert.equal(err[f], want[f], `error.${f} (message: ${err.message})`);
  }
  if ('message' in want) {
    const m = err.error?.message;
    assert.equal(typeof m, 'string', `the body has error.message (${JSON.stringify(err.error)})`);
    if (want.message instanceof RegExp) assert.match(m, want.message);
    else assert.equal(m, want.message);
    // the SDK prefixes the status to its own message
    if (err.status) assert.equal(err.message, `${err.status} ${m}`);
    else assert.equal(err.message, m);
  }
  return err;
}

/** Escapes a literal for use inside a RegExp. */
export function re(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** LiteLLM's fallback suffix when no fallbacks are configured. */
export function noFallbackSuffix(group) {
  return `. Received Model Group=${group}\nAvailable Model Group Fallbacks=None`;
}

/**
 * Environment that points every provider the examples use at the mock, with
 * distinct upstream keys (so the mock's log shows which key was used).
 * OpenAI-style providers get the mock's /v1 base; Azure gets the bare origin
 * (moongate appends /openai/deployments/<dep>/...).
 */
export function providerEnv(mock, extra = {}) {
  return {
    OPENAI_API_KEY: 'sk-up-openai',
    OPENAI_API_BASE: mock.url,
    GROQ_API_KEY: 'gsk-up-groq',
    GROQ_API_BASE: mock.url,
    AZURE_API_KEY: 'az-up-key',
    AZURE_API_BASE: mock.base,
    VLLM_API_BASE: mock.url,
    LITELLM_MASTER_KEY: 'sk-e2e-master',
    ...extra,
  };
}

// Variables from the developer's shell that would change what the gateway
// under test does (real keys, real endpoints, a database): never inherited.
for (const name of ['OPENAI_API_KEY', 'OPENAI_API_BASE', 'OPENAI_BASE_URL', 'OPENAI_ORGANIZATION',
  'AZURE_API_KEY', 'AZURE_API_BASE', 'AZURE_API_VERSION', 'AZURE_OPENAI_API_KEY', 'AZURE_OPENAI_ENDPOINT',
  'GROQ_API_KEY', 'GROQ_API_BASE', 'HOSTED_VLLM_API_BASE', 'HOSTED_VLLM_API_KEY', 'VLLM_API_BASE',
  'LITELLM_MASTER_KEY', 'DATABASE_URL', 'REDIS_HOST', 'REDIS_URL', 'REDIS_PORT', 'REDIS_PASSWORD',
  'STORE_MODEL_IN_DB', 'SERVER_ROOT_PATH', 'CONFIG_FILE_PATH', 'PORT', 'HOST', 'NUM_WORKERS',
  'GEMINI_API_KEY', 'GEMINI_API_BASE', 'GOOGLE_API_KEY', 'GOOGLE_APPLICATION_CREDENTIALS', 'VERTEXAI_CREDENTIALS',
  'VERTEX_CREDENTIALS', 'VERTEXAI_PROJECT', 'VERTEXAI_LOCATION', 'VERTEX_LOCATION',
  'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_REGION', 'AWS_REGION_NAME',
  'AWS_DEFAULT_REGION', 'AWS_BEDROCK_RUNTIME_ENDPOINT', 'AWS_BEARER_TOKEN_BEDROCK']) {
  delete process.env[name];
}

/** The smallest config_generation over all workers, from /moongate/state. */
export async function minConfigGeneration(gw) {
  const s = await gw.state();
  assert.ok(Array.isArray(s?.workers) && s.workers.length > 0, `state: ${JSON.stringify(s)}`);
  return Math.min(...s.workers.map((w) => w.config_generation));
}

/** Polls until every worker has applied a config generation above `gen`. */
export async function waitAllWorkersPast(gw, gen, what = 'every worker to apply the reload') {
  return waitFor(async () => (await minConfigGeneration(gw)) > gen, { timeout: 15000, what });
}

/**
 * Sends requests one after another (via `send(i)`, which resolves to true on
 * success) until stop() has been called, then `tail` more.  Returns
 * { ok, failed, errors }.  Bounded by `max`.
 */
export function backgroundLoad(send, { tail = 20, max = 2000 } = {}) {
  let stopping = false;
  const res = { ok: 0, failed: 0, errors: [] };
  const done = (async () => {
    let after = 0;
    for (let i = 0; i < max; i++) {
      if (stopping && after++ >= tail) break;
      try {
        if (await send(i)) res.ok++;
        else res.failed++;
      } catch (e) {
        res.failed++;
        if (res.errors.length < 5) res.errors.push(String(e?.message ?? e));
      }
    }
    return res;
  })();
  // stop() may be called more than once; each call returns the same result
  return { stop() { stopping = true; return done; } };
}

/** Inserts a model_list entry right after the top-level "model_list:" line of a YAML text. */
export function withExtraModel(yamlText, entryYaml) {
  const m = /^model_list:[ \t]*(#.*)?\r?\n/m.exec(yamlText);
  assert.ok(m, 'the config has a top-level model_list');
  const at = m.index + m[0].length;
  return yamlText.slice(0, at) + entryYaml + yamlText.slice(at);
}
