// The fixed vocabularies of the API as plain constants, without zod: the schemas in
// api.ts are built from them, and the web UI imports them without bundling zod.

export const RUN_STATUSES = [
  'pending', // audited and Job created; pod not running yet
  'running',
  'succeeded', // exit code 0
  'failed', // non-zero exit code, or the pod could not start (see message)
  'deadline', // hit activeDeadlineSeconds
  'cancelled',
  'lost', // the Job disappeared without a recorded end
] as const;

export const TERMINAL_STATUSES: readonly (typeof RUN_STATUSES)[number][] = ['succeeded', 'failed', 'deadline', 'cancelled', 'lost'];

export const AUDIT_EVENT_TYPES = [
  'run.requested',
  'run.denied',
  'run.created',
  'run.started',
  'run.finished',
  'run.cancelled',
  'run.lost',
  'run.progress', // a run's own progress line, posted with its run-scoped credential
  'notification.redelivered',
  'login',
  'token.created',
  'token.revoked',
  'schedule.suspended',
  'schedule.resumed',
  'schedule.missed',
  // A slot that started no run: refused (the Deployment withdrew consent) or failed to launch.
  'schedule.denied',
  'schedule.failed',
  // Four-eyes approval (PRODUCT.md §10): a run that waits for a second person.
  'approval.requested',
  'approval.granted',
  'approval.denied',
  'approval.expired',
  /** The Deployment or Task changed so the approved manifest would no longer be what runs. */
  'approval.voided',
] as const;

export const APPROVAL_STATUSES = ['pending', 'approved', 'denied', 'expired', 'void'] as const;
