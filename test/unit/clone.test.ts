// Tests of the Deployment → Job cloning rules (server/jobs/clone.ts, PRODUCT.md §2).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Deployment, V1LabelSelector, V1PodDisruptionBudget, V1Service } from '@kubernetes/client-node';
import {
  CloneError,
  chooseContainer,
  cloneJobFromDeployment,
  jobName,
  literalForKubelet,
  summarizeDeployment,
  type CloneRequest,
} from '../../server/jobs/clone.js';
import { selectorMatches } from '../../server/jobs/network-identity.js';

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
  neighbours: { services: [], budgets: [] },
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

  test('by default every pod label is kept (NetworkPolicies select them), run labels added, never Ready', () => {
    const job = cloneJobFromDeployment(deployment({ matchExpressions: true }), req());
    assert.deepEqual(job.spec?.template.metadata?.labels, {
      app: 'api',
      track: 'stable',
      team: 'payments',
      'oddjob.io/run-id': 'abc123def456',
      'oddjob.io/deployment': 'api',
    });
    assert.deepEqual(job.spec?.template.spec?.readinessGates, [{ conditionType: 'oddjob.io/serves-traffic' }]);
    assert.equal(job.metadata?.annotations?.['oddjob.io/network-identity'], 'deployment');
    assert.equal(job.metadata?.annotations?.['oddjob.io/dropped-labels'], undefined);
    assert.equal(job.spec?.template.metadata?.annotations?.['sidecar.istio.io/inject'], 'true');
  });

  test('oddjob.io/network-identity: isolated drops the selector labels (matchLabels and matchExpressions), keeps the gate', () => {
    const job = cloneJobFromDeployment(deployment({ matchExpressions: true, annotations: { 'oddjob.io/network-identity': 'isolated' } }), req());
    assert.deepEqual(job.spec?.template.metadata?.labels, { team: 'payments', 'oddjob.io/run-id': 'abc123def456', 'oddjob.io/deployment': 'api' });
    assert.deepEqual(job.spec?.template.spec?.readinessGates, [{ conditionType: 'oddjob.io/serves-traffic' }]);
    assert.equal(job.metadata?.annotations?.['oddjob.io/network-identity'], 'isolated');
    assert.match(job.metadata?.annotations?.['oddjob.io/dropped-labels'] ?? '', /^app, track: oddjob.io\/network-identity: isolated$/);
  });

  test("the template's own readiness gates are kept, ours added once", () => {
    const gatesOf = (gates: { conditionType: string }[]) => {
      const d = deployment();
      d.spec!.template.spec!.readinessGates = gates;
      return cloneJobFromDeployment(d, req()).spec!.template.spec!.readinessGates!.map((g) => g.conditionType);
    };
    assert.deepEqual(gatesOf([{ conditionType: 'target-health.elbv2.k8s.aws/api' }]), ['target-health.elbv2.k8s.aws/api', 'oddjob.io/serves-traffic']);
    assert.deepEqual(gatesOf([{ conditionType: 'oddjob.io/serves-traffic' }]), ['oddjob.io/serves-traffic']);
  });

  test('an unknown oddjob.io/network-identity refuses the run and names the choices', () => {
    assert.throws(
      () => cloneJobFromDeployment(deployment({ annotations: { 'oddjob.io/network-identity': 'keep' } }), req()),
      (err: unknown) => err instanceof CloneError && /oddjob.io\/network-identity is "keep".*deployment, isolated/.test(err.message),
    );
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
    assert.deepEqual(
      spec.initContainers!.map((c) => [c.name, c.restartPolicy]),
      [
        ['migrate', undefined],
        ['db-proxy', 'Always'],
      ],
    );
  });

  test('--no-sidecars drops them', () => {
    const spec = cloneJobFromDeployment(deployment(), req({ noSidecars: true })).spec!.template.spec!;
    assert.deepEqual(
      spec.initContainers!.map((c) => c.name),
      ['migrate'],
    );
    assert.deepEqual(
      spec.containers.map((c) => c.name),
      ['app'],
    );
  });

  test('-c picks the container; the others become sidecars', () => {
    const spec = cloneJobFromDeployment(deployment(), req({ container: 'db-proxy', command: ['psql'] })).spec!.template.spec!;
    assert.deepEqual(
      spec.containers.map((c) => [c.name, c.command]),
      [['db-proxy', ['psql']]],
    );
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
    containers: [
      { name: 'app', image: 'app:1' },
      { name: 'db-proxy', image: 'proxy:2' },
    ],
    defaultContainer: 'app',
    allowedTeams: ['acme/payments'],
    allowedUsers: [],
    maxDurationSeconds: 1800,
  });
});

