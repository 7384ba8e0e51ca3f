// Slots and per-Task scheduler state, behind an async interface; the implementation
// is server/store/schedules.ts (SQLite and PostgreSQL).
//
// A slot is decided once: the unique (namespace, task, nominal) key lets `decide` insert
// it only if nobody has. Each attempt of it is launched once: `claim` is a conditional
// update that exactly one caller wins, whoever decided the slot.
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

export type ClaimResult = 'claimed' | 'taken-over' | false;

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
  /**
   * Claims the launch of `attempt` of an open slot for `by`: 'claimed' for exactly one
   * caller per (slot, attempt), false for everyone else. With `staleBefore`, a claim taken
   * before then whose attempt never started (its holder stopped mid-launch) is taken over
   * ('taken-over'), by one caller at most.
   */
  claim(task: TaskRef, nominal: string, attempt: number, by: string, now: Date, staleBefore?: Date): Promise<ClaimResult>;
  /** Gives a claim back after a launch that created nothing (it failed before the audit), so it can be tried again. */
  release(task: TaskRef, nominal: string, attempt: number, by: string): Promise<void>;
  get(task: TaskRef, nominal: string): Promise<ScheduleSlot | undefined>;
  /** Slots still scheduled or started, oldest first: what the scheduler follows (of one Task, with `task`). */
  open(task?: TaskRef): Promise<ScheduleSlot[]>;
  /** Newest first. `before`: a nominal time, for paging. */
  history(task: TaskRef, opts: { limit: number; before?: string }): Promise<ScheduleSlot[]>;
  setSuspension(task: TaskRef, suspension: Suspension | undefined): Promise<void>;
}
