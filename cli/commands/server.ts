// `oddjob server` is listed here for --help only: bin/oddjob.mjs starts the
// service before the CLI is even loaded, so the two never share a process.
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { CliError, EXIT_USAGE } from '../errors.js';

export default function register(program: Command, cli: CliContext): void {
  program
    .command('server')
    .summary('run the oddjob service (see: oddjob server --help)')
    .description('Runs the oddjob service (HTTP API, streams, web UI). Its flags are listed by: oddjob server --help')
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .action(
      cli.act(async () => {
        throw new CliError('`server` must be the first argument: oddjob server [flags]', { exitCode: EXIT_USAGE });
      }),
    );
}
