// `oddjob logs RUN_ID [-f]`: print a run's stored output (it outlives the pod),
// and with -f keep following until the run ends.
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { EXIT_CANCELLED, outputLossNotice } from '../lib/exit.js';
import { warnIfIncomplete } from '../session.js';
import { followRun } from '../stream.js';
import { checkRunId } from './shared.js';

export default function register(program: Command, cli: CliContext): void {
  program
    .command('logs')
    .summary("print a run's output")
    .description(
      "Print a run's output: stdout to stdout, stderr to stderr, byte for byte. Works after the pod is gone. With -f, keep following until the run ends.",
    )
    .argument('<run-id>', 'the run, as printed by oddjob run or oddjob runs')
    .option('-f, --follow', 'keep streaming until the run ends')
    .addHelpText('after', '\nExamples:\n  oddjob logs k3x9q2m7a1bz\n  oddjob logs k3x9q2m7a1bz -f | grep ERROR\n')
    .action(
      cli.act(async (id: string, flags: { follow?: boolean }, cmd: Command) => {
        checkRunId(id);
        const stop = new AbortController();
        const onSigint = () => stop.abort();
        process.on('SIGINT', onSigint);
        try {
          const result = await followRun({
            client: cli.client(cmd),
            runId: id,
            follow: Boolean(flags.follow),
            stdout: cli.io.stdout,
            stderr: cli.io.stderr,
            signal: stop.signal,
          });
          if (result.kind === 'detached') return EXIT_CANCELLED;
          if (result.kind === 'end') {
            warnIfIncomplete(cli, id, result.received, result.end.outputBytes, result.end.outputTruncated);
            const lost = outputLossNotice(id, result.end);
            if (lost) cli.warn(lost);
            // Replay is from storage; say so when storage kept less than the run produced.
            if (result.received >= result.end.outputBytes && result.end.outputTruncated) {
              cli.warn(`the server stored only part of run ${id}'s output (it keeps a bounded amount per run)`);
            }
          }
          return 0;
        } finally {
          process.off('SIGINT', onSigint);
        }
      }),
    );
}
