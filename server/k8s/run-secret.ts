// The Secret that carries a run's progress credential into its pod (env from a
// secretKeyRef). Created before the Job, then owned by it, so the garbage collector
// deletes it with the Job (TTL, cancel, or by hand).
import type { KubeClients } from './client.js';
import { isNotFound, kubeFailure } from './client.js';

export const runSecretName = (runId: string) => `oddjob-run-${runId}`;

export async function createRunSecret(kube: KubeClients, namespace: string, runId: string, token: string): Promise<void> {
  try {
    await createOnce(kube, namespace, runId, token);
  } catch (err) {
    if (kubeFailure(err).code !== 409) throw err;
    // One left by a launch of this run id that was cut short (a schedule slot's ids are
    // fixed): its token is not the one just minted, so it is replaced. One oddjob did not
    // label as this run's is someone else's: left alone, and the run goes without.
    const existing = await kube.core.readNamespacedSecret({ name: runSecretName(runId), namespace });
    const labels = existing.metadata?.labels ?? {};
    if (labels['app.kubernetes.io/managed-by'] !== 'oddjob' || labels['oddjob.io/run-id'] !== runId) throw err;
    await deleteRunSecret(kube, namespace, runId);
    await createOnce(kube, namespace, runId, token);
  }
}

async function createOnce(kube: KubeClients, namespace: string, runId: string, token: string): Promise<void> {
  await kube.core.createNamespacedSecret({
    namespace,
    body: {
      metadata: {
        name: runSecretName(runId),
        labels: { 'app.kubernetes.io/managed-by': 'oddjob', 'oddjob.io/run-id': runId },
        annotations: { 'oddjob.io/purpose': 'the run can post its own progress (POST /api/runs/RUN/progress); useless once the run ends' },
      },
      type: 'Opaque',
      stringData: { token },
    },
  });
}

export async function adoptRunSecret(kube: KubeClients, namespace: string, runId: string, jobName: string, jobUid: string): Promise<void> {
  await kube.core.patchNamespacedSecret({
    name: runSecretName(runId),
    namespace,
    body: [{ op: 'add', path: '/metadata/ownerReferences', value: [{ apiVersion: 'batch/v1', kind: 'Job', name: jobName, uid: jobUid }] }],
  });
}

export async function deleteRunSecret(kube: KubeClients, namespace: string, runId: string): Promise<void> {
  try {
    await kube.core.deleteNamespacedSecret({ name: runSecretName(runId), namespace });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}
