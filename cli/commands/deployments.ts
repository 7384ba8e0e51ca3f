// `oddjob deployments`: the Deployments I may run in, with who else may.
import type { Command } from 'commander';
import type { DeploymentSummary } from '../../protocol/api.js';
import type { CliContext } from '../context.js';
import { formatSeconds } from '../lib/duration.js';
import { formatTable, truncate } from '../lib/table.js';
import { printJsonLines } from './shared.js';

export default function register(program: Command, cli: CliContext): void {
  program
    .command('deployments')
    .summary('list the Deployments you may run in')
    .option('-n, --namespace <ns>', 'only this namespace (default: every namespace the server serves)')
    .option('--json', 'one JSON object per line (JSON Lines) instead of a table')
    .addHelpText('after', '\nExample:\n  oddjob deployments -n payments\n')
    .action(
      cli.act(async (flags: { namespace?: string; json?: boolean }, cmd: Command) => {
        const items = await cli.client(cmd).deployments(flags.namespace);
        if (flags.json) printJsonLines(cli, items);
        else if (items.length === 0) cli.note(`no Deployments you may run in${flags.namespace ? ` in namespace ${flags.namespace}` : ''}`);
        else cli.out(deploymentsTable(items));
        return 0;
      }),
    );
}

export function deploymentsTable(items: readonly DeploymentSummary[]): string {
  return formatTable(
    ['NAMESPACE', 'NAME', 'CONTAINERS', 'MAX DURATION', 'ALLOWED'],
    items.map((d) => [
      d.namespace,
      d.name,
      // The default container first and starred: it is where `run` goes without -c.
      [...d.containers]
        .sort((a, b) => Number(b.name === d.defaultContainer) - Number(a.name === d.defaultContainer))
        .map((c) => (c.name === d.defaultContainer ? `${c.name}*` : c.name))
        .join(','),
      d.maxDurationSeconds === undefined ? '-' : formatSeconds(d.maxDurationSeconds),
      truncate([...d.allowedTeams.map((t) => `team:${t}`), ...d.allowedUsers.map((u) => `user:${u}`)].join(',') || '-', 60),
    ]),
  );
}
