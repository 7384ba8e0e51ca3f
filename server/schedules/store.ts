// Slots and per-Task scheduler state, behind an async interface so the store's move
// to kysely (SQLite and PostgreSQL) changes only the implementation below.
//
// The unique (namespace, task, nominal) key is what makes a slot run at most once:
// `decide` inserts a slot only if nobody has, and only the inserter launches it.
import type { Database } from '../audit/db.js';
import type { ScheduleSlot, SlotState, Suspension } from '../../protocol/schedules.js';
import { canTransition } from './slot.js';
import type { TaskRef } from './names.js';

export type { ScheduleSlot, SlotState, Suspension };

export interface TaskSchedulerState {
  namespace: string;
  task: string;
  /** Slots at or before this instant have been decided. */
  cursor?: Date;
  suspension?: Suspension;
  missedTotal: number;
  lastSuccess?: string;
}

export interface NewSlot {
  nominal: Date;
  state: Extract<SlotState, 'scheduled' | 'missed' | 'skipped' | 'denied' | 'failed'>;
  message?: string;
}

export interface SlotPatch {
  state: SlotState;
  attempt?: number;
  runId?: string;
  startedAt?: string;
  finishedAt?: string;
  message?: string;
}

export interface SlotStore {
  taskState(task: TaskRef): Promise<TaskSchedulerState>;
  listTaskStates(): Promise<TaskSchedulerState[]>;
  /**
   * Records decided slots and moves the cursor, in one transaction. Returns the slots
   * this call inserted; one that already existed (decided before a restart, or by
   * another replica) is left as it was and not returned — its owner runs it.
   */
  decide(task: TaskRef, cursor: Date, slots: readonly NewSlot[], now: Date): Promise<ScheduleSlot[]>;
  /** decide() for several Tasks in one transaction; the answer is in the same order. */
  decideMany(entries: ReadonlyArray<{ task: TaskRef; cursor: Date; slots: readonly NewSlot[] }>, now: Date): Promise<ScheduleSlot[][]>;
  /** Moves a slot on; throws if the state machine (slot.ts) does not allow the step. */
  update(task: TaskRef, nominal: string, patch: SlotPatch): Promise<ScheduleSlot>;
  get(task: TaskRef, nominal: string): Promise<ScheduleSlot | undefined>;
  /** Slots still scheduled or started, oldest first: what the scheduler follows (of one Task, with `task`). */
  open(task?: TaskRef): Promise<ScheduleSlot[]>;
  /** Newest first. `before`: a nominal time, for paging. */
  history(task: TaskRef, opts: { limit: number; before?: string }): Promise<ScheduleSlot[]>;
  setSuspension(task: TaskRef, suspension: Suspension | undefined): Promise<void>;
}

interface SlotRow {
  namespace: string;
  task: string;
  nominal: string;
  state: SlotState;
  attempt: number;
  run_id: string | null;
  run_ids: string;
  decided_at: string;
  started_at: string | null;
  finished_at: string | null;
  message: string | null;
}

interface TaskRow {
  namespace: string;
  task: string;
  cursor: string | null;
  suspended_at: string | null;
  suspended_by: string | null;
  suspended_reason: string | null;
  missed_total: number;
  last_success: string | null;
}

const SLOT_COLUMNS = 'namespace, task, nominal, state, attempt, run_id, run_ids, decided_at, started_at, finished_at, message';

function toSlot(r: SlotRow): ScheduleSlot {
  return {
    namespace: r.namespace,
    task: r.task,
    nominal: r.nominal,
    state: r.state,
    attempt: r.attempt,
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
    missedTotal: r.missed_total,
    lastSuccess: r.last_success ?? undefined,
  };
}

