// Tasks on the real cluster with the real CRD (charts/oddjob/crds), through the real
// server in GitHub mode (fake GitHub, several people) and the real CLI. Proves that:
//  - a Task with each parameter type runs with the argv its values make, each value one
//    element (a shell line, $(VAR) references and newlines stay literal);
//  - wrong types, missing required values, pattern and choice misses are refused before
//    anything runs, with a message naming the parameter;
//  - the API server's own validation (CEL) refuses what it can; what it cannot is reported
//    by oddjob in status.conditions (Ready=False, with the reason) and never runs;
//  - a person not allowed on the Task is refused, and the refusal is audited;
//  - the audit records the Task, its metadata.generation and the resolved argv;
//  - the Task's timeout is capped by the Deployment's max-duration;
//  - editing the Task changes the next run, not the one already running.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, eventually, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { FakeGitHub } from '../support/fake-github.js';
import { deviceToken, startGitHubServer } from '../support/github-signin.js';
import { runCli, type CliResult, type ServerProcess } from '../support/oddjob.js';
import { freePort } from '../support/net.js';

let cluster: TestCluster;
let custom: k8s.CustomObjectsApi;
let ns: { name: string; dispose: () => Promise<void> };
let gh: FakeGitHub;
let server: ServerProcess;
const tokens: Record<string, string> = {};

const group = { group: 'oddjob.io', version: 'v1alpha1', plural: 'tasks' };
/** node prints its argv (after -e's code) as JSON: the exact elements the program received. */
const PRINT_ARGV = ['node', '-e', 'console.log(JSON.stringify(process.argv.slice(1)))', '--'];

function task(name: string, spec: Record<string, unknown>) {
  return { apiVersion: 'oddjob.io/v1alpha1', kind: 'Task', metadata: { name, namespace: ns.name }, spec: { deployment: 'api', ...spec } };
}
async function createTask(name: string, spec: Record<string, unknown>) {
  return custom.createNamespacedCustomObject({ ...group, namespace: ns.name, body: task(name, spec) });
}
async function readTask(name: string): Promise<{
  metadata: { generation: number };
  status?: { conditions?: Array<{ type: string; status: string; reason: string; message: string; observedGeneration?: number }> };
}> {
  return custom.getNamespacedCustomObject({ ...group, namespace: ns.name, name });
}

function cli(as: string, args: string[]): Promise<CliResult> {
  return runCli(args, { server: server.url, env: { ODDJOB_TOKEN: tokens[as] } });
}
const run = (as: string, args: string[]) => cli(as, ['run', '-n', ns.name, ...args]);
const argvOf = (r: CliResult) => JSON.parse(r.stdout.toString().trim().split('\n').at(-1)!) as string[];

async function auditOf(as: string, query: string) {
  const res = await fetch(`${server.url}/api/audit?${query}`, { headers: { authorization: `Bearer ${tokens[as]}` } });
  assert.equal(res.status, 200);
  return ((await res.json()) as { items: Array<Record<string, unknown>> }).items;
}

before(async () => {
  cluster = await requireCluster();
  custom = cluster.kc.makeApiClient(k8s.CustomObjectsApi);
  await cluster.kc
    .makeApiClient(k8s.ApiextensionsV1Api)
    .readCustomResourceDefinition({ name: 'tasks.oddjob.io' })
    .catch(() => {
      throw new Error(
        'the Task CRD is not installed in the test cluster: kubectl apply -f charts/oddjob/crds/tasks.oddjob.io.yaml (npm run cluster:up does it)',
      );
    });
  ns = await createTestNamespace(cluster, 'tasks');
  await cluster.apps.createNamespacedDeployment({
    namespace: ns.name,
    body: optedInDeployment('api', { 'oddjob.io/allowed-teams': 'acme/payments', 'oddjob.io/allowed-users': 'bob', 'oddjob.io/max-duration': '30m' }),
  });
  await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: optedInDeployment('closed', {}) });
  gh = await new FakeGitHub().start();
  gh.addUser('alice', ['acme/payments']);
  gh.addUser('bob', [], ['acme']);
  gh.addUser('dave', ['acme/web']);
  gh.addUser('erin', ['acme/security']);
  const dir = mkdtempSync(join(tmpdir(), 'oddjob-tasks-'));
  const port = await freePort();
  server = await startGitHubServer({
    port,
    gh,
    dir,
    namespaces: [ns.name],
    kubeconfig: cluster.kubeconfigPath,
    extra: ['--auditors', 'acme/security', '--auth-rate-limit', '1000', '--start-timeout', '60s'],
  });
  for (const who of ['alice', 'bob', 'dave', 'erin']) tokens[who] = await deviceToken(server.url, gh, who);
});

