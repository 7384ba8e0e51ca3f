// Tasks as the scheduler sees them: a Task object's spec.schedule checked against the
// Task itself (approval, params), the Scheduled condition it leads to, and the scheduler
// waiting for the Task catalog instead of taking a half-read catalog for deletions.
// Pure functions, table-driven; the scheduler part with a real SQLite slot store and a
// fake clock (the real cluster is test/integration/schedules.test.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLogger } from '../../server/logger.js';
import { Scheduler, type ScheduledTask, type SlotLauncher, type TaskScheduleStatus } from '../../server/schedules/scheduler.js';
import { APPROVAL_REFUSED, scheduledTask } from '../../server/schedules/tasks.js';
import { scheduledCondition, scheduledTasksOf } from '../../server/schedules/wire.js';
import type { TaskObject } from '../../server/tasks/spec.js';
import { testStores } from '../support/stores.js';

const stores = testStores('schedule-tasks');

const every = { cron: '* * * * *', timeZone: 'UTC' };
function taskObject(spec: Record<string, unknown>, meta: Partial<NonNullable<TaskObject['metadata']>> = {}): TaskObject {
  return { metadata: { name: 'reindex', namespace: 'payments', uid: 'u1', generation: 1, ...meta }, spec: { deployment: 'api', command: ['true'], ...spec } };
}
const merchant = {
  command: ['node', 'reindex.js', '--merchant=$(params.merchant)'],
  params: [{ name: 'merchant', type: 'string', required: true, pattern: '^m_[a-z0-9]{8}$' }],
};

describe('scheduledTask: a Task object → its schedule, checked against the Task', () => {
  const cases: Array<{ name: string; spec: Record<string, unknown>; expect: 'none' | 'ok' | RegExp }> = [
    { name: 'no spec.schedule: not scheduled', spec: {}, expect: 'none' },
    { name: 'a valid schedule', spec: { schedule: every }, expect: 'ok' },
    { name: 'approval: none is fine', spec: { approval: 'none', schedule: every }, expect: 'ok' },
    {
      name: 'approval: required is refused a schedule (fail closed)',
      spec: { approval: 'required', schedule: every },
      expect: /approval: required \(four-eyes\).*nobody to approve.*refused/,
    },
    {
      name: 'approval: required wins even over a broken schedule',
      spec: { approval: 'required', schedule: { cron: 'nonsense' } },
      expect: /approval: required/,
    },
    { name: 'a bad schedule names its field', spec: { schedule: { cron: '* * *', timeZone: 'UTC' } }, expect: /^spec\.schedule: .*3 fields/ },
    { name: 'params that satisfy the Task', spec: { ...merchant, schedule: { ...every, params: { merchant: 'm_12345678' } } }, expect: 'ok' },
    {
      name: 'a param value the Task refuses names the parameter',
      spec: { ...merchant, schedule: { ...every, params: { merchant: 'x; rm -rf /' } } },
      expect: /^spec\.schedule\.params: parameter merchant: must match/,
    },
    { name: 'a required param missing', spec: { ...merchant, schedule: every }, expect: /^spec\.schedule\.params: .*merchant/ },
    { name: 'a param the Task does not declare', spec: { schedule: { ...every, params: { bogus: 1 } } }, expect: /^spec\.schedule\.params: .*bogus/ },
    // The Task's own problem is reported at each slot (denied), not by hiding the schedule.
    { name: 'an invalid Task keeps its schedule', spec: { command: [''], schedule: every }, expect: 'ok' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const t = scheduledTask(taskObject(c.spec));
      if (c.expect === 'none') return assert.equal(t, undefined);
      assert.ok(t);
      assert.deepEqual([t.namespace, t.name, t.deployment], ['payments', 'reindex', 'api']);
      if (c.expect === 'ok') return assert.ok(t.schedule.ok, JSON.stringify(t.schedule));
      assert.equal(t.schedule.ok, false);
      assert.match((t.schedule as { error: string }).error, c.expect);
    });
  }
});

