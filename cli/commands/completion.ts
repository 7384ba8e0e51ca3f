// `oddjob completion bash|zsh|fish`: prints the shell script that makes TAB ask
// `oddjob __complete` (cli/complete.ts), and that hidden command itself.
import { Writable } from 'node:stream';
import type { Command } from 'commander';
import { OddjobClient } from '../client.js';
import { contextsOf, loadConfig, namespaceFromEnv } from '../config.js';
import { COMPLETION_SCRIPTS, complete, type CompletionSources } from '../complete.js';
import { CliContext } from '../context.js';
import { CliError } from '../errors.js';

/** A completion waits this long for the server; a slow answer is no answer. */
const COMPLETION_TIMEOUT_MS = 2_000;

export default function register(program: Command, cli: CliContext): void {
  program
    .command('completion')
    .summary('print the shell completion script (bash, zsh or fish)')
    .description('Prints a script that completes subcommands, flags, namespaces, deployments (deploy/NAME), containers, contexts and run ids.')
    .argument('<shell>', 'bash, zsh or fish')
    .addHelpText(
      'after',
      '\nLoad it:\n  bash:  source <(oddjob completion bash)        # in ~/.bashrc\n  zsh:   source <(oddjob completion zsh)         # in ~/.zshrc, after compinit\n  fish:  oddjob completion fish | source         # in ~/.config/fish/config.fish\n',
    )
    .action(
      cli.act(async (shell: string) => {
        const script = COMPLETION_SCRIPTS[shell];
        if (!script) throw new CliError(`no completion for "${shell}"`, { hint: 'oddjob completion bash|zsh|fish', usage: true });
        cli.out(script);
        return 0;
      }),
    );
}

/** `oddjob __complete WORD... CURRENT`: one candidate per line on stdout; never an error, never stderr. */
export async function runCompletion(program: Command, cli: CliContext, words: readonly string[]): Promise<number> {
  const quiet = new CliContext({ ...cli.io, stderr: new Writable({ write: (_c, _e, cb) => cb() }) as NodeJS.WriteStream }, cli.version);
  let client: OddjobClient | undefined;
  let defaultNs: string | undefined;
  let contexts: string[] = [];
  try {
    const flags = globalFlags(words);
    const endpoint = resolveQuietly(quiet, flags);
    if (endpoint) client = new OddjobClient({ server: endpoint.server, token: endpoint.token, version: cli.version, timeoutMs: COMPLETION_TIMEOUT_MS });
    defaultNs = namespaceFromEnv(cli.io.env) ?? endpoint?.context?.namespace;
    contexts = Object.keys(contextsOf(loadConfig(cli.io.env).config).contexts).sort();
  } catch {
    // No server or no config: static candidates only.
  }
  const quietly = async <T>(f: () => Promise<T[]>): Promise<T[]> => {
    try {
      return client ? await f() : [];
    } catch {
      return [];
    }
  };
  const sources: CompletionSources = {
    namespaces: () => quietly(() => client!.namespaces()),
    deployments: (ns) => quietly(() => client!.deployments(ns)),
    runIds: () => quietly(async () => (await client!.listRuns({ limit: 100 })).items.map((r) => r.id)),
    paths: (ns, deployment, container, word) =>
      quietly(async () => {
        // Without -n or a default, the server's only namespace (as commands pick it).
        const namespace = ns ?? (await client!.namespaces()).find((_n, _i, all) => all.length === 1);
        return namespace ? (await client!.completePaths(namespace, deployment, word, container)).paths : [];
      }),
    contexts: () => contexts,
    defaultNamespace: () => defaultNs,
  };
  let out: string[];
  try {
    out = await complete(program, words, sources);
  } catch {
    out = [];
  }
  if (out.length) cli.out(`${out.join('\n')}\n`);
  return 0;
}

/** --server and --context as typed on the line being completed. */
function globalFlags(words: readonly string[]): { server?: string; context?: string } {
  const flags: { server?: string; context?: string } = {};
  for (let i = 0; i < words.length - 1; i++) {
    const w = words[i]!;
    if (w === '--') break;
    if (w === '--server' || w === '--context') flags[w === '--server' ? 'server' : 'context'] = words[i + 1];
    else if (w.startsWith('--server=')) flags.server = w.slice('--server='.length);
    else if (w.startsWith('--context=')) flags.context = w.slice('--context='.length);
  }
  return flags;
}

function resolveQuietly(cli: CliContext, flags: { server?: string; context?: string }) {
  try {
    // endpoint() reads the flags through commander; give it a stand-in with the typed ones.
    return cli.endpoint({ optsWithGlobals: () => flags } as unknown as Command);
  } catch {
    return undefined;
  }
}
