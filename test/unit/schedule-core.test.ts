// The pure schedule core: spec validation, the catch-up and concurrency decisions,
// deterministic names and the slot state machine. Time is a parameter (a fake clock
// by construction): nothing here reads the real one.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSchedule } from '../../server/schedules/spec.js';
import { MAX_RECORDED_SLOTS, decideConcurrency, planDue } from '../../server/schedules/plan.js';
import { slotJobName, slotRunId } from '../../server/schedules/names.js';
import { canTransition, slotOutcome, SLOT_STATES, TERMINAL_SLOT_STATES } from '../../server/schedules/slot.js';

describe('parseSchedule', () => {
  test('fills in the defaults', () => {
    const r = parseSchedule({ cron: '30 2 * * *', timeZone: 'Europe/Berlin' });
    assert.deepEqual(r, {
      ok: true,
      schedule: {
        cron: '30 2 * * *',
        timeZone: 'Europe/Berlin',
        params: {},
        concurrencyPolicy: 'Forbid',
        suspend: false,
        historyLimit: { succeeded: 3, failed: 3 },
        retries: 0,
      },
    });
  });
  test('reads everything the issue shows', () => {
    const r = parseSchedule({
      cron: '@daily',
      timeZone: 'America/New_York',
      params: { merchant: 'm_12345678', batch: 5, dryRun: false },
      concurrencyPolicy: 'Replace',
      startingDeadline: '10m',
      suspend: true,
      historyLimit: { succeeded: 1, failed: 5 },
      retries: 2,
    });
    assert.ok(r.ok);
    assert.equal(r.schedule.startingDeadline, 600);
    assert.equal(r.schedule.concurrencyPolicy, 'Replace');
    assert.deepEqual(r.schedule.params, { merchant: 'm_12345678', batch: 5, dryRun: false });
  });
  for (const nick of ['@hourly', '@daily', '@midnight', '@weekly', '@monthly', '@yearly', '@annually']) {
    test(`accepts ${nick}`, () => assert.ok(parseSchedule({ cron: nick, timeZone: 'UTC' }).ok));
  }
  for (const cron of ['*/15 9-17 * * MON-FRI', '0 0 1 JAN,JUL *', '5,35 */2 1-15 * 0-6', '0 12 * * 7']) {
    test(`accepts "${cron}"`, () => assert.ok(parseSchedule({ cron, timeZone: 'UTC' }).ok));
  }

  const refused: [string, unknown, RegExp][] = [
    ['no cron', { timeZone: 'UTC' }, /cron is required/],
    ['no timeZone', { cron: '@daily' }, /timeZone is required: an IANA zone/],
    ['an unknown zone', { cron: '@daily', timeZone: 'Mars/Olympus' }, /unknown time zone "Mars\/Olympus"/],
    ['a fixed offset', { cron: '@daily', timeZone: '+01:00' }, /not an IANA time zone name/],
    ['6 fields (seconds)', { cron: '0 30 2 * * *', timeZone: 'UTC' }, /has 6 fields; write 5/],
    ['4 fields', { cron: '30 2 * *', timeZone: 'UTC' }, /has 4 fields/],
    ['minute 60', { cron: '60 2 * * *', timeZone: 'UTC' }, /not a valid cron expression/],
    ['hour 24', { cron: '0 24 * * *', timeZone: 'UTC' }, /not a valid cron expression/],
    ['croner-only L', { cron: '0 0 L * *', timeZone: 'UTC' }, /day of month field "L" is not standard cron/],
    ['croner-only #', { cron: '0 0 * * MON#2', timeZone: 'UTC' }, /day of week field "MON#2" is not standard cron/],
    ['@reboot', { cron: '@reboot', timeZone: 'UTC' }, /@reboot has no time/],
    ['an unknown nickname', { cron: '@sometimes', timeZone: 'UTC' }, /unknown nickname @sometimes/],
    ['a bad policy', { cron: '@daily', timeZone: 'UTC', concurrencyPolicy: 'forbid' }, /concurrencyPolicy must be Forbid, Replace or Allow/],
    ['a bare-number deadline', { cron: '@daily', timeZone: 'UTC', startingDeadline: '600' }, /startingDeadline: "600" is not a duration: add a unit/],
    ['negative retries', { cron: '@daily', timeZone: 'UTC', retries: -1 }, /retries must be 0 or more/],
    ['too many retries', { cron: '@daily', timeZone: 'UTC', retries: 11 }, /retries must be at most 10/],
    ['a fractional history limit', { cron: '@daily', timeZone: 'UTC', historyLimit: { succeeded: 1.5 } }, /historyLimit.succeeded: must be a whole number/],
    ['an unknown field', { cron: '@daily', timeZone: 'UTC', concurency: 'Allow' }, /concurency/],
    ['suspend as a string', { cron: '@daily', timeZone: 'UTC', suspend: 'yes' }, /suspend must be true or false/],
    ['not an object', 'every day', /spec.schedule/],
  ];
  for (const [what, raw, message] of refused) {
    test(`refuses ${what}, saying so`, () => {
      const r = parseSchedule(raw);
      assert.equal(r.ok, false);
      assert.match((r as { error: string }).error, message);
    });
  }
});

