// The slot store (server/schedules/store.ts) on both engines. A slot row is inserted
// with ON CONFLICT DO NOTHING against the unique (namespace, task, nominal) key, so of
// any number of replicas deciding the same slot exactly one gets the row back. Launching
// it is claimed apart (claim()): a conditional UPDATE that one caller per (slot, attempt)
// wins, because a slot decided by one scheduler may be followed by another (a new
// leader, an overlapping tick).
import { type Kysely, type Transaction, sql } from 'kysely';
import type { TaskRef } from '../schedules/names.js';
import { canTransition } from '../schedules/slot.js';
import type { ClaimResult, NewSlot, ScheduleSlot, SlotPatch, SlotStore, Suspension, TaskSchedulerState } from '../schedules/store.js';
import type { Connection } from './database.js';
import type { ScheduleSlotsTable, ScheduleTasksTable, Tables } from './schema.js';

type SlotRow = Omit<ScheduleSlotsTable, 'id' | 'attempt' | 'run_ids' | 'claimed_attempt' | 'claimed_by' | 'claimed_at'> & { attempt: number; run_ids: string };
type TaskRow = Omit<ScheduleTasksTable, 'missed_total'> & { missed_total: number };
type Db = Kysely<Tables> | Transaction<Tables>;

const SLOT_COLUMNS = ['namespace', 'task', 'nominal', 'state', 'attempt', 'run_id', 'run_ids', 'decided_at', 'started_at', 'finished_at', 'message'] as const;

function toSlot(r: SlotRow): ScheduleSlot {
  return {
    namespace: r.namespace,
    task: r.task,
    nominal: r.nominal,
    state: r.state,
    attempt: Number(r.attempt),
    runId: r.run_id ?? undefined,
    runIds: JSON.parse(r.run_ids) as string[],
    decidedAt: r.decided_at,
    startedAt: r.started_at ?? undefined,
    finishedAt: r.finished_at ?? undefined,
    message: r.message ?? undefined,
  };
}

function toTaskState(r: TaskRow): TaskSchedulerState {
  return {
    namespace: r.namespace,
    task: r.task,
    cursor: r.cursor ? new Date(r.cursor) : undefined,
    suspension: r.suspended_at ? { at: r.suspended_at, by: r.suspended_by ?? '', reason: r.suspended_reason ?? '' } : undefined,
    missedTotal: Number(r.missed_total),
    lastSuccess: r.last_success ?? undefined,
  };
}

const OPEN_STATES = ['scheduled', 'started'] as const;

export class ScheduleSlots implements SlotStore {
  constructor(private readonly conn: Connection) {}

  private async ensureTask(db: Db, task: TaskRef): Promise<void> {
    await db
      .insertInto('schedule_tasks')
      .values({ namespace: task.namespace, task: task.name })
      .onConflict((oc) => oc.doNothing())
      .execute();
  }

  private slotOf(db: Db, task: TaskRef, nominal: string) {
    return db
      .selectFrom('schedule_slots')
      .select(SLOT_COLUMNS)
      .where('namespace', '=', task.namespace)
      .where('task', '=', task.name)
      .where('nominal', '=', nominal);
  }

  async taskState(task: TaskRef): Promise<TaskSchedulerState> {
    const row = await this.conn.db
      .selectFrom('schedule_tasks')
      .selectAll()
      .where('namespace', '=', task.namespace)
      .where('task', '=', task.name)
      .executeTakeFirst();
    return row ? toTaskState(row) : { namespace: task.namespace, task: task.name, missedTotal: 0 };
  }

  async listTaskStates(): Promise<TaskSchedulerState[]> {
    const rows = await this.conn.db.selectFrom('schedule_tasks').selectAll().orderBy('namespace').orderBy('task').execute();
    return rows.map(toTaskState);
  }

  async decide(task: TaskRef, cursor: Date, slots: readonly NewSlot[], now: Date): Promise<ScheduleSlot[]> {
    return (await this.decideMany([{ task, cursor, slots }], now))[0]!;
  }

