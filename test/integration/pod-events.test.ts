// Progress from the pod's Events, end to end (real server, real CLI, real cluster):
// a run that starts shows Scheduled → Pulled → Created as it happens; a run that
// cannot be scheduled shows FailedScheduling as a warning. Events are written by
// anyone who may create events in the namespace, so the test forges some: one that
// names the pod but not its uid is not shown, one full of terminal escapes is shown
// inert, and a flood is cut to a bounded number of lines.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { createTestNamespace, eventually, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { BIN, runCli, startServerProcess, type ServerProcess } from '../support/oddjob.js';

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let server: ServerProcess;

before(async () => {
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'pod-events');
  await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: optedInDeployment('api', { 'oddjob.io/allowed-users': 'alice' }) });
  const nowhere = optedInDeployment('nowhere', { 'oddjob.io/allowed-users': 'alice' });
  nowhere.spec!.template.spec!.nodeSelector = { 'oddjob.io/test-no-such-node': 'true' };
  await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: nowhere });
  const db = join(mkdtempSync(join(tmpdir(), 'oddjob-events-')), 'audit.db');
  server = await startServerProcess([
    ...['--auth', 'dev', '--dev-user', 'alice', '--namespaces', ns.name],
    ...['--kubeconfig', cluster.kubeconfigPath, '--db', db, '--start-timeout', '25s'],
  ]);
});

after(async () => {
  await server?.kill();
  await ns?.dispose();
});

/** Lines the CLI printed that are pod events (oddjob: [warning: ]Reason: message). */
const eventLines = (stderr: string) => stderr.split('\n').filter((l) => /^oddjob: (warning: )?[A-Z][A-Za-z]+: /.test(l));

function forgedEvent(pod: k8s.V1Pod, name: string, reason: string, message: string, uid = pod.metadata!.uid!): k8s.CoreV1Event {
  const now = new Date();
  return {
    metadata: { name, namespace: ns.name },
    involvedObject: { kind: 'Pod', apiVersion: 'v1', namespace: ns.name, name: pod.metadata!.name!, uid },
    reason,
    message,
    type: 'Warning',
    source: { component: 'kubelet' },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}

describe('progress from the pod’s events', () => {
  test('a run that starts shows Pulled and Created in order before its output, and Scheduled first when the scheduler reports it in time', async () => {
    const r = await runCli(['run', '-n', ns.name, 'deploy/api', '--', 'node', 'scripts/hello.js'], { server: server.url });
    assert.equal(r.code, 0, r.stderr);
    const lines = eventLines(r.stderr);
    const reasons = lines.map((l) => /^oddjob: (?:warning: )?([A-Za-z]+):/.exec(l)![1]);
    for (const want of ['Pulled', 'Created']) assert.ok(reasons.includes(want), `no ${want} line in:\n${r.stderr}`);
    assert.ok(reasons.indexOf('Pulled') < reasons.indexOf('Created'), r.stderr);
    // The scheduler batches its Events (seen arriving up to ~10 s late, after the command
    // ran): Scheduled is shown when it arrives in time, and then first.
    if (reasons.includes('Scheduled')) {
      assert.ok(reasons.indexOf('Scheduled') < reasons.indexOf('Pulled'), r.stderr);
      assert.match(r.stderr, /oddjob: Scheduled: Successfully assigned [a-z0-9-]+\/api-oddjob-[a-z0-9]+-\w+ to /);
    }
    assert.match(r.stderr, /oddjob: Pulled: Container image "docker\.io\/oddjob\/demo:0\.1\.0" already present on machine/);
    assert.equal(new Set(lines).size, lines.length, `an event was shown twice:\n${r.stderr}`);
  });

  test('a run that cannot be scheduled says why; forged events are filtered, escaped and bounded', async () => {
    const proc = spawn(process.execPath, [BIN, 'run', '-n', ns.name, 'deploy/nowhere', '--', 'true'], {
      env: { ...process.env, ODDJOB_SERVER: server.url, ODDJOB_TOKEN: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    proc.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => proc.on('exit', r));

    const pod = await eventually('the run’s pending pod', async () => {
      const pods = await cluster.core.listNamespacedPod({ namespace: ns.name, labelSelector: 'oddjob.io/deployment=nowhere' });
      return pods.items[0];
    });
    await eventually('the FailedScheduling line', async () => /oddjob: warning: FailedScheduling: 0\/1 nodes are available/.test(stderr), 20_000);

    // Names the pod, but not the pod oddjob's Job made: never shown.
    await cluster.core.createNamespacedEvent({
      namespace: ns.name,
      body: forgedEvent(pod, 'forged-uid', 'Pulling', 'FORGED-BY-NAME', '00000000-0000-0000-0000-000000000000'),
    });
    // About the run's pod (anyone may write that): shown, but its escapes are inert.
    await cluster.core.createNamespacedEvent({
      namespace: ns.name,
      body: forgedEvent(pod, 'forged-escapes', 'BackOff', 'evil \x1b]0;pwned\x07\x1b[2J\u202egnp.exe\r\nfake line'),
    });
    // A flood: each one distinct, far more than a run forwards.
    for (let i = 0; i < 70; i++) {
      await cluster.core.createNamespacedEvent({ namespace: ns.name, body: forgedEvent(pod, `flood-${i}`, 'Flood', `flood ${i}`) });
    }
    const code = await exited;
    assert.notEqual(code, 0, stderr);
    assert.match(stderr, /did not start within 25s/);

    assert.doesNotMatch(stderr, /FORGED-BY-NAME/);
    assert.ok(
      !stderr.includes('\x1b') && !stderr.includes('\x07') && !stderr.includes('\u202e') && !stderr.includes('\r'),
      `raw control characters reached the terminal:\n${JSON.stringify(stderr)}`,
    );
    assert.match(stderr, /oddjob: warning: BackOff: evil \\x1b\]0;pwned\\x07\\x1b\[2J\\u202egnp\.exe\\r\\nfake line/);
    const lines = eventLines(stderr);
    assert.ok(lines.length <= 50, `${lines.length} event lines shown; at most 50 expected`);
    assert.match(stderr, /further events about the pod are not shown/);
  });
});
