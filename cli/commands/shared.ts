// Small pieces several subcommand modules share: argument checks that turn
// into usage errors, and JSON-lines output.
import { RunStatus, runId } from '../../protocol/api.js';
import type { Command } from 'commander';
import { ApiError } from '../client.js';
import { namespaceFromEnv } from '../config.js';
import { CliError } from '../errors.js';
import type { CliContext } from '../context.js';

export function checkRunId(id: string): string {
  if (!runId.safeParse(id).success) {
    throw new CliError(`"${id}" is not a run id (12 lowercase letters or digits)`, {
      usage: true,
      hint: 'list runs with: oddjob runs --mine',
    });
  }
  return id;
}

export function checkStatus(s: string | undefined): RunStatus | undefined {
  if (s === undefined) return undefined;
  const parsed = RunStatus.safeParse(s);
  if (!parsed.success) throw new CliError(`--status must be one of ${RunStatus.options.join(', ')}`, { usage: true });
  return parsed.data;
}

export function checkLimit(s: string | undefined, fallback: number): number {
  if (s === undefined) return fallback;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`--limit must be a whole number above 0, not "${s}"`, { usage: true });
  return n;
}

/** One JSON document per line: streams well and works with `jq -c` and `grep`. */
export function printJsonLines(cli: CliContext, items: readonly unknown[]): void {
  if (items.length) cli.out(items.map((i) => JSON.stringify(i)).join('\n') + '\n');
}

/**
 * The namespace a command works in without -n: $ODDJOB_NAMESPACE, else the
 * context's default, else the server's only namespace (or "default" when it
 * serves that one). Several and none of them default: ask, naming them.
 */
export async function defaultNamespace(cli: CliContext, cmd: Command): Promise<string> {
  const configured = namespaceFromEnv(cli.io.env) ?? cli.endpoint(cmd).context?.namespace;
  if (configured) return configured;
  let served: string[];
  try {
    served = await cli.client(cmd).namespaces();
  } catch (err) {
    // A server from before GET /api/namespaces: the old default.
    if (err instanceof ApiError && err.status === 404) return 'default';
    throw err;
  }
  if (served.length === 1) return served[0]!;
  if (served.includes('default')) return 'default';
  throw new CliError(served.length ? `this server serves several namespaces (${served.join(', ')}); say which one` : 'this server serves no namespaces', {
    hint: 'pass -n NAMESPACE, or set a default for this server: oddjob config set-namespace NAMESPACE',
    usage: true,
  });
}
