// Table-driven tests of the pure leader election (server/leader/election.ts): what a
// replica does with each lease it reads, when leading ends, and — over a model of the
// API server's compare-and-swap on resourceVersion, with a virtual clock — that no two
// replicas ever lead at the same moment, however their calls interleave or fail.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../server/config.js';
import {
  type Action,
  type ElectionState,
  type LeaseRecord,
  type LeaseTiming,
  type LeaseWrite,
  DEFAULT_TIMING,
  isLeading,
  nextDelay,
  plan,
  releaseWrite,
  settle,
  timingProblem,
} from '../../server/leader/election.js';

// mulberry32: the same seed, the same run.
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const T: LeaseTiming = DEFAULT_TIMING; // 15 s / 10 s / 2 s
const ME = 'oddjob-a';
const WALL = Date.parse('2026-01-01T00:00:00Z');

const lease = (over: Partial<LeaseRecord> = {}): LeaseRecord => ({
  holder: 'oddjob-b',
  leaseDurationSeconds: 15,
  acquireTime: WALL - 60_000,
  renewTime: WALL - 1_000,
  transitions: 3,
  resourceVersion: '100',
  ...over,
});

describe('plan: what a replica does with the lease it read', () => {
  const cases: Array<{
    name: string;
    state: ElectionState;
    read: LeaseRecord | null | 'error';
    now: number;
    want: Partial<Action> & { kind: Action['kind'] };
    write?: Partial<LeaseWrite>;
    leadingAfter: boolean;
  }> = [
    {
      name: 'no lease yet: create it, naming us',
      state: {},
      read: null,
      now: 0,
      want: { kind: 'create' },
      write: { holder: ME, transitions: 0, leaseDurationSeconds: 15 },
      leadingAfter: false,
    },
    { name: 'unreadable, standing by: wait', state: {}, read: 'error', now: 0, want: { kind: 'wait' }, leadingAfter: false },
    {
      name: 'unreadable while leading: keep leading until the deadline',
      state: { renewedAt: 1_000, observed: { record: lease({ holder: ME }), at: 1_000 } },
      read: 'error',
      now: 10_999,
      want: { kind: 'wait' },
      leadingAfter: true,
    },
    {
      name: 'unreadable past the deadline: no longer leading',
      state: { renewedAt: 1_000, observed: { record: lease({ holder: ME }), at: 1_000 } },
      read: 'error',
      now: 11_000,
      want: { kind: 'wait' },
      leadingAfter: false,
    },
    {
      name: 'held by another, first sight: stand by for a whole lease duration from now',
      state: {},
      read: lease(),
      now: 50_000,
      want: { kind: 'standby', holder: 'oddjob-b', expiresAt: 65_000 },
      leadingAfter: false,
    },
    {
      name: 'held by another, renewTime long ago by its clock: still a whole duration from our first sight (no wall clocks compared)',
      state: {},
      read: lease({ renewTime: WALL - 3_600_000 }),
      now: 50_000,
      want: { kind: 'standby', expiresAt: 65_000 },
      leadingAfter: false,
    },
    {
      name: 'held by another, unchanged for less than the duration: stand by',
      state: { observed: { record: lease(), at: 40_000 } },
      read: lease(),
      now: 54_999,
      want: { kind: 'standby', expiresAt: 55_000 },
      leadingAfter: false,
    },
    {
      name: 'held by another, unchanged for the whole duration: take it, one more transition',
      state: { observed: { record: lease(), at: 40_000 } },
      read: lease(),
      now: 55_000,
      want: { kind: 'acquire', resourceVersion: '100' },
      write: { holder: ME, transitions: 4, acquireTime: WALL, renewTime: WALL },
      leadingAfter: false,
    },
    {
      name: 'held by another and renewed since we last looked: the wait starts again',
      state: { observed: { record: lease(), at: 40_000 } },
      read: lease({ resourceVersion: '101' }),
      now: 70_000,
      want: { kind: 'standby', expiresAt: 85_000 },
      leadingAfter: false,
    },
    {
      name: "the holder's own lease duration counts, not ours",
      state: { observed: { record: lease({ leaseDurationSeconds: 30 }), at: 40_000 } },
      read: lease({ leaseDurationSeconds: 30 }),
      now: 60_000,
      want: { kind: 'standby', expiresAt: 70_000 },
      leadingAfter: false,
    },
    {
      name: 'released (no holder): take it at once',
      state: {},
      read: lease({ holder: '', leaseDurationSeconds: 1 }),
      now: 50_000,
      want: { kind: 'acquire' },
      write: { holder: ME, transitions: 4 },
      leadingAfter: false,
    },
    {
      name: 'ours while leading: renew, keeping acquireTime and the transition count',
      state: { renewedAt: 1_000, observed: { record: lease({ holder: ME }), at: 1_000 } },
      read: lease({ holder: ME }),
      now: 3_000,
      want: { kind: 'renew', resourceVersion: '100' },
      write: { holder: ME, transitions: 3, acquireTime: WALL - 60_000, renewTime: WALL },
      leadingAfter: true,
    },
    {
      name: 'ours from an earlier term (restarted, or the deadline passed): take it back, same transition count',
      state: {},
      read: lease({ holder: ME }),
      now: 3_000,
      want: { kind: 'acquire' },
      write: { holder: ME, transitions: 3, acquireTime: WALL },
      leadingAfter: false,
    },
    {
      name: 'leading, but the lease names someone else: lost, stop at once',
      state: { renewedAt: 1_000, observed: { record: lease({ holder: ME }), at: 1_000 } },
      read: lease({ holder: 'oddjob-c', resourceVersion: '105' }),
      now: 3_000,
      want: { kind: 'lost', holder: 'oddjob-c' },
      leadingAfter: false,
    },
    {
      name: 'past the deadline and the lease names someone else: plain standby (already stopped)',
      state: { renewedAt: 1_000, observed: { record: lease({ holder: ME }), at: 1_000 } },
      read: lease({ holder: 'oddjob-c', resourceVersion: '105' }),
      now: 11_000,
      want: { kind: 'standby', holder: 'oddjob-c' },
      leadingAfter: false,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const { state, action } = plan(c.state, c.read, { identity: ME, now: c.now, wallNow: WALL, timing: T });
      for (const [k, v] of Object.entries(c.want)) assert.deepEqual((action as Record<string, unknown>)[k], v, `action.${k}`);
      if (c.write) {
        assert.ok('write' in action, `${action.kind} writes`);
        for (const [k, v] of Object.entries(c.write)) assert.deepEqual((action.write as Record<string, unknown>)[k], v, `write.${k}`);
      }
      assert.equal(isLeading(state, c.now, T), c.leadingAfter, 'leading after the plan');
    });
  }
});

