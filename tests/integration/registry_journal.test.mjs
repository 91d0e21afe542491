// The embedded store's journal: kill -9 of the whole instance (master and
// every worker) during a burst of model mutations from concurrent clients,
// then a restart on the same state directory: every acknowledged mutation is
// there and nothing that failed is half-present.  A torn tail (the last record
// cut in the middle) is repaired and reported, earlier records kept; damage
// followed by valid records refuses to load, loudly.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startMock, startGateway, mockModel, tmpDir } from '../lib/harness.mjs';
import { req, startLoaded, state, waitState, waitResults, killInstance } from './lib_registry.mjs';

const KEY = 'sk-journal-master';
const W = 4;
const mock = await startMock();
const stateDir = path.join(tmpDir('mg-journal-'), 'state');
const journal = path.join(stateDir, 'registry.journal');
const config = { model_list: [mockModel(mock, 'cfg-model')], general_settings: { master_key: KEY } };
const running = new Set();
after(async () => { for (const g of running) await g.stop('SIGKILL'); await mock.stop(); });

async function start(workers = W) {
  const g = await startLoaded({ config, workers, stateDir });
  running.add(g);
  return g;
}

/** id -> {rpm, tpm, gen, n} from /model/info (stored models only). */
async function stored(g) {
  const r = await req(g.port, '/model/info', { key: KEY });
  assert.equal(r.status, 200, r.text);
  const m = new Map();
  for (const d of r.json.data) {
    if (!d.model_info.db_model) continue;
    const id = d.model_info.id;
    const cur = m.get(id);
    m.set(id, { rpm: d.litellm_params.rpm, tpm: d.litellm_params.tpm, gen: d.model_info.gen, name: d.model_name, n: (cur?.n || 0) + 1 });
  }
  return m;
}

// Per id the mutations run in this order, one at a time: S0 (absent)
// -create-> S1 -update-> S2 -delete-> S3 (absent; only for even k).
const STATES = [
  null,
  { rpm: 1, tpm: 1001, gen: 1 },
  { rpm: 2, tpm: 1002, gen: 2 },
  null,
];

test('kill -9 during a burst of mutations: every acknowledged mutation survives the restart, nothing half-applied', async () => {
  const ops = [];           // every mutation sent, all rounds: {id, step, status, error, version}
  let gw = await start();
  for (let round = 0; round < 3; round++) {
    const pids = (await state(gw.port, KEY)).workers.map((w) => w.pid);
    assert.equal(pids.length, W);
    let killed = false;
    const mine = [];
    const acked = () => mine.filter((o) => o.status === 200).length;
    const g = gw;
    async function client(c) {
      for (let k = 0; !killed && k < 1000; k++) {
        const id = `j${round}-${c}-${k}`;
        const steps = k % 2 === 0 ? 3 : 2;
        for (let step = 1; step <= steps && !killed; step++) {
          const o = { id, step, k };
          ops.push(o);
          mine.push(o);
          let r;
          if (step === 1) {
            r = await req(g.port, '/model/new', { method: 'POST', key: KEY, body: {
              model_name: `jm-${c}`, model_info: { id, gen: 1 },
              litellm_params: { model: 'openai/j', api_base: mock.url, api_key: `sk-${id}`, rpm: 1, tpm: 1001 } } });
          } else if (step === 2) {
            r = await req(g.port, '/model/update', { method: 'POST', key: KEY, body: {
              model_info: { id, gen: 2 }, litellm_params: { rpm: 2, tpm: 1002 } } });
          } else {
            r = await req(g.port, '/model/delete', { method: 'POST', key: KEY, body: { id } });
          }
          o.status = r.status;
          o.error = r.error;
          o.version = r.json?.version;
          if (r.status !== 200) return; // a failed or cut step ends this client's sequence
        }
      }
    }
    const clients = Array.from({ length: 12 }, (_, c) => client(c));
    await waitResults({ results: mine }, () => acked() >= 40, { timeout: 30000, what: '40 acknowledged mutations' });
    killed = true;
    await killInstance(gw, pids);
    running.delete(gw);
    await Promise.all(clients);

    const failed = mine.filter((o) => o.status !== undefined && o.status !== 200 && !o.error);
    assert.deepEqual(failed.map((o) => `${o.id} step ${o.step}: ${o.status}`), [], 'no mutation was refused before the kill');
    const cut = mine.filter((o) => o.status !== 200);
    const maxV = Math.max(...ops.filter((o) => o.status === 200).map((o) => o.version));

    gw = await start();
    const { bad, inFlightApplied } = await check(gw, ops, new Set(mine.map((o) => o.id)));
    assert.deepEqual(bad, [], `round ${round}`);
    const s = await state(gw.port, KEY);
    for (const w of s.workers) {
      assert.ok(w.registry_version >= maxV, `worker ${w.worker} at ${w.registry_version} < acknowledged ${maxV}`);
      assert.equal(w.store.type, 'journal');
      assert.equal(w.last_load_error, null);
    }
    console.log(`# round ${round}: kill -9 after ${acked()} acknowledged mutations (max version ${maxV}); ` +
      `${cut.length} cut in flight, ${inFlightApplied} of them committed; restarted at version ${s.workers[0].registry_version}; ` +
      `repair: ${s.workers.map((w) => w.store.repaired).find((x) => x) || 'none'}`);
  }
  // the restarted instance serves the survivors
  const m = await stored(gw);
  const some = [...m.keys()][0];
  assert.ok(some);
  const r = await req(gw.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: { model: m.get(some).name, messages: [{ role: 'user', content: 'x' }] } });
  assert.equal(r.status, 200, r.text);
  await gw.stop();
  running.delete(gw);
});

