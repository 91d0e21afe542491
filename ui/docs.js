// ui/docs.js -- /docs: lists every operation of the gateway's /openapi.json, grouped by
// tag, with its auth, parameters and body.  No library; nothing fetched but openapi.json
// from this gateway (relative to the page, so SERVER_ROOT_PATH is honoured).
'use strict';

(() => {
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = String(text);
    return e;
  };

  const schemaName = (body) => {
    const s = body && body.content && body.content['application/json'] &&
      body.content['application/json'].schema;
    return s && s.$ref ? s.$ref.split('/').pop() : null;
  };

  async function main() {
    const r = await fetch('openapi.json', { cache: 'no-store' });
    if (!r.ok) throw new Error(`openapi.json: HTTP ${r.status}`);
    const doc = await r.json();
    document.getElementById('info').textContent =
      `${doc.info.title} ${doc.info.version} · OpenAPI ${doc.openapi} · server ${doc.servers[0].url}`;
    const byTag = new Map((doc.tags || []).map((t) => [t.name, { t, ops: [] }]));
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const tag = (op.tags && op.tags[0]) || 'other';
        if (!byTag.has(tag)) byTag.set(tag, { t: { name: tag }, ops: [] });
        byTag.get(tag).ops.push({ path, method, op });
      }
    }
    const box = document.getElementById('ops');
    for (const { t, ops } of byTag.values()) {
      if (ops.length === 0) continue;
      const sec = el('section');
      sec.append(el('h2', null, t.name));
      if (t.description) sec.append(el('p', 'hint', t.description));
      for (const { path, method, op } of ops) {
        const row = el('div', 'op');
        row.id = op.operationId;
        const auth = op['x-moongate-auth'] === 'none' ? 'public'
          : op['x-moongate-auth'] === 'master' ? 'master key' : 'key';
        row.append(el('span', `method ${method}`, method), el('span', 'mono', path),
          el('span', null, op.summary || ''), el('span', 'auth', auth));
        const extra = [];
        for (const p of op.parameters || []) extra.push(`${p.in} ${p.name}${p.required ? '' : '?'}`);
        const body = schemaName(op.requestBody);
        if (body) extra.push(`body ${body}`);
        if (extra.length) row.append(el('span', 'params', extra.join(' · ')));
        sec.append(row);
      }
      box.append(sec);
    }
  }

  main().catch((e) => {
    const p = document.getElementById('error');
    p.hidden = false;
    p.textContent = e.message;
  });
})();
