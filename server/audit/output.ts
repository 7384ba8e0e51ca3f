// Stored output of each run (stdout + stderr, bounded per run) so it can be replayed from any byte offset after the pod is gone.
// Kept for a bounded time (--output-retention): prune() deletes the output of runs
// that ended longer ago than that; their audit events and run records stay.
import type { Statement } from 'better-sqlite3';
import { TERMINAL_STATUSES } from '../../protocol/names.js';
import type { Database } from './db.js';

export interface OutputChunk {
  channel: 1 | 2;
  data: Buffer;
}

export interface AppendResult {
  /** Bytes of this append that were kept. */
  stored: number;
  /** The run's stored output is incomplete: the limit was hit, now or by an earlier append. */
  truncated: boolean;
}

export interface OutputStoreOptions {
  /** Output kept per run (stdout and stderr together); the rest is dropped. Default 16 MiB. */
  maxBytesPerRun?: number;
}

interface MetaRow {
  bytes: number;
  truncated: number;
}

interface ChunkRow {
  offset: number;
  channel: number;
  data: Buffer;
}

export const DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;
/** Bytes of chunks read per query on replay: bounds memory without holding a statement open between yields. */
const READ_WINDOW = 4 * 1024 * 1024;

export class OutputStore {
  readonly maxBytesPerRun: number;
  private readonly appendTx: (runId: string, chunks: readonly OutputChunk[]) => AppendResult;
  private readonly metaStmt: Statement<[string], MetaRow>;
  private readonly straddleStmt: Statement<[string, number], number>;
  private readonly windowStmt: Statement<[string, number, number], ChunkRow>;
  private readonly dueStmt: Statement<[string, number], string>;
  private readonly expireTx: (runId: string, at: number) => void;

  constructor(db: Database, opts: OutputStoreOptions = {}) {
    const max = opts.maxBytesPerRun ?? DEFAULT_MAX_OUTPUT_BYTES;
    if (!Number.isSafeInteger(max) || max < 0) {
      throw new Error(`maxBytesPerRun must be a whole number of bytes >= 0, got ${max}`);
    }
    this.maxBytesPerRun = max;
    this.metaStmt = db.prepare('SELECT bytes, truncated FROM run_output_meta WHERE run_id = ?');
    this.straddleStmt = db.prepare<[string, number], number>('SELECT MAX(offset) FROM run_output_chunks WHERE run_id = ? AND offset <= ?').pluck();
    this.windowStmt = db.prepare('SELECT offset, channel, data FROM run_output_chunks WHERE run_id = ? AND offset >= ? AND offset < ? ORDER BY offset');
    const ensureMeta = db.prepare<[string]>('INSERT OR IGNORE INTO run_output_meta (run_id, bytes, truncated) VALUES (?, 0, 0)');
    const insertChunk = db.prepare<[string, number, number, Buffer]>('INSERT INTO run_output_chunks (run_id, offset, channel, data) VALUES (?, ?, ?, ?)');
    const updateMeta = db.prepare<[number, number, string]>('UPDATE run_output_meta SET bytes = ?, truncated = ? WHERE run_id = ?');

    const tx = db.transaction((runId: string, chunks: readonly OutputChunk[]): AppendResult => {
      ensureMeta.run(runId);
      const meta = this.metaStmt.get(runId)!;
      let bytes = meta.bytes;
      let truncated = meta.truncated !== 0;
      let stored = 0;
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
        insertChunk.run(runId, bytes, channel, part);
        bytes += part.length;
        stored += part.length;
      }
      if (bytes !== meta.bytes || truncated !== (meta.truncated !== 0)) updateMeta.run(bytes, truncated ? 1 : 0, runId);
      return { stored, truncated };
    });
    this.appendTx = (runId, chunks) => tx.immediate(runId, chunks);

