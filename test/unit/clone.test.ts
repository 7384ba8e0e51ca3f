// Tests of the Deployment → Job cloning rules (server/jobs/clone.ts, PRODUCT.md §2).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Deployment } from '@kubernetes/client-node';
import { CloneError, chooseContainer, cloneJobFromDeployment, jobName, summarizeDeployment, type CloneRequest } from '../../server/jobs/clone.js';

function deployment(over: { name?: string; annotations?: Record<string, string>; matchExpressions?: boolean } = {}): V1Deployment {
  return {
    metadata: { name: over.name ?? 'api', namespace: 'demo', annotations: over.annotations ?? {} },
    spec: {
      selector: {
        matchLabels: { app: 'api' },
        ...(over.matchExpressions ? { matchExpressions: [{ key: 'track', operator: 'In', values: ['stable'] }] } : {}),
      },
      template: {
        metadata: { labels: { app: 'api', track: 'stable', team: 'payments' }, annotations: { 'sidecar.istio.io/inject': 'true' } },
        spec: {
          serviceAccountName: 'api-sa',
          imagePullSecrets: [{ name: 'regcred' }],
          nodeSelector: { pool: 'general' },
          tolerations: [{ key: 'dedicated', operator: 'Exists' }],
          securityContext: { runAsNonRoot: true },
          volumes: [{ name: 'cfg', configMap: { name: 'api-config' } }],
          initContainers: [{ name: 'migrate', image: 'app:1', command: ['migrate'] }],
          containers: [
            {
              name: 'app',
              image: 'app:1',
              command: ['node', 'server.js'],
              args: ['--port', '8080'],
              env: [{ name: 'DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } }],
              envFrom: [{ configMapRef: { name: 'api-env' } }],
              volumeMounts: [{ name: 'cfg', mountPath: '/etc/app' }],
              ports: [{ containerPort: 8080 }],
              livenessProbe: { httpGet: { path: '/healthz', port: 8080 } },
              readinessProbe: { httpGet: { path: '/ready', port: 8080 } },
              startupProbe: { httpGet: { path: '/healthz', port: 8080 } },
              resources: { limits: { memory: '256Mi' } },
            },
            { name: 'db-proxy', image: 'proxy:2', ports: [{ containerPort: 5432 }] },
          ],
        },
      },
    },
  };
}

const req = (over: Partial<CloneRequest> = {}): CloneRequest => ({
  runId: 'abc123def456',
  user: 'alice',
  command: ['node', 'scripts/backfill.js', '--since', "it's; $(rm -rf /)"],
  reason: 'INC-1',
  interactive: false,
  tty: false,
  noSidecars: false,
  activeDeadlineSeconds: 1800,
  ttlSecondsAfterFinished: 3600,
  ...over,
});

describe('cloneJobFromDeployment', () => {
  test('job metadata and spec', () => {
    const job = cloneJobFromDeployment(deployment(), req());
    assert.equal(job.metadata?.name, 'api-oddjob-abc123def456');
    assert.equal(job.metadata?.namespace, 'demo');
    assert.equal(job.metadata?.ownerReferences, undefined);
    assert.deepEqual(job.metadata?.labels, { 'app.kubernetes.io/managed-by': 'oddjob', 'oddjob.io/run-id': 'abc123def456', 'oddjob.io/deployment': 'api' });
    assert.equal(job.metadata?.annotations?.['oddjob.io/user'], 'alice');
    assert.deepEqual(JSON.parse(job.metadata!.annotations!['oddjob.io/command']!), req().command);
    assert.equal(job.metadata?.annotations?.['oddjob.io/reason'], 'INC-1');
    assert.equal(job.spec?.backoffLimit, 0);
    assert.equal(job.spec?.activeDeadlineSeconds, 1800);
    assert.equal(job.spec?.ttlSecondsAfterFinished, 3600);
    assert.equal(job.spec?.template.spec?.restartPolicy, 'Never');
  });

  test('selector labels removed (matchLabels and matchExpressions), others kept, run labels added', () => {
    const job = cloneJobFromDeployment(deployment({ matchExpressions: true }), req());
    assert.deepEqual(job.spec?.template.metadata?.labels, { team: 'payments', 'oddjob.io/run-id': 'abc123def456', 'oddjob.io/deployment': 'api' });
    assert.equal(job.spec?.template.metadata?.annotations?.['sidecar.istio.io/inject'], 'true');
  });

  test('target container: argv as command (never a shell), args, probes and ports gone, the rest kept', () => {
    const job = cloneJobFromDeployment(deployment(), req());
    const [main, ...rest] = job.spec!.template.spec!.containers;
    assert.equal(rest.length, 0);
    assert.deepEqual(main!.command, req().command);
    for (const k of ['args', 'livenessProbe', 'readinessProbe', 'startupProbe', 'ports', 'stdin', 'tty'] as const) assert.equal(main![k], undefined, k);
    assert.deepEqual(main!.env, deployment().spec!.template.spec!.containers[0]!.env);
    assert.deepEqual(main!.envFrom, [{ configMapRef: { name: 'api-env' } }]);
    assert.deepEqual(main!.volumeMounts, [{ name: 'cfg', mountPath: '/etc/app' }]);
    assert.deepEqual(main!.resources, { limits: { memory: '256Mi' } });
    const spec = job.spec!.template.spec!;
    assert.equal(spec.serviceAccountName, 'api-sa');
    assert.deepEqual(spec.imagePullSecrets, [{ name: 'regcred' }]);
    assert.deepEqual(spec.nodeSelector, { pool: 'general' });
    assert.deepEqual(spec.tolerations, [{ key: 'dedicated', operator: 'Exists' }]);
    assert.deepEqual(spec.securityContext, { runAsNonRoot: true });
    assert.deepEqual(spec.volumes, [{ name: 'cfg', configMap: { name: 'api-config' } }]);
  });

  test('other containers become native sidecars after the existing init containers', () => {
    const spec = cloneJobFromDeployment(deployment(), req()).spec!.template.spec!;
    assert.deepEqual(spec.initContainers!.map((c) => [c.name, c.restartPolicy]), [['migrate', undefined], ['db-proxy', 'Always']]);
  });

  test('--no-sidecars drops them', () => {
    const spec = cloneJobFromDeployment(deployment(), req({ noSidecars: true })).spec!.template.spec!;
    assert.deepEqual(spec.initContainers!.map((c) => c.name), ['migrate']);
    assert.deepEqual(spec.containers.map((c) => c.name), ['app']);
  });

  test('-c picks the container; the others become sidecars', () => {
    const spec = cloneJobFromDeployment(deployment(), req({ container: 'db-proxy', command: ['psql'] })).spec!.template.spec!;
    assert.deepEqual(spec.containers.map((c) => [c.name, c.command]), [['db-proxy', ['psql']]]);
    assert.equal(spec.initContainers!.find((c) => c.name === 'app')?.restartPolicy, 'Always');
  });

  test('-it sets stdin, stdinOnce and tty; -t alone is refused', () => {
    const main = cloneJobFromDeployment(deployment(), req({ interactive: true, tty: true })).spec!.template.spec!.containers[0]!;
    assert.deepEqual([main.stdin, main.stdinOnce, main.tty], [true, true, true]);
    assert.throws(() => cloneJobFromDeployment(deployment(), req({ tty: true })), CloneError);
  });

  test('the input deployment is not mutated', () => {
    const d = deployment();
    const before = structuredClone(d);
    cloneJobFromDeployment(d, req());
    assert.deepEqual(d, before);
  });

  test('long deployment names keep the job name within 63 characters', () => {
    const name = 'a-very-long-deployment-name-that-goes-on-and-on-and-on-forever-x';
    const job = cloneJobFromDeployment(deployment({ name }), req());
    assert.ok(job.metadata!.name!.length <= 63);
    assert.ok(job.metadata!.name!.endsWith('-oddjob-abc123def456'));
    assert.equal(jobName('abc-'.repeat(20), 'abc123def456').includes('--'), false);
  });
});

describe('chooseContainer', () => {
  test('order: -c, oddjob.io/default-container, kubectl default-container, first', () => {
    assert.equal(chooseContainer(deployment(), 'db-proxy'), 'db-proxy');
    assert.equal(chooseContainer(deployment({ annotations: { 'oddjob.io/default-container': 'db-proxy' } })), 'db-proxy');
    assert.equal(chooseContainer(deployment({ annotations: { 'kubectl.kubernetes.io/default-container': 'db-proxy' } })), 'db-proxy');
    assert.equal(chooseContainer(deployment()), 'app');
  });
  test('an unknown container lists the available ones', () => {
    assert.throws(() => chooseContainer(deployment(), 'nope'), /-c names container "nope", but deployment demo\/api has only: app, db-proxy/);
  });
});

test('summarizeDeployment', () => {
  const s = summarizeDeployment(deployment({ annotations: { 'oddjob.io/allowed-teams': 'payments', 'oddjob.io/max-duration': '30m' } }), 'acme');
  assert.deepEqual(s, {
    namespace: 'demo',
    name: 'api',
    containers: [{ name: 'app', image: 'app:1' }, { name: 'db-proxy', image: 'proxy:2' }],
    defaultContainer: 'app',
    allowedTeams: ['acme/payments'],
    allowedUsers: [],
    maxDurationSeconds: 1800,
  });
});
