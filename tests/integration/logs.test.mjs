// Logs: json_logs (litellm_settings) and JSON_LOGS give one JSON object per line for every
// record, from the master and every worker; an access record per request carries what an
// operator reads (call id, method, path, status, group, deployment, provider, attempts,
// fallbacks, latency, ttft, tokens, cost) and never a secret.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, mockModel, waitFor } from '../lib/harness.mjs';

const MASTER = 'sk-logs-master-key-0123456789';
const UP_KEY = 'sk-upstream-logs-secret-abcdef123456';
const mock = await startMock();
after(async () => { await mock.stop(); });

const config = (extra = {}) => ({
  model_list: [
    mockModel(mock, 'gpt-4o', { key: UP_KEY }),
    mockModel(mock, 'flaky', { key: 'sk-upstream-flaky-0000111122223333' }),
    { model_name: 'backup', litellm_params: { model: 'openai/b', mock_response: 'from backup' } },
  ],
  router_settings: { fallbacks: [{ flaky: ['backup'] }], num_retries: 1, retry_after: 0 },
  general_settings: { master_key: MASTER },
  ...extra,
});

function jsonLines(text) {
  const lines = text.split('\n').filter((l) => l.length > 0);
  return lines.map((l) => {
    try {
      return JSON.parse(l);
    } catch {
      assert.fail(`a log line is not JSON: ${l}`);
    }
  });
}

async function exercise(gw) {
  const ok = await gw.chat({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hello' }] }, {
    headers: { 'x-litellm-call-id': 'call-logs-ok-1' },
  });
  assert.equal(ok.status, 200, ok.text);
  const st = await gw.chat({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] }, {
    headers: { 'x-litellm-call-id': 'call-logs-stream-1' },
  });
  assert.equal(st.status, 200);
  await mock.script({ rules: [{ match: { auth: 'Bearer sk-upstream-flaky-0000111122223333' }, respond: { status: 500 } }] });
  const fb = await gw.chat({ model: 'flaky', messages: [{ role: 'user', content: 'x' }] }, {
    headers: { 'x-litellm-call-id': 'call-logs-fallback-1' },
  });
  assert.equal(fb.status, 200, fb.text);
  await mock.reset();
  const bad = await gw.request('/v1/models?api_key=sk-in-query-should-not-be-logged', { key: 'sk-not-the-key-xyz987' });
  assert.notEqual(bad.status, 200);
}

test('json_logs: every line of every process is one JSON object; access records are complete', async () => {
  const gw = await startGateway({ config: config({ litellm_settings: { json_logs: true } }), workers: 2, env: { LITELLM_LOG: 'INFO' } });
  try {
    await exercise(gw);
    await waitFor(() => gw.output().stderr.includes('call-logs-fallback-1') && gw.output().stderr.includes('call-logs-stream-1'),
      { what: 'the access records' });
    await gw.stop();
    const recs = jsonLines(gw.output().stderr);
    assert.ok(recs.some((r) => r.process === 'master'), 'the master logs JSON');
    assert.ok(recs.some((r) => r.process === 'worker' && r.worker === 0), 'workers log JSON with their index');
    for (const r of recs) {
      assert.equal(typeof r.timestamp, 'string');
      assert.match(r.level, /^(DEBUG|INFO|WARNING|ERROR)$/);
      assert.equal(typeof r.message, 'string');
    }
    const access = (id) => recs.find((r) => r.message === 'access' && r.request_id === id);
    const a = access('call-logs-ok-1');
    assert.ok(a, 'an access record for the call');
    assert.equal(a.method, 'POST');
    assert.equal(a.path, '/v1/chat/completions');
    assert.equal(a.status, 200);
    assert.equal(a.model_group, 'gpt-4o');
    assert.equal(a.provider, 'openai');
    assert.equal(typeof a.model_id, 'string');
    assert.equal(a.attempts, 1);
    assert.equal(a.fallbacks, 0);
    assert.equal(a.stream, false);
    assert.ok(a.latency_ms > 0);
    assert.ok(a.prompt_tokens > 0 && a.completion_tokens > 0);
    assert.equal(a.total_tokens, a.prompt_tokens + a.completion_tokens);
    const s = access('call-logs-stream-1');
    assert.equal(s.stream, true);
    assert.ok(s.ttft_ms > 0, 'a stream has its time to first token');
    const f = access('call-logs-fallback-1');
    assert.equal(f.model_group, 'flaky');
    assert.equal(f.attempts, 3, 'two tries on flaky, one on backup');
    assert.equal(f.fallbacks, 1);
    // admin routes get a short record; the query string is not logged
    const m = recs.find((r) => r.message === 'access' && r.path === '/v1/models');
    assert.ok(m);
    assert.ok(m.status >= 400, 'a wrong key is refused');
    const all = gw.output().stderr;
    for (const secret of [MASTER, UP_KEY, 'sk-in-query-should-not-be-logged', 'sk-not-the-key-xyz987', 'sk-upstream-flaky-0000111122223333']) {
      assert.ok(!all.includes(secret), `no secret in the log (${secret.slice(0, 8)}...)`);
    }
  } finally {
    await gw.stop();
  }
});

test('JSON_LOGS=True does the same from the first line', async () => {
  const gw = await startGateway({ config: config(), env: { JSON_LOGS: 'True', LITELLM_LOG: 'INFO' } });
  try {
    const r = await gw.chat({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 200);
    await waitFor(() => /"message":"access"/.test(gw.output().stderr), { what: 'an access record' });
  } finally {
    await gw.stop();
  }
  const recs = jsonLines(gw.output().stderr);
  assert.ok(recs.length >= 3);
});

test('text logs: the access record is one key=value line', async () => {
  const gw = await startGateway({ config: config(), env: { LITELLM_LOG: 'INFO' } });
  try {
    const r = await gw.chat({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }, {
      headers: { 'x-litellm-call-id': 'call-text-1' },
    });
    assert.equal(r.status, 200);
    await waitFor(() => /req=call-text-1: access /.test(gw.output().stderr), { what: 'a text access record' });
    const line = gw.output().stderr.split('\n').find((l) => l.includes('req=call-text-1: access'));
    assert.match(line, / method=POST path=\/v1\/chat\/completions status=200 latency_ms=[0-9.]+ model_group=gpt-4o /);
    assert.match(line, / attempts=1 fallbacks=0 stream=false /);
    assert.ok(!line.trimStart().startsWith('{'));
  } finally {
    await gw.stop();
  }
});

test('at the default level there is no access record (one line per request costs CPU)', async () => {
  const gw = await startGateway({ config: config(), env: { LITELLM_LOG: 'WARNING' } });
  try {
    const r = await gw.chat({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 200);
  } finally {
    await gw.stop();
  }
  assert.doesNotMatch(gw.output().stderr, /access/);
});
