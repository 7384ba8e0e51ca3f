// Slot times across daylight saving time, checked against what Vixie cron does:
// a fixed-time job in a repeated hour fires once (the first pass), in a skipped hour
// at the first valid instant after the gap; an interval job fires in both passes of
// a repeated hour and not at all in a gap. Both transitions, several zones, including
// a 30-minute DST shift (Lord Howe) and a zone without DST on a half-hour offset
// (Kolkata). The clock is the `after` argument: no timers, no real time.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { nextSlots, slotsBetween } from '../../server/schedules/cron.js';

type Row = { zone: string; cron: string; after: string; want: string[]; why: string };

const rows: Row[] = [
  // Europe/Berlin: 2026-03-29 02:00 CET → 03:00 CEST; 2026-10-25 03:00 CEST → 02:00 CET.
  {
    zone: 'Europe/Berlin',
    cron: '30 2 * * *',
    after: '2026-03-28T12:00:00Z',
    want: ['2026-03-29T01:00:00Z', '2026-03-30T00:30:00Z'],
    why: 'skipped 02:30 fires at 03:00 CEST',
  },
  {
    zone: 'Europe/Berlin',
    cron: '30 2 * * *',
    after: '2026-10-24T12:00:00Z',
    want: ['2026-10-25T00:30:00Z', '2026-10-26T01:30:00Z'],
    why: 'repeated 02:30 fires once, CEST',
  },
  {
    zone: 'Europe/Berlin',
    cron: '0 2,14 * * *',
    after: '2026-10-24T23:00:00Z',
    want: ['2026-10-25T00:00:00Z', '2026-10-25T13:00:00Z'],
    why: 'a list is fixed-time too (Vixie): repeated 02:00 once',
  },
  {
    zone: 'Europe/Berlin',
    cron: '*/30 * * * *',
    after: '2026-10-25T00:00:00Z',
    want: ['2026-10-25T00:30:00Z', '2026-10-25T01:00:00Z', '2026-10-25T01:30:00Z', '2026-10-25T02:00:00Z'],
    why: 'interval: both passes of 02:00-03:00',
  },
  {
    zone: 'Europe/Berlin',
    cron: '*/30 * * * *',
    after: '2026-03-29T00:00:00Z',
    want: ['2026-03-29T00:30:00Z', '2026-03-29T01:00:00Z'],
    why: 'interval: nothing inside the gap',
  },
  // America/New_York: 2026-03-08 02:00 EST → 03:00 EDT; 2026-11-01 02:00 EDT → 01:00 EST.
  {
    zone: 'America/New_York',
    cron: '30 2 * * *',
    after: '2026-03-07T12:00:00Z',
    want: ['2026-03-08T07:00:00Z', '2026-03-09T06:30:00Z'],
    why: 'skipped 02:30 fires at 03:00 EDT',
  },
  {
    zone: 'America/New_York',
    cron: '30 1 * * *',
    after: '2026-10-31T12:00:00Z',
    want: ['2026-11-01T05:30:00Z', '2026-11-02T06:30:00Z'],
    why: 'repeated 01:30 fires once, EDT',
  },
  {
    zone: 'America/New_York',
    cron: '@hourly',
    after: '2026-11-01T04:00:00Z',
    want: ['2026-11-01T05:00:00Z', '2026-11-01T06:00:00Z', '2026-11-01T07:00:00Z'],
    why: 'hourly fires in both 01:00s',
  },
  // Australia/Sydney: 2026-04-05 03:00 AEDT → 02:00 AEST; 2026-10-04 02:00 AEST → 03:00 AEDT.
  {
    zone: 'Australia/Sydney',
    cron: '30 2 * * *',
    after: '2026-04-04T00:00:00Z',
    want: ['2026-04-04T15:30:00Z', '2026-04-05T16:30:00Z'],
    why: 'repeated 02:30 fires once, AEDT',
  },
  {
    zone: 'Australia/Sydney',
    cron: '30 2 * * *',
    after: '2026-10-03T00:00:00Z',
    want: ['2026-10-03T16:00:00Z', '2026-10-04T15:30:00Z'],
    why: 'skipped 02:30 fires at 03:00 AEDT',
  },
  // Australia/Lord_Howe, a 30-minute shift: 2026-04-05 02:00 → 01:30; 2026-10-04 02:00 → 02:30.
  {
    zone: 'Australia/Lord_Howe',
    cron: '45 1 * * *',
    after: '2026-04-04T00:00:00Z',
    want: ['2026-04-04T14:45:00Z', '2026-04-05T15:15:00Z'],
    why: 'repeated 01:45 fires once (+11)',
  },
  {
    zone: 'Australia/Lord_Howe',
    cron: '*/15 * * * *',
    after: '2026-04-04T14:15:00Z',
    want: ['2026-04-04T14:30:00Z', '2026-04-04T14:45:00Z', '2026-04-04T15:00:00Z', '2026-04-04T15:15:00Z', '2026-04-04T15:30:00Z'],
    why: 'interval: both passes of 01:30-02:00',
  },
  {
    zone: 'Australia/Lord_Howe',
    cron: '15 2 * * *',
    after: '2026-10-03T00:00:00Z',
    want: ['2026-10-03T15:30:00Z', '2026-10-04T15:15:00Z'],
    why: 'skipped 02:15 fires at 02:30 (+11)',
  },
  // Asia/Kolkata: +05:30 all year.
  {
    zone: 'Asia/Kolkata',
    cron: '30 2 * * *',
    after: '2026-03-28T00:00:00Z',
    want: ['2026-03-28T21:00:00Z', '2026-03-29T21:00:00Z'],
    why: 'no DST: 24 h apart',
  },
  { zone: 'UTC', cron: '@daily', after: '2026-10-24T23:59:00Z', want: ['2026-10-25T00:00:00Z', '2026-10-26T00:00:00Z'], why: 'UTC has no DST' },
];

