// Durations as the CLI reads them (protocol/duration.ts is the grammar) and times as `--since` takes them.
import { parseDuration as parseDurationText } from '../../protocol/duration.js';
import { CliError } from '../errors.js';

export { formatDuration as formatSeconds } from '../../protocol/duration.js';

/** "1h30m" → 5400; anything else is a usage error naming the flag. */
export function parseDuration(text: string, what = 'duration'): number {
  const r = parseDurationText(text);
  if (!r.ok) throw new CliError(`${what}: ${r.error}`, { usage: true });
  return r.seconds;
}

/**
 * `--since 24h` means "24 hours before now"; anything else must be a date the
 * server can compare (ISO 8601). Returns an ISO timestamp with an offset, which
 * is what the API's schema requires.
 */
export function parseTimeBound(text: string, flag: string, now: Date = new Date()): string {
  const s = text.trim();
  // A number with a letter after it can only be meant as a duration: its own error says what is wrong.
  if (/^\d+[a-z]/i.test(s)) {
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
