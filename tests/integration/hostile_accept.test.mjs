// A worker out of file descriptors (issue 15, item 2).  With RLIMIT_NOFILE 128
// and 200 idle connections, accept4() fails with EMFILE while connections wait
// in the listen backlog.  The worker must not spin on the always-readable
// listening socket: it stops accepting for short pauses, logs once per
// interval, counts the events in /moongate/state, and accepts again by itself
// once descriptors free up (a connection that waited in the backlog is served,
// not dropped).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { startMock, startGateway, mockModel, waitFor } from '../lib/harness.mjs';
import { rawConnect, rawRequest } from './lib_extra.mjs';

const KEY = 'sk-test-master';
const NOFILE = 128;
const IDLE = 200;
const WINDOW_MS = 2000;
const CLK_TCK = parseInt(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }), 10);

/** utime + stime of pid, in seconds (fields 14 and 15 of /proc/<pid>/stat). */
function cpuSeconds(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
  return (parseInt(f[11], 10) + parseInt(f[12], 10)) / CLK_TCK;
}

function openIdle(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => resolve(s));
    s.on('error', reject);
  });
}

const countAcceptLines = (text) => text.split('\n').filter((l) => l.includes('accept4()')).length;

const mock = await startMock();
const gw = await startGateway({
  config: {
    model_list: [mockModel(mock, 'm', { model: 'openai/up-m' })],
    general_settings: { master_key: KEY },
  },
  wrap: ['prlimit', `--nofile=${NOFILE}:${NOFILE}`, '--'],
});
const idle = [];
after(async () => {
  for (const s of idle) s.destroy();
  await gw.stop();
  await mock.stop();
});

test('EMFILE on accept: bounded CPU and log volume, counted in /moongate/state, recovers by itself', async () => {
  const [pid] = await gw.workerPids();
  const limits = fs.readFileSync(`/proc/${pid}/limits`, 'utf8');
  assert.match(limits, new RegExp(`Max open files\\s+${NOFILE}\\s+${NOFILE}`), 'the worker runs with the low limit');

  // 200 idle connections: the kernel completes each handshake (backlog 4096), the
  // worker accepts until its descriptors run out, the rest wait in the backlog
  for (let i = 0; i < IDLE; i++) idle.push(await openIdle(gw.port));
  await waitFor(() => /accept4\(\) failed \(24: /.test(gw.output().stderr),
    { what: 'the worker to hit EMFILE', timeout: 10000 });

  // a request sent now, on a new connection, waits in the backlog; it must be answered
  // once descriptors free up
  const queued = await rawConnect(gw.port);
  await queued.send(rawRequest('GET', '/health/liveliness'));

  // the measurement window: the worker is out of descriptors for all of it
  const cpu0 = cpuSeconds(pid);
  const log0 = gw.output().stderr.length;
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuSeconds(pid) - cpu0;
  const lines = countAcceptLines(gw.output().stderr.slice(log0));
  // a busy loop burns ~100% of a core and logs hundreds of thousands of lines a second
  assert.ok(cpu < wall * 0.25, `worker used ${cpu.toFixed(2)}s CPU in ${wall.toFixed(2)}s while out of descriptors`);
  assert.ok(lines <= 5, `${lines} accept4() log lines in ${wall.toFixed(2)}s`);

  assert.equal(queued.bytesIn, 0, 'nothing answered while out of descriptors');
  assert.equal(queued.ended, false, 'the waiting connection was not closed');

  // free the descriptors: the worker accepts again without outside help
  for (const s of idle) s.destroy();
  idle.length = 0;
  try {
    const q = await queued.response({ timeout: 15000 });
    assert.equal(q.status, 200);
    assert.equal(JSON.parse(q.body), "I'm alive!");
  } finally { queued.destroy(); }
  const r = await waitFor(async () => {
    const res = await fetch(`${gw.url}/health/liveliness`, { signal: AbortSignal.timeout(2000) });
    return res.status === 200 && res;
  }, { what: 'a new request to be answered', timeout: 10000 });
  assert.equal(r.status, 200);

  // the events are counted, and the worker says it accepts again
  const st = await waitFor(async () => {
    const s = await gw.state();
    const a = s.workers[0].accept;
    return a && a.paused === false && s;
  }, { what: 'the worker to report accepting again', timeout: 10000 });
  const a = st.workers[0].accept;
  assert.ok(a.resource_errors > 0, JSON.stringify(a));
  assert.ok(a.pauses > 0, JSON.stringify(a));
  assert.match(a.last_error, /EMFILE|Too many open files/, JSON.stringify(a));
  assert.ok(gw.output().stderr.includes('accepting connections again'), 'recovery is logged');
  assert.ok(countAcceptLines(gw.output().stderr) < 20, 'the whole episode logged a bounded number of lines');
});