describe('slot times across DST (Vixie cron)', () => {
  for (const r of rows) {
    test(`${r.zone} "${r.cron}": ${r.why}`, () => {
      const got = nextSlots({ cron: r.cron, timeZone: r.zone }, new Date(r.after), r.want.length).map((d) => d.toISOString());
      assert.deepEqual(
        got,
        r.want.map((w) => new Date(w).toISOString()),
      );
    });
  }
});

const localDate = (d: Date, zone: string) => d.toLocaleDateString('sv-SE', { timeZone: zone });

describe('a daily fixed-time job fires exactly once on every day of the year', () => {
  const cases: [string, string][] = [
    ['Europe/Berlin', '30 2 * * *'],
    ['America/New_York', '30 1 * * *'],
    ['America/New_York', '30 2 * * *'],
    ['Australia/Sydney', '30 2 * * *'],
    ['Australia/Lord_Howe', '45 1 * * *'],
    ['Australia/Lord_Howe', '15 2 * * *'],
    ['Asia/Kolkata', '30 2 * * *'],
  ];
  for (const [zone, cron] of cases) {
    test(`${zone} "${cron}"`, () => {
      const { slots, more } = slotsBetween({ cron, timeZone: zone }, new Date('2025-12-31T12:00:00Z'), new Date('2026-12-31T12:00:00Z'), 1000);
      assert.equal(more, false);
      const days = slots.map((s) => localDate(s, zone));
      assert.equal(new Set(days).size, days.length, 'no local day fires twice');
      assert.equal(days.length, 365, 'every local day of 2026 fires');
    });
  }
});

describe('slotsBetween', () => {
  const s = { cron: '* * * * *', timeZone: 'UTC' };
  test('(after, until]: a slot exactly at until is due, one exactly at after is not', () => {
    const { slots } = slotsBetween(s, new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:03:00Z'), 10);
    assert.deepEqual(
      slots.map((d) => d.toISOString()),
      ['2026-01-01T00:01:00.000Z', '2026-01-01T00:02:00.000Z', '2026-01-01T00:03:00.000Z'],
    );
  });
  test('a year of every-minute slots: only the newest are listed, and it says there were more', () => {
    const { slots, more } = slotsBetween(s, new Date('2025-01-01T00:00:00Z'), new Date('2026-01-01T00:00:30Z'), 5);
    assert.equal(more, true);
    assert.deepEqual(
      slots.map((d) => d.toISOString()),
      ['2025-12-31T23:56:00.000Z', '2025-12-31T23:57:00.000Z', '2025-12-31T23:58:00.000Z', '2025-12-31T23:59:00.000Z', '2026-01-01T00:00:00.000Z'],
    );
  });
  test('the backwards shortcut agrees with the forward walk through a repeated hour', () => {
    const hourly = { cron: '*/20 * * * *', timeZone: 'Europe/Berlin' };
    const after = new Date('2026-10-24T22:00:00Z');
    const until = new Date('2026-10-25T03:00:00Z');
    const all = slotsBetween(hourly, after, until, 1000);
    const some = slotsBetween(hourly, after, until, 4);
    assert.equal(all.more, false);
    assert.equal(some.more, true);
    assert.deepEqual(some.slots, all.slots.slice(-4));
  });
  test('empty when until is not after after', () => {
    assert.deepEqual(slotsBetween(s, new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'), 10), { slots: [], more: false });
  });
});
