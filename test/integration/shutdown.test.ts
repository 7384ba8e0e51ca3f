// Stopping the server (SIGTERM, as `npm run demo:stop` and Kubernetes do): after a
// run, an idle server releases its leader lease, closes everything it opened and
// exits, with nothing left behind to hold the process open. A run's output-drain
// timer once outlived the run and kept every stop waiting up to 15 s.
// The assertion is on what was left open (a count), not on a duration; the time
// to exit is printed for the record.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, eventually, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { runCli, startServerProcess, type ServerProcess } from '../support/oddjob.js';

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let server: ServerProcess | undefined;

before(async () => {
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'shutdown');
  await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: optedInDeployment('api', { 'oddjob.io/allowed-users': 'alice' }) });
});

after(async () => {
  await server?.kill('SIGKILL');
  await ns?.dispose();
});

describe('stopping the server', () => {
  test('after a run, SIGTERM releases the lease and exits with nothing left open', async () => {
    const lease = `shutdown-${randomBytes(3).toString('hex')}`;
    const leases = cluster.kc.makeApiClient(k8s.CoordinationV1Api);
    server = await startServerProcess(
      [
        ...['--auth', 'dev', '--dev-user', 'alice', '--namespaces', ns.name, '--kubeconfig', cluster.kubeconfigPath],
        ...['--db', join(mkdtempSync(join(tmpdir(), 'oddjob-shutdown-')), 'audit.db')],
        ...['--leader-lease', lease, '--leader-lease-namespace', ns.name],
      ],
      { POD_NAME: '' },
    );
    const identity = `${hostname()}_${server.proc.pid}`;
    await eventually(
      'the server to lead',
      async () => (await leases.readNamespacedLease({ name: lease, namespace: ns.name })).spec?.holderIdentity === identity,
    );

    const r = await runCli(['run', '-n', ns.name, 'deploy/api', '--', 'node', 'scripts/hello.js'], { server: server.url });
    assert.equal(r.code, 0, r.stderr);

    const exited = new Promise<number | null>((resolve) => server!.proc.once('exit', (code) => resolve(code)));
    const t0 = performance.now();
    await server.kill('SIGTERM');
    const code = await exited;
    const ms = Math.round(performance.now() - t0);
    console.log(`# the server exited ${ms} ms after SIGTERM`);
    const logs = server.logs();
    assert.equal(code, 0, logs);
    assert.match(logs, /released the lease/);
    // Every timer the server set was done or cleared by its shutdown.
    const left = /oddjob server: stopped; (\d+) timers left pending/.exec(logs);
    assert.ok(left, `no "stopped" line:\n${logs}`);
    assert.equal(Number(left[1]), 0, logs);
    const after = await leases.readNamespacedLease({ name: lease, namespace: ns.name });
    assert.ok(!after.spec?.holderIdentity, `the lease is still held by ${after.spec?.holderIdentity}`);
  });
});
