// Stored output of each run (stdout + stderr, bounded per run) so it can be replayed from any byte offset after the pod is gone.
// Kept for a bounded time (--output-retention): prune() deletes the output of runs
// that ended longer ago than that; their audit events and run records stay.
import { sql, type Transaction } from 'kysely';
import { Run, TERMINAL_STATUSES } from '../../protocol/api.js';
import type { Connection } from './database.js';
import type { Tables } from './schema.js';
import { toRun } from './runs.js';
import { RUN_CHANNEL } from './wakeups.js';

export interface OutputChunk {
  channel: 1 | 2;
  data: Buffer;
}

export interface AppendResult {
  /** Bytes of this append that were kept. */
  stored: number;
  /** The run's stored output is incomplete: the limit was hit, now or by an earlier append. */
  truncated: boolean;
  /** The run's stored bytes after this append (the offset the next chunk gets). */
  bytes: number;
}

/**
 * A write by a replica that no longer holds the run's lease (store/leases.ts): another
 * replica adopted the run and writes its output now. Not retried.
 */
export class OutputFencedError extends Error {
  constructor(runId: string, holder: string) {
    super(`run ${runId} is now held by ${holder}; this replica's output for it is not stored`);
    this.name = 'OutputFencedError';
  }
}

/** Writes on behalf of a replica: refused once another replica holds the run's lease. */
export interface WriteFence {
  owner: string;
}

export interface OutputStoreOptions {
  /** Output kept per run (stdout and stderr together); the rest is dropped. Default 16 MiB. */
  maxBytesPerRun?: number;
}

export const DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;
/** Bytes of chunks read per query on replay: bounds memory without holding a query open between yields. */
const READ_WINDOW = 4 * 1024 * 1024;
/** Chunks per INSERT statement (4 parameters each). */
const INSERT_ROWS = 1000;

/** A place where output is missing. */
export interface OutputGap {
  offset: number;
  /** Bytes missing; -1: some, amount unknown. */
  lost: number;
  why: string;
}

export class OutputStore {
  readonly maxBytesPerRun: number;

  constructor(
    private readonly conn: Connection,
    opts: OutputStoreOptions = {},
  ) {
    const max = opts.maxBytesPerRun ?? DEFAULT_MAX_OUTPUT_BYTES;
    if (!Number.isSafeInteger(max) || max < 0) {
      throw new Error(`maxBytesPerRun must be a whole number of bytes >= 0, got ${max}`);
    }
    this.maxBytesPerRun = max;
  }

  get engine() {
    return this.conn.engine;
  }

  /**
   * Deletes the stored output of up to `maxRuns` runs that ended before `before`
   * (one transaction per run, so a large prune never holds the write lock for long).
   * Returns how many runs were pruned; call again while it returns `maxRuns`.
   */
  async prune(before: Date, maxRuns = 50, now: () => number = Date.now): Promise<number> {
    const pg = this.conn.engine === 'postgres';
    // A run's end time is in its record (runs.json); one that ended without one (lost)
    // counts from its creation. Only finished runs: live output is never pruned.
    const finishedAt = pg ? sql`coalesce(r.json::jsonb ->> 'finishedAt', r.created_at)` : sql`coalesce(json_extract(r.json, '$.finishedAt'), r.created_at)`;
    const { rows } = await sql<{ run_id: string }>`
      select m.run_id from run_output_meta m join runs r on r.id = m.run_id
      where m.expired_at is null and r.status in (${sql.join([...TERMINAL_STATUSES])}) and ${finishedAt} < ${before.toISOString()}
      limit ${maxRuns}`.execute(this.conn.db);
    for (const { run_id: runId } of rows) {
      const at = now();
      await this.conn.db.transaction().execute(async (trx) => {
        await trx.deleteFrom('run_output_chunks').where('run_id', '=', runId).execute();
        // The gaps go with the output they mark; the run record and audit keep outputLost.
        await trx.deleteFrom('run_output_gaps').where('run_id', '=', runId).execute();
        await trx.updateTable('run_output_meta').set({ expired_at: at }).where('run_id', '=', runId).execute();
        // The run record says so too, so `oddjob runs --json` and the web UI can tell
        // "expired" from "printed nothing"; 0 bytes stored and truncated, so a replay
        // that yields nothing is not reported as a lost stream.
        let q = trx.selectFrom('runs').select(['id', 'json']).where('id', '=', runId);
        if (pg) q = q.forUpdate();
        const row = await q.executeTakeFirst();
        if (!row) return;
        const run: Run = { ...toRun(row), outputExpiredAt: new Date(at).toISOString(), outputBytes: 0, outputTruncated: true };
        await trx
          .updateTable('runs')
          .set({ json: JSON.stringify(run) })
          .where('id', '=', runId)
          .execute();
      });
    }
    return rows.length;
  }

