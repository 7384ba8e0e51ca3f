// `oddjob attach RUN_ID`: re-attach to a run — replay its output, then follow,
// forwarding stdin and the terminal for interactive runs. Exits like `run`.
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { followToExit } from '../session.js';
import { checkRunId } from './shared.js';

export default function register(program: Command, cli: CliContext): void {
  program
    .command('attach')
    .summary('re-attach to a run (interactive runs get your keyboard back)')
    .description(
      "Replay a run's output, then follow it live. For runs started with -i/-t, your stdin " +
        "and terminal are connected again. Exits with the run's exit code, like oddjob run.",
    )
    .argument('<run-id>', 'the run to attach to')
    .addHelpText('after', '\nExample:\n  oddjob attach k3x9q2m7a1bz\n')
    .action(
      cli.act(async (id: string, _flags: object, cmd: Command) => {
        checkRunId(id);
        const client = cli.client(cmd);
        const run = await client.getRun(id);
        if (!run.interactive && !run.tty) cli.note(`run ${id} is not interactive; following its output`);
        return followToExit(cli, client, run, { interactive: true });
      }),
    );
}
