// The exit-code contract of `oddjob run` / `attach` (PRODUCT.md §3).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { outcomeOf, outputLossNotice, withOutputLoss, type EndFrame } from '../../cli/lib/exit.js';

const end = (e: Partial<EndFrame>): EndFrame => ({ kind: 'end', status: 'succeeded', outputBytes: 0, outputTruncated: false, ...e });

describe('outcomeOf', () => {
  const cases: Array<[string, Partial<EndFrame>, number, RegExp | undefined]> = [
    ['succeeded', { status: 'succeeded', exitCode: 0 }, 0, undefined],
    [
      'succeeded with a note: said, exit 0',
      { status: 'succeeded', exitCode: 0, message: 'the output may be incomplete' },
      0,
      /succeeded: the output may be incomplete/,
    ],
    ['failed with the command exit code', { status: 'failed', exitCode: 7 }, 7, undefined],
    ['killed by a signal (137)', { status: 'failed', exitCode: 137, message: 'OOMKilled' }, 137, /failed: OOMKilled/],
    ['deadline', { status: 'deadline', message: 'DeadlineExceeded' }, 124, /time limit: DeadlineExceeded/],
    ['cancelled', { status: 'cancelled', message: 'cancelled by bob' }, 130, /cancelled: cancelled by bob/],
    ['failed to start', { status: 'failed', message: 'ErrImagePull: not found' }, 125, /could not start: ErrImagePull/],
    ['lost', { status: 'lost' }, 125, /was lost/],
    ['failed with an out-of-range code never looks like success', { status: 'failed', exitCode: 256 }, 1, /exit code 256/],
    ['failed with 0 (contradiction) is not success', { status: 'failed', exitCode: 0 }, 1, /exit code 0/],
    ['a non-terminal status in an end frame', { status: 'running' }, 125, /unexpected state/],
  ];
  for (const [name, frame, code, message] of cases) {
    test(name, () => {
      const o = outcomeOf('k3x9q2m7a1bz', end(frame));
      assert.equal(o.code, code);
      if (message) assert.match(o.message ?? '', message);
      else assert.equal(o.message, undefined);
    });
  }
});

describe('withOutputLoss: a command that exited 0 with output missing is not a silent 0', () => {
  const cases: Array<[string, Partial<EndFrame>, number | undefined, number]> = [
    ['nothing missing', { status: 'succeeded', exitCode: 0, outputBytes: 10 }, 10, 0],
    ['the server could not read some (amount unknown)', { status: 'succeeded', exitCode: 0, outputBytes: 10, outputLost: -1 }, 10, 123],
    ['the server could not read 5 bytes', { status: 'succeeded', exitCode: 0, outputBytes: 10, outputLost: 5 }, 10, 123],
    ['this CLI got less than the run produced', { status: 'succeeded', exitCode: 0, outputBytes: 10 }, 7, 123],
    ['a failed command keeps its own code', { status: 'failed', exitCode: 3, outputBytes: 10, outputLost: -1 }, 7, 3],
  ];
  for (const [name, frame, received, code] of cases) {
    test(name, () => {
      const e = end(frame);
      assert.equal(withOutputLoss(outcomeOf('k3x9q2m7a1bz', e), e, received).code, code);
    });
  }
  test('the notice says how much, or that nobody can know', () => {
    assert.match(outputLossNotice('k3x9q2m7a1bz', end({ outputLost: -1 })) ?? '', /OUTPUT LOST: .* an unknown amount/);
    assert.match(outputLossNotice('k3x9q2m7a1bz', end({ outputLost: 5 })) ?? '', /5 bytes/);
    assert.equal(outputLossNotice('k3x9q2m7a1bz', end({})), undefined);
  });
});
