// Proof that the local cluster is a real one: Jobs run real containers from the
// demo image, logs come back, attach works with a TTY, and pods reach the API
// server through the `kubernetes` Service with their own service-account token.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { DEMO_IMAGE, createTestNamespace, eventually, requireCluster, waitForExitCode, type TestCluster } from '../support/cluster.js';

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };

before(async () => {
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'cluster-proof');
});
after(async () => ns?.dispose());

function collect(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(c, _e, cb) {
      chunks.push(Buffer.from(c));
      cb();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

async function podOfJob(job: string): Promise<string> {
  return eventually(`a pod for job ${job}`, async () => {
    const pods = await cluster.core.listNamespacedPod({ namespace: ns.name, labelSelector: `job-name=${job}` });
    return pods.items[0]?.metadata?.name;
  });
}

describe('local cluster', () => {
  test('a Job with the demo image runs node -e and its logs are read back', async () => {
    const marker = `proof-${Date.now()}`;
    await cluster.batch.createNamespacedJob({
      namespace: ns.name,
      body: {
        metadata: { name: 'node-e' },
        spec: {
          backoffLimit: 0,
          template: {
            spec: {
              restartPolicy: 'Never',
              containers: [
                {
                  name: 'main',
                  image: DEMO_IMAGE,
                  command: ['node', '-e', `console.log(${JSON.stringify(marker)}, process.version); console.error('on stderr')`],
                },
              ],
            },
          },
        },
      },
    });
    const job = await eventually('job node-e to succeed', async () => {
      const j = await cluster.batch.readNamespacedJob({ name: 'node-e', namespace: ns.name });
      if (j.status?.failed) throw new Error(`job failed: ${JSON.stringify(j.status)}`);
      return j.status?.succeeded === 1 ? j : undefined;
    });
    assert.equal(job.status?.succeeded, 1);
    const pod = await podOfJob('node-e');
    assert.equal(await waitForExitCode(cluster, ns.name, pod, 'main'), 0);

    const out = collect();
    const req = await new k8s.Log(cluster.kc).log(ns.name, pod, 'main', out.stream, { follow: false });
    await new Promise<void>((resolve) => {
      out.stream.on('finish', resolve);
      setTimeout(resolve, 5000);
    });
    req.abort();
    // The demo image carries the Node binary that built it (hack/images/build.sh),
    // the pinned one npm test and cluster:up run on.
    assert.match(out.text(), new RegExp(`^${marker} ${process.version.replaceAll('.', '\\.')}$`, 'm'));
    assert.match(out.text(), /on stderr/);
  });

  test('attach to a stdin/tty pod carries keystrokes in and output out', async () => {
    await cluster.core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: 'tty' },
        spec: {
          restartPolicy: 'Never',
          containers: [{ name: 'main', image: DEMO_IMAGE, command: ['node', '/app/scripts/echo-stdin.js'], stdin: true, stdinOnce: true, tty: true }],
        },
      },
    });
    await eventually('pod tty to run', async () => {
      const p = await cluster.core.readNamespacedPod({ name: 'tty', namespace: ns.name });
      return p.status?.phase === 'Running' ? true : undefined;
    });
    const stdin = new PassThrough();
    const out = collect();
    const ws = await new k8s.Attach(cluster.kc).attach(ns.name, 'tty', 'main', out.stream, null, stdin, true);
    try {
      // The script prints "ready" when it starts; a TTY echoes what we type.
      stdin.write('hello tty\r');
      await eventually('the echo of our line', async () => out.text().includes('echo: hello tty'), 20_000);
      stdin.write('exit\r');
      assert.equal(await waitForExitCode(cluster, ns.name, 'tty', 'main'), 3);
      assert.match(out.text(), /bye/);
    } finally {
      ws.close();
    }
  });

  test('a pod reaches the API server through the kubernetes Service with its service-account token', async () => {
    const script = `
      const fs = require('fs'), https = require('https');
      const dir = '/var/run/secrets/kubernetes.io/serviceaccount/';
      const token = fs.readFileSync(dir + 'token', 'utf8'), ca = fs.readFileSync(dir + 'ca.crt');
      const ns = fs.readFileSync(dir + 'namespace', 'utf8');
      const req = https.request({ host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT,
                  path: '/apis/authentication.k8s.io/v1/selfsubjectreviews', method: 'POST', ca,
                  headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' } }, (res) => {
        let body = ''; res.on('data', (d) => body += d);
        res.on('end', () => { console.log(JSON.stringify({ host: process.env.KUBERNETES_SERVICE_HOST, status: res.statusCode,
          user: JSON.parse(body).status.userInfo.username, ns })); });
      });
      req.on('error', (e) => { console.error(e.message); process.exit(1); });
      req.end(JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }));`;
    await cluster.core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: 'api-client' },
        spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: DEMO_IMAGE, command: ['node', '-e', script] }] },
      },
    });
    const code = await waitForExitCode(cluster, ns.name, 'api-client', 'main');
    const log = await cluster.core.readNamespacedPodLog({ name: 'api-client', namespace: ns.name, container: 'main' });
    assert.equal(code, 0, `pod failed: ${log}`);
    const line = JSON.parse(log.trim().split('\n').pop()!);
    assert.equal(line.host, '10.96.0.1', 'the pod must use the Service VIP, not the node address');
    assert.equal(line.status, 201);
    assert.equal(line.user, `system:serviceaccount:${ns.name}:default`);
  });
});
