// The Task resource (oddjob.io/v1alpha1) on the API server: read one, watch a
// namespace's, and write the Ready condition oddjob decided on into its status.
import type { Logger } from 'pino';
import { TASK_GROUP, TASK_PLURAL, TASK_VERSION, type TaskCondition, type TaskObject } from '../tasks/spec.js';
import { type KubeClients, isNotFound, toServiceError } from './client.js';
import { type Listed, ResourceWatch } from './watch.js';

/** The Task as the API server has it now; undefined when there is none. */
export async function readTask(kube: KubeClients, namespace: string, name: string): Promise<TaskObject | undefined> {
  try {
    return (await kube.custom.getNamespacedCustomObject({ group: TASK_GROUP, version: TASK_VERSION, namespace, plural: TASK_PLURAL, name })) as TaskObject;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw toServiceError(err, `task ${namespace}/${name}`);
  }
}

export function watchTasks(kube: KubeClients, namespace: string, logger: Logger): ResourceWatch<TaskObject> {
  return new ResourceWatch<TaskObject>({
    kc: kube.kc,
    path: `/apis/${TASK_GROUP}/${TASK_VERSION}/namespaces/${namespace}/${TASK_PLURAL}`,
    list: async () =>
      (await kube.custom.listNamespacedCustomObject({ group: TASK_GROUP, version: TASK_VERSION, namespace, plural: TASK_PLURAL })) as Listed<TaskObject>,
    logger,
  });
}

/**
 * Replaces the Task's status with `condition` (and observedGeneration). Sent with the
 * resourceVersion it was decided for: a Task edited meanwhile answers 409, and the
 * watch delivers the new version to decide on again. Returns false on such a conflict.
 */
export async function writeTaskStatus(kube: KubeClients, task: TaskObject, condition: TaskCondition): Promise<boolean> {
  const { namespace, name } = task.metadata ?? {};
  const others = (task.status?.conditions ?? []).filter((c) => c.type !== condition.type);
  const body = {
    apiVersion: `${TASK_GROUP}/${TASK_VERSION}`,
    kind: 'Task',
    metadata: { name, namespace, resourceVersion: task.metadata?.resourceVersion },
    status: { ...task.status, observedGeneration: task.metadata?.generation, conditions: [...others, condition] },
  };
  try {
    await kube.custom.replaceNamespacedCustomObjectStatus({
      group: TASK_GROUP,
      version: TASK_VERSION,
      namespace: namespace!,
      plural: TASK_PLURAL,
      name: name!,
      body,
    });
    return true;
  } catch (err) {
    const e = toServiceError(err, `status of task ${namespace}/${name}`);
    if (e.kind === 'conflict' || e.kind === 'not_found') return false;
    throw e;
  }
}