  /** Stores one chunk after the run's previous output. Rejects if it could not be written. */
  append(runId: string, channel: 1 | 2, data: Buffer): Promise<AppendResult> {
    return this.appendMany(runId, [{ channel, data }]);
  }

  /**
   * Stores chunks in order in one transaction. Each commit syncs to disk, so a caller
   * receiving many small writes (a chatty process) should buffer them briefly and
   * append them together: the cost is per transaction, not per byte.
   */
  async appendMany(runId: string, chunks: readonly OutputChunk[], fence?: WriteFence): Promise<AppendResult> {
    checkRunId(runId);
    for (const c of chunks) {
      if (c.channel !== 1 && c.channel !== 2) throw new Error(`output channel must be 1 (stdout) or 2 (stderr), got ${String(c.channel)}`);
      if (!Buffer.isBuffer(c.data)) throw new Error('output data must be a Buffer');
    }
    return this.conn.db.transaction().execute(async (trx) => {
      await this.checkFence(trx, runId, fence);
      await trx
        .insertInto('run_output_meta')
        .values({ run_id: runId, bytes: 0, truncated: 0 })
        .onConflict((oc) => oc.column('run_id').doNothing())
        .execute();
      // The offset is read under the lock that the update below needs anyway (SQLite:
      // the write transaction; PostgreSQL: the meta row), so two writers of one run
      // (an old owner still draining, a new one adopting) cannot both write offset N.
      let q = trx.selectFrom('run_output_meta').select(['bytes', 'truncated']).where('run_id', '=', runId);
      if (this.conn.engine === 'postgres') q = q.forUpdate();
      const meta = (await q.executeTakeFirst())!;
      let bytes = meta.bytes;
      let truncated = meta.truncated !== 0;
      let stored = 0;
      const rows: { run_id: string; offset: number; channel: number; data: Buffer }[] = [];
      for (const { channel, data } of chunks) {
        if (data.length === 0) continue;
        const room = this.maxBytesPerRun - bytes;
        if (truncated || room <= 0) {
          truncated = true;
          continue;
        }
        // A chunk crossing the limit keeps its head: the start of a long output is the
        // part that explains it, and it keeps offsets contiguous.
        const part = data.length <= room ? data : data.subarray(0, room);
        if (part.length < data.length) truncated = true;
        rows.push({ run_id: runId, offset: bytes, channel, data: part });
        bytes += part.length;
        stored += part.length;
      }
      // In groups: a statement takes a bounded number of parameters (SQLite 32766, PostgreSQL 65535).
      for (let i = 0; i < rows.length; i += INSERT_ROWS)
        await trx
          .insertInto('run_output_chunks')
          .values(rows.slice(i, i + INSERT_ROWS))
          .execute();
      if (bytes !== meta.bytes || truncated !== (meta.truncated !== 0)) {
        await trx
          .updateTable('run_output_meta')
          .set({ bytes, truncated: truncated ? 1 : 0 })
          .where('run_id', '=', runId)
          .execute();
        // Delivered at commit: followers on other replicas read the new bytes then.
        if (this.conn.engine === 'postgres') await sql`select pg_notify(${RUN_CHANNEL}, ${runId})`.execute(trx);
      }
      return { stored, truncated, bytes };
    });
  }

  /**
   * Replays the run's output from byte offset `from` (stdout and stderr share one
   * offset space), in stored order; a chunk that straddles `from` is cut there.
   * Chunks appended while reading are included. Reads a window at a time and holds no
   * query open between yields, so a slow viewer never blocks appends.
   */
  async *read(runId: string, from = 0): AsyncGenerator<OutputChunk> {
    checkRunId(runId);
    if (!Number.isSafeInteger(from) || from < 0) throw new Error(`output offset must be a whole number >= 0, got ${from}`);
    const straddle = await this.conn.db
      .selectFrom('run_output_chunks')
      .select((eb) => eb.fn.max('offset').as('offset'))
      .where('run_id', '=', runId)
      .where('offset', '<=', from)
      .executeTakeFirst();
    let start = straddle?.offset ?? from;
    for (;;) {
      const rows = await this.conn.db
        .selectFrom('run_output_chunks')
        .select(['offset', 'channel', 'data'])
        .where('run_id', '=', runId)
        .where('offset', '>=', start)
        .where('offset', '<', start + READ_WINDOW)
        .orderBy('offset')
        .execute();
      const last = rows.at(-1);
      if (!last) return;
      for (const row of rows) {
        const data = row.offset < from ? row.data.subarray(from - row.offset) : row.data;
        if (data.length > 0) yield { channel: row.channel as 1 | 2, data };
      }
      // Offsets are contiguous by construction, so the next chunk starts where this one ends.
      start = last.offset + last.data.length;
    }
  }

