// Small pieces several subcommand modules share: argument checks that turn
// into usage errors, and JSON-lines output.
import { RunStatus, runId } from '../../protocol/api.js';
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
