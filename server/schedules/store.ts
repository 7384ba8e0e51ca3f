// Slots and per-Task scheduler state, behind an async interface; the implementation
// is server/store/schedules.ts (SQLite and PostgreSQL).
//
// The unique (namespace, task, nominal) key is what makes a slot run at most once:
// `decide` inserts a slot only if nobody has, and only the inserter launches it.
import type { ScheduleSlot, SlotState, Suspension } from '../../protocol/schedules.js';
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