  /** Records that output is missing at `offset` (kept even past the size limit: it is tiny). */
  async addGap(runId: string, gap: OutputGap, fence?: WriteFence): Promise<void> {
    checkRunId(runId);
    if (!Number.isSafeInteger(gap.offset) || gap.offset < 0) throw new Error(`gap offset must be a whole number >= 0, got ${gap.offset}`);
    if (!Number.isSafeInteger(gap.lost) || gap.lost < -1) throw new Error(`gap size must be a whole number >= -1, got ${gap.lost}`);
    await this.conn.db.transaction().execute(async (trx) => {
      await this.checkFence(trx, runId, fence);
      await trx.insertInto('run_output_gaps').values({ run_id: runId, offset: gap.offset, lost: gap.lost, why: gap.why }).execute();
    });
  }

  /**
   * Refuses a write by a replica another one took the run over from. A replica that
   * stalled past its lease (a long GC pause, SIGSTOP, a frozen VM) goes on appending what
   * its attach still delivers until its next renewal tells it; appended after the
   * adopter's bytes, that was the run's output twice (seen in failover.test). The lease
   * row is read in the write's transaction, shared-locked on PostgreSQL, so a takeover
   * commits before or after the write, never between its check and its rows.
   */
  private async checkFence(trx: Transaction<Tables>, runId: string, fence?: WriteFence): Promise<void> {
    if (!fence) return;
    const lock = this.conn.engine === 'postgres' ? sql` for share` : sql``;
    const { rows } = await sql<{ owner: string }>`select owner from run_leases where run_id = ${runId}${lock}`.execute(trx);
    const holder = rows[0]?.owner;
    if (holder !== undefined && holder !== fence.owner) throw new OutputFencedError(runId, holder);
  }

  async gaps(runId: string): Promise<OutputGap[]> {
    checkRunId(runId);
    const rows = await this.conn.db
      .selectFrom('run_output_gaps')
      .select(['offset', 'lost', 'why'])
      .where('run_id', '=', runId)
      .orderBy('offset')
      .orderBy('id')
      .execute();
    return rows.map((r) => ({ offset: Number(r.offset), lost: Number(r.lost), why: r.why }));
  }

  async size(runId: string): Promise<{ bytes: number; truncated: boolean }> {
    const meta = await this.conn.db.selectFrom('run_output_meta').select(['bytes', 'truncated']).where('run_id', '=', runId).executeTakeFirst();
    return { bytes: meta?.bytes ?? 0, truncated: (meta?.truncated ?? 0) !== 0 };
  }

  /** Bytes stored per channel (what a restarted capture must not store again). */
  async perChannel(runId: string): Promise<Record<1 | 2, number>> {
    const rows = await this.conn.db
      .selectFrom('run_output_chunks')
      .select(['channel', sql<number>`sum(length(data))`.as('bytes')])
      .where('run_id', '=', runId)
      .groupBy('channel')
      .execute();
    const out: Record<1 | 2, number> = { 1: 0, 2: 0 };
    for (const r of rows) out[r.channel as 1 | 2] = Number(r.bytes);
    return out;
  }
}

/**
 * Prunes expired output now and then every `everyMs`, in batches that yield to the
 * event loop between them. Returns a function that stops it.
 */
export function schedulePruning(
  store: OutputStore,
  opts: { retentionMs: number; everyMs?: number; onPass?(): void; onPruned?(runs: number): void; onError?(err: unknown): void },
): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const pass = async () => {
    opts.onPass?.();
    let total = 0;
    const before = new Date(Date.now() - opts.retentionMs);
    try {
      for (;;) {
        if (stopped) return;
        const n = await store.prune(before);
        total += n;
        if (n === 0) break;
      }
      if (total > 0) opts.onPruned?.(total);
    } catch (err) {
      if (!stopped) opts.onError?.(err);
    }
    if (stopped) return;
    timer = setTimeout(() => void pass(), opts.everyMs ?? 3_600_000);
    timer.unref();
  };
  timer = setTimeout(() => void pass(), 0);
  timer.unref();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function checkRunId(runId: string): void {
  if (typeof runId !== 'string' || runId === '') throw new Error('a run id is required to store or read output');
}
