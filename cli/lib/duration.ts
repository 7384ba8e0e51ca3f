// Durations as people type them (30s, 10m, 1h30m, 7d) and times as `--since` takes them.
import { CliError } from '../errors.js';

const UNIT_SECONDS = { d: 86_400, h: 3_600, m: 60, s: 1 } as const;
const DURATION = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** "1h30m" → 5400. Units must come largest first, so "30m1h" is rejected rather than guessed at. */
export function parseDuration(text: string, what = 'duration'): number {
  const s = text.trim().toLowerCase();
  const m = DURATION.exec(s);
  if (!s || !m || m.slice(1).every((g) => g === undefined)) {
    const hint = /^\d+$/.test(s) ? ` (add a unit: ${s}s, ${s}m or ${s}h)` : '';
    throw new CliError(`${what} "${text}" is not a duration${hint}; use e.g. 30s, 10m, 2h or 1h30m`, { usage: true });
  }
  const [, d, h, mi, se] = m;
  const total = Number(d ?? 0) * UNIT_SECONDS.d + Number(h ?? 0) * UNIT_SECONDS.h + Number(mi ?? 0) * UNIT_SECONDS.m + Number(se ?? 0);
  if (total <= 0) throw new CliError(`${what} "${text}" must be longer than zero`, { usage: true });
  return total;
}

/**
 * `--since 24h` means "24 hours before now"; anything else must be a date the
 * server can compare (ISO 8601). Returns an ISO timestamp with an offset, which
 * is what the API's schema requires.
 */
export function parseTimeBound(text: string, flag: string, now: Date = new Date()): string {
  const s = text.trim();
  if (/^\d+[dhms]/i.test(s) && DURATION.test(s.toLowerCase())) {
    return new Date(now.getTime() - parseDuration(s, flag) * 1000).toISOString();
  }
  // Only ISO-looking input: Date.parse would also accept "May 5" in the local zone, which surprises.
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i.test(s)) {
    const t = Date.parse(s.replace(' ', 'T'));
    if (!Number.isNaN(t)) return new Date(t).toISOString();
  }
  throw new CliError(`${flag} "${text}" is neither a duration (24h, 30m, 7d) nor an ISO time (2024-05-01 or 2024-05-01T12:00:00Z)`, { usage: true });
}

/** Compact age like kubectl's: 45s, 12m, 5h, 3d. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return h < 10 && m % 60 ? `${h}h${m % 60}m` : `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

/** Seconds back to the shortest duration text: 5400 → "1h30m". */
export function formatSeconds(total: number): string {
  let rest = Math.max(0, Math.floor(total));
  let out = '';
  for (const [unit, size] of Object.entries(UNIT_SECONDS)) {
    const n = Math.floor(rest / size);
    if (n) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out || '0s';
}
