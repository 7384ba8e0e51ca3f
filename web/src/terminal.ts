// xterm.js under a strict CSP (style-src 'self', no 'unsafe-inline').
//
// xterm 6 styles itself in two ways a strict CSP blocks: it creates <style>
// elements and fills their text (theme colors, cell dimensions, scrollbar), and
// it calls setAttribute('style', ...) for 24-bit colors in the DOM renderer.
// Both are "inline styles" to CSP. Instead of widening the policy (or adding
// nonces, which a static build cannot know), we route both through the CSSOM,
// which CSP does not govern: a <style> xterm asks for becomes an inert
// <template> whose text feeds a constructable stylesheet adopted by the
// document, and a style attribute becomes `element.style.cssText`. The result
// is the same styling with zero CSP violations (checked by test/integration/web.test.ts).
import '@xterm/xterm/css/xterm.css';
import { Terminal, type ITheme } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';

let shimmed = false;
function installCspStyleShim() {
  if (shimmed) return;
  shimmed = true;
  const createElement = Document.prototype.createElement;
  Document.prototype.createElement = function (this: Document, tag: string, options?: ElementCreationOptions) {
    if (String(tag).toLowerCase() !== 'style') return createElement.call(this, tag, options);
    const holder = createElement.call(this, 'template', options);
    holder.setAttribute('data-xterm-style', '');
    const sheet = new CSSStyleSheet();
    this.adoptedStyleSheets = [...this.adoptedStyleSheets, sheet];
    let text = '';
    Object.defineProperty(holder, 'textContent', {
      get: () => text,
      set: (v: string | null) => {
        text = v ?? '';
        sheet.replaceSync(text);
      },
    });
    const remove = holder.remove.bind(holder);
    holder.remove = () => {
      this.adoptedStyleSheets = this.adoptedStyleSheets.filter((s) => s !== sheet);
      remove();
    };
    return holder;
  } as typeof Document.prototype.createElement;
  const setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (this: Element, name: string, value: string) {
    if (name.toLowerCase() === 'style' && this instanceof HTMLElement) {
      this.style.cssText = String(value);
      return;
    }
    setAttribute.call(this, name, value);
  };
}

const THEME: ITheme = {
  background: '#0d1117',
  foreground: '#e6edf3',
  cursor: '#e6edf3',
  selectionBackground: '#264f78',
  black: '#484f58',
  red: '#ff7b72',
  green: '#3fb950',
  yellow: '#d29922',
  blue: '#58a6ff',
  magenta: '#bc8cff',
  cyan: '#39c5cf',
  white: '#b1bac4',
  brightBlack: '#6e7681',
  brightRed: '#ffa198',
  brightGreen: '#56d364',
  brightYellow: '#e3b341',
  brightBlue: '#79c0ff',
  brightMagenta: '#d2a8ff',
  brightCyan: '#56d4dd',
  brightWhite: '#f0f6fc',
};

export interface RunTerminal {
  term: Terminal;
  fit(): void;
  dispose(): void;
}

/**
 * A terminal in `host`. Non-TTY output uses bare "\n" line ends, so convertEol
 * is on for it; a TTY run's pty already sends "\r\n".
 */
export function createTerminal(host: HTMLElement, opts: { tty: boolean; input: boolean; label: string }): RunTerminal {
  installCspStyleShim();
  const term = new Terminal({
    // The search addon's match count comes with its decorations, a "proposed" API.
    allowProposedApi: true,
    convertEol: !opts.tty,
    cursorBlink: opts.input,
    disableStdin: !opts.input,
    cursorStyle: opts.input ? 'block' : 'underline',
    cursorInactiveStyle: opts.input ? 'outline' : 'none',
    fontFamily: 'ui-monospace, SFMono-Regular, "DejaVu Sans Mono", Menlo, Consolas, monospace',
    fontSize: 13,
    lineHeight: 1.2,
    scrollback: 20_000,
    theme: THEME,
    screenReaderMode: false,
  });
  const fitAddon = new FitAddon();
  term.loadAddon(fitAddon);
  term.open(host);
  const textarea = host.querySelector('textarea');
  textarea?.setAttribute('aria-label', opts.label);
  const fit = () => {
    if (!host.isConnected || host.clientWidth === 0) return;
    try {
      fitAddon.fit();
    } catch {
      // not laid out yet
    }
  };
  const ro = new ResizeObserver(() => fit());
  ro.observe(host);
  fit();
  return {
    term,
    fit,
    dispose() {
      ro.disconnect();
      term.dispose();
    },
  };
}
