// PURE: a validated Task + the values a person gave → the argv that runs. Each value
// becomes (the end of) exactly one argv element: nothing is split, joined or passed
// through a shell, so `x; rm -rf /` is one literal argument. Every check is the
// server's: a value that fails its type, pattern, range or choices is refused with
// a message naming the parameter.
import { LIMITS } from '../../protocol/api.js';
import { literalForKubelet } from '../jobs/clone.js';
import type { TaskParam } from '../../protocol/tasks.js';
import type { ValidTask } from './spec.js';

export class ParamError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'ParamError';
  }
}

export type ParamValue = string | number | boolean;

export interface ResolvedTask {
  /** What the program receives, element by element (for people: audit, preview, runs). */
  argv: string[];
  /**
   * The container `command` of the Job. Kubernetes expands `$(VAR)` in a container's
   * command from its env (and turns `$$` into `$`), so every `$` of a value is doubled:
   * a value of `$(DB_PASSWORD)` reaches the program as those 14 characters, never as
   * the secret. The owner's own text is left as written.
   */
  jobCommand: string[];
  /** The value each parameter ended up with (given, or its default); absent: not given, no default. */
  values: Record<string, ParamValue>;
}

const show = (v: unknown) => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}…"` : s;
};

type Checked = { value: ParamValue } | { problem: string };
type Param<T extends TaskParam['type']> = Extract<TaskParam, { type: T }>;
const refusal = (p: TaskParam, raw: ParamValue, why: string): Checked => ({ problem: `parameter ${p.name}: ${why}, got ${show(raw)}` });

function checkString(p: Param<'string'>, raw: ParamValue): Checked {
  if (typeof raw !== 'string') return refusal(p, raw, 'must be a string');
  if (raw.includes('\u0000')) return { problem: `parameter ${p.name}: must not contain NUL bytes` };
  if (Buffer.byteLength(raw) > LIMITS.argvItemBytes) return { problem: `parameter ${p.name}: must be at most ${LIMITS.argvItemBytes} bytes` };
  if (p.pattern !== undefined && !new RegExp(p.pattern, 'u').test(raw)) return refusal(p, raw, `must match ${p.pattern}`);
  return { value: raw };
}

function checkInteger(p: Param<'integer'>, raw: ParamValue): Checked {
  let n = NaN;
  if (typeof raw === 'number') n = raw;
  else if (typeof raw === 'string' && /^-?[0-9]{1,16}$/.test(raw.trim())) n = Number(raw.trim());
  if (!Number.isSafeInteger(n)) return refusal(p, raw, 'must be a whole number');
  const below = p.min !== undefined && n < p.min;
  const above = p.max !== undefined && n > p.max;
  if (!below && !above) return { value: n };
  const range = p.min !== undefined && p.max !== undefined ? `between ${p.min} and ${p.max}` : below ? `at least ${p.min}` : `at most ${p.max}`;
  return refusal(p, raw, `must be ${range}`);
}

function checkValue(p: TaskParam, raw: ParamValue): Checked {
  switch (p.type) {
    case 'string':
      return checkString(p, raw);
    case 'integer':
      return checkInteger(p, raw);
    case 'boolean':
      if (typeof raw === 'boolean') return { value: raw };
      if (raw === 'true' || raw === 'false') return { value: raw === 'true' };
      return refusal(p, raw, 'must be true or false');
    case 'choice':
      if (typeof raw !== 'string' || !p.choices.includes(raw)) return refusal(p, raw, `must be one of ${p.choices.join(', ')}`);
      return { value: raw };
  }
}

/** Checks every given value and builds the argv; throws ParamError listing every problem. */
export function resolveTaskCommand(task: ValidTask, given: Readonly<Record<string, ParamValue>>): ResolvedTask {
  const { spec, refs } = task;
  const problems: string[] = [];
  const declared = new Map(spec.params.map((p) => [p.name, p]));
  for (const name of Object.keys(given)) {
    if (!declared.has(name)) {
      const takes = spec.params.map((p) => p.name).join(', ') || 'none';
      problems.push(`parameter ${name}: this Task has no such parameter (it takes: ${takes})`);
    }
  }
  const values: Record<string, ParamValue> = {};
  for (const p of spec.params) {
    const raw = Object.hasOwn(given, p.name) ? given[p.name] : undefined;
    if (raw === undefined) {
      if (p.required) problems.push(`parameter ${p.name} is required: pass --param ${p.name}=VALUE`);
      else if (p.default !== undefined) values[p.name] = p.default;
      continue;
    }
    const r = checkValue(p, raw);
    if ('problem' in r) problems.push(r.problem);
    else values[p.name] = r.value;
  }
  if (problems.length) throw new ParamError(problems);

  const argv: string[] = [];
  const jobCommand: string[] = [];
  const byIndex = new Map(refs.map((r) => [r.index, r]));
  spec.command.forEach((element, i) => {
    const ref = byIndex.get(i);
    if (!ref) {
      argv.push(element);
      jobCommand.push(element);
      return;
    }
    const v = values[ref.name];
    // An optional parameter left out takes its whole element with it (e.g. an optional `--since=$(params.since)`).
    if (v === undefined) return;
    const text = String(v);
    argv.push(ref.prefix + text);
    jobCommand.push(ref.prefix + literalForKubelet(text));
  });
  if (argv.length === 0) throw new ParamError(['the command is empty once the parameters left out are removed']);
  const total = jobCommand.reduce((n, s) => n + Buffer.byteLength(s), 0);
  if (total > LIMITS.argvTotalBytes) throw new ParamError([`the whole command would be ${total} bytes, above the limit of ${LIMITS.argvTotalBytes}`]);
  for (const [i, s] of jobCommand.entries()) {
    if (Buffer.byteLength(s) > LIMITS.argvItemBytes) throw new ParamError([`argument ${i} would be over ${LIMITS.argvItemBytes} bytes`]);
  }
  return { argv, jobCommand, values };
}
