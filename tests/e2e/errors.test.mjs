// Error statuses, classes and messages as the official openai npm client sees
// them: moongate's own errors (auth, unknown model, missing params, unknown
// route, timeouts) and upstream errors mapped to LiteLLM's exception texts
// (/work/notes/litellm-behaviour.md §2, §3).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startMock, mockModel, startPostgres, refusedPort, waitFor } from '../lib/harness.mjs';
import { OpenAI, client, USER_HI, expectApiError, noFallbackSuffix, re, startGw } from './lib.mjs';

const mock = await startMock();
const deadPort = await refusedPort(); // nothing listens here
const gw = await startGw({
  config: {
    model_list: [
      mockModel(mock, 'gpt-4o', { model: 'openai/gpt-4o-mini', key: 'sk-upstream-err' }),
      // an upstream 401 cools its (single) deployment down, as in LiteLLM: a group of its own
      mockModel(mock, 'gpt-4o-auth', { model: 'openai/gpt-4o-auth', key: 'sk-upstream-err' }),
      mockModel(mock, 'slow', { model: 'openai/gpt-4o-slow', key: 'sk-upstream-err', extra: { timeout: 0.5 } }),
      { model_name: 'down', litellm_params: { model: 'openai/gpt-4o-down', api_base: `http://127.0.0.1:${deadPort}/v1`, api_key: 'sk-x' } },
      mockModel(mock, 'text-embedding-3-small', { model: 'openai/text-embedding-3-small', key: 'sk-upstream-err' }),
    ],
    router_settings: { num_retries: 0 },
    general_settings: { master_key: 'sk-e2e-errors' },
  },
  workers: 2,
});
after(async () => { await gw.stop(); await mock.stop(); });

const sdk = client(gw);
const chat = (body, opts) => sdk.chat.completions.create({ model: 'gpt-4o', messages: USER_HI, ...body }, opts);

// ---- moongate's own errors ----

test('401 AuthenticationError: no key at all', async () => {
  const anon = client(gw, { defaultHeaders: { authorization: null } });
  await expectApiError(anon.chat.completions.create({ model: 'gpt-4o', messages: USER_HI }), OpenAI.AuthenticationError, {
    status: 401, code: '401', type: 'auth_error', param: 'None',
    message: 'Authentication Error, No api key passed in.',
  });
});

test('401 AuthenticationError: an Authorization header without the Bearer prefix', async () => {
  const odd = client(gw, { defaultHeaders: { authorization: 'Token sk-e2e-errors' } });
  await expectApiError(odd.models.list(), OpenAI.AuthenticationError, {
    status: 401, code: '401', type: 'auth_error',
    message: 'Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix.',
  });
});

test('a wrong key with no database: 401 AuthenticationError (LiteLLM says 400 "No connected db."; keys live in the embedded store here)', async () => {
  const before = (await mock.stats()).last_seq;
  const wrong = client(gw, { key: 'sk-not-the-master-key' });
  await expectApiError(wrong.chat.completions.create({ model: 'gpt-4o', messages: USER_HI }), OpenAI.AuthenticationError, {
    status: 401, code: '401', type: 'token_not_found_in_db', param: 'key',
    message: /^Authentication Error, Invalid proxy server token passed\./,
  });
  assert.equal((await mock.log(before)).length, 0, 'nothing reached the upstream');
});

test('400 BadRequestError: unknown model, with LiteLLM\'s "Invalid model name" message', async () => {
  await expectApiError(chat({ model: 'gpt-5-nope' }), OpenAI.BadRequestError, {
    status: 400, code: '400', type: 'None', param: 'None',
    message: "{'error': '/chat/completions: Invalid model name passed in model=gpt-5-nope. Call `/v1/models` to view available models for your key.'}",
  });
  await expectApiError(sdk.embeddings.create({ model: 'nope-emb', input: 'x' }), OpenAI.BadRequestError, {
    status: 400,
    message: "{'error': '/embeddings: Invalid model name passed in model=nope-emb. Call `/v1/models` to view available models for your key.'}",
  });
  await expectApiError(sdk.completions.create({ model: 'nope-cmpl', prompt: 'x' }), OpenAI.BadRequestError, {
    status: 400,
    message: "{'error': '/completions: Invalid model name passed in model=nope-cmpl. Call `/v1/models` to view available models for your key.'}",
  });
});

