// `oddjob notify MESSAGE`: from inside a run's pod, post a progress line to the run's
// notification targets. It needs no sign-in: the run's own credential is in the pod's
// environment (ODDJOB_URL, ODDJOB_RUN_ID, ODDJOB_RUN_TOKEN), and it can do nothing else.
import type { Command } from 'commander';
import { PROGRESS_MAX_CHARS } from '../../protocol/api.js';
import { OddjobClient } from '../client.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';

export default function register(program: Command, cli: CliContext): void {
  program
    .command('notify')
    .summary("post a progress line from inside a run (to the run's notification targets)")
    .argument('<message...>', `what to say, at most ${PROGRESS_MAX_CHARS} characters`)
    .addHelpText(
      'after',
      '\nInside a run started by oddjob (with notifications configured), the pod has ODDJOB_URL,\n' +
        'ODDJOB_RUN_ID and ODDJOB_RUN_TOKEN. The message is audited, shown on the run page and sent\n' +
        'to the run\'s targets.\n\nExample:\n  oddjob notify "40% done (4,000 of 10,000 rows)"\n',
    )
    .action(
      cli.act(async (words: string[]) => {
        const env = cli.io.env;
        const missing = ['ODDJOB_URL', 'ODDJOB_RUN_ID', 'ODDJOB_RUN_TOKEN'].filter((k) => !env[k]);
        if (missing.length) {
          throw new CliError(`${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not set: oddjob notify works inside a run's pod`, {
            hint: 'the server sets them on runs when it is started with --notifications',
          });
        }
        const message = words.join(' ');
        if (message.length > PROGRESS_MAX_CHARS)
          throw new CliError(`the message is ${message.length} characters; at most ${PROGRESS_MAX_CHARS}`, { usage: true });
        const client = new OddjobClient({ server: env.ODDJOB_URL!, token: env.ODDJOB_RUN_TOKEN!, version: cli.version });
        await client.postProgress(env.ODDJOB_RUN_ID!, message);
        return 0;
      }),
    );
}