const at = (iso: string) => new Date(iso);
const iso = (d: Date | undefined) => d?.toISOString();
const minutely = { cron: '* * * * *', timeZone: 'UTC' };

describe('planDue: catch-up after downtime', () => {
  test('on time: the one due slot runs', () => {
    const p = planDue({ schedule: minutely, cursor: at('2026-01-01T00:00:30Z'), now: at('2026-01-01T00:01:02Z'), suspended: false });
    assert.equal(iso(p.run), '2026-01-01T00:01:00.000Z');
    assert.deepEqual(p.missed, []);
    assert.equal(iso(p.cursor), '2026-01-01T00:01:02.000Z');
  });
  test('nothing due: nothing runs, the cursor moves on', () => {
    const p = planDue({ schedule: minutely, cursor: at('2026-01-01T00:01:00Z'), now: at('2026-01-01T00:01:40Z'), suspended: false });
    assert.equal(p.run, undefined);
    assert.deepEqual(p.missed, []);
  });
  test('after an outage: the latest slot inside the deadline runs once, older ones are missed', () => {
    const p = planDue({
      schedule: { ...minutely, startingDeadline: 120 },
      cursor: at('2026-01-01T00:00:30Z'),
      now: at('2026-01-01T00:05:10Z'),
      suspended: false,
    });
    assert.equal(iso(p.run), '2026-01-01T00:05:00.000Z');
    assert.deepEqual(p.missed.map(iso), ['2026-01-01T00:01:00.000Z', '2026-01-01T00:02:00.000Z', '2026-01-01T00:03:00.000Z', '2026-01-01T00:04:00.000Z']);
  });
  test('the latest slot past its deadline is missed too', () => {
    const daily = { cron: '30 2 * * *', timeZone: 'Europe/Berlin', startingDeadline: 600 };
    const p = planDue({ schedule: daily, cursor: at('2026-01-01T01:00:00Z'), now: at('2026-01-01T01:41:00Z'), suspended: false });
    assert.equal(p.run, undefined);
    assert.deepEqual(p.missed.map(iso), ['2026-01-01T01:30:00.000Z']);
  });
  test('exactly at the deadline still runs', () => {
    const daily = { cron: '30 2 * * *', timeZone: 'Europe/Berlin', startingDeadline: 600 };
    const p = planDue({ schedule: daily, cursor: at('2026-01-01T01:00:00Z'), now: at('2026-01-01T01:40:00Z'), suspended: false });
    assert.equal(iso(p.run), '2026-01-01T01:30:00.000Z');
  });
  test('without a deadline the latest slot runs however late (as a CronJob without startingDeadlineSeconds)', () => {
    const daily = { cron: '30 2 * * *', timeZone: 'Europe/Berlin' };
    const p = planDue({ schedule: daily, cursor: at('2026-01-01T00:00:00Z'), now: at('2026-01-03T12:00:00Z'), suspended: false });
    assert.equal(iso(p.run), '2026-01-03T01:30:00.000Z');
    assert.deepEqual(p.missed.map(iso), ['2026-01-01T01:30:00.000Z', '2026-01-02T01:30:00.000Z']);
  });
  test('a month of every-minute downtime: one run, a bounded list of missed slots, and a flag saying there were more', () => {
    const p = planDue({
      schedule: { ...minutely, startingDeadline: 60 },
      cursor: at('2026-01-01T00:00:00Z'),
      now: at('2026-02-01T00:00:10Z'),
      suspended: false,
    });
    assert.equal(iso(p.run), '2026-02-01T00:00:00.000Z');
    assert.equal(p.missed.length, MAX_RECORDED_SLOTS);
    assert.equal(p.more, true);
  });
  test('suspended: every due slot is skipped, none runs, none is missed', () => {
    const p = planDue({ schedule: minutely, cursor: at('2026-01-01T00:00:00Z'), now: at('2026-01-01T00:03:00Z'), suspended: true });
    assert.equal(p.run, undefined);
    assert.deepEqual(p.missed, []);
    assert.equal(p.skipped.length, 3);
  });
  test('a clock that stepped back decides nothing and keeps the cursor', () => {
    const p = planDue({ schedule: minutely, cursor: at('2026-01-01T00:10:00Z'), now: at('2026-01-01T00:05:00Z'), suspended: false });
    assert.deepEqual(p, { missed: [], skipped: [], more: false, cursor: at('2026-01-01T00:10:00Z') });
  });
  test('ticks a second apart across a slot decide it exactly once', () => {
    let cursor = at('2026-01-01T00:00:55Z');
    const runs: string[] = [];
    for (let s = 56; s < 60 + 10; s++) {
      const now = new Date(Date.UTC(2026, 0, 1, 0, 0, s));
      const p = planDue({ schedule: minutely, cursor, now, suspended: false });
      if (p.run) runs.push(iso(p.run)!);
      cursor = p.cursor;
    }
    assert.deepEqual(runs, ['2026-01-01T00:01:00.000Z']);
  });
});