function statements(db: Database) {
  return {
    getTask: db.prepare<[string, string], TaskRow>('SELECT * FROM schedule_tasks WHERE namespace = ? AND task = ?'),
    allTasks: db.prepare<[], TaskRow>('SELECT * FROM schedule_tasks ORDER BY namespace, task'),
    ensureTask: db.prepare('INSERT INTO schedule_tasks (namespace, task) VALUES (?, ?) ON CONFLICT DO NOTHING'),
    setCursor: db.prepare('UPDATE schedule_tasks SET cursor = ?, missed_total = missed_total + ? WHERE namespace = ? AND task = ?'),
    insertSlot: db.prepare(
      `INSERT INTO schedule_slots (namespace, task, nominal, state, decided_at, message) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (namespace, task, nominal) DO NOTHING`,
    ),
    getSlot: db.prepare<[string, string, string], SlotRow>(`SELECT ${SLOT_COLUMNS} FROM schedule_slots WHERE namespace = ? AND task = ? AND nominal = ?`),
    putSlot: db.prepare(
      `UPDATE schedule_slots SET state = @state, attempt = @attempt, run_id = @run_id, run_ids = @run_ids, started_at = @started_at,
     finished_at = @finished_at, message = @message WHERE namespace = @namespace AND task = @task AND nominal = @nominal`,
    ),
    openSlots: db.prepare<[], SlotRow>(`SELECT ${SLOT_COLUMNS} FROM schedule_slots WHERE state IN ('scheduled', 'started') ORDER BY nominal`),
    openSlotsOf: db.prepare<[string, string], SlotRow>(
      `SELECT ${SLOT_COLUMNS} FROM schedule_slots WHERE namespace = ? AND task = ? AND state IN ('scheduled', 'started') ORDER BY nominal`,
    ),
    historyAll: db.prepare<[string, string, number], SlotRow>(
      `SELECT ${SLOT_COLUMNS} FROM schedule_slots WHERE namespace = ? AND task = ? ORDER BY nominal DESC LIMIT ?`,
    ),
    historyBefore: db.prepare<[string, string, string, number], SlotRow>(
      `SELECT ${SLOT_COLUMNS} FROM schedule_slots WHERE namespace = ? AND task = ? AND nominal < ? ORDER BY nominal DESC LIMIT ?`,
    ),
    suspend: db.prepare('UPDATE schedule_tasks SET suspended_at = ?, suspended_by = ?, suspended_reason = ? WHERE namespace = ? AND task = ?'),
    succeeded: db.prepare("UPDATE schedule_tasks SET last_success = max(coalesce(last_success, ''), ?) WHERE namespace = ? AND task = ?"),
  };
}

export class SqliteSlotStore implements SlotStore {
  private readonly q: ReturnType<typeof statements>;
  private readonly decideTx: (entries: ReadonlyArray<{ task: TaskRef; cursor: Date; slots: readonly NewSlot[] }>, now: Date) => ScheduleSlot[][];
  private readonly updateTx: (task: TaskRef, nominal: string, patch: SlotPatch) => ScheduleSlot;

