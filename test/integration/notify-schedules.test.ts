// Schedule notifications end to end: a real oddjob server process (the scheduler as
// server/main.ts wires it: createSchedules, the Lease, the Deployment's oddjob.io/notify
// through notifyTargets, the outbox in the audit append), real every-minute Task objects
// on the real cluster, and a Standard Webhooks receiver that verifies every request with
// the `standardwebhooks` library. One minute boundary serves every case:
//   the server sees the Tasks, is SIGKILLed before the next slot S, and is started
//   again once S is past `late`'s startingDeadline. Meanwhile `gone`'s Deployment
//   withdraws its consent. On restart, S is
//   - schedule.missed for `late` (startingDeadline 10s: too late to start);
//   - schedule.denied for `gone` (no deadline, so it is launched late, and refused);
//   - schedule.failed for `typo` (its Deployment's oddjob.io/network-identity is
//     misspelt, so oddjob cannot build the Job);
//   - run.failed for `refused`'s run (its pods carry a `job-name` label, so the API
//     server rejects every Job made from them: 422).
// Each arrives once, signed, with the Task, namespace, Deployment, slot and why. The
// rejected Job's run was recorded before the refusal: that slot has a run, which failed,
// and is told once, as the run's run.failed (not a second time as schedule.failed).
// The webhook secret is in neither server's log.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, eventually, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { startServerProcess, type ServerProcess } from '../support/oddjob.js';
import { slotRunId } from '../../server/schedules/names.js';
import { applyTaskCrd, createTask } from '../support/task-crd.js';
import { WebhookReceiver, newWebhookSecret, type ReceivedWebhook } from '../support/webhook-receiver.js';

const SECRET = newWebhookSecret();
const TASK = { group: 'oddjob.io', version: 'v1alpha1', plural: 'tasks' };
const ALLOW = { 'oddjob.io/allowed-users': 'alice', 'oddjob.io/notify': 'hooks' };
const TASKS = ['late', 'gone', 'typo', 'refused'] as const;

let cluster: TestCluster;
let custom: k8s.CustomObjectsApi;
let ns: { name: string; dispose: () => Promise<void> };
let receiver: WebhookReceiver;
let server: ServerProcess | undefined;
let dir: string;
let logs = '';
/** The slot the server was down for. */
let slot: string;

function start(): Promise<ServerProcess> {
  return startServerProcess(
    [
      ...['--auth', 'dev', '--dev-user', 'alice', '--namespaces', ns.name, '--kubeconfig', cluster.kubeconfigPath],
      ...['--db', join(dir, 'audit.db'), '--notifications', join(dir, 'notifications.yaml')],
      // A killed leader's Lease is taken over within seconds, not the default 15 s.
      ...['--leader-lease', 'notify-schedules', '--leader-lease-namespace', ns.name],
      ...['--leader-lease-duration', '4s', '--leader-renew-deadline', '3s', '--leader-retry-period', '1s'],
    ],
    { POD_NAME: '' },
  );
}

const leads = async (s: ServerProcess) => {
  const leases = cluster.kc.makeApiClient(k8s.CoordinationV1Api);
  await eventually(
    'the server to lead',
    async () =>
      (await leases.readNamespacedLease({ name: 'notify-schedules', namespace: ns.name }).catch(() => undefined))?.spec?.holderIdentity ===
      `${hostname()}_${s.proc.pid}`,
    30_000,
  );
};

const sleepUntil = (ms: number) => new Promise((res) => setTimeout(res, Math.max(0, ms - Date.now())));

/**
 * The schedule events the receiver verified for one Task's slot `slot`: by the documented
 * actor (schedule:NAMESPACE/TASK) and the slot named in the message, so events without
 * the body's `schedule` field are counted too. A later slot (the test running long) is not.
 */
const of = (task: string) =>
  receiver.received.filter(
    (w) => w.body.type.startsWith('schedule.') && w.body.data.actor === `schedule:${ns.name}/${task}` && String(w.body.data.message).includes(slot),
  );
const ofRun = (id: string) => receiver.received.filter((w) => w.body.data.run?.id === id);
const ref = (name: string) => ({ namespace: ns.name, name });
const schedule = (w: ReceivedWebhook) => w.body.data.schedule as { task: string; slots: string[]; reason?: string };