  async decideMany(entries: ReadonlyArray<{ task: TaskRef; cursor: Date; slots: readonly NewSlot[] }>, now: Date): Promise<ScheduleSlot[][]> {
    // One transaction (SQLite: BEGIN IMMEDIATE): a tick's decisions and cursors land together or not at all.
    return this.conn.db.transaction().execute(async (trx) => {
      const out: ScheduleSlot[][] = [];
      for (const { task, cursor, slots } of entries) {
        await this.ensureTask(trx, task);
        const inserted: ScheduleSlot[] = [];
        let missed = 0;
        for (const s of slots) {
          // RETURNING gives the row only to the inserter; a row another replica (or an
          // earlier run of this one) inserted conflicts and comes back empty.
          const row = await trx
            .insertInto('schedule_slots')
            .values({
              namespace: task.namespace,
              task: task.name,
              nominal: s.nominal.toISOString(),
              state: s.state,
              decided_at: now.toISOString(),
              message: s.message ?? null,
            })
            .onConflict((oc) => oc.columns(['namespace', 'task', 'nominal']).doNothing())
            .returning(SLOT_COLUMNS)
            .executeTakeFirst();
          if (!row) continue;
          if (s.state === 'missed') missed++;
          inserted.push(toSlot(row));
        }
        await trx
          .updateTable('schedule_tasks')
          .set({ cursor: cursor.toISOString(), missed_total: sql`missed_total + ${missed}` })
          .where('namespace', '=', task.namespace)
          .where('task', '=', task.name)
          .execute();
        out.push(inserted);
      }
      return out;
    });
  }

  async update(task: TaskRef, nominal: string, patch: SlotPatch): Promise<ScheduleSlot> {
    return this.conn.db.transaction().execute(async (trx) => {
      // FOR UPDATE (PostgreSQL): two writers of one slot take turns, so the state machine
      // check and the run id list see the other's write. SQLite: BEGIN IMMEDIATE already did.
      let q = this.slotOf(trx, task, nominal);
      if (this.conn.engine === 'postgres') q = q.forUpdate();
      const row = await q.executeTakeFirst();
      if (!row) throw new Error(`slot ${nominal} of task ${task.namespace}/${task.name} not found`);
      if (!canTransition(row.state, patch.state)) {
        throw new Error(`slot ${nominal} of task ${task.namespace}/${task.name} cannot go from ${row.state} to ${patch.state}`);
      }
      const runIds = JSON.parse(row.run_ids) as string[];
      if (patch.runId && !runIds.includes(patch.runId)) runIds.push(patch.runId);
      const next: SlotRow = {
        ...row,
        state: patch.state,
        attempt: patch.attempt ?? Number(row.attempt),
        run_id: patch.runId ?? row.run_id,
        run_ids: JSON.stringify(runIds),
        started_at: patch.startedAt ?? row.started_at,
        finished_at: patch.finishedAt ?? row.finished_at,
        message: patch.message ?? row.message,
      };
      await trx
        .updateTable('schedule_slots')
        .set({
          state: next.state,
          attempt: next.attempt,
          run_id: next.run_id,
          run_ids: next.run_ids,
          started_at: next.started_at,
          finished_at: next.finished_at,
          message: next.message,
        })
        .where('namespace', '=', task.namespace)
        .where('task', '=', task.name)
        .where('nominal', '=', nominal)
        .execute();
      const taskRow = trx.updateTable('schedule_tasks').where('namespace', '=', task.namespace).where('task', '=', task.name);
      if (patch.state === 'missed') await taskRow.set({ missed_total: sql`missed_total + 1` }).execute();
      if (patch.state === 'succeeded') {
        const at = patch.finishedAt ?? new Date().toISOString();
        // The newest success wins even if slots finish out of order (ISO times compare as text).
        await taskRow.set({ last_success: sql`case when last_success is null or last_success < ${at} then ${at} else last_success end` }).execute();
      }
      return toSlot(next);
    });
  }

