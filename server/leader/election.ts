// PURE leader election over a Kubernetes Lease, after client-go's leaderelection:
// every replica reads the Lease each retry period; the holder renews it, the others
// stand by until it has not changed for a whole lease duration, then take it with an
// update conditioned on the resourceVersion they read (the API server lets one writer
// win). No I/O and no clock here: the runner (leader.ts) passes `now` in.
//
// Two clocks, as in client-go, so no two machines' wall clocks are compared:
// - `now` is this process's monotonic clock. A lease counts as expired when this
//   process has seen no change to it for leaseDuration, measured from when it *saw*
//   the change, not from the renewTime written in it.
// - `wallNow` only fills acquireTime/renewTime, for people reading the Lease.
//
// Why two leaders never work at once: the holder stops leading renewDeadline after
// it *sent* its last successful write, unless another write succeeds first. Every
// other replica saw that write, at the earliest, when the API server applied it —
// after it was sent — and waits a whole leaseDuration from then. With
// renewDeadline < leaseDuration, the old holder has stopped (leaseDuration -
// renewDeadline) before anyone else may take the lease, given clocks that run at
// about the same rate (the margin is the tolerance).

export interface LeaseTiming {
  /** How long others wait, after the last change they saw, before taking the lease. */
  leaseDurationMs: number;
  /** How long the holder keeps leading without a successful renewal. */
  renewDeadlineMs: number;
  /** How often every replica reads (and the holder renews) the lease. */
  retryPeriodMs: number;
}

/** client-go's: each wait is retryPeriod × [1, 1.2), so replicas do not march in step. */
export const JITTER_FACTOR = 1.2;

export const DEFAULT_TIMING: LeaseTiming = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/** What a Lease says, as read from or written to the API server. Times are wall-clock ms. */
export interface LeaseRecord {
  /** '' when nobody holds it (released). */
  holder: string;
  leaseDurationSeconds: number;
  acquireTime?: number;
  renewTime?: number;
  transitions: number;
  /** The API server's version of the object; every write is conditioned on it. */
  resourceVersion: string;
}

/** The spec to write (create or update). */
export type LeaseWrite = Omit<LeaseRecord, 'resourceVersion'>;

export interface ElectionState {
  /** The lease as last read or written, and when (monotonic ms) this process saw it change. */
  observed?: { record: LeaseRecord; at: number };
  /**
   * Set while this process leads: the monotonic time at which it sent the last write
   * that succeeded. Leading ends renewDeadline after it, unless renewed.
   */
  renewedAt?: number;
}

export type Action =
  /** No Lease yet: create one naming us. */
  | { kind: 'create'; write: LeaseWrite }
  /** Take a lease that is free, expired or already ours (from a previous term). */
  | { kind: 'acquire'; write: LeaseWrite; resourceVersion: string }
  /** We lead: extend the lease. */
  | { kind: 'renew'; write: LeaseWrite; resourceVersion: string }
  /** Someone else holds a valid lease; it expires (for us) at `expiresAt` unless renewed. */
  | { kind: 'standby'; holder: string; expiresAt: number }
  /** We were leading, but the lease names someone else now: stop at once. */
  | { kind: 'lost'; holder: string }
  /** The lease could not be read: change nothing (a leader keeps leading until its deadline). */
  | { kind: 'wait' };

/** Why a timing cannot keep the one-leader promise, or undefined when it can (client-go's checks). */
export function timingProblem(t: LeaseTiming): string | undefined {
  if (!(t.retryPeriodMs > 0)) return 'the retry period must be longer than zero';
  if (t.leaseDurationMs % 1000 !== 0) return 'the lease duration must be whole seconds (the Lease stores seconds)';
  if (t.leaseDurationMs <= t.renewDeadlineMs) {
    return `the lease duration (${t.leaseDurationMs / 1000}s) must be longer than the renew deadline (${t.renewDeadlineMs / 1000}s): the margin between them is what keeps an old leader from working after another took over`;
  }
  if (t.renewDeadlineMs <= JITTER_FACTOR * t.retryPeriodMs) {
    return `the renew deadline (${t.renewDeadlineMs / 1000}s) must be longer than ${JITTER_FACTOR} × the retry period (${t.retryPeriodMs / 1000}s), or a leader could lose the lease between two attempts`;
  }
  return undefined;
}

