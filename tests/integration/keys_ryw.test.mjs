// Read-your-writes for keys over 4 workers: once /key/block, /key/delete, a model taken off a
// key, /team/block or /user/delete has answered, no request sent after that (each on a new
// connection, so each reaches some worker; all 4 are seen) passes with the old rights; and
// once /key/unblock answered, every later request passes.  Requests run throughout the
// change; those sent before it answered may go either way.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startKeysGateway, post, expectStatus, probe, stopsClean } from './keys_lib.mjs';
import { loadLoop, waitResults, now } from './lib_registry.mjs';

const W = 4;
const inst = await startKeysGateway({ workers: W });
const { gw } = inst;
after(async () => { await inst.stop(); });
const skip = await probe(gw);
if (skip) console.log(`# SKIP: ${skip}`);

const chat = (key, model, tag) => ({
  port: gw.port, path: '/v1/chat/completions', method: 'POST', key, tag,
  body: { model, messages: [{ role: 'user', content: tag }] },
});

/**
 * Runs requests (make) until every worker answered `before` to some of them, makes the
 * change, and keeps going until every worker answered at least `per` requests sent after
 * the change returned.  Returns {early, late} (before the call started / after it answered).
 */
async function across(make, before, change, { per = 15 } = {}) {
  const loop = loadLoop({ concurrency: 8, make, maxMs: 60000, maxRequests: 20000 });
  try {
    await waitResults(loop, (rs) => new Set(rs.filter(before).map((x) => x.worker)).size === W,
      { what: `every worker to answer as before the change (${before})` });
    const tStart = now();
    await change();
    const tDone = now();
    await waitResults(loop, (rs) => {
      const c = new Map();
      for (const x of rs) if (x.tSend > tDone && x.worker !== null) c.set(x.worker, (c.get(x.worker) || 0) + 1);
      return c.size === W && [...c.values()].every((n) => n >= per);
    }, { timeout: 30000, what: `${per} requests per worker after the change` });
    const rs = await loop.stop();
    const errors = rs.filter((x) => x.error);
    assert.deepEqual(errors.map((x) => `${x.tag}: ${x.error} (sent ${x.tSend - tDone}ms after the change answered)`), [],
      'every request got an answer');
    return { early: rs.filter((x) => x.tSend < tStart), late: rs.filter((x) => x.tSend > tDone), tDone };
  } finally {
    await loop.stop();
  }
}

function workersOf(rs) {
  return new Set(rs.map((x) => x.worker));
}

const t = (name, fn) => test(name, { skip: skip || false }, fn);

t('/key/block: every request after it answered is refused on every worker; /key/unblock: every one passes', async () => {
  const k = expectStatus(await post(gw, '/key/generate', {}), 200, 'key');
  const make = (i) => chat(k.key, 'm1', `blk-${i}`);
  const b = await across(make, (x) => x.status === 200, async () => {
    expectStatus(await post(gw, '/key/block', { key: k.key }), 200, 'block');
  });
  assert.ok(b.early.some((x) => x.status === 200));
  assert.equal(workersOf(b.late).size, W);
  const passed = b.late.filter((x) => x.status !== 401);
  assert.deepEqual(passed.map((x) => `${x.status} on worker ${x.worker}`), [], 'nothing passes after /key/block returned');
  assert.ok(b.late.every((x) => /Key is blocked/.test(x.json?.error?.message)));
  console.log(`# /key/block: ${b.late.length} requests after it, all 401, on ${workersOf(b.late).size} workers`);
  const u = await across(make, (x) => x.status === 401, async () => {
    expectStatus(await post(gw, '/key/unblock', { key: k.key }), 200, 'unblock');
  });
  const refused = u.late.filter((x) => x.status !== 200);
  assert.deepEqual(refused.map((x) => `${x.status} on worker ${x.worker}`), [], 'everything passes after /key/unblock returned');
});

t('/key/delete: every request after it answered is refused on every worker', async () => {
  const k = expectStatus(await post(gw, '/key/generate', {}), 200, 'key');
  const d = await across((i) => chat(k.key, 'm1', `del-${i}`), (x) => x.status === 200, async () => {
    expectStatus(await post(gw, '/key/delete', { keys: [k.key] }), 200, 'delete');
  });
  assert.equal(workersOf(d.late).size, W);
  assert.deepEqual(d.late.filter((x) => x.status !== 401).map((x) => `${x.status} on worker ${x.worker}`), []);
  assert.ok(d.late.every((x) => /Unable to find token/.test(x.json?.error?.message)));
});

t('a model taken off a key: no request for it passes after /key/update answered; the others still do', async () => {
  const k = expectStatus(await post(gw, '/key/generate', { models: ['m1', 'm2'] }), 200, 'key');
  const make = (i) => chat(k.key, i % 2 ? 'm2' : 'm1', `mod-${i}`);
  const m = await across(make, (x) => x.status === 200 && x.json?.model === 'm2', async () => {
    expectStatus(await post(gw, '/key/update', { key: k.key, models: ['m1'] }), 200, 'update');
  });
  const m2 = m.late.filter((x) => x.json?.model === 'm2' || /Tried to access m2/.test(x.json?.error?.message || ''));
  const m1 = m.late.filter((x) => x.json?.model === 'm1');
  assert.equal(workersOf(m.late).size, W);
  assert.ok(m2.length > 0 && m1.length > 0, `${m2.length} m2 and ${m1.length} m1 requests after the change`);
  assert.deepEqual(m2.filter((x) => x.status !== 401).map((x) => `${x.status} on worker ${x.worker}`), [], 'm2 never passes');
  assert.ok(m1.every((x) => x.status === 200), 'm1 still passes');
});

t('/team/block and /user/delete take effect on every worker before they answer', async () => {
  expectStatus(await post(gw, '/team/new', { team_id: 'ryw-team' }), 200, 'team');
  const tk = expectStatus(await post(gw, '/key/generate', { team_id: 'ryw-team' }), 200, 'team key');
  const tb = await across((i) => chat(tk.key, 'm1', `tb-${i}`), (x) => x.status === 200, async () => {
    expectStatus(await post(gw, '/team/block', { team_id: 'ryw-team' }), 200, 'team block');
  });
  assert.equal(workersOf(tb.late).size, W);
  assert.deepEqual(tb.late.filter((x) => x.status !== 401).map((x) => `${x.status} on worker ${x.worker}`), []);
  const u = expectStatus(await post(gw, '/user/new', { user_id: 'ryw-user' }), 200, 'user');
  const ud = await across((i) => chat(u.key, 'm1', `ud-${i}`), (x) => x.status === 200, async () => {
    expectStatus(await post(gw, '/user/delete', { user_ids: ['ryw-user'] }), 200, 'user delete');
  });
  assert.deepEqual(ud.late.filter((x) => x.status !== 401).map((x) => `${x.status} on worker ${x.worker}`), []);
});

stopsClean(test, inst);
