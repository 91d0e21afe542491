// ui/app.js -- moongate's admin page: signs in with a key, then asks the gateway's
// admin routes every 1.5 s and redraws.  Plain DOM, no library, no network access
// beyond this gateway.  Everything the gateway returns is shown with textContent
// (never parsed as HTML), and only fields the admin routes already redact.
'use strict';

(() => {
  const POLL_MS = 1500;
  const MODEL_INFO_EVERY_MS = 10000;
  const KEY_STORE = 'moongate.admin.key';
  const SVG = 'http://www.w3.org/2000/svg';

  // The API prefix is wherever this page was loaded from, minus "/ui/...":
  // <SERVER_ROOT_PATH>/ui/ -> <SERVER_ROOT_PATH>.  Never a hard-coded "/".
  const BASE = (() => {
    const p = window.location.pathname;
    const i = p.lastIndexOf('/ui/');
    if (i >= 0) return p.slice(0, i);
    return p.replace(/\/ui$/, '');
  })();

  const $ = (id) => document.getElementById(id);
  let key = null;
  let timer = null;
  let lastModelInfo = 0;
  let lastRegistry = null;
  let modelInfo = [];
  let groupInfo = [];
  let probe = null;          // {at, byId: {id: {ok, error}}} from the last GET /health

  // ---- talking to the gateway ----

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function errorText(status, body, text) {
    if (body && typeof body === 'object') {
      if (body.error && typeof body.error.message === 'string') return body.error.message;
      if (typeof body.detail === 'string') return body.detail;
      if (body.detail && typeof body.detail.error === 'string') return body.detail.error;
    }
    return text ? `HTTP ${status}: ${text.slice(0, 300)}` : `HTTP ${status}`;
  }

  async function api(path, opts = {}) {
    const headers = { Authorization: `Bearer ${opts.key ?? key}` };
    const init = { headers, cache: 'no-store', credentials: 'omit' };
    if (opts.body !== undefined) {
      init.method = 'POST';
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    const r = await fetch(BASE + path, init);
    const text = await r.text();
    let body = null;
    try { body = JSON.parse(text); } catch { /* not JSON */ }
    if (!r.ok) throw new ApiError(r.status, errorText(r.status, body, text));
    return body;
  }

  // ---- small DOM helpers ----

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function td(text, cls) {
    return el('td', cls, text === undefined || text === null ? '—' : text);
  }

  function fill(tbody, rows, empty, cols) {
    tbody.replaceChildren(...rows);
    if (rows.length === 0) {
      const tr = el('tr', 'empty');
      const c = el('td', null, empty);
      c.colSpan = cols;
      tr.append(c);
      tbody.append(tr);
    }
  }

  const short = (s, n = 10) => (typeof s === 'string' && s.length > n ? `${s.slice(0, n)}…` : s);
  const num = (v) => (typeof v === 'number' ? v.toLocaleString('en-US') : '—');
  const ms = (v) => (typeof v === 'number' ? (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`) : '—');
  function age(seconds) {
    if (typeof seconds !== 'number') return '—';
    if (seconds < 60) return `${seconds.toFixed(1)} s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.floor(seconds % 60)} s`;
    return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  }
  const clock = (t) => new Date(t).toLocaleTimeString('en-GB', { hour12: false });

  // ---- sign in / out ----

  function showLogin(message) {
    $('dash').hidden = true;
    $('logout').hidden = true;
    $('login').hidden = false;
    $('live').textContent = 'not signed in';
    $('live').className = 'live';
    const e = $('login-error');
    e.hidden = !message;
    e.textContent = message || '';
    $('key').focus();
  }

  function showDash() {
    $('login').hidden = true;
    $('dash').hidden = false;
    $('logout').hidden = false;
  }

  async function signIn(k) {
    // the key is kept only if the gateway accepts it for an admin route
    const state = await api('/moongate/state', { key: k });
    key = k;
    sessionStorage.setItem(KEY_STORE, k);
    resetKeys();
    showDash();
    lastModelInfo = 0;
    await refresh(state);
  }

  function signOut(message) {
    if (timer) clearTimeout(timer);
    timer = null;
    key = null;
    sessionStorage.removeItem(KEY_STORE);
    resetKeys();
    showLogin(message);
  }

  // ---- the poll loop ----

  function schedule() {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => { refresh().catch(() => {}); }, POLL_MS);
  }

  async function refresh(givenState) {
    if (!key) return;
    try {
      const state = givenState || await api('/moongate/state');
      const maxReg = Math.max(...(state.workers || []).map((w) => w.registry_version ?? -1));
      const now = Date.now();
      if (maxReg !== lastRegistry || now - lastModelInfo > MODEL_INFO_EVERY_MS) {
        const [mi, gi] = await Promise.all([api('/model/info'), api('/model_group/info')]);
        modelInfo = mi.data || [];
        groupInfo = gi.data || [];
        lastModelInfo = now;
        lastRegistry = maxReg;
      }
      const [recent, traffic] = await Promise.all([
        api('/moongate/requests?limit=25'),
        api('/moongate/traffic'),
      ]);
      render(state, recent, traffic);
      await refreshKeys(); // its errors are its own section's, never a sign-out
      $('poll-error').hidden = true;
      $('live').textContent = `live · ${clock(now)}`;
      $('live').className = 'live on';
    } catch (e) {
      if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
        signOut(e.message);
        return;
      }
      $('poll-error').hidden = false;
      $('poll-error').textContent = `The gateway did not answer: ${e.message}`;
      $('live').textContent = 'stale';
      $('live').className = 'live off';
    }
    schedule();
  }

  // ---- rendering ----

  function render(state, recent, traffic) {
    renderInstance(state);
    renderWorkers(state);
    const series = seriesById(traffic);
    renderGroups();
    renderDeployments(state, series);
    renderCharts(traffic);
    renderPolicies(state);
    renderCostMap(state);
    renderRequests(recent);
  }

  function renderInstance(state) {
    const up = state.started_ms ? (Date.now() - state.started_ms) / 1000 : null;
    $('instance').textContent =
      `instance ${short(state.instance, 8) || '—'} · v${state.version || '?'} · up ${age(up)}`;
  }

  function policyVersion(w) {
    return w.policies && typeof w.policies === 'object' ? w.policies.version : null;
  }

  function renderWorkers(state) {
    const ws = state.workers || [];
    const maxReg = Math.max(...ws.map((w) => w.registry_version ?? -1));
    const rows = ws.map((w) => {
      const tr = el('tr');
      tr.dataset.worker = String(w.worker);
      const behind = typeof w.registry_version === 'number' && w.registry_version < maxReg;
      tr.append(
        td(w.worker),
        td(w.pid),
        td(w.state, `state-${w.state}`),
        td(w.registry_version, behind ? 'registry-version behind' : 'registry-version'),
        td(w.config_generation),
        td(policyVersion(w), 'policy-version mono'),
        td(age(w.snapshot_age_seconds), 'snapshot-age'),
        td(typeof w.deployments === 'number' ? `${w.deployments} deployment${w.deployments === 1 ? '' : 's'}` : null),
        td(w.live_snapshots),
        td(num(w.requests)),
        td(num(w.failures)),
        td(w.in_flight),
        td(w.connections),
        td(w.store ? `${w.store.type}${w.store.connected ? '' : ' (disconnected)'}` : null),
        td(w.last_load_error || '', w.last_load_error ? 'bad' : ''),
      );
      return tr;
    });
    fill($('workers-table').tBodies[0], rows, 'No worker reported its state yet.', 15);
  }

  function renderGroups() {
    const count = {};
    for (const d of modelInfo) count[d.model_name] = (count[d.model_name] || 0) + 1;
    const rows = groupInfo.map((g) => {
      const tr = el('tr');
      tr.append(td(g.model_group), td((g.providers || []).join(', ')), td(g.mode),
        td(count[g.model_group] ?? 0), td(g.rpm), td(g.tpm));
      return tr;
    });
    fill($('groups-table').tBodies[0], rows, 'No model group is configured.', 6);
  }

  function seriesById(traffic) {
    const m = {};
    for (const d of (traffic && traffic.deployments) || []) m[d.id] = d.series || [];
    return m;
  }

  function totals(series) {
    if (!series) return null;
    return series.reduce((a, b) => ({ requests: a.requests + b.requests, failures: a.failures + (b.failures || 0) }),
      { requests: 0, failures: 0 });
  }

  function lastMinute(series) {
    // the last six buckets (one minute), weighted by requests
    let n = 0;
    let sum = 0;
    for (const b of (series || []).slice(-6)) {
      if (b.requests > 0 && typeof b.latency_ms === 'number') {
        n += b.requests;
        sum += b.latency_ms * b.requests;
      }
    }
    return n > 0 ? sum / n : null;
  }

  function renderDeployments(state, series) {
    const stats = {};
    for (const s of state.deployments || []) stats[s.id] = s;
    const rows = modelInfo.map((d) => {
      const id = d.model_info && d.model_info.id;
      const lp = d.litellm_params || {};
      const st = stats[id] || {};
      const tr = el('tr');
      tr.dataset.deployment = id || '';
      let stateText = 'available';
      let stateCls = 'good';
      if (st.cooldown_ms_left > 0) {
        stateText = `cooling down, ${(st.cooldown_ms_left / 1000).toFixed(1)} s left`;
        stateCls = 'bad';
      } else if (st.inflight > 0) {
        stateText = 'busy';
        stateCls = 'warn';
      }
      if (lp.mock_response !== undefined) stateText += ' (mock_response)';
      const pr = probe && probe.byId[id];
      const probeCell = pr ? td(pr.ok ? 'healthy' : `unhealthy: ${pr.error || ''}`, pr.ok ? 'good' : 'bad')
        : td(probe ? 'not probed' : '—');
      const reqs5 = totals(series[id]);
      const spark = el('td', 'spark');
      spark.append(sparkline(series[id]));
      tr.append(
        td(d.model_name),
        td(lp.model, 'mono'),
        td((d.model_info && d.model_info.litellm_provider) || null),
        td(short(id, 12), 'mono'),
        td(stateText, stateCls),
        probeCell,
        td(st.inflight ?? 0),
        td(reqs5 ? `${num(reqs5.requests)}${reqs5.failures ? ` (${reqs5.failures} failed)` : ''}` : '0',
          reqs5 && reqs5.failures ? 'warn' : ''),
        td(`${num(st.requests ?? 0)} / ${num(st.failures ?? 0)}`, st.failures > 0 ? 'warn' : ''),
        td(`${num(st.prompt_tokens ?? 0)} / ${num(st.completion_tokens ?? 0)}`),
        td(ms(lastMinute(series[id]))),
        td(typeof st.latency === 'number' && st.latency > 0 ? st.latency.toFixed(4) : '—'),
        spark,
      );
      tr.cells[3].title = id || '';
      return tr;
    });
    fill($('deployments-table').tBodies[0], rows, 'No deployment is configured.', 13);
  }

  // ---- charts (inline SVG, drawn by hand) ----

  function svgEl(tag, attrs, cls) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (cls) e.setAttribute('class', cls);
    return e;
  }

  function sparkline(series) {
    const w = 120;
    const h = 24;
    const svg = svgEl('svg', { width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: 'img' }, 'sparkline');
    const s = series || [];
    const max = Math.max(1, ...s.map((b) => b.requests));
    const bw = w / Math.max(1, s.length);
    s.forEach((b, i) => {
      if (!b.requests) return;
      const bh = Math.max(1, (b.requests / max) * (h - 2));
      svg.append(svgEl('rect', { x: i * bw, y: h - bh, width: Math.max(1, bw - 1), height: bh },
        b.failures > 0 ? 'bar fail' : 'bar'));
    });
    const t = svgEl('title', {});
    t.textContent = `${s.reduce((a, b) => a + b.requests, 0)} requests in the last 5 minutes`;
    svg.append(t);
    return svg;
  }

  function chart(dep, bucketSeconds) {
    const W = 360;
    const H = 120;
    const L = 34;          // left axis
    const R = 60;          // right axis
    const T = 8;
    const B = 18;
    const s = dep.series || [];
    const pw = W - L - R;
    const ph = H - T - B;
    const maxReq = Math.max(1, ...s.map((b) => b.requests));
    const lats = s.map((b) => b.latency_ms).filter((v) => typeof v === 'number');
    const maxLat = Math.max(1, ...lats) * 1.15; // headroom: a steady latency is not drawn on the frame
    const svg = svgEl('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img' }, 'chart');
    svg.append(svgEl('rect', { x: L, y: T, width: pw, height: ph }, 'plot'));
    const bw = pw / Math.max(1, s.length);
    s.forEach((b, i) => {
      if (!b.requests) return;
      const ok = b.requests - (b.failures || 0);
      const hOk = (ok / maxReq) * ph;
      const hFail = ((b.failures || 0) / maxReq) * ph;
      const x = L + i * bw + 0.5;
      if (hOk > 0) svg.append(svgEl('rect', { x, y: T + ph - hOk, width: Math.max(1, bw - 1), height: hOk }, 'bar'));
      if (hFail > 0) svg.append(svgEl('rect', { x, y: T + ph - hOk - hFail, width: Math.max(1, bw - 1), height: hFail }, 'bar fail'));
    });
    const pts = [];
    s.forEach((b, i) => {
      if (typeof b.latency_ms === 'number') {
        pts.push(`${(L + (i + 0.5) * bw).toFixed(1)},${(T + ph - (b.latency_ms / maxLat) * ph).toFixed(1)}`);
      }
    });
    if (pts.length > 1) svg.append(svgEl('polyline', { points: pts.join(' ') }, 'latency'));
    for (const p of pts) {
      const [x, y] = p.split(',');
      svg.append(svgEl('circle', { cx: x, cy: y, r: 1.8 }, 'latency-dot'));
    }
    const label = (x, y, text, cls) => {
      const t = svgEl('text', { x, y }, cls);
      t.textContent = text;
      svg.append(t);
    };
    label(L - 4, T + 8, String(maxReq), 'axis req');
    label(L - 4, T + ph, '0', 'axis req');
    label(W - R + 4, T + 8, ms(Math.max(1, ...lats)), 'axis lat');
    label(W - R + 4, T + 20, 'max', 'axis lat');
    label(L, H - 4, `-${Math.round((s.length * bucketSeconds) / 60)} min`, 'axis time');
    label(W - R, H - 4, 'now', 'axis time end');
    const fig = el('figure', 'chart-card');
    fig.dataset.deployment = dep.id;
    const total = s.reduce((a, b) => a + b.requests, 0);
    const fails = s.reduce((a, b) => a + (b.failures || 0), 0);
    const cap = el('figcaption');
    cap.append(el('strong', null, dep.model_group || '—'), ' ', el('span', 'mono', short(dep.id, 12)));
    cap.append(el('span', 'hint', ` · ${total} requests, ${fails} failed`));
    fig.append(cap, svg);
    return fig;
  }

  function renderCharts(traffic) {
    const box = $('charts');
    const deps = (traffic && traffic.deployments) || [];
    if (traffic && traffic.enabled === false) {
      box.replaceChildren(el('p', 'hint', `Not recorded: ${traffic.reason || 'no request log'}.`));
      return;
    }
    if (deps.length === 0) {
      box.replaceChildren(el('p', 'hint', 'No request reached a deployment in the last 5 minutes.'));
      return;
    }
    const order = [...deps].sort((a, b) => `${a.model_group}\u0000${a.id}`.localeCompare(`${b.model_group}\u0000${b.id}`));
    box.replaceChildren(...order.map((d) => chart(d, traffic.bucket_seconds || 10))); // stable between polls
  }

  // ---- policies ----

  function renderPolicies(state) {
    const byKey = new Map();
    const ws = state.workers || [];
    for (const w of ws) {
      const ps = (w.policies && w.policies.policies) || [];
      for (const p of ps) {
        const k = `${p.kind}\u0000${p.name}\u0000${p.hash}`;
        let a = byKey.get(k);
        if (!a) {
          a = { p, versions: new Set(), loaded: 0, calls: 0, errors: 0, budget: null, failing: [], lastError: null };
          byKey.set(k, a);
        }
        if (w.policies.version) a.versions.add(w.policies.version);
        if (p.loaded) a.loaded++;
        a.calls += p.calls || 0;
        a.errors += p.errors || 0;
        if (typeof p.budget_hits === 'number') a.budget = (a.budget || 0) + p.budget_hits;
        if (p.failing) a.failing.push(w.worker);
        if (p.load_error || p.last_error) a.lastError = p.load_error || p.last_error;
      }
    }
    const rows = [...byKey.values()].map((a) => {
      const tr = el('tr');
      tr.append(
        td(a.p.kind), td(a.p.name), td(a.p.origin), td(short(a.p.hash, 12), 'mono'),
        td([...a.versions].join(', ') || null, 'mono'),
        td(`${a.loaded} / ${ws.length}`, a.loaded < ws.length ? 'bad' : ''),
        td(num(a.calls)), td(num(a.errors), a.errors > 0 ? 'warn' : ''),
        td(a.budget === null ? 'not reported' : num(a.budget), a.budget > 0 ? 'warn' : ''),
        td(a.failing.length ? `workers ${a.failing.join(', ')}` : 'none', a.failing.length ? 'bad' : ''),
        td(a.lastError || '', a.lastError ? 'bad small' : ''),
      );
      return tr;
    });
    fill($('policies-table').tBodies[0], rows, 'No worker reported a policy state.', 11);
  }

  // ---- cost map: shown as the gateway reports it, whatever its shape ----

  function kvTable(obj) {
    const t = el('table', 'kv');
    const body = el('tbody');
    for (const [k, v] of Object.entries(obj)) {
      const tr = el('tr');
      const bad = /refus|error|reject/i.test(k) && v !== null && v !== false && v !== 0 && v !== '';
      const val = v !== null && typeof v === 'object' ? JSON.stringify(v) : v;
      tr.append(el('th', null, k), td(val === null ? 'none' : val, bad ? 'bad' : ''));
      body.append(tr);
    }
    t.append(body);
    return t;
  }

  function renderCostMap(state) {
    const box = $('costmap-body');
    const top = state.cost_map ?? state.costmap ?? null;
    const per = (state.workers || []).filter((w) => w.cost_map ?? w.costmap);
    if (top === null && per.length === 0) {
      box.replaceChildren(el('p', 'hint',
        'This gateway reports no cost-map state in /moongate/state (prices, if any, come from ' +
        'model_info and the built-in map).'));
      return;
    }
    const parts = [];
    if (top !== null) parts.push(typeof top === 'object' ? kvTable(top) : el('p', null, String(top)));
    for (const w of per) {
      parts.push(el('h3', null, `worker ${w.worker}`));
      const c = w.cost_map ?? w.costmap;
      parts.push(typeof c === 'object' ? kvTable(c) : el('p', null, String(c)));
    }
    box.replaceChildren(...parts);
  }

  // ---- recent requests ----

  function renderRequests(recent) {
    const reqs = (recent && recent.requests) || [];
    if (recent && recent.enabled === false) {
      $('requests-hint').textContent = `Not recorded: ${recent.reason || 'no request log'}.`;
    }
    const rows = reqs.map((q) => {
      const tr = el('tr');
      tr.dataset.callId = q.call_id;
      const cls = q.status >= 500 || q.status === 499 ? 'bad' : q.status >= 400 ? 'warn' : 'good';
      tr.append(
        td(clock(q.time_ms)), td(short(q.call_id, 13), 'mono'), td(q.worker), td(q.route, 'mono'),
        td(q.model_group || q.model), td(short(q.deployment_id, 12), 'mono'), td(q.status, cls),
        td(ms(q.latency_ms)), td(`${num(q.prompt_tokens)} / ${num(q.completion_tokens)}`),
        td(`${q.retries} / ${q.fallbacks}`), td(q.stream ? 'yes' : 'no'),
      );
      tr.cells[1].title = q.call_id;
      tr.cells[5].title = q.deployment_id || '';
      return tr;
    });
    fill($('requests-table').tBodies[0], rows, 'No LLM request since the gateway started.', 11);
  }

  // ---- keys, teams and spend ----
  // Keys and teams are asked on every poll (snapshot reads, live spend); the spend log's
  // totals every SPEND_EVERY_MS at most, in the background (the master scans the log for them).
  // A key is shown by its key_name (sk-...abcd) only: its hash stays in this script's memory
  // (the block and delete routes take it), never in the DOM; the secret of a new key is in the
  // DOM only while the "shown once" box is open.

  const SPEND_EVERY_MS = 5000;
  const KEY_PAGE = 100;
  const ks = {
    session: 0,           // bumped on sign in/out: late answers of an old session are dropped
    keys: [], total: 0, teams: [],
    shownKeys: [], shownTeams: [],
    keysSig: null, teamsSig: null, optionsSig: null,
    pending: null,        // {kind: 'key' | 'team', id}: a delete waiting for its confirmation
    busy: false,
    pollError: null, actionError: null,
    spend: null, spendError: null, spendAt: 0, spendInFlight: false, spendDirty: true,
  };
  let newSecret = null;   // the key just created, until its box is closed

  function resetKeys() {
    ks.session++;
    Object.assign(ks, {
      keys: [], total: 0, teams: [], shownKeys: [], shownTeams: [], keysSig: null, teamsSig: null,
      optionsSig: null, pending: null, busy: false, pollError: null, actionError: null, spend: null,
      spendError: null, spendAt: 0, spendInFlight: false, spendDirty: true,
    });
    closeSecret();
  }

  function money(v) {
    if (typeof v !== 'number' || !Number.isFinite(v)) return '—';
    if (v === 0) return '$0';
    if (Math.abs(v) >= 1) return `$${v.toFixed(2)}`;
    if (Math.abs(v) < 0.0001) return `$${v.toExponential(2)}`;
    return `$${Number(v.toPrecision(3))}`;
  }

  function showKeysError() {
    const e = $('keys-error');
    const msg = ks.actionError || ks.pollError || ks.spendError;
    e.hidden = !msg;
    e.textContent = msg || '';
  }

  async function refreshKeys() {
    const session = ks.session;
    try {
      const [kl, tl] = await Promise.all([
        api(`/key/list?return_full_object=true&size=${KEY_PAGE}&sort_by=created_at&sort_order=desc`),
        api('/team/list'),
      ]);
      if (session !== ks.session) return;
      ks.keys = ((kl && kl.keys) || []).filter((k) => k && typeof k === 'object');
      ks.total = kl && typeof kl.total_count === 'number' ? kl.total_count : ks.keys.length;
      ks.teams = (Array.isArray(tl) ? tl : []).filter((t) => t && typeof t === 'object');
      ks.pollError = null;
    } catch (e) {
      if (session !== ks.session) return;
      ks.pollError = `The key routes did not answer: ${e.message}`;
    }
    renderKeysSection();
    refreshSpend();
  }

  function refreshSpend() {
    if (ks.spendInFlight || (!ks.spendDirty && Date.now() - ks.spendAt < SPEND_EVERY_MS)) return;
    const session = ks.session;
    ks.spendInFlight = true;
    ks.spendDirty = false;
    Promise.all([api('/global/spend'), api('/global/spend/keys?limit=5'), api('/global/spend/models?limit=5')])
      .then(([g, byKey, byModel]) => {
        if (session !== ks.session) return;
        ks.spend = { global: g || {}, keys: Array.isArray(byKey) ? byKey : [],
          models: Array.isArray(byModel) ? byModel : [], at: Date.now() };
        ks.spendError = null;
      })
      .catch((e) => {
        if (session !== ks.session) return;
        ks.spendError = `The spend routes did not answer: ${e.message}`;
      })
      .finally(() => {
        if (session !== ks.session) return;
        ks.spendInFlight = false;
        ks.spendAt = Date.now();
        renderSpend();
        showKeysError();
      });
  }

  function renderKeysSection() {
    $('key-create').disabled = ks.busy;
    $('team-create').disabled = ks.busy;
    renderTeamOptions();
    renderTeams();
    renderKeys();
    showKeysError();
  }

  const teamName = (id) => {
    if (!id) return null;
    const t = ks.teams.find((x) => x.team_id === id);
    return (t && t.team_alias) || short(id, 8);
  };
  const modelsText = (m) => (Array.isArray(m) && m.length > 0 ? m.join(', ') : 'all');
  const limitsText = (o) => `${o.rpm_limit ?? '—'} / ${o.tpm_limit ?? '—'}`;

  function budgetCell(spend, max) {
    const over = typeof max === 'number' && typeof spend === 'number' && spend >= max;
    return td(`${money(spend ?? 0)} / ${typeof max === 'number' ? money(max) : 'no budget'}`, over ? 'bad spend-cell' : 'spend-cell');
  }

  function actionsCell(kind, id, blocked, confirmText) {
    const c = el('td', 'actions');
    if (ks.pending && ks.pending.kind === kind && ks.pending.id === id) {
      c.append(el('span', 'confirm', confirmText), ' ');
      const yes = el('button', 'danger', 'Confirm delete');
      yes.type = 'button';
      yes.dataset.action = 'delete-confirm';
      const no = el('button', null, 'Cancel');
      no.type = 'button';
      no.dataset.action = 'cancel';
      c.append(yes, ' ', no);
    } else {
      const b = el('button', null, blocked ? 'Unblock' : 'Block');
      b.type = 'button';
      b.dataset.action = blocked ? 'unblock' : 'block';
      const d = el('button', 'danger', 'Delete');
      d.type = 'button';
      d.dataset.action = 'delete';
      c.append(b, ' ', d);
    }
    for (const b of c.querySelectorAll('button')) b.disabled = ks.busy;
    return c;
  }

  function keyState(k) {
    const team = ks.teams.find((t) => t.team_id === k.team_id);
    if (k.blocked === true) return ['blocked', 'bad'];
    if (team && team.blocked === true) return ['team blocked', 'bad'];
    if (k.expires && Date.parse(k.expires) <= Date.now()) return ['expired', 'bad'];
    return ['active', 'good'];
  }

  function renderKeys() {
    const model = ks.keys.map((k) => ({
      alias: k.key_alias, name: k.key_name, team: teamName(k.team_id), models: modelsText(k.models),
      spend: k.spend, max: k.max_budget, limits: limitsText(k), state: keyState(k),
      created: k.created_at, id: k.token,
    }));
    const sig = JSON.stringify([model, ks.pending, ks.busy, ks.total]);
    if (sig === ks.keysSig) return; // nothing changed: the rows (and a hovered button) stay
    ks.keysSig = sig;
    ks.shownKeys = ks.keys;
    const rows = model.map((m, i) => {
      const tr = el('tr');
      tr.dataset.idx = String(i);
      tr.dataset.keyName = m.name || '';
      const alias = td(m.alias ?? '(no alias)', m.alias ? 'alias' : 'alias muted');
      const created = m.created ? new Date(m.created) : null;
      tr.append(
        alias, td(m.name, 'mono key-name'), td(m.team, 'team'), td(m.models, 'models'),
        budgetCell(m.spend, m.max), td(m.limits), td(m.state[0], `key-state ${m.state[1]}`),
        td(created && !Number.isNaN(created.getTime()) ? created.toLocaleString('en-GB', { hour12: false }) : null),
        actionsCell('key', m.id, m.state[0] === 'blocked', 'Delete this key?'),
      );
      return tr;
    });
    fill($('keys-table').tBodies[0], rows, 'No virtual key yet.', 9);
    const more = $('keys-more');
    more.hidden = ks.total <= ks.keys.length;
    more.textContent = `The newest ${ks.keys.length} of ${ks.total} keys.`;
  }

  function renderTeams() {
    const model = ks.teams.map((t) => ({
      alias: t.team_alias, id: t.team_id, spend: t.spend, max: t.max_budget, blocked: t.blocked === true,
      members: Array.isArray(t.members_with_roles) ? t.members_with_roles.length : 0,
      keys: Array.isArray(t.keys) ? t.keys.length : null, models: modelsText(t.models),
    }));
    const sig = JSON.stringify([model, ks.pending, ks.busy]);
    if (sig === ks.teamsSig) return;
    ks.teamsSig = sig;
    ks.shownTeams = ks.teams;
    const rows = model.map((m, i) => {
      const tr = el('tr');
      tr.dataset.idx = String(i);
      tr.dataset.team = m.id || '';
      const idc = td(short(m.id, 8), 'mono');
      idc.title = m.id || '';
      tr.append(
        td(m.alias ?? '(no alias)', m.alias ? 'alias' : 'alias muted'), idc, budgetCell(m.spend, m.max),
        td(m.blocked ? 'blocked' : 'active', m.blocked ? 'team-state bad' : 'team-state good'),
        td(m.members), td(m.keys), td(m.models),
        actionsCell('team', m.id, m.blocked, m.keys ? `Delete the team and its ${m.keys} key${m.keys === 1 ? '' : 's'}?` : 'Delete this team?'),
      );
      return tr;
    });
    fill($('teams-table').tBodies[0], rows, 'No team yet.', 8);
  }

  function renderTeamOptions() {
    const sel = $('key-team');
    const opts = ks.teams.map((t) => [t.team_id, t.team_alias || t.team_id]);
    const sig = JSON.stringify(opts);
    if (sig === ks.optionsSig) return;
    ks.optionsSig = sig;
    const keep = sel.value;
    const none = el('option', null, '(none)');
    none.value = '';
    sel.replaceChildren(none, ...opts.map(([id, name]) => {
      const o = el('option', null, name);
      o.value = id;
      return o;
    }));
    if (opts.some(([id]) => id === keep)) sel.value = keep;
  }

  // a horizontal bar per item, drawn like the traffic charts
  function barChart(items, empty) {
    if (items.length === 0) return el('p', 'hint', empty);
    const W = 360;
    const ROW = 20;
    const L = 130;
    const R = 70;
    const H = items.length * ROW + 4;
    const max = Math.max(...items.map((x) => x.value), 0) || 1;
    const svg = svgEl('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img' }, 'chart bars');
    items.forEach((x, i) => {
      const y = 2 + i * ROW;
      const g = svgEl('g', {}, 'item');
      const label = svgEl('text', { x: L - 6, y: y + 14 }, 'axis label');
      label.textContent = short(x.label, 18);
      const w = Math.max(1, ((W - L - R) * x.value) / max);
      const bar = svgEl('rect', { x: L, y: y + 3, width: w, height: ROW - 6 }, 'bar');
      const value = svgEl('text', { x: L + w + 4, y: y + 14 }, 'axis value');
      value.textContent = money(x.value);
      const title = svgEl('title', {});
      title.textContent = `${x.label}: ${money(x.value)}`;
      g.append(title, label, bar, value);
      svg.append(g);
    });
    return svg;
  }

  function spendKeyLabel(row) {
    const k = ks.keys.find((x) => x.token === row.api_key);
    if (k) return k.key_alias || k.key_name || 'key';
    if (row.key_alias) return row.key_alias;
    // not a key this gateway still has (deleted, or the master key): the hash's first 8 digits
    return `key ${short(row.api_key, 8)}`;
  }

  function renderSpend() {
    const s = ks.spend;
    if (!s) return;
    $('spend-total').textContent = money(typeof s.global.spend === 'number' ? s.global.spend : 0);
    const max = s.global.max_budget;
    $('spend-note').textContent = `${typeof max === 'number' && max > 0 ? `of ${money(max)} · ` : ''}as of ${clock(s.at)}`;
    const top = (xs, label) => xs.filter((x) => typeof x.total_spend === 'number' && x.total_spend > 0)
      .sort((a, b) => b.total_spend - a.total_spend).slice(0, 5)
      .map((x) => ({ label: label(x), value: x.total_spend }));
    $('spend-keys').querySelector('.spend-chart').replaceChildren(
      barChart(top(s.keys, spendKeyLabel), 'No key spent anything in the last 30 days.'));
    $('spend-models').querySelector('.spend-chart').replaceChildren(
      barChart(top(s.models, (x) => x.model || '—'), 'No model was paid for in the last 30 days.'));
  }

  // ---- the actions ----

  async function keysAction(fn) {
    if (ks.busy) return;
    ks.busy = true;
    ks.actionError = null;
    renderKeysSection();
    try {
      await fn();
      ks.spendDirty = true;
    } catch (e) {
      ks.actionError = e.message;
    } finally {
      ks.busy = false;
    }
    await refreshKeys();
  }

  function onRowAction(kind, ev) {
    const b = ev.target.closest('button[data-action]');
    if (!b || b.disabled) return;
    const tr = b.closest('tr');
    const list = kind === 'key' ? ks.shownKeys : ks.shownTeams;
    const item = list[Number(tr && tr.dataset.idx)];
    if (!item) return;
    const id = kind === 'key' ? item.token : item.team_id;
    const a = b.dataset.action;
    if (a === 'delete') {
      ks.pending = { kind, id };
      renderKeysSection();
      return;
    }
    if (a === 'cancel') {
      ks.pending = null;
      renderKeysSection();
      return;
    }
    keysAction(async () => {
      if (a === 'delete-confirm') {
        ks.pending = null;
        await api(`/${kind}/delete`, { body: kind === 'key' ? { keys: [id] } : { team_ids: [id] } });
      } else if (a === 'block' || a === 'unblock') {
        await api(`/${kind}/${a}`, { body: kind === 'key' ? { key: id } : { team_id: id } });
      }
    });
  }

  function numberField(input, what, integer) {
    const v = input.value.trim();
    if (v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) {
      throw new Error(`${what} must be ${integer ? 'a whole number' : 'a number'} of 0 or more.`);
    }
    return n;
  }

  function createKey(ev) {
    ev.preventDefault();
    keysAction(async () => {
      const body = {};
      const alias = $('key-alias').value.trim();
      if (alias) body.key_alias = alias;
      if ($('key-team').value) body.team_id = $('key-team').value;
      const models = $('key-models').value.split(/[\s,]+/).filter((m) => m);
      if (models.length) body.models = models;
      const budget = numberField($('key-budget'), 'Max budget', false);
      if (budget !== undefined) body.max_budget = budget;
      const rpm = numberField($('key-rpm'), 'RPM limit', true);
      if (rpm !== undefined) body.rpm_limit = rpm;
      const made = await api('/key/generate', { body });
      if (!made || typeof made.key !== 'string') throw new Error('/key/generate answered no key');
      showSecret(made.key);
      $('key-form').reset();
    });
  }

  function createTeam(ev) {
    ev.preventDefault();
    keysAction(async () => {
      const body = {};
      const alias = $('team-alias').value.trim();
      if (alias) body.team_alias = alias;
      const budget = numberField($('team-budget'), 'Max budget', false);
      if (budget !== undefined) body.max_budget = budget;
      await api('/team/new', { body });
      $('team-form').reset();
    });
  }

  function showSecret(secret) {
    newSecret = secret;
    $('new-key-secret').textContent = secret;
    $('new-key-status').textContent = '';
    $('new-key').hidden = false;
  }

  function closeSecret() {
    newSecret = null;
    $('new-key-secret').textContent = '';
    $('new-key-status').textContent = '';
    $('new-key').hidden = true;
  }

  async function copySecret() {
    if (!newSecret) return;
    try {
      await navigator.clipboard.writeText(newSecret);
      $('new-key-status').textContent = 'copied';
    } catch {
      // no clipboard permission: select it, for Ctrl+C
      const range = document.createRange();
      range.selectNodeContents($('new-key-secret'));
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      $('new-key-status').textContent = 'selected: press Ctrl+C (the browser refused the clipboard)';
    }
  }

  // ---- health probe (on demand: it calls every deployment) ----

  async function runProbe() {
    const btn = $('probe');
    btn.disabled = true;
    $('probe-status').textContent = 'probing every deployment…';
    try {
      const h = await api('/health');
      const byId = {};
      for (const e of h.healthy_endpoints || []) byId[e.model_id] = { ok: true };
      for (const e of h.unhealthy_endpoints || []) byId[e.model_id] = { ok: false, error: e.error };
      probe = { at: Date.now(), byId };
      $('probe-status').textContent =
        `${h.healthy_count} healthy, ${h.unhealthy_count} unhealthy at ${clock(probe.at)}`;
    } catch (e) {
      $('probe-status').textContent = `probe failed: ${e.message}`;
    } finally {
      btn.disabled = false;
    }
  }

  // ---- start ----

  function start() {
    $('login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const k = $('key').value.trim();
      if (!k) return;
      $('login-submit').disabled = true;
      try {
        await signIn(k);
        $('key').value = '';
      } catch (e) {
        showLogin(e.message);
      } finally {
        $('login-submit').disabled = false;
      }
    });
    $('logout').addEventListener('click', () => signOut(''));
    $('probe').addEventListener('click', () => { runProbe(); });
    $('key-form').addEventListener('submit', createKey);
    $('team-form').addEventListener('submit', createTeam);
    $('keys-table').tBodies[0].addEventListener('click', (ev) => onRowAction('key', ev));
    $('teams-table').tBodies[0].addEventListener('click', (ev) => onRowAction('team', ev));
    $('new-key-copy').addEventListener('click', () => { copySecret(); });
    $('new-key-dismiss').addEventListener('click', closeSecret);
    const saved = sessionStorage.getItem(KEY_STORE);
    if (saved) {
      signIn(saved).catch((e) => signOut(e.message));
    } else {
      showLogin('');
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