  constructor(private readonly db: Database) {
    const q = (this.q = statements(db));
    // IMMEDIATE: the existence check and the insert must not interleave with another writer.
    const decide = db.transaction((task: TaskRef, cursor: Date, slots: readonly NewSlot[], now: Date) => {
      q.ensureTask.run(task.namespace, task.name);
      const inserted: ScheduleSlot[] = [];
      let missed = 0;
      for (const s of slots) {
        const r = q.insertSlot.run(task.namespace, task.name, s.nominal.toISOString(), s.state, now.toISOString(), s.message ?? null);
        if (r.changes === 0) continue;
        if (s.state === 'missed') missed++;
        inserted.push(toSlot(q.getSlot.get(task.namespace, task.name, s.nominal.toISOString())!));
      }
      q.setCursor.run(cursor.toISOString(), missed, task.namespace, task.name);
      return inserted;
    });
    const decideMany = db.transaction((entries: ReadonlyArray<{ task: TaskRef; cursor: Date; slots: readonly NewSlot[] }>, now: Date) =>
      entries.map((e) => decide(e.task, e.cursor, e.slots, now)),
    );
    this.decideTx = (...args) => decideMany.immediate(...args);

    const update = db.transaction((task: TaskRef, nominal: string, patch: SlotPatch) => {
      const row = q.getSlot.get(task.namespace, task.name, nominal);
      if (!row) throw new Error(`slot ${nominal} of task ${task.namespace}/${task.name} not found`);
      if (!canTransition(row.state, patch.state)) {
        throw new Error(`slot ${nominal} of task ${task.namespace}/${task.name} cannot go from ${row.state} to ${patch.state}`);
      }
      const runIds = JSON.parse(row.run_ids) as string[];
      if (patch.runId && !runIds.includes(patch.runId)) runIds.push(patch.runId);
      const next: SlotRow = {
        ...row,
        state: patch.state,
        attempt: patch.attempt ?? row.attempt,
        run_id: patch.runId ?? row.run_id,
        run_ids: JSON.stringify(runIds),
        started_at: patch.startedAt ?? row.started_at,
        finished_at: patch.finishedAt ?? row.finished_at,
        message: patch.message ?? row.message,
      };
      q.putSlot.run(next);
      if (patch.state === 'missed') q.setCursor.run(q.getTask.get(task.namespace, task.name)?.cursor ?? null, 1, task.namespace, task.name);
      if (patch.state === 'succeeded') q.succeeded.run(patch.finishedAt ?? new Date().toISOString(), task.namespace, task.name);
      return toSlot(next);
    });
    this.updateTx = (...args) => update.immediate(...args);
  }

  async taskState(task: TaskRef): Promise<TaskSchedulerState> {
    const row = this.q.getTask.get(task.namespace, task.name);
    return row ? toTaskState(row) : { namespace: task.namespace, task: task.name, missedTotal: 0 };
  }

  async listTaskStates(): Promise<TaskSchedulerState[]> {
    return this.q.allTasks.all().map(toTaskState);
  }

  async decide(task: TaskRef, cursor: Date, slots: readonly NewSlot[], now: Date): Promise<ScheduleSlot[]> {
    return this.decideTx([{ task, cursor, slots }], now)[0]!;
  }

  async decideMany(entries: ReadonlyArray<{ task: TaskRef; cursor: Date; slots: readonly NewSlot[] }>, now: Date): Promise<ScheduleSlot[][]> {
    return this.decideTx(entries, now);
  }

  async update(task: TaskRef, nominal: string, patch: SlotPatch): Promise<ScheduleSlot> {
    return this.updateTx(task, nominal, patch);
  }

  async get(task: TaskRef, nominal: string): Promise<ScheduleSlot | undefined> {
    const row = this.q.getSlot.get(task.namespace, task.name, nominal);
    return row && toSlot(row);
  }

  async open(task?: TaskRef): Promise<ScheduleSlot[]> {
    return (task ? this.q.openSlotsOf.all(task.namespace, task.name) : this.q.openSlots.all()).map(toSlot);
  }

  async history(task: TaskRef, opts: { limit: number; before?: string }): Promise<ScheduleSlot[]> {
    const limit = Math.min(Math.max(Math.trunc(opts.limit), 1), 1000);
    const rows = opts.before
      ? this.q.historyBefore.all(task.namespace, task.name, opts.before, limit)
      : this.q.historyAll.all(task.namespace, task.name, limit);
    return rows.map(toSlot);
  }

  async setSuspension(task: TaskRef, suspension: Suspension | undefined): Promise<void> {
    this.db
      .transaction(() => {
        this.q.ensureTask.run(task.namespace, task.name);
        this.q.suspend.run(suspension?.at ?? null, suspension?.by ?? null, suspension?.reason ?? null, task.namespace, task.name);
      })
      .immediate();
  }
}
