// A run keeps its Deployment's network identity, on the real cluster with a real
// NetworkPolicy enforcer (kube-router, started by cluster:up): in a default-deny
// namespace where only `app: api` may reach `db`, a run of deploy/api reaches db
// and a run of an unrelated Deployment does not; the run's pod is never a ready
// or serving endpoint of the Deployment's Service; the ReplicaSet never adopts
// it; a Service that publishes not-ready addresses makes the run drop the labels
// it selects; and evictions through the Eviction API behave, for each budget
// form, as they do without oddjob — while a Job-owned pod that keeps the labels
// (the control) stalls a maxUnavailable budget exactly as the disruption
// controller's source says it would.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { DEMO_IMAGE, createTestNamespace, eventually, requireCluster, type TestCluster } from '../support/cluster.js';
import { runCli, startServerProcess, type ServerProcess } from '../support/oddjob.js';

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let server: ServerProcess;
let discovery: k8s.DiscoveryV1Api;
let policy: k8s.PolicyV1Api;
let networking: k8s.NetworkingV1Api;
let dbIP: string;

const ALLOW = { 'oddjob.io/allowed-teams': 'acme/payments' };

function deployment(name: string, replicas: number): k8s.V1Deployment {
  return {
    metadata: { name, annotations: ALLOW },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name, tier: 'backend' } },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: 'app',
              image: DEMO_IMAGE,
              imagePullPolicy: 'IfNotPresent',
              ports: [{ containerPort: 8080, name: 'http' }],
              readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 },
            },
          ],
        },
      },
    },
  };
}

before(async () => {
  cluster = await requireCluster();
  discovery = cluster.kc.makeApiClient(k8s.DiscoveryV1Api);
  policy = cluster.kc.makeApiClient(k8s.PolicyV1Api);
  networking = cluster.kc.makeApiClient(k8s.NetworkingV1Api);
  ns = await createTestNamespace(cluster, 'netid');
  const namespace = ns.name;
  await cluster.apps.createNamespacedDeployment({ namespace, body: deployment('api', 2) });
  await cluster.apps.createNamespacedDeployment({ namespace, body: deployment('other', 0) });
  // Its own Deployment: finished runs of deploy/api keep their labels for the Job's
  // TTL, and would be selected by a budget on app=api created after them.
  await cluster.apps.createNamespacedDeployment({ namespace, body: deployment('budget', 2) });
  // A numeric targetPort: the run's pod (no ports) still becomes an endpoint, so
  // only the readiness gate keeps it from being a ready one.
  await cluster.core.createNamespacedService({
    namespace,
    body: { metadata: { name: 'api' }, spec: { selector: { app: 'api' }, ports: [{ port: 80, targetPort: 8080 }] } },
  });
  await cluster.core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name: 'db', labels: { app: 'db' } },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'db',
            image: DEMO_IMAGE,
            imagePullPolicy: 'IfNotPresent',
            env: [{ name: 'ROLE', value: 'db' }],
            // The kubelet's probe comes from the node, which the policies do not restrict.
            readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
          },
        ],
      },
    },
  });
  await networking.createNamespacedNetworkPolicy({
    namespace,
    body: { metadata: { name: 'default-deny' }, spec: { podSelector: {}, policyTypes: ['Ingress'] } },
  });
  await networking.createNamespacedNetworkPolicy({
    namespace,
    body: {
      metadata: { name: 'db-from-api' },
      spec: {
        podSelector: { matchLabels: { app: 'db' } },
        policyTypes: ['Ingress'],
        ingress: [{ _from: [{ podSelector: { matchLabels: { app: 'api' } } }], ports: [{ port: 8080 }] }],
      },
    },
  });
  // Ready: db listens, so a refused connection later is the policy, not a slow start.
  dbIP = await eventually('pod db ready', async () => {
    const p = await cluster.core.readNamespacedPod({ namespace, name: 'db' });
    return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') && p.status.podIP ? p.status.podIP : undefined;
  });
  await ready('api');
  await ready('budget');
  const db = join(mkdtempSync(join(tmpdir(), 'oddjob-netid-')), 'audit.db');
  server = await startServerProcess([
    '--auth',
    'dev',
    '--dev-user',
    'alice',
    '--dev-teams',
    'acme/payments',
    '--namespaces',
    namespace,
    '--kubeconfig',
    cluster.kubeconfigPath,
    '--db',
    db,
    '--start-timeout',
    '40s',
  ]);
});

