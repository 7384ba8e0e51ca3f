// The CLI's error vocabulary and the one place that turns any error into the
// lines a person sees: `oddjob: <message>` and, when there is one, `  hint: <hint>`.

/**
 * A failure the CLI explains itself. `usage` marks a mistake in the command
 * line (exit 2, or 125 for `run`); `exitCode` overrides both defaults.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly options: { exitCode?: number; hint?: string; usage?: boolean } = {},
  ) {
    super(message);
    this.name = 'CliError';
  }
  get exitCode(): number | undefined {
    return this.options.exitCode;
  }
  get hint(): string | undefined {
    return this.options.hint;
  }
  get usage(): boolean {
    return this.options.usage === true;
  }
}

/** Usage mistakes (unknown flag, bad argument): exit 2, like most Unix tools. */
export const EXIT_USAGE = 2;

export function formatError(err: unknown, debug = false): string {
  const e = err as { message?: unknown; hint?: unknown; stack?: unknown };
  const message = typeof e?.message === 'string' && e.message ? e.message : String(err);
  let out = `oddjob: ${message}\n`;
  if (typeof e?.hint === 'string' && e.hint) out += `  hint: ${e.hint}\n`;
  if (debug && typeof e?.stack === 'string') out += `${e.stack}\n`;
  return out;
}
