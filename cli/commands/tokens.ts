// `oddjob tokens`: my live sessions and tokens; create one for automation
// (ODDJOB_TOKEN in CI); revoke one.
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import type { CredentialInfo } from '../../protocol/api.js';
import { addOutputOptions, outputFormat, printListing, type Listing, type OutputFlags } from '../lib/output.js';
import { truncate } from '../lib/table.js';

export default function register(program: Command, cli: CliContext): void {
  const tokens = addOutputOptions(
    program
      .command('tokens')
      .summary('list, create and revoke your sign-in tokens')
      .description('List your live browser sessions and tokens (* marks the one in use), create a token for automation, or revoke one.')
      .option('--json', 'one JSON object per line'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  oddjob tokens\n  oddjob tokens -o json\n  oddjob tokens create --description "nightly backfill CI" --expires 7d\n  oddjob tokens revoke 3f9a0c1d2e4b\n',
    )
    .action(
      cli.act(async (flags: OutputFlags, cmd: Command) => {
        outputFormat(flags);
        const items = await cli.client(cmd).tokens();
        if (flags.json) {
          for (const t of items) cli.out(`${JSON.stringify(t)}\n`);
          return 0;
        }
        printListing(cli, flags, tokensListing, items);
        return 0;
      }),
    );

  tokens
    .command('create')
    .summary('create a token for automation (printed once)')
    .requiredOption('--description <text>', 'what the token is for')
    .option('--expires <duration>', "lifetime, like 7d or 12h (at most the server's --token-ttl)")
    .action(
      cli.act(async (flags: { description: string; expires?: string }, cmd: Command) => {
        const t = await cli.client(cmd).createToken(flags.description, flags.expires);
        cli.out(`${t.token}\n`);
        cli.note(`token ${t.id} expires ${t.expiresAt}; it is shown only now — store it as a secret (ODDJOB_TOKEN)`);
        return 0;
      }),
    );

  tokens
    .command('revoke')
    .summary('revoke a session or token by id')
    .argument('<id>', 'the ID from `oddjob tokens`')
    .action(
      cli.act(async (id: string, _flags: unknown, cmd: Command) => {
        if (!/^[0-9a-f]{12}$/.test(id)) throw new CliError(`"${id}" is not a token id (12 hex characters, see \`oddjob tokens\`)`, { exitCode: 2 });
        await cli.client(cmd).revokeToken(id);
        cli.note(`revoked ${id}`);
        return 0;
      }),
    );
}

const day = (s?: string) => (s ? s.replace('T', ' ').slice(0, 16) : '-');

export const tokensListing: Listing<CredentialInfo> = {
  kind: 'TokenList',
  columns: ['ID', 'KIND', 'DESCRIPTION', 'CREATED', 'EXPIRES', 'LAST USED'],
  row: (t) => [`${t.current ? '*' : ' '}${t.id}`, t.kind, truncate(t.description ?? '', 40), day(t.createdAt), day(t.expiresAt), day(t.lastUsedAt)],
  // Wide: the exact instants and the whole description.
  wideColumns: ['CURRENT', 'EXPIRES AT', 'FULL DESCRIPTION'],
  wideRow: (t) => [t.current ? 'yes' : 'no', t.expiresAt, truncate(t.description ?? '', 200)],
  name: (t) => t.id,
  empty: 'no live sessions or tokens',
};
