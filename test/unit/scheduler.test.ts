// The scheduler's decisions over time, with a fake clock, a real slot store (SQLite) and
// a double of our own SlotLauncher interface (the real launcher and Kubernetes are in
// test/integration/schedules.test.ts). Each tick is called by hand: no timers.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RunStatus } from '../../protocol/api.js';
import { createLogger } from '../../server/logger.js';
import { slotJobName, slotRunId } from '../../server/schedules/names.js';
import { Scheduler, type LaunchResult, type ScheduledTask, type SlotLaunch, type SlotLauncher } from '../../server/schedules/scheduler.js';
import { parseSchedule } from '../../server/schedules/spec.js';
import type { SlotStore } from '../../server/schedules/store.js';
import { ScheduleSlots } from '../../server/store/schedules.js';
import type { Engine } from '../../server/store/schema.js';
import { ENGINES, testStores } from '../support/stores.js';

const stores = testStores('scheduler');
const logger = createLogger('silent');

class FakeLauncher implements SlotLauncher {
  launches: SlotLaunch[] = [];
  cancelled: string[] = [];
  runs = new Map<string, { status: RunStatus; startedAt?: string; finishedAt?: string; created?: boolean }>();
  answer: () => LaunchResult | undefined = () => undefined;
  async launch(req: SlotLaunch): Promise<LaunchResult> {
    this.launches.push(req);
    const a = this.answer();
    if (a) return a;
    // Like the real one: the same run id twice is the same run.
    if (!this.runs.has(req.runId)) this.runs.set(req.runId, { status: 'pending' });
    return { ok: true, runId: req.runId };
  }
  async cancel(runId: string) {
    this.cancelled.push(runId);
    this.runs.set(runId, { status: 'cancelled', finishedAt: new Date().toISOString() });
  }
  async run(runId: string) {
    return this.runs.get(runId);
  }
  deleted: string[] = [];
  async deleteJob(runId: string) {
    this.deleted.push(runId);
  }
  end(runId: string, status: RunStatus) {
    this.runs.set(runId, { status, startedAt: '2026-01-01T00:00:01.000Z', finishedAt: '2026-01-01T00:00:30.000Z' });
  }
}

async function setup(schedule: Record<string, unknown>, engine: Engine = 'sqlite') {
  let now = new Date('2026-01-01T00:00:30Z');
  const parsed = parseSchedule({ cron: '* * * * *', timeZone: 'UTC', ...schedule });
  const task: ScheduledTask = { namespace: 'ns', name: 'job', deployment: 'api', schedule: parsed };
  const { target, schedules: store } = await stores.open(engine);
  const launcher = new FakeLauncher();
  const missed: Date[] = [];
  const refused: string[] = [];
  let gone = false;
  const make = (on: SlotStore = store) =>
    new Scheduler({
      tasks: () => (gone ? [] : [task]),
      store: on,
      launcher,
      logger,
      clock: () => now,
      // Only lead() runs the timer loop; 1 ms makes a loop that failed to stop tick many times below.
      tickMs: 1,
      recordMissed: async (_t, slots) => void missed.push(...slots),
      recordRefused: async (t, nominal, outcome, why) => void refused.push(`${t.deployment ?? '-'} ${nominal.toISOString()} ${outcome}: ${why}`),
    });
  return {
    target,
    store,
    launcher,
    missed,
    refused,
    scheduler: make(),
    make,
    at(iso: string) {
      now = new Date(iso);
    },
    history: async () => (await store.history(task, { limit: 100 })).reverse(),
    now: () => now.getTime(),
    task,
    /** The Task is deleted (the catalog no longer lists it). */
    remove() {
      gone = true;
    },
  };
}

const ref = { namespace: 'ns', name: 'job' };
/** Waits (real time, bounded) for something the scheduler's own timer loop does. */
async function until(cond: () => boolean, ms = 10_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for the scheduler');
    await new Promise((r) => setTimeout(r, 5));
  }
}
const slot = (iso: string) => new Date(iso);

