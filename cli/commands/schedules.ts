// `oddjob schedules`, `suspend task/NAME`, `resume task/NAME`, `history task/NAME`:
// the scheduled Tasks, their slots, and pausing them (audited with who and why).
import type { Command } from 'commander';
import type { ScheduleSlot, ScheduleSummary } from '../../protocol/schedules.js';
import { escapeDisplay } from '../../protocol/display.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { addOutputOptions, outputFormat, printListing, type Listing, type OutputFlags } from '../lib/output.js';
import { truncate } from '../lib/table.js';
import { checkLimit, defaultNamespace, printJsonLines } from './shared.js';

/** `task/NAME` (or `tasks/NAME`, `task.oddjob.io/NAME`, as kubectl prints it) → NAME. */
export function parseTaskArg(arg: string): string {
  const m = /^(?:tasks?|task\.oddjob\.io|tasks\.oddjob\.io)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(arg);
  if (!m) throw new CliError(`"${arg}" is not a Task: write task/NAME, e.g. task/nightly-report`, { usage: true });
  return m[1]!;
}

const localTime = (iso: string | undefined) => (iso ? iso.replace(/\.000Z$/, 'Z') : '-');

function outcome(s: ScheduleSummary): string {
  if (s.error) return 'invalid';
  if (!s.lastSlot) return '-';
  return `${s.lastSlot.state} ${localTime(s.lastSlot.nominal)}`;
}

function schedulesListing(namespace?: string): Listing<ScheduleSummary> {
  return {
    kind: 'ScheduleList',
    columns: ['NAMESPACE', 'TASK', 'SCHEDULE', 'ZONE', 'NEXT', 'LAST', 'MISSED', 'SUSPENDED'],
    row: (s) => [
      s.namespace,
      s.task,
      s.cron || '-',
      s.timeZone || '-',
      localTime(s.nextScheduleTime),
      outcome(s),
      String(s.missedSlots),
      s.suspension ? `yes (${escapeDisplay(truncate(`${s.suspension.by}: ${s.suspension.reason}`, 40))})` : s.suspendedBySpec ? 'yes (spec)' : 'no',
    ],
    wideColumns: ['DEPLOYMENT', 'POLICY', 'LAST SUCCESS', 'PROBLEM'],
    wideRow: (s) => [s.deployment, s.concurrencyPolicy, localTime(s.lastSuccessfulTime), s.error ? escapeDisplay(truncate(s.error, 80)) : '-'],
    name: (s) => `task.oddjob.io/${s.task}`,
    empty: `no scheduled Tasks you may see${namespace ? ` in namespace ${namespace}` : ''}`,
  };
}

function historyListing(task: string): Listing<ScheduleSlot> {
  return {
    kind: 'ScheduleSlotList',
    columns: ['SLOT', 'STATE', 'RUN', 'ATTEMPT', 'MESSAGE'],
    row: (s) => [localTime(s.nominal), s.state, s.runId ?? '-', String(s.attempt), s.message ? escapeDisplay(truncate(s.message, 80)) : '-'],
    wideColumns: ['DECIDED', 'STARTED', 'FINISHED', 'RUNS'],
    wideRow: (s) => [localTime(s.decidedAt), localTime(s.startedAt), localTime(s.finishedAt), s.runIds.join(',') || '-'],
    name: (s) => s.runId ?? `slot/${s.nominal}`,
    empty: `task ${task} has no slots yet`,
  };
}

export default function register(program: Command, cli: CliContext): void {
  addOutputOptions(
    program
      .command('schedules')
      .summary('list scheduled Tasks: next run, last outcome, missed slots, suspension')
      .option('-n, --namespace <ns>', 'only this namespace (default: every namespace the server serves)')
      .option('--json', 'one JSON object per line (JSON Lines) instead of a table'),
  )
    .addHelpText('after', '\nTimes are UTC. Examples:\n  oddjob schedules -n payments\n  oddjob schedules -o wide\n')
    .action(
      cli.act(async (flags: { namespace?: string } & OutputFlags, cmd: Command) => {
        outputFormat(flags);
        const items = await cli.client(cmd).schedules(flags.namespace);
        if (flags.json) printJsonLines(cli, items);
        else printListing(cli, flags, schedulesListing(flags.namespace), items);
        return 0;
      }),
    );

  program
    .command('suspend')
    .summary("suspend a Task's schedule (survives re-applying the Task)")
    .argument('<task>', 'task/NAME')
    .option('-n, --namespace <ns>', "the Task's namespace")
    .requiredOption('--reason <text>', 'why (recorded in the audit log and shown by oddjob schedules)')
    .addHelpText(
      'after',
      '\nSlots while suspended are recorded as skipped. Example:\n  oddjob suspend task/nightly-report -n payments --reason "INC-2231 bad input"\n',
    )
    .action(
      cli.act(async (arg: string, flags: { namespace?: string; reason: string }, cmd: Command) => {
        const name = parseTaskArg(arg);
        const namespace = flags.namespace ?? (await defaultNamespace(cli, cmd));
        const s = await cli.client(cmd).suspendSchedule(namespace, name, flags.reason);
        cli.out(`task ${s.namespace}/${s.task}: schedule suspended\n`);
        return 0;
      }),
    );

  program
    .command('resume')
    .summary("resume a Task's schedule from now on (no catch-up of skipped slots)")
    .argument('<task>', 'task/NAME')
    .option('-n, --namespace <ns>', "the Task's namespace")
    .action(
      cli.act(async (arg: string, flags: { namespace?: string }, cmd: Command) => {
        const name = parseTaskArg(arg);
        const namespace = flags.namespace ?? (await defaultNamespace(cli, cmd));
        const s = await cli.client(cmd).resumeSchedule(namespace, name);
        if (s.suspendedBySpec) {
          cli.warn(`task ${s.namespace}/${s.task} is still suspended: its spec.schedule.suspend is true; change it in the Task (git)`);
          return 1;
        }
        cli.out(`task ${s.namespace}/${s.task}: schedule resumed; next slot ${localTime(s.nextScheduleTime)}\n`);
        return 0;
      }),
    );

  addOutputOptions(
    program
      .command('history')
      .summary("a Task's schedule slots, newest first, with their runs")
      .argument('<task>', 'task/NAME')
      .option('-n, --namespace <ns>', "the Task's namespace")
      .option('--limit <n>', 'at most this many slots', '50')
      .option('--json', 'one JSON object per line (JSON Lines) instead of a table'),
  )
    .addHelpText('after', "\nA slot's output stays replayable: oddjob logs RUN. Example:\n  oddjob history task/nightly-report -n payments\n")
    .action(
      cli.act(async (arg: string, flags: { namespace?: string; limit?: string } & OutputFlags, cmd: Command) => {
        outputFormat(flags);
        const name = parseTaskArg(arg);
        const namespace = flags.namespace ?? (await defaultNamespace(cli, cmd));
        const items = await cli.client(cmd).scheduleHistory(namespace, name, Math.min(checkLimit(flags.limit, 50), 1000));
        if (flags.json) printJsonLines(cli, items);
        else printListing(cli, flags, historyListing(`${namespace}/${name}`), items);
        return 0;
      }),
    );
}
