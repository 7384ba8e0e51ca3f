// oddjob's store: the audit log, runs, run output and sign-in credentials, in one
// SQLite file or one PostgreSQL database. Everything stateful goes through here.
import { sql } from 'kysely';
import { AuditLog } from './audit.js';
import { KyselyApprovalStore } from './approvals.js';
import { CredentialRows } from './credentials.js';
import { type Connection, type OpenOptions, openConnection } from './database.js';
import { SCHEMA_VERSION } from './migrations.js';
import { OutputStore } from './output.js';
import { RunLeases } from './leases.js';
import { RunControls } from './controls.js';
import { OutboxRows, RunTokenRows } from './notify.js';
import { RateLimitCounters } from './rate-limits.js';
import { RunStore } from './runs.js';
import { ScheduleSlots } from './schedules.js';
import type { Engine } from './schema.js';
import type { DbTarget } from './target.js';
import { type Wakeups, openWakeups } from './wakeups.js';

export { AuditLog } from './audit.js';
export { OutputStore, schedulePruning } from './output.js';
export { RunStore } from './runs.js';
export { ScheduleSlots } from './schedules.js';
export { CredentialRows } from './credentials.js';
export { OutboxRows, RunTokenRows, type StoreTransaction } from './notify.js';
export { type ApprovalStore, KyselyApprovalStore, type StoredApproval } from './approvals.js';
export { InvalidCursorError } from './cursor.js';
export { type DbTarget, DbTargetError, describeTarget, parseDbTarget } from './target.js';

export interface Store {
  readonly engine: Engine;
  readonly target: DbTarget;
  readonly audit: AuditLog;
  readonly runs: RunStore;
  readonly output: OutputStore;
  readonly credentials: CredentialRows;
  /** Four-eyes approval requests. */
  readonly approvals: KyselyApprovalStore;
  /** Schedule slots and per-Task scheduler state. */
  readonly schedules: ScheduleSlots;
  /** Which replica owns which active run. */
  readonly leases: RunLeases;
  /** Input, resizes and cancels of a run sent through a replica that does not own it. */
  readonly controls: RunControls;
  /** Rate-limit counters shared by the replicas. */
  readonly rateLimits: RateLimitCounters;
  /** The notification outbox; its rows are written in the audit append's transaction. */
  readonly outbox: OutboxRows;
  /** Run progress credentials (hashes). */
  readonly runTokens: RunTokenRows;
  /** The connection run output and run state use (for tests). */
  readonly connection: Connection;
  /** Wake-ups when a run's output or state changes (any replica's writes). */
  readonly wakeups: Wakeups;
  /** Throws when the store cannot take a write now (readiness). */
  probe(): Promise<void>;
  /** Waits for pending audit appends, then closes. */
  close(): Promise<void>;
}

export interface StoreOptions extends Pick<OpenOptions, 'onIdleError' | 'maxConnections'> {
  maxOutputBytesPerRun?: number;
}

export async function openStore(target: DbTarget, opts: StoreOptions = {}): Promise<Store> {
  const auditConn = await openConnection(target, opts);
  // SQLite: run output gets its own connection with synchronous=NORMAL: an audit record
  // must survive a power cut before a run proceeds (FULL, one fsync per commit), but
  // output arrives in thousands of small chunks, and an fsync per chunk stalled the
  // event loop and capped streaming at ~2 MiB/s. WAL + NORMAL still survives a process
  // crash, and output lost to a power cut is re-read from the kubelet (skip-bytes
  // resume). The run projection too: each of its writes is followed by an audit append
  // for the same run, whose FULL commit fsyncs the one shared WAL file — these rows
  // included. PostgreSQL: one pool; every commit is durable.
  let dataConn = auditConn;
  if (target.engine === 'sqlite') {
    try {
      dataConn = await openConnection(target, { synchronous: 'normal' });
    } catch (err) {
      await auditConn.close();
      throw err;
    }
  }
  const audit = new AuditLog(auditConn);
  const wakeups = openWakeups(dataConn, { onError: opts.onIdleError });
  let probedAt = 0;
  return {
    engine: target.engine,
    target,
    audit,
    runs: new RunStore(dataConn),
    output: new OutputStore(dataConn, { maxBytesPerRun: opts.maxOutputBytesPerRun }),
    credentials: new CredentialRows(dataConn),
    approvals: new KyselyApprovalStore(dataConn),
    // On the NORMAL-sync connection (SQLite): a slot row lost to a power cut is decided
    // again under the same run id and Job name, and the create answers 409 (the run exists).
    schedules: new ScheduleSlots(dataConn),
    rateLimits: new RateLimitCounters(dataConn),
    leases: new RunLeases(dataConn),
    controls: new RunControls(dataConn),
    // The audit connection: on SQLite, the outbox's FULL-synced commits are the audit's.
    outbox: new OutboxRows(auditConn),
    runTokens: new RunTokenRows(auditConn),
    connection: dataConn,
    wakeups,
    async probe() {
      // At most one a second after a success: /readyz is anonymous, and each probe is a
      // synced commit on SQLite.
      if (Date.now() - probedAt < 1000) return;
      if (auditConn.sqlite) {
        // A real write, the cheapest there is (one page: the schema version, rewritten
        // unchanged). A SELECT still works on a full disk or a file gone read-only, where
        // every run would be refused for want of an audit record.
        // Through kysely, to wait for this process's turn at the file like every other write.
        await sql.raw(`pragma user_version = ${SCHEMA_VERSION}`).execute(auditConn.db);
      } else {
        // A server in recovery or a read-only replica answers SELECTs but refuses appends.
        const { rows } = await sql<{ ro: string }>`select current_setting('transaction_read_only') as ro`.execute(auditConn.db);
        if (rows[0]?.ro !== 'off') throw new Error('the PostgreSQL server only accepts reads (a standby, or default_transaction_read_only)');
      }
      probedAt = Date.now();
    },
    async close() {
      await audit.flushPending();
      await wakeups.close();
      if (dataConn !== auditConn) await dataConn.close();
      await auditConn.close();
    },
  };
}
