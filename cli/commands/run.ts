// `oddjob run deploy/NAME -- CMD [ARG...]`: create a run and follow it to its
// end, exiting with the command's exit code (124 deadline, 125 oddjob could not
// run it, 130 cancelled or detached).
import type { Command } from 'commander';
import { RunRequest, describeZodError } from '../../protocol/api.js';
import { TaskRunRequest } from '../../protocol/tasks.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { parseParams, parseRunTarget, requireCommand } from '../lib/argv.js';
import { parseDuration } from '../lib/duration.js';
import { followToExit } from '../session.js';
import { waitForApproval } from './approvals.js';
import { defaultNamespace } from './shared.js';

interface RunFlags {
  namespace?: string;
  container?: string;
  reason?: string;
  interactive?: boolean;
  tty?: boolean;
  detach?: boolean;
  sidecars: boolean;
  timeout?: string;
  param: string[];
  wait: boolean;
  force?: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

export default function register(program: Command, cli: CliContext): void {
  program
    .command('run')
    .summary('run a command in the runtime of a Deployment')
    .description(
      'Run CMD once as a Kubernetes Job cloned from the Deployment: same image, env, secrets, ' +
        "volumes and service account. Output streams to this terminal; oddjob exits with the command's " +
        "exit code. Everything after `--` is the command's argv, passed as-is (no shell).",
    )
    .usage('[options] deploy/NAME -- CMD [ARG...] | task/NAME [--param KEY=VALUE...]')
    .argument(
      '[deploy/NAME|task/NAME]',
      'the Deployment (every kubectl spelling works: deployment/NAME, deployment.apps/NAME, ...), or a Task (task/NAME, ojtask/NAME)',
    )
    .allowExcessArguments(true)
    .option(
      '-n, --namespace <ns>',
      'namespace of the Deployment (default: $ODDJOB_NAMESPACE, else the context\'s, else the server\'s only one, else "default")',
    )
    .option('-c, --container <name>', "container to run in (default: the Deployment's default container)")
    .option('--reason <text>', 'why you run this; recorded in the audit log')
    .option('-i, --interactive', 'keep stdin open and send it to the command')
    .option('-t, --tty', 'allocate a terminal; with -i, keystrokes (Ctrl-C too) go to the command')
    .option('--detach', 'print the run id on stdout and return at once')
    .option('--no-sidecars', 'drop the other containers instead of running them as native sidecars')
    .option('--timeout <duration>', "upper bound for the run, e.g. 30s, 10m, 2h, 1h30m (capped by the Deployment's max-duration)")
    .option('-p, --param <KEY=VALUE>', 'a parameter of a Task (repeat for each); checked by the server against its type', collect, [])
    .option('--force', "a scheduled Task: run now even while a run of it is going (past its schedule's concurrencyPolicy Forbid or Replace)")
    .option('--no-wait', 'when the run needs approval: print the request id and return instead of waiting for the decision')
    .addHelpText(
      'after',
      `
Exit codes:
  N     the command's own exit code
  124   the run hit its time limit
  125   oddjob could not run it (denied, not found, invalid input, pod failed to start)
  130   the run was cancelled, or you detached with Ctrl-C (the run keeps going)

Examples:
  oddjob run deploy/api -n payments --reason "INC-2231 backfill" -- node scripts/backfill.js
  oddjob run deploy/api -- sh -c 'echo $HOSTNAME'      # a shell only if you ask for one
  oddjob run -it deploy/api -- bash                    # interactive shell
  oddjob run --detach --timeout 2h deploy/worker -- ./reindex --all
  oddjob run task/reindex -n payments --param merchant=m_12345678 --param batch=5

Runs that need approval (oddjob.io/approval: required, or a Task with approval: required)
create a request; oddjob waits for a second person's decision (oddjob approve ID), then
streams the run. --no-wait (or --detach) prints the request id and returns.
`,
    )
    .action(
      cli.act(async (target: string | undefined, flags: RunFlags, cmd: Command) => {
        const parsed = parseRunTarget(target);
        if (parsed.kind === 'task') return runTask(cli, cmd, parsed.name, flags);
        if (flags.param.length) throw new CliError('--param is for Tasks (task/NAME); a Deployment takes a command after `--`', { usage: true });
        const deployment = parsed.name;
        const command = requireCommand(cli.commandArgv, cmd.args.slice(1), target);
        if (flags.detach && (flags.interactive || flags.tty)) {
          throw new CliError('--detach cannot be combined with -i or -t', { hint: 'start it detached, then: oddjob attach RUN_ID', usage: true });
        }
        const input = {
          namespace: flags.namespace ?? (await defaultNamespace(cli, cmd)),
          deployment,
          container: flags.container,
          command,
          reason: flags.reason?.trim() ? flags.reason : undefined,
          interactive: Boolean(flags.interactive),
          tty: Boolean(flags.tty),
          timeoutSeconds: flags.timeout === undefined ? undefined : parseDuration(flags.timeout, '--timeout'),
          noSidecars: flags.sidecars === false,
        };
        const req = RunRequest.safeParse(input);
        if (!req.success) throw new CliError(describeZodError(req.error), { usage: true });

        const client = cli.client(cmd);
        const started = await client.startRun(req.data);
        if ('approval' in started) return waitForApproval(cli, client, started.approval, { wait: flags.wait && !flags.detach });
        const { run } = started;
        cli.note(`run ${run.id} created (job ${run.jobName})`);
        if (flags.detach) {
          cli.out(`${run.id}\n`);
          return 0;
        }
        return followToExit(cli, client, run, { interactive: input.interactive || input.tty });
      }),
    );
}

async function runTask(cli: CliContext, cmd: Command, name: string, flags: RunFlags): Promise<number> {
  const notForTasks: Array<[boolean, string]> = [
    [cli.commandArgv !== undefined || cmd.args.length > 1, 'a command after `--` (the Task declares its command)'],
    [flags.container !== undefined, '-c (the Task names its container)'],
    [Boolean(flags.interactive || flags.tty), '-i/-t (Tasks run non-interactively)'],
    [flags.timeout !== undefined, '--timeout (the Task sets its own)'],
    [flags.sidecars === false, '--no-sidecars'],
  ];
  for (const [given, what] of notForTasks) {
    if (given) throw new CliError(`a Task run takes no ${what}`, { hint: `oddjob run task/${name} --param KEY=VALUE`, usage: true });
  }
  const req = TaskRunRequest.safeParse({
    namespace: flags.namespace ?? (await defaultNamespace(cli, cmd)),
    task: name,
    params: parseParams(flags.param),
    reason: flags.reason?.trim() ? flags.reason : undefined,
    ...(flags.force ? { force: true } : {}),
  });
  if (!req.success) throw new CliError(describeZodError(req.error), { usage: true });
  const client = cli.client(cmd);
  const started = await client.startRun(req.data);
  if ('approval' in started) return waitForApproval(cli, client, started.approval, { wait: flags.wait && !flags.detach });
  const { run } = started;
  cli.note(`run ${run.id} of task ${name} created (job ${run.jobName}): ${JSON.stringify(run.command)}`);
  if (flags.detach) {
    cli.out(`${run.id}\n`);
    return 0;
  }
  return followToExit(cli, client, run, { interactive: false });
}
