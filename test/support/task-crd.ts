// The chart's Task CRD (charts/oddjob/crds) applied to the test cluster as this build has
// it: the API server prunes every field its schema lacks (spec.schedule, the schedule's
// status fields), so tests of those apply the schema they rely on.
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { REPO_ROOT, eventually, type TestCluster } from './cluster.js';

export async function applyTaskCrd(cluster: TestCluster): Promise<void> {
  const api = cluster.kc.makeApiClient(k8s.ApiextensionsV1Api);
  const crd = k8s.loadYaml<k8s.V1CustomResourceDefinition>(readFileSync(`${REPO_ROOT}charts/oddjob/crds/tasks.oddjob.io.yaml`, 'utf8'));
  const name = crd.metadata!.name!;
  try {
    const current = await api.readCustomResourceDefinition({ name });
    crd.metadata!.resourceVersion = current.metadata?.resourceVersion;
    await api.replaceCustomResourceDefinition({ name, body: crd });
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw err;
    await api.createCustomResourceDefinition({ body: crd });
  }
  await eventually('the Task CRD is established', async () => {
    const c = await api.readCustomResourceDefinition({ name });
    return c.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True');
  });
}

/** Applies a Task (as its owners would from git) with `spec` as given. */
export function createTask(cluster: TestCluster, namespace: string, name: string, spec: Record<string, unknown>): Promise<object> {
  return cluster.kc.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({
    group: 'oddjob.io',
    version: 'v1alpha1',
    plural: 'tasks',
    namespace,
    body: { apiVersion: 'oddjob.io/v1alpha1', kind: 'Task', metadata: { name, namespace }, spec },
  });
}