describe('decideConcurrency', () => {
  const rows: [Parameters<typeof decideConcurrency>[0], string[], string][] = [
    ['Forbid', [], 'run'],
    ['Forbid', ['r1'], 'skip'],
    ['Replace', [], 'run'],
    ['Replace', ['r1', 'r2'], 'replace'],
    ['Allow', ['r1'], 'run'],
  ];
  for (const [policy, active, action] of rows) {
    test(`${policy} with ${active.length} running → ${action}`, () => {
      const d = decideConcurrency(policy, active);
      assert.equal(d.action, action);
      if (d.action === 'replace') assert.deepEqual(d.cancel, active);
      if (d.action === 'skip') assert.match(d.reason, /Forbid: run r1 of an earlier slot is still going/);
    });
  }
});

describe('slot names', () => {
  const task = { namespace: 'payments', name: 'reindex' };
  const slot = at('2026-10-25T00:30:00Z');
  test('deterministic for (task, slot, attempt), different otherwise', () => {
    assert.equal(slotJobName(task, slot), slotJobName({ ...task }, new Date(slot)));
    const others = [
      slotJobName(task, at('2026-10-25T01:30:00Z')), // the second pass of a repeated hour
      slotJobName({ ...task, namespace: 'billing' }, slot),
      slotJobName({ ...task, name: 'reindex2' }, slot),
      slotJobName(task, slot, 1),
    ];
    assert.equal(new Set([slotJobName(task, slot), ...others]).size, 5);
  });
  test('readable: task, UTC minute, run id', () => {
    assert.equal(slotJobName(task, slot), `reindex-202610250030-${slotRunId(task, slot)}`);
    assert.match(slotRunId(task, slot), /^[a-z0-9]{12}$/);
  });
  test('a 253-character task name still makes a DNS label of at most 63 characters', () => {
    const long = { namespace: 'ns', name: `${'a'.repeat(36)}-.b${'c'.repeat(214)}` };
    const name = slotJobName(long, slot);
    assert.ok(name.length <= 63, name);
    assert.match(name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    assert.notEqual(name, slotJobName({ ...long, name: `${'a'.repeat(36)}-.b${'d'.repeat(214)}` }, slot));
  });
  test('dots in a task name (allowed in Kubernetes names) do not reach the Job name', () => {
    assert.match(slotJobName({ namespace: 'ns', name: 'nightly.report' }, slot), /^nightly-report-/);
  });
});

describe('slot state machine', () => {
  test('terminal states go nowhere', () => {
    for (const from of TERMINAL_SLOT_STATES) for (const to of SLOT_STATES) assert.equal(canTransition(from, to), false, `${from} → ${to}`);
  });
  const allowed: [string, string][] = [
    ['scheduled', 'started'],
    ['scheduled', 'missed'],
    ['scheduled', 'skipped'],
    ['scheduled', 'denied'],
    ['scheduled', 'failed'],
    ['started', 'succeeded'],
    ['started', 'failed'],
    ['started', 'started'],
  ];
  test('exactly the drawn transitions are allowed', () => {
    for (const from of SLOT_STATES)
      for (const to of SLOT_STATES) {
        const want = allowed.some(([f, t]) => f === from && t === to);
        assert.equal(canTransition(from, to), want, `${from} → ${to}`);
      }
  });
  const outcomes: [string, number, number, string][] = [
    ['succeeded', 0, 0, 'succeeded'],
    ['failed', 0, 0, 'failed'],
    ['failed', 0, 2, 'retry'],
    ['failed', 2, 2, 'failed'],
    ['deadline', 1, 2, 'retry'],
    ['lost', 0, 1, 'retry'],
    ['cancelled', 0, 3, 'failed'],
  ];
  for (const [status, attempt, retries, want] of outcomes) {
    test(`a ${status} run on attempt ${attempt} of ${retries} retries → ${want}`, () => assert.equal(slotOutcome(status, attempt, retries), want));
  }
  // A run that never had a Job (created: false).
  const uncreated: [string, number, number, string][] = [
    ['lost', 0, 0, 'retry'], // its launcher killed between the record and the create: nothing ran
    ['lost', 2, 0, 'retry'],
    ['lost', 3, 0, 'failed'], // NEVER_CREATED_RELAUNCHES spent
    ['lost', 3, 1, 'retry'],
    ['failed', 0, 0, 'failed'], // the API server refused the create: the run's own failure
    ['cancelled', 0, 0, 'failed'],
  ];
  for (const [status, attempt, retries, want] of uncreated) {
    test(`a ${status} run that never had a Job, attempt ${attempt} of ${retries} retries → ${want}`, () =>
      assert.equal(slotOutcome(status, attempt, retries, false), want));
  }
});
