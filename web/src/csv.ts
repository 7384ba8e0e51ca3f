// CSV for spreadsheets (RFC 4180, CRLF), built in the browser from what the API
// returns. Cells that a spreadsheet would treat as a formula (starting with
// = + - @, tab or carriage return, or their full-width forms, which some locales'
// spreadsheets read as the same operators) are prefixed with ' so that a command
// like `=HYPERLINK(...)` typed into a run is shown, not executed (CSV injection).
// Spreadsheets in locales whose list separator is `;` (German, French, ...) split
// a line on `;`, not `,`, and ignore quotes that do not open a field: there
// `"a;=cmd"` becomes the cells `"a` and `=cmd"`. So every `;`-separated piece of
// a cell is defused the same way, not just the cell's start.
// Pure: no DOM, unit-tested in test/unit/web-csv.test.ts.
import type { AuditEvent, Run } from '../../protocol/api.js';

export function csvCell(value: unknown): string {
  if (value === undefined || value === null) return '';
  let s: string;
  if (typeof value === 'number' || typeof value === 'boolean') s = String(value);
  else {
    s = typeof value === 'string' ? value : JSON.stringify(value);
    s = s.replace(FORMULA_START, "'$1");
  }
  return /[",\r\n]/.test(s) || s !== s.trim() ? `"${s.replace(/"/g, '""')}"` : s;
}

// Where a spreadsheet may start a cell: the cell's start, or after a `;` (list
// separator), a tab (tab-separated import) or a line break (a quoted newline only
// stays inside the cell where the quote opened the field). Then optional spaces
// (some importers trim them) and a character that starts a formula.
const FORMULA_START = /(?<=^|[;\t\n\r])([ \u3000]*[=+\-@\t\r\uff1d\uff0b\uff0d\uff20])/g;

export interface Column<T> {
  header: string;
  get(row: T): unknown;
}

export function toCsv<T>(columns: readonly Column<T>[], rows: Iterable<T>): string {
  const lines = [columns.map((c) => csvCell(c.header)).join(',')];
  for (const r of rows) lines.push(columns.map((c) => csvCell(c.get(r))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

export const AUDIT_COLUMNS: readonly Column<AuditEvent>[] = [
  { header: 'seq', get: (e) => e.seq },
  { header: 'time', get: (e) => e.time },
  { header: 'type', get: (e) => e.type },
  { header: 'actor', get: (e) => e.actor.login },
  { header: 'teams', get: (e) => e.actor.teams.join(' ') },
  { header: 'client', get: (e) => e.client.kind },
  { header: 'address', get: (e) => e.client.address },
  { header: 'run', get: (e) => e.runId },
  { header: 'namespace', get: (e) => e.namespace },
  { header: 'deployment', get: (e) => e.deployment },
  { header: 'container', get: (e) => e.container },
  { header: 'image', get: (e) => e.image },
  // JSON keeps the argv exact (arguments with spaces stay one argument).
  { header: 'command', get: (e) => (e.command ? JSON.stringify(e.command) : undefined) },
  { header: 'reason', get: (e) => e.reason },
  { header: 'status', get: (e) => e.status },
  { header: 'exit_code', get: (e) => e.exitCode },
  { header: 'duration_ms', get: (e) => e.durationMs },
  { header: 'message', get: (e) => e.message },
  { header: 'hash', get: (e) => e.hash },
];

export const RUN_COLUMNS: readonly Column<Run>[] = [
  { header: 'id', get: (r) => r.id },
  { header: 'status', get: (r) => r.status },
  { header: 'exit_code', get: (r) => r.exitCode },
  { header: 'user', get: (r) => r.user },
  { header: 'namespace', get: (r) => r.namespace },
  { header: 'deployment', get: (r) => r.deployment },
  { header: 'container', get: (r) => r.container },
  { header: 'image', get: (r) => r.image },
  { header: 'command', get: (r) => JSON.stringify(r.command) },
  { header: 'reason', get: (r) => r.reason },
  { header: 'interactive', get: (r) => r.interactive },
  { header: 'created', get: (r) => r.createdAt },
  { header: 'started', get: (r) => r.startedAt },
  { header: 'finished', get: (r) => r.finishedAt },
  { header: 'output_bytes', get: (r) => r.outputBytes },
  { header: 'message', get: (r) => r.message },
];
