// `oddjob audit`: query the audit log (table, -o json|yaml|wide|name, or NDJSON
// straight from the server's export with --json), and `oddjob audit verify`:
// check its hash chain.
import type { Command } from 'commander';
import { AuditEventType, AuditQuery, describeZodError, type AuditEvent } from '../../protocol/api.js';
import type { AuditFilter } from '../client.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { parseTimeBound } from '../lib/duration.js';
import { addOutputOptions, outputFormat, printListing, renderListing, type Listing, type OutputFlags } from '../lib/output.js';
import { formatCommand, truncate } from '../lib/table.js';
import { checkLimit, checkStatus } from './shared.js';

interface AuditFlags extends OutputFlags {
  user?: string;
  deployment?: string;
  namespace?: string;
  since?: string;
  until?: string;
  status?: string;
  type?: string;
  limit?: string;
}

const PAGE_MAX = 1000;
const TABLE_DEFAULT_LIMIT = 200;

export default function register(program: Command, cli: CliContext): void {
  const audit = program.command('audit');
  addOutputOptions(audit)
    .summary('query the audit log; `audit verify` checks it was not tampered with')
    .description('Audit events, oldest first. Filters combine (AND).')
    .option('--user <login>', 'events by this user')
    .option('--deployment <name>', 'events about this Deployment')
    .option('-n, --namespace <ns>', 'events in this namespace')
    .option('--since <when>', 'from this long ago (24h, 30m, 7d) or this time (ISO 8601)')
    .option('--until <when>', 'up to this long ago or this time')
    .option('--status <status>', 'run outcome: succeeded, failed, deadline, cancelled, lost, ...')
    .option('--type <type>', `event type: ${AuditEventType.options.join(', ')}`)
    .option('--limit <n>', `at most this many events (default: ${TABLE_DEFAULT_LIMIT}; --json default: all)`)
    .option('--json', 'NDJSON, exactly as the server exports it (one event per line, with hashes)')
    .addHelpText(
      'after',
      '\nExamples:\n  oddjob audit --since 24h --deployment api\n  oddjob audit --since 1h -o yaml\n  oddjob audit --type run.denied -n payments\n  oddjob audit --json --since 2024-05-01 > audit.ndjson\n  oddjob audit verify\n',
    )
    .action(
      cli.act(async (flags: AuditFlags, cmd: Command) => {
        outputFormat(flags);
        const now = new Date();
        const filter: AuditFilter = {
          user: flags.user,
          deployment: flags.deployment,
          namespace: flags.namespace,
          type: checkType(flags.type),
          status: checkStatus(flags.status),
          since: flags.since === undefined ? undefined : parseTimeBound(flags.since, '--since', now),
          until: flags.until === undefined ? undefined : parseTimeBound(flags.until, '--until', now),
        };
        const q = AuditQuery.safeParse({ ...filter });
        if (!q.success) throw new CliError(describeZodError(q.error), { usage: true });
        const client = cli.client(cmd);

        if (flags.json) {
          const limit = flags.limit === undefined ? undefined : checkLimit(flags.limit, 1);
          await copyLines(await client.auditExport(filter), cli.io.stdout, limit);
          return 0;
        }

        const limit = checkLimit(flags.limit, TABLE_DEFAULT_LIMIT);
        const items: AuditEvent[] = [];
        let cursor: string | undefined;
        do {
          const page = await client.audit({ ...filter, limit: Math.min(limit - items.length, PAGE_MAX), cursor });
          items.push(...page.items);
          cursor = page.nextCursor;
        } while (cursor && items.length < limit);
        printListing(cli, flags, auditListing, items.slice(0, limit));
        if (cursor) cli.note(`showing the first ${limit} events; raise --limit or use --json for all`);
        return 0;
      }),
    );

  audit
    .command('verify')
    .summary("check the audit log's hash chain for edits and deletions")
    .option('--json', 'print the verification result as JSON')
    .action(
      cli.act(async (flags: { json?: boolean }, cmd: Command) => {
        const r = await cli.client(cmd).auditVerify();
        if (flags.json) cli.out(`${JSON.stringify(r)}\n`);
        else if (r.ok) cli.out(`audit chain intact: ${r.checked} events checked\n`);
        else {
          const where = r.brokenAt === undefined ? '' : ` at seq ${r.brokenAt}`;
          cli.out(`audit chain BROKEN${where}: ${r.problem ?? 'the hashes do not match'} (${r.checked} events checked)\n`);
        }
        return r.ok ? 0 : 1;
      }),
    );
}

function checkType(t: string | undefined) {
  if (t === undefined) return undefined;
  const parsed = AuditEventType.safeParse(t);
  if (!parsed.success) throw new CliError(`--type must be one of ${AuditEventType.options.join(', ')}`, { usage: true });
  return parsed.data;
}

export const auditListing: Listing<AuditEvent> = {
  kind: 'AuditEventList',
  columns: ['SEQ', 'TIME', 'TYPE', 'USER', 'TARGET', 'RUN', 'OUTCOME', 'DETAIL'],
  row: (e) => [
    String(e.seq),
    e.time.replace(/\.\d+(?=Z$)/, ''),
    e.type,
    e.actor.login,
    e.namespace ? `${e.namespace}/${e.deployment ?? '-'}` : '-',
    e.runId ?? '-',
    e.status ? `${e.status}${e.exitCode === undefined ? '' : ` (${e.exitCode})`}` : '-',
    truncate(e.message ?? (e.command ? formatCommand(e.command) : ''), 60),
  ],
  // Wide: from where, in what, and why (what an investigation asks next).
  wideColumns: ['CLIENT', 'CONTAINER', 'REASON'],
  wideRow: (e) => [`${e.client.kind}${e.client.address ? `@${e.client.address}` : ''}`, e.container ?? '-', truncate(e.reason ?? '-', 40)],
  name: (e) => String(e.seq),
  empty: 'no audit events match',
};

export function auditTable(events: readonly AuditEvent[]): string {
  return renderListing('table', {}, auditListing, events).stdout;
}

/** Copies bytes through, stopping after `limit` lines when given. */
async function copyLines(body: ReadableStream<Uint8Array>, out: NodeJS.WritableStream, limit: number | undefined): Promise<void> {
  let lines = 0;
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      let chunk = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      if (limit !== undefined) {
        let cut = -1;
        for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) {
          if (++lines === limit) {
            cut = i + 1;
            break;
          }
        }
        if (cut >= 0) chunk = chunk.subarray(0, cut);
      }
      if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
      if (limit !== undefined && lines >= limit) return;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
