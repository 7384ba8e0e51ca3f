// The schedules part of the HTTP API (GET /api/schedules, /api/tasks/:ns/:name/history,
// suspend, resume), shared by the server, the CLI and the web UI.
import { z } from 'zod';

export const SLOT_STATES = ['scheduled', 'started', 'succeeded', 'failed', 'missed', 'skipped', 'denied'] as const;
export const SlotState = z.enum(SLOT_STATES);
export type SlotState = z.infer<typeof SlotState>;

/** One slot of a schedule: when it was due, what became of it, and its run(s). */
export const ScheduleSlot = z.object({
  namespace: z.string(),
  task: z.string(),
  /** The slot's nominal instant (ISO, UTC). */
  nominal: z.string(),
  state: SlotState,
  /** 0 for the first run, 1.. for retries. */
  attempt: z.number().int().nonnegative(),
  /** The latest run of this slot; earlier attempts are in runIds. */
  runId: z.string().optional(),
  runIds: z.array(z.string()),
  decidedAt: z.string(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  /** Why it was missed, skipped, denied or failed. */
  message: z.string().optional(),
});
export type ScheduleSlot = z.infer<typeof ScheduleSlot>;

export const Suspension = z.object({ at: z.string(), by: z.string(), reason: z.string() });
export type Suspension = z.infer<typeof Suspension>;

/** A scheduled Task as `oddjob schedules` shows it. */
export const ScheduleSummary = z.object({
  namespace: z.string(),
  task: z.string(),
  deployment: z.string(),
  cron: z.string(),
  timeZone: z.string(),
  concurrencyPolicy: z.enum(['Forbid', 'Replace', 'Allow']),
  /** The Task says suspend: true (in git). */
  suspendedBySpec: z.boolean(),
  /** Someone ran `oddjob suspend`: survives re-applying the Task. */
  suspension: Suspension.optional(),
  nextScheduleTime: z.string().optional(),
  lastSlot: ScheduleSlot.optional(),
  lastSuccessfulTime: z.string().optional(),
  missedSlots: z.number().int().nonnegative(),
  /** Set when spec.schedule is invalid: the Task does not fire until it is fixed. */
  error: z.string().optional(),
  /** The values each slot passes to the Task's params (spec.schedule.params). */
  params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  /** The caller may suspend, resume and run it now (who may run the Task); auditors may only read. */
  mayChange: z.boolean().optional(),
});
export type ScheduleSummary = z.infer<typeof ScheduleSummary>;

export const SuspendRequest = z
  .object({ reason: z.string().trim().min(1, 'give a --reason for suspending').max(500, 'reason must be at most 500 characters') })
  .strict();
export type SuspendRequest = z.infer<typeof SuspendRequest>;
