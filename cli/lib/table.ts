// Plain-text output: aligned tables (kubectl style) and argv shown the way a shell would accept it.
// Every cell is shown through escapeDisplay: an argv, a reason or a User-Agent typed
// by one person must not drive the terminal of the auditor who lists it.
import { escapeDisplay } from '../../protocol/display.js';

/** Columns padded to the widest cell, separated by 3 spaces; the last column is not padded. */
export function formatTable(headers: readonly string[], rawRows: ReadonlyArray<readonly string[]>): string {
  const rows = rawRows.map((r) => r.map((c) => escapeDisplay(c)));
  const widths = headers.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i] ?? ''))));
  const line = (cells: readonly string[]) =>
    headers
      .map((_, i) => {
        const c = cells[i] ?? '';
        return i === headers.length - 1 ? c : c + ' '.repeat(widths[i]! - width(c));
      })
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

// Code points, not UTF-16 units, so "…" and most non-ASCII text align.
const width = (s: string) => [...s].length;

/** Single-quotes an argument when a shell would otherwise split or expand it. */
export function shellQuote(arg: string): string {
  if (arg !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function formatCommand(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/**
 * Shortens to at most `max` code points, marking the cut. Escapes first, so the cut
 * counts what is shown and never splits an escape's text from its meaning.
 */
export function truncate(text: string, max: number): string {
  const flat = escapeDisplay(text);
  const chars = [...flat];
  return chars.length <= max ? flat : chars.slice(0, Math.max(0, max - 1)).join('') + '…';
}
