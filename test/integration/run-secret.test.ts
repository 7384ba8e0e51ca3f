// The run credential's Secret when one of that name exists already (a schedule slot's run
// id is fixed, so a launch cut short leaves one behind): oddjob replaces its own, and
// leaves alone one it did not make — on the real API server.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadKube } from '../../server/k8s/client.js';
import { createRunSecret, runSecretName } from '../../server/k8s/run-secret.js';
import { createTestNamespace, requireCluster, type TestCluster } from '../support/cluster.js';

let cluster: TestCluster;
let ns: Awaited<ReturnType<typeof createTestNamespace>>;

before(async () => {
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'run-secret');
});
after(async () => {
  await ns?.dispose();
});

const token = async (runId: string) =>
  Buffer.from((await cluster.core.readNamespacedSecret({ name: runSecretName(runId), namespace: ns.name })).data!.token!, 'base64').toString();

test("a run credential Secret left by an earlier launch of the same run is replaced; someone else's is left alone", async () => {
  const kube = loadKube({ kubeconfig: cluster.kubeconfigPath });
  await createRunSecret(kube, ns.name, 'slotrun00001', 'first');
  await createRunSecret(kube, ns.name, 'slotrun00001', 'second');
  assert.equal(await token('slotrun00001'), 'second');

  await cluster.core.createNamespacedSecret({
    namespace: ns.name,
    body: { metadata: { name: runSecretName('slotrun00002') }, stringData: { token: 'theirs' } },
  });
  await assert.rejects(createRunSecret(kube, ns.name, 'slotrun00002', 'ours'), (err: { code?: number }) => err.code === 409);
  assert.equal(await token('slotrun00002'), 'theirs');
});
