// The schedules API behind the HTTP edge, with a real SQLite store and audit log:
// who may see, suspend and resume a schedule, that each change is audited with who
// and why, that suspension belongs to the store (re-applying the Task keeps it), and
// that the CLI reads task/NAME the way kubectl prints it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ServiceError } from '../../server/errors.js';
import { createScheduleService } from '../../server/schedules/service.js';
import { parseSchedule } from '../../server/schedules/spec.js';
import type { ScheduledTask } from '../../server/schedules/scheduler.js';
import type { RequestContext } from '../../server/services.js';
import { parseTaskArg } from '../../cli/commands/schedules.js';
import { testStores } from '../support/stores.js';

const stores = testStores('schedule-service');
const ctx = (login: string, auditor = false): RequestContext => ({ identity: { login, teams: [] }, client: { kind: 'cli' }, auditor });

const COMMAND = ['node', '-e', '1'];

async function setup() {
  const { audit, schedules: store } = await stores.open('sqlite');
  let tasks: ScheduledTask[] = [
    { namespace: 'payments', name: 'nightly', deployment: 'api', schedule: parseSchedule({ cron: '30 2 * * *', timeZone: 'Europe/Berlin' }) },
    { namespace: 'payments', name: 'broken', deployment: 'api', schedule: parseSchedule({ cron: '30 2 * *', timeZone: 'Europe/Berlin' }) },
    { namespace: 'payments', name: 'leads-only', deployment: 'api', schedule: parseSchedule({ cron: '@daily', timeZone: 'UTC' }) },
    { namespace: 'billing', name: 'other', deployment: 'worker', schedule: parseSchedule({ cron: '@daily', timeZone: 'UTC' }) },
  ];
  // What the API server holds now: the Tasks' specs and the Deployments' annotations.
  // alice may run in payments/api; bob in nothing, but leads-only names him alone.
  const specs = new Map<string, unknown>([
    ['payments/nightly', { deployment: 'api', command: COMMAND }],
    ['payments/broken', { deployment: 'api', command: COMMAND }],
    ['payments/leads-only', { deployment: 'api', command: COMMAND, allowedUsers: ['bob'] }],
    ['billing/other', { deployment: 'worker', command: COMMAND }],
  ]);
  const deployments = new Map<string, Record<string, string> | Error>([
    ['payments/api', { 'oddjob.io/allowed-users': 'alice' }],
    ['billing/worker', { 'oddjob.io/allowed-users': 'dave' }],
  ]);
  const service = createScheduleService({
    namespaces: ['payments', 'billing'],
    tasks: () => tasks,
    store,
    readTask: async (ns, name) => (specs.has(`${ns}/${name}`) ? { spec: specs.get(`${ns}/${name}`) } : undefined),
    readTasks: async (ns) => [...specs].filter(([k]) => k.startsWith(`${ns}/`)).map(([k, spec]) => ({ metadata: { name: k.split('/')[1] }, spec })),
    async readDeployment(ns, name) {
      const d = deployments.get(`${ns}/${name}`);
      if (d instanceof Error) throw d;
      return d ? { annotations: d } : null;
    },
    appendAudit: (e) => audit.appendDurable(e),
    clock: () => new Date('2026-03-28T12:00:00Z'),
    defaultOrg: 'acme',
  });
  return { service, audit, store, specs, deployments, reapply: (t: ScheduledTask[]) => (tasks = t), tasks: () => tasks };
}