  async claim(task: TaskRef, nominal: string, attempt: number, by: string, now: Date, staleBefore?: Date): Promise<ClaimResult> {
    // An open slot whose launch of this attempt nobody has claimed yet. One UPDATE with
    // the condition in its WHERE: PostgreSQL re-checks the WHERE on the row it locked
    // (READ COMMITTED), SQLite runs writers one at a time, so of any number of racing
    // claimers exactly one sees a row changed.
    const at = now.toISOString();
    const base = () =>
      this.conn.db
        .updateTable('schedule_slots')
        .set({ claimed_attempt: attempt, claimed_by: by, claimed_at: at })
        .where('namespace', '=', task.namespace)
        .where('task', '=', task.name)
        .where('nominal', '=', nominal)
        .where('state', 'in', OPEN_STATES);
    const fresh = await base()
      .where((eb) => eb.or([eb('claimed_attempt', 'is', null), eb('claimed_attempt', '<', attempt)]))
      .executeTakeFirst();
    if (Number(fresh.numUpdatedRows) === 1) return 'claimed';
    if (!staleBefore) return false;
    // A claim whose holder stopped mid-launch (killed, lost the Lease and never came
    // back) is taken over once it is old, and only while that attempt has not started.
    // The old claimed_at is part of the condition, so two takers cannot both win.
    const stale = await base()
      .where('claimed_attempt', '=', attempt)
      .where('claimed_at', '<', staleBefore.toISOString())
      .where((eb) => eb.or([eb('state', '=', 'scheduled'), eb('attempt', '<', attempt)]))
      .executeTakeFirst();
    return Number(stale.numUpdatedRows) === 1 ? 'taken-over' : false;
  }

  async release(task: TaskRef, nominal: string, attempt: number, by: string): Promise<void> {
    await this.conn.db
      .updateTable('schedule_slots')
      .set({ claimed_attempt: attempt === 0 ? null : attempt - 1, claimed_by: null, claimed_at: null })
      .where('namespace', '=', task.namespace)
      .where('task', '=', task.name)
      .where('nominal', '=', nominal)
      .where('claimed_attempt', '=', attempt)
      .where('claimed_by', '=', by)
      .execute();
  }

  async get(task: TaskRef, nominal: string): Promise<ScheduleSlot | undefined> {
    const row = await this.slotOf(this.conn.db, task, nominal).executeTakeFirst();
    return row && toSlot(row);
  }

  async open(task?: TaskRef): Promise<ScheduleSlot[]> {
    let q = this.conn.db.selectFrom('schedule_slots').select(SLOT_COLUMNS).where('state', 'in', OPEN_STATES);
    if (task) q = q.where('namespace', '=', task.namespace).where('task', '=', task.name);
    return (await q.orderBy('nominal').execute()).map(toSlot);
  }

  async history(task: TaskRef, opts: { limit: number; before?: string }): Promise<ScheduleSlot[]> {
    const limit = Math.min(Math.max(Math.trunc(opts.limit), 1), 1000);
    let q = this.conn.db.selectFrom('schedule_slots').select(SLOT_COLUMNS).where('namespace', '=', task.namespace).where('task', '=', task.name);
    if (opts.before) q = q.where('nominal', '<', opts.before);
    return (await q.orderBy('nominal', 'desc').limit(limit).execute()).map(toSlot);
  }

  async setSuspension(task: TaskRef, suspension: Suspension | undefined): Promise<void> {
    await this.conn.db.transaction().execute(async (trx) => {
      await this.ensureTask(trx, task);
      await trx
        .updateTable('schedule_tasks')
        .set({ suspended_at: suspension?.at ?? null, suspended_by: suspension?.by ?? null, suspended_reason: suspension?.reason ?? null })
        .where('namespace', '=', task.namespace)
        .where('task', '=', task.name)
        .execute();
    });
  }
}
