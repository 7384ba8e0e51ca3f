// PURE: where live output (an attach) joins a container's log.
//
// An attach carries output from the moment it connects; what the command wrote before
// is only in the log. The capture opens the attach, stops reading it (the runtime then
// soon blocks the writer: it writes attached streams synchronously), reads the log, and
// asks here where in that log the attach's first byte sits. Everything the log holds
// after that point is also the head of the attach (the runtime writes each chunk to
// the log and to every attached stream), so the join is the position k where the rest
// of the log, log[k..], is the start of the live bytes.
//
// More than one k can fit when the output repeats itself exactly (`yes`); then the one
// with the longest overlap is taken (nothing printed twice) and the answer says it was
// ambiguous, so the caller can tell. No overlap at all (the attach started after the
// last byte in the log) is the answer only when no real overlap fits.

export type Join =
  /** `at`: bytes of the log before the live stream starts. */
  | { kind: 'join'; at: number; ambiguous: boolean }
  /** The live bytes so far cannot decide yet; call again with more of them. */
  | { kind: 'need-more' }
  /**
   * The log starts inside the live bytes, `liveAt` bytes in: the kubelet rotated the log
   * file after the attach began and before the log was read, so whatever the command
   * wrote before the attach is no longer in the log. Everything the log has is live too.
   */
  | { kind: 'rotated'; liveAt: number };

const MAX_CANDIDATES = 4096;
/** Live bytes that agree with the log over this many bytes place the join even if they end before the log does. */
export const MIN_EVIDENCE = 4096;
/** A second fit at least this long means the output repeats itself (shorter: the end of the log happens to look like the start). */
const REPEAT = 64;

/**
 * `log`: one stream's log, read after the attach opened. `live`: that stream's bytes from
 * the attach so far. `settled`: no more live bytes are coming soon (the writer is idle or
 * done), so an overlap the live bytes do not yet cover is not going to be confirmed.
 */
export function findJoin(log: Buffer, live: Buffer, settled: boolean): Join {
  const n = log.length;
  // The whole log is searched: the paused attach path was measured holding 34 MiB, so the
  // join can be far from the end. A 4 KiB needle keeps the candidates few.
  const lowest = 0;
  let confirmed: number | undefined;
  let checked = 0;
  for (const k of candidates(log, live, lowest)) {
    if (++checked > MAX_CANDIDATES) break;
    const overlap = n - k;
    const common = Math.min(overlap, live.length);
    if (log.compare(live, 0, common, k, k + common) !== 0) continue;
    if (common < overlap) {
      // Fits so far, but the live bytes do not reach the end of the log yet. A long
      // agreement decides (the attach path can hold tens of MiB, more than is worth
      // holding here); a short one waits for more, unless no more is coming.
      if (common >= MIN_EVIDENCE) return { kind: 'join', at: k, ambiguous: false };
      if (!settled) return { kind: 'need-more' };
      continue;
    }
    // An empty overlap always fits; it is the answer only when no real overlap does.
    if (overlap === 0) break;
    if (confirmed === undefined) confirmed = k;
    // A second fit that long means the output repeats itself; a few bytes are a coincidence
    // (the end of the log happening to look like the start of the live bytes).
    else if (overlap >= REPEAT) return { kind: 'join', at: confirmed, ambiguous: true };
    else break;
  }
  // A log shorter than the evidence cannot be told from a short line printed again later
  // (a prompt): it is taken as written before the attach.
  if (n < MIN_EVIDENCE || (confirmed !== undefined && n - confirmed >= MIN_EVIDENCE)) return { kind: 'join', at: confirmed ?? n, ambiguous: false };
  // No overlap, or one of a few bytes (the log's last line break and the live bytes'
  // first could be a coincidence). Either the writer was quiet from the attach until the
  // log was read (then nothing the log has is live), or the log no longer starts where
  // the output did (then its head is somewhere in the live bytes, maybe further than they
  // reach yet: the log is read while the attach is held back, up to tens of MiB).
  const liveAt = live.indexOf(log.subarray(0, MIN_EVIDENCE));
  if (liveAt !== -1) return { kind: 'rotated', liveAt };
  if (!settled) return { kind: 'need-more' };
  return { kind: 'join', at: confirmed ?? n, ambiguous: false };
}

/** Positions k (ascending) in [lowest, n] where log[k..] could start with `live`. */
function* candidates(log: Buffer, live: Buffer, lowest: number): Generator<number> {
  const n = log.length;
  if (live.length === 0) {
    // Nothing live yet: every position fits "so far"; the first one decides need-more.
    if (lowest < n) yield lowest;
    yield n;
    return;
  }
  // Long enough to include something that changes from line to line: a short needle of
  // a line's constant part would match every line and bury the true join among them.
  const needle = live.subarray(0, Math.min(MIN_EVIDENCE, live.length));
  // Full needle matches (indexOf is fast), then the tail where only part of it fits.
  const tailFrom = Math.max(lowest, n - needle.length + 1);
  for (let i = log.indexOf(needle, lowest); i !== -1 && i < tailFrom; i = log.indexOf(needle, i + 1)) yield i;
  for (let k = tailFrom; k < n; k++) if (log[k] === live[0]) yield k;
  yield n;
}

/**
 * Where the bytes we already have end inside a re-read log: the end of the last
 * occurrence of `tail` (the last bytes we have of that stream) at or before `limit`.
 *
 * The kubelet serves only the current log file, and it can have rotated the file within
 * those last bytes (seen after a run went quiet for the kubelet's 10-s check and then
 * printed one more line): the log then starts with the end of `tail`, and only that end
 * can be found. That lines up when at least MIN_EVIDENCE bytes of it agree, or, with
 * `endSeen` (the caller saw the output end: the attach closed as the container's output
 * did), when all of log[0..limit] is the end of `tail`, however short: nothing in it is new.
 * Without `endSeen` a few bytes are not enough: a log of one "\n" after a real gap would
 * match any tail ending in a line break.
 *
 * Undefined when the log no longer holds them (rotated away while nobody read it).
 */
export function locateTail(log: Buffer, tail: Buffer, limit = log.length, endSeen = false): number | undefined {
  if (tail.length === 0) return undefined;
  if (limit >= tail.length) {
    const i = log.lastIndexOf(tail, limit - tail.length);
    if (i !== -1) return i + tail.length;
  }
  const k = overlapAtStart(log.subarray(0, limit), tail);
  if (k >= MIN_EVIDENCE || (endSeen && k > 0 && k === limit)) return k;
  return undefined;
}

/** The longest k with log[0..k] equal to the last k bytes of `tail`; only k ≥ MIN_EVIDENCE or k = log.length are looked for. */
function overlapAtStart(log: Buffer, tail: Buffer): number {
  if (log.length === 0) return 0;
  const needle = log.subarray(0, Math.min(MIN_EVIDENCE, log.length));
  // Leftmost fit first: the longest overlap.
  let checked = 0;
  for (let i = tail.indexOf(needle, Math.max(0, tail.length - log.length)); i !== -1 && ++checked <= MAX_CANDIDATES; i = tail.indexOf(needle, i + 1)) {
    const k = tail.length - i;
    if (k < needle.length) break;
    if (log.compare(tail, i, tail.length, 0, k) === 0) return k;
  }
  return 0;
}
