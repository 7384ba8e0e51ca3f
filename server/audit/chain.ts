// PURE: tamper evidence for the audit log. Each event's hash covers the
// previous event's hash and the event's canonical encoding, so an edited,
// deleted or reordered row breaks the chain at that row.
import * as crypto from 'node:crypto';
import type { AuditVerifyResult } from '../../protocol/api.js';

export const GENESIS_HASH = '0'.repeat(64);

/**
 * JSON with object keys sorted at every depth, undefined dropped, no whitespace.
 * Written as plain loops: verify runs it once per event, a million times over.
 */
export function canonicalJson(value: unknown): string {
  return canonical(value, undefined);
}

/** canonicalJson of an event without its own hash fields, without copying it. */
function canonicalBody(event: object): string {
  return canonical(event, CHAIN_FIELDS);
}
const CHAIN_FIELDS = new Set(['prevHash', 'hash']);

function canonical(value: unknown, skipTopLevel: Set<string> | undefined): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('canonicalJson: non-finite number');
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const v: unknown = value[i];
      out += v === undefined ? 'null' : canonical(v, undefined);
    }
    return `${out}]`;
  }
  const keys = Object.keys(value).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = (value as Record<string, unknown>)[k];
    if (v === undefined || skipTopLevel?.has(k)) continue;
    if (!first) out += ',';
    first = false;
    out += `${JSON.stringify(k)}:${canonical(v, undefined)}`;
  }
  return `${out}}`;
}

// crypto.hash (Node >= 20.12) is the one-shot form: no Hash object per event.
const sha256hex: (data: string) => string =
  typeof crypto.hash === 'function' ? (data) => crypto.hash('sha256', data, 'hex') : (data) => crypto.createHash('sha256').update(data).digest('hex');

/** sha256(prevHash + "\n" + canonicalJson(body)), hex. `body` excludes prevHash and hash. */
export function hashEvent(prevHash: string, body: object): string {
  return sha256hex(`${prevHash}\n${canonicalJson(body)}`);
}

/** hashEvent of a stored event (its prevHash and hash fields are not part of the body). */
export function hashStoredEvent(event: { prevHash: string }): string {
  return sha256hex(`${event.prevHash}\n${canonicalBody(event)}`);
}

/**
 * Fast path of verification: does `json`, the stored text that parsed to `event`, hash
 * to `event.hash`? The store writes canonicalJson(event), whose body is that text minus
 * its two members `,"hash":"…"` and `,"prevHash":"…"` — cutting them out is much
 * cheaper than re-encoding the parsed event. Only `true` is trusted; `false` means "ask
 * hashStoredEvent", which decides. Sound for any text: if the cut text B hashes to
 * event.hash, B is (barring a SHA-256 collision) exactly the body that was hashed on
 * append, so the stored text is that body plus two inserted members; JSON can only take
 * a member at a member boundary, and the parsed top-level hash and prevHash can only
 * come from them (the body has neither at top level), so `event` is exactly the event
 * that was appended.
 */
export function storedTextHashMatches(json: string, event: { prevHash: string; hash: string }): boolean {
  const { hash, prevHash } = event;
  if (typeof hash !== 'string' || typeof prevHash !== 'string') return false;
  const h = `,"hash":"${hash}"`;
  const i = json.indexOf(h);
  if (i < 0) return false;
  const withoutHash = json.slice(0, i) + json.slice(i + h.length);
  const p = `,"prevHash":"${prevHash}"`;
  const j = withoutHash.indexOf(p);
  if (j < 0) return false;
  return sha256hex(`${prevHash}\n${withoutHash.slice(0, j)}${withoutHash.slice(j + p.length)}`) === hash;
}

type Chained = { seq: number; prevHash: string; hash: string } & Record<string, unknown>;

/**
 * Checks a chain one event at a time, oldest first (so a store can feed it page by
 * page). next() returns the failure at the first inconsistency, else undefined.
 * `text`, when given, is the stored JSON the event was parsed from, for the fast hash
 * check (storedTextHashMatches); a miss falls back to re-encoding the event.
 */
export class ChainCheck {
  private expectedPrev = GENESIS_HASH;
  private expectedSeq: number | undefined;
  checked = 0;

  next(event: Chained, text?: string): AuditVerifyResult | undefined {
    const { hash, prevHash } = event;
    const checked = this.checked;
    const expectedSeq = this.expectedSeq;
    if (expectedSeq !== undefined && event.seq !== expectedSeq) {
      return {
        ok: false,
        checked,
        brokenAt: event.seq,
        problem:
          event.seq > expectedSeq
            ? `events ${expectedSeq}..${event.seq - 1} are missing (deleted)`
            : `event ${event.seq} is out of order (expected ${expectedSeq})`,
      };
    }
    if (prevHash !== this.expectedPrev) {
      return {
        ok: false,
        checked,
        brokenAt: event.seq,
        problem:
          checked === 0 && expectedSeq === undefined
            ? `event ${event.seq} does not start the chain (its previous hash is not the genesis hash): earlier events were removed`
            : `event ${event.seq} does not follow the event before it (previous hash mismatch): an event was removed or replaced`,
      };
    }
    if (!(text !== undefined && storedTextHashMatches(text, event)) && hashStoredEvent(event) !== hash) {
      return { ok: false, checked, brokenAt: event.seq, problem: `event ${event.seq} was modified after it was written (hash mismatch)` };
    }
    this.expectedPrev = hash;
    this.expectedSeq = event.seq + 1;
    this.checked++;
    return undefined;
  }
}

/** Walks events oldest first; the first inconsistency is reported with its seq (see ChainCheck). */
export function verifyChain(events: Iterable<Chained>, storedText?: (event: Chained) => string | undefined): AuditVerifyResult {
  const check = new ChainCheck();
  for (const event of events) {
    const bad = check.next(event, storedText?.(event));
    if (bad) return bad;
  }
  return { ok: true, checked: check.checked };
}
