// Control of a run from any replica. A viewer connected to a replica that does not own
// the run sends its stdin and terminal sizes here, addressed to the owner, which feeds
// them to the run in order and deletes them; a cancel is recorded here so whichever
// replica ends the run (its owner, or one that adopts it) records it as a cancel. Each
// change is announced on CONTROL_CHANNEL (PostgreSQL NOTIFY, sent at commit); readers
// also poll, so a lost notification only delays them.
import { type Kysely, sql } from 'kysely';
import type { Connection } from './database.js';
import type { Tables } from './schema.js';
import { CONTROL_CHANNEL } from './wakeups.js';

export type InputKind = 0 | 4;

export interface InputRow {
  seq: number;
  kind: InputKind;
  data: Buffer;
}

/** Why input for a run cannot be stored now. */
export type InputRefusal =
  /** No replica holds a live lease on the run (its owner stopped; another adopts it soon), or it ended. */
  | { kind: 'no-owner' }
  /** The replica whose attach held the run's stdin is no longer its owner: Kubernetes closed the stdin. */
  | { kind: 'session-gone'; sessionOwner: string };

export class RunControls {
  constructor(
    private readonly conn: Connection,
    private readonly clock: () => number = Date.now,
  ) {}

  private now() {
    return this.conn.engine === 'postgres' ? sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint` : sql<number>`${this.clock()}`;
  }

  private async notify(trx: Kysely<Tables>, runId: string) {
    if (this.conn.engine === 'postgres') await sql`select pg_notify(${CONTROL_CHANNEL}, ${runId})`.execute(trx);
  }

  /**
   * Stores input for the run's current owner, if it has one that is alive and holds the
   * run's stdin (or no attach holds it yet). Returns the owner it is addressed to and the
   * run's input backlog (bytes stored and not yet taken, this row included), or why not.
   */
  async sendInput(runId: string, kind: InputKind, data: Buffer): Promise<{ owner: string; backlog: number } | InputRefusal> {
    return this.conn.db.transaction().execute(async (trx) => {
      // One statement decides and inserts: a lease that expires or changes hands between a
      // check and the insert cannot get input addressed to a replica that no longer owns the run.
      const { rows } = await sql<{ owner: string }>`
        insert into run_input (run_id, owner, kind, data)
        select l.run_id, l.owner, ${kind}, ${data} from run_leases l left join run_sessions s on s.run_id = l.run_id
        where l.run_id = ${runId} and l.expires_at > ${this.now()} and (s.owner is null or s.owner = l.owner)
        returning owner`.execute(trx);
      const owner = rows[0]?.owner;
      if (owner === undefined) {
        const session = await trx.selectFrom('run_sessions').select('owner').where('run_id', '=', runId).executeTakeFirst();
        const lease = await sql<{ owner: string }>`select owner from run_leases where run_id = ${runId} and expires_at > ${this.now()}`.execute(trx);
        if (session && session.owner !== lease.rows[0]?.owner) return { kind: 'session-gone', sessionOwner: session.owner };
        return { kind: 'no-owner' };
      }
      await this.notify(trx, runId);
      return { owner, backlog: await backlogOf(trx, runId) };
    });
  }

  /** Bytes of input stored for the run and not yet taken by its owner. */
  async backlog(runId: string): Promise<number> {
    return backlogOf(this.conn.db, runId);
  }

  /** The oldest input addressed to `owner`, in order; input addressed to an earlier owner is dropped (its stdin is gone). */
  async pendingInput(runId: string, owner: string, limit = 16): Promise<InputRow[]> {
    await this.conn.db.deleteFrom('run_input').where('run_id', '=', runId).where('owner', '<>', owner).execute();
    const rows = await this.conn.db
      .selectFrom('run_input')
      .select(['seq', 'kind', 'data'])
      .where('run_id', '=', runId)
      .where('owner', '=', owner)
      .orderBy('seq')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ seq: Number(r.seq), kind: r.kind as InputKind, data: Buffer.from(r.data) }));
  }

  /** The owner has fed these rows to the run; writers waiting for room are woken. */
  async inputTaken(runId: string, seqs: readonly number[]): Promise<void> {
    if (seqs.length === 0) return;
    await this.conn.db.transaction().execute(async (trx) => {
      await trx
        .deleteFrom('run_input')
        .where('run_id', '=', runId)
        .where('seq', 'in', [...seqs])
        .execute();
      await this.notify(trx, runId);
    });
  }

  /** This replica's attach holds the run's stdin from now on (the first to record it stays). */
  async holdSession(runId: string, owner: string): Promise<void> {
    await this.conn.db
      .insertInto('run_sessions')
      .values({ run_id: runId, owner })
      .onConflict((oc) => oc.column('run_id').doNothing())
      .execute();
  }

  /** The replica whose attach holds (or held) the run's stdin, if one was recorded. */
  async sessionHolder(runId: string): Promise<string | undefined> {
    const row = await this.conn.db.selectFrom('run_sessions').select('owner').where('run_id', '=', runId).executeTakeFirst();
    return row?.owner;
  }

  /** Records a cancel request; the first one stands. */
  async requestCancel(runId: string, by: unknown): Promise<void> {
    await this.conn.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('run_cancels')
        .values({ run_id: runId, json: JSON.stringify(by), requested_at: this.clock() })
        .onConflict((oc) => oc.column('run_id').doNothing())
        .execute();
      await this.notify(trx, runId);
    });
  }

  /** Who asked to cancel the run, if anyone did. */
  async cancelRequest(runId: string): Promise<unknown> {
    const row = await this.conn.db.selectFrom('run_cancels').select('json').where('run_id', '=', runId).executeTakeFirst();
    return row ? (JSON.parse(row.json) as unknown) : undefined;
  }

  /** The run ended: its controls go. */
  async forget(runId: string): Promise<void> {
    await this.conn.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('run_input').where('run_id', '=', runId).execute();
      await trx.deleteFrom('run_sessions').where('run_id', '=', runId).execute();
      await trx.deleteFrom('run_cancels').where('run_id', '=', runId).execute();
    });
  }
}

async function backlogOf(db: Kysely<Tables>, runId: string): Promise<number> {
  const { rows } = await sql<{ n: string | number | null }>`select sum(length(data)) as n from run_input where run_id = ${runId}`.execute(db);
  return Number(rows[0]?.n ?? 0);
}