after(async () => {
  await server?.kill();
  await gh?.stop();
  await ns?.dispose();
});

describe('a Task with every parameter type', () => {
  before(async () => {
    await createTask('argv', {
      description: 'prints its argv',
      command: [
        ...PRINT_ARGV,
        '--merchant',
        '$(params.merchant)',
        '--dry-run=$(params.dryRun)',
        '--batch=$(params.batch)',
        '$(params.region)',
        '$(params.note)',
      ],
      params: [
        { name: 'merchant', type: 'string', required: true, pattern: '^m_[a-z0-9]{8}$' },
        { name: 'dryRun', type: 'boolean', default: true },
        { name: 'batch', type: 'integer', min: 1, max: 1000, default: 100 },
        { name: 'region', type: 'choice', choices: ['eu', 'us'], default: 'eu' },
        { name: 'note', type: 'string', default: 'none' },
      ],
      timeout: '2h',
    });
    await eventually('task argv to be Ready', async () => (await readTask('argv')).status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True');
  });

  test('oddjob tasks lists it, with its parameters, to those who may run it', async () => {
    const listed = await cli('alice', ['tasks', '-n', ns.name, '-o', 'json']);
    assert.equal(listed.code, 0, listed.stderr);
    const doc = JSON.parse(listed.stdout.toString());
    assert.equal(doc.kind, 'TaskList');
    const t = doc.items.find((i: { name: string }) => i.name === 'argv');
    assert.ok(t, listed.stdout.toString());
    assert.deepEqual(
      t.params.map((p: { name: string; type: string }) => `${p.name}:${p.type}`),
      ['merchant:string', 'dryRun:boolean', 'batch:integer', 'region:choice', 'note:string'],
    );
    assert.equal(t.ready, true);
    const table = await cli('alice', ['tasks', '-n', ns.name]);
    assert.match(table.stdout.toString(), /argv\s+api\s+merchant:string! dryRun:boolean=true batch:integer=100 region:eu\|us=eu/);
    assert.equal((await cli('alice', ['tasks', '-n', ns.name, '-o', 'name'])).stdout.toString().includes('task.oddjob.io/argv\n'), true);
    const dave = await cli('dave', ['tasks', '-n', ns.name, '-o', 'json']);
    assert.deepEqual(JSON.parse(dave.stdout.toString()).items, []);
  });

  test('defaults and given values of each type become the argv', async () => {
    const r = await run('alice', ['task/argv', '--param', 'merchant=m_12345678', '--param', 'batch=5', '--param', 'dryRun=false', '-p', 'region=us']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(argvOf(r), ['--merchant', 'm_12345678', '--dry-run=false', '--batch=5', 'us', 'none']);
    const d = await run('alice', ['ojtask/argv', '-p', 'merchant=m_abcdefgh']);
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual(argvOf(d), ['--merchant', 'm_abcdefgh', '--dry-run=true', '--batch=100', 'eu', 'none']);
  });

  test('a hostile value is one literal argument: no shell, no $(VAR) expansion', async () => {
    for (const value of ['x; rm -rf /', '$(HOSTNAME) `id` $HOME', 'line one\nline two', '$(params.merchant)']) {
      const r = await run('alice', ['task/argv', '-p', 'merchant=m_12345678', '-p', `note=${value}`]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(argvOf(r).at(-1), value, `the value ${JSON.stringify(value)}`);
      assert.equal(argvOf(r).length, 6);
    }
  });

  const refusals: Array<[string, string[], RegExp]> = [
    ['a missing required value', [], /parameter merchant is required/],
    ['a value failing the pattern', ['-p', 'merchant=x; rm -rf /'], /parameter merchant: must match \^m_\[a-z0-9\]\{8\}\$/],
    ['a non-integer', ['-p', 'merchant=m_12345678', '-p', 'batch=ten'], /parameter batch: must be a whole number, got "ten"/],
    ['an integer out of range', ['-p', 'merchant=m_12345678', '-p', 'batch=1001'], /parameter batch: must be between 1 and 1000/],
    ['a non-boolean', ['-p', 'merchant=m_12345678', '-p', 'dryRun=maybe'], /parameter dryRun: must be true or false/],
    ['a value outside the choices', ['-p', 'merchant=m_12345678', '-p', 'region=ap'], /parameter region: must be one of eu, us, got "ap"/],
    ['an unknown parameter', ['-p', 'merchant=m_12345678', '-p', 'merchnat=x'], /parameter merchnat: this Task has no such parameter/],
  ];
  for (const [name, args, message] of refusals) {
    test(`refused before anything runs: ${name}`, async () => {
      const jobsBefore = (await cluster.batch.listNamespacedJob({ namespace: ns.name })).items.length;
      const r = await run('alice', ['task/argv', ...args]);
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, message);
      assert.equal((await cluster.batch.listNamespacedJob({ namespace: ns.name })).items.length, jobsBefore, 'no Job was created');
    });
  }

  test("the Task's timeout is capped by the Deployment's max-duration", async () => {
    const r = await run('alice', ['task/argv', '-p', 'merchant=m_12345678', '--detach']);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.toString().trim();
    const job = await cluster.batch.readNamespacedJob({ namespace: ns.name, name: `api-oddjob-${id}` });
    assert.equal(job.spec?.activeDeadlineSeconds, 1800);
    assert.equal(job.metadata?.annotations?.['oddjob.io/task'], 'argv');
    assert.equal(job.metadata?.annotations?.['oddjob.io/task-generation'], '1');
    const logs = await cli('alice', ['logs', id, '-f']);
    assert.equal(logs.code, 0, logs.stderr);
  });

  test('the audit records the Task, its generation and the resolved argv', async () => {
    const events = await auditOf('alice', 'type=run.requested&limit=50');
    const e = events.find((x) => x.task === 'argv' && (x.command as string[]).includes('m_abcdefgh'));
    assert.ok(e, JSON.stringify(events.slice(0, 3)));
    assert.equal(e.taskGeneration, 1);
    assert.deepEqual(e.command, [...PRINT_ARGV, '--merchant', 'm_abcdefgh', '--dry-run=true', '--batch=100', 'eu', 'none']);
    assert.equal(e.deployment, 'api');
  });

  test('a person not allowed on the Task is refused, and the refusal is audited', async () => {
    await createTask('leads-only', { command: ['node', '-e', '1'], allowedUsers: ['bob'] });
    // dave may not run in the Deployment; alice may, but the Task names only bob.
    for (const who of ['dave', 'alice']) {
      const r = await run(who, ['task/leads-only']);
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, new RegExp(`you \\(${who}\\) are not in any allowed team or the allowed users of ${ns.name}/task leads-only`));
    }
    const ok = await run('bob', ['task/leads-only']);
    assert.equal(ok.code, 0, ok.stderr);
    const denials = await auditOf('erin', `type=run.denied&namespace=${ns.name}&limit=50`);
    assert.deepEqual(new Set(denials.filter((d) => d.task === 'leads-only').map((d) => (d.actor as { login: string }).login)), new Set(['dave', 'alice']));
  });

  test('a Task on a Deployment that has not opted in cannot run, whatever the Task says', async () => {
    await createTask('sneaky', { deployment: 'closed', command: ['node', '-e', '1'], allowedUsers: ['alice'] });
    const r = await run('alice', ['task/sneaky']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /task .*\/sneaky cannot run: deployment .*\/closed has not opted in to oddjob/);
  });

  test("a scheduled Task's own lists decide who sees, suspends and resumes its schedule; a refusal is a 403, audited", async () => {
    // A slot on 1 January at 03:00: it never fires while this runs.
    await createTask('leads-nightly', { command: ['node', '-e', '1'], allowedUsers: ['bob'], schedule: { cron: '0 3 1 1 *', timeZone: 'UTC' } });
    const listed = async (who: string) => {
      const r = await cli(who, ['schedules', '-n', ns.name, '--json']);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.toString();
    };
    await eventually('bob to see the schedule', async () => (await listed('bob')).includes('"task":"leads-nightly"'), 30_000);
    // alice may run in the Deployment (team acme/payments), but the Task names only bob.
    assert.doesNotMatch(await listed('alice'), /leads-nightly/);
    const refused = await cli('alice', ['suspend', 'task/leads-nightly', '-n', ns.name, '--reason', 'not mine']);
    assert.notEqual(refused.code, 0);
    assert.match(
      refused.stderr,
      new RegExp(
        `you may not suspend the schedule of task ${ns.name}/leads-nightly: you \\(alice\\) are not in any allowed team or the allowed users of ${ns.name}/task leads-nightly`,
      ),
    );
    assert.match(refused.stderr, /allowedUsers or allowedTeams/);
    // The HTTP answer itself: a 403 with the same words. An auditor sees the schedule but may not change it.
    for (const who of ['alice', 'erin']) {
      const res = await fetch(`${server.url}/api/schedules/${ns.name}/leads-nightly/resume`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens[who]}`, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(res.status, 403, `${who}: ${await res.clone().text()}`);
      const { error } = (await res.json()) as { error: { message: string } };
      assert.match(error.message, new RegExp(`you may not resume the schedule of task ${ns.name}/leads-nightly: you \\(${who}\\)`));
    }
    assert.match(await listed('erin'), /"task":"leads-nightly"[^\n]*"mayChange":false/);
    const denials = (await auditOf('erin', `type=run.denied&namespace=${ns.name}&limit=50`)).filter((d) => d.task === 'leads-nightly');
    assert.deepEqual(denials.map((d) => `${(d.actor as { login: string }).login}: ${(d.message as string).split(':')[0]}`).sort(), [
      `alice: you may not resume the schedule of task ${ns.name}/leads-nightly`,
      `alice: you may not suspend the schedule of task ${ns.name}/leads-nightly`,
      `erin: you may not resume the schedule of task ${ns.name}/leads-nightly`,
    ]);
    assert.equal(denials.find((d) => (d.message as string).includes('suspend'))!.reason, 'not mine');
    // bob, whom the Task names, may (though the Deployment does not list him by team).
    const ok = await cli('bob', ['suspend', 'task/leads-nightly', '-n', ns.name, '--reason', 'INC-7 hold']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(await listed('bob'), /"suspension":\{[^}]*"by":"bob","reason":"INC-7 hold"/);
    assert.equal((await cli('bob', ['resume', 'task/leads-nightly', '-n', ns.name])).code, 0);
  });
});

describe('validity', () => {
  test('the API server refuses what the CRD can check (CEL and OpenAPI)', async () => {
    const refused = async (spec: Record<string, unknown>) => {
      const err = await createTask('refused', spec).then(
        () => undefined,
        (e: unknown) => e as { code?: number; body?: string },
      );
      assert.equal(err?.code, 422, `expected 422 for ${JSON.stringify(spec)}`);
      return String(err?.body);
    };
    assert.match(await refused({ command: ['x'], params: [{ name: 'r', type: 'choice' }] }), /a choice parameter needs choices/);
    assert.match(await refused({ command: ['x'], params: [{ name: 'n', type: 'integer', min: 5, max: 1 }] }), /min must not be above max/);
    assert.match(await refused({ command: ['x'], params: [{ name: 'n', type: 'float' }] }), /Unsupported value: \\"float\\"/);
    assert.match(
      await refused({
        command: ['x'],
        params: [
          { name: 'a', type: 'string' },
          { name: 'a', type: 'string' },
        ],
      }),
      /Duplicate value/,
    );
    assert.match(await refused({ command: [''] }), /the first element \(the program\) must not be empty/);
  });

  test('what only oddjob can check is reported in status.conditions, and the Task does not run', async () => {
    await createTask('broken', {
      command: ['node', '$(params.missing)', '$(params.p)'],
      params: [{ name: 'p', type: 'string', pattern: '([unclosed' }],
    });
    const cond = await eventually('task broken to report Ready=False', async () => {
      const c = (await readTask('broken')).status?.conditions?.find((x) => x.type === 'Ready');
      return c?.status === 'False' ? c : undefined;
    });
    assert.equal(cond.reason, 'InvalidSpec');
    assert.match(cond.message, /spec\.command\[1\]: refers to \$\(params\.missing\), which is not declared/);
    assert.match(cond.message, /pattern "\(\[unclosed" is not a valid regular expression/);
    assert.equal(cond.observedGeneration, 1);
    const r = await run('alice', ['task/broken']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /task .*\/broken is not valid, so it cannot run: .*spec\.command\[1\]/);
    // Fixed, it becomes Ready for the new generation.
    await custom.patchNamespacedCustomObject(
      {
        ...group,
        namespace: ns.name,
        name: 'broken',
        body: [
          { op: 'replace', path: '/spec/command', value: ['node', '-e', '1'] },
          { op: 'remove', path: '/spec/params/0/pattern' },
        ],
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    await eventually('task broken to become Ready', async () => {
      const c = (await readTask('broken')).status?.conditions?.find((x) => x.type === 'Ready');
      return c?.status === 'True' && c.observedGeneration === 2;
    });
    const listed = JSON.parse((await cli('alice', ['tasks', '-n', ns.name, '-o', 'json'])).stdout.toString());
    assert.equal(listed.items.find((t: { name: string }) => t.name === 'broken').ready, true);
  });
});

test('editing the Task changes the next run, not the one already running', async () => {
  // Prints its argv once it has slept: a run started before the edit must still print generation 1's.
  const sleepy = (label: string) => ({
    command: ['node', '-e', 'setTimeout(() => console.log(JSON.stringify(process.argv.slice(1))), 4000)', label, '$(params.v)'],
    params: [{ name: 'v', type: 'string', default: 'x' }],
  });
  await createTask('evolving', sleepy('first'));
  const started = await run('alice', ['task/evolving', '--detach']);
  assert.equal(started.code, 0, started.stderr);
  const firstId = started.stdout.toString().trim();
  await eventually('the first run to be running', async () => {
    const res = await fetch(`${server.url}/api/runs/${firstId}`, { headers: { authorization: `Bearer ${tokens.alice}` } });
    return ((await res.json()) as { status: string }).status === 'running';
  });
  await custom.patchNamespacedCustomObject(
    { ...group, namespace: ns.name, name: 'evolving', body: [{ op: 'replace', path: '/spec/command/3', value: 'second' }] },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
  );
  assert.equal((await readTask('evolving')).metadata.generation, 2);
  const second = await run('alice', ['task/evolving']);
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(argvOf(second), ['second', 'x']);
  const first = await cli('alice', ['logs', firstId, '-f']);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(argvOf(first), ['first', 'x']);
  const runs = (await auditOf('alice', 'type=run.requested&limit=100')).filter((e) => e.task === 'evolving');
  assert.deepEqual(runs.map((e) => e.taskGeneration).sort(), [1, 2]);
});
