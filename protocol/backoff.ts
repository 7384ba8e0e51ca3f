// Retry delays for every reconnect loop (CLI and browser streams, the server's
// watches and log readers): exponential backoff with AWS's "full jitter" —
// the delay before retry n is uniform in [0, min(cap, base * 2^n)). When a
// server restarts, all its clients fail at once; without jitter they would
// also come back at once, in waves, at every step of the backoff.
// https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/

export interface BackoffOptions {
  /** Ceiling of the first delay (attempt 0). */
  baseMs: number;
  /** The ceiling never grows past this. */
  capMs: number;
}

/** The delay before retry number `attempt` (0 for the first retry). */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.capMs, opts.baseMs * 2 ** Math.min(Math.max(0, attempt), 52));
  return Math.floor(random() * ceiling);
}