test('400 BadRequestError: a missing required parameter', async () => {
  await expectApiError(sdk.chat.completions.create({ model: 'gpt-4o' }), OpenAI.BadRequestError, {
    status: 400, code: '400', type: 'invalid_request_error', param: 'messages',
    message: "/chat/completions: Missing required parameter: 'messages'.",
  });
  await expectApiError(sdk.post('/embeddings', { body: { model: 'text-embedding-3-small' } }), OpenAI.BadRequestError, {
    status: 400, type: 'invalid_request_error', param: 'input',
    message: "/embeddings: Missing required parameter: 'input'.",
  });
});

test('404 NotFoundError: an unknown route (client.get on a bogus path)', async () => {
  const err = await expectApiError(sdk.get('/definitely-not-a-route'), OpenAI.NotFoundError, { status: 404 });
  assert.match(err.message, /^404 /);
  assert.equal(err.headers.get('content-type')?.split(';')[0], 'application/json');
});

// ---- upstream errors mapped to LiteLLM's exceptions ----

test('400 BadRequestError: an upstream invalid parameter keeps its type and param', async () => {
  const body = JSON.stringify({ error: { message: "Invalid value for 'temperature'", type: 'invalid_request_error', param: 'temperature', code: null } });
  await expectApiError(chat({ temperature: 9, mock: { status: 400, body } }), OpenAI.BadRequestError, {
    status: 400, code: '400', type: 'invalid_request_error', param: 'temperature',
    message: `litellm.BadRequestError: OpenAIException - Invalid value for 'temperature'${noFallbackSuffix('gpt-4o')}`,
  });
});

test('400 BadRequestError: context window exceeded', async () => {
  await expectApiError(chat({ mock: { status: 400, error_code: 'context_length_exceeded' } }), OpenAI.BadRequestError, {
    status: 400, code: '400', type: null, param: null,
    message: new RegExp(`^litellm\\.ContextWindowExceededError: ContextWindowExceededError: OpenAIException - This model's maximum context length is 8192 tokens\\..*${re(noFallbackSuffix('gpt-4o'))}$`, 's'),
  });
});

test('429 RateLimitError: litellm.RateLimitError message with the Received Model Group suffix', async () => {
  const err = await expectApiError(
    chat({ mock: { status: 429, error_message: 'Rate limit reached for requests', retry_after: 1 } }),
    OpenAI.RateLimitError,
    {
      status: 429, code: '429', type: 'throttling_error', param: null,
      message: `litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for requests${noFallbackSuffix('gpt-4o')}`,
    },
  );
  assert.deepEqual(Object.keys(err.error).sort(), ['code', 'message', 'param', 'type']);
});

test('401 AuthenticationError: the upstream refuses the deployment key', async () => {
  await expectApiError(chat({ model: 'gpt-4o-auth', mock: { status: 401, error_message: 'Incorrect API key provided: sk-up***' } }), OpenAI.AuthenticationError, {
    status: 401, code: '401',
    message: `litellm.AuthenticationError: AuthenticationError: OpenAIException - Incorrect API key provided: sk-up***${noFallbackSuffix('gpt-4o-auth')}`,
  });
});

test('upstream 403 is litellm.APIError with code "403" (PermissionDeniedError in the SDK)', async () => {
  const body = JSON.stringify({ error: { message: 'denied', type: 'permission_error', param: null, code: 'forbidden' } });
  await expectApiError(chat({ mock: { status: 403, body } }), OpenAI.PermissionDeniedError, {
    status: 403, code: '403',
    message: `litellm.APIError: APIError: OpenAIException - denied${noFallbackSuffix('gpt-4o')}`,
  });
});

test('an upstream 4xx of type invalid_request_error is a 400 BadRequestError (LiteLLM\'s rule order)', async () => {
  // the mock's default 403 body has type invalid_request_error
  await expectApiError(chat({ mock: { status: 403, error_message: 'no access' } }), OpenAI.BadRequestError, {
    status: 400, code: '400', type: 'invalid_request_error',
    message: `litellm.BadRequestError: OpenAIException - no access${noFallbackSuffix('gpt-4o')}`,
  });
});

test('500 InternalServerError from the upstream', async () => {
  await expectApiError(chat({ mock: { status: 500, error_message: 'boom' } }), OpenAI.InternalServerError, {
    status: 500, code: '500', type: null,
    message: `litellm.InternalServerError: InternalServerError: OpenAIException - boom${noFallbackSuffix('gpt-4o')}`,
  });
});

test('503 from the upstream is litellm.ServiceUnavailableError (InternalServerError in the SDK)', async () => {
  await expectApiError(chat({ mock: { status: 503, error_message: 'overloaded' } }), OpenAI.InternalServerError, {
    status: 503, code: '503',
    message: `litellm.ServiceUnavailableError: ServiceUnavailableError: OpenAIException - overloaded${noFallbackSuffix('gpt-4o')}`,
  });
});

