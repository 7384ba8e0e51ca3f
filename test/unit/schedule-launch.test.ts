// The slot launcher's answers to what an earlier, interrupted launch left behind, over a
// double of our own run service interface (the real one runs in
// test/integration/schedules.test.ts and the failover soak).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Run } from '../../protocol/api.js';
import type { ScheduledRunOptions } from '../../server/runs/service.js';
import { createSlotLauncher } from '../../server/schedules/launch.js';

const slot = {
  task: { namespace: 'ns', name: 'nightly' },
  nominal: new Date('2026-01-01T02:30:00Z'),
  attempt: 0,
  runId: 'slot-run',
  jobName: 'oddjob-nightly-slot',
  params: {},
};

function launcherWith(state: { record?: Run; requested: boolean }) {
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

const table: Array<{ name: string; record?: Run; requested: boolean; note: RegExp | undefined }> = [
  { name: 'a fresh slot: launched, nothing to say', requested: false, note: undefined },
  {
    name: 'audited, then cut short before its record (a leader killed): continued under the same ids, saying so',
    requested: true,
    note: /continues the launch of this slot that stopped after its audit.*slot-run/,
  },
  {
    name: 'a record exists (cut short after it): the run service answers with that run, no note',
    record: { id: 'slot-run' } as Run,
    requested: true,
    note: undefined,
  },
];

for (const row of table) {
  test(`slot launcher: ${row.name}`, async () => {
    const { launcher, calls } = launcherWith(row);
    const result = await launcher.launch(slot);
    assert.deepEqual(result, { ok: true, runId: 'slot-run' });
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.runId, 'slot-run');
    assert.equal(calls[0]!.jobName, 'oddjob-nightly-slot');
    if (row.note) assert.match(calls[0]!.note ?? '', row.note);
    else assert.equal(calls[0]!.note, undefined);
  });
}
