// tests/bench/report.mjs -- turns run.sh's raw records into the table and the JSON file.
//   node report.mjs META.json RESULTS.jsonl OUT.json
// Records (one JSON object a line):
//   {"kind":"idle", target, deployments, master_rss_kb, master_pss_kb, workers_rss_kb[], workers_pss_kb[]}
//   {"kind":"run", target, workload, rep, deployments, wrk{...}, cpu_ticks, clk_tck, sched_ns,
//    mock_cpu_ticks, mock_requests, master_rss_kb, workers_rss_kb[], workers_hwm_kb[]}
//   {"kind":"callgrind", workload, deployments, requests, ir, wrk{...}, dump}
import fs from 'node:fs';

const [metaPath, resultsPath, outPath] = process.argv.slice(2);
const meta = JSON.parse(fs.readFileSync(metaPath, 'utf8'));
const recs = fs.readFileSync(resultsPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

const TARGET_CPU_RATIO = 1.5;
const AIM_CPU_RATIO = 1.2;
const TARGET_IDLE_RSS_MB = 16;
const TARGET_POLICY_US = 2;

const median = (a) => {
  if (!a.length) return null;
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const stats = (a) => (a.length ? { median: median(a), min: Math.min(...a), max: Math.max(...a), n: a.length, values: a } : null);
const spreadPct = (s) => (s && s.median ? (100 * (s.max - s.min)) / s.median : 0);
const fx = (v, d = 1) => (v === null || v === undefined || Number.isNaN(v) ? '-' : Number(v).toFixed(d));
const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);

const runs = recs.filter((r) => r.kind === 'run');
const idle = recs.filter((r) => r.kind === 'idle');
const cg = recs.filter((r) => r.kind === 'callgrind');
const events = recs.filter((r) => r.kind === 'event');

function derive(r) {
  const req = r.wrk.requests;
  const secs = r.wrk.duration_us / 1e6;
  const errors = Object.values(r.wrk.errors).reduce((a, b) => a + b, 0);
  return {
    rps: req / secs,
    cpu_us_per_req: req ? (r.cpu_ticks / r.clk_tck) * 1e6 / req : null,
    sched_us_per_req: req ? r.sched_ns / 1e3 / req : null,
    mock_cpu_us_per_req: req ? (r.mock_cpu_ticks / r.clk_tck) * 1e6 / req : null,
    cpu_util_pct: (100 * (r.cpu_ticks / r.clk_tck)) / secs,
    p50_ms: r.wrk.lat_p50_us / 1e3,
    p99_ms: r.wrk.lat_p99_us / 1e3,
    errors,
    other_pct: r.other_ticks === undefined ? null : (100 * (r.other_ticks / r.clk_tck)) / secs,
    restarts: r.worker_restarts || 0,
    crashes_so_far: r.crashes_so_far || 0,
    worker_rss_mb: Math.max(0, ...r.workers_rss_kb) / 1024,
    worker_hwm_mb: Math.max(0, ...r.workers_hwm_kb) / 1024,
  };
}

const workloads = [...new Set(runs.map((r) => r.workload))];
const targets = [...new Set(runs.map((r) => r.target))];
const summary = {};
for (const wl of workloads) {
  summary[wl] = {};
  const mockRuns = new Map(runs.filter((r) => r.workload === wl && r.target === 'mock').map((r) => [r.rep, derive(r)]));
  for (const t of targets) {
    const rs = runs.filter((r) => r.workload === wl && r.target === t);
    if (!rs.length) continue;
    const d = rs.map((r) => ({ rep: r.rep, ...derive(r) }));
    const add50 = [];
    const add99 = [];
    if (t !== 'mock') {
      for (const x of d) {
        const m = mockRuns.get(x.rep) || [...mockRuns.values()][0];
        if (m) { add50.push(x.p50_ms - m.p50_ms); add99.push(x.p99_ms - m.p99_ms); }
      }
    }
    const pick = (k) => stats(d.map((x) => x[k]).filter((v) => v !== null));
    summary[wl][t] = {
      deployments: rs[0].deployments,
      requests_per_s: pick('rps'),
      p50_ms: pick('p50_ms'),
      p99_ms: pick('p99_ms'),
      added_p50_ms: t === 'mock' ? null : stats(add50),
      added_p99_ms: t === 'mock' ? null : stats(add99),
      cpu_us_per_request: pick('cpu_us_per_req'),
      sched_cpu_us_per_request: pick('sched_us_per_req'),
      mock_cpu_us_per_request: pick('mock_cpu_us_per_req'),
      cpu_utilisation_pct: pick('cpu_util_pct'),
      worker_rss_after_mb: pick('worker_rss_mb'),
      worker_peak_rss_mb: pick('worker_hwm_mb'),
      other_load_pct_of_a_core: pick('other_pct'),
      errors: d.reduce((a, x) => a + x.errors, 0),
      worker_restarts: d.reduce((a, x) => a + x.restarts, 0),
    };
  }
  const n = summary[wl].nginx;
  const m = summary[wl].moongate;
  if (n && m) {
    // per-round ratios give the spread; the headline is the ratio of the medians
    const byRep = new Map(runs.filter((r) => r.workload === wl && r.target === 'nginx').map((r) => [r.rep, derive(r)]));
    const ratios = runs.filter((r) => r.workload === wl && r.target === 'moongate')
      .map((r) => [derive(r), byRep.get(r.rep)]).filter(([, b]) => b)
      .map(([a, b]) => a.cpu_us_per_req / b.cpu_us_per_req);
    summary[wl].cpu_ratio_moongate_over_nginx = {
      value: m.cpu_us_per_request.median / n.cpu_us_per_request.median,
      // other jobs only ever add CPU time: the least disturbed rounds of each are a second estimate
      of_minimums: m.cpu_us_per_request.min / n.cpu_us_per_request.min,
      per_round: stats(ratios),
      target_max: TARGET_CPU_RATIO,
      aim: AIM_CPU_RATIO,
    };
  }
}

// ---- print
const out = [];
const p = (s = '') => out.push(s);
const place = meta.pinned
  ? (meta.placement === 'proxy+mock'
    ? `proxy + mock on core ${meta.proxy_core}, wrk on core ${meta.wrk_core}`
    : `proxy on core ${meta.proxy_core}, wrk + mock on core ${meta.wrk_core}`)
  : 'not pinned';
p('');
p(`moongate benchmark  ${meta.date}  git ${meta.git}  (${meta.build_type} build)`);
p(`  ${meta.cpu}, ${meta.nproc} cores, kernel ${meta.kernel}; nginx ${meta.nginx} (proxy_buffering ${meta.nginx_proxy_buffering}), wrk ${meta.wrk}`);
p(`  placement ${meta.placement}: ${place}; wrk -t1 -c${meta.connections}, ${meta.warmup_s} s warm-up + ${meta.duration_s} s measured` +
  `${meta.repeat > 1 ? `, ${meta.repeat} rounds (median, [min..max])` : ''}`);
p(`  bodies: small 300 B, large 20480 B, stream 300 B with "stream":true (mock default stream: role + 4 content chunks + finish + [DONE])`);
p(`  CPU us/req = (utime+stime of the proxy's master + worker over the measured run) / requests completed`);
p(`  other% = CPU the rest of the machine used meanwhile (all busy time - proxy - mock - wrk), % of one core, worst round: > ~10 = a disturbed run`);

const rng = (s, d = 1) => (!s ? '-' : meta.repeat > 1 && s.n > 1 ? `${fx(s.median, d)} [${fx(s.min, d)}..${fx(s.max, d)}]` : fx(s.median, d));

if (runs.length) {
  p('');
  const hdr = [pad('workload', 9), pad('target', 12), lpad('req/s', meta.repeat > 1 ? 22 : 8), lpad('p50 ms', 7), lpad('p99 ms', 7),
    lpad('+p50 ms', 8), lpad('+p99 ms', 8), lpad('CPU us/req', meta.repeat > 1 ? 22 : 11), lpad('CPU%', 5),
    lpad('mock us/req', 12), lpad('RSS MB now/peak', 16), lpad('other%', 7), '  errors'];
  p(hdr.join(' '));
  p('-'.repeat(hdr.join(' ').length));
  for (const wl of workloads) {
    for (const t of targets) {
      const s = summary[wl][t];
      if (!s) continue;
      p([pad(wl, 9), pad(t, 12), lpad(rng(s.requests_per_s, 0), meta.repeat > 1 ? 22 : 8), lpad(fx(s.p50_ms.median, 2), 7),
        lpad(fx(s.p99_ms.median, 2), 7), lpad(s.added_p50_ms ? fx(s.added_p50_ms.median, 2) : '-', 8),
        lpad(s.added_p99_ms ? fx(s.added_p99_ms.median, 2) : '-', 8),
        lpad(rng(s.cpu_us_per_request, 1), meta.repeat > 1 ? 22 : 11), lpad(fx(s.cpu_utilisation_pct.median, 0), 5),
        lpad(t === 'mock' ? '(itself)' : fx(s.mock_cpu_us_per_request.median, 1), 12),
        lpad(`${fx(s.worker_rss_after_mb.median, 1)}/${fx(s.worker_peak_rss_mb.max, 1)}`, 16),
        lpad(s.other_load_pct_of_a_core ? fx(s.other_load_pct_of_a_core.max, 0) : '-', 7),
        `  ${[s.errors ? `${s.errors} wrk errors` : '', s.worker_restarts ? `${s.worker_restarts} worker crash(es)` : ''].filter(Boolean).join(', ')}`].join(' '));
    }
    const r = summary[wl].cpu_ratio_moongate_over_nginx;
    if (r) {
      const verdict = r.value <= AIM_CPU_RATIO ? 'within the aim' : r.value <= TARGET_CPU_RATIO ? 'within the bound, above the aim' : 'ABOVE the bound';
      p(`${pad('', 9)} moongate/nginx CPU per request: ${fx(r.value, 2)}x` +
        `${r.per_round && r.per_round.n > 1 ? ` (rounds ${fx(r.per_round.min, 2)}..${fx(r.per_round.max, 2)}; of the minimums ${fx(r.of_minimums, 2)}x)` : ''}` +
        `   target <= ${TARGET_CPU_RATIO}x, aim ${AIM_CPU_RATIO}x: ${verdict}`);
    }
    p('');
  }
}

// routing: the same workload for groups of different sizes
const mgTargets = targets.filter((t) => /^moongate-\d+$/.test(t));
if (mgTargets.length > 1) {
  p(`routing cost (simple-shuffle, one group of N deployments, all on the mock, ${meta.distinct_keys ? 'one api_key and upstream pool each' : 'one shared api_key and upstream pool'}):`);
  for (const wl of workloads) {
    const base = summary[wl][mgTargets[0]];
    for (const t of mgTargets) {
      const s = summary[wl][t];
      if (!s || !base) continue;
      const dlt = s.cpu_us_per_request.median - base.cpu_us_per_request.median;
      p(`  ${pad(wl, 7)} ${pad(`${s.deployments} deployment(s)`, 17)} CPU ${fx(s.cpu_us_per_request.median, 2)} us/req` +
        `${t === mgTargets[0] ? '' : `  (${dlt >= 0 ? '+' : ''}${fx(dlt, 2)} us vs ${base.deployments}; aim for the policy call < ${TARGET_POLICY_US} us)`}`);
    }
  }
  p('  (CPU us/request differences below ~1 us are within this box\'s noise; --callgrind --routing is exact)');
  p('');
}

// idle RSS
if (idle.length) {
  p('idle RSS (after start, before any request):');
  for (const r of idle) {
    if (r.target === 'mock') continue;
    const w = r.workers_rss_kb.map((k) => fx(k / 1024, 1)).join(', ');
    const wp = r.workers_pss_kb.map((k) => fx(k / 1024, 1)).join(', ');
    const worst = Math.max(...r.workers_rss_kb) / 1024;
    const idleCpu = r.idle_cpu_ns !== undefined ? `; idle CPU ${fx(r.idle_cpu_ns / 1e6 / r.idle_s, 2)} ms/s` : '';
    p(`  ${pad(r.target, 12)} master ${fx(r.master_rss_kb / 1024, 1)} MB (PSS ${fx(r.master_pss_kb / 1024, 1)}); ` +
      `worker ${w} MB (PSS ${wp})${idleCpu}` +
      `${/^moongate/.test(r.target) ? `   target < ${TARGET_IDLE_RSS_MB} MB per worker: ${worst < TARGET_IDLE_RSS_MB ? 'yes' : 'NO'}` : ''}`);
  }
  p('');
}

// callgrind
const cgSummary = [];
if (cg.length) {
  p('callgrind (the worker process, user-space instructions per request; exact and repeatable;');
  p('  "per request" leaves out timer-driven work, which weighs ~30x too much at callgrind\'s speed):');
  const nginxIr = new Map(cg.filter((r) => r.target === 'nginx').map((r) => [r.workload, (r.ir - (r.ir_periodic || 0)) / r.requests]));
  const base = new Map();
  for (const r of cg) {
    const irpr = (r.ir - (r.ir_periodic || 0)) / r.requests;
    const allpr = r.ir / r.requests;
    const label = r.target === 'nginx' ? 'nginx' : `moongate, ${r.deployments} dep.`;
    let extra = '';
    if (r.target !== 'nginx') {
      if (!base.has(r.workload)) base.set(r.workload, irpr);
      const dlt = irpr - base.get(r.workload);
      if (dlt) extra += `  ${dlt >= 0 ? '+' : ''}${Math.round(dlt)} Ir vs ${cg.find((x) => x.target !== 'nginx' && x.workload === r.workload).deployments} dep.`;
      if (nginxIr.has(r.workload)) extra += `  ${fx(irpr / nginxIr.get(r.workload), 2)}x nginx`;
    }
    cgSummary.push({ target: r.target || 'moongate', workload: r.workload, deployments: r.deployments, requests: r.requests,
      ir: r.ir, ir_periodic: r.ir_periodic || 0, ir_per_request: irpr, ir_per_request_with_timers: allpr });
    p(`  ${pad(r.workload, 7)} ${pad(label, 20)} ${lpad(Math.round(irpr), 9)} Ir/request  (all: ${r.ir} Ir = ${Math.round(allpr)}/request over ${r.requests})${extra}`);
  }
  p('');
}

// syscalls
const sc = recs.filter((r) => r.kind === 'syscalls');
const scSummary = [];
if (sc.length) {
  const tool = sc[0].tool === 'perf' ? 'perf tracepoints, a normal run: the proxy\'s master + worker' : 'strace -c on the worker; the traced run is slow, the counts are not';
  p(`system calls and context switches per request (${tool}):`);
  for (const r of sc) {
    const calls = { ...r.calls };
    const cs = calls['context-switches'];
    delete calls['context-switches'];
    const all = calls.ALL !== undefined ? calls.ALL : Object.values(calls).reduce((a, b) => a + b, 0);
    delete calls.ALL;
    const top = Object.entries(calls).filter(([, v]) => v / r.requests >= 0.005).sort((a, b) => b[1] - a[1]).slice(0, 9)
      .map(([k, v]) => `${k} ${fx(v / r.requests, 2)}`).join(', ');
    scSummary.push({ target: r.target, workload: r.workload, requests: r.requests, tool: r.tool, syscalls_per_request: all / r.requests,
      context_switches_per_request: cs !== undefined ? cs / r.requests : null,
      calls_per_request: Object.fromEntries(Object.entries(calls).map(([k, v]) => [k, v / r.requests])) });
    p(`  ${pad(r.workload, 7)} ${pad(r.target, 12)} ${lpad(fx(all / r.requests, 2), 6)} syscalls/req` +
      `${cs !== undefined ? `, ${fx(cs / r.requests, 2)} cs/req` : ''}: ${top}`);
  }
  p('');
}

const anyErrors = workloads.some((wl) => Object.values(summary[wl]).some((s) => s && s.errors));
if (anyErrors) p('WARNING: some runs had wrk errors (non-2xx, read, timeout): see "errors"; those numbers are suspect.');
const anyCrash = workloads.some((wl) => Object.values(summary[wl]).some((s) => s && s.worker_restarts));
if (anyCrash) p('WARNING: a worker died and was respawned during a measured run (see the proxy\'s stderr in the temp dir, --keep).');
for (const t of targets) {
  const c = Math.max(0, ...runs.filter((r) => r.target === t).map((r) => r.crashes_so_far || 0));
  if (c) {
    const per = workloads.map((wl) => {
      const rs = runs.filter((r) => r.target === t);
      let prev = 0;
      let n = 0;
      for (const r of rs) { if (r.workload === wl) n += Math.max(0, (r.crashes_so_far || 0) - prev); prev = r.crashes_so_far || 0; }
      return `${wl} ${n}`;
    }).join(', ');
    p(`WARNING: ${t}'s master logged ${c} worker death(s) by signal during the bench (during warm-up or measured runs: ${per}); the master respawns them.`);
  }
}
for (const e of events) {
  p(`WARNING: the ${e.target} master (pid ${e.pid}) was found gone (wait status ${e.wait_status}` +
    `${e.wait_status > 128 ? `, signal ${e.wait_status - 128}` : ''}) and was restarted; the run was repeated.`);
}
const retried = runs.filter((r) => r.attempts > 1);
if (retried.length) p(`note: ${retried.length} run(s) needed more than one attempt (see the log).`);
p('Targets (information, not a pass/fail): moongate CPU/request <= 1.5x nginx on each workload (aim 1.2x); idle RSS per worker < 16 MB.');

const json = { meta, targets: { cpu_ratio_max: TARGET_CPU_RATIO, cpu_ratio_aim: AIM_CPU_RATIO, idle_rss_mb_max: TARGET_IDLE_RSS_MB, policy_us_aim: TARGET_POLICY_US },
  summary, idle, callgrind: cgSummary, syscalls: scSummary, records: recs };
fs.writeFileSync(outPath, JSON.stringify(json, null, 2) + '\n');
p(`JSON: ${outPath}`);
console.log(out.join('\n'));