after(async () => {
  await server?.kill();
  await ns?.dispose();
});

const run = (args: string[]) => runCli(['run', '-n', ns.name, ...args], { server: server.url });

/** Both replicas Ready (after an eviction, the replacement too). */
async function ready(name: string) {
  await eventually(
    `deploy/${name} 2/2 ready`,
    async () => {
      const d = await cluster.apps.readNamespacedDeployment({ namespace: ns.name, name });
      return d.status?.readyReplicas === 2 && d.status.replicas === 2 && d.status.updatedReplicas === 2;
    },
    90_000,
  );
}

/** Starts a run that sleeps, and returns its id and its pod once the pod runs. */
async function startSleepingRun(deploymentName: string, seconds: number) {
  const r = await run(['--detach', `deploy/${deploymentName}`, '--', 'node', 'scripts/sleep.js', String(seconds)]);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.toString().trim();
  assert.match(id, /^[a-z0-9]{12}$/);
  const pod = await eventually(`the pod of run ${id} running`, async () => {
    const pods = await cluster.core.listNamespacedPod({ namespace: ns.name, labelSelector: `oddjob.io/run-id=${id}` });
    const p = pods.items[0];
    return p?.status?.phase === 'Running' && p.status.podIP ? p : undefined;
  });
  return { id, pod };
}

async function cancel(id: string) {
  const r = await runCli(['cancel', id], { server: server.url });
  assert.equal(r.code, 0, r.stderr);
}

/** Cancels the run and waits until its pod is gone (so no later budget sees it). */
async function cancelAndWait(id: string) {
  await cancel(id);
  await eventually(
    `the pod of run ${id} gone`,
    async () => (await cluster.core.listNamespacedPod({ namespace: ns.name, labelSelector: `oddjob.io/run-id=${id}` })).items.length === 0,
  );
}

async function jobOf(id: string) {
  const jobs = await cluster.batch.listNamespacedJob({ namespace: ns.name, labelSelector: `oddjob.io/run-id=${id}` });
  assert.equal(jobs.items.length, 1);
  return jobs.items[0]!;
}

/**
 * node in the demo image: GET http://db:8080/, retried for up to 10 s (the policy
 * engine programs a new pod's rules a moment after it starts, as for any new pod
 * of the Deployment); exit 3 with the last error if no attempt got through.
 */
const reachDb = () => [
  'node',
  '-e',
  `const http = require('http'); const until = Date.now() + 10000;
   (function attempt() {
     http.get({ host: '${dbIP}', port: 8080, path: '/', timeout: 2000 }, (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => console.log(b.trim())); })
       .on('timeout', function () { this.destroy(new Error('timeout')); })
       .on('error', (e) => { if (Date.now() < until) return setTimeout(attempt, 300); console.error(e.code ?? e.message); process.exit(3); });
   })();`,
];

