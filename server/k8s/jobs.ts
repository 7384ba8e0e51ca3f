// Deleting Jobs oddjob created, for the schedules' historyLimit.
import type { KubeClients } from './client.js';
import { isNotFound, toServiceError } from './client.js';

/**
 * Deletes a Job and (Background propagation) its pods; a Job already gone is fine. The
 * uid precondition: a Job that replaced ours under the same name is not ours to delete.
 */
export async function deleteJob(kube: KubeClients, namespace: string, name: string, uid: string | undefined): Promise<void> {
  try {
    await kube.batch.deleteNamespacedJob({ name, namespace, body: { propagationPolicy: 'Background', ...(uid ? { preconditions: { uid } } : {}) } });
  } catch (err) {
    if (isNotFound(err)) return;
    throw toServiceError(err, `job ${namespace}/${name}`);
  }
}