describe('network identity: what else selects the kept labels', () => {
  const svc = (name: string, selector: Record<string, string> | undefined, publishNotReadyAddresses?: boolean): V1Service => ({
    metadata: { name },
    spec: { selector, publishNotReadyAddresses },
  });
  const pdb = (name: string, spec: V1PodDisruptionBudget['spec']): V1PodDisruptionBudget => ({ metadata: { name }, spec });
  const base = { app: 'api', track: 'stable', team: 'payments', 'oddjob.io/run-id': 'abc123def456', 'oddjob.io/deployment': 'api' };
  const without = (...keys: string[]) => Object.fromEntries(Object.entries(base).filter(([k]) => !keys.includes(k)));

  // [case, services, budgets, labels the run keeps, dropped-labels annotation (regex) or undefined]
  const table: [string, V1Service[], V1PodDisruptionBudget[], Record<string, string>, RegExp | undefined][] = [
    ['an ordinary Service: the gate is enough, labels kept', [svc('api', { app: 'api' })], [], base, undefined],
    [
      'publishNotReadyAddresses selecting the run: its selector keys dropped',
      [svc('peers', { app: 'api', track: 'stable' }, true)],
      [],
      without('app', 'track'),
      /^app, track: Service demo\/peers publishes not-ready addresses/,
    ],
    ['publishNotReadyAddresses not selecting the run: kept', [svc('other', { app: 'web' }, true)], [], base, undefined],
    ['publishNotReadyAddresses without a selector: kept', [svc('external', undefined, true), svc('empty', {}, true)], [], base, undefined],
    ['PDB minAvailable integer: counts pods only, kept', [], [pdb('api', { minAvailable: 1, selector: { matchLabels: { app: 'api' } } })], base, undefined],
    [
      'PDB minAvailable percentage: needs scale, dropped',
      [],
      [pdb('api', { minAvailable: '50%', selector: { matchLabels: { app: 'api' } } })],
      without('app'),
      /^app: PodDisruptionBudget demo\/api uses minAvailable: 50%.*a Job has none/,
    ],
    [
      'PDB maxUnavailable integer: needs scale, dropped',
      [],
      [pdb('api', { maxUnavailable: 1, selector: { matchLabels: { app: 'api' } } })],
      without('app'),
      /^app: PodDisruptionBudget demo\/api uses maxUnavailable: 1/,
    ],
    [
      'PDB maxUnavailable 0: still needs scale, dropped',
      [],
      [pdb('api', { maxUnavailable: 0, selector: { matchLabels: { app: 'api' } } })],
      without('app'),
      /maxUnavailable: 0/,
    ],
    [
      'PDB maxUnavailable percentage via matchExpressions In/Exists: those keys dropped',
      [],
      [
        pdb('api', {
          maxUnavailable: '25%',
          selector: {
            matchExpressions: [
              { key: 'track', operator: 'In', values: ['stable'] },
              { key: 'team', operator: 'Exists' },
              { key: 'canary', operator: 'DoesNotExist' },
            ],
          },
        }),
      ],
      without('track', 'team'),
      /^track, team: PodDisruptionBudget demo\/api uses maxUnavailable: 25%/,
    ],
    ['PDB that does not select the run: kept', [], [pdb('web', { maxUnavailable: 1, selector: { matchLabels: { app: 'web' } } })], base, undefined],
    ['PDB with no selector selects nothing: kept', [], [pdb('none', { maxUnavailable: 1 })], base, undefined],
    [
      'both at once: each drop recorded',
      [svc('peers', { team: 'payments' }, true)],
      [pdb('api', { maxUnavailable: 1, selector: { matchLabels: { app: 'api' } } })],
      without('app', 'team'),
      /^team: Service demo\/peers.*; app: PodDisruptionBudget demo\/api/,
    ],
  ];
  for (const [name, services, budgets, labels, dropped] of table) {
    test(name, () => {
      const job = cloneJobFromDeployment(deployment(), req({ neighbours: { services, budgets } }));
      assert.deepEqual(job.spec?.template.metadata?.labels, labels);
      const note = job.metadata?.annotations?.['oddjob.io/dropped-labels'];
      if (dropped) assert.match(note ?? '', dropped);
      else assert.equal(note, undefined);
      assert.deepEqual(job.spec?.template.spec?.readinessGates, [{ conditionType: 'oddjob.io/serves-traffic' }]);
    });
  }

  test('a drop that makes a DoesNotExist selector match is caught too', () => {
    // Dropping `team` for the Service makes the budget (team DoesNotExist, app In) match: app goes as well.
    const budgets = [
      pdb('no-team', {
        maxUnavailable: 1,
        selector: {
          matchExpressions: [
            { key: 'team', operator: 'DoesNotExist' },
            { key: 'app', operator: 'In', values: ['api'] },
          ],
        },
      }),
    ];
    const job = cloneJobFromDeployment(deployment(), req({ neighbours: { services: [svc('peers', { team: 'payments' }, true)], budgets } }));
    assert.deepEqual(job.spec?.template.metadata?.labels, without('team', 'app'));
  });

  test('a budget that selects the run whatever it drops refuses the run, saying how to fix it', () => {
    for (const selector of [{}, { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['db'] }] }]) {
      assert.throws(
        () => cloneJobFromDeployment(deployment(), req({ neighbours: { services: [], budgets: [pdb('all', { maxUnavailable: 1, selector })] } })),
        (err: unknown) =>
          err instanceof CloneError &&
          /PodDisruptionBudget demo\/all uses maxUnavailable: 1.*matches the run whatever labels it drops.*integer minAvailable/.test(err.message),
      );
    }
  });

  test('isolated still avoids budgets that select non-selector labels', () => {
    const d = deployment({ annotations: { 'oddjob.io/network-identity': 'isolated' } });
    const job = cloneJobFromDeployment(
      d,
      req({ neighbours: { services: [], budgets: [pdb('team', { maxUnavailable: 1, selector: { matchLabels: { team: 'payments' } } })] } }),
    );
    assert.deepEqual(job.spec?.template.metadata?.labels, without('app', 'team'));
  });
});

