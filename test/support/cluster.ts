// Access to the real local cluster for integration tests. There is no fallback:
// if the cluster is not running, every test that needs it fails with a message
// that says how to start it.
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DEMO_IMAGE = 'docker.io/oddjob/demo:0.1.0';

/**
 * A Deployment of the demo image opted in to oddjob with `annotations`. replicas 0: a
 * run clones the template, so no pod of the Deployment itself is needed.
 */
export function optedInDeployment(name: string, annotations: Record<string, string>, namespace?: string): k8s.V1Deployment {
  return {
    metadata: { name, annotations, ...(namespace ? { namespace } : {}) },
    spec: {
      replicas: 0,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: DEMO_IMAGE, imagePullPolicy: 'IfNotPresent' }] } },
    },
  };
}

export function kubeconfigPath(): string {
  return process.env.ODDJOB_TEST_KUBECONFIG ?? `${REPO_ROOT}.cluster/kubeconfig`;
}

export interface TestCluster {
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  batch: k8s.BatchV1Api;
  kubeconfigPath: string;
}

let cached: Promise<TestCluster> | undefined;

/** The running local cluster, or a loud failure explaining how to start it. */
export function requireCluster(): Promise<TestCluster> {
  cached ??= (async () => {
    const path = kubeconfigPath();
    if (!existsSync(path)) {
      throw new Error(`the local cluster is not running: ${path} does not exist. Start it with \`npm run cluster:up\`.`);
    }
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(path);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    try {
      const nodes = await core.listNode();
      const ready = nodes.items.some((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
      if (!ready) throw new Error('no node is Ready');
    } catch (err) {
      throw new Error(
        `the local cluster at ${kc.getCurrentCluster()?.server} is not usable (${(err as Error).message}). ` +
          'Check `npm run cluster:status`, or restart it with `npm run cluster:up`.',
        { cause: err },
      );
    }
    return { kc, core, apps: kc.makeApiClient(k8s.AppsV1Api), batch: kc.makeApiClient(k8s.BatchV1Api), kubeconfigPath: path };
  })();
  return cached;
}

/** Polls `probe` until it returns a value other than undefined/false, or fails with `what`. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * A fresh namespace for one test file, ready for pods (its `default` service
 * account and root CA ConfigMap exist). `dispose` deletes it in the background.
 */
export async function createTestNamespace(cluster: TestCluster, prefix = 'oddjob-test') {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await cluster.core.createNamespace({ body: { metadata: { name, labels: { 'oddjob.io/test': 'true' } } } });
  await eventually(`service account ${name}/default`, async () =>
    (await cluster.core.readNamespacedServiceAccount({ name: 'default', namespace: name })) ? true : false,
  );
  await eventually(`configmap ${name}/kube-root-ca.crt`, async () =>
    (await cluster.core.readNamespacedConfigMap({ name: 'kube-root-ca.crt', namespace: name })) ? true : false,
  );
  return {
    name,
    dispose: async () => {
      await cluster.core.deleteNamespace({ name, propagationPolicy: 'Background' }).catch(() => undefined);
    },
  };
}

/** Waits until a pod's container has terminated and returns its exit code. */
export async function waitForExitCode(cluster: TestCluster, namespace: string, pod: string, container: string, timeoutMs = 60_000) {
  return eventually(
    `pod ${namespace}/${pod} container ${container} to terminate`,
    async () => {
      const p = await cluster.core.readNamespacedPod({ name: pod, namespace });
      const st = p.status?.containerStatuses?.find((c) => c.name === container)?.state?.terminated;
      return st ? st.exitCode : undefined;
    },
    timeoutMs,
  );
}
