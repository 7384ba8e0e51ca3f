// Four-eyes approval from the terminal: `oddjob requests`, `oddjob approve`, `oddjob deny`,
// and the wait of `oddjob run` for a decision on its request.
import type { Command } from 'commander';
import { approvalId, type ApprovalRequest } from '../../protocol/api.js';
import { ApiError, type OddjobClient } from '../client.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { formatAge } from '../lib/duration.js';
import { EXIT_CANCELLED, EXIT_ODDJOB } from '../lib/exit.js';
import { addOutputOptions, outputFormat, printListing, type Listing, type OutputFlags } from '../lib/output.js';
import { formatCommand, truncate } from '../lib/table.js';
import { followToExit } from '../session.js';
import { printJsonLines } from './shared.js';

function checkRequestId(id: string): string {
  if (!approvalId.safeParse(id).success) {
    throw new CliError(`"${id}" is not a request id (12 lowercase letters or digits)`, { usage: true, hint: 'list them with: oddjob requests --pending' });
  }
  return id;
}

const POLL_MS = 1500;

/**
 * After `run` became a request: say so, and (unless told not to) wait for the decision,
 * then stream the approved run. Ctrl-C stops waiting; the request stays.
 */
export async function waitForApproval(cli: CliContext, client: OddjobClient, request: ApprovalRequest, opts: { wait: boolean }): Promise<number> {
  cli.note(`run needs approval: request ${request.id} created (manifest sha256 ${request.manifestHash.slice(0, 12)}…); approvers: ${request.approvers}`);
  cli.note(`an approver runs: oddjob approve ${request.id}   (expires ${request.expiresAt})`);
  if (!opts.wait) {
    cli.out(`${request.id}\n`);
    return 0;
  }
  cli.note('waiting for the decision (Ctrl-C stops waiting; the request stays)');
  const stop = new AbortController();
  const onSigint = () => stop.abort();
  process.on('SIGINT', onSigint);
  try {
    let r = request;
    while (r.status === 'pending') {
      if (!(await sleep(POLL_MS, stop.signal))) {
        cli.io.stderr.write(`oddjob: stopped waiting; request ${r.id} is still pending.\n  check: oddjob requests --pending\n`);
        return EXIT_CANCELLED;
      }
      r = await client.getRequest(r.id);
    }
    const by = r.decidedBy ? ` by ${r.decidedBy.login}` : '';
    const why = r.decisionReason ? `: ${r.decisionReason}` : r.message ? `: ${r.message}` : '';
    if (r.status !== 'approved') {
      cli.note(`request ${r.id} was ${r.status}${by}${why}; nothing ran`);
      return EXIT_ODDJOB;
    }
    cli.note(`request ${r.id} approved${by}${why}; run ${r.runId} starts`);
    // The run record appears a moment after the approval.
    for (let i = 0; ; i++) {
      try {
        const run = await client.getRun(r.runId);
        return await followToExit(cli, client, run, { interactive: false });
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 404) || i >= 40) {
          if (err instanceof ApiError && err.status === 404) {
            const now = await client.getRequest(r.id);
            cli.note(`run ${r.runId} did not start${now.message ? `: ${now.message}` : ''}`);
            return EXIT_ODDJOB;
          }
          throw err;
        }
        if (!(await sleep(500, stop.signal))) return EXIT_CANCELLED;
      }
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function requestsListing(now: number): Listing<ApprovalRequest> {
  return {
    kind: 'RequestList',
    columns: ['ID', 'STATUS', 'AGE', 'REQUESTER', 'NAMESPACE', 'TARGET', 'COMMAND'],
    row: (r) => [
      r.id,
      r.status,
      formatAge(now - Date.parse(r.createdAt)),
      r.requester.login,
      r.namespace,
      r.task ? `task/${r.task}` : `deploy/${r.deployment}`,
      truncate(formatCommand(r.command), 60),
    ],
    wideColumns: ['APPROVERS', 'DECIDED BY', 'RUN', 'MANIFEST SHA256', 'REASON'],
    wideRow: (r) => [r.approvers, r.decidedBy?.login ?? '-', r.status === 'approved' ? r.runId : '-', r.manifestHash, truncate(r.reason ?? '', 40)],
    name: (r) => r.id,
    empty: 'no requests',
  };
}

export default function register(program: Command, cli: CliContext): void {
  addOutputOptions(
    program
      .command('requests')
      .summary('list run requests waiting for (or given) approval')
      .description('Requests you made, may decide on, or may see; newest first.')
      .option('--pending', 'only requests still waiting for a decision')
      .option('--json', 'one JSON object per line (JSON Lines) instead of a table'),
  )
    .addHelpText('after', '\nExamples:\n  oddjob requests --pending\n  oddjob requests -o wide\n')
    .action(
      cli.act(async (flags: { pending?: boolean } & OutputFlags, cmd: Command) => {
        outputFormat(flags);
        const items = await cli.client(cmd).requests(Boolean(flags.pending));
        if (flags.json) printJsonLines(cli, items);
        else printListing(cli, flags, requestsListing(Date.now()), items);
        return 0;
      }),
    );

  program
    .command('approve')
    .summary("approve someone else's run request; it runs at once")
    .description('Runs exactly the Job manifest recorded in the request, once. You cannot approve your own request.')
    .argument('<id>', 'the request id')
    .option('--reason <text>', 'why; recorded in the audit log')
    .action(
      cli.act(async (id: string, flags: { reason?: string }, cmd: Command) => {
        const r = await cli.client(cmd).approve(checkRequestId(id), flags.reason?.trim() || undefined);
        cli.note(`approved request ${r.id}: run ${r.runId} of ${r.requester.login} started (${formatCommand(r.command)})`);
        cli.out(`${r.runId}\n`);
        return 0;
      }),
    );

  program
    .command('deny')
    .summary('deny a run request')
    .argument('<id>', 'the request id')
    .requiredOption('--reason <text>', 'why; the requester sees it and the audit log records it')
    .action(
      cli.act(async (id: string, flags: { reason: string }, cmd: Command) => {
        if (!flags.reason.trim()) throw new CliError('--reason must not be empty', { usage: true });
        const r = await cli.client(cmd).deny(checkRequestId(id), flags.reason.trim());
        cli.note(`denied request ${r.id} of ${r.requester.login}`);
        return 0;
      }),
    );
}