/** Whether this process leads at `now`: it renewed, and not longer than renewDeadline ago. */
export function isLeading(state: ElectionState, now: number, t: LeaseTiming): boolean {
  return state.renewedAt !== undefined && now < state.renewedAt + t.renewDeadlineMs;
}

function sameRecord(a: LeaseRecord, b: LeaseRecord): boolean {
  return a.resourceVersion === b.resourceVersion;
}

/**
 * Takes in what a read of the lease returned (null: no such Lease; 'error': the read
 * failed) and decides what to do next.
 */
export function plan(
  state: ElectionState,
  read: LeaseRecord | null | 'error',
  ctx: { identity: string; now: number; wallNow: number; timing: LeaseTiming },
): { state: ElectionState; action: Action } {
  const { identity, now, wallNow, timing } = ctx;
  const leading = isLeading(state, now, timing);
  // A leader whose deadline passed is no longer one, whatever the lease says.
  const base: ElectionState = leading ? state : { ...state, renewedAt: undefined };
  if (read === 'error') return { state: base, action: { kind: 'wait' } };
  const fresh = (holder: string, transitions: number, acquireTime: number): LeaseWrite => ({
    holder,
    leaseDurationSeconds: timing.leaseDurationMs / 1000,
    acquireTime,
    renewTime: wallNow,
    transitions,
  });
  if (read === null) {
    return { state: { ...base, observed: undefined }, action: { kind: 'create', write: fresh(identity, 0, wallNow) } };
  }
  const observed = base.observed && sameRecord(base.observed.record, read) ? base.observed : { record: read, at: now };
  const next: ElectionState = { ...base, observed };
  if (read.holder === identity) {
    if (leading) {
      return {
        state: next,
        action: { kind: 'renew', write: fresh(identity, read.transitions, read.acquireTime ?? wallNow), resourceVersion: read.resourceVersion },
      };
    }
    // Ours from an earlier term (we stopped, or restarted under the same name). Safe to
    // take back: the write succeeds only if nobody changed the lease since this read.
    return { state: next, action: { kind: 'acquire', write: fresh(identity, read.transitions, wallNow), resourceVersion: read.resourceVersion } };
  }
  if (leading) return { state: { ...next, renewedAt: undefined }, action: { kind: 'lost', holder: read.holder } };
  const expiresAt = observed.at + read.leaseDurationSeconds * 1000;
  if (read.holder !== '' && now < expiresAt) return { state: next, action: { kind: 'standby', holder: read.holder, expiresAt } };
  return { state: next, action: { kind: 'acquire', write: fresh(identity, read.transitions + 1, wallNow), resourceVersion: read.resourceVersion } };
}

/**
 * Takes in how a create/acquire/renew write went. `sentAt` is when the write was sent:
 * a successful one extends leading from then (not from its answer, which may come late).
 */
export function settle(state: ElectionState, result: { ok: LeaseRecord } | { failed: true }, ctx: { sentAt: number; now: number }): ElectionState {
  if ('failed' in result) return state;
  return { observed: { record: result.ok, at: ctx.now }, renewedAt: ctx.sentAt };
}

/** The write that gives the lease up (client-go's release): free, and expiring in a second for anyone who still sees it held. */
export function releaseWrite(state: ElectionState, wallNow: number): LeaseWrite {
  return { holder: '', leaseDurationSeconds: 1, acquireTime: wallNow, renewTime: wallNow, transitions: state.observed?.record.transitions ?? 0 };
}

/**
 * How long to wait before the next attempt. `jitter` in [0, 1) comes from the caller
 * (no randomness here). A standby wakes right when the lease would expire, if that is
 * sooner, so an orphaned lease is taken within one retry period of its expiry.
 */
export function nextDelay(action: Action, now: number, t: LeaseTiming, jitter: number): number {
  if (action.kind === 'renew' || action.kind === 'acquire' || action.kind === 'create') return t.retryPeriodMs;
  const periodic = t.retryPeriodMs * (1 + (JITTER_FACTOR - 1) * jitter);
  if (action.kind === 'standby') return Math.max(0, Math.min(periodic, action.expiresAt - now + 1));
  return periodic;
}
