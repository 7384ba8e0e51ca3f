// How a run's ending becomes the CLI's exit code (PRODUCT.md §3): the command's
// own code, 124 deadline, 125 oddjob could not run it, 130 cancelled.
import type { StatusFrame } from '../../protocol/frames.js';

export type EndFrame = Extract<StatusFrame, { kind: 'end' }>;

export const EXIT_DEADLINE = 124;
export const EXIT_ODDJOB = 125;
export const EXIT_CANCELLED = 130;

export interface RunOutcome {
  code: number;
  /** What to tell the person on stderr, if the exit code alone does not say it. */
  message?: string;
}

export function outcomeOf(runId: string, end: EndFrame): RunOutcome {
  const why = end.message ? `: ${end.message}` : '';
  switch (end.status) {
    case 'succeeded':
      return { code: 0 };
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
