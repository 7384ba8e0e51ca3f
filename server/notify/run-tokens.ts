// Run-scoped progress credentials. Each run (with --notifications) gets a random
// token that can do one thing: POST a short progress line for that run, while it is
// active. Only its SHA-256 is stored; it is revoked when the run ends (in the same
// transaction as the run's end event) and expires on its own after the run's time limit.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import type { Database } from '../audit/db.js';

/** Visible in the token so scanners (and people) can tell it from a user's CLI token. */
export const RUN_TOKEN_PREFIX = 'ojr_';

const sha256 = (s: string) => createHash('sha256').update(s).digest();

export interface RunTokenStore {
  mint(runId: string, expiresAt: number): Promise<string>;
  /** True only for this run's live token. */
  verify(runId: string, token: string, now: number): Promise<boolean>;
  /** Synchronous: runs inside the audit append of the run's end. */
  revokeInTransaction(runId: string, now: number): void;
}

export class SqliteRunTokens implements RunTokenStore {
  private readonly insert: Statement<[Record<string, unknown>]>;
  private readonly get: Statement<[string], { hash: Buffer; expires_at: number; revoked_at: number | null }>;
  private readonly revoke: Statement<[Record<string, unknown>]>;

  constructor(db: Database) {
    this.insert = db.prepare('INSERT INTO run_tokens (run_id, hash, expires_at) VALUES (@run_id, @hash, @expires_at)');
    this.get = db.prepare('SELECT hash, expires_at, revoked_at FROM run_tokens WHERE run_id = ?');
    this.revoke = db.prepare('UPDATE run_tokens SET revoked_at = @now WHERE run_id = @run_id AND revoked_at IS NULL');
  }

  async mint(runId: string, expiresAt: number): Promise<string> {
    const token = `${RUN_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    this.insert.run({ run_id: runId, hash: sha256(token), expires_at: expiresAt });
    return token;
  }

  async verify(runId: string, token: string, now: number): Promise<boolean> {
    if (!token.startsWith(RUN_TOKEN_PREFIX) || token.length > 100) return false;
    const row = this.get.get(runId);
    if (!row || row.revoked_at !== null || row.expires_at <= now) return false;
    return timingSafeEqual(row.hash, sha256(token));
  }

  revokeInTransaction(runId: string, now: number): void {
    this.revoke.run({ run_id: runId, now });
  }
}