describe('schedule service', () => {
  test('lists what the caller may run in, with next slot and the error of an invalid schedule', async () => {
    const { service } = await setup();
    const items = await service.list(ctx('alice'));
    assert.deepEqual(
      items.map((s) => s.task),
      ['broken', 'nightly'],
    );
    const nightly = items.find((s) => s.task === 'nightly')!;
    assert.equal(nightly.nextScheduleTime, '2026-03-29T01:00:00.000Z', 'the DST night: 03:00 CEST');
    assert.match(items.find((s) => s.task === 'broken')!.error!, /has 4 fields/);
    assert.equal(nightly.mayChange, true);
    assert.deepEqual(
      (await service.list(ctx('bob'))).map((s) => s.task),
      ['leads-only'],
    );
    const all = await service.list(ctx('carol', true));
    assert.equal(all.length, 4, 'auditors see all');
    assert.ok(
      all.every((s) => s.mayChange === false),
      'and may change none',
    );
  });

  test("a Task's own lists decide, not its Deployment's: refused suspend and resume are 403s, audited", async () => {
    const { service, audit } = await setup();
    const ref = { namespace: 'payments', name: 'leads-only' };
    assert.ok(!(await service.list(ctx('alice'))).some((s) => s.task === 'leads-only'), 'alice may run in the Deployment, not the Task');
    await assert.rejects(service.history(ctx('alice'), ref, { limit: 10 }), (e: ServiceError) => e.kind === 'not_found');
    for (const [who, auditor] of [
      ['alice', false],
      ['carol', true],
    ] as const) {
      await assert.rejects(service.suspend(ctx(who, auditor), ref, 'not mine'), (e: ServiceError) => {
        assert.equal(e.kind, 'forbidden');
        assert.match(e.message, new RegExp(`you may not suspend the schedule of task payments/leads-only: you \\(${who}\\) are not in`));
        assert.match(e.hint!, /allowedUsers or allowedTeams/);
        return true;
      });
      await assert.rejects(service.resume(ctx(who, auditor), ref), (e: ServiceError) => e.kind === 'forbidden');
    }
    const denied = (await audit.query({ type: 'run.denied', limit: 10 })).items;
    assert.deepEqual(denied.map((d) => `${d.actor.login} ${d.task} ${d.reason ?? '-'}`).sort(), [
      'alice leads-only -',
      'alice leads-only not mine',
      'carol leads-only -',
      'carol leads-only not mine',
    ]);
    assert.match(denied.find((d) => d.reason === 'not mine' && d.actor.login === 'alice')!.message!, /you may not suspend the schedule/);
    assert.equal((await audit.query({ type: 'schedule.suspended', limit: 10 })).items.length, 0);
    const s = await service.suspend(ctx('bob'), ref, 'hold');
    assert.equal(s.suspension?.by, 'bob');
    assert.equal((await service.resume(ctx('bob'), ref)).suspension, undefined);
  });

  test('the Task and Deployment are read now: gone or unreadable refuses (fail closed)', async () => {
    const { service, specs, deployments } = await setup();
    const ref = { namespace: 'payments', name: 'nightly' };
    specs.set('payments/nightly', { deployment: 'api', command: COMMAND, allowedUsers: ['bob'] });
    await assert.rejects(service.suspend(ctx('alice'), ref, 'x'), (e: ServiceError) => e.kind === 'forbidden', 'an edit of the Task counts at once');
    specs.delete('payments/nightly');
    await assert.rejects(service.suspend(ctx('bob'), ref, 'x'), (e: ServiceError) => e.kind === 'not_found', 'the Task is gone');
    deployments.delete('payments/api');
    await assert.rejects(service.suspend(ctx('alice'), { namespace: 'payments', name: 'broken' }, 'x'), /deployment payments\/api, which does not exist/);
    deployments.set('payments/api', new ServiceError('unavailable', 'the API server does not answer'));
    await assert.rejects(service.suspend(ctx('alice'), { namespace: 'payments', name: 'broken' }, 'x'), /does not answer/);
    assert.deepEqual(await service.list(ctx('alice')), [], 'a listing shows nothing it cannot check');
  });

  test('suspend and resume are audited with who and why, and only by those who may run', async () => {
    const { service, audit, store } = await setup();
    const ref = { namespace: 'payments', name: 'nightly' };
    const s = await service.suspend(ctx('alice'), ref, 'INC-2231 bad input');
    assert.deepEqual(s.suspension, { at: '2026-03-28T12:00:00.000Z', by: 'alice', reason: 'INC-2231 bad input' });
    assert.equal(s.nextScheduleTime, undefined);
    const [ev] = (await audit.query({ type: 'schedule.suspended', limit: 10 })).items;
    assert.equal(ev!.actor.login, 'alice');
    assert.equal(ev!.reason, 'INC-2231 bad input');
    assert.equal(ev!.task, 'nightly');
    await assert.rejects(service.resume(ctx('carol', true), ref), (e: ServiceError) => e.kind === 'forbidden');
    await assert.rejects(service.suspend(ctx('bob'), ref, 'x'), (e: ServiceError) => e.kind === 'forbidden');
    const r = await service.resume(ctx('alice'), ref);
    assert.equal(r.suspension, undefined);
    const [resumed] = (await audit.query({ type: 'schedule.resumed', limit: 10 })).items;
    assert.match(resumed!.message!, /suspended by alice since .*: INC-2231 bad input/);
    assert.equal((await store.taskState(ref)).suspension, undefined);
  });

  test('suspension survives re-applying the Task (a new object with the same spec)', async () => {
    const { service, reapply, tasks } = await setup();
    const ref = { namespace: 'payments', name: 'nightly' };
    await service.suspend(ctx('alice'), ref, 'hold');
    reapply(tasks().map((t) => ({ ...t, schedule: parseSchedule({ cron: '30 2 * * *', timeZone: 'Europe/Berlin', suspend: false }) })));
    const [s] = (await service.list(ctx('alice'))).filter((x) => x.task === 'nightly');
    assert.equal(s!.suspension?.reason, 'hold');
  });

  test('a namespace the server does not serve is not found, and names do not leak', async () => {
    const { service } = await setup();
    await assert.rejects(service.history(ctx('alice'), { namespace: 'kube-system', name: 'x' }, { limit: 10 }), (e: ServiceError) => e.kind === 'not_found');
    await assert.rejects(service.history(ctx('alice'), { namespace: 'billing', name: 'other' }, { limit: 10 }), /has no schedule, or does not exist/);
  });
});

describe('parseTaskArg', () => {
  for (const [arg, want] of [
    ['task/nightly', 'nightly'],
    ['tasks/nightly', 'nightly'],
    ['task.oddjob.io/nightly', 'nightly'],
    ['task/nightly.report', 'nightly.report'],
  ] as const) {
    test(`${arg} → ${want}`, () => assert.equal(parseTaskArg(arg), want));
  }
  for (const arg of ['nightly', 'deploy/api', 'task/', 'task/UPPER', 'task/a/b']) {
    test(`refuses ${arg}`, () => assert.throws(() => parseTaskArg(arg), /is not a Task: write task\/NAME/));
  }
});
