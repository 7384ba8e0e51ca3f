// Run-scoped progress credentials. Each run (with --notifications) gets a random
// token that can do one thing: POST a short progress line for that run, while it is
// active. Only its SHA-256 is stored; it is revoked when the run ends (in the same
// transaction as the run's end event) and expires on its own after the run's time limit.
// The rows live in the store (server/store/notify.ts).
import type { StoreTransaction } from '../store/notify.js';

/** Visible in the token so scanners (and people) can tell it from a user's CLI token. */
export const RUN_TOKEN_PREFIX = 'ojr_';

export interface RunTokenStore {
  mint(runId: string, expiresAt: number): Promise<string>;
  /** True only for this run's live token. */
  verify(runId: string, token: string, now: number): Promise<boolean>;
  /** Inside the audit append of the run's end (that transaction's handle). */
  revokeInTransaction(trx: StoreTransaction, runId: string, now: number): Promise<void>;
}
