// `oddjob runs`: recent runs as a table, -o json|yaml|wide|name, or JSON lines with --json.
import type { Command } from 'commander';
import { RunListQuery, describeZodError, type Run } from '../../protocol/api.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { formatAge } from '../lib/duration.js';
import { addOutputOptions, outputFormat, printListing, renderListing, type Listing, type OutputFlags } from '../lib/output.js';
import { formatCommand, truncate } from '../lib/table.js';
import { checkLimit, checkStatus, printJsonLines } from './shared.js';

interface RunsFlags extends OutputFlags {
  mine?: boolean;
  namespace?: string;
  deployment?: string;
  status?: string;
  limit?: string;
}

const PAGE_MAX = 500;

export default function register(program: Command, cli: CliContext): void {
  const command = program
    .command('runs')
    .summary('list runs')
    .description('List runs, newest first, in every namespace the server serves unless -n is given.')
    .option('--mine', 'only runs I started')
    .option('-n, --namespace <ns>', 'only this namespace')
    .option('--deployment <name>', 'only runs of this Deployment')
    .option('--status <status>', 'pending, running, succeeded, failed, deadline, cancelled or lost')
    .option('--limit <n>', 'at most this many runs', '50')
    .option('--json', 'one JSON object per line (JSON Lines) instead of a table');
  addOutputOptions(command)
    .addHelpText(
      'after',
      "\nExamples:\n  oddjob runs --mine\n  oddjob runs -n payments --status failed -o wide\n  oddjob runs -o json | jq -r '.items[].id'\n  oddjob runs --status running -o name | xargs -n1 oddjob cancel\n",
    )
    .action(
      cli.act(async (flags: RunsFlags, cmd: Command) => {
        outputFormat(flags);
        const limit = checkLimit(flags.limit, 50);
        const filter = {
          mine: flags.mine || undefined,
          namespace: flags.namespace,
          deployment: flags.deployment,
          status: checkStatus(flags.status),
        };
        const q = RunListQuery.safeParse({ ...filter, limit: Math.min(limit, PAGE_MAX) });
        if (!q.success) throw new CliError(describeZodError(q.error), { usage: true });
        const client = cli.client(cmd);
        const items: Run[] = [];
        let cursor: string | undefined;
        do {
          const page = await client.listRuns({ ...filter, limit: Math.min(limit - items.length, PAGE_MAX), cursor });
          items.push(...page.items);
          cursor = page.nextCursor;
        } while (cursor && items.length < limit);
        const shown = items.slice(0, limit);
        if (flags.json) printJsonLines(cli, shown);
        else printListing(cli, flags, runsListing(Date.now()), shown);
        return 0;
      }),
    );
}

export function runsListing(now: number): Listing<Run> {
  const time = (t?: string) => (t ? t.replace(/\.\d+(?=Z$)/, '') : '-');
  return {
    kind: 'RunList',
    columns: ['ID', 'STATUS', 'EXIT', 'DEPLOYMENT', 'USER', 'AGE', 'COMMAND'],
    row: (r) => [
      r.id,
      r.status,
      r.exitCode === undefined ? '-' : String(r.exitCode),
      `${r.namespace}/${r.deployment}`,
      r.user,
      formatAge(now - Date.parse(r.createdAt)),
      truncate(formatCommand(r.command), 60),
    ],
    // The command stays last (it is the widest); wide adds where and when it ran and why.
    wideColumns: ['CONTAINER', 'STARTED', 'FINISHED', 'POD', 'REASON'],
    wideRow: (r) => [r.container, time(r.startedAt), time(r.finishedAt), r.podName ?? '-', truncate(r.reason ?? '-', 40)],
    name: (r) => r.id,
    empty: 'no runs match',
  };
}

export function runsTable(runs: readonly Run[], now: number): string {
  return renderListing('table', {}, runsListing(now), runs).stdout;
}
