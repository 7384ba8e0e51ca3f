// Request counters for the rate limits, in the store so a person's limit holds across
// replicas (a round-robin Service would otherwise multiply it by the replica count).
import { sql } from 'kysely';
import type { Connection } from './database.js';

export class RateLimitCounters {
  private lastSweep = 0;

  constructor(
    private readonly conn: Connection,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one hit for `key` in its fixed window of `windowMs`; the hits so far and when the window ends. */
  async hit(key: string, windowMs: number): Promise<{ hits: number; resetAt: number }> {
    const now = this.now();
    const start = now - (now % windowMs);
    // One statement, so concurrent hits on any replica each count once.
    const { rows } = await sql<{ hits: number; window_start: number }>`
      insert into rate_limits (key, window_start, hits) values (${key}, ${start}, 1)
      on conflict (key) do update set
        hits = case when rate_limits.window_start < ${start} then 1 else rate_limits.hits + 1 end,
        window_start = case when rate_limits.window_start < ${start} then ${start} else rate_limits.window_start end
      returning hits, window_start`.execute(this.conn.db);
    if (now - this.lastSweep > windowMs * 10) {
      this.lastSweep = now;
      await this.conn.db
        .deleteFrom('rate_limits')
        .where('window_start', '<', start - windowMs)
        .execute();
    }
    return { hits: Number(rows[0]!.hits), resetAt: Number(rows[0]!.window_start) + windowMs };
  }

  async unhit(key: string): Promise<void> {
    await this.conn.db
      .updateTable('rate_limits')
      .set({ hits: sql`case when hits > 0 then hits - 1 else 0 end` })
      .where('key', '=', key)
      .execute();
  }

  async reset(key: string): Promise<void> {
    await this.conn.db.deleteFrom('rate_limits').where('key', '=', key).execute();
  }
}
