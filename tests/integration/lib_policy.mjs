// tests/integration/lib_policy.mjs -- helpers for the policy tests
// (policy_*.test.mjs) on top of tests/lib/harness.mjs:
//  - one request on a fresh TCP connection (so it can land on any worker),
//    with send/receive times and the moongate headers picked out;
//  - a bounded, recording load of concurrent clients;
//  - the policy-set version the gateway reports, computed from the sources;
//  - /moongate/state helpers (per-worker policy states).
//
// Every wait is a poll with a deadline; every loop is bounded.  Times are
// Date.now() (CLOCK_REALTIME, like the mock provider's t_start_ms).

import crypto from 'node:crypto';
import { waitFor } from '../lib/harness.mjs';
import { req as registryReq } from './lib_registry.mjs';

export const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');

/**
 * x-moongate-policy-version for a policy set: the first 12 hex digits of
 * sha256 over the three policies' sha256 (routing, fallback, wildcard).
 */
export function policySetVersion(routingHash, fallbackHash, wildcardHash) {
  return sha256(routingHash + fallbackHash + wildcardHash).slice(0, 12);
}

/**
 * lib_registry's req() (a new connection unless an agent is given), plus the
 * policy headers: {..., regVersion, polVersion, modelId}.
 */
export async function req(port, path, opts = {}) {
  const r = await registryReq(port, path, opts);
  if (r.error) return r;
  return {
    ...r,
    regVersion: r.version,
    polVersion: r.headers['x-moongate-policy-version'] ?? null,
    modelId: r.headers['x-litellm-model-id'] ?? null,
  };
}

export const chatBody = (model, content = 'hi', extra = {}) =>
  ({ model, messages: [{ role: 'user', content }], ...extra });

/**
 * Concurrent clients sending requests until stop() is called (or max requests,
 * or the deadline).  makeRequest(i) returns {path, body, ...req options}.
 * Returns {stop, done}; done resolves to the list of results (with .i).
 */
export function startLoad(port, { clients = 8, max = 5000, deadlineMs = 60000, makeRequest, key } = {}) {
  let stopped = false;
  let next = 0;
  const results = [];
  const end = Date.now() + deadlineMs;
  async function client() {
    while (!stopped && next < max && Date.now() < end) {
      const i = next++;
      const { path = '/v1/chat/completions', method = 'POST', body, ...opts } = makeRequest(i);
      const r = await req(port, path, { method, body, key, ...opts });
      r.i = i;
      results.push(r);
    }
  }
  const done = Promise.all(Array.from({ length: clients }, client)).then(() => results);
  return {
    stop() { stopped = true; },
    count: () => results.length,
    results,
    done,
  };
}

/** Waits until at least n requests of a running load have finished. */
export function waitCount(load, n, timeout = 30000) {
  return waitFor(() => load.count() >= n, { timeout, what: `${n} finished requests` });
}

/** /moongate/state (master key). */
export async function state(port, key) {
  const r = await req(port, '/moongate/state', { key });
  if (r.status !== 200) throw new Error(`/moongate/state: ${r.status} ${r.text}`);
  return r.json;
}

/** Waits until every worker's state satisfies pred(workerState); returns the state. */
export function waitWorkers(port, key, n, pred, { timeout = 15000, what = 'every worker' } = {}) {
  return waitFor(async () => {
    const s = await state(port, key);
    if (!s || s.workers.length !== n) return false;
    return s.workers.every((w) => pred(w)) ? s : false;
  }, { timeout, interval: 50, what });
}

/** Milliseconds until the next wall-clock minute starts. */
export const msToNextMinute = () => 60000 - (Date.now() % 60000);

/** If the current minute ends within `margin` ms, waits (polling the clock) until the next one starts. */
export async function awayFromMinuteEnd(margin = 10000) {
  if (msToNextMinute() < margin) {
    const m = Math.floor(Date.now() / 60000);
    await waitFor(() => Math.floor(Date.now() / 60000) > m, { timeout: margin + 5000, interval: 100, what: 'the next minute' });
  }
}
