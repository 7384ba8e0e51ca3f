// PURE: cron expression + IANA zone → slot times (instants), on croner.
//
// Daylight saving time behaves like Vixie cron (what a cron user expects), which
// croner implements and test/unit/schedule-cron.test.ts checks across both
// transitions in several zones:
//   - fixed-time jobs (no *, no step in minute and hour: "30 2 * * *", "0 9,17 * * *"):
//     a wall time that occurs twice (fall back) fires once, at its first occurrence;
//     a wall time that does not exist (spring forward) fires at the first valid
//     instant after the gap, that same day;
//   - interval jobs (a * or a step in minute or hour: "*/15 * * * *", "@hourly"):
//     they keep their rhythm in real time — both passes through a repeated hour fire,
//     and times inside a gap do not exist, so they do not fire.
// croner's option fixedTimeRule "no-wildcard" is what makes lists and ranges
// ("30 2,14 * * *") fixed-time, as in Vixie cron. One known difference: Vixie treats a
// step without * ("0 0-23/2 * * *") as fixed-time; croner treats it as interval.
import { Cron } from 'croner';

/** The options every slot computation uses: 5 fields, Vixie's DST rule, never a timer. */
export function compileCron(expr: string, timeZone: string): Cron {
  return new Cron(expr, { timezone: timeZone, mode: '5-part', fixedTimeRule: 'no-wildcard', paused: true });
}

export interface CronSchedule {
  cron: string;
  timeZone: string;
}

/** Croner patterns parse once per (expr, zone); the scheduler asks about the same few every tick. */
const compiled = new Map<string, Cron>();
function cronFor(s: CronSchedule): Cron {
  const key = `${s.timeZone}\u0000${s.cron}`;
  let c = compiled.get(key);
  if (!c) {
    if (compiled.size >= 10_000) compiled.clear();
    compiled.set(key, (c = compileCron(s.cron, s.timeZone)));
  }
  return c;
}

/** The first slot strictly after `after`; undefined if the expression never fires again (Feb 30). */
export function nextSlot(s: CronSchedule, after: Date): Date | undefined {
  return cronFor(s).nextRun(after) ?? undefined;
}

/** The next `n` slots strictly after `after`, in order. */
export function nextSlots(s: CronSchedule, after: Date, n: number): Date[] {
  return cronFor(s).nextRuns(n, after);
}

/**
 * Slots in (after, until], oldest first, at most `max` of them — the newest ones:
 * after a long outage only the recent past matters, and counting a year of
 * every-minute slots one by one is work nobody needs. `more` says older ones were
 * left out.
 */
export function slotsBetween(s: CronSchedule, after: Date, until: Date, max: number): { slots: Date[]; more: boolean } {
  if (until <= after) return { slots: [], more: false };
  const slots: Date[] = [];
  // Walk forward (croner's forward walk is the reference for DST), but start no further
  // back than needed to reach the newest `max`: find where that is by walking backwards.
  const newest = cronFor(s).previousRuns(max + 1, new Date(until.getTime() + 1));
  const from = newest.length === max + 1 && newest[max]! > after ? newest[max]! : after;
  const more = from > after;
  let t = from;
  for (;;) {
    const next = nextSlot(s, t);
    if (!next || next > until) break;
    slots.push(next);
    t = next;
  }
  return { slots: slots.slice(-max), more: more || slots.length > max };
}
