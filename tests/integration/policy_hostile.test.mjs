// "A policy cannot take a worker down": hostile policies that pass the check
// at POST /policy/update (they misbehave only for one model group) and then
// run inside a worker.  The request must still be answered in the configured
// order, within a bound far above the policy budget (5 s for a 5 ms budget),
// and the worker must keep serving.  Each hostile request goes over one
// keep-alive connection whose worker is known, so a hung worker can be
// killed by its pid afterwards.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { startMock, startGateway, mockModel, waitFor } from '../lib/harness.mjs';
import { req, chatBody, state } from './lib_policy.mjs';

const KEY = 'sk-test-policy-hostile';
const WORKERS = 2;
const BOUND_MS = 5000;

const mock = await startMock();
const groups = ['calm', 'crash', 'spin', 'bomb', 'write'];
const gw = await startGateway({
  config: {
    model_list: groups.flatMap((g) => [
      mockModel(mock, g, { model: `openai/up-${g}-1`, info: { id: `${g}-1` } }),
      mockModel(mock, g, { model: `openai/up-${g}-2`, info: { id: `${g}-2` } }),
    ]),
    general_settings: { master_key: KEY },
    moongate_settings: { drain_timeout_seconds: 1 },
  },
  workers: WORKERS,
});
const hung = new Set();
/** SIGKILL pid only if it is still one of this gateway's workers (its parent is our master). */
function killWorker(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === gw.child.pid) process.kill(pid, 'SIGKILL');
  } catch { /* gone */ }
}
after(async () => {
  for (const pid of hung) killWorker(pid);
  await gw.stop();
  await mock.stop();
});

// one policy for all cases: misbehaves by ctx.group, else the configured order
const HOSTILE = `local _M = { name = "hostile", kind = "routing" }

function _M.select(ctx, candidates, conf)
    local g = ctx.group
    if g == "crash" then
        local x = candidates[1].stats.id[-(2 ^ 40)]
    elseif g == "spin" then
        xpcall(function() while true do end end, function() while true do end end)
    elseif g == "bomb" then
        string.find(string.rep("a", 40), string.rep("a?", 40) .. string.rep("a", 40) .. "b")
    elseif g == "write" and ctx.tokens > 100 then
        -- bytes 104..111 of the 96-byte id array are cooldown_until_ms
        local s = candidates[1].stats
        for i = 104, 111 do s.id[i] = 0x7f end
    end
    return candidates
end

return _M
`;

let installed = false;
async function install() {
  if (installed) return;
  const r = await req(gw.port, '/policy/update', { method: 'POST', key: KEY, body: { kind: 'routing', source: HOSTILE } });
  assert.equal(r.status, 200, `the check must not catch it (it only misbehaves for some groups): ${r.text}`);
  await waitFor(async () => (await state(gw.port, KEY)).workers.every((w) => w.registry_version >= r.json.version),
    { what: 'every worker on the hostile policy' });
  installed = true;
}

/** A keep-alive connection pinned to one worker: {send(model, content, timeout), worker, pid, close()}. */
async function pinned() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const send = (model, content = 'hi', timeout = BOUND_MS) =>
    req(gw.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: chatBody(model, content), agent, timeout });
  const first = await send('calm');
  assert.equal(first.status, 200, first.text);
  assert.equal(first.modelId, 'calm-1', 'the hostile policy keeps the configured order');
  const s = await state(gw.port, KEY);
  const pid = s.workers.find((w) => w.worker === first.worker).pid;
  return { send, worker: first.worker, pid, close: () => agent.destroy() };
}

async function hostileRequest(group) {
  await install();
  const c = await pinned();
  const t0 = Date.now();
  const r = await c.send(group);
  const ms = Date.now() - t0;
  c.close();
  if (r.error) {
    hung.add(c.pid); // a worker that does not answer is killed (now, and again at the end)
    killWorker(c.pid);
  }
  return { r, ms, worker: c.worker };
}

test('a policy reading far outside its FFI stats view does not crash the worker', async () => {
  const { r, ms } = await hostileRequest('crash');
  assert.ok(!r.error, `the request failed after ${ms} ms: ${r.error}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.modelId, 'crash-1');
});

test('xpcall(spin, spinning handler) is stopped by the budget', async () => {
  const { r, ms } = await hostileRequest('spin');
  assert.ok(!r.error, `no answer within ${ms} ms: ${r.error}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.modelId, 'spin-1');
});

test('a backtracking string.find is stopped by the budget', async () => {
  const { r, ms } = await hostileRequest('bomb');
  assert.ok(!r.error, `no answer within ${ms} ms: ${r.error}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.modelId, 'bomb-1');
});

test('a policy cannot write the shared statistics (e.g. cool a deployment down for every worker)', async () => {
  await install();
  const r = await req(gw.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: chatBody('write', 'x'.repeat(600)) });
  assert.equal(r.status, 200, r.text);
  // the write must have failed (counted as a policy error), and write-1 still serves
  const seen = new Set();
  for (let i = 0; i < 20; i++) {
    const x = await req(gw.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: chatBody('write') });
    assert.equal(x.status, 200, x.text);
    seen.add(x.modelId);
  }
  assert.deepEqual([...seen], ['write-1'], 'configured order, write-1 not cooled down');
});

test('after all that, every worker still serves', async () => {
  await waitFor(async () => {
    const s = await state(gw.port, KEY);
    return s.workers.length === WORKERS && s.workers.every((w) => w.state === 'ready') ? s : false;
  }, { timeout: 20000, what: 'every worker ready (respawned if it died)' });
  const seen = new Set();
  for (let i = 0; i < 60 && seen.size < WORKERS; i++) {
    const r = await req(gw.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: chatBody('calm'), timeout: BOUND_MS });
    if (r.status === 200) seen.add(r.worker);
  }
  assert.equal(seen.size, WORKERS);
});
