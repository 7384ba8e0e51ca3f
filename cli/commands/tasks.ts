// `oddjob tasks`: the Tasks I may run, with their parameters (-o wide: the command too).
import type { Command } from 'commander';
import type { TaskParam, TaskSummary } from '../../protocol/tasks.js';
import type { CliContext } from '../context.js';
import { formatSeconds } from '../lib/duration.js';
import { addOutputOptions, outputFormat, printListing, type Listing, type OutputFlags } from '../lib/output.js';
import { formatCommand, truncate } from '../lib/table.js';
import { printJsonLines } from './shared.js';

export default function register(program: Command, cli: CliContext): void {
  addOutputOptions(
    program
      .command('tasks')
      .summary('list the Tasks you may run, with their parameters')
      .option('-n, --namespace <ns>', 'only this namespace (default: every namespace the server serves)')
      .option('--json', 'one JSON object per line (JSON Lines) instead of a table'),
  )
    .addHelpText(
      'after',
      '\nA parameter shows as name:type, with ! when required and =value for its default.\n\nExamples:\n  oddjob tasks -n payments\n  oddjob run task/reindex -n payments --param merchant=m_12345678\n',
    )
    .action(
      cli.act(async (flags: { namespace?: string } & OutputFlags, cmd: Command) => {
        outputFormat(flags);
        const items = await cli.client(cmd).tasks(flags.namespace);
        if (flags.json) printJsonLines(cli, items);
        else printListing(cli, flags, tasksListing(flags.namespace), items);
        return 0;
      }),
    );
}

export function describeParam(p: TaskParam): string {
  let s = `${p.name}:${p.type === 'choice' ? p.choices.join('|') : p.type}`;
  if (p.required) s += '!';
  if (p.default !== undefined) s += `=${String(p.default)}`;
  return s;
}

export function tasksListing(namespace?: string): Listing<TaskSummary> {
  return {
    kind: 'TaskList',
    columns: ['NAMESPACE', 'NAME', 'DEPLOYMENT', 'PARAMS', 'APPROVAL', 'READY', 'DESCRIPTION'],
    row: (t) => [
      t.namespace,
      t.name,
      t.deployment,
      truncate(t.params.map(describeParam).join(' ') || '-', 80),
      t.approval === 'required' ? 'required' : '-',
      t.ready ? 'yes' : `no: ${truncate(t.problem ?? '', 60)}`,
      truncate(t.description ?? '', 60),
    ],
    wideColumns: ['TIMEOUT', 'GENERATION', 'COMMAND'],
    wideRow: (t) => [t.timeoutSeconds === undefined ? '-' : formatSeconds(t.timeoutSeconds), String(t.generation), formatCommand(t.command)],
    name: (t) => `task.oddjob.io/${t.name}`,
    empty: `no Tasks you may run${namespace ? ` in namespace ${namespace}` : ''}`,
  };
}
