// PURE: what a notification is about. Audit events (and, as they land, approval and
// schedule events) are mapped to one small vocabulary of notification events that
// targets filter on and messages are rendered from. No I/O.
import type { AuditEvent, Run } from '../../protocol/api.js';

export const NOTIFY_EVENT_TYPES = [
  'run.started',
  'run.succeeded',
  'run.failed',
  'run.deadline',
  'run.lost',
  'run.cancelled',
  'run.progress',
  // Four-eyes approval (server/approvals): routed by the Deployment's targets, recorded
  // on the request when it was made.
  'approval.requested',
  'approval.granted',
  'approval.denied',
  'approval.expired',
  'approval.voided',
  // Schedules (server/schedules): slots that started no run, routed by the Task's Deployment's targets.
  'schedule.missed',
  'schedule.denied',
  'schedule.failed',
] as const;
export type NotifyEventType = (typeof NOTIFY_EVENT_TYPES)[number];

/**
 * One thing that happened, with everything a message needs, and nothing secret: it is
 * stored in the outbox as is and shown in the delivery log.
 */
export interface NotifyEvent {
  type: NotifyEventType;
  /** When it happened (the audit event's time). */
  time: string;
  /** The audit event that caused it: the receiver can look it up in `oddjob audit`. */
  auditSeq: number;
  /** Who: the person who started the run (or acted: cancelled, requested, approved, denied). */
  actor: string;
  /** The run's (or request's) owner when someone else acted (cancelled, approved, denied it). */
  owner?: string;
  run?: {
    id: string;
    namespace: string;
    deployment: string;
    container: string;
    /** argv exactly as run; renderers escape it. */
    command: string[];
    reason?: string;
    status: string;
    exitCode?: number;
    durationMs?: number;
    message?: string;
  };
  /** run.progress: the script's own words (bounded by the API). */
  text?: string;
  /** For events not (yet) about a run (approval.*, schedule.*): where, and the audit message. */
  where?: { namespace: string; deployment?: string };
  /** approval.*: the request (its run does not exist until it is approved). */
  request?: {
    id: string;
    /** argv exactly as it would run; renderers escape it. */
    command?: string[];
    task?: string;
    /** The requester's reason (requested), or the decider's (granted, denied). */
    reason?: string;
  };
  /** schedule.*: the Task (in `where.namespace`), the slots (nominal, ISO 8601) and, for a refused slot, why. */
  schedule?: {
    task: string;
    slots: string[];
    reason?: string;
  };
  message?: string;
}

const FINISHED: Record<string, NotifyEventType | undefined> = {
  succeeded: 'run.succeeded',
  failed: 'run.failed',
  deadline: 'run.deadline',
};

/** The notification type of an audit event, or undefined when it notifies nobody. */
export function eventTypeOf(event: Pick<AuditEvent, 'type' | 'status'>): NotifyEventType | undefined {
  switch (event.type) {
    case 'run.started':
      return 'run.started';
    case 'run.finished':
      return event.status ? FINISHED[event.status] : undefined;
    case 'run.lost':
      return 'run.lost';
    case 'run.cancelled':
      return 'run.cancelled';
    case 'run.progress':
      return 'run.progress';
    default:
      // approval.* and schedule.* audit events notify under their own names, once those
      // rooms append them (their audit types are not in this build's vocabulary yet).
      return (NOTIFY_EVENT_TYPES as readonly string[]).includes(event.type) && !event.type.startsWith('run.') ? (event.type as NotifyEventType) : undefined;
  }
}

/** Only approval/schedule events stand without a run (a request not yet approved, a slot that never started one). */
function runlessEvent(type: NotifyEventType, event: AuditEvent): NotifyEvent | undefined {
  if (type.startsWith('run.') || !event.namespace) return undefined;
  return {
    type,
    time: event.time,
    auditSeq: event.seq,
    actor: event.actor.login,
    ...(event.owner ? { owner: event.owner } : {}),
    where: { namespace: event.namespace, ...(event.deployment ? { deployment: event.deployment } : {}) },
    ...(event.message ? { message: event.message } : {}),
    ...(type.startsWith('approval.') && event.requestId ? { request: requestOf(event, event.requestId) } : {}),
    ...(type.startsWith('schedule.') && event.task ? { schedule: scheduleOf(event, event.task) } : {}),
  };
}

function scheduleOf(event: AuditEvent, task: string): NonNullable<NotifyEvent['schedule']> {
  return { task, slots: event.slots ?? [], ...(event.reason ? { reason: event.reason } : {}) };
}

function requestOf(event: AuditEvent, id: string): NonNullable<NotifyEvent['request']> {
  return {
    id,
    ...(event.command ? { command: event.command } : {}),
    ...(event.task ? { task: event.task } : {}),
    ...(event.reason ? { reason: event.reason } : {}),
  };
}

/**
 * The notification for an audit event about `run` (as stored when the event was
 * appended), or undefined when the event notifies nobody.
 */
export function notifyEventFromAudit(event: AuditEvent, run: Run | undefined): NotifyEvent | undefined {
  const type = eventTypeOf(event);
  if (!type) return undefined;
  if (!run) return runlessEvent(type, event);
  return {
    type,
    time: event.time,
    auditSeq: event.seq,
    actor: event.actor.login,
    ...(event.owner ? { owner: event.owner } : {}),
    run: {
      id: run.id,
      namespace: run.namespace,
      deployment: run.deployment,
      container: run.container,
      command: run.command,
      ...(run.reason ? { reason: run.reason } : {}),
      status: event.status ?? (type === 'run.started' || type === 'run.progress' ? 'running' : run.status),
      ...(event.exitCode !== undefined ? { exitCode: event.exitCode } : {}),
      ...(event.durationMs !== undefined ? { durationMs: event.durationMs } : {}),
      ...(event.message && type !== 'run.progress' ? { message: event.message } : {}),
    },
    ...(type === 'run.progress' && event.message !== undefined ? { text: event.message } : {}),
  };
}

/** Events that close a run's story: a Slack Web API message is updated, not posted, for these. */
export function isRunEnd(type: NotifyEventType): boolean {
  return type === 'run.succeeded' || type === 'run.failed' || type === 'run.deadline' || type === 'run.lost' || type === 'run.cancelled';
}
