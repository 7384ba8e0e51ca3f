// `oddjob notifications`: the delivery log of notifications (auditors), and
// `oddjob notifications redeliver ID` to send one again with the same webhook id.
import type { Command } from 'commander';
import type { Delivery } from '../../protocol/api.js';
import { escapeDisplay } from '../../protocol/display.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { formatAge } from '../lib/duration.js';
import { addOutputOptions, outputFormat, printListing, type Listing, type OutputFlags } from '../lib/output.js';
import { truncate } from '../lib/table.js';
import { checkLimit, checkRunId, printJsonLines } from './shared.js';

interface Flags extends OutputFlags {
  failed?: boolean;
  pending?: boolean;
  run?: string;
  target?: string;
  limit?: string;
  json?: boolean;
}

export default function register(program: Command, cli: CliContext): void {
  const command = program
    .command('notifications')
    .summary('the notification delivery log (auditors)')
    .description(
      "Notifications sent to the operator's targets (Slack, webhooks), newest first: state, attempts, the last error. " +
        'Failed ones gave up (older than the delivery maxAge, or refused for a reason no retry fixes, like a revoked Slack token); ' +
        'pending ones are being retried. After fixing a target: oddjob notifications redeliver --failed --target NAME.',
    )
    .option('--failed', 'only deliveries that gave up')
    .option('--pending', 'only deliveries still being retried')
    .option('--run <id>', "only this run's")
    .option('--target <name>', 'only this target')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'one JSON object per line (JSON Lines) instead of a table');
  addOutputOptions(command)
    .addHelpText('after', '\nExamples:\n  oddjob notifications --failed\n  oddjob notifications --run k3x9q2m7a1bz\n  oddjob notifications redeliver 42\n')
    .action(
      cli.act(async (flags: Flags, cmd: Command) => {
        outputFormat(flags);
        if (flags.failed && flags.pending) throw new CliError('give --failed or --pending, not both', { usage: true });
        if (flags.run) checkRunId(flags.run);
        const limit = Math.min(checkLimit(flags.limit, 50), 500);
        const page = await cli.client(cmd).notifications({
          state: flags.failed ? 'failed' : flags.pending ? 'pending' : undefined,
          runId: flags.run,
          target: flags.target,
          limit,
        });
        if (flags.json) printJsonLines(cli, page.items);
        else printListing(cli, flags, deliveriesListing(Date.now()), page.items);
        return 0;
      }),
    );
  command
    .command('redeliver')
    .summary('send a notification again (same webhook id), now; or every failed one')
    .argument('[id]', 'the delivery id (first column of `oddjob notifications`)')
    .option('--failed', 'every failed delivery (after fixing the target), instead of one id')
    .option('--target <name>', 'with --failed: only this target')
    .addHelpText('after', '\nExamples:\n  oddjob notifications redeliver 42\n  oddjob notifications redeliver --failed --target ops-slack\n')
    .action(
      cli.act(async (id: string | undefined, own: { failed?: boolean; target?: string }, cmd: Command) => {
        // `oddjob notifications` has --failed and --target too (listing filters), and
        // commander gives an option to the parent when both define it.
        const flags = { ...(cmd.optsWithGlobals() as { failed?: boolean; target?: string }), ...own };
        if (flags.failed) {
          if (id !== undefined) throw new CliError('give a delivery id or --failed, not both', { usage: true });
          const { redelivered } = await cli.client(cmd).redeliverFailed(flags.target);
          cli.out(
            `${redelivered} failed deliver${redelivered === 1 ? 'y' : 'ies'}${flags.target ? ` to ${flags.target}` : ''} will be sent again now, each with its webhook id\n`,
          );
          return 0;
        }
        if (flags.target) throw new CliError('--target goes with --failed', { usage: true });
        if (id === undefined)
          throw new CliError('give the delivery id to send again (see oddjob notifications), or --failed for every failed one', { usage: true });
        if (!/^[1-9]\d{0,15}$/.test(id)) throw new CliError(`"${id}" is not a delivery id; see oddjob notifications`, { usage: true });
        const d = await cli.client(cmd).redeliver(Number(id));
        cli.out(`delivery ${d.id} (${d.event} to ${d.target}) will be sent again now, with webhook id ${d.webhookId}\n`);
        return 0;
      }),
    );
}

export function deliveriesListing(now: number): Listing<Delivery> {
  return {
    kind: 'DeliveryList',
    columns: ['ID', 'STATE', 'TARGET', 'EVENT', 'RUN', 'ATTEMPTS', 'AGE', 'LAST ERROR'],
    row: (d) => [
      String(d.id),
      d.state,
      d.target,
      d.event,
      d.runId ?? '-',
      String(d.attempts),
      formatAge(now - Date.parse(d.createdAt)),
      d.lastError ? truncate(escapeDisplay(d.lastError), 50) : '-',
    ],
    wideColumns: ['WEBHOOK ID', 'NEXT ATTEMPT', 'DELIVERED'],
    wideRow: (d) => [d.webhookId, d.nextAttemptAt ?? '-', d.deliveredAt ?? '-'],
    name: (d) => String(d.id),
    empty: 'no deliveries match',
  };
}
