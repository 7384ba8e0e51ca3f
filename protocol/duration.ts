// The one duration grammar, for every place oddjob reads a duration: CLI flags
// (--timeout, --since, --expires), the web form's time limit, the server's
// flags and env, the Helm chart's values (values.schema.json holds the same
// pattern) and the oddjob.io/max-duration annotation. docs/durations.md is its
// user-facing description.
//
//   <n>d <n>h <n>m <n>s, largest unit first, each at most once, no spaces:
//   90s  10m  1h30m  2d  1d12h        total more than zero
//
// Refused, with a hint: a bare number (seconds? minutes? the reader of a Helm
// value or an annotation cannot tell), upper-case units ("1M" reads as a month
// elsewhere), units out of order or repeated ("30m1h", "1h1h"), and spaces.
// The same text then means the same thing wherever it is pasted.

/** The grammar as a regular expression source (RE2-compatible, so Helm's schema check can use it). */
export const DURATION_PATTERN = '^(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?$';
const DURATION = new RegExp(DURATION_PATTERN);
const UNIT_SECONDS = { d: 86_400, h: 3_600, m: 60, s: 1 } as const;

export type DurationResult = { ok: true; seconds: number } | { ok: false; error: string };

/** "1h30m" → { ok: true, seconds: 5400 }; the error says what was wrong and how to write it. */
export function parseDuration(text: string): DurationResult {
  const t = text.trim();
  const m = t ? DURATION.exec(t) : null;
  if (!m) return { ok: false, error: `"${text}" is not a duration: ${hintFor(t)}` };
  const [, d, h, mi, s] = m;
  const seconds = num(d) * UNIT_SECONDS.d + num(h) * UNIT_SECONDS.h + num(mi) * UNIT_SECONDS.m + num(s);
  if (!Number.isSafeInteger(seconds)) return { ok: false, error: `"${text}" is too long to be a duration` };
  if (seconds <= 0) return { ok: false, error: `"${text}" is zero; a duration must be longer than that` };
  return { ok: true, seconds };
}

/** Like parseDuration, for callers that report errors by throwing. */
export function durationSeconds(text: string): number {
  const r = parseDuration(text);
  if (!r.ok) throw new Error(r.error);
  return r.seconds;
}

/** Seconds back to the shortest text in the grammar: 5400 → "1h30m"; 0 → "0s". */
export function formatDuration(total: number): string {
  let rest = Math.max(0, Math.floor(total));
  let out = '';
  for (const [unit, size] of Object.entries(UNIT_SECONDS)) {
    const n = Math.floor(rest / size);
    if (n) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out || '0s';
}

const num = (g: string | undefined) => Number(g ?? 0);

function hintFor(t: string): string {
  const eg = 'like 90s, 10m, 1h30m or 2d';
  if (!t) return `write a number with a unit, ${eg}`;
  if (/^\d+$/.test(t)) return `add a unit: ${t}s, ${t}m or ${t}h`;
  if (DURATION.test(t.toLowerCase())) return `units are lower-case: ${t.toLowerCase()}`;
  const compact = t.replace(/\s+/g, '');
  if (compact !== t && DURATION.test(compact)) return `no spaces: ${compact}`;
  if (/^(\d+[dhms])+$/.test(compact.toLowerCase())) return `write each unit once, largest first (d, h, m, s), ${eg}`;
  return `write whole numbers with a unit (d, h, m, s), ${eg}`;
}
