// `oddjob runs`: recent runs as a table, or JSON lines with --json.
import type { Command } from 'commander';
import { RunListQuery, describeZodError, type Run } from '../../protocol/api.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { formatAge } from '../lib/duration.js';
import { formatCommand, formatTable, truncate } from '../lib/table.js';
import { checkLimit, checkStatus, printJsonLines } from './shared.js';

interface RunsFlags {
  mine?: boolean;
  namespace?: string;
  deployment?: string;
  status?: string;
  limit?: string;
  json?: boolean;
}

const PAGE_MAX = 500;

export default function register(program: Command, cli: CliContext): void {
  program
    .command('runs')
    .summary('list runs')
    .description('List runs, newest first, in every namespace the server serves unless -n is given.')
    .option('--mine', 'only runs I started')
    .option('-n, --namespace <ns>', 'only this namespace')
    .option('--deployment <name>', 'only runs of this Deployment')
    .option('--status <status>', 'pending, running, succeeded, failed, deadline, cancelled or lost')
    .option('--limit <n>', 'at most this many runs', '50')
    .option('--json', 'one JSON object per line (JSON Lines) instead of a table')
    .addHelpText('after', '\nExamples:\n  oddjob runs --mine\n  oddjob runs -n payments --status failed\n  oddjob runs --json | jq -r .id\n')
    .action(
      cli.act(async (flags: RunsFlags, cmd: Command) => {
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
        else if (shown.length === 0) cli.note('no runs match');
        else cli.out(runsTable(shown, Date.now()));
        return 0;
      }),
    );
}

export function runsTable(runs: readonly Run[], now: number): string {
  return formatTable(
    ['ID', 'STATUS', 'EXIT', 'DEPLOYMENT', 'USER', 'AGE', 'COMMAND'],
    runs.map((r) => [
      r.id,
      r.status,
      r.exitCode === undefined ? '-' : String(r.exitCode),
      `${r.namespace}/${r.deployment}`,
      r.user,
      formatAge(now - Date.parse(r.createdAt)),
      truncate(formatCommand(r.command), 60),
    ]),
  );
}
