// Puts the schedule pieces together for the server: the slot store (server/store),
// the launcher over the run service, the scheduler, and the API service.
import type { Logger } from 'pino';
import type { AuditLog, RunStore } from '../store/index.js';
import type { KubeClients } from '../k8s/client.js';
import { toServiceError } from '../k8s/client.js';
import { deleteJob } from '../k8s/jobs.js';
import { writeScheduleStatus } from '../k8s/task-status.js';
import { observeScheduleNextSlot, observeScheduleSuccess } from '../metrics.js';
import type { ManagedRunService } from '../runs/service.js';
import { TASK_GROUP, TASK_PLURAL, TASK_VERSION, type TaskObject } from '../tasks/spec.js';
import { readTask } from '../k8s/tasks.js';
import type { TaskRef } from './names.js';
import { createSlotLauncher, type EarlierLaunch } from './launch.js';
import { Scheduler, type ScheduledTask, type TaskScheduleStatus } from './scheduler.js';
import { createScheduleService } from './service.js';
import type { SlotStore } from './store.js';
import { APPROVAL_REFUSED, scheduledTask } from './tasks.js';

export interface ScheduleWiring {
  /** The store's slots (Store.schedules). */
  slots: SlotStore;
  kube: KubeClients;
  audit: AuditLog;
  runs: ManagedRunService;
  runStore: RunStore;
  logger: Logger;
  namespaces: readonly string[];
  githubOrg?: string;
  /** Whether this replica holds the Lease now: checked again at every tick, besides lead(). */
  isLeader?: () => boolean;
  /** The notification targets of a Deployment (its oddjob.io/notify), for schedule events that have no run. */
  notifyTargets?: (namespace: string, deployment: string) => Promise<string[] | undefined>;
}

/**
 * What the audit log says of a run id that has no run record: never requested, requested
 * by a launch cut short (continued), or requested and ended (the Job could not be built:
 * that launch failed, and the launcher says so instead of failing it again).
 */
export const requestedIn =
  (audit: AuditLog) =>
  async (runId: string): Promise<EarlierLaunch> => {
    if ((await audit.query({ runId, type: 'run.requested', limit: 1 })).items.length === 0) return 'none';
    const [ended] = (await audit.query({ runId, type: 'run.finished', limit: 1 })).items;
    return ended ? { failed: ended.message ?? 'ended before its Job was created' } : 'interrupted';
  };

/**
 * The scheduled Tasks of a Task catalog: each Task's schedule parsed and checked once per
 * version (uid + generation), not at every tick.
 */
export function scheduledTasksOf(catalog: () => TaskObject[] | undefined, githubOrg?: string): () => ScheduledTask[] | undefined {
  let memo = new Map<string, { version: string; scheduled: ScheduledTask | undefined }>();
  return () => {
    const objects = catalog();
    if (!objects) return undefined;
    const next = new Map<string, { version: string; scheduled: ScheduledTask | undefined }>();
    const out: ScheduledTask[] = [];
    for (const o of objects) {
      const id = o.metadata?.uid ?? `${o.metadata?.namespace}/${o.metadata?.name}`;
      const version = `${o.metadata?.generation ?? 0}`;
      const hit = memo.get(id);
      const entry = hit?.version === version ? hit : { version, scheduled: scheduledTask(o, githubOrg) };
      next.set(id, entry);
      if (entry.scheduled) out.push(entry.scheduled);
    }
    memo = next;
    return out;
  };
}