describe('settle and isLeading', () => {
  test('a successful write extends leading from when it was sent, not from its answer', () => {
    const s = settle({}, { ok: lease({ holder: ME, resourceVersion: '7' }) }, { sentAt: 1_000, now: 4_000 });
    assert.equal(s.renewedAt, 1_000);
    assert.deepEqual(s.observed, { record: lease({ holder: ME, resourceVersion: '7' }), at: 4_000 });
    const cases: Array<[number, boolean]> = [
      [1_000, true],
      [10_999, true],
      [11_000, false],
      [50_000, false],
    ];
    for (const [now, leading] of cases) assert.equal(isLeading(s, now, T), leading, `at ${now}`);
  });
  test('a failed write changes nothing', () => {
    const before: ElectionState = { renewedAt: 500, observed: { record: lease(), at: 500 } };
    assert.equal(settle(before, { failed: true }, { sentAt: 9_000, now: 9_500 }), before);
  });
  test('never leading without a successful write', () => {
    assert.equal(isLeading({}, 0, T), false);
    assert.equal(isLeading({ observed: { record: lease({ holder: ME }), at: 0 } }, 1, T), false);
  });
});

describe('releaseWrite', () => {
  test('frees the lease, expiring in a second for anyone who still sees it held, keeping the transition count', () => {
    const w = releaseWrite({ observed: { record: lease({ holder: ME, transitions: 9 }), at: 0 } }, WALL);
    assert.deepEqual(w, { holder: '', leaseDurationSeconds: 1, acquireTime: WALL, renewTime: WALL, transitions: 9 });
  });
});