before(async () => {
  cluster = await requireCluster();
  custom = cluster.kc.makeApiClient(k8s.CustomObjectsApi);
  await applyTaskCrd(cluster);
  ns = await createTestNamespace(cluster, 'notify-sched');
  const deploy = (body: k8s.V1Deployment) => cluster.apps.createNamespacedDeployment({ namespace: ns.name, body });
  await deploy(optedInDeployment('api', ALLOW));
  await deploy(optedInDeployment('owned', ALLOW));
  await deploy(optedInDeployment('misspelt', { ...ALLOW, 'oddjob.io/network-identity': 'isolatd' }));
  const labelled = optedInDeployment('labelled', ALLOW);
  labelled.spec!.template.metadata!.labels!['job-name'] = 'nightly-report';
  await deploy(labelled);
  const task = (name: string, deployment: string, schedule: Record<string, unknown> = {}) =>
    createTask(cluster, ns.name, name, { deployment, command: ['true'], schedule: { cron: '* * * * *', timeZone: 'UTC', ...schedule } });
  await task('late', 'api', { startingDeadline: '10s' });
  await task('gone', 'owned');
  await task('typo', 'misspelt');
  await task('refused', 'labelled');

  receiver = await new WebhookReceiver(SECRET).start();
  dir = mkdtempSync(join(tmpdir(), 'oddjob-notify-sched-'));
  writeFileSync(join(dir, 'hook-secret'), `${SECRET}\n`, { mode: 0o600 });
  writeFileSync(
    join(dir, 'notifications.yaml'),
    `insecureLoopbackHttp: true
delivery: {timeout: 10s, retryBase: 1s, retryCap: 2s}
targets:
  hooks:
    webhook: {url: "${receiver.url}", secretFile: ${join(dir, 'hook-secret')}}
`,
  );

  // The server must see the Tasks (their first sight sets each schedule's cursor) and
  // be killed before the next minute: start it early enough in a minute.
  if (new Date().getUTCSeconds() > 35) await sleepUntil((Math.floor(Date.now() / 60_000) + 1) * 60_000 + 1000);
  server = await start();
  await leads(server);
  const next = await eventually(
    'the scheduler to have seen every Task (its status names the next slot)',
    async () => {
      const times = new Set<string>();
      for (const name of TASKS) {
        const o = (await custom.getNamespacedCustomObject({ ...TASK, namespace: ns.name, name })) as { status?: { nextScheduleTime?: string } };
        if (!o.status?.nextScheduleTime) return undefined;
        times.add(o.status.nextScheduleTime);
      }
      return times.size === 1 ? [...times][0] : undefined;
    },
    20_000,
  );
  slot = new Date(next).toISOString();
  assert.ok(Date.parse(slot) - Date.now() > 1000, `the server saw the Tasks too close to the slot (${slot}) to be stopped before it`);
  logs += server.logs();
  await server.kill('SIGKILL');
  server = undefined;

  // While it is down, `owned`'s owners withdraw its consent (notify stays).
  const owned = await cluster.apps.readNamespacedDeployment({ name: 'owned', namespace: ns.name });
  owned.metadata!.annotations = { 'oddjob.io/notify': 'hooks' };
  await cluster.apps.replaceNamespacedDeployment({ name: 'owned', namespace: ns.name, body: owned });

  // Back once the slot is past `late`'s 10 s deadline.
  await sleepUntil(Date.parse(slot) + 15_000);
  server = await start();
  await leads(server);
  // Each test below judges what arrived; a server that routes none of it fails them all there.
  await eventually(
    'an event for each Task',
    async () => ['late', 'gone', 'typo'].every((t) => of(t).length > 0) && ofRun(slotRunId(ref('refused'), new Date(slot))).length > 0,
    60_000,
  ).catch((err: unknown) => console.log(`# ${(err as Error).message}`));
  // A duplicate (a second routing, a second launch) would arrive now.
  await new Promise((res) => setTimeout(res, 5000));
  const what = (w: ReceivedWebhook) =>
    w.body.data.run ? `run ${String(w.body.data.run.id)}` : ((w.body.data.schedule as { task?: string } | undefined)?.task ?? String(w.body.data.actor));
  console.log(`# slot ${slot}; received: ${receiver.received.map((w) => `${w.body.type} ${what(w)}`).join(', ')}`);
});

after(async () => {
  if (server) logs += server.logs();
  await server?.kill();
  await receiver?.stop();
  await ns?.dispose();
});

