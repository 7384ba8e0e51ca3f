// The Helm chart and RBAC, proven in the real cluster: lint; every documented
// variant accepted by the API server (server-side dry run); the chart's rules
// equal rbac/; an install of the image built from the Dockerfile runs oddjob
// in-cluster under its own service account with only those rules, and `oddjob run`
// through it works end to end; `helm test` passes; the service account can do
// nothing beyond the documented rules; the auditor role cannot create Jobs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parseAllDocuments } from 'yaml';
import * as k8s from '@kubernetes/client-node';
import pg from 'pg';
import { DEMO_IMAGE, REPO_ROOT, createTestNamespace, eventually, requireCluster, type TestCluster } from '../support/cluster.js';
import { runCli } from '../support/oddjob.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { startRoundRobin } from '../support/round-robin.js';

const versions = readFileSync(`${REPO_ROOT}hack/cluster/versions.sh`, 'utf8');
const v = (name: string) => new RegExp(`${name}="\\$\\{${name}:-([^}]+)\\}"`).exec(versions)![1]!;
const CACHE = process.env.ODDJOB_CACHE ?? '/var/cache/oddjob';
const HELM = `${CACHE}/helm/v${v('HELM_VERSION')}/bin/helm`;
const KUBECTL = `${CACHE}/k8s/v${v('K8S_VERSION')}/bin/kubectl`;
const CHART = `${REPO_ROOT}charts/oddjob`;

let cluster: TestCluster;
let sys: { name: string; dispose: () => Promise<void> };
let served: { name: string; dispose: () => Promise<void> };
let forward: ChildProcess | undefined;
/** --set flags that make an install use the image built from the Dockerfile, already in containerd. */
let imageValues: string[];
let image: string;

const sh = (cmd: string, args: string[], input?: string) =>
  execFileSync(cmd, args, { encoding: 'utf8', input, env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath }, stdio: ['pipe', 'pipe', 'pipe'] });
const helm = (...args: string[]) => sh(HELM, args);
const kubectl = (args: string[], input?: string) => sh(KUBECTL, args, input);

