// `oddjob deployments`: the Deployments I may run in, with who else may.
import type { Command } from 'commander';
import type { DeploymentSummary } from '../../protocol/api.js';
import type { CliContext } from '../context.js';
import { formatSeconds } from '../lib/duration.js';
import { addOutputOptions, outputFormat, printListing, renderListing, type Listing, type OutputFlags } from '../lib/output.js';
import { truncate } from '../lib/table.js';
import { printJsonLines } from './shared.js';

export default function register(program: Command, cli: CliContext): void {
  addOutputOptions(
    program
      .command('deployments')
      .summary('list the Deployments you may run in')
      .option('-n, --namespace <ns>', 'only this namespace (default: every namespace the server serves)')
      .option('--json', 'one JSON object per line (JSON Lines) instead of a table'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  oddjob deployments -n payments\n  oddjob deployments -o name          # deployment.apps/NAME, as oddjob run takes it\n',
    )
    .action(
      cli.act(async (flags: { namespace?: string } & OutputFlags, cmd: Command) => {
        outputFormat(flags);
        const items = await cli.client(cmd).deployments(flags.namespace);
        if (flags.json) printJsonLines(cli, items);
        else printListing(cli, flags, deploymentsListing(flags.namespace), items);
        return 0;
      }),
    );
}

export function deploymentsListing(namespace?: string): Listing<DeploymentSummary> {
  return {
    kind: 'DeploymentList',
    columns: ['NAMESPACE', 'NAME', 'CONTAINERS', 'MAX DURATION', 'ALLOWED'],
    row: (d) => [
      d.namespace,
      d.name,
      // The default container first and starred: it is where `run` goes without -c.
      [...d.containers]
        .sort((a, b) => Number(b.name === d.defaultContainer) - Number(a.name === d.defaultContainer))
        .map((c) => (c.name === d.defaultContainer ? `${c.name}*` : c.name))
        .join(','),
      d.maxDurationSeconds === undefined ? '-' : formatSeconds(d.maxDurationSeconds),
      truncate([...d.allowedTeams.map((t) => `team:${t}`), ...d.allowedUsers.map((u) => `user:${u}`)].join(',') || '-', 60),
    ],
    wideColumns: ['IMAGES'],
    wideRow: (d) => [[...new Set(d.containers.map((c) => c.image))].join(',')],
    // What `kubectl get deploy -o name` prints, and what `oddjob run` accepts.
    name: (d) => `deployment.apps/${d.name}`,
    empty: `no Deployments you may run in${namespace ? ` in namespace ${namespace}` : ''}`,
  };
}

export function deploymentsTable(items: readonly DeploymentSummary[]): string {
  return renderListing('table', {}, deploymentsListing(), items).stdout;
}
