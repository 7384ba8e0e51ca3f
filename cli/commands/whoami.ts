// `oddjob whoami`: who the server thinks I am, and which teams count for access.
import type { Command } from 'commander';
import { escapeDisplay } from '../../protocol/display.js';
import type { CliContext } from '../context.js';

export default function register(program: Command, cli: CliContext): void {
  program
    .command('whoami')
    .summary('show who you are signed in as')
    .option('--json', 'print the identity as JSON')
    .action(
      cli.act(async (flags: { json?: boolean }, cmd: Command) => {
        const client = cli.client(cmd);
        const me = await client.whoami();
        if (flags.json) {
          cli.out(`${JSON.stringify(me)}\n`);
          return 0;
        }
        cli.out(
          `login:  ${me.login}\n` +
            (me.name ? `name:   ${escapeDisplay(me.name)}\n` : '') +
            `teams:  ${me.teams.length ? me.teams.join(', ') : '(none)'}\n` +
            (me.auditor ? 'role:   auditor (reads the whole audit log)\n' : '') +
            (me.auth ? `via:    ${me.auth === 'dev' ? 'dev identity (--auth dev)' : me.auth === 'session' ? 'browser session' : 'token'}\n` : '') +
            `server: ${client.server}\n`,
        );
        return 0;
      }),
    );
}