describe("NetworkPolicies treat the run as one of the Deployment's pods", () => {
  test('a run of deploy/api reaches db; a run of an unrelated Deployment does not', async () => {
    const denied = await run(['deploy/other', '--', ...reachDb()]);
    assert.equal(
      denied.code,
      3,
      `a run of deploy/other must not reach db (is kube-router enforcing NetworkPolicies? npm run cluster:status): code ${denied.code}, stdout ${denied.stdout}, stderr ${denied.stderr}`,
    );
    const allowed = await run(['deploy/api', '--', ...reachDb()]);
    assert.equal(allowed.code, 0, `a run of deploy/api must reach db: ${allowed.stderr}`);
    assert.equal(JSON.parse(allowed.stdout.toString()).role, 'db');
  });

  test("the policy's podSelector selects the run's pod", async () => {
    const { id, pod } = await startSleepingRun('api', 30);
    try {
      const np = await networking.readNamespacedNetworkPolicy({ namespace: ns.name, name: 'db-from-api' });
      const from = np.spec!.ingress![0]!._from![0]!.podSelector!.matchLabels!;
      const selector = Object.entries(from)
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      const selected = await cluster.core.listNamespacedPod({ namespace: ns.name, labelSelector: selector });
      assert.ok(
        selected.items.some((p) => p.metadata?.name === pod.metadata?.name),
        `${selector} must select ${pod.metadata?.name}`,
      );
    } finally {
      await cancel(id);
    }
  });
});

describe('the run gets no Service traffic and is never adopted', () => {
  test('while it runs: listed in the EndpointSlice as neither ready nor serving; pod not Ready; owned by its Job alone', async () => {
    const { id, pod } = await startSleepingRun('api', 60);
    try {
      const podName = pod.metadata!.name!;
      const slicesOf = async () =>
        (await discovery.listNamespacedEndpointSlice({ namespace: ns.name, labelSelector: 'kubernetes.io/service-name=api' })).items.flatMap(
          (s) => s.endpoints,
        );
      // The endpoints controller lists the run (it has the labels) — as not ready.
      const listed = await eventually('the run pod in the api EndpointSlice', async () => (await slicesOf()).find((e) => e.targetRef?.name === podName));
      assert.equal(listed.conditions?.ready, false);
      assert.equal(listed.conditions?.serving, false);
      // And the Deployment's own pods are ready beside it: the Service works, it just never picks the run.
      const ready = (await slicesOf()).filter((e) => e.conditions?.ready);
      assert.equal(ready.length, 2);
      assert.ok(ready.every((e) => !e.targetRef?.name?.includes(id)));

      const live = await cluster.core.readNamespacedPod({ namespace: ns.name, name: podName });
      assert.equal(live.status?.phase, 'Running');
      assert.equal(live.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'False');
      assert.deepEqual(
        live.spec?.readinessGates?.map((g) => g.conditionType),
        ['oddjob.io/serves-traffic'],
      );
      assert.equal(live.metadata?.labels?.app, 'api');

      // Adoption: the ReplicaSet claims only orphans that match its selector, which
      // includes pod-template-hash; the run has a controller (its Job) and no hash.
      const controllers = (live.metadata?.ownerReferences ?? []).filter((o) => o.controller);
      assert.deepEqual(
        controllers.map((o) => o.kind),
        ['Job'],
      );
      const rs = (await cluster.apps.listNamespacedReplicaSet({ namespace: ns.name, labelSelector: 'app=api' })).items;
      assert.equal(rs.length, 1);
      assert.equal(rs[0]!.status?.replicas, 2);
      const rsSelector = Object.entries(rs[0]!.spec!.selector.matchLabels!)
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      const rsPods = await cluster.core.listNamespacedPod({ namespace: ns.name, labelSelector: rsSelector });
      assert.ok(!rsPods.items.some((p) => p.metadata?.name === podName), `the ReplicaSet selector ${rsSelector} must not select the run`);
      const d = await cluster.apps.readNamespacedDeployment({ namespace: ns.name, name: 'api' });
      assert.equal(d.status?.replicas, 2);
    } finally {
      await cancel(id);
    }
  });

  test('a Service that publishes not-ready addresses: the preview and the run drop the labels it selects, say so, and the run is not its endpoint', async () => {
    await cluster.core.createNamespacedService({
      namespace: ns.name,
      body: {
        metadata: { name: 'api-peers' },
        spec: { clusterIP: 'None', publishNotReadyAddresses: true, selector: { app: 'api', tier: 'backend' }, ports: [{ port: 8080 }] },
      },
    });
    try {
      // The Job preview (web UI's "Preview Job") shows the decision before anything runs.
      const res = await fetch(`${server.url}/api/runs/preview`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ namespace: ns.name, deployment: 'api', command: ['node', 'scripts/hello.js'] }),
      });
      assert.equal(res.status, 200, await res.clone().text());
      const { job: preview } = (await res.json()) as { job: k8s.V1Job };
      assert.equal(preview.metadata?.annotations?.['oddjob.io/network-identity'], 'deployment');
      assert.match(preview.metadata?.annotations?.['oddjob.io/dropped-labels'] ?? '', /^app, tier: Service .*\/api-peers publishes not-ready addresses/);
      assert.deepEqual(preview.spec?.template.spec?.readinessGates, [{ conditionType: 'oddjob.io/serves-traffic' }]);
      assert.equal(preview.spec?.template.metadata?.labels?.app, undefined);

      const { id, pod } = await startSleepingRun('api', 30);
      try {
        const job = await jobOf(id);
        assert.match(job.metadata?.annotations?.['oddjob.io/dropped-labels'] ?? '', /^app, tier: Service .*\/api-peers publishes not-ready addresses/);
        assert.equal(pod.metadata?.labels?.app, undefined);
        assert.equal(pod.metadata?.labels?.tier, undefined);
        // The peers Service lists the Deployment's pods, never the run.
        const peers = await eventually('api-peers endpoints for both api pods', async () => {
          const eps = (
            await discovery.listNamespacedEndpointSlice({ namespace: ns.name, labelSelector: 'kubernetes.io/service-name=api-peers' })
          ).items.flatMap((s) => s.endpoints);
          return eps.length >= 2 ? eps : undefined;
        });
        assert.ok(peers.every((e) => e.targetRef?.name !== pod.metadata?.name));
      } finally {
        await cancel(id);
      }
    } finally {
      await cluster.core.deleteNamespacedService({ namespace: ns.name, name: 'api-peers' });
    }
  });
});

