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

async function setup() {
  const { audit, schedules: store } = await stores.open('sqlite');
  let tasks: ScheduledTask[] = [
    { namespace: 'payments', name: 'nightly', deployment: 'api', schedule: parseSchedule({ cron: '30 2 * * *', timeZone: 'Europe/Berlin' }) },
    { namespace: 'payments', name: 'broken', deployment: 'api', schedule: parseSchedule({ cron: '30 2 * *', timeZone: 'Europe/Berlin' }) },
    { namespace: 'billing', name: 'other', deployment: 'worker', schedule: parseSchedule({ cron: '@daily', timeZone: 'UTC' }) },
  ];
  const service = createScheduleService({
    namespaces: ['payments', 'billing'],
    tasks: () => tasks,
    store,
    // alice may run in payments/api; bob in nothing.
    mayRun: async (c, ns, d) => c.identity.login === 'alice' && ns === 'payments' && d === 'api',
    appendAudit: (e) => audit.appendDurable(e),
    clock: () => new Date('2026-03-28T12:00:00Z'),
  });
  return { service, audit, store, reapply: (t: ScheduledTask[]) => (tasks = t), tasks: () => tasks };
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
    assert.deepEqual(await service.list(ctx('bob')), []);
    assert.equal((await service.list(ctx('carol', true))).length, 3, 'auditors see all');
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
    await assert.rejects(service.suspend(ctx('bob'), ref, 'x'), (e: ServiceError) => e.kind === 'not_found');
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
