// End to end against the real cluster: `oddjob run deploy/NAME -- CMD` through
// the real server process and the real CLI binary. Proves exit codes and
// streams pass through exactly, refusals create nothing and are audited, the
// clone gets no Service traffic but keeps secrets, failures to start are
// explained, a server killed mid-run loses nothing, and audit tampering is found.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import * as k8s from '@kubernetes/client-node';
import { DEMO_IMAGE, REPO_ROOT, createTestNamespace, eventually, requireCluster, type TestCluster } from '../support/cluster.js';
import { runCli, startServerProcess, type ServerProcess } from '../support/oddjob.js';

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let server: ServerProcess;
let dbPath: string;
const SECRET = 'sekrit-value-for-tests';

function deployment(name: string, annotations: Record<string, string>, extra: Partial<k8s.V1PodSpec> = {}, image = DEMO_IMAGE): k8s.V1Deployment {
  return {
    metadata: { name, annotations },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name, tier: 'backend' } },
        spec: {
          containers: [
            {
              name: 'app',
              image,
              imagePullPolicy: 'IfNotPresent',
              env: [
                { name: 'GREETING', value: 'hi' },
                { name: 'API_KEY', valueFrom: { secretKeyRef: { name: 'creds', key: 'API_KEY' } } },
              ],
              ports: [{ containerPort: 8080, name: 'http' }],
              readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 },
            },
          ],
          ...extra,
        },
      },
    },
  };
}

const ALLOW = { 'oddjob.io/allowed-teams': 'acme/payments' };

before(async () => {
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'run-e2e');
  await cluster.core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: 'creds' }, stringData: { API_KEY: SECRET } } });
  const create = (d: k8s.V1Deployment) => cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: d });
  await create(deployment('api', ALLOW));
  await create(deployment('closed', {}));
  await create(deployment('only-bob', { 'oddjob.io/allowed-users': 'bob' }));
  await create(deployment('badimage', ALLOW, {}, 'docker.io/oddjob/does-not-exist:1.0'));
  const withSidecar = deployment('with-sidecar', ALLOW);
  withSidecar.spec!.template.spec!.containers.push({
    name: 'proxy',
    image: DEMO_IMAGE,
    command: ['node', '/app/server.js'],
    env: [
      { name: 'PORT', value: '9090' },
      { name: 'ROLE', value: 'proxy' },
    ],
  });
  await create(withSidecar);
  await cluster.core.createNamespacedService({
    namespace: ns.name,
    body: { metadata: { name: 'api' }, spec: { selector: { app: 'api' }, ports: [{ port: 80, targetPort: 'http' }] } },
  });
  await create(deployment('missing-secret', ALLOW));
  // missing-secret refers to a key that does not exist in its own secret.
  await cluster.apps.patchNamespacedDeployment(
    {
      name: 'missing-secret',
      namespace: ns.name,
      body: [{ op: 'replace', path: '/spec/template/spec/containers/0/env/1/valueFrom/secretKeyRef/name', value: 'no-such-secret' }],
    },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
  );
  dbPath = join(mkdtempSync(join(tmpdir(), 'oddjob-e2e-')), 'audit.db');
  server = await startServer('alice', 'acme/payments');
});

after(async () => {
  await server?.kill();
  await ns?.dispose();
});

function startServer(user: string, teams: string, db = dbPath) {
  return startServerProcess([
    '--auth',
    'dev',
    '--dev-user',
    user,
    '--dev-teams',
    teams,
    '--namespaces',
    ns.name,
    '--kubeconfig',
    cluster.kubeconfigPath,
    '--db',
    db,
    '--start-timeout',
    '40s',
  ]);
}

const run = (args: string[], opts: { input?: string; srv?: ServerProcess } = {}) =>
  runCli(['run', '-n', ns.name, ...args], { server: (opts.srv ?? server).url, input: opts.input });

function runIdFrom(stderr: string): string {
  const m = /run ([a-z0-9]{12})/.exec(stderr);
  assert.ok(m, `no run id in stderr:\n${stderr}`);
  return m[1]!;
}

async function jobsFor(deploymentName: string) {
  return (await cluster.batch.listNamespacedJob({ namespace: ns.name, labelSelector: `oddjob.io/deployment=${deploymentName}` })).items;
}