before(async () => {
  cluster = await requireCluster();
  if (!existsSync(HELM)) throw new Error(`helm is missing at ${HELM}: run \`npm run cluster:up\` (it builds helm)`);
  // The image of the code under test, built from the Dockerfile (cached by content) and
  // imported into the cluster's containerd: what users build is what gets installed.
  image = execFileSync('bash', [`${REPO_ROOT}hack/images/build-oddjob.sh`, '--import'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  const [, repository, tag] = /^(.+):([^:/]+)$/.exec(image)!;
  imageValues = ['--set', `image.repository=${repository}`, '--set', `image.tag=${tag}`, '--set', 'image.pullPolicy=Never'];
  sys = await createTestNamespace(cluster, 'oddjob-sys');
  served = await createTestNamespace(cluster, 'oddjob-served');
});

after(async () => {
  forward?.kill();
  try {
    helm('uninstall', 'oj', '-n', sys?.name, '--wait');
  } catch {
    // not installed
  }
  try {
    helm('uninstall', 'ojgh', '-n', sys?.name, '--wait');
  } catch {
    // not installed
  }
  await sys?.dispose();
  await served?.dispose();
});

function render(...set: string[]): string {
  return helm(
    'template',
    'oj',
    CHART,
    '--skip-tests',
    '--kube-version',
    v('K8S_VERSION'),
    '-n',
    sys.name,
    '--set',
    `namespaces={${served.name}}`,
    ...set.flatMap((s) => ['--set', s]),
  );
}

describe('helm chart', () => {
  test('helm lint passes', () => {
    const out = helm('lint', CHART, '--set', 'namespaces={demo}', '--set', 'auth.mode=dev');
    assert.match(out, /0 chart\(s\) failed/);
  });

  test('unknown values and missing required ones are refused with a clear message', () => {
    assert.throws(() => render('auth.mode=dev', 'replicas=2'), /additional properties 'replicas' not allowed/);
    assert.throws(() => render('auth.github.org=acme', 'auth.githubClientId=x'), /auth.githubClientSecret is required/);
    // More than one replica needs PostgreSQL: the SQLite file has one writer.
    assert.throws(() => render('auth.mode=dev', 'replicaCount=2'), /replicaCount.*maximum: got 2, want 1/);
    assert.throws(() => render('auth.mode=dev', 'database.url=mysql://db/x'), /database\/url.*does not match pattern/);
    // audit.store was a stub the server never honoured; database.url is the real switch.
    assert.throws(() => render('auth.mode=dev', 'audit.store=postgres'), /additional properties 'store' not allowed/);
    assert.throws(() => render('auth.github.org=acme', 'auth.existingSecret=s'), /publicUrl is required with auth\.mode github/);
    assert.throws(() => render('auth.mode=dev', 'httpRoute.enabled=true'), /httpRoute\.parentRefs is required/);
    assert.throws(() => render('auth.mode=dev', 'readinessProbe.exec=x'), /additional properties 'exec' not allowed/);
  });

  test('database.url turns on PostgreSQL mode: replicas, rolling updates, a disruption budget, no PVC; the URL and password from a Secret', () => {
    const out = render('auth.mode=dev', 'database.url=postgres://oddjob@db:5432/oddjob', 'database.password=pw', 'replicaCount=3');
    const [d] = objects(out, 'Deployment');
    assert.equal(d.spec.replicas, 3);
    assert.deepEqual(d.spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    const env = d.spec.template.spec.containers[0].env as { name: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }[];
    assert.deepEqual(
      env.filter((e) => e.name === 'ODDJOB_DB' || e.name === 'PGPASSWORD').map((e) => [e.name, e.valueFrom?.secretKeyRef.name, e.valueFrom?.secretKeyRef.key]),
      [
        ['ODDJOB_DB', 'oj-oddjob-database', 'url'],
        ['PGPASSWORD', 'oj-oddjob-database', 'password'],
      ],
    );
    assert.equal(objects(out, 'PersistentVolumeClaim').length, 0);
    assert.equal(objects(out, 'PodDisruptionBudget')[0].spec.maxUnavailable, 1);
    assert.deepEqual(objects(out, 'Secret').find((x) => x.metadata.name === 'oj-oddjob-database').stringData, {
      url: 'postgres://oddjob@db:5432/oddjob',
      password: 'pw',
    });
    // Without PostgreSQL: one replica, Recreate, the PVC, no budget.
    const sqlite = render('auth.mode=dev');
    assert.equal(objects(sqlite, 'Deployment')[0].spec.strategy.type, 'Recreate');
    assert.equal(objects(sqlite, 'PodDisruptionBudget').length, 0);
    // An existing Secret instead: the chart creates none.
    const existing = render('auth.mode=dev', 'database.existingSecret=pg', 'replicaCount=2');
    assert.equal(objects(existing, 'Secret').length, 0);
    assert.match(existing, /secretKeyRef: \{name: pg, key: url\}|name: pg/);
  });

  test('a parent chart may pass global values', () => {
    assert.match(render('auth.mode=dev', 'global.imageRegistry=registry.example.com'), /kind: Deployment/);
  });

  /** The rendered objects of one kind, parsed. */
  const objects = (text: string, kind: string) =>
    parseAllDocuments(text)
      .map((d) => d.toJS())
      .filter((o) => o?.kind === kind);

  test('extra env, args, volumes, labels, security contexts and probe timing reach the pod', () => {
    const [dep] = objects(
      render(
        'auth.mode=dev',
        'extraEnv[0].name=HTTPS_PROXY',
        'extraEnv[0].value=http://proxy:3128',
        'extraArgs[0]=--split-log-streams=false',
        'extraVolumes[0].name=ca',
        'extraVolumes[0].configMap.name=corp-ca',
        'extraVolumeMounts[0].name=ca',
        'extraVolumeMounts[0].mountPath=/etc/corp-ca',
        'podLabels.team=platform',
        'podAnnotations.note=hi',
        'podSecurityContext.runAsUser=null',
        'podSecurityContext.runAsGroup=null',
        'podSecurityContext.fsGroup=null',
        'securityContext.readOnlyRootFilesystem=false',
        'readinessProbe.failureThreshold=7',
        'livenessProbe.periodSeconds=30',
      ),
      'Deployment',
    );
    const pod = dep.spec.template;
    const c = pod.spec.containers[0];
    assert.deepEqual(c.args, ['server', '--split-log-streams=false']);
    assert.deepEqual(c.env.at(-1), { name: 'HTTPS_PROXY', value: 'http://proxy:3128' });
    assert.deepEqual(c.volumeMounts.at(-1), { name: 'ca', mountPath: '/etc/corp-ca' });
    assert.deepEqual(pod.spec.volumes.at(-1), { name: 'ca', configMap: { name: 'corp-ca' } });
    assert.equal(pod.metadata.labels.team, 'platform');
    assert.equal(pod.metadata.annotations.note, 'hi');
    // OpenShift: no fixed UID, the namespace's range applies; the rest of the safe default stays.
    assert.deepEqual(pod.spec.securityContext, { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    assert.equal(c.securityContext.readOnlyRootFilesystem, false);
    assert.deepEqual(c.securityContext.capabilities, { drop: ['ALL'] });
    assert.equal(c.readinessProbe.failureThreshold, 7);
    assert.ok(c.readinessProbe.exec, 'dev auth keeps its in-pod probe');
    assert.equal(c.livenessProbe.periodSeconds, 30);
  });

  test('HTTPRoute, ServiceMonitor labels and PrometheusRule render (their CRDs are not in the test cluster)', () => {
    const text = render(
      'auth.mode=dev',
      'httpRoute.enabled=true',
      'httpRoute.parentRefs[0].name=public',
      'httpRoute.parentRefs[0].namespace=gateway',
      'httpRoute.hostnames[0]=oddjob.example.com',
      'serviceMonitor.enabled=true',
      'serviceMonitor.labels.release=kube-prometheus-stack',
      'prometheusRule.enabled=true',
      'prometheusRule.labels.release=kube-prometheus-stack',
    );
    const [route] = objects(text, 'HTTPRoute');
    assert.deepEqual(route.spec.parentRefs, [{ name: 'public', namespace: 'gateway' }]);
    assert.deepEqual(route.spec.hostnames, ['oddjob.example.com']);
    assert.deepEqual(route.spec.rules[0].backendRefs, [{ name: 'oj-oddjob', port: 80 }]);
    const [monitor] = objects(text, 'ServiceMonitor');
    assert.equal(monitor.metadata.labels.release, 'kube-prometheus-stack');
    const [rule] = objects(text, 'PrometheusRule');
    assert.equal(rule.metadata.labels.release, 'kube-prometheus-stack');
    const exprs = rule.spec.groups[0].rules.map((r: { expr: string }) => r.expr).join('\n');
    // Every alert is about a metric the server exports (test/integration/metrics.test.ts).
    for (const metric of [
      'oddjob_audit_append_failures_total',
      'oddjob_runs_finished_total',
      'oddjob_run_start_delay_seconds_bucket',
      'oddjob_watch_restarts_total',
      'oddjob_github_api_errors_total',
    ]) {
      assert.match(exprs, new RegExp(metric));
    }
    assert.match(exprs, new RegExp(`namespace="${sys.name}", service="oj-oddjob"`));
    // Schedules: burn-rate alerts on the two SLOs, and one for a schedule that stopped firing.
    const schedules = rule.spec.groups.find((g: { name: string }) => g.name === 'oddjob-schedules');
    const scheduleExprs = schedules.rules.map((r: { expr: string }) => r.expr).join('\n');
    for (const metric of ['oddjob_schedule_start_delay_seconds_bucket', 'oddjob_schedule_slots_total', 'oddjob_schedule_next_slot_timestamp_seconds']) {
      assert.match(scheduleExprs, new RegExp(metric));
    }
    assert.match(scheduleExprs, /le="1200"/);
    const alerts = schedules.rules.flatMap((r: { alert?: string }) => (r.alert ? [r.alert] : []));
    assert.deepEqual(alerts, [
      'OddjobScheduleStartBudgetBurn',
      'OddjobScheduleStartBudgetBurnSlow',
      'OddjobScheduleCompletionBudgetBurn',
      'OddjobScheduleCompletionBudgetBurnSlow',
      'OddjobScheduleNotFiring',
      'OddjobScheduleNoLeader',
    ]);
    assert.match(scheduleExprs, /\(14\.4 \* \(1 - 0\.9999\)\)/);
  });

  const variants: Record<string, string[]> = {
    'default (github, SQLite on a PVC)': [
      'auth.github.org=acme',
      'auth.githubClientId=id',
      'auth.githubClientSecret=secret',
      'auth.sessionSecret=0123456789abcdef0123456789abcdef',
      'publicUrl=https://oddjob.example.com',
    ],
    'existing secret + ingress with TLS': [
      'auth.github.org=acme',
      'auth.existingSecret=oddjob-auth',
      'ingress.enabled=true',
      'ingress.tlsSecret=tls',
      'publicUrl=https://oddjob.example.com',
      'trustProxy=1',
    ],
    'any GitHub user, explicitly': ['auth.github.allowAnyUser=true', 'auth.existingSecret=oddjob-auth', 'publicUrl=https://oddjob.example.com'],
    'network policy, extra env/args/volumes, OpenShift-style security context': [
      'auth.github.org=acme',
      'auth.existingSecret=oddjob-auth',
      'publicUrl=https://oddjob.example.com',
      'networkPolicy.enabled=true',
      'networkPolicy.from[0].namespaceSelector.matchLabels.role=ingress',
      'extraEnv[0].name=HTTPS_PROXY',
      'extraEnv[0].value=http://proxy:3128',
      'extraArgs[0]=--split-log-streams=false',
      'extraVolumes[0].name=ca',
      'extraVolumes[0].configMap.name=corp-ca',
      'extraVolumeMounts[0].name=ca',
      'extraVolumeMounts[0].mountPath=/etc/corp-ca',
      'podLabels.team=platform',
      'podSecurityContext.runAsUser=null',
      'podSecurityContext.fsGroup=null',
      'readinessProbe.failureThreshold=7',
    ],
    'dev auth without persistence': ['auth.mode=dev', 'audit.sqlite.persistence=false'],
    'PostgreSQL with three replicas': ['auth.mode=dev', 'database.url=postgres://oddjob@db:5432/oddjob', 'database.password=pw', 'replicaCount=3'],
  };
  for (const [name, set] of Object.entries(variants)) {
    test(`the API server accepts the ${name} variant (server-side dry run)`, () => {
      const out = kubectl(['apply', '--dry-run=server', '-f', '-'], render(...set));
      assert.match(out, /deployment\.apps\/oj-oddjob created \(server dry run\)/);
      assert.match(out, new RegExp(`rolebinding.*oj-oddjob created`));
      if (set.includes('networkPolicy.enabled=true')) assert.match(out, /networkpolicy.*oj-oddjob created \(server dry run\)/);
    });
  }

  test("safe defaults: an org or an explicit allowAnyUser, no trustProxy true, /metrics off the routed port, a test pod without oddjob's token", () => {
    assert.throws(
      () => render('auth.existingSecret=s', 'publicUrl=https://x.example'),
      /auth.github.org is required: without it every GitHub account could sign in/,
    );
    assert.throws(
      () => render('auth.github.org=acme', 'auth.existingSecret=s', 'publicUrl=https://x.example', 'trustProxy=true'),
      /trustProxy true would believe any client's X-Forwarded-For/,
    );
    const docs = (text: string) =>
      parseAllDocuments(text)
        .map((d) => d.toJS())
        .filter(Boolean);
    const any = docs(render('auth.github.allowAnyUser=true', 'auth.existingSecret=s', 'publicUrl=https://x.example'));
    const env = any.find((o) => o.kind === 'Deployment').spec.template.spec.containers[0].env;
    assert.deepEqual(
      env.find((e: { name: string }) => e.name === 'ODDJOB_ALLOW_ANY_GITHUB_USER'),
      { name: 'ODDJOB_ALLOW_ANY_GITHUB_USER', value: 'true' },
    );
    assert.equal(
      env.find((e: { name: string }) => e.name === 'ODDJOB_GITHUB_ORG'),
      undefined,
    );

    const withIngress = docs(
      render('auth.github.org=acme', 'auth.existingSecret=s', 'publicUrl=https://x.example', 'ingress.enabled=true', 'serviceMonitor.enabled=true'),
    );
    const deployment = withIngress.find((o) => o.kind === 'Deployment');
    const container = deployment.spec.template.spec.containers[0];
    assert.deepEqual(
      container.env.find((e: { name: string }) => e.name === 'ODDJOB_METRICS_PORT'),
      { name: 'ODDJOB_METRICS_PORT', value: '9090' },
    );
    assert.deepEqual(
      container.ports.map((p: { name: string }) => p.name),
      ['http', 'metrics'],
    );
    const service = withIngress.find((o) => o.kind === 'Service');
    assert.deepEqual(
      service.spec.ports.map((p: { name: string }) => p.name),
      ['http', 'metrics'],
    );
    const ingress = withIngress.find((o) => o.kind === 'Ingress');
    const backends = ingress.spec.rules.flatMap((r: { http: { paths: Array<{ backend: { service: { port: unknown } } }> } }) =>
      r.http.paths.map((p) => p.backend.service.port),
    );
    assert.deepEqual(backends, [{ name: 'http' }], 'the Ingress routes only the http port');
    assert.equal(withIngress.find((o) => o.kind === 'ServiceMonitor').spec.endpoints[0].port, 'metrics');

    const testPod = docs(
      helm(
        'template',
        'oj',
        CHART,
        '-n',
        'x',
        '--kube-version',
        v('K8S_VERSION'),
        '--set',
        'namespaces={demo}',
        '--set',
        'auth.github.org=acme',
        '--set',
        'auth.existingSecret=s',
        '--set',
        'publicUrl=https://x.example',
        '--show-only',
        'templates/tests/test-connection.yaml',
      ),
    )[0];
    assert.equal(testPod.kind, 'Pod');
    assert.equal(testPod.spec.serviceAccountName, undefined, "not oddjob's service account");
    assert.equal(testPod.spec.automountServiceAccountToken, false);
  });

  test('the chart renders exactly the rules of rbac/', () => {
    const rulesOf = (text: string, kindName: string, kind = 'ClusterRole') =>
      parseAllDocuments(text)
        .map((d) => d.toJS())
        .find((o) => o?.kind === kind && o.metadata.name === kindName)?.rules;
    const chart = render('auth.mode=dev');
    assert.deepEqual(rulesOf(chart, 'oj-oddjob'), rulesOf(readFileSync(`${REPO_ROOT}rbac/service-clusterrole.yaml`, 'utf8'), 'oddjob'));
    assert.deepEqual(rulesOf(chart, 'oj-oddjob-auditor'), rulesOf(readFileSync(`${REPO_ROOT}rbac/auditor-clusterrole.yaml`, 'utf8'), 'oddjob-auditor'));
    // The leader Lease is named after the release in the chart, `oddjob` in rbac/.
    const leaderRules = readFileSync(`${REPO_ROOT}rbac/leader-election-role.yaml`, 'utf8').replace('resourceNames: ["oddjob"]', 'resourceNames: ["oj-oddjob"]');
    assert.deepEqual(rulesOf(chart, 'oj-oddjob-leader-election', 'Role'), rulesOf(leaderRules, 'oddjob-leader-election', 'Role'));
    assert.ok(rulesOf(chart, 'oj-oddjob-leader-election', 'Role'), 'the chart has the leader election Role');
  });
});

/** --set flags for GitHub sign-in against a GitHub that is never called (helm test only checks the redirect). */
const GITHUB_SIGN_IN = [
  'publicUrl=https://oddjob.example.com',
  'auth.github.org=acme',
  'auth.githubClientId=Iv1.chart-test',
  'auth.githubClientSecret=not-a-real-secret',
  'auth.sessionSecret=0123456789abcdef0123456789abcdef',
].flatMap((v) => ['--set', v]);

/** The Deployment the installed oddjob serves: the demo image, alice may run in it. */
const createApi = (namespace: string) =>
  cluster.apps.createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name: 'api', annotations: { 'oddjob.io/allowed-users': 'alice' } },
      spec: {
        selector: { matchLabels: { app: 'api' } },
        template: { metadata: { labels: { app: 'api' } }, spec: { containers: [{ name: 'app', image: DEMO_IMAGE, imagePullPolicy: 'IfNotPresent' }] } },
      },
    },
  });

describe('installed into the cluster', () => {
  let url: string;

  before(async () => {
    await createApi(served.name);
    helm(
      'install',
      'oj',
      CHART,
      '-n',
      sys.name,
      '--wait',
      '--timeout',
      '180s',
      '--set',
      `namespaces={${served.name}}`,
      '--set',
      'auth.mode=dev',
      '--set',
      'auth.devUser=alice',
      '--set',
      'audit.sqlite.persistence=false',
      ...imageValues,
    );
    // dev auth listens on the pod's loopback; port-forward reaches it there.
    forward = spawn(KUBECTL, ['port-forward', '-n', sys.name, 'deploy/oj-oddjob', ':8080'], { env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath } });
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      const t = setTimeout(() => reject(new Error(`port-forward did not start: ${out}`)), 30_000);
      forward!.stdout!.on('data', (d) => {
        out += d;
        const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
        if (m) {
          clearTimeout(t);
          resolve(`http://127.0.0.1:${m[1]}`);
        }
      });
      forward!.stderr!.on('data', (d) => (out += d));
    });
  });

  test('the service runs as its own service account, non-root, read-only root fs', async () => {
    const pods = await cluster.core.listNamespacedPod({ namespace: sys.name, labelSelector: 'app.kubernetes.io/name=oddjob' });
    const pod = pods.items[0]!;
    assert.equal(pod.spec?.containers[0]?.image, image, 'the image built from the Dockerfile');
    assert.equal(pod.spec?.serviceAccountName, 'oj-oddjob');
    assert.equal(pod.spec?.securityContext?.runAsNonRoot, true);
    assert.equal(pod.spec?.containers[0]?.securityContext?.readOnlyRootFilesystem, true);
  });

  test('the installed replica leads: the Lease in its own namespace names its pod; nothing else about leases is granted', async () => {
    const pods = await cluster.core.listNamespacedPod({ namespace: sys.name, labelSelector: 'app.kubernetes.io/name=oddjob,app.kubernetes.io/instance=oj' });
    const pod = pods.items[0]!.metadata!.name!;
    const leases = cluster.kc.makeApiClient(k8s.CoordinationV1Api);
    const holder = await eventually('the Lease to name the pod', async () => {
      const l = await leases.readNamespacedLease({ name: 'oj-oddjob', namespace: sys.name }).catch(() => undefined);
      return l?.spec?.holderIdentity === pod ? pod : undefined;
    });
    assert.equal(holder, pod);
    const as = `system:serviceaccount:${sys.name}:oj-oddjob`;
    assert.match(kubectl(['auth', 'can-i', 'update', 'leases.coordination.k8s.io/oj-oddjob', '-n', sys.name, '--as', as]), /yes/);
    assert.throws(() => kubectl(['auth', 'can-i', 'update', 'leases.coordination.k8s.io/someone-else', '-n', sys.name, '--as', as]));
    assert.throws(() => kubectl(['auth', 'can-i', 'delete', 'leases.coordination.k8s.io/oj-oddjob', '-n', sys.name, '--as', as]));
    assert.throws(() => kubectl(['auth', 'can-i', 'create', 'leases.coordination.k8s.io', '-n', served.name, '--as', as]));
  });

  test('oddjob run through the installed service: output, exit code, audit', async () => {
    const r = await runCli(['run', '-n', served.name, 'deploy/api', '--reason', 'in-cluster', '--', 'node', 'scripts/exit.js', '4'], { server: url });
    assert.equal(r.code, 4, r.stderr);
    assert.equal(r.stdout.toString(), 'to stdout\n');
    assert.match(r.stderr, /^to stderr$/m);
    const audit = await runCli(['audit', '--json'], { server: url });
    const types = audit.stdout
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).type);
    assert.deepEqual(types.slice(0, 4), ['run.requested', 'run.created', 'run.started', 'run.finished']);
  });

  test("docs/operating.md's online backup: a consistent copy of the store, with the run's audit trail", async () => {
    // The documented commands, with this install's names (release oj, its namespace).
    kubectl([
      'exec',
      '-n',
      sys.name,
      'deploy/oj-oddjob',
      '--',
      'node',
      '-e',
      "new (require('/app/node_modules/better-sqlite3'))('/var/lib/oddjob/audit.db', {readonly: true}).backup('/tmp/backup.db').then(() => console.log('ok'))",
    ]);
    const pod = kubectl(['get', 'pod', '-n', sys.name, '-l', 'app.kubernetes.io/name=oddjob', '-o', 'name']).trim().split('/')[1]!;
    const dir = mkdtempSync(join(tmpdir(), 'oddjob-backup-'));
    try {
      kubectl(['cp', `${sys.name}/${pod}:/tmp/backup.db`, join(dir, 'backup.db')]);
      kubectl(['exec', '-n', sys.name, 'deploy/oj-oddjob', '--', 'rm', '/tmp/backup.db']);
      const db = new Database(join(dir, 'backup.db'), { readonly: true });
      try {
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
        const types = db.prepare("SELECT type FROM audit_events WHERE type LIKE 'run.%' ORDER BY seq").pluck().all();
        assert.deepEqual(types.slice(0, 4), ['run.requested', 'run.created', 'run.started', 'run.finished']);
      } finally {
        db.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the service account can do nothing beyond the documented rules', () => {
    const as = `system:serviceaccount:${sys.name}:oj-oddjob`;
    const list = kubectl(['auth', 'can-i', '--list', '-n', served.name, '--as', as]);
    const granted = list
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s{2,}/))
      .filter((cols) => cols.length >= 4 && cols[0] !== '')
      .map(([resource, , , verbs]) => [resource!, verbs!] as const);
    const documented = new Map([
      ['deployments.apps', '[get list watch]'],
      ['jobs.batch', '[create get list watch delete]'],
      ['services', '[list]'],
      ['poddisruptionbudgets.policy', '[list]'],
      ['pods', '[get list watch]'],
      ['events', '[get list watch]'],
      ['pods/log', '[get]'],
      ['pods/attach', '[create get]'],
      ['secrets', '[create patch delete]'],
      ['tasks.oddjob.io', '[get list watch]'],
      ['tasks.oddjob.io/status', '[update]'],
    ]);
    // What every authenticated identity gets from the cluster's defaults (discovery, self reviews).
    const clusterDefaults =
      /^(selfsubject\w+\.authorization\.k8s\.io|selfsubjectreviews\.authentication\.k8s\.io|selfsubjectaccessreviews.*|selfsubjectrulesreviews.*)$/;
    for (const [resource, verbs] of granted) {
      if (clusterDefaults.test(resource)) continue;
      assert.equal(documented.get(resource), verbs, `unexpected grant: ${resource} ${verbs}`);
    }
    assert.deepEqual(new Set(granted.map(([r]) => r).filter((r) => documented.has(r))), new Set(documented.keys()));
    for (const [verb, what] of [
      ['get', 'secrets'],
      ['create', 'pods/exec'],
      ['create', 'pods'],
      ['*', '*'],
    ]) {
      assert.throws(() => kubectl(['auth', 'can-i', verb!, what!, '-n', served.name, '--as', as]), `must not: ${verb} ${what}`);
    }
    // Nothing outside the served namespaces.
    assert.throws(() => kubectl(['auth', 'can-i', 'create', 'jobs', '-n', 'default', '--as', as]));
  });

  test('the auditor role reads runs and cannot create Jobs', () => {
    kubectl(['create', 'rolebinding', 'auditor', '-n', served.name, '--clusterrole', 'oj-oddjob-auditor', '--user', 'carol-auditor']);
    assert.match(kubectl(['auth', 'can-i', 'list', 'jobs.batch', '-n', served.name, '--as', 'carol-auditor']), /yes/);
    assert.match(kubectl(['auth', 'can-i', 'get', 'pods/log', '-n', served.name, '--as', 'carol-auditor']), /yes/);
    assert.throws(() => kubectl(['auth', 'can-i', 'create', 'jobs.batch', '-n', served.name, '--as', 'carol-auditor']));
    assert.throws(() => kubectl(['auth', 'can-i', 'delete', 'jobs.batch', '-n', served.name, '--as', 'carol-auditor']));
  });
});

