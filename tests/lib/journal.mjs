// Writes identity rows into a moongate embedded store (the registry journal in a state
// directory) the way another instance sharing the directory would: one checksummed record
// per change, version = last + 1.  Tests use it to set up virtual keys, teams and users
// without going through the management routes they do not test.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

function lastVersion(file) {
  if (!fs.existsSync(file)) return 0;
  const data = fs.readFileSync(file);
  let v = 0;
  let at = 0;
  while (at < data.length) {
    const nl = data.indexOf(10, at);
    if (nl < 0) break;
    const m = /^MGJ1 (\d+) (\d+) ([0-9a-f]{16})$/.exec(data.subarray(at, nl).toString());
    if (!m) throw new Error(`journal ${file}: unreadable header at byte ${at}`);
    v = Number(m[1]);
    at = nl + 1 + Number(m[2]) + 1;
  }
  return v;
}

/** Appends one record ({op,...}); returns its version. */
export function journalAppend(stateDir, rec) {
  fs.mkdirSync(stateDir, { recursive: true });
  const file = path.join(stateDir, 'registry.journal');
  const version = lastVersion(file) + 1;
  const payload = Buffer.from(JSON.stringify({ ...rec, version }));
  const sum = crypto.createHash('sha256').update(payload).digest('hex').slice(0, 16);
  fs.appendFileSync(file, Buffer.concat([Buffer.from(`MGJ1 ${version} ${payload.length} ${sum}\n`), payload, Buffer.from('\n')]));
  return version;
}

export const sha256hex = (s) => crypto.createHash('sha256').update(s).digest('hex');

/** A virtual key row (LiteLLM_VerificationToken columns) for the raw key. */
export function keyRow(key, cols = {}) {
  return { token: sha256hex(key), key_name: `sk-...${key.slice(-4)}`, spend: 0, models: [], metadata: {}, ...cols };
}

export function identPut(stateDir, table, id, row) {
  return journalAppend(stateDir, { op: 'ident_put', table, id, row });
}

export function putKey(stateDir, key, cols = {}) {
  const row = keyRow(key, cols);
  return identPut(stateDir, 'key', row.token, row);
}