describe('selectorMatches', () => {
  const labels = { app: 'api', track: 'stable' };
  const table: [string, V1LabelSelector | undefined, boolean][] = [
    ['absent selects nothing', undefined, false],
    ['empty selects everything', {}, true],
    ['matchLabels equal', { matchLabels: { app: 'api' } }, true],
    ['matchLabels differ', { matchLabels: { app: 'web' } }, false],
    ['In', { matchExpressions: [{ key: 'track', operator: 'In', values: ['canary', 'stable'] }] }, true],
    ['In, label absent', { matchExpressions: [{ key: 'tier', operator: 'In', values: ['db'] }] }, false],
    ['NotIn, label absent', { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['db'] }] }, true],
    ['NotIn, value listed', { matchExpressions: [{ key: 'track', operator: 'NotIn', values: ['stable'] }] }, false],
    ['Exists', { matchExpressions: [{ key: 'app', operator: 'Exists' }] }, true],
    ['DoesNotExist', { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, false],
    ['unknown operator matches nothing', { matchExpressions: [{ key: 'app', operator: 'Gt' }] }, false],
  ];
  for (const [name, selector, want] of table) test(name, () => assert.equal(selectorMatches(selector, labels), want));
});

describe('literalForKubelet: the kubelet hands the program the text as written', () => {
  // What the kubelet does to a container command (k8s.io/kubernetes third_party/forked/golang/expansion):
  // `$$` → `$`, `$(NAME)` → the variable when defined, anything else unchanged.
  const kubelet = (s: string, env: Record<string, string>) =>
    s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name?: string) => (m === '$$' ? '$' : name !== undefined && name in env ? env[name]! : m));
  const env = { API_KEY: 'secret', HOME: '/root' };
  for (const typed of ['$(API_KEY)', '$$', '$$$', 'a$b', '$(', '$(HOME)/x', '$$(API_KEY)', 'no dollars', '', '$']) {
    test(JSON.stringify(typed), () => {
      assert.equal(kubelet(literalForKubelet(typed), env), typed);
    });
  }
  test('unescaped, the kubelet would have changed them (the table is not vacuous)', () => {
    assert.notEqual(kubelet('$(API_KEY)', env), '$(API_KEY)');
    assert.notEqual(kubelet('$$', env), '$$');
  });
});
