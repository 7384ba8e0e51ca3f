// The slot launcher's answers (server/schedules/launch.ts), over a double of the run
// service: how each way a launch can end becomes started, denied or failed — which
// decides whether the slot is notified as schedule.denied / schedule.failed, or through
// its run's own events. (The real run service and Kubernetes: test/integration.)
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Run } from '../../protocol/api.js';
import { ServiceError } from '../../server/errors.js';
import type { ScheduledRunOptions } from '../../server/runs/service.js';
import { createSlotLauncher, type EarlierLaunch } from '../../server/schedules/launch.js';

const slot = {
  task: { namespace: 'payments', name: 'nightly' },
  nominal: new Date('2026-03-01T02:00:00.000Z'),
  attempt: 0,
  runId: 'r00000000001',
  jobName: 'nightly-202603010200-r00000000001',
  params: {},
};

const failedRun = { id: slot.runId, status: 'failed', message: 'Kubernetes rejected job …' } as unknown as Run;

/** A run service whose createScheduledRun records a run (or not) and then throws `err`. */
function launcherWith(err: Error, records: boolean) {
  const stored = new Map<string, Run>();
  return createSlotLauncher({
    runs: {
      async createScheduledRun() {
        if (records) stored.set(slot.runId, failedRun);
        throw err;
      },
      async cancelRun() {
        throw new Error('not used');
      },
    },
    readRun: async (id) => stored.get(id),
    requested: async () => 'none' as const,
    deleteJob: async () => {},
  });
}

describe('slot launcher: what a failed launch becomes', () => {
  const cases: Array<[string, Error, boolean, unknown]> = [
    [
      'the API server refused the Job after the run was recorded: the slot has a run (it failed; its run.failed reports it)',
      new ServiceError('rejected', 'Kubernetes rejected job payments/nightly-…: spec.template.metadata.labels[job-name]: Invalid value'),
      true,
      { ok: true, runId: slot.runId },
    ],
    [
      'the Job could not be built (nothing recorded): failed for good, the slot started no run',
      new ServiceError('invalid', 'annotation oddjob.io/network-identity is "isolatd"'),
      false,
      { ok: false, failed: 'annotation oddjob.io/network-identity is "isolatd"', retryable: false },
    ],
    [
      'consent withdrawn: denied',
      new ServiceError('forbidden', 'deployment payments/api has not opted in to oddjob'),
      false,
      { ok: false, denied: 'deployment payments/api has not opted in to oddjob' },
    ],
    [
      'the API server away before anything was recorded: failed, tried again',
      new ServiceError('unavailable', 'Kubernetes API error'),
      false,
      { ok: false, failed: 'Kubernetes API error', retryable: true },
    ],
  ];
  for (const [name, err, records, want] of cases) {
    test(name, async () => {
      assert.deepEqual(await launcherWith(err, records).launch(slot), want);
    });
  }
});

// What an earlier, interrupted launch of the same slot left behind (a leader killed mid-launch).
const cutShortSlot = {
  task: { namespace: 'ns', name: 'nightly' },
  nominal: new Date('2026-01-01T02:30:00Z'),
  attempt: 0,
  runId: 'slot-run',
  jobName: 'oddjob-nightly-slot',
  params: {},
};

function launcherAfter(state: { record?: Run; requested: EarlierLaunch }) {
  const calls: ScheduledRunOptions[] = [];
  const launcher = createSlotLauncher({
    runs: {
      createScheduledRun: async (_ctx, _req, opts) => {
        calls.push(opts);
        return { id: opts.runId } as Run;
      },
      cancelRun: async () => {
        throw new Error('not used');
      },
    },
    readRun: async () => state.record,
    requested: async () => state.requested,
    deleteJob: async () => {},
  });
  return { launcher, calls };
}

const table: Array<{ name: string; record?: Run; requested: EarlierLaunch; note: RegExp | undefined }> = [
  { name: 'a fresh slot: launched, nothing to say', requested: 'none', note: undefined },
  {
    name: 'audited, then cut short before its record (a leader killed): continued under the same ids, saying so',
    requested: 'interrupted',
    note: /continues the launch of this slot that stopped after its audit.*slot-run/,
  },
  {
    name: 'a record exists (cut short after it): the run service answers with that run, no note',
    record: { id: 'slot-run' } as Run,
    requested: 'interrupted',
    note: undefined,
  },
];

for (const row of table) {
  test(`what an earlier launch left: ${row.name}`, async () => {
    const { launcher, calls } = launcherAfter(row);
    const result = await launcher.launch(cutShortSlot);
    assert.deepEqual(result, { ok: true, runId: 'slot-run' });
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.runId, 'slot-run');
    assert.equal(calls[0]!.jobName, 'oddjob-nightly-slot');
    if (row.note) assert.match(calls[0]!.note ?? '', row.note);
    else assert.equal(calls[0]!.note, undefined);
  });
}

test('what an earlier launch left: requested and ended before a record (its Job could not be built): failed for good, not requested again', async () => {
  const { launcher, calls } = launcherAfter({ requested: { failed: 'annotation oddjob.io/network-identity is "isolatd"' } });
  assert.deepEqual(await launcher.launch(cutShortSlot), {
    ok: false,
    failed: 'an earlier launch of this slot failed: annotation oddjob.io/network-identity is "isolatd"',
    retryable: false,
  });
  assert.equal(calls.length, 0);
});
