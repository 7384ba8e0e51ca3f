// How a run's ending becomes the CLI's exit code (PRODUCT.md §3): the command's
// own code, 124 deadline, 125 oddjob could not run it, 130 cancelled, and 123 when
// the command succeeded but some of its output could not be read.
import type { StatusFrame } from '../../protocol/frames.js';

export type EndFrame = Extract<StatusFrame, { kind: 'end' }>;

export const EXIT_DEADLINE = 124;
export const EXIT_ODDJOB = 125;
export const EXIT_CANCELLED = 130;
/**
 * The command exited 0 but part of its output is missing. Not 0: a script that reads
 * the output (`oddjob run … > report.csv && upload report.csv`) must not carry on with
 * a silently short file. Not the command's failure either: the notice says it succeeded.
 */
export const EXIT_OUTPUT_LOST = 123;

export interface RunOutcome {
  code: number;
  /** What to tell the person on stderr, if the exit code alone does not say it. */
  message?: string;
}

/** What the user is told (stderr) when output is missing, or undefined when nothing is. */
export function outputLossNotice(runId: string, end: EndFrame): string | undefined {
  if (end.outputLost === undefined || end.outputLost === 0) return undefined;
  const amount = end.outputLost < 0 ? 'an unknown amount of its output' : `${end.outputLost} bytes of its output`;
  return `OUTPUT LOST: run ${runId} is missing ${amount}: the kubelet rotated the container log away before oddjob could read it (the gap is marked where it happened)`;
}

/**
 * The exit code once output loss is taken into account (see EXIT_OUTPUT_LOST): output the
 * server could not read, or (`received`) output this CLI did not get.
 */
export function withOutputLoss(outcome: RunOutcome, end: EndFrame, received = end.outputBytes): RunOutcome {
  const lost = (end.outputLost !== undefined && end.outputLost !== 0) || received < end.outputBytes;
  if (!lost || outcome.code !== 0) return outcome;
  return { code: EXIT_OUTPUT_LOST, message: outcome.message ?? `the command itself exited 0; exiting ${EXIT_OUTPUT_LOST} because its output is incomplete` };
}

export function outcomeOf(runId: string, end: EndFrame): RunOutcome {
  const why = end.message ? `: ${end.message}` : '';
  switch (end.status) {
    case 'succeeded':
      // A note with a success (the output may be incomplete; the session's input was lost)
      // is said, not swallowed: the exit code stays the command's.
      return { code: 0, message: end.message ? `run ${runId} succeeded${why}` : undefined };
    case 'failed':
      if (end.exitCode === undefined) return { code: EXIT_ODDJOB, message: `run ${runId} could not start${why}` };
      // A shell only sees the low 8 bits; a "failed" run must never look like success.
      if (end.exitCode >= 1 && end.exitCode <= 255) return { code: end.exitCode, message: end.message ? `run ${runId} failed${why}` : undefined };
      return { code: 1, message: `run ${runId} failed with exit code ${end.exitCode}${why}` };
    case 'deadline':
      return { code: EXIT_DEADLINE, message: `run ${runId} hit its time limit${why}` };
    case 'cancelled':
      return { code: EXIT_CANCELLED, message: `run ${runId} was cancelled${why}` };
    case 'lost':
      return { code: EXIT_ODDJOB, message: `run ${runId} was lost${why || ' (its Job disappeared before the end was recorded)'}` };
    default:
      return { code: EXIT_ODDJOB, message: `run ${runId} ended in an unexpected state "${end.status}"${why}` };
  }
}
