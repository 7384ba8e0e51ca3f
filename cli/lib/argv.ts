// Reading the command line before and around commander: which subcommand is
// being run, where the user's own argv starts (`--`), and the deploy/NAME target.
import { CliError } from '../errors.js';

/** Global options that take a value, so the value is not mistaken for the subcommand. */
const GLOBAL_OPTIONS_WITH_VALUE = new Set(['--server', '--context']);

export interface SplitArgv {
  /** The first operand: the subcommand name, if any. */
  subcommand: string | undefined;
  /** What commander parses. */
  oddjobArgs: string[];
  /**
   * For `run`: everything after the first `--`, kept byte for byte (it is the
   * remote argv, never a shell line). undefined when there was no `--`.
   */
  commandArgv: string[] | undefined;
}

/**
 * Only `run` owns a `--`: commander would otherwise mix the remote command's
 * flags (`node -e ...`) with ours. Other subcommands get their args unchanged.
 */
export function splitArgv(args: readonly string[]): SplitArgv {
  let subcommand: string | undefined;
  let subIndex = -1;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (GLOBAL_OPTIONS_WITH_VALUE.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    subcommand = a;
    subIndex = i;
    break;
  }
  const dd = args.indexOf('--');
  if (subcommand === 'run' && dd > subIndex) {
    return { subcommand, oddjobArgs: args.slice(0, dd), commandArgv: args.slice(dd + 1) };
  }
  return { subcommand, oddjobArgs: [...args], commandArgv: undefined };
}

/**
 * Every way kubectl spells the Deployment resource: short name, singular, plural,
 * and the group-qualified forms `kubectl get deploy -o name` prints
 * (`deployment.apps/api`), so its output can be pasted as is.
 */
export const TARGET_KINDS: readonly string[] = [
  'deploy',
  'deployment',
  'deployments',
  'deployment.apps',
  'deployments.apps',
  'deployment.v1.apps',
  'deployments.v1.apps',
];
const ACCEPTED = `accepted forms: ${TARGET_KINDS.map((k) => `${k}/NAME`).join(', ')}`;

/** How a Task is named: kubectl's forms for tasks.oddjob.io, and its short name. */
export const TASK_KINDS: readonly string[] = [
  'task',
  'tasks',
  'ojtask',
  'task.oddjob.io',
  'tasks.oddjob.io',
  'task.v1alpha1.oddjob.io',
  'tasks.v1alpha1.oddjob.io',
];

/** `task/reindex` → { kind: 'task', name }, `deploy/api` → { kind: 'deploy', name }. */
export function parseRunTarget(target: string | undefined): { kind: 'deploy' | 'task'; name: string } {
  const slash = target?.indexOf('/') ?? -1;
  const kind = target && slash > 0 ? target.slice(0, slash).toLowerCase() : '';
  if (TASK_KINDS.includes(kind)) {
    const name = target!.slice(slash + 1);
    if (!name || name.includes('/')) throw new CliError(`"${target}" is not task/NAME`, { hint: 'oddjob run task/NAME --param KEY=VALUE', usage: true });
    return { kind: 'task', name };
  }
  return { kind: 'deploy', name: parseTarget(target) };
}

/** `--param k=v` (repeatable) → { k: 'v' }; the server checks each value against the Task's types. */
export function parseParams(items: readonly string[]): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new CliError(`--param ${item}: expected NAME=VALUE`, { hint: 'e.g. --param merchant=m_12345678', usage: true });
    const name = item.slice(0, eq);
    if (Object.hasOwn(out, name)) throw new CliError(`--param ${name} is given twice`, { usage: true });
    out[name] = item.slice(eq + 1);
  }
  return { ...out };
}

/** "deploy/api", "deployment.apps/api" → "api". The kind prefix is required so a `task/x` cannot be confused with it. */
export function parseTarget(target: string | undefined): string {
  const usage = 'oddjob run deploy/NAME -- CMD [ARG...]';
  if (!target) throw new CliError('missing the target deployment', { hint: usage, usage: true });
  const slash = target.indexOf('/');
  if (slash < 0) {
    throw new CliError(`the target must name a Deployment as deploy/NAME, not "${target}"`, {
      hint: `oddjob run deploy/${target} -- CMD [ARG...] (${ACCEPTED})`,
      usage: true,
    });
  }
  const kind = target.slice(0, slash).toLowerCase();
  const name = target.slice(slash + 1);
  if (!TARGET_KINDS.includes(kind)) {
    throw new CliError(`oddjob runs commands in Deployments or Tasks; "${target}" is a ${kind}`, {
      hint: `${usage}, or oddjob run task/NAME --param KEY=VALUE (${ACCEPTED})`,
      usage: true,
    });
  }
  if (!name || name.includes('/')) throw new CliError(`"${target}" is not deploy/NAME`, { hint: `${usage} (${ACCEPTED})`, usage: true });
  return name;
}

/** The `--` part of `oddjob run`: present and non-empty, or an error that says how to fix it. */
export function requireCommand(commandArgv: string[] | undefined, strayOperands: readonly string[], target: string | undefined): string[] {
  const shown = target ?? 'deploy/NAME';
  if (strayOperands.length) {
    throw new CliError(`unexpected ${strayOperands.length === 1 ? 'argument' : 'arguments'} before \`--\`: ${strayOperands.join(' ')}`, {
      hint: `put the command after \`--\`: oddjob run ${shown} -- ${strayOperands.join(' ')}`,
      usage: true,
    });
  }
  if (commandArgv === undefined) {
    throw new CliError('missing `--` and the command to run', { hint: `oddjob run ${shown} -- CMD [ARG...]`, usage: true });
  }
  if (commandArgv.length === 0) {
    throw new CliError('missing the command after `--`', { hint: `oddjob run ${shown} -- CMD [ARG...]`, usage: true });
  }
  return commandArgv;
}
