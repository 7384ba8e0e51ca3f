// `oddjob cancel RUN_ID`: stop a run (its Job is deleted); the audit log records who.
import type { Command } from 'commander';
import { escapeDisplay } from '../../protocol/display.js';
import type { CliContext } from '../context.js';
import { checkRunId } from './shared.js';

export default function register(program: Command, cli: CliContext): void {
  program
    .command('cancel')
    .summary('cancel a run')
    .argument('<run-id>', 'the run to cancel')
    .addHelpText('after', '\nExample:\n  oddjob cancel k3x9q2m7a1bz\n')
    .action(
      cli.act(async (id: string, _flags: object, cmd: Command) => {
        checkRunId(id);
        const run = await cli.client(cmd).cancelRun(id);
        cli.out(`run ${run.id} ${run.status}${run.message ? ` (${escapeDisplay(run.message)})` : ''}\n`);
        return 0;
      }),
    );
}
