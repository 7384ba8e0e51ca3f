// Run ownership: every active run has one owner, the replica that tracks it (captures
// its output, records its ending). The owner renews its leases; a lease not renewed
// within its time-to-live lets another replica take the run over. Time is the
// database's clock where there is one (PostgreSQL), so replicas' clocks cannot
// disagree about expiry; SQLite (one host) uses this process's.
import { sql } from 'kysely';
import type { Connection } from './database.js';

export class RunLeases {
  constructor(
    private readonly conn: Connection,
    private readonly clock: () => number = Date.now,
  ) {}

  private now() {
    return this.conn.engine === 'postgres' ? sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint` : sql<number>`${this.clock()}`;
  }

  /** Takes the run for `owner` if nobody holds it, its lease expired, or `owner` holds it already. */
  async claim(runId: string, owner: string, ttlMs: number): Promise<boolean> {
    const now = this.now();
    // One statement: two replicas claiming at once cannot both win.
    const { rows } = await sql<{ owner: string }>`
      insert into run_leases (run_id, owner, expires_at) values (${runId}, ${owner}, ${now} + ${ttlMs})
      on conflict (run_id) do update set owner = excluded.owner, expires_at = excluded.expires_at
        where run_leases.expires_at < ${now} or run_leases.owner = excluded.owner
      returning owner`.execute(this.conn.db);
    return rows[0]?.owner === owner;
  }

  /** Extends the owner's leases on these runs; returns the runs it no longer holds (taken over). */
  async renew(owner: string, runIds: readonly string[], ttlMs: number): Promise<string[]> {
    if (runIds.length === 0) return [];
    const { rows } = await sql<{ run_id: string }>`
      update run_leases set expires_at = ${this.now()} + ${ttlMs}
      where owner = ${owner} and run_id in (${sql.join(runIds)})
      returning run_id`.execute(this.conn.db);
    const kept = new Set(rows.map((r) => r.run_id));
    return runIds.filter((id) => !kept.has(id));
  }

  /** The run is over (or handed back): its lease goes. */
  async release(runId: string, owner: string): Promise<void> {
    await this.conn.db.deleteFrom('run_leases').where('run_id', '=', runId).where('owner', '=', owner).execute();
  }

  async holder(runId: string): Promise<{ owner: string; expiresAt: number } | undefined> {
    const row = await this.conn.db.selectFrom('run_leases').select(['owner', 'expires_at']).where('run_id', '=', runId).executeTakeFirst();
    return row && { owner: row.owner, expiresAt: row.expires_at };
  }
}
