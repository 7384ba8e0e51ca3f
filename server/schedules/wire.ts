// Puts the schedule pieces together for the server: the slot store (server/store),
// the launcher over the run service, the scheduler, and the API service.
import type { Logger } from 'pino';
import type { AuditLog, RunStore } from '../store/index.js';
import type { KubeClients } from '../k8s/client.js';
import { toServiceError } from '../k8s/client.js';
import { deleteJob } from '../k8s/jobs.js';
import { writeScheduleStatus } from '../k8s/task-status.js';
import { observeScheduleNextSlot, observeScheduleSuccess } from '../metrics.js';
import { decideAccess } from '../policy/decide.js';
import type { ManagedRunService } from '../runs/service.js';
import { createSlotLauncher, type ResolvedSlotTask } from './launch.js';
import type { TaskRef } from './names.js';
import { Scheduler, type ScheduledTask, type TaskScheduleStatus } from './scheduler.js';
import { createScheduleService } from './service.js';
import type { SlotStore } from './store.js';

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
  /** The scheduled Tasks as the Task catalog sees them (issue 17 brings the catalog). */
  tasks?: () => ScheduledTask[];
  /** Reads a Task from the API server and resolves its command with the schedule's params. */
  resolveTask?: (task: TaskRef, params: Record<string, string | number | boolean>) => Promise<ResolvedSlotTask | undefined>;
  /** Whether this replica holds the Lease now: checked again at every tick, besides lead(). */
  isLeader?: () => boolean;
}

/** Whether the audit log has run.requested for a run id (the launcher's guard against requesting one twice). */
export const requestedIn = (audit: AuditLog) => async (runId: string) => (await audit.query({ runId, type: 'run.requested', limit: 1 })).items.length > 0;

export function createSchedules(w: ScheduleWiring) {
  const store = w.slots;
  const tasks = w.tasks ?? (() => []);
  const logger = w.logger.child({ component: 'scheduler' });
  const launcher = createSlotLauncher({
    runs: w.runs,
    readRun: (id) => w.runStore.get(id),
    requested: requestedIn(w.audit),
    deleteJob: (namespace, name, uid) => deleteJob(w.kube, namespace, name, uid),
    resolveTask: w.resolveTask ?? (async () => undefined),
    githubOrg: w.githubOrg,
  });
  const scheduler = new Scheduler({
    tasks,
    store,
    launcher,
    logger,
    isLeader: w.isLeader,
    writeStatus: (task, st) =>
      writeScheduleStatus(w.kube, task.namespace, task.name, {
        lastScheduleTime: st.lastScheduleTime,
        nextScheduleTime: st.nextScheduleTime,
        lastSuccessfulTime: st.lastSuccessfulTime,
        missedSlots: st.missedSlots,
        condition: scheduledCondition(st),
      }),
    recordMissed: async (task, slots, more) => {
      try {
        await w.audit.appendDurable({
          type: 'schedule.missed',
          actor: { login: `schedule:${task.namespace}/${task.name}`, teams: [] },
          client: { kind: 'server', agent: 'oddjob-scheduler' },
          namespace: task.namespace,
          task: task.name,
          message: `${slots.length}${more ? '+' : ''} slot(s) missed: ${slots.map((s) => s.toISOString()).join(', ')}${more ? ' (and older ones not listed)' : ''}`,
        });
      } catch (err) {
        logger.error({ err, task: `${task.namespace}/${task.name}` }, 'could not record missed slots in the audit log');
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
    async mayRun(ctx, namespace, deployment) {
      let d;
      try {
        d = await w.kube.apps.readNamespacedDeployment({ name: deployment, namespace });
      } catch (err) {
        const e = toServiceError(err, `deployment ${namespace}/${deployment}`);
        if (e.kind === 'not_found') return false;
        throw e;
      }
      return decideAccess({ namespace, deployment, annotations: d.metadata?.annotations, identity: ctx.identity, defaultOrg: w.githubOrg }).allow;
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

/** The Scheduled condition: True while the schedule fires and its last slot went well. */
function scheduledCondition(st: TaskScheduleStatus): { status: 'True' | 'False'; reason: string; message: string } {
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
