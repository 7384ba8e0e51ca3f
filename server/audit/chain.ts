// PURE: tamper evidence for the audit log. Each event's hash covers the
// previous event's hash and the event's canonical encoding, so an edited,
// deleted or reordered row breaks the chain at that row.
import { createHash } from 'node:crypto';
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

/** sha256(prevHash + "\n" + canonicalJson(body)), hex. `body` excludes prevHash and hash. */
export function hashEvent(prevHash: string, body: object): string {
  return createHash('sha256').update(`${prevHash}\n${canonicalJson(body)}`).digest('hex');
}

/** hashEvent of a stored event (its prevHash and hash fields are not part of the body). */
export function hashStoredEvent(event: { prevHash: string }): string {
  return createHash('sha256').update(`${event.prevHash}\n${canonicalBody(event)}`).digest('hex');
}

type Chained = { seq: number; prevHash: string; hash: string } & Record<string, unknown>;

/** Walks events oldest first; the first inconsistency is reported with its seq. */
export function verifyChain(events: Iterable<Chained>): AuditVerifyResult {
  let expectedPrev = GENESIS_HASH;
  let expectedSeq: number | undefined;
  let checked = 0;
  for (const event of events) {
    const { hash, prevHash } = event;
    if (expectedSeq !== undefined && event.seq !== expectedSeq) {
      return {
        ok: false,
        checked,
        brokenAt: event.seq,
        problem: event.seq > expectedSeq
          ? `events ${expectedSeq}..${event.seq - 1} are missing (deleted)`
          : `event ${event.seq} is out of order (expected ${expectedSeq})`,
      };
    }
    if (prevHash !== expectedPrev) {
      return {
        ok: false,
        checked,
        brokenAt: event.seq,
        problem: checked === 0 && expectedSeq === undefined
          ? `event ${event.seq} does not start the chain (its previous hash is not the genesis hash): earlier events were removed`
          : `event ${event.seq} does not follow the event before it (previous hash mismatch): an event was removed or replaced`,
      };
    }
    if (hashStoredEvent(event) !== hash) {
      return { ok: false, checked, brokenAt: event.seq, problem: `event ${event.seq} was modified after it was written (hash mismatch)` };
    }
    expectedPrev = hash;
    expectedSeq = event.seq + 1;
    checked++;
  }
  return { ok: true, checked };
}