describe('scheduledCondition', () => {
  const base: TaskScheduleStatus = { missedSlots: 0, suspended: false };
  const cases: Array<[string, TaskScheduleStatus, { status: string; reason: string }]> = [
    ['approval refused', { ...base, invalid: APPROVAL_REFUSED }, { status: 'False', reason: 'ApprovalRequired' }],
    ['invalid schedule', { ...base, invalid: 'spec.schedule: cron is required' }, { status: 'False', reason: 'InvalidSchedule' }],
    ['suspended', { ...base, suspended: true }, { status: 'False', reason: 'Suspended' }],
    ['waiting for its first slot', base, { status: 'True', reason: 'Waiting' }],
    ['last slot denied', { ...base, lastSlot: { nominal: 'x', state: 'denied', message: 'consent' } }, { status: 'False', reason: 'Denied' }],
    ['last slot succeeded', { ...base, lastSlot: { nominal: 'x', state: 'succeeded' } }, { status: 'True', reason: 'Succeeded' }],
  ];
  for (const [name, st, want] of cases) {
    test(name, () => {
      const c = scheduledCondition(st);
      assert.deepEqual({ status: c.status, reason: c.reason }, want);
    });
  }
  test('the message of a refused schedule is the error itself', () => {
    assert.equal(scheduledCondition({ ...base, invalid: APPROVAL_REFUSED }).message, APPROVAL_REFUSED);
  });
});

describe('scheduledTasksOf: the catalog as tasks()', () => {
  test('undefined while the catalog has not listed; parsed once per Task version', () => {
    let objects: TaskObject[] | undefined;
    const tasks = scheduledTasksOf(() => objects);
    assert.equal(tasks(), undefined);
    objects = [taskObject({ schedule: every }), taskObject({}, { uid: 'u2', name: 'plain' })];
    const first = tasks()!;
    assert.deepEqual(
      first.map((t) => t.name),
      ['reindex'],
    );
    assert.equal(tasks()![0], first[0], 'the same version is not parsed again');
    objects = [taskObject({ approval: 'required', schedule: every }, { generation: 2 })];
    const edited = tasks()!;
    assert.notEqual(edited[0], first[0]);
    assert.equal(edited[0]!.schedule.ok, false, 'a new generation is checked again');
  });
});

describe('the scheduler and the Task catalog', () => {
  const logger = createLogger('silent');
  const launcher: SlotLauncher = {
    launch: async (s) => ({ ok: true, runId: s.runId }),
    cancel: async () => {},
    run: async () => undefined,
    deleteJob: async () => {},
  };

  test('a catalog not yet listed is not "every Task deleted": open slots stay open', async () => {
    const { schedules: store } = await stores.open('sqlite');
    let now = new Date('2026-01-01T00:00:30Z');
    const task = scheduledTask(taskObject({ schedule: every }))!;
    let listed: ScheduledTask[] | undefined = [task];
    const launches: string[] = [];
    const scheduler = new Scheduler({
      tasks: () => listed,
      store,
      launcher: { ...launcher, launch: async (s) => (launches.push(s.runId), { ok: false, failed: 'API down', retryable: true }) },
      logger,
      clock: () => now,
    });
    await scheduler.tick(); // first sight
    now = new Date('2026-01-01T00:01:00.500Z');
    await scheduler.tick(); // the 00:01 slot is decided; its launch fails for a passing reason
    assert.deepEqual(
      (await store.history(task, { limit: 10 })).map((s) => s.state),
      ['scheduled'],
    );
    listed = undefined; // e.g. a restart: the watch has not listed yet
    now = new Date('2026-01-01T00:01:30Z');
    await scheduler.tick();
    assert.deepEqual(
      (await store.history(task, { limit: 10 })).map((s) => s.state),
      ['scheduled'],
      'not denied as "the Task no longer exists"',
    );
  });

  test("a refused schedule is written to the Task's status once, not at every tick, and fires nothing", async () => {
    const { schedules: store } = await stores.open('sqlite');
    let now = new Date('2026-01-01T00:00:30Z');
    const task = scheduledTask(taskObject({ approval: 'required', schedule: every }))!;
    const written: TaskScheduleStatus[] = [];
    const launches: string[] = [];
    const scheduler = new Scheduler({
      tasks: () => [task],
      store,
      launcher: { ...launcher, launch: async (s) => (launches.push(s.runId), { ok: true, runId: s.runId }) },
      logger,
      clock: () => now,
      writeStatus: async (_t, st) => void written.push(st),
    });
    for (const t of ['00:00:30', '00:01:00', '00:02:00', '00:03:00']) {
      now = new Date(`2026-01-01T${t}Z`);
      await scheduler.tick();
    }
    assert.equal(written.length, 1);
    assert.equal(written[0]!.invalid, APPROVAL_REFUSED);
    assert.deepEqual(launches, []);
    assert.deepEqual(await store.history(task, { limit: 10 }), []);
  });
});
