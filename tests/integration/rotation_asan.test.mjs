// Issue 5, test 3: an AddressSanitizer / UndefinedBehaviorSanitizer /
// LeakSanitizer run of a mixed load against the upstream pool, for a bounded
// time (MG_ASAN_LOAD_SECONDS, default 40):
//   - streams that complete, streams the client aborts (after some bytes or
//     some ms), upstream resets (reset_after_chunks, reset_before_response),
//     timeouts (mock hang / hang_after_chunks with a 1 s request timeout),
//     short non-streaming requests;
//   - a key rotation every 2 s (config.yaml rewritten with k1/k2 alternating,
//     POST /config/reload);
//   - a model added (/model/new, its own key) and deleted (/model/delete)
//     every 5 s, with requests on it in between;
//   - POST /moongate/pool/evict every 500 ms; idle timeout 1 s; pool limit 4.
// Then: every worker is the one that started (no crash/respawn), plain
// streams on the rotated model all completed, the pool comes to rest (live
// clients == those the snapshot uses, created - freed == live), the master
// exits 0 on SIGTERM, and moongate's stderr (master and workers: LeakSanitizer
// reports at each process's exit) has no "ERROR: AddressSanitizer",
// "ERROR: LeakSanitizer" or "runtime error".
//
// Runs only against a sanitizer build: MG_BUILD_DIR must point at a build
// configured with -DMG_SANITIZE=ON (detected from the binary: __asan_init via
// nm, or a NEEDED libasan); MG_SANITIZER_BUILD=1 forces it, =0 skips it.
// tests/run.sh runs the suite a second time in build-asan, where it runs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startGateway, sleep, moongateBin } from '../lib/harness.mjs';
import {
  chat, streamOk, describeResult, poolStates, waitPoolAtRest, sanitizerReport, stopAndCollect,
  sanitizerBuild,
} from './lib_rotation.mjs';

const san = sanitizerBuild(moongateBin);
if (!san.yes) {
  console.log(`# rotation_asan: skipped: ${san.why}`);
  test('ASan/UBSan/LSan mixed load with rotations', { skip: san.why }, () => {});
} else {
  console.log(`# rotation_asan: sanitizer build: ${san.why}`);
  await run();
}

