// Reads what else in a namespace selects pods by label and changes how a run may
// keep its Deployment's labels (jobs/network-identity.ts decides; this only reads).
import type { Neighbours } from '../jobs/clone.js';
import { toServiceError, type KubeClients } from './client.js';

/** Read fresh for every run: a cached list could miss a Service created a moment ago. */
export async function readNeighbours(kube: KubeClients, namespace: string): Promise<Neighbours> {
  const [services, budgets] = await Promise.all([
    kube.core.listNamespacedService({ namespace }).catch((err: unknown) => {
      throw toServiceError(err, `services in namespace ${namespace}`);
    }),
    kube.policy.listNamespacedPodDisruptionBudget({ namespace }).catch((err: unknown) => {
      throw toServiceError(err, `poddisruptionbudgets in namespace ${namespace}`);
    }),
  ]);
  return { services: services.items, budgets: budgets.items };
}
