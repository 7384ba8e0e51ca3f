// PURE: the names of a slot's run and Job, derived from what the slot is — the Task
// (namespace/name) and the slot's nominal instant, plus the attempt for retries — so
// that whoever launches a slot, on whichever replica, after however many restarts,
// asks Kubernetes for the same Job: a second create answers 409 instead of running the
// command twice. The store's unique (task, nominal) row is the first guard, this the second.
//
// Keyed by namespace/name, not the Task's uid: a Task deleted and applied again from
// git gets a new uid, and must not run a slot its predecessor already ran.
import { createHash } from 'node:crypto';

export interface TaskRef {
  namespace: string;
  name: string;
}

const RUN_ID_LENGTH = 12;
const DNS_LABEL_MAX = 63;

/** 12 characters of [a-z0-9] (the run id alphabet), from SHA-256 of the slot's identity. */
export function slotRunId(task: TaskRef, nominal: Date, attempt = 0): string {
  const digest = createHash('sha256').update(`oddjob-slot\u0000${task.namespace}\u0000${task.name}\u0000${nominal.toISOString()}\u0000${attempt}`).digest();
  // 12 base-36 digits need ~62 bits; 8 bytes give 64, read as one big integer.
  return digest.readBigUInt64BE(0).toString(36).padStart(RUN_ID_LENGTH, '0').slice(-RUN_ID_LENGTH);
}

/**
 * `<task>-<UTC yyyymmddhhmm>-<run id>`, a DNS label of at most 63 characters: readable in
 * `kubectl get jobs`, unique per slot (UTC, so the two passes through a repeated hour
 * differ), and carrying the run id like every oddjob Job.
 */
export function slotJobName(task: TaskRef, nominal: Date, attempt = 0): string {
  const stamp = nominal.toISOString().slice(0, 16).replace(/[-T:]/g, '');
  const suffix = `-${stamp}-${slotRunId(task, nominal, attempt)}`;
  const head = task.name
    .slice(0, DNS_LABEL_MAX - suffix.length)
    .replace(/[-.]+$/, '')
    .replace(/\./g, '-');
  return `${head}${suffix}`;
}

/** The identity scheduled runs are recorded under in the audit log and the run list. */
export function scheduleActor(task: TaskRef): string {
  return `schedule:${task.namespace}/${task.name}`;
}
