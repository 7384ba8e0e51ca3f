// How every listing prints, the kubectl way: a table by default, `-o wide` for
// more columns, `-o json|yaml` for programs (one stable document, described in
// docs/cli.md), `-o name` for piping into the next command, `--no-headers` for
// tables read by awk. A listing describes its columns once; this file does the rest.
import { Option, type Command } from 'commander';
import { stringify as toYaml } from 'yaml';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { formatTable } from './table.js';

export const OUTPUT_FORMATS = ['json', 'yaml', 'wide', 'name'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number] | 'table';

export interface OutputFlags {
  output?: string;
  /** commander's `--no-headers`: false when given. */
  headers?: boolean;
  json?: boolean;
}

export interface Listing<T> {
  /** The `kind` of the JSON/YAML document, e.g. RunList. */
  kind: string;
  columns: readonly string[];
  row(item: T): string[];
  /** Appended to the table's columns with -o wide. */
  wideColumns: readonly string[];
  wideRow(item: T): string[];
  /** What -o name prints for one item. */
  name(item: T): string;
  /** Said on stderr when a table would be empty. */
  empty: string;
}

export function addOutputOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('-o, --output <format>', 'json, yaml, wide or name (default: a table)').choices(OUTPUT_FORMATS))
    .option('--no-headers', 'print table rows without the header line');
}

/** The format asked for; `--json` (the older JSON Lines/NDJSON flag) cannot be combined with -o. */
export function outputFormat(flags: OutputFlags): OutputFormat {
  if (flags.output !== undefined && flags.json) {
    throw new CliError('--json and -o cannot be combined', { hint: 'use -o json for one JSON document, --json for one object per line', usage: true });
  }
  return (flags.output as OutputFormat | undefined) ?? 'table';
}

/** The document -o json and -o yaml print: stable, versioned by `kind` and documented in docs/cli.md. */
export function listDocument<T>(kind: string, items: readonly T[]): { kind: string; items: readonly T[] } {
  return { kind, items };
}

export function renderListing<T>(format: OutputFormat, flags: OutputFlags, listing: Listing<T>, items: readonly T[]): { stdout: string; note?: string } {
  switch (format) {
    case 'json':
      return { stdout: `${JSON.stringify(listDocument(listing.kind, items), null, 2)}\n` };
    case 'yaml':
      return { stdout: toYaml(listDocument(listing.kind, items)) };
    case 'name':
      return { stdout: items.map((i) => `${listing.name(i)}\n`).join('') };
    case 'table':
    case 'wide': {
      if (items.length === 0) return { stdout: '', note: listing.empty };
      const wide = format === 'wide';
      const headers = wide ? [...listing.columns, ...listing.wideColumns] : listing.columns;
      const rows = items.map((i) => (wide ? [...listing.row(i), ...listing.wideRow(i)] : listing.row(i)));
      const table = formatTable(headers, rows);
      // formatTable always starts with the header line; --no-headers drops it.
      return { stdout: flags.headers === false ? table.slice(table.indexOf('\n') + 1) : table };
    }
  }
}

export function printListing<T>(cli: CliContext, flags: OutputFlags, listing: Listing<T>, items: readonly T[]): void {
  const r = renderListing(outputFormat(flags), flags, listing, items);
  if (r.stdout) cli.out(r.stdout);
  if (r.note) cli.note(r.note);
}