async function run() {
  const SECONDS = Number(process.env.MG_ASAN_LOAD_SECONDS || 40);
  const WORKERS = 2;
  const MASTER = 'sk-asan-master';
  const mock = await startMock();
  const config = (key) => ({
    model_list: [
      { model_name: 'mix', litellm_params: { model: 'openai/mix', api_base: mock.url, api_key: key } },
      { model_name: 'offline', litellm_params: { model: 'openai/offline', mock_response: 'ok' } },
    ],
    general_settings: { master_key: MASTER },
    moongate_settings: {
      upstream_idle_timeout_seconds: 1, upstream_max_idle_connections: 4, drain_timeout_seconds: 20,
    },
  });
  const env = {
    ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1:halt_on_error=1',
    UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || 'print_stacktrace=1:halt_on_error=1',
  };
  const gw = await startGateway({ workers: WORKERS, config: config('sk-asan-k1'), env });
  let stopped = null;
  after(async () => {
    if (!stopped) await gw.stop();
    await mock.stop();
  });

  const pids0 = (await poolStates(gw)).map((w) => w.pid).sort();
  const stats = { kinds: {}, plainFailures: [], clientTimeouts: [], rotations: 0, models: 0, evictions: 0 };
  let dynModel = null; // the model added by the model loop, when present

  test(`mixed load for ${SECONDS} s: streams, aborts, resets, timeouts, rotations every 2 s, model add/delete every 5 s`,
    { timeout: (SECONDS + 120) * 1000 }, async () => {
      const deadline = Date.now() + SECONDS * 1000;
      const msgs = [{ role: 'user', content: 'load' }];
      const kinds = [
        ['plain', () => ({ model: 'mix', messages: msgs, stream: true, mock: { chunks: 3 + rnd(6), chunk_interval_ms: 20 + rnd(150) } }), {}],
        ['abort_bytes', () => ({ model: 'mix', messages: msgs, stream: true, mock: { chunks: 10, chunk_interval_ms: 50 } }), { abortAfterBytes: 300 }],
        ['abort_ms', () => ({ model: 'mix', messages: msgs, stream: true, mock: { chunks: 10, chunk_interval_ms: 50, latency_ms: rnd(200) } }), { abortAfterMs: 50 + rnd(300) }],
        ['abort_nonstream', () => ({ model: 'mix', messages: msgs, mock: { latency_ms: 300 } }), { abortAfterMs: 100 }],
        ['reset_mid', () => ({ model: 'mix', messages: msgs, stream: true, mock: { chunks: 6, chunk_interval_ms: 30, reset_after_chunks: 2 } }), {}],
        ['reset_before', () => ({ model: 'mix', messages: msgs, stream: rnd(2) === 1, mock: { reset_before_response: true, latency_ms: rnd(50) } }), {}],
        ['timeout_hang', () => ({ model: 'mix', messages: msgs, timeout: 1, mock: { hang: true } }), {}],
        ['timeout_mid', () => ({ model: 'mix', messages: msgs, stream: true, stream_timeout: 1, mock: { chunks: 6, chunk_interval_ms: 30, hang_after_chunks: 2 } }), {}],
        ['short', () => ({ model: 'mix', messages: msgs }), {}],
        ['dyn', () => ({ model: dynModel || 'offline', messages: msgs, stream: rnd(2) === 1, mock: { chunks: 3, chunk_interval_ms: 30 } }), {}],
        ['offline', () => ({ model: 'offline', messages: msgs }), {}],
      ];
      let seq = 0;
      async function loadLoop() {
        while (Date.now() < deadline) {
          const [kind, mk, opts] = kinds[rnd(kinds.length)];
          const body = { ...mk(), user: `${kind}-${seq++}` };
          // reset_mid: the mock is done within ~0.2 s; the 10 s client timeout
          // bounds the cost of a hang, which rotation_state.test.mjs would catch
          const r = await chat(gw, body, { timeout: kind === 'reset_mid' ? 10000 : 30000, ...opts });
          stats.kinds[kind] = (stats.kinds[kind] || 0) + 1;
          if (r.error && /client timeout/.test(r.error)) {
            // what the mock and the gateway say about the hung request
            const e = (await mock.log()).find((x) => x.body?.user === body.user);
            const st = (await poolStates(gw)).map((w) => ({ worker: w.worker, in_flight: w.in_flight, pool: { ...w.pool, clients: undefined } }));
            stats.clientTimeouts.push(`${kind} ${body.user}: ${describeResult(r)}; mock entry: ${JSON.stringify(e && { ...e, headers: undefined, body: e.body?.mock })}; state: ${JSON.stringify(st)}`);
          }
          if (kind === 'plain' && !streamOk(r)) stats.plainFailures.push(describeResult(r));
        }
      }
      async function rotationLoop() {
        let k = 1;
        while (Date.now() < deadline) {
          k = 3 - k;
          gw.writeConfig(config(`sk-asan-k${k}`));
          const r = await gw.reload();
          assert.equal(r.status, 200, `reload: ${r.text}`);
          stats.rotations++;
          await sleep(2000); // pacing of the load
        }
      }
      async function modelLoop() {
        let n = 0;
        while (Date.now() < deadline) {
          n++;
          const id = `asan-dyn-${n}`;
          const r = await gw.request('/model/new', {
            method: 'POST',
            body: { model_name: `dyn-${n}`, litellm_params: { model: 'openai/dyn', api_base: mock.url, api_key: `sk-dyn-${n}` }, model_info: { id } },
          });
          assert.equal(r.status, 200, `/model/new: ${r.text}`);
          dynModel = `dyn-${n}`;
          stats.models++;
          await sleep(Math.max(0, Math.min(5000, deadline - Date.now()))); // pacing
          dynModel = null;
          const d = await gw.request('/model/delete', { method: 'POST', body: { id } });
          assert.equal(d.status, 200, `/model/delete: ${d.text}`);
        }
      }
      async function evictLoop() {
        while (Date.now() < deadline) {
          const r = await chat(gw, {}, { path: '/moongate/pool/evict', timeout: 10000 });
          assert.equal(r.status, 200, `evict: ${describeResult(r)}`);
          stats.evictions++;
          await sleep(500); // pacing
        }
      }
      await Promise.all([
        ...Array.from({ length: 16 }, loadLoop), rotationLoop(), modelLoop(), evictLoop(),
      ]);
      console.log(`# rotation_asan: ${JSON.stringify({ ...stats, plainFailures: stats.plainFailures.length, clientTimeouts: stats.clientTimeouts.length })}`);
      assert.deepEqual(stats.clientTimeouts, [], 'no request hung past its client timeout');
      assert.deepEqual(stats.plainFailures, [], 'plain streams on the rotated model all completed');
      assert.ok(stats.rotations >= 2 && stats.models >= 1);
    });

  test('after the load: no worker crashed, the pool comes to rest with only the snapshot\'s clients', async () => {
    const ws = await waitPoolAtRest(gw, { live: 1, timeout: 30000 });
    assert.deepEqual(ws.map((w) => w.pid).sort(), pids0, 'the workers that started are the ones running');
  });

  test('SIGTERM: the master exits 0 and stderr has no sanitizer report (LeakSanitizer runs at each exit)', { timeout: 90000 }, async () => {
    stopped = await stopAndCollect(gw, { timeout: 60000 });
    const rep = sanitizerReport(stopped.stderr);
    assert.equal(rep, null, `sanitizer report in moongate's stderr:\n${rep}`);
    assert.equal(stopped.timedOut, false, 'the master exited');
    assert.equal(stopped.code, 0, `exit code (signal ${stopped.sig})`);
  });
}

function rnd(n) { return Math.floor(Math.random() * n); }