describe('Scheduler', () => {
  test('first sight starts the schedule now; the next slot launches once with its deterministic names', async () => {
    const s = await setup({});
    await s.scheduler.tick();
    assert.equal(s.launcher.launches.length, 0);
    s.at('2026-01-01T00:01:00.400Z');
    await s.scheduler.tick();
    await s.scheduler.tick();
    assert.equal(s.launcher.launches.length, 1);
    const l = s.launcher.launches[0]!;
    assert.equal(l.nominal.toISOString(), '2026-01-01T00:01:00.000Z');
    assert.equal(l.runId, slotRunId(ref, slot('2026-01-01T00:01:00Z')));
    assert.equal(l.jobName, slotJobName(ref, slot('2026-01-01T00:01:00Z')));
    const [h] = await s.history();
    assert.equal(h!.state, 'started');
  });

  test('a run that ends moves its slot to succeeded or failed, with the run named', async () => {
    const s = await setup({});
    await s.scheduler.tick();
    s.at('2026-01-01T00:01:01Z');
    await s.scheduler.tick();
    s.launcher.end(s.launcher.launches[0]!.runId, 'failed');
    await s.scheduler.tick();
    const [h] = await s.history();
    assert.equal(h!.state, 'failed');
    assert.match(h!.message!, /ended failed/);
  });

  test('retries: a failed slot runs again under a new run id, up to the limit, then fails', async () => {
    const s = await setup({ retries: 1 });
    await s.scheduler.tick();
    s.at('2026-01-01T00:01:01Z');
    await s.scheduler.tick();
    s.launcher.end(s.launcher.launches[0]!.runId, 'failed');
    await s.scheduler.tick();
    assert.equal(s.launcher.launches.length, 2);
    assert.equal(s.launcher.launches[1]!.attempt, 1);
    assert.equal(s.launcher.launches[1]!.runId, slotRunId(ref, slot('2026-01-01T00:01:00Z'), 1));
    s.launcher.end(s.launcher.launches[1]!.runId, 'failed');
    await s.scheduler.tick();
    const [h] = await s.history();
    assert.equal(h!.state, 'failed');
    assert.equal(h!.runIds.length, 2);
  });

  test('downtime: a new scheduler on the same store misses the older slots and runs the latest inside the deadline once', async () => {
    const s = await setup({ startingDeadline: '90s' });
    await s.scheduler.tick();
    s.at('2026-01-01T00:04:20Z'); // slots 00:01 .. 00:04 passed while "down"
    const restarted = s.make();
    await restarted.tick();
    await restarted.tick();
    assert.deepEqual(
      s.launcher.launches.map((l) => l.nominal.toISOString()),
      ['2026-01-01T00:04:00.000Z'],
    );
    assert.deepEqual(
      (await s.history()).map((h) => h.state),
      ['missed', 'missed', 'missed', 'started'],
    );
    assert.equal(s.missed.length, 3);
    assert.equal((await s.store.taskState(ref)).missedTotal, 3);
  });

  test('a slot decided but never launched (crash in between) is launched by the next scheduler under the same names', async () => {
    const s = await setup({});
    await s.scheduler.tick();
    s.launcher.answer = () => ({ ok: false, failed: 'API server unreachable', retryable: true });
    s.at('2026-01-01T00:01:00.5Z');
    await s.scheduler.tick();
    assert.equal((await s.history())[0]!.state, 'scheduled');
    s.launcher.answer = () => undefined;
    s.at('2026-01-01T00:01:20Z');
    await s.make().tick();
    assert.equal(s.launcher.launches.length, 2);
    assert.equal(s.launcher.launches[1]!.jobName, s.launcher.launches[0]!.jobName);
    assert.equal((await s.history())[0]!.state, 'started');
  });

  test('a slot whose launch kept failing past its deadline is missed, not run late', async () => {
    const s = await setup({ startingDeadline: '30s' });
    await s.scheduler.tick();
    s.launcher.answer = () => ({ ok: false, failed: 'API server unreachable', retryable: true });
    s.at('2026-01-01T00:01:00.5Z');
    await s.scheduler.tick();
    s.launcher.answer = () => undefined;
    s.at('2026-01-01T00:01:45Z');
    await s.scheduler.tick();
    assert.equal(s.launcher.launches.length, 1);
    assert.equal((await s.history())[0]!.state, 'missed');
  });

  test('denied by the launcher (consent withdrawn): the slot is denied with the reason', async () => {
    const s = await setup({});
    await s.scheduler.tick();
    s.launcher.answer = () => ({ ok: false, denied: 'deployment ns/api has not opted in to oddjob' });
    s.at('2026-01-01T00:01:01Z');
    await s.scheduler.tick();
    const [h] = await s.history();
    assert.equal(h!.state, 'denied');
    assert.match(h!.message!, /not opted in/);
    // Recorded (audited and notified as schedule.denied) with the Task's Deployment: no run will say it.
    assert.deepEqual(s.refused, ['api 2026-01-01T00:01:00.000Z denied: deployment ns/api has not opted in to oddjob']);
  });

  test('a launch that fails for good is recorded as a failed slot (no run reports it)', async () => {
    const s = await setup({});
    await s.scheduler.tick();
    s.launcher.answer = () => ({ ok: false, failed: 'the Job was refused: forbidden', retryable: false });
    s.at('2026-01-01T00:01:01Z');
    await s.scheduler.tick();
    assert.equal((await s.history())[0]!.state, 'failed');
    assert.deepEqual(s.refused, ['api 2026-01-01T00:01:00.000Z failed: the Job was refused: forbidden']);
  });

  test('Forbid skips, Replace cancels the running run, Allow runs both', async () => {
    for (const [policy, want] of [
      ['Forbid', { launches: 1, states: ['started', 'skipped'], cancelled: 0 }],
      ['Replace', { launches: 2, states: ['started', 'started'], cancelled: 1 }],
      ['Allow', { launches: 2, states: ['started', 'started'], cancelled: 0 }],
    ] as const) {
      const s = await setup({ concurrencyPolicy: policy });
      await s.scheduler.tick();
      s.at('2026-01-01T00:01:01Z');
      await s.scheduler.tick();
      s.at('2026-01-01T00:02:01Z');
      await s.scheduler.tick();
      assert.equal(s.launcher.launches.length, want.launches, policy);
      assert.equal(s.launcher.cancelled.length, want.cancelled, policy);
      const states = (await s.history()).map((h) => h.state);
      // Replace: the cancelled run's slot ends on the next follow.
      if (policy === 'Replace') {
        await s.scheduler.tick();
        assert.deepEqual(
          (await s.history()).map((h) => h.state),
          ['failed', 'started'],
        );
      } else assert.deepEqual(states, want.states, policy);
    }
  });

  test('suspended in the store: due slots are skipped with who and why; resuming does not catch up', async () => {
    const s = await setup({});
    await s.scheduler.tick();
    await s.store.setSuspension(ref, { at: '2026-01-01T00:00:40Z', by: 'alice', reason: 'INC-9' });
    s.at('2026-01-01T00:03:05Z');
    await s.scheduler.tick();
    assert.equal(s.launcher.launches.length, 0);
    const h = await s.history();
    assert.deepEqual(
      h.map((x) => x.state),
      ['skipped', 'skipped', 'skipped'],
    );
    assert.equal(h[0]!.message, 'suspended by alice: INC-9');
    await s.store.setSuspension(ref, undefined);
    s.at('2026-01-01T00:03:30Z');
    await s.scheduler.tick();
    assert.equal(s.launcher.launches.length, 0);
    s.at('2026-01-01T00:04:00.2Z');
    await s.scheduler.tick();
    assert.equal(s.launcher.launches.length, 1);
  });

  test('historyLimit: after each ended slot, Jobs beyond the newest N succeeded and N failed are deleted', async () => {
    const s = await setup({ historyLimit: { succeeded: 1, failed: 1 } });
    await s.scheduler.tick();
    const outcomes: RunStatus[] = ['succeeded', 'failed', 'succeeded', 'failed', 'succeeded'];
    for (const [i, status] of outcomes.entries()) {
      s.at(`2026-01-01T00:0${i + 1}:01Z`);
      await s.scheduler.tick();
      s.launcher.end(s.launcher.launches[i]!.runId, status);
      await s.scheduler.tick();
    }
    const ids = s.launcher.launches.map((l) => l.runId);
    // Kept: the newest succeeded (#4) and failed (#3); deleted: #0, #1, #2.
    assert.deepEqual([...new Set(s.launcher.deleted)].sort(), [ids[0], ids[1], ids[2]].sort());
  });

  test('as leader-only work: schedules until the signal aborts, then its last tick is over', async () => {
    const s = await setup({});
    const leading = new AbortController();
    const done = s.scheduler.lead(leading.signal);
    while ((await s.store.taskState(ref)).cursor === undefined) await new Promise((r) => setImmediate(r));
    leading.abort();
    await done;
    const cursor = (await s.store.taskState(ref)).cursor;
    s.at('2026-01-01T00:05:00Z');
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual((await s.store.taskState(ref)).cursor, cursor, 'nothing decided after leading ended');
    assert.equal(s.launcher.launches.length, 0);
  });

  test('a new leader takes over at once a launch claim its predecessor left mid-launch (killed), and launches the slot once', async () => {
    const s = await setup({});
    // The predecessor decides the 00:01 slot, claims its launch and hangs in it (a SIGKILL, as far as the store can tell).
    let hung = 0;
    const hanging: SlotLauncher = {
      cancel: (id) => s.launcher.cancel(id),
      deleteJob: (id) => s.launcher.deleteJob(id),
      run: (id) => s.launcher.run(id),
      launch: () => (hung++, new Promise<LaunchResult>(() => {})),
    };
    const predecessor = new Scheduler({ tasks: () => [s.task], store: s.store, launcher: hanging, logger, clock: () => new Date(s.now()), replica: 'dead' });
    await predecessor.tick();
    s.at('2026-01-01T00:01:00.400Z');
    void predecessor.tick();
    await until(() => hung === 1);
    // Twenty seconds on (a lease duration and a bit): well inside CLAIM_STALE_MS.
    s.at('2026-01-01T00:01:20Z');
    const leading = new AbortController();
    const done = s.make().lead(leading.signal);
    try {
      await until(() => s.launcher.launches.length > 0);
    } finally {
      leading.abort();
      await done;
    }
    assert.equal(s.launcher.launches.length, 1);
    assert.equal(s.launcher.launches[0]!.nominal.toISOString(), '2026-01-01T00:01:00.000Z');
    const [h] = await s.history();
    assert.equal(h!.state, 'started');
  });

  test('a run whose Job was never created (its launcher killed mid-launch) is launched again under the next attempt; a real failure is not', async () => {
    const s = await setup({});
    await s.scheduler.tick();
    s.at('2026-01-01T00:01:01Z');
    await s.scheduler.tick();
    const first = s.launcher.launches[0]!;
    // Adopted by another replica, found without a Job: ended lost, nothing ran.
    s.launcher.runs.set(first.runId, { status: 'lost', finishedAt: '2026-01-01T00:01:20.000Z', created: false });
    s.at('2026-01-01T00:01:21Z');
    await s.scheduler.tick();
    assert.equal(s.launcher.launches.length, 2);
    const second = s.launcher.launches[1]!;
    assert.equal(second.attempt, 1);
    assert.equal(second.runId, slotRunId(ref, slot('2026-01-01T00:01:00Z'), 1));
    s.launcher.runs.set(second.runId, { status: 'failed', startedAt: '2026-01-01T00:01:25.000Z', finishedAt: '2026-01-01T00:01:30.000Z', created: true });
    await s.scheduler.tick();
    assert.equal(s.launcher.launches.length, 2, 'a run that did run and failed is not launched again (retries: 0)');
    const [h] = await s.history();
    assert.equal(h!.state, 'failed');
    assert.deepEqual(h!.runIds, [first.runId, second.runId]);
  });

  test('a run whose Job create the API server refused (failed, no Job) ends its slot failed, not launched again', async () => {
    const s = await setup({});
    await s.scheduler.tick();
    s.at('2026-01-01T00:01:01Z');
    await s.scheduler.tick();
    s.launcher.runs.set(s.launcher.launches[0]!.runId, { status: 'failed', finishedAt: '2026-01-01T00:01:02.000Z', created: false });
    await s.scheduler.tick();
    assert.equal(s.launcher.launches.length, 1);
    assert.equal((await s.history())[0]!.state, 'failed');
  });

  test('a slot waiting to launch whose Task is deleted ends denied, and says so (audit, notification)', async () => {
    const s = await setup({});
    await s.scheduler.tick();
    // The first launch fails for a passing reason: the slot stays scheduled.
    s.launcher.answer = () => ({ ok: false, failed: 'the API server is away', retryable: true });
    s.at('2026-01-01T00:01:00.5Z');
    await s.scheduler.tick();
    assert.equal((await s.history())[0]!.state, 'scheduled');
    s.remove();
    s.at('2026-01-01T00:01:15Z');
    await s.scheduler.tick();
    const [h] = await s.history();
    assert.equal(h!.state, 'denied');
    assert.deepEqual(s.refused, ['- 2026-01-01T00:01:00.000Z denied: the Task no longer exists or has no schedule']);
  });

  test('not the leader: nothing is decided', async () => {
    const s = await setup({});
    const follower = new Scheduler({ tasks: () => [], store: s.store, launcher: s.launcher, logger, isLeader: () => false });
    await follower.tick();
    assert.equal((await s.store.taskState(ref)).cursor, undefined);
  });

  for (const engine of ENGINES) {
    // Overlapping ticks (a leader change mid-slot): the old leader's tick and the new
    // one's run at once. One decides each slot, the other sees it open in follow() while
    // its launch is still going: without a store-level claim both would launch it (and
    // the real launcher would audit run.requested twice).
    test(`two schedulers on one database, each with its own connection, ticking at once over 50 Tasks: each slot is launched exactly once (${engine})`, async () => {
      const s = await setup({}, engine);
      const names = Array.from({ length: 50 }, (_, i) => `job-${i}`);
      const schedule = parseSchedule({ cron: '* * * * *', timeZone: 'UTC' });
      const tasks: ScheduledTask[] = names.map((name) => ({ namespace: 'ns', name, deployment: 'api', schedule }));
      // A launch takes a while (API reads, an audit commit, a create): the other tick catches it mid-way.
      const slow: SlotLauncher = {
        cancel: (id) => s.launcher.cancel(id),
        deleteJob: (id) => s.launcher.deleteJob(id),
        launch: async (req) => {
          await new Promise((r) => setTimeout(r, 20));
          return s.launcher.launch(req);
        },
        run: (id) => s.launcher.run(id),
      };
      const on = (store: SlotStore) => new Scheduler({ tasks: () => tasks, store, launcher: slow, logger, clock: () => now });
      let now = new Date('2026-01-01T00:00:30Z');
      const a = on(s.store);
      const b = on(new ScheduleSlots(await stores.connect(s.target)));
      await a.tick();
      now = new Date('2026-01-01T00:01:00.3Z');
      for (let i = 0; i < 3; i++) await Promise.all([a.tick(), b.tick(), a.tick(), b.tick()]);
      const perSlot = new Map<string, number>();
      for (const l of s.launcher.launches)
        perSlot.set(`${l.task.name}@${l.nominal.toISOString()}`, (perSlot.get(`${l.task.name}@${l.nominal.toISOString()}`) ?? 0) + 1);
      assert.equal(perSlot.size, 50, 'every slot launched');
      assert.deepEqual(
        [...perSlot].filter(([, n]) => n !== 1),
        [],
        'no slot launched twice',
      );
      const open = await s.store.open();
      assert.equal(open.length, 50);
      assert.ok(open.every((x) => x.state === 'started' && x.runIds.length === 1));
    });
  }
});