describe('nextDelay', () => {
  const cases: Array<[string, Action, number, number, number]> = [
    ['a leader renews every retry period, without jitter', { kind: 'renew', write: releaseWrite({}, 0), resourceVersion: '1' }, 0, 0.9, 2_000],
    ['a standby waits a jittered retry period', { kind: 'standby', holder: 'b', expiresAt: 100_000 }, 0, 0.5, 2_200],
    ['at most 1.2 retry periods', { kind: 'standby', holder: 'b', expiresAt: 100_000 }, 0, 0.999999, 2_399.9996],
    ['a standby wakes just after the lease would expire, when that is sooner', { kind: 'standby', holder: 'b', expiresAt: 1_000 }, 500, 0.5, 501],
    ['an unreadable lease: a jittered retry period', { kind: 'wait' }, 0, 0, 2_000],
  ];
  for (const [name, action, now, jitter, want] of cases) {
    test(name, () => assert.ok(Math.abs(nextDelay(action, now, T, jitter) - want) < 1e-6, `${nextDelay(action, now, T, jitter)} ≠ ${want}`));
  }
});

describe('timingProblem', () => {
  const cases: Array<[string, LeaseTiming, RegExp | undefined]> = [
    ['the defaults (15s/10s/2s)', DEFAULT_TIMING, undefined],
    ['a short test timing (6s/4s/1s)', { leaseDurationMs: 6_000, renewDeadlineMs: 4_000, retryPeriodMs: 1_000 }, undefined],
    ['deadline equal to the duration', { leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }, /must be longer than the renew deadline/],
    ['deadline above the duration', { leaseDurationMs: 10_000, renewDeadlineMs: 15_000, retryPeriodMs: 2_000 }, /must be longer than the renew deadline/],
    ['deadline within 1.2 retry periods', { leaseDurationMs: 15_000, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 }, /1.2 × the retry period/],
    ['no retry period', { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 0 }, /retry period/],
    ['fractional lease duration', { leaseDurationMs: 15_500, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }, /whole seconds/],
  ];
  for (const [name, t, want] of cases) {
    test(name, () => {
      const p = timingProblem(t);
      if (want) assert.match(p ?? '', want);
      else assert.equal(p, undefined);
    });
  }
});

