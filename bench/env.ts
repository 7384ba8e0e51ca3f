// The shared stage of the cluster benchmarks: a namespace with an opted-in
// Deployment, and the oddjob server as it ships (compiled, dev auth, loopback).
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { optedInDeployment, REPO_ROOT, createTestNamespace, requireCluster, type TestCluster } from '../test/support/cluster.js';
import { startServerProcess, type ServerProcess } from '../test/support/oddjob.js';

export interface ClusterEnv {
  cluster: TestCluster;
  /** oddjob runs go here. */
  ns: string;
  /** The raw-Kubernetes baselines go here, so the two never see each other's pods. */
  baselineNs: string;
  deployment: k8s.V1Deployment;
  server: ServerProcess;
  /** Another server on the same namespace, with extra flags (its own database). */
  startServer(...extra: string[]): Promise<ServerProcess>;
  kenv: NodeJS.ProcessEnv;
  dispose(): Promise<void>;
}

export async function startClusterEnv(): Promise<ClusterEnv> {
  const cluster = await requireCluster();
  const ns = await createTestNamespace(cluster, 'bench');
  const baseline = await createTestNamespace(cluster, 'bench-raw');
  const body = (namespace: string) => optedInDeployment('api', { 'oddjob.io/allowed-users': 'bench' }, namespace);
  const deployment = await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: body(ns.name) });
  await cluster.apps.createNamespacedDeployment({ namespace: baseline.name, body: body(baseline.name) });
  // Measure oddjob as it ships: compiled (tsx would add ~0.3 s to every CLI start).
  execFileSync('npx', ['tsc', '-p', `${REPO_ROOT}tsconfig.build.json`], { stdio: 'ignore' });
  process.env.ODDJOB_COMPILED = '1';
  const serverArgs = (...extra: string[]) => [
    '--auth',
    'dev',
    '--dev-user',
    'bench',
    '--namespaces',
    ns.name,
    '--kubeconfig',
    cluster.kubeconfigPath,
    '--db',
    join(mkdtempSync(join(tmpdir(), 'oddjob-bench-')), 'audit.db'),
    '--log-level',
    'warn',
    '--max-output',
    '256Mi',
    '--api-rate-limit',
    '1000000',
    ...extra,
  ];
  const server = await startServerProcess(serverArgs());
  return {
    cluster,
    ns: ns.name,
    baselineNs: baseline.name,
    deployment,
    server,
    startServer: (...extra: string[]) => startServerProcess(serverArgs(...extra)),
    kenv: { KUBECONFIG: cluster.kubeconfigPath },
    async dispose() {
      await server.kill();
      await ns.dispose();
      await baseline.dispose();
    },
  };
}

/** Deletes every Job (and its pods) in a namespace and waits until the pods are gone. */
export async function clearJobs(env: ClusterEnv, namespace: string, timeoutMs = 180_000): Promise<void> {
  await env.cluster.batch.deleteCollectionNamespacedJob({ namespace, propagationPolicy: 'Background' });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pods = await env.cluster.core.listNamespacedPod({ namespace });
    if (pods.items.length === 0) return;
    if (Date.now() > deadline) throw new Error(`${pods.items.length} pods still in ${namespace} after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