describe('schedule notifications from a real server', () => {
  test('every request verified with standardwebhooks; one delivery per event', () => {
    assert.equal(receiver.rejected.length, 0, receiver.rejected.join('\n'));
    // About the slot: three schedule events and the refused Job's run.failed, once each.
    const aboutSlot = receiver.received.filter((w) => String(w.body.data.message ?? w.body.data.run?.reason).includes(slot));
    assert.equal(aboutSlot.length, 4, JSON.stringify(receiver.received.map((w) => w.body)));
    assert.equal(new Set(receiver.received.map((w) => w.id)).size, receiver.received.length, 'a webhook-id delivered twice');
  });

  test('down across the slot and back after its startingDeadline: one schedule.missed naming the slot', () => {
    const got = of('late');
    assert.deepEqual(
      got.map((w) => w.body.type),
      ['schedule.missed'],
      JSON.stringify(got.map((w) => w.body)),
    );
    const w = got[0]!;
    assert.equal(w.body.version, 1);
    assert.equal(w.body.data.actor, `schedule:${ns.name}/late`);
    assert.deepEqual(w.body.data.where, { namespace: ns.name, deployment: 'api' });
    assert.deepEqual(schedule(w), { task: 'late', slots: [slot] });
    assert.match(String(w.body.data.message), new RegExp(`1 slot\\(s\\) missed: ${slot}`));
  });

  test("consent withdrawn before the slot: one schedule.denied, with the Deployment's opt-in as the reason", () => {
    const got = of('gone');
    assert.deepEqual(
      got.map((w) => w.body.type),
      ['schedule.denied'],
      JSON.stringify(got.map((w) => w.body)),
    );
    const w = got[0]!;
    assert.equal(w.body.data.actor, `schedule:${ns.name}/gone`);
    assert.deepEqual(w.body.data.where, { namespace: ns.name, deployment: 'owned' });
    assert.equal(schedule(w).task, 'gone');
    assert.deepEqual(schedule(w).slots, [slot]);
    assert.match(schedule(w).reason!, new RegExp(`deployment ${ns.name}/owned has not opted in to oddjob`));
    assert.match(String(w.body.data.message), new RegExp(`^slot ${slot} started no run: deployment ${ns.name}/owned has not opted in`));
  });

  test('a Job oddjob cannot build (misspelt oddjob.io/network-identity): one schedule.failed saying so', () => {
    const got = of('typo');
    assert.deepEqual(
      got.map((w) => w.body.type),
      ['schedule.failed'],
      JSON.stringify(got.map((w) => w.body)),
    );
    const w = got[0]!;
    assert.deepEqual(w.body.data.where, { namespace: ns.name, deployment: 'misspelt' });
    assert.deepEqual(schedule(w).slots, [slot]);
    assert.match(schedule(w).reason!, /oddjob\.io\/network-identity is "isolatd"/);
  });

  test("a Job the API server rejects (the pods carry a job-name label): the slot's run failed, told once, as run.failed", () => {
    // The run was recorded before its Job was refused, so the slot has a run and the
    // run's own event reports it; a schedule.failed as well would be the same failure twice.
    assert.deepEqual(
      of('refused').map((w) => w.body.type),
      [],
      'no schedule.failed besides the run.failed',
    );
    const runId = slotRunId(ref('refused'), new Date(slot));
    const got = ofRun(runId);
    assert.deepEqual(
      got.map((w) => w.body.type),
      ['run.failed'],
      JSON.stringify(receiver.received.map((w) => w.body)),
    );
    const run = got[0]!.body.data.run!;
    assert.equal(got[0]!.body.data.actor, `schedule:${ns.name}/refused`);
    assert.equal(run.namespace, ns.name);
    assert.equal(run.deployment, 'labelled');
    assert.equal(run.reason, `schedule ${ns.name}/refused, slot ${slot}`);
    assert.match(String(run.message), /Kubernetes rejected job .*spec\.template\.metadata\.labels\[job-name\]/);
  });

  test('the webhook secret is in neither server log', () => {
    const all = logs + (server?.logs() ?? '');
    assert.match(all, /schedule slot ended/, 'the check read the scheduler log');
    assert.ok(!all.includes(SECRET.slice('whsec_'.length)), 'the webhook secret is in the server log');
  });
});