// A model of the API server's side of a Lease: one object, a resourceVersion bumped on
// every write, and writes refused (409) unless they name the current version. Calls
// take a random time to arrive and to answer, and some are lost either way.
describe('never two leaders (three replicas over a model of the API server, virtual time)', () => {
  interface Replica {
    id: string;
    state: ElectionState;
    alive: boolean;
    /** Bumped on each restart, so answers to a dead incarnation's calls are dropped. */
    life: number;
  }
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    test(`seed ${seed}: at every instant at most one replica leads, and someone leads most of the time`, () => {
      const rand = seededRandom(seed);
      let stored: LeaseRecord | null = null;
      let version = 0;
      const cas = (w: LeaseWrite, rv: string | undefined): LeaseRecord | null => {
        if (rv === undefined ? stored !== null : stored?.resourceVersion !== rv) return null;
        stored = { ...w, resourceVersion: String(++version) };
        return stored;
      };
      const replicas: Replica[] = ['a', 'b', 'c'].map((id) => ({ id, state: {}, alive: true, life: 0 }));
      const leaders = (now: number) => replicas.filter((r) => r.alive && isLeading(r.state, now, T)).map((r) => r.id);
      const events: Array<{ at: number; run: () => void }> = [];
      const at = (t: number, run: () => void) => events.push({ at: t, run });
      // Mostly fast; now and then a call that takes longer than the renew deadline.
      const latency = () => (rand() < 0.05 ? 4_000 + rand() * 8_000 : rand() * 300);
      const lost = () => rand() < 0.1;
      const attempt = (r: Replica, now: number) => {
        const life = r.life;
        const mine = (f: () => void) => () => {
          if (r.alive && r.life === life) f();
        };
        // A read is served when it reaches the server and answered later; some are lost.
        const readAt = now + latency();
        const answerAt = readAt + latency();
        let snapshot: LeaseRecord | null | 'error' = 'error';
        at(readAt, () => {
          if (!lost()) snapshot = stored;
        });
        at(
          answerAt,
          mine(() => {
            const { state, action } = plan(r.state, snapshot, { identity: r.id, now: answerAt, wallNow: answerAt, timing: T });
            r.state = state;
            if (!('write' in action)) {
              const next = answerAt + nextDelay(action, answerAt, T, rand());
              return at(
                next,
                mine(() => attempt(r, next)),
              );
            }
            // A write may be lost on the way there (never applied) or on the way back (applied, answer lost).
            const appliedAt = answerAt + latency();
            const doneAt = appliedAt + latency();
            const [lostThere, lostBack] = [lost(), lost()];
            let written: LeaseRecord | null = null;
            at(appliedAt, () => {
              if (!lostThere) written = cas(action.write, action.kind === 'create' ? undefined : action.resourceVersion);
            });
            at(
              doneAt,
              mine(() => {
                r.state = settle(r.state, written && !lostBack ? { ok: written } : { failed: true }, { sentAt: answerAt, now: doneAt });
                const next = doneAt + nextDelay(action, doneAt, T, rand());
                at(
                  next,
                  mine(() => attempt(r, next)),
                );
              }),
            );
          }),
        );
      };
      for (const r of replicas) attempt(r, rand() * 2_000);
      // Kill and restart replicas now and then; a restart keeps its name (a pod's container restarting).
      for (let t = 30_000; t < 600_000; t += 30_000 + rand() * 30_000) {
        const victim = replicas[Math.floor(rand() * replicas.length)]!;
        const back = t + 5_000 + rand() * 20_000;
        at(t, () => (victim.alive = false));
        at(back, () => {
          Object.assign(victim, { alive: true, state: {}, life: victim.life + 1 });
          attempt(victim, back);
        });
      }
      let led = 0;
      let last = 0;
      for (;;) {
        events.sort((x, y) => x.at - y.at);
        const e = events.shift();
        if (!e || e.at > 600_000) break;
        // Check just before and at each event: leadership only changes at events or deadlines.
        for (const t of [e.at - 1e-6, e.at]) assert.ok(leaders(t).length <= 1, `two leaders at ${t} ms: ${leaders(t).join(', ')}`);
        if (leaders(e.at).length === 1) led += e.at - last;
        last = e.at;
        e.run();
        assert.ok(leaders(e.at).length <= 1, `two leaders at ${e.at} ms: ${leaders(e.at).join(', ')}`);
      }
      assert.ok(led > 0.5 * 600_000, `someone led ${Math.round(led / 6_000)}% of the time`);
    });
  }
});

describe('server flags for the election', () => {
  const base = ['--auth', 'dev', '--namespaces', 'payments'];
  test('defaults: lease oddjob, 15s/10s/2s, namespace left to the server (its own, else the first served)', () => {
    const c = loadConfig(base, {});
    assert.equal(c.leaderLease, 'oddjob');
    assert.equal(c.leaderLeaseNamespace, undefined);
    assert.deepEqual([c.leaderLeaseDuration, c.leaderRenewDeadline, c.leaderRetryPeriod], [15, 10, 2]);
  });
  const refused: Array<[string, string[], NodeJS.ProcessEnv, RegExp]> = [
    ['a deadline at the lease duration', ['--leader-renew-deadline', '15s'], {}, /lease duration \(15s\) must be longer than the renew deadline \(15s\)/],
    ['a deadline within 1.2 retry periods (from the env)', [], { ODDJOB_LEADER_RETRY_PERIOD: '9s' }, /1\.2 × the retry period/],
    ['a lease name that is no DNS subdomain', ['--leader-lease', 'Odd_Job'], {}, /--leader-lease \(ODDJOB_LEADER_LEASE\): must be a DNS subdomain/],
    ['a namespace that is no DNS label', ['--leader-lease-namespace', 'a.b'], {}, /--leader-lease-namespace \(ODDJOB_LEADER_LEASE_NAMESPACE\)/],
    ['a bare number', ['--leader-retry-period', '2'], {}, /--leader-retry-period \(ODDJOB_LEADER_RETRY_PERIOD\): "2" is not a duration/],
  ];
  for (const [name, argv, env, why] of refused) {
    test(`refused: ${name}`, () =>
      assert.throws(
        () => loadConfig([...base, ...argv], env),
        (err: Error) => err instanceof ConfigError && why.test(err.message),
      ));
  }
});
