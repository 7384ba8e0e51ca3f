// `oddjob login`: GitHub sign-in arrives with the authentication work. Until
// then this says so and explains the two ways that work today, instead of
// pretending to sign anyone in.
import type { Command } from 'commander';
import { configPath } from '../config.js';
import type { CliContext } from '../context.js';
import { EXIT_USAGE } from '../errors.js';

export default function register(program: Command, cli: CliContext): void {
  program
    .command('login')
    .summary('sign in through GitHub (not available yet)')
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .action(
      cli.act(async () => {
        cli.io.stderr.write(
          'oddjob: `oddjob login` is not available yet: GitHub sign-in comes with the authentication work.\n' +
            '  for now, point the CLI at a server and pass a token yourself:\n' +
            '    export ODDJOB_SERVER=https://oddjob.example.com   # or --server URL on each command\n' +
            '    export ODDJOB_TOKEN=<token>                        # if the server asks for one\n' +
            `  or write {"server": "...", "token": "..."} to ${configPath(cli.io.env)} (chmod 600)\n`,
        );
        return EXIT_USAGE;
      }),
    );
}
