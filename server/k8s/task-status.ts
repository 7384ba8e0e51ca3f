// Writes a Task's schedule status (status.lastScheduleTime, nextScheduleTime,
// lastSuccessfulTime, missedSlots and a Scheduled condition) so `kubectl get` shows a
// schedule's health. Read-modify-replace under the resourceVersion read: other writers
// of the status (the Task catalog's Ready condition) keep what they wrote, and a write
// that lost a race is tried again once from a fresh read.
import * as k8s from '@kubernetes/client-node';
import type { KubeClients } from './client.js';
import { toServiceError } from './client.js';

const GROUP = 'oddjob.io';
const VERSION = 'v1alpha1';
const PLURAL = 'tasks';

export interface ScheduleStatusFields {
  lastScheduleTime?: string;
  nextScheduleTime?: string;
  lastSuccessfulTime?: string;
  missedSlots: number;
  condition: { status: 'True' | 'False'; reason: string; message: string };
}

interface TaskWithStatus {
  metadata?: { resourceVersion?: string; generation?: number };
  status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string }> } & Record<string, unknown>;
}

const apis = new WeakMap<k8s.KubeConfig, k8s.CustomObjectsApi>();

export async function writeScheduleStatus(kube: KubeClients, namespace: string, name: string, fields: ScheduleStatusFields, now = new Date()): Promise<void> {
  let api = apis.get(kube.kc);
  if (!api) apis.set(kube.kc, (api = kube.kc.makeApiClient(k8s.CustomObjectsApi)));
  for (let attempt = 0; ; attempt++) {
    try {
      const task = (await api.getNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name })) as TaskWithStatus;
      const conditions = task.status?.conditions ?? [];
      const previous = conditions.find((c) => c.type === 'Scheduled');
      const changed = previous?.status !== fields.condition.status || previous?.reason !== fields.condition.reason;
      const scheduled = {
        type: 'Scheduled',
        ...fields.condition,
        observedGeneration: task.metadata?.generation,
        lastTransitionTime: changed || !previous?.lastTransitionTime ? now.toISOString() : previous.lastTransitionTime,
      };
      const { condition: _c, ...times } = fields;
      const body = {
        ...task,
        status: { ...task.status, ...times, conditions: [...conditions.filter((c) => c.type !== 'Scheduled'), scheduled] },
      };
      await api.replaceNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body });
      return;
    } catch (err) {
      const e = toServiceError(err, `status of task ${namespace}/${name}`);
      if (e.kind === 'not_found') return;
      if (e.kind === 'conflict' && attempt === 0) continue;
      throw e;
    }
  }
}
