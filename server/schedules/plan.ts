// PURE: what the scheduler does with the slots that came due since it last looked.
//
// Catch-up after downtime: the latest due slot runs once if it is still inside
// startingDeadline; every older one is recorded `missed`. Never a storm of late runs,
// never a silent gap. While suspended every due slot is recorded `skipped`, and
// resuming starts from now (no catch-up).
import { slotsBetween, type CronSchedule } from './cron.js';
import type { ConcurrencyPolicy } from './spec.js';

/** Slot records written for one catch-up at most; older ones are counted, not listed. */
export const MAX_RECORDED_SLOTS = 100;

export interface DuePlan {
  /** The slot to start now, if any. */
  run?: Date;
  /** Due slots that will not run (too late, or older than the one that runs), oldest first. */
  missed: Date[];
  /** While suspended: every due slot, oldest first. */
  skipped: Date[];
  /** More slots were missed or skipped than are listed (an outage longer than MAX_RECORDED_SLOTS slots). */
  more: boolean;
  /** Slots at or before this instant have been decided; the next plan starts after it. */
  cursor: Date;
}

export interface PlanInput {
  schedule: CronSchedule & { startingDeadline?: number };
  /** Everything up to here was already decided (the previous plan's cursor). */
  cursor: Date;
  now: Date;
  suspended: boolean;
}

export function planDue({ schedule, cursor, now, suspended }: PlanInput): DuePlan {
  // Clock stepped back: decide nothing, and keep the cursor where it was.
  if (now <= cursor) return { missed: [], skipped: [], more: false, cursor };
  const { slots, more } = slotsBetween(schedule, cursor, now, MAX_RECORDED_SLOTS + 1);
  if (suspended) return { missed: [], skipped: slots, more, cursor: now };
  const latest = slots.at(-1);
  const inTime = latest !== undefined && (schedule.startingDeadline === undefined || now.getTime() - latest.getTime() <= schedule.startingDeadline * 1000);
  if (!inTime) return { missed: slots, skipped: [], more, cursor: now };
  return { run: latest, missed: slots.slice(0, -1), skipped: [], more, cursor: now };
}

export type ConcurrencyDecision = { action: 'run' } | { action: 'skip'; reason: string } | { action: 'replace'; cancel: string[] };

/** A slot is due while earlier runs of the same Task are still going (their run ids). */
export function decideConcurrency(policy: ConcurrencyPolicy, active: readonly string[]): ConcurrencyDecision {
  if (active.length === 0 || policy === 'Allow') return { action: 'run' };
  if (policy === 'Replace') return { action: 'replace', cancel: [...active] };
  return { action: 'skip', reason: `concurrencyPolicy Forbid: run ${active.join(', ')} of an earlier slot is still going` };
}
