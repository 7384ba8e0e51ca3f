// `oddjob config`: the servers this CLI knows (contexts, kubectl style), which
// one is current, and each one's default namespace. `oddjob login --server URL`
// adds a context; these commands switch between them and tune them.
import type { Command } from 'commander';
import { k8sLabelName } from '../../protocol/api.js';
import { contextEnvName, contextsOf, loadConfig, updateContexts, type ContextEntry } from '../config.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { addOutputOptions, outputFormat, printListing, type Listing, type OutputFlags } from '../lib/output.js';

/** What get-contexts shows: never the token itself, only whether there is one. */
export interface ContextInfo {
  name: string;
  current: boolean;
  server: string;
  namespace?: string;
  signedIn: boolean;
}

export const contextsListing: Listing<ContextInfo> = {
  kind: 'ContextList',
  columns: ['CURRENT', 'NAME', 'SERVER', 'NAMESPACE'],
  row: (c) => [c.current ? '*' : '', c.name, c.server, c.namespace ?? '-'],
  wideColumns: ['SIGNED IN'],
  wideRow: (c) => [c.signedIn ? 'yes' : 'no'],
  name: (c) => c.name,
  empty: 'no contexts; add one with: oddjob login --server URL',
};

export default function register(program: Command, cli: CliContext): void {
  const config = program
    .command('config')
    .summary('switch between servers (contexts) and set default namespaces')
    .description(
      'Each server you sign in to is a context: its URL, your token and a default namespace. ' +
        'Commands use the current context unless --context NAME (or $ODDJOB_CONTEXT) picks another.',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  oddjob config get-contexts\n  oddjob config use-context oddjob.staging.example.com\n  oddjob config set-namespace payments\n  oddjob --context staging runs --mine\n',
    );

  const read = () => {
    const loaded = loadConfig(cli.io.env);
    for (const w of loaded.warnings) cli.warn(w);
    return contextsOf(loaded.config);
  };
  const requireContext = (contexts: Record<string, ContextEntry>, name: string) => {
    if (contexts[name]) return;
    const known = Object.keys(contexts);
    throw new CliError(`no context named "${name}"`, {
      hint: known.length ? `known contexts: ${known.join(', ')}` : 'add one with: oddjob login --server URL',
      usage: true,
    });
  };

  addOutputOptions(config.command('get-contexts').summary('list the contexts; * marks the current one')).action(
    cli.act(async (flags: OutputFlags) => {
      outputFormat(flags);
      const { current, contexts } = read();
      const items: ContextInfo[] = Object.entries(contexts)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([name, c]) => ({
          name,
          current: name === current,
          server: c.server,
          ...(c.namespace ? { namespace: c.namespace } : {}),
          signedIn: Boolean(c.token),
        }));
      printListing(cli, flags, contextsListing, items);
      return 0;
    }),
  );

  config
    .command('current-context')
    .summary('print the name of the current context')
    .action(
      cli.act(async () => {
        const { current, contexts } = read();
        if (!current || !contexts[current]) throw new CliError('no current context', { hint: 'sign in with: oddjob login --server URL' });
        cli.out(`${current}\n`);
        if (contextEnvName(cli.io.env)) cli.warn(`ODDJOB_CONTEXT=${contextEnvName(cli.io.env)} overrides it in this shell`);
        return 0;
      }),
    );

  config
    .command('use-context')
    .summary('make a context the current one')
    .argument('<name>', 'a context from oddjob config get-contexts')
    .action(
      cli.act(async (name: string) => {
        requireContext(read().contexts, name);
        updateContexts(cli.io.env, (c) => {
          c.current = name;
        });
        cli.note(`switched to context ${name}`);
        return 0;
      }),
    );

  config
    .command('set-namespace')
    .summary("set the default namespace of the current context (or of --context's)")
    .argument('<namespace>', 'the namespace `run` uses without -n')
    .action(
      cli.act(async (namespace: string, _flags: object, cmd: Command) => {
        if (!k8sLabelName.safeParse(namespace).success) throw new CliError(`"${namespace}" is not a namespace name (a Kubernetes DNS label)`, { usage: true });
        const { current, contexts } = read();
        const name = (cmd.optsWithGlobals() as { context?: string }).context ?? contextEnvName(cli.io.env) ?? current;
        if (!name) throw new CliError('no current context to set a namespace for', { hint: 'sign in with: oddjob login --server URL' });
        requireContext(contexts, name);
        updateContexts(cli.io.env, (c) => {
          c.contexts[name]!.namespace = namespace;
        });
        cli.note(`context ${name} now uses namespace ${namespace} by default`);
        return 0;
      }),
    );
}