/** Compares the stored models with what the acknowledged mutations say. */
async function check(g, ops, countIds) {
  const m = await stored(g);
  const bad = [];
  const byId = new Map();
  for (const o of ops) {
    if (!byId.has(o.id)) byId.set(o.id, []);
    byId.get(o.id).push(o);
  }
  let inFlightApplied = 0;
  const same = (a, b) => (a === null ? b === undefined : b !== undefined && a.rpm === b.rpm && a.tpm === b.tpm && a.gen === b.gen);
  for (const [id, seq] of byId) {
    const last = seq.filter((o) => o.status === 200).map((o) => o.step).reduce((a, b) => Math.max(a, b), 0);
    const pending = seq.find((o) => o.status !== 200); // the one cut by the kill, if any
    const allowed = [STATES[last]];
    if (pending) allowed.push(STATES[pending.step]); // cut in flight: either outcome, never half
    const got = m.get(id);
    if (!allowed.some((a) => same(a, got))) {
      bad.push(`${id}: acked through step ${last}${pending ? ` (step ${pending.step} cut)` : ''}, found ${JSON.stringify(got)}`);
    }
    if (got && got.n !== 1) bad.push(`${id}: ${got.n} entries`);
    if (pending && countIds.has(id) && !same(STATES[last], got)) inFlightApplied++;
  }
  for (const id of m.keys()) if (!byId.has(id)) bad.push(`unknown model ${id}`);
  return { bad, inFlightApplied };
}

test('a torn journal tail is repaired and reported; earlier records are kept', async () => {
  let g = await start(2);
  const c = await req(g.port, '/model/new', { method: 'POST', key: KEY, body: {
    model_name: 'torn-victim', model_info: { id: 'torn-victim' },
    litellm_params: { model: 'openai/t', api_base: mock.url, api_key: 'sk-t' } } });
  assert.equal(c.status, 200, c.text);
  const before = await stored(g);
  assert.ok(before.has('torn-victim'));
  const vBefore = c.json.version;
  await g.stop();
  running.delete(g);

  // cut the last record in the middle of its payload
  const buf = fs.readFileSync(journal);
  const lastStart = buf.lastIndexOf(Buffer.from('\nMGJ1 ')) + 1;
  assert.ok(lastStart > 0, 'the journal has more than one record');
  const header = buf.subarray(lastStart, buf.indexOf(0x0a, lastStart)).toString();
  assert.match(header, new RegExp(`^MGJ1 ${vBefore} `), `the last record is version ${vBefore}`);
  const cutAt = lastStart + Math.floor((buf.length - lastStart) / 2);
  fs.truncateSync(journal, cutAt);

  g = await start(2);
  const after = await stored(g);
  assert.equal(after.has('torn-victim'), false, 'the torn record is not half-applied');
  before.delete('torn-victim');
  assert.deepEqual([...after.entries()].sort(), [...before.entries()].sort(), 'every earlier record is there');
  const s = await waitState(g.port, KEY, (ws) => ws.some((w) => w.store.repaired), { what: 'the repair to be reported' });
  const repaired = s.workers.map((w) => w.store.repaired).find((x) => x);
  console.log(`# torn tail: store.repaired = ${repaired}`);
  assert.match(repaired, /never acknowledged/);
  assert.match(repaired, new RegExp(`at byte ${lastStart}\\b`));
  for (const w of s.workers) assert.equal(w.registry_version, vBefore - 1);
  assert.match(g.output().stderr, /journal repaired/);
  const torn = fs.readdirSync(stateDir).filter((f) => f.startsWith('registry.journal.torn.'));
  assert.ok(torn.length >= 1, 'the torn bytes are kept aside');
  assert.equal(fs.statSync(journal).size, lastStart);
  // the repaired journal takes new records
  const n = await req(g.port, '/model/new', { method: 'POST', key: KEY, body: {
    model_name: 'after-repair', litellm_params: { model: 'openai/t', api_base: mock.url } } });
  assert.equal(n.status, 200, n.text);
  assert.equal(n.json.version, vBefore);
  await g.stop();
  running.delete(g);
});

test('damage followed by valid records: the journal is refused loudly, nothing half-applied', async () => {
  const buf = fs.readFileSync(journal);
  // flip one byte inside the first record's payload
  const firstNl = buf.indexOf(0x0a);
  const damaged = Buffer.from(buf);
  damaged[firstNl + 5] ^= 0x01;
  fs.writeFileSync(journal, damaged);
  const g = await startGateway({ config, workers: 2, stateDir, waitReady: false });
  running.add(g);
  g.masterKey = KEY;
  const s = await waitState(g.port, KEY, (ws) => ws.length === 2 && ws.every((w) => /corrupt/.test(w.last_load_error || '')),
    { what: 'the workers to refuse the journal' });
  console.log(`# corrupt journal: ${s.workers[0].last_load_error}`);
  for (const w of s.workers) assert.equal(w.registry_version, -1, 'nothing applied');
  const r = await req(g.port, '/v1/chat/completions', { method: 'POST', key: KEY, body: { model: 'cfg-model', messages: [] } });
  assert.equal(r.status, 503, r.text);
  assert.match(r.json.error.message, /corrupt/);
  assert.ok(!/Invalid model name/.test(r.text));
  assert.equal((await req(g.port, '/health/readiness')).status, 503);
  assert.equal(fs.readFileSync(journal).length, damaged.length, 'a corrupt journal is never truncated');
  await g.stop();
  running.delete(g);
});
