// Find in a run's output: @xterm/addon-search over the terminal's buffer
// (scrollback included, matches that wrap across rows too), stepped through with
// next/previous, the count shown as "3 of 12". Case-insensitive, plain text.
import { SearchAddon } from '@xterm/addon-search';
import type { Terminal } from '@xterm/xterm';

// Decorations are what make the addon count its results; colours from the page's palette.
const DECORATIONS = { matchBackground: '#9e6a03', matchOverviewRuler: '#9e6a03', activeMatchBackground: '#1f6feb', activeMatchColorOverviewRuler: '#1f6feb' };

export class TerminalSearch {
  private readonly addon = new SearchAddon();
  private result = '';
  private needle = '';

  constructor(term: Terminal) {
    term.loadAddon(this.addon);
    this.addon.onDidChangeResults(({ resultIndex, resultCount }) => {
      this.result = resultCount === 0 ? 'no match' : resultIndex < 0 ? `${resultCount} matches` : `${resultIndex + 1} of ${resultCount}`;
    });
  }

  /** Moves to the next (or previous) match of `needle`; answers "3 of 12", "no match" or "". */
  step(needle: string, direction: 1 | -1): string {
    if (!needle) {
      this.addon.clearDecorations();
      this.needle = '';
      return (this.result = '');
    }
    // Typing more of the word keeps the current match when it still matches.
    const incremental = direction === 1 && needle !== this.needle && needle.startsWith(this.needle) && this.needle !== '';
    this.needle = needle;
    const options = { caseSensitive: false, incremental, decorations: DECORATIONS };
    const found = direction === 1 ? this.addon.findNext(needle, options) : this.addon.findPrevious(needle, options);
    if (!found) this.result = 'no match';
    return this.result;
  }
}