describe('installed with GitHub sign-in', () => {
  test('helm test passes: ready, anonymous callers refused, sign-in redirects to GitHub with the public callback', () => {
    helm(
      'install',
      'ojgh',
      CHART,
      '-n',
      sys.name,
      '--wait',
      '--timeout',
      '180s',
      '--set',
      `namespaces={${served.name}}`,
      ...GITHUB_SIGN_IN,
      '--set',
      'auth.github.url=https://ghe.example.com',
      '--set',
      'audit.sqlite.persistence=false',
      ...imageValues,
    );
    const out = helm('test', 'ojgh', '-n', sys.name, '--logs', '--timeout', '120s');
    assert.match(out, /Phase:\s+Succeeded/);
    assert.match(out, /\/readyz 200[\s\S]*\/metrics 404[\s\S]*\/api\/whoami 401[\s\S]*\/api\/runs 401[\s\S]*\/auth\/github 302/);
  });
});

// Issue 16's in-cluster proof: two replicas of the installed image on a PostgreSQL the
// cluster reaches (a real server on the node's address), `helm test` green, and a
// forced kill of the pod that owns a running run does not end the run: the other
// replica adopts it, and a CLI following through a round-robin proxy (standing in for
// the Service) gets every line once and the true exit code.
describe('installed with PostgreSQL and two replicas', () => {
  let pgServer: PostgresServer;
  let sysPg: { name: string; dispose: () => Promise<void> };
  let servedPg: { name: string; dispose: () => Promise<void> };
  const forwards = new Map<string, { proc: ChildProcess; port: number }>();
  let proxy: { url: string; close(): Promise<void> } | undefined;
  let db: pg.Pool;

  const forwardTo = (ns: string, target: string) =>
    new Promise<{ proc: ChildProcess; port: number }>((resolve, reject) => {
      const proc = spawn(KUBECTL, ['port-forward', '-n', ns, target, ':8080'], { env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath } });
      let out = '';
      const t = setTimeout(() => reject(new Error(`port-forward to ${target} did not start: ${out}`)), 30_000);
      proc.stdout!.on('data', (d) => {
        out += d;
        const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
        if (m) {
          clearTimeout(t);
          resolve({ proc, port: Number(m[1]) });
        }
      });
      proc.stderr!.on('data', (d) => (out += d));
    });

  before(async () => {
    const nodes = await cluster.core.listNode();
    const nodeIp = nodes.items[0]?.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
    assert.ok(nodeIp, 'the node has an InternalIP');
    pgServer = await startPostgres({ listen: [nodeIp] });
    const localUrl = await pgServer.createDatabase('oddjob_chart');
    db = new pg.Pool({ connectionString: localUrl, max: 2 });
    sysPg = await createTestNamespace(cluster, 'oddjob-sys-pg');
    servedPg = await createTestNamespace(cluster, 'oddjob-served-pg');
    await createApi(servedPg.name);
    helm(
      'install',
      'ojpg',
      CHART,
      '-n',
      sysPg.name,
      '--wait',
      '--timeout',
      '240s',
      '--set',
      `namespaces={${servedPg.name}}`,
      '--set',
      'auth.mode=dev',
      '--set',
      'auth.devUser=alice',
      '--set',
      'replicaCount=2',
      '--set',
      `database.url=postgres://${pgServer.user}@${nodeIp}:${pgServer.port}/oddjob_chart`,
      '--set',
      `database.password=${pgServer.password}`,
      ...imageValues,
    );
  });

  after(async () => {
    await proxy?.close();
    for (const f of forwards.values()) f.proc.kill();
    try {
      helm('uninstall', 'ojpg', '-n', sysPg?.name, '--wait');
    } catch {
      // not installed
    }
    await db?.end();
    await sysPg?.dispose();
    await servedPg?.dispose();
    await pgServer?.destroy();
  });

  const podNames = async () =>
    (await cluster.core.listNamespacedPod({ namespace: sysPg.name, labelSelector: 'app.kubernetes.io/name=oddjob,app.kubernetes.io/instance=ojpg' })).items
      .filter((p) => !p.metadata?.deletionTimestamp && p.status?.phase === 'Running')
      .map((p) => p.metadata!.name!);

  test('two replicas run on the one database, which they migrated', async () => {
    const pods = await podNames();
    assert.equal(pods.length, 2, `two running replicas: ${pods.join(', ')}`);
    const tables = await db.query<{ n: string }>("select count(*) as n from information_schema.tables where table_name = 'audit_events'");
    assert.equal(Number(tables.rows[0]!.n), 1, 'the replicas migrated the PostgreSQL database');
  });

  test('killing the pod that owns a running run does not end it: adopted, every line once, the true exit code, one ending', async () => {
    for (const pod of await podNames()) forwards.set(pod, await forwardTo(sysPg.name, `pod/${pod}`));
    proxy = await startRoundRobin(() => [...forwards.values()].map((f) => ({ host: '127.0.0.1', port: f.port })));
    const lines = 100;
    const script = `for (let i = 1; i <= ${lines}; i++) { console.log('line ' + i); await new Promise((r) => setTimeout(r, 300)); } process.exitCode = 7;`;
    const cli = runCli(['run', '-n', servedPg.name, 'deploy/api', '--reason', 'node loss', '--', 'node', '--input-type=module', '-e', script], {
      server: proxy.url,
      timeoutMs: 180_000,
    });
    const { id, owner } = await eventually(
      'the run to be running and owned',
      async () => {
        const r = (
          await db.query<{ id: string; status: string; owner: string | null }>(
            'select r.id, r.status, l.owner from runs r left join run_leases l on l.run_id = r.id order by r.ord desc limit 1',
          )
        ).rows[0];
        return r && r.status === 'running' && r.owner ? { id: r.id, owner: r.owner } : undefined;
      },
      120_000,
    );
    await eventually(
      'output to be stored',
      async () =>
        Number((await db.query<{ bytes: string }>('select bytes from run_output_meta where run_id = $1', [id])).rows[0]?.bytes ?? 0) > 100 || undefined,
    );
    const victim = [...forwards.keys()].find((pod) => owner.includes(pod));
    assert.ok(victim, `the owner ${owner} is one of the pods ${[...forwards.keys()].join(', ')}`);
    kubectl(['delete', 'pod', '-n', sysPg.name, victim, '--grace-period=0', '--force', '--wait=false']);
    // The Service drops the endpoint; so does our stand-in.
    forwards.get(victim)!.proc.kill();
    forwards.delete(victim);
    const result = await cli;
    assert.equal(result.code, 7, `the CLI exits with the run's exit code; stderr:\n${result.stderr}`);
    assert.deepEqual(
      result.stdout.toString().trimEnd().split('\n'),
      Array.from({ length: lines }, (_, i) => `line ${i + 1}`),
      'every line once, in order, across the pod loss',
    );
    const adopter = (await db.query<{ owner: string }>('select owner from run_leases where run_id = $1', [id])).rows[0]?.owner;
    assert.ok(!adopter || !adopter.includes(victim), `a surviving replica finished the run (lease: ${adopter})`);
    const trail = (await db.query<{ type: string }>("select type from audit_events where run_id = $1 and type like 'run.%' order by seq", [id])).rows.map(
      (r) => r.type,
    );
    assert.equal(trail.filter((t) => ['run.finished', 'run.lost', 'run.cancelled'].includes(t)).length, 1, `one ending: ${trail.join(', ')}`);
    assert.equal(trail.at(-1), 'run.finished');
    const verify = await runCli(['audit', 'verify'], { server: proxy.url });
    assert.equal(verify.code, 0, verify.stderr);
  });

  test('a rolling upgrade (to GitHub sign-in, which has a test pod) keeps both replicas on the database; helm test passes', async () => {
    helm('upgrade', 'ojpg', CHART, '-n', sysPg.name, '--reuse-values', '--wait', '--timeout', '240s', '--set', 'auth.mode=github', ...GITHUB_SIGN_IN);
    assert.equal((await podNames()).length, 2);
    const out = helm('test', 'ojpg', '-n', sysPg.name, '--logs', '--timeout', '120s');
    assert.match(out, /Phase:\s+Succeeded/);
    assert.match(out, /\/readyz 200[\s\S]*\/api\/whoami 401/);
    const runs = await db.query<{ n: string }>('select count(*) as n from runs');
    assert.ok(Number(runs.rows[0]!.n) >= 1, 'the runs made before the upgrade are still in the database');
  });
});