test('an upstream that refuses connections: 500 "Connection error."', async () => {
  await expectApiError(sdk.chat.completions.create({ model: 'down', messages: USER_HI }), OpenAI.InternalServerError, {
    status: 500, code: '500',
    message: new RegExp(`^litellm\\.InternalServerError: InternalServerError: OpenAIException - Connection error\\..*${re(noFallbackSuffix('down'))}$`, 's'),
  });
});

// ---- timeouts ----

test('moongate\'s own request timeout: 408 litellm.Timeout, and the upstream request is closed', async () => {
  const before = (await mock.stats()).last_seq;
  const err = await expectApiError(
    sdk.chat.completions.create({ model: 'slow', messages: USER_HI, mock: { latency_ms: 20000, id: 'gw-timeout' } }),
    OpenAI.APIError,
    {
      exactClass: OpenAI.APIError, status: 408, code: '408', type: null,
      message: new RegExp(`^litellm\\.Timeout: APITimeoutError - Request timed out\\..*\\n\\nDeployment Info: request_timeout: None\\ntimeout: 0\\.5${re(noFallbackSuffix('slow'))}$`, 's'),
    },
  );
  assert.ok(!(err instanceof OpenAI.APIConnectionError), 'a gateway timeout is an HTTP answer, not a client timeout');
  const e = await waitFor(async () => {
    const x = (await mock.log(before)).find((l) => l.behaviour_id === 'gw-timeout');
    return x && x.outcome !== 'in_progress' && x;
  }, { timeout: 10000, what: 'moongate to close the timed-out upstream request' });
  assert.equal(e.outcome, 'client_closed');
});

test('a client-side timeout: APIConnectionTimeoutError, and moongate closes the upstream request', async () => {
  const before = (await mock.stats()).last_seq;
  let err = null;
  try {
    await chat({ mock: { latency_ms: 20000, id: 'sdk-timeout' } }, { timeout: 300 });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof OpenAI.APIConnectionTimeoutError, `got ${err?.constructor?.name}: ${err?.message}`);
  assert.equal(err.status, undefined);
  const e = await waitFor(async () => {
    const x = (await mock.log(before)).find((l) => l.behaviour_id === 'sdk-timeout');
    return x && x.outcome !== 'in_progress' && x;
  }, { timeout: 10000, what: 'moongate to close the abandoned upstream request' });
  assert.equal(e.outcome, 'client_closed');
  // the gateway is fine afterwards
  const r = await chat({});
  assert.equal(r.choices[0].message.content, 'mock reply from gpt-4o-mini');
});

test('APIConnectionError: nothing listens at the base URL', async () => {
  const port = await refusedPort();
  const c = new OpenAI({ apiKey: 'sk-x', baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
  let err = null;
  try { await c.models.list(); } catch (e) { err = e; }
  assert.ok(err instanceof OpenAI.APIConnectionError, `got ${err?.constructor?.name}`);
  assert.ok(!(err instanceof OpenAI.APIConnectionTimeoutError));
});

// ---- with a database: a wrong key is a 401 ----

test('401 AuthenticationError: an unknown sk- key when a database is configured', async () => {
  const pg = await startPostgres();
  const g = await startGw({
    config: {
      model_list: [mockModel(mock, 'gpt-4o', { model: 'openai/gpt-4o-mini' })],
      general_settings: { master_key: 'sk-e2e-errors-db' },
    },
    env: { DATABASE_URL: pg.url },
  });
  try {
    const key = 'sk-e2e-unknown-virtual-key-7731';
    const hash = createHash('sha256').update(key).digest('hex');
    await expectApiError(client(g, { key }).chat.completions.create({ model: 'gpt-4o', messages: USER_HI }),
      OpenAI.AuthenticationError, {
        status: 401, code: '401', type: 'token_not_found_in_db', param: 'key',
        message: `Authentication Error, Invalid proxy server token passed. Received API Key = sk-...7731, Key Hash (Token) =${hash}. Unable to find token in cache or \`LiteLLM_VerificationTokenTable\``,
      });
    await expectApiError(client(g, { key: 'not-an-sk-key' }).models.list(), OpenAI.AuthenticationError, {
      status: 401, code: '401', type: 'auth_error',
      message: /^Authentication Error, LiteLLM Virtual Key expected\. Received=.*, expected to start with 'sk-'\.$/,
    });
    // the master key still works
    const r = await client(g).chat.completions.create({ model: 'gpt-4o', messages: USER_HI });
    assert.equal(r.model, 'gpt-4o');
  } finally {
    await g.stop();
    await pg.stop();
  }
});
