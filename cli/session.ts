// Follows a run to its end on behalf of `run` and `attach`: wires Ctrl-C to a
// detach (non-interactive), prints how the run ended, and maps it to the exit code.
import type { Run } from '../protocol/api.js';
import { ApiError, type OddjobClient } from './client.js';
import type { CliContext } from './context.js';
import { EXIT_CANCELLED, EXIT_ODDJOB, outcomeOf, outputLossNotice, withOutputLoss } from './lib/exit.js';
import { StreamError, followRun, type FollowResult, type RetryPolicy } from './stream.js';

export interface SessionOptions {
  /** Forward our stdin / terminal to the run (run -i/-t, attach). */
  interactive: boolean;
  retry?: Partial<RetryPolicy>;
}

export async function followToExit(cli: CliContext, client: OddjobClient, run: Run, opts: SessionOptions): Promise<number> {
  const { io } = cli;
  const detach = new AbortController();
  // First Ctrl-C detaches; further ones are ignored so a second press cannot kill us mid-message.
  const onSigint = () => detach.abort();
  process.on('SIGINT', onSigint);
  const interactive = opts.interactive && (run.interactive || run.tty);
  if (interactive && run.tty && io.stdin.isTTY) {
    cli.note(`attached to run ${run.id}; keystrokes, Ctrl-C included, go to the command`);
  }
  let result: FollowResult;
  try {
    result = await followRun({
      client,
      runId: run.id,
      follow: true,
      stdout: io.stdout,
      stderr: io.stderr,
      signal: detach.signal,
      retry: opts.retry,
      interactive: interactive ? { stdin: io.stdin, tty: run.tty, stdinOpen: run.interactive } : undefined,
    });
  } catch (err) {
    // The run exists even though we lost its stream: always say how to get back to it.
    if (err instanceof StreamError || err instanceof ApiError) {
      cli.note(err.message);
      io.stderr.write(`  ${err.hint ? `hint: ${err.hint}` : `follow: oddjob logs ${run.id} -f`}\n`);
      return EXIT_ODDJOB;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
  }
  if (result.kind === 'detached') {
    const follow = run.interactive ? `oddjob attach ${run.id}` : `oddjob logs ${run.id} -f`;
    io.stderr.write(`oddjob: detached; run ${run.id} keeps running.\n  follow: ${follow}\n  cancel: oddjob cancel ${run.id}\n`);
    return EXIT_CANCELLED;
  }
  if (result.kind === 'closed') {
    // follow=1 never yields this; keep the contract if a server closes early anyway.
    cli.note(`the server closed the stream of run ${run.id} before it ended`);
    io.stderr.write(`  follow: oddjob logs ${run.id} -f\n`);
    return EXIT_ODDJOB;
  }
  warnIfIncomplete(cli, run.id, result.received, result.end.outputBytes, result.end.outputTruncated);
  const lost = outputLossNotice(run.id, result.end);
  if (lost) cli.warn(lost);
  const outcome = withOutputLoss(outcomeOf(run.id, result.end), result.end, result.received);
  if (outcome.message) cli.note(outcome.message);
  return outcome.code;
}

/** Output is never silently short: say so when the server could not give us every byte. */
export function warnIfIncomplete(cli: CliContext, id: string, received: number, total: number, truncated: boolean): void {
  if (received >= total) return;
  const why = truncated ? 'the server keeps a bounded amount of output per run' : 'the server did not send it';
  cli.warn(`printed ${received} of ${total} output bytes of run ${id} (${why})`);
}
