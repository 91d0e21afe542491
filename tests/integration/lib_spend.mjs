// tests/integration/lib_spend.mjs -- helpers of the spend-log tests: one LLM call with a call id
// and an end user the test chooses (so rows, the mock's log and the client's answers can be
// matched one to one), reading rows back, waiting on the pipeline's state.
import { waitFor } from '../lib/harness.mjs';

/**
 * One chat call on a new connection (the kernel spreads them over the workers).  Resolves to
 * {id, user, status, ok, text}: ok means the client got a complete answer (a whole body, or a
 * stream that ended with [DONE]).  Network errors resolve with status 0.
 */
export async function call(gw, key, { id, user, model = 'priced', stream = false, mock, extra = {} } = {}) {
  const body = { model, messages: [{ role: 'user', content: 'hello there' }], user, ...extra };
  if (stream) {
    body.stream = true;
    body.stream_options = { include_usage: true };
  }
  if (mock) body.mock = mock;
  try {
    const r = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json', authorization: `Bearer ${key}`, connection: 'close',
        'x-litellm-call-id': id,
      },
      body: JSON.stringify(body),
    });
    const text = await r.text();
    const complete = stream ? text.includes('data: [DONE]') && !text.includes('"error"') : true;
    return { id, user, status: r.status, ok: r.status === 200 && complete, text, worker: r.headers.get('x-moongate-worker') };
  } catch (e) {
    return { id, user, status: 0, ok: false, text: String(e) };
  }
}

/** GET a spend route as the master key; JSON body or throws with the text. */
export async function spendGet(gw, p) {
  const r = await gw.request(p);
  if (r.status !== 200) throw new Error(`${p}: ${r.status} ${r.text}`);
  return r.json;
}

/** The spend state of /moongate/state. */
export async function spendState(gw) {
  return (await gw.state()).spend;
}

/** Polls /spend/logs until pred(rows) holds; returns the rows. */
export async function waitRows(gw, pred, { timeout = 20000, what = 'spend rows', query = '' } = {}) {
  let last = [];
  try {
    return await waitFor(async () => {
      last = await spendGet(gw, `/spend/logs${query}`);
      return pred(last) ? last : null;
    }, { timeout, interval: 100, what });
  } catch (e) {
    throw new Error(`${e.message}; last ${last.length} rows`);
  }
}

/** Counts occurrences of each request_id. */
export function idCounts(rows) {
  const m = new Map();
  for (const r of rows) m.set(r.request_id, (m.get(r.request_id) || 0) + 1);
  return m;
}

/** The sum of a numeric field. */
export const sum = (rows, f = 'spend') => rows.reduce((a, r) => a + Number(r[f] || 0), 0);

export const close = (a, b, eps = 1e-9) => Math.abs(a - b) <= eps * Math.max(1, Math.abs(a), Math.abs(b));

/** Sanitizer reports (ASan/UBSan builds) in the output of gateways. */
export function sanitizerReports(gws) {
  const out = [];
  for (const g of gws) {
    for (const l of g.output().stderr.split('\n')) {
      if (/runtime error:|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer/.test(l)) out.push(l);
    }
  }
  return out;
}