    // A run's end time is in its record (runs.json); one that ended without one (lost)
    // counts from its creation. Only finished runs: live output is never pruned.
    this.dueStmt = db
      .prepare<[string, number], string>(
        `SELECT m.run_id FROM run_output_meta m JOIN runs r ON r.id = m.run_id
         WHERE m.expired_at IS NULL
           AND r.status IN (${TERMINAL_STATUSES.map((t) => `'${t}'`).join(', ')})
           AND COALESCE(json_extract(r.json, '$.finishedAt'), r.created_at) < ?
         LIMIT ?`,
      )
      .pluck();
    const deleteChunks = db.prepare<[string]>('DELETE FROM run_output_chunks WHERE run_id = ?');
    const markMeta = db.prepare<[number, string]>('UPDATE run_output_meta SET expired_at = ? WHERE run_id = ?');
    // The run record says so too, so `oddjob runs --json` and the web UI can tell
    // "expired" from "printed nothing"; 0 bytes stored and truncated, so a replay
    // that yields nothing is not reported as a lost stream.
    const markRun = db.prepare<[string, string]>(
      `UPDATE runs SET json = json_set(json, '$.outputExpiredAt', ?, '$.outputBytes', 0, '$.outputTruncated', json('true')) WHERE id = ?`,
    );
    const expire = db.transaction((runId: string, at: number) => {
      deleteChunks.run(runId);
      markMeta.run(at, runId);
      markRun.run(new Date(at).toISOString(), runId);
    });
    this.expireTx = (runId, at) => expire.immediate(runId, at);
  }

  /**
   * Deletes the stored output of up to `maxRuns` runs that ended before `before`
   * (one transaction per run, so a large prune never holds the write lock for long).
   * Returns how many runs were pruned; call again while it returns `maxRuns`.
   */
  prune(before: Date, maxRuns = 50, now: () => number = Date.now): number {
    const due = this.dueStmt.all(before.toISOString(), maxRuns);
    for (const runId of due) this.expireTx(runId, now());
    return due.length;
  }

  /** Stores one chunk after the run's previous output. Throws if it could not be written. */
  append(runId: string, channel: 1 | 2, data: Buffer): AppendResult {
    return this.appendMany(runId, [{ channel, data }]);
  }

  /**
   * Stores chunks in order in one transaction. Each commit syncs to disk, so a caller
   * receiving many small writes (a chatty process) should buffer them briefly and
   * append them together: the cost is per transaction, not per byte.
   */
  appendMany(runId: string, chunks: readonly OutputChunk[]): AppendResult {
    checkRunId(runId);
    for (const c of chunks) {
      if (c.channel !== 1 && c.channel !== 2) throw new Error(`output channel must be 1 (stdout) or 2 (stderr), got ${String(c.channel)}`);
      if (!Buffer.isBuffer(c.data)) throw new Error('output data must be a Buffer');
    }
    return this.appendTx(runId, chunks);
  }

  /**
   * Replays the run's output from byte offset `from` (stdout and stderr share one
   * offset space), in stored order; a chunk that straddles `from` is cut there.
   * Chunks appended while reading are included. Reads a window at a time and holds no
   * statement open between yields, so a slow viewer never blocks appends.
   */
  *read(runId: string, from = 0): Generator<OutputChunk> {
    checkRunId(runId);
    if (!Number.isSafeInteger(from) || from < 0) throw new Error(`output offset must be a whole number >= 0, got ${from}`);
    let start = this.straddleStmt.get(runId, from) ?? from;
    for (;;) {
      const rows = this.windowStmt.all(runId, start, start + READ_WINDOW);
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

  size(runId: string): { bytes: number; truncated: boolean } {
    const meta = this.metaStmt.get(runId);
    return { bytes: meta?.bytes ?? 0, truncated: (meta?.truncated ?? 0) !== 0 };
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
  const pass = () => {
    opts.onPass?.();
    let total = 0;
    const before = new Date(Date.now() - opts.retentionMs);
    const step = () => {
      if (stopped) return;
      try {
        const n = store.prune(before);
        total += n;
        if (n > 0) {
          setImmediate(step);
          return;
        }
        if (total > 0) opts.onPruned?.(total);
      } catch (err) {
        opts.onError?.(err);
      }
      timer = setTimeout(pass, opts.everyMs ?? 3_600_000);
      timer.unref();
    };
    step();
  };
  timer = setTimeout(pass, 0);
  timer.unref();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function checkRunId(runId: string): void {
  if (typeof runId !== 'string' || runId === '') throw new Error('a run id is required to store or read output');
}
