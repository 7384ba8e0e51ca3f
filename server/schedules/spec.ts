// PURE: a Task's `spec.schedule`, parsed and validated once, so everything after
// (slot planning, the scheduler, `oddjob schedules`) works on a value that is known
// to be good. A bad schedule gets an error that names the field and says how to fix
// it; the Task then reports it in status.conditions instead of firing.
import { z } from 'zod';
import { parseDuration } from '../../protocol/duration.js';
import { describeZodError } from '../../protocol/api.js';
import { compileCron } from './cron.js';

export const CONCURRENCY_POLICIES = ['Forbid', 'Replace', 'Allow'] as const;
export type ConcurrencyPolicy = (typeof CONCURRENCY_POLICIES)[number];

/** Bounds that keep one Task from asking for something unreasonable. */
export const SCHEDULE_LIMITS = { retries: 10, historyLimit: 100 } as const;

const cronText = z
  .string({ error: 'cron is required, e.g. "30 2 * * *" or "@daily"' })
  .trim()
  .min(1, 'cron is required, e.g. "30 2 * * *" or "@daily"')
  .superRefine((text, ctx) => {
    const err = cronError(text);
    if (err) ctx.addIssue({ code: 'custom', message: err });
  });

const timeZone = z
  .string({ error: 'timeZone is required: an IANA zone such as Europe/Berlin or UTC (a schedule without one would follow the server clock)' })
  .trim()
  .superRefine((tz, ctx) => {
    const err = timeZoneError(tz);
    if (err) ctx.addIssue({ code: 'custom', message: err });
  });

const startingDeadline = z.string().transform((text, ctx) => {
  const r = parseDuration(text);
  if (!r.ok) {
    ctx.addIssue({ code: 'custom', message: r.error });
    return z.NEVER;
  }
  return r.seconds;
});

const limit = z
  .number({ error: 'must be a whole number' })
  .int('must be a whole number')
  .min(0, 'must be 0 or more')
  .max(SCHEDULE_LIMITS.historyLimit, `must be at most ${SCHEDULE_LIMITS.historyLimit}`);

export const ScheduleSpec = z
  .object({
    cron: cronText,
    timeZone,
    /** Values for the Task's params; checked against the Task's declarations by server/tasks. */
    params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
    concurrencyPolicy: z.enum(CONCURRENCY_POLICIES, { error: 'concurrencyPolicy must be Forbid, Replace or Allow' }).default('Forbid'),
    /** Seconds after its nominal time that a slot may still start; absent: any time, but only the latest missed slot. */
    startingDeadline: startingDeadline.optional(),
    suspend: z.boolean({ error: 'suspend must be true or false' }).default(false),
    historyLimit: z
      .object({ succeeded: limit.default(3), failed: limit.default(3) })
      .strict()
      .default({ succeeded: 3, failed: 3 }),
    retries: z
      .number({ error: 'retries must be a whole number' })
      .int('retries must be a whole number')
      .min(0, 'retries must be 0 or more')
      .max(SCHEDULE_LIMITS.retries, `retries must be at most ${SCHEDULE_LIMITS.retries}`)
      .default(0),
  })
  .strict();

/** A validated schedule: startingDeadline in seconds, defaults filled in. */
export type Schedule = z.infer<typeof ScheduleSpec>;

export type ScheduleResult = { ok: true; schedule: Schedule } | { ok: false; error: string };

/** `spec.schedule` as found in a Task (anything at all) → a Schedule, or one line saying what is wrong. */
export function parseSchedule(raw: unknown): ScheduleResult {
  const r = ScheduleSpec.safeParse(raw);
  if (!r.success) return { ok: false, error: `spec.schedule: ${describeZodError(r.error)}` };
  return { ok: true, schedule: r.data };
}

const NICKNAMES = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'];
// Vixie cron's grammar only: numbers, names, *, ranges, steps, lists. Croner's
// extensions (L, W, #, ?, +, seconds, years) mean something else or nothing in every
// other cron, and a Task kept in git is read by people who know cron.
const ATOM = String.raw`(?:\*|[0-9]{1,2}|[A-Za-z]{3})`;
const FIELD = new RegExp(String.raw`^${ATOM}(?:-${ATOM})?(?:/[0-9]{1,2})?(?:,${ATOM}(?:-${ATOM})?(?:/[0-9]{1,2})?)*$`);
const FIELD_NAMES = ['minute', 'hour', 'day of month', 'month', 'day of week'];

function cronError(text: string): string | undefined {
  if (text.startsWith('@')) {
    if (text === '@reboot') return '@reboot has no time to schedule; use a cron expression such as "0 3 * * *"';
    if (!NICKNAMES.includes(text)) return `unknown nickname ${text}; use one of ${NICKNAMES.join(', ')} or 5 fields`;
  } else {
    const fields = text.split(/\s+/);
    if (fields.length !== 5) {
      return `"${text}" has ${fields.length} fields; write 5 (minute hour day-of-month month day-of-week), e.g. "30 2 * * *"`;
    }
    for (const [i, f] of fields.entries()) {
      if (!FIELD.test(f)) return `${FIELD_NAMES[i]} field "${f}" is not standard cron: use numbers, names, *, ranges (1-5), steps (*/15) and lists (1,15)`;
    }
  }
  try {
    compileCron(text, 'UTC');
  } catch (err) {
    return `"${text}" is not a valid cron expression: ${(err as Error).message}`;
  }
  return undefined;
}

function timeZoneError(tz: string): string | undefined {
  const hint = 'use an IANA zone name such as Europe/Berlin, America/New_York or UTC';
  if (!tz) return `timeZone is required; ${hint}`;
  // Node's Intl also takes fixed offsets ("+01:00"): those never change for DST, which
  // is rarely what a schedule written in local time wants; an IANA name says so.
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/.test(tz)) return `"${tz}" is not an IANA time zone name; ${hint}`;
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
  } catch {
    return `unknown time zone "${tz}"; ${hint}`;
  }
  return undefined;
}
