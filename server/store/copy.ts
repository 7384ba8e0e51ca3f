// `oddjob db migrate-to`: copies a whole store (audit chain, runs, output, sign-in
// credentials, approval requests, schedules: per-Task state with suspensions and cursors,
// every slot record) into an empty one, rows as they are — the chain is copied, not
// re-hashed, so the copy verifies only if it is exact — then verifies it there.
import type { Insertable, Kysely } from 'kysely';
import type { AuditVerifyResult } from '../../protocol/api.js';
import type { Store } from './index.js';
import type { ScheduleSlotsTable, Tables } from './schema.js';

const BATCH = 500;

export interface CopyReport {
  events: number;
  runs: number;
  outputChunks: number;
  credentials: number;
  approvals: number;
  scheduleTasks: number;
  scheduleSlots: number;
  verify: AuditVerifyResult;
}

export async function copyStore(from: Store, to: Store, progress: (line: string) => void = () => {}): Promise<CopyReport> {
  const src = from.connection.db;
  const dst = to.connection.db;
  for (const table of ['audit_events', 'runs', 'run_output_meta', 'auth_credentials', 'approval_requests', 'schedule_tasks', 'schedule_slots'] as const) {
    if (
      await dst
        .selectFrom(table)
        .select((eb) => eb.lit(1).as('x'))
        .limit(1)
        .executeTakeFirst()
    ) {
      throw new Error(`the target already has data (${table} is not empty); migrate into an empty database`);
    }
  }
  const head = await src.selectFrom('audit_head').selectAll().executeTakeFirst();
  const report = { events: 0, runs: 0, outputChunks: 0, credentials: 0, approvals: 0, scheduleTasks: 0, scheduleSlots: 0 };
  // One transaction: a copy that fails half-way leaves the target empty, so it can be run again.
  await dst.transaction().execute(async (trx) => {
    report.events = await copyBy(src, 'audit_events', 'seq', async (rows) => void (await trx.insertInto('audit_events').values(rows).execute()));
    progress(`audit events: ${report.events}`);
    if (head) await trx.insertInto('audit_head').values(head).execute();
    report.runs = await copyBy(
      src,
      'runs',
      'ord',
      async (rows) =>
        void (await trx
          .insertInto('runs')
          .values(rows.map(({ ord: _ord, ...r }) => r))
          .execute()),
    );
    progress(`runs: ${report.runs}`);
    await copyBy(src, 'run_output_meta', 'run_id', async (rows) => void (await trx.insertInto('run_output_meta').values(rows).execute()));
    report.outputChunks = await copyBy(
      src,
      'run_output_chunks',
      'id',
      async (rows) =>
        void (await trx
          .insertInto('run_output_chunks')
          .values(rows.map(({ id: _id, ...r }) => r))
          .execute()),
      50,
    );
    progress(`output chunks: ${report.outputChunks}`);
    report.credentials = await copyBy(src, 'auth_credentials', 'id', async (rows) => void (await trx.insertInto('auth_credentials').values(rows).execute()));
    progress(`credentials: ${report.credentials}`);
    // In ord order, so the target numbers them in the same order (listing is newest first).
    report.approvals = await copyBy(
      src,
      'approval_requests',
      'ord',
      async (rows) =>
        void (await trx
          .insertInto('approval_requests')
          .values(rows.map(({ ord: _ord, ...r }) => r))
          .execute()),
    );
    progress(`approval requests: ${report.approvals}`);
    // Without these a moved install would forget who suspended what, re-run nothing it
    // owed (the cursors start over) and lose every slot's history; open slots keep their
    // launch claims, so a slot started before the move is not started again after it.
    // Keyed by (namespace, task), one row per scheduled Task: read whole, written in batches.
    const taskRows = await src.selectFrom('schedule_tasks').selectAll().orderBy('namespace').orderBy('task').execute();
    for (let i = 0; i < taskRows.length; i += BATCH)
      await trx
        .insertInto('schedule_tasks')
        .values(taskRows.slice(i, i + BATCH))
        .execute();
    report.scheduleTasks = taskRows.length;
    progress(`schedule tasks: ${report.scheduleTasks}`);
    report.scheduleSlots = await copyBy(
      src,
      'schedule_slots',
      'id',
      async (rows) =>
        void (await trx
          .insertInto('schedule_slots')
          // attempt and run_ids have defaults (Generated): the rows read carry their values.
          .values(rows.map(({ id: _id, ...r }) => r as unknown as Insertable<ScheduleSlotsTable>))
          .execute()),
    );
    progress(`schedule slots: ${report.scheduleSlots}`);
  });
  const verify = await to.audit.verify();
  if (verify.ok && verify.checked !== report.events) throw new Error(`the copy verified ${verify.checked} events, not ${report.events}`);
  return { ...report, verify };
}

/** Reads `table` in key order, a batch at a time, and hands each batch on; the rows copied. */
async function copyBy<T extends keyof Tables, K extends keyof Tables[T] & string>(
  db: Kysely<Tables>,
  table: T,
  key: K,
  write: (rows: Tables[T][]) => Promise<void>,
  batch = BATCH,
): Promise<number> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a key of any of the tables
  let after: any;
  let n = 0;
  for (;;) {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- generic over tables; the rows go back to the same table
    let q = (db as Kysely<any>).selectFrom(table).selectAll().orderBy(key).limit(batch);
    if (after !== undefined) q = q.where(key, '>', after);
    const rows = (await q.execute()) as Tables[T][];
    if (rows.length === 0) return n;
    await write(rows);
    n += rows.length;
    after = (rows.at(-1) as unknown as Record<string, unknown>)[key];
  }
}
