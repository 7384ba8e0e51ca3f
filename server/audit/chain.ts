// PURE: tamper evidence for the audit log. Each event's hash covers the
// previous event's hash and the event's canonical encoding, so an edited,
// deleted or reordered row breaks the chain at that row.
import { createHash } from 'node:crypto';
import type { AuditVerifyResult } from '../../protocol/api.js';

export const GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted at every depth, undefined dropped, no whitespace. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('canonicalJson: non-finite number');
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** sha256(prevHash + "\n" + canonicalJson(body)), hex. `body` excludes prevHash and hash. */
export function hashEvent(prevHash: string, body: object): string {
  return createHash('sha256').update(`${prevHash}\n${canonicalJson(body)}`).digest('hex');
}

type Chained = { seq: number; prevHash: string; hash: string } & Record<string, unknown>;

/** Walks events oldest first; the first inconsistency is reported with its seq. */
export function verifyChain(events: Iterable<Chained>): AuditVerifyResult {
  let expectedPrev = GENESIS_HASH;
  let expectedSeq: number | undefined;
  let checked = 0;
  for (const event of events) {
    const { hash, prevHash, ...body } = event;
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
    if (hashEvent(prevHash, body) !== hash) {
      return { ok: false, checked, brokenAt: event.seq, problem: `event ${event.seq} was modified after it was written (hash mismatch)` };
    }
    expectedPrev = hash;
    expectedSeq = event.seq + 1;
    checked++;
  }
  return { ok: true, checked };
}
