// Entry point of the `oddjob` CLI: the command table (one module per
// subcommand under commands/), argv parsing, and the one place where any
// failure becomes a readable line on stderr and an exit code — never a stack
// trace (unless ODDJOB_DEBUG is set).
import { Command, CommanderError } from 'commander';
import approvals from './commands/approvals.js';
import attach from './commands/attach.js';
import audit from './commands/audit.js';
import cancel from './commands/cancel.js';
import completion, { runCompletion } from './commands/completion.js';
import configCmd from './commands/config.js';
import deployments from './commands/deployments.js';
import login from './commands/login.js';
import logs from './commands/logs.js';
import notifications from './commands/notifications.js';
import notify from './commands/notify.js';
import run from './commands/run.js';
import runs from './commands/runs.js';
import schedules from './commands/schedules.js';
import server from './commands/server.js';
import tasks from './commands/tasks.js';
import tokens from './commands/tokens.js';
import whoami from './commands/whoami.js';
import { debugEnabled } from './config.js';
import { CliContext, type Io } from './context.js';
import { CliError, EXIT_USAGE, formatError } from './errors.js';
import { splitArgv } from './lib/argv.js';
import { EXIT_ODDJOB } from './lib/exit.js';
import { cliVersion } from './version.js';

/** Help lists commands in this order. */
const COMMANDS = [
  run,
  logs,
  attach,
  runs,
  cancel,
  deployments,
  tasks,
  schedules,
  approvals,
  audit,
  notifications,
  notify,
  whoami,
  login,
  tokens,
  configCmd,
  completion,
  server,
];

const EXAMPLES = `
Examples:
  oddjob deployments                                   # where may I run?
  oddjob tasks -n payments                             # owner-declared commands I may run
  oddjob run task/reindex -n payments --param merchant=m_12345678
  oddjob requests --pending                            # runs waiting for a second person
  oddjob run deploy/api -n payments --reason "INC-2231 backfill" -- node scripts/backfill.js
  oddjob run -it deploy/api -- bash                    # interactive shell
  oddjob runs --mine
  oddjob logs k3x9q2m7a1bz -f
  oddjob audit --since 24h --deployment api

Configuration:
  server: --server URL, else --context's, else $ODDJOB_SERVER, else $ODDJOB_CONTEXT's or the
          current context's ($XDG_CONFIG_HOME/oddjob/config.json; see: oddjob config get-contexts)
  token:  $ODDJOB_TOKEN, else the token of that server's context (only sent to that server)
  namespace for run: -n, else $ODDJOB_NAMESPACE, else the context's (oddjob config set-namespace),
          else the server's only namespace, else "default" if it serves that

Run \`oddjob <command> --help\` for a command's flags, exit codes and examples.
`;

export function buildProgram(cli: CliContext): Command {
  const program = new Command('oddjob')
    .description('Run one-off commands inside the runtime of an existing Kubernetes Deployment, as a Job, with an audit trail.')
    .usage('[--server URL | --context NAME] <command> [options]')
    .option('--server <url>', 'oddjob server URL (default: $ODDJOB_SERVER, else the current context)')
    .option('--context <name>', 'use this context of the config file (default: $ODDJOB_CONTEXT, else the current one)')
    .version(cli.version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .helpCommand('help [command]', 'show help for a command')
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (s) => cli.io.stdout.write(s),
      writeErr: (s) => cli.io.stderr.write(s),
      // Printed by main() instead, in oddjob's own format.
      outputError: () => undefined,
    })
    .addHelpText('after', EXAMPLES);
  for (const register of COMMANDS) register(program, cli);
  return program;
}

export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  if (argv[2] === '__complete') {
    // The words of a half-typed command line: never parsed as our own flags.
    const cli = new CliContext(io, cliVersion());
    return runCompletion(buildProgram(cli), cli, argv.slice(3));
  }
  const split = splitArgv(argv.slice(2));
  const isRun = split.subcommand === 'run';
  // For `run`, everything oddjob-side is 125 (PRODUCT.md §3) so it cannot be
  // confused with the remote command's own exit code (which may well be 1 or 2).
  const failCode = isRun ? EXIT_ODDJOB : 1;
  const usageCode = isRun ? EXIT_ODDJOB : EXIT_USAGE;
  const cli = new CliContext(io, cliVersion());
  cli.commandArgv = split.commandArgv;
  const program = buildProgram(cli);
  try {
    await program.parseAsync(split.oddjobArgs, { from: 'user' });
    return cli.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      const known = program.commands.some((c) => c.name() === split.subcommand);
      return commanderExit(err, io, { ...split, subcommand: known ? split.subcommand : undefined }, usageCode);
    }
    io.stderr.write(formatError(err, debugEnabled(io.env)));
    if (err instanceof CliError) return err.exitCode ?? (err.usage ? usageCode : failCode);
    return failCode;
  }
}

function commanderExit(err: CommanderError, io: Io, split: ReturnType<typeof splitArgv>, usageCode: number): number {
  switch (err.code) {
    case 'commander.helpDisplayed':
    case 'commander.version':
      return 0;
    case 'commander.help':
      // `oddjob help X` exits 0; a bare `oddjob` printed the help on stderr as a usage error.
      return err.exitCode === 0 ? 0 : usageCode;
  }
  const message = err.message.replace(/^error: /, '');
  let hint = `see: oddjob ${split.subcommand && split.subcommand !== 'help' ? `${split.subcommand} ` : ''}--help`;
  if (split.subcommand === 'run' && split.commandArgv === undefined && err.code === 'commander.unknownOption') {
    // Most likely the remote command's own flag, typed without the `--` in front of it.
    hint = 'the command to run goes after `--`: oddjob run [options] deploy/NAME -- CMD [ARG...]';
  }
  io.stderr.write(formatError(new CliError(message, { hint })));
  return usageCode;
}

function processIo(): Io {
  // `oddjob ... | head` closes our stdout early: that is the reader's choice, not
  // a crash. Stream followers notice the error themselves and stop.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') process.stderr.write(`oddjob: cannot write to stdout: ${err.message}\n`);
  });
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}
