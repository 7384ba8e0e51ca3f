// PURE: the life of one slot. Every slot of every schedule is a record that ends in
// exactly one outcome; the store refuses a transition this table does not allow.
//
//   scheduled ─┬─▶ started ─┬─▶ succeeded
//              │            ├─▶ failed        (after its retries)
//              │            └─▶ started       (a retry: attempt + 1)
//              ├─▶ missed     (not started inside startingDeadline, or older than the one that ran)
//              ├─▶ skipped    (suspended, or an earlier run still going under Forbid)
//              ├─▶ denied     (the Deployment's consent withdrawn, or the Task no longer valid)
//              └─▶ failed     (could not be launched: the Job was refused)
export const SLOT_STATES = ['scheduled', 'started', 'succeeded', 'failed', 'missed', 'skipped', 'denied'] as const;
export type SlotState = (typeof SLOT_STATES)[number];

export const TERMINAL_SLOT_STATES: readonly SlotState[] = ['succeeded', 'failed', 'missed', 'skipped', 'denied'];
/** Outcomes that count against the schedule's SLOs. */
export const BAD_SLOT_STATES: readonly SlotState[] = ['failed', 'missed', 'denied'];

const NEXT: Record<SlotState, readonly SlotState[]> = {
  scheduled: ['started', 'missed', 'skipped', 'denied', 'failed'],
  started: ['succeeded', 'failed', 'started'],
  succeeded: [],
  failed: [],
  missed: [],
  skipped: [],
  denied: [],
};

export function canTransition(from: SlotState, to: SlotState): boolean {
  return NEXT[from].includes(to);
}

/** How many times a slot is launched again because its run's Job was never created (its launcher killed mid-launch). */
export const NEVER_CREATED_RELAUNCHES = 3;

/**
 * A finished run's status → what it means for its slot, given the retries left.
 * `created: false`: the run never had a Job. Lost so (its launcher was killed between the
 * record and the create), it ran nothing, and the slot is launched again — a few times
 * more than `retries` allow; a create the API server refused is the run's failure.
 */
export function slotOutcome(runStatus: string, attempt: number, retries: number, created = true): 'succeeded' | 'retry' | 'failed' {
  if (runStatus === 'succeeded') return 'succeeded';
  if (!created && runStatus === 'lost' && attempt < retries + NEVER_CREATED_RELAUNCHES) return 'retry';
  // A cancelled run was cancelled by someone (or replaced): retrying would undo that.
  if (runStatus !== 'cancelled' && attempt < retries) return 'retry';
  return 'failed';
}