describe('PodDisruptionBudgets: evictions behave as without oddjob', () => {
  const forms: [string, k8s.V1PodDisruptionBudgetSpec][] = [
    ['minAvailable: 1', { minAvailable: 1 }],
    ['minAvailable: 50%', { minAvailable: '50%' }],
    ['maxUnavailable: 1', { maxUnavailable: 1 }],
  ];

  async function withBudget<T>(spec: k8s.V1PodDisruptionBudgetSpec, body: () => Promise<T>): Promise<T> {
    await policy.createNamespacedPodDisruptionBudget({
      namespace: ns.name,
      body: { metadata: { name: 'api' }, spec: { ...spec, selector: { matchLabels: { app: 'budget' } } } },
    });
    try {
      return await body();
    } finally {
      await policy.deleteNamespacedPodDisruptionBudget({ namespace: ns.name, name: 'api' });
    }
  }

  /** The budget's status once the disruption controller has synced it with `expectedPods`. */
  const budgetStatus = (expectedPods: number) =>
    eventually(`budget api synced with ${expectedPods} expected pods`, async () => {
      const b = await policy.readNamespacedPodDisruptionBudget({ namespace: ns.name, name: 'api' });
      const s = b.status;
      return s && s.observedGeneration === b.metadata?.generation && s.expectedPods === expectedPods && s.currentHealthy === 2 ? s : undefined;
    });

  async function evictOneBudgetPod(): Promise<number> {
    const pods = await cluster.core.listNamespacedPod({ namespace: ns.name, labelSelector: 'app=budget,!oddjob.io/run-id' });
    const victim = pods.items.find((p) => !p.metadata?.deletionTimestamp)!;
    try {
      await cluster.core.createNamespacedPodEviction({
        namespace: ns.name,
        name: victim.metadata!.name!,
        body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: victim.metadata!.name!, namespace: ns.name } },
      });
      return 201;
    } catch (err) {
      if (err instanceof k8s.ApiException) return err.code;
      throw err;
    }
  }

  for (const [name, spec] of forms) {
    test(`${name}: same disruptions allowed with a run going on, and an eviction is allowed`, async () => {
      await ready('budget');
      await withBudget(spec, async () => {
        const without = await budgetStatus(2);
        assert.equal(without.disruptionsAllowed, 1);
        const { id, pod } = await startSleepingRun('budget', 60);
        try {
          const keeps = pod.metadata?.labels?.app === 'budget';
          // An integer minAvailable only counts pods, so the run keeps its labels and
          // is counted (never healthy); every other form makes the run drop them.
          assert.equal(keeps, typeof spec.minAvailable === 'number', `labels of the run under ${name}: ${JSON.stringify(pod.metadata?.labels)}`);
          const withRun = await budgetStatus(keeps ? 3 : 2);
          assert.equal(withRun.disruptionsAllowed, without.disruptionsAllowed);
          assert.equal(withRun.conditions?.find((c) => c.type === 'DisruptionAllowed')?.status, 'True');
          assert.equal(await evictOneBudgetPod(), 201);
        } finally {
          await cancelAndWait(id);
        }
      });
      await ready('budget');
    });
  }

  test('a budget that would select the run whatever it drops refuses the run (exit 125), saying how to fix it; nothing is created', async () => {
    await policy.createNamespacedPodDisruptionBudget({
      namespace: ns.name,
      body: { metadata: { name: 'everything' }, spec: { maxUnavailable: 1, selector: {} } },
    });
    try {
      const jobsBefore = (await cluster.batch.listNamespacedJob({ namespace: ns.name })).items.length;
      const r = await run(['deploy/budget', '--', 'node', '-e', '1']);
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, /PodDisruptionBudget .*\/everything uses maxUnavailable: 1.*matches the run whatever labels it drops.*integer minAvailable/);
      assert.equal((await cluster.batch.listNamespacedJob({ namespace: ns.name })).items.length, jobsBefore);
    } finally {
      await policy.deleteNamespacedPodDisruptionBudget({ namespace: ns.name, name: 'everything' });
    }
  });

  test('the control: a Job-owned pod that keeps the labels stalls a maxUnavailable budget (what oddjob avoids)', async () => {
    await ready('budget');
    await withBudget({ maxUnavailable: 1 }, async () => {
      assert.equal((await budgetStatus(2)).disruptionsAllowed, 1);
      const template = deployment('budget', 1).spec!.template;
      template.spec = {
        ...template.spec!,
        restartPolicy: 'Never',
        containers: [{ ...template.spec!.containers[0]!, command: ['node', 'scripts/sleep.js', '60'], readinessProbe: undefined, ports: undefined }],
      };
      await cluster.batch.createNamespacedJob({ namespace: ns.name, body: { metadata: { name: 'labelled-job' }, spec: { backoffLimit: 0, template } } });
      try {
        const stalled = await eventually('the budget to fail its sync', async () => {
          const s = (await policy.readNamespacedPodDisruptionBudget({ namespace: ns.name, name: 'api' })).status;
          const c = s?.conditions?.find((x) => x.type === 'DisruptionAllowed');
          return c?.status === 'False' && c.reason === 'SyncFailed' ? { s, c } : undefined;
        });
        assert.match(stalled.c.message, /jobs\.batch does not implement the scale subresource/);
        assert.equal(stalled.s!.disruptionsAllowed, 0);
        assert.equal(await evictOneBudgetPod(), 429);
      } finally {
        await cluster.batch.deleteNamespacedJob({ namespace: ns.name, name: 'labelled-job', propagationPolicy: 'Background', gracePeriodSeconds: 0 });
      }
    });
  });
});