export function createSchedules(w: ScheduleWiring) {
  const store = w.slots;
  const tasks = scheduledTasksOf(() => w.runs.cachedTasks(), w.githubOrg);
  const logger = w.logger.child({ component: 'scheduler' });
  /** Where a schedule event without a run goes: its Deployment's notification targets now. */
  const routed = async (task: (TaskRef & { deployment?: string }) | undefined) => {
    if (!task?.deployment) return {};
    const targets = await w.notifyTargets?.(task.namespace, task.deployment).catch(() => undefined);
    return { deployment: task.deployment, ...(targets?.length ? { notify: targets } : {}) };
  };
  const launcher = createSlotLauncher({
    runs: w.runs,
    readRun: (id) => w.runStore.get(id),
    requested: requestedIn(w.audit),
    deleteJob: (namespace, name, uid) => deleteJob(w.kube, namespace, name, uid),
    githubOrg: w.githubOrg,
  });
  const scheduler = new Scheduler({
    tasks,
    store,
    launcher,
    logger,
    isLeader: w.isLeader,
    writeStatus: statusWriter(w.kube),
    recordMissed: async (task, slots, more) => {
      try {
        await w.audit.appendDurable({
          type: 'schedule.missed',
          actor: { login: `schedule:${task.namespace}/${task.name}`, teams: [] },
          client: { kind: 'server', agent: 'oddjob-scheduler' },
          namespace: task.namespace,
          task: task.name,
          ...(await routed(tasks()?.find((t) => t.namespace === task.namespace && t.name === task.name))),
          slots: slots.map((s) => s.toISOString()),
          message: `${slots.length}${more ? '+' : ''} slot(s) missed: ${slots.map((s) => s.toISOString()).join(', ')}${more ? ' (and older ones not listed)' : ''}`,
        });
      } catch (err) {
        logger.error({ err, task: `${task.namespace}/${task.name}` }, 'could not record missed slots in the audit log');
      }
    },
    recordRefused: async (task, nominal, outcome, why) => {
      try {
        await w.audit.appendDurable({
          type: outcome === 'denied' ? 'schedule.denied' : 'schedule.failed',
          actor: { login: `schedule:${task.namespace}/${task.name}`, teams: [] },
          client: { kind: 'server', agent: 'oddjob-scheduler' },
          namespace: task.namespace,
          task: task.name,
          ...(await routed(task)),
          slots: [nominal.toISOString()],
          reason: why,
          message: `slot ${nominal.toISOString()} started no run: ${why}`,
        });
      } catch (err) {
        logger.error({ err, task: `${task.namespace}/${task.name}` }, 'could not record a refused slot in the audit log');
      }
    },
  });
  observeScheduleSuccess(() => scheduler.sinceLastSuccess());
  observeScheduleNextSlot(() => scheduler.nextSlots());
  const service = createScheduleService({
    namespaces: w.namespaces,
    tasks,
    store,
    appendAudit: (e) => w.audit.appendDurable(e),
    defaultOrg: w.githubOrg,
    readTask: (namespace, name) => readTask(w.kube, namespace, name),
    async readTasks(namespace) {
      try {
        const list = await w.kube.custom.listNamespacedCustomObject({ group: TASK_GROUP, version: TASK_VERSION, namespace, plural: TASK_PLURAL });
        return (list as { items: TaskObject[] }).items;
      } catch (err) {
        throw toServiceError(err, `tasks in namespace ${namespace}`);
      }
    },
    async readDeployment(namespace, name, fresh) {
      if (!fresh) {
        const d = await w.runs.planner.currentDeployment(namespace, name);
        return d ? { annotations: d.metadata?.annotations } : null;
      }
      try {
        const d = await w.kube.apps.readNamespacedDeployment({ name, namespace });
        return { annotations: d.metadata?.annotations };
      } catch (err) {
        const e = toServiceError(err, `deployment ${namespace}/${name}`);
        if (e.kind === 'not_found') return null;
        throw e;
      }
    },
  });
  return {
    store,
    scheduler,
    service,
    /** Leader-only work: schedules until `signal` aborts (server/leader). */
    lead: (signal: AbortSignal) => scheduler.lead(signal),
    stop: () => scheduler.stop(),
  };
}

/** Writes what the scheduler knows of a Task into its status (`kubectl get ojtask` shows it). */
export const statusWriter = (kube: KubeClients) => (task: TaskRef, st: TaskScheduleStatus) =>
  writeScheduleStatus(kube, task.namespace, task.name, {
    lastScheduleTime: st.lastScheduleTime,
    nextScheduleTime: st.nextScheduleTime,
    lastSuccessfulTime: st.lastSuccessfulTime,
    missedSlots: st.missedSlots,
    condition: scheduledCondition(st),
  });

/** The Scheduled condition: True while the schedule fires and its last slot went well. */
export function scheduledCondition(st: TaskScheduleStatus): { status: 'True' | 'False'; reason: string; message: string } {
  if (st.invalid !== undefined) {
    return { status: 'False', reason: st.invalid === APPROVAL_REFUSED ? 'ApprovalRequired' : 'InvalidSchedule', message: st.invalid.slice(0, 4000) };
  }
  if (st.suspended)
    return { status: 'False', reason: 'Suspended', message: 'suspended: slots are recorded as skipped (oddjob schedules says by whom and why)' };
  const last = st.lastSlot;
  if (!last) return { status: 'True', reason: 'Waiting', message: `first slot at ${st.nextScheduleTime ?? 'never'}` };
  const bad = ['failed', 'missed', 'denied'].includes(last.state);
  return {
    status: bad ? 'False' : 'True',
    reason: last.state.charAt(0).toUpperCase() + last.state.slice(1),
    message: `slot ${last.nominal}: ${last.state}${last.message ? ` (${last.message})` : ''}`,
  };
}
