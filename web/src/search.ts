// Find in a run's output: the matches of a text in the terminal's buffer
// (scrollback included), stepped through with next/previous, each one selected
// and scrolled into view. Case-insensitive, plain text (no regular expressions).
// A match that wraps across two screen rows is not found; @xterm/addon-search
// would find it, and should replace this once it is a dependency.
import type { Terminal } from '@xterm/xterm';

export interface Match {
  row: number;
  col: number;
  length: number;
}

/** Every match of `needle` in `lines` (one entry per buffer row), in reading order. */
export function findAll(lines: readonly string[], needle: string): Match[] {
  if (!needle) return [];
  const n = needle.toLocaleLowerCase();
  const out: Match[] = [];
  lines.forEach((line, row) => {
    const hay = line.toLocaleLowerCase();
    for (let col = hay.indexOf(n); col !== -1; col = hay.indexOf(n, col + n.length)) out.push({ row, col, length: needle.length });
  });
  return out;
}

export class TerminalSearch {
  private matches: Match[] = [];
  private current = -1;
  private needle = '';

  constructor(private readonly term: Terminal) {}

  private lines(): string[] {
    const buf = this.term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? '');
    return lines;
  }

  /** Moves to the next (or previous) match of `needle`; answers "3 of 12", "no match" or "". */
  step(needle: string, direction: 1 | -1): string {
    // New text, or output that arrived since: search again, keeping the place.
    const last = this.matches[this.current];
    this.matches = findAll(this.lines(), needle);
    if (needle !== this.needle) this.current = direction === 1 ? -1 : 0;
    else if (last) this.current = this.matches.findIndex((m) => m.row === last.row && m.col === last.col);
    this.needle = needle;
    if (!needle) {
      this.term.clearSelection();
      return '';
    }
    if (!this.matches.length) {
      this.term.clearSelection();
      return 'no match';
    }
    this.current = (this.current + direction + this.matches.length) % this.matches.length;
    const m = this.matches[this.current]!;
    this.term.select(m.col, m.row, m.length);
    this.term.scrollToLine(Math.max(0, m.row - Math.floor(this.term.rows / 2)));
    return `${this.current + 1} of ${this.matches.length}`;
  }
}