describe('oddjob run, end to end', () => {
  test('exit code, stdout and stderr pass through exactly', async () => {
    const r = await run(['deploy/api', '--', 'node', 'scripts/exit.js', '7']);
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout.toString(), 'to stdout\n');
    assert.match(r.stderr, /^to stderr$/m);
    assert.doesNotMatch(r.stdout.toString(), /to stderr/);
  });

  test('the argv arrives as typed: $(VAR) is not expanded by the kubelet, and the audit records what ran', async () => {
    const typed = ['$(API_KEY)', '$(GREETING)', '$$', 'a$b', '$(', '$$(API_KEY)'];
    const r = await run(['deploy/api', '--', 'node', '-e', 'console.log(JSON.stringify(process.argv.slice(1)))', ...typed]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.toString()), typed);
    assert.doesNotMatch(r.stdout.toString(), new RegExp(SECRET));
    const [job] = (await jobsFor('api')).filter((j) => j.metadata?.labels?.['oddjob.io/run-id'] === runIdFrom(r.stderr));
    assert.ok(job, 'the run has a Job');
    assert.deepEqual(JSON.parse(job.metadata!.annotations!['oddjob.io/command']!).slice(3), typed);
  });

  test('5 MiB of output arrives byte-identical', async () => {
    const expected = execFileSync(process.execPath, [`${REPO_ROOT}hack/images/demo-app/scripts/flood.js`, '5'], { maxBuffer: 64 << 20 });
    const r = await run(['deploy/api', '--', 'node', 'scripts/flood.js', '5']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.length, 5 * 1024 * 1024);
    assert.equal(createHash('sha256').update(r.stdout).digest('hex'), createHash('sha256').update(expected).digest('hex'));
  });

  test('the clone keeps the secret-backed env and is never selected by the Service', async () => {
    const r = await run(['deploy/api', '--reason', 'check env', '--', 'node', '-e', 'console.log(process.env.API_KEY); setTimeout(() => {}, 4000)'], {});
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString().trim(), SECRET);
    const id = runIdFrom(r.stderr);
    // The run's pod kept the selector's labels (NetworkPolicies select them) but,
    // never Ready, was never a ready endpoint; finished, it is no endpoint at all.
    const slices = await cluster.kc
      .makeApiClient(k8s.DiscoveryV1Api)
      .listNamespacedEndpointSlice({ namespace: ns.name, labelSelector: 'kubernetes.io/service-name=api' });
    const ready = slices.items.flatMap((s) => s.endpoints.filter((e) => e.conditions?.ready).map((e) => e.targetRef?.name ?? ''));
    assert.ok(ready.length > 0, 'the Service should have the Deployment pod as a ready endpoint');
    assert.ok(
      ready.every((n) => !n.includes(id)),
      `run pod must not be a ready endpoint: ${ready}`,
    );
    const job = (await jobsFor('api')).find((j) => j.metadata?.labels?.['oddjob.io/run-id'] === id)!;
    assert.equal(job.spec?.template.metadata?.labels?.app, 'api');
    assert.equal(job.spec?.template.metadata?.labels?.tier, 'backend');
    assert.deepEqual(
      job.spec?.template.spec?.readinessGates?.map((g) => g.conditionType),
      ['oddjob.io/serves-traffic'],
    );
    assert.equal(job.spec?.backoffLimit, 0);
    assert.equal(job.spec?.template.spec?.containers[0]?.readinessProbe, undefined);
  });

  test('a deployment without annotations is refused: exit 125, no Job, audited', async () => {
    const r = await run(['deploy/closed', '--', 'node', '-e', '1']);
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, /not opted in/);
    assert.equal((await jobsFor('closed')).length, 0);
    const audit = await runCli(['audit', '-n', ns.name, '--deployment', 'closed', '--json'], { server: server.url });
    const events = audit.stdout
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.ok(
      events.some((e) => e.type === 'run.denied' && e.actor.login === 'alice'),
      audit.stdout.toString(),
    );
  });

  test('a user who is not listed is refused with the reason', async () => {
    const r = await run(['deploy/only-bob', '--', 'node', '-e', '1']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /alice/);
    assert.equal((await jobsFor('only-bob')).length, 0);
  });

  test('a pod that cannot start is explained and exits 125 (image pull, missing secret)', async () => {
    const img = await run(['deploy/badimage', '--', 'node', '-e', '1']);
    assert.equal(img.code, 125, img.stderr);
    assert.match(img.stderr, /ErrImagePull|ImagePullBackOff|ErrImageNeverPull/);
    const sec = await run(['deploy/missing-secret', '--', 'node', '-e', '1']);
    assert.equal(sec.code, 125, sec.stderr);
    assert.match(sec.stderr, /CreateContainerConfigError|no-such-secret/);
  });

  test('a run that hits its time limit exits 124', async () => {
    const r = await run(['deploy/api', '--timeout', '3s', '--', 'node', 'scripts/sleep.js', '60']);
    assert.equal(r.code, 124, r.stderr);
    assert.match(r.stdout.toString(), /tick 1/);
  });

  test('sidecars do not keep the run alive', async () => {
    const r = await run(['deploy/with-sidecar', '--', 'node', '-e', 'console.log("main done")']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'main done\n');
  });

  test('interactive stdin reaches the command', async () => {
    const r = await run(['-i', 'deploy/api', '--', 'node', 'scripts/echo-stdin.js'], { input: 'hello there\nexit\n' });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout.toString(), /echo: hello there/);
  });

  test('server killed mid-run: the Job finishes, the audit shows the true outcome, logs are complete', async () => {
    const started = await run(['--detach', 'deploy/api', '--', 'node', 'scripts/backfill.js', '25']);
    assert.equal(started.code, 0, started.stderr);
    const id = started.stdout.toString().trim();
    assert.match(id, /^[a-z0-9]{12}$/);
    await eventually('some output to be captured', async () => {
      const r = await fetch(`${server.url}/api/runs/${id}`).then((x) => x.json() as Promise<{ status: string }>);
      return r.status === 'running' ? true : undefined;
    });
    await server.kill('SIGKILL');
    const job = (await jobsFor('api')).find((j) => j.metadata?.labels?.['oddjob.io/run-id'] === id)!;
    await eventually('the Job to complete while oddjob is down', async () => {
      const j = await cluster.batch.readNamespacedJob({ name: job.metadata!.name!, namespace: ns.name });
      return j.status?.succeeded === 1 ? true : undefined;
    });
    server = await startServer('alice', 'acme/payments');
    const logs = await eventually('the run to be reconciled', async () => {
      const r = await runCli(['logs', id], { server: server.url });
      return r.stdout.toString().includes('done') ? r : undefined;
    });
    const lines = logs.stdout.toString().trim().split('\n');
    const expected = [...Array.from({ length: 25 }, (_, i) => `backfilled batch ${i + 1}/25`), 'done'];
    assert.deepEqual(lines, expected, 'no gap and no duplicate across the restart');
    const audit = await runCli(['audit', '--json'], { server: server.url });
    const finished = audit.stdout
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((e) => e.runId === id && e.type === 'run.finished');
    assert.ok(finished, audit.stdout.toString());
    assert.equal(finished.exitCode, 0);
    assert.equal(finished.status, 'succeeded');
  });

  test('editing or deleting an audit row is detected by oddjob audit verify', async () => {
    const ok = await runCli(['audit', 'verify'], { server: server.url });
    assert.equal(ok.code, 0, ok.stdout.toString() + ok.stderr);
    await server.kill();
    // Someone with write access to the file drops the append-only triggers and edits event 3.
    const db = new Database(dbPath);
    db.exec('DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;');
    db.prepare(`UPDATE audit_events SET json = replace(json, '"alice"', '"mallory"') WHERE seq = 3`).run();
    db.close();
    server = await startServer('alice', 'acme/payments');
    const bad = await runCli(['audit', 'verify'], { server: server.url });
    assert.equal(bad.code, 1, bad.stdout.toString() + bad.stderr);
    assert.match(bad.stdout.toString() + bad.stderr, /\b3\b/);

    // Deleting a row (after restoring event 3 would not help: its hash is gone too) is found as well.
    await server.kill();
    const db2 = new Database(dbPath);
    db2.prepare(`UPDATE audit_events SET json = replace(json, '"mallory"', '"alice"') WHERE seq = 3`).run();
    db2.prepare('DELETE FROM audit_events WHERE seq = 5').run();
    db2.close();
    server = await startServer('alice', 'acme/payments');
    const deleted = await runCli(['audit', 'verify'], { server: server.url });
    assert.equal(deleted.code, 1, deleted.stdout.toString() + deleted.stderr);
    assert.match(deleted.stdout.toString() + deleted.stderr, /\b5\b/);
  });
});
