// `oddjob login`: sign in through GitHub the way `gh auth login` does, with the
// device flow: the server asks GitHub for a one-time code, the person enters it at
// GitHub, and the server answers our polling with an oddjob token. The token is
// saved with the server URL in the config file (0600); `oddjob logout` revokes it.
import type { Command } from 'commander';
import { OddjobClient } from '../client.js';
import { loadConfig, resolveEndpoint, saveConfig, tokenFromEnv } from '../config.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';

export default function register(program: Command, cli: CliContext): void {
  program
    .command('login')
    .summary('sign in through GitHub and save a token')
    .description(
      'Sign in through GitHub (device flow): oddjob shows a one-time code, you enter it at GitHub, and the server gives this CLI a token.\n' +
        'The server URL and token are saved in the config file (mode 0600). The token expires; `oddjob logout` revokes it.',
    )
    .option('--description <text>', 'what this token is for (shown in `oddjob tokens`)')
    .addHelpText('after', '\nExamples:\n  oddjob login --server https://oddjob.example.com\n  oddjob whoami\n')
    .action(
      cli.act(async (flags: { description?: string }, cmd: Command) => {
        const flag = (cmd.optsWithGlobals() as { server?: string }).server;
        const { server } = resolveEndpoint(flag, cli.io.env, () => loadConfig(cli.io.env).config);
        // A fresh sign-in never sends an old token along.
        const client = new OddjobClient({ server, token: undefined, version: cli.version });
        const start = await client.startDeviceLogin();
        cli.io.stderr.write(
          `! First copy your one-time code: ${start.userCode}\n` +
            `  Then open ${start.verificationUri} in a browser and enter it.\n` +
            `  Waiting for GitHub (the code expires in ${Math.round(start.expiresIn / 60)} min; Ctrl-C to give up)…\n`,
        );
        const description = flags.description ?? `oddjob login on ${cli.io.env.HOSTNAME ?? 'this machine'}`;
        let interval = start.interval;
        const deadline = Date.now() + start.expiresIn * 1000;
        for (;;) {
          await new Promise((r) => setTimeout(r, interval * 1000));
          const poll = await client.pollDeviceLogin(start.deviceCode, description);
          if (poll.status === 'pending') {
            if (Date.now() > deadline) throw new CliError('the one-time code expired before it was entered', { hint: 'run `oddjob login` again' });
            continue;
          }
          if (poll.status === 'slow_down') {
            interval = poll.interval;
            continue;
          }
          const path = saveConfig(cli.io.env, { server, token: poll.token });
          const teams = poll.identity.teams.length ? poll.identity.teams.join(', ') : '(none)';
          cli.io.stderr.write(
            `✓ Signed in to ${server} as ${poll.identity.login} (teams: ${teams}).\n` +
              `  Token ${poll.id} saved to ${path}; it expires ${poll.expiresAt}.\n`,
          );
          if (tokenFromEnv(cli.io.env)) cli.warn('ODDJOB_TOKEN is set and takes precedence over the saved token; unset it to use this sign-in');
          return 0;
        }
      }),
    );

  program
    .command('logout')
    .summary('revoke the saved token and forget it')
    .action(
      cli.act(async (_flags: unknown, cmd: Command) => {
        const client = cli.client(cmd);
        let revoked = true;
        try {
          await client.logout();
        } catch (err) {
          // Already expired or revoked: still forget it locally.
          if ((err as { status?: number }).status !== 401) throw err;
          revoked = false;
        }
        const loaded = loadConfig(cli.io.env);
        const fromEnv = Boolean(tokenFromEnv(cli.io.env));
        if (!fromEnv && loaded.config?.token) saveConfig(cli.io.env, { token: undefined });
        cli.io.stderr.write(revoked ? `✓ Signed out of ${client.server}; the token is revoked.\n` : `Signed out of ${client.server} (the token was no longer valid).\n`);
        if (fromEnv) cli.warn('the token came from ODDJOB_TOKEN; it is revoked, but the variable is still set');
        return 0;
      }),
    );
}
