// `oddjob login`: sign in through GitHub the way `gh auth login` does, with the
// device flow: the server asks GitHub for a one-time code, the person enters it at
// GitHub, and the server answers our polling with an oddjob token. The token is
// saved in the server's context in the config file (0600), beside the contexts of
// other servers, and that context becomes the current one; `oddjob logout` revokes it.
import type { Command } from 'commander';
import { OddjobClient } from '../client.js';
import { contextNameFor, loadConfig, resolveEndpoint, sameOrigin, tokenFromEnv, updateContexts } from '../config.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';

export default function register(program: Command, cli: CliContext): void {
  program
    .command('login')
    .summary('sign in through GitHub and save a token')
    .description(
      'Sign in through GitHub (device flow): oddjob shows a one-time code, you enter it at GitHub, and the server gives this CLI a token.\n' +
        'The server URL and token are saved as a context in the config file (mode 0600) and it becomes the current context; ' +
        'signing in to another server adds another context (see: oddjob config get-contexts). The token expires; `oddjob logout` revokes it.',
    )
    .option('--description <text>', 'what this token is for (shown in `oddjob tokens`)')
    .addHelpText(
      'after',
      '\nExamples:\n  oddjob login --server https://oddjob.example.com\n  oddjob login --server https://oddjob.staging.example.com --context staging\n  oddjob whoami\n',
    )
    .action(
      cli.act(async (flags: { description?: string }, cmd: Command) => {
        const globals = cmd.optsWithGlobals() as { server?: string; context?: string };
        // --context names the context: an existing one (its server), or a new one for --server.
        const known = globals.context && globals.server === undefined ? globals.context : undefined;
        const resolved = resolveEndpoint(globals.server, cli.io.env, () => loadConfig(cli.io.env).config, known);
        const server = resolved.server;
        const contextName = globals.context ?? resolved.context?.name ?? contextNameFor(server);
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
          const path = updateContexts(cli.io.env, (c) => {
            const old = c.contexts[contextName];
            // The default namespace stays with the server it was chosen for.
            const namespace = old && sameOrigin(old.server, server) ? old.namespace : undefined;
            c.contexts[contextName] = { ...(old ?? {}), server, token: poll.token, ...(namespace ? { namespace } : {}) };
            if (!namespace) delete c.contexts[contextName].namespace;
            c.current = contextName;
          });
          const teams = poll.identity.teams.length ? poll.identity.teams.join(', ') : '(none)';
          cli.io.stderr.write(
            `✓ Signed in to ${server} as ${poll.identity.login} (teams: ${teams}).\n` +
              `  Token ${poll.id} saved to ${path} as context ${contextName} (now the current context); it expires ${poll.expiresAt}.\n`,
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
        const fromEnv = Boolean(tokenFromEnv(cli.io.env));
        const context = cli.endpoint(cmd).context?.name;
        if (!fromEnv && context) {
          updateContexts(cli.io.env, (c) => {
            if (c.contexts[context]) delete c.contexts[context].token;
          });
        }
        cli.io.stderr.write(
          revoked ? `✓ Signed out of ${client.server}; the token is revoked.\n` : `Signed out of ${client.server} (the token was no longer valid).\n`,
        );
        if (fromEnv) cli.warn('the token came from ODDJOB_TOKEN; it is revoked, but the variable is still set');
        return 0;
      }),
    );
}
