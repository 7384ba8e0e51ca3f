// A tiny DOM builder: elements from tag + attributes + children. Text is always
// set as text (never parsed as HTML), and nothing here sets a `style` attribute,
// so the strict CSP holds and output from runs can never become markup. Text and
// tooltips also pass through escapeDisplay: most of what these pages show was
// typed by someone (argv, reasons, messages), and a bidi override or zero-width
// character in it would make a row read differently from what it holds.
import { escapeDisplay } from '../../protocol/display.js';
export type Child = Node | string | number | null | undefined | false | Child[];
type AttrValue = string | number | boolean | null | undefined | ((ev: never) => unknown);
export type Attrs = Record<string, AttrValue>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'style') throw new Error('inline styles are not allowed (CSP)');
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, '').toLowerCase(), v as EventListener);
    else if (v === true) el.setAttribute(k, '');
    else if (k === 'value' && 'value' in el) (el as unknown as { value: string }).value = String(v);
    else if (k === 'title' || k === 'aria-label') el.setAttribute(k, shown(String(v)));
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: Child[]) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, c);
    else parent.appendChild(typeof c === 'object' ? c : document.createTextNode(shown(String(c))));
  }
}

/**
 * Text as it may be shown: controls, bidi and zero-width characters visibly
 * escaped (`\u202e`). Newlines stay: multi-line blocks (a Job manifest, an
 * `sh -c` script) keep their lines, and a newline cannot reorder or hide text.
 * Form values are never passed through this: they must stay exact.
 */
export function shown(text: string): string {
  return escapeDisplay(text, { keepNewlines: true });
}

export function clear(el: Element, ...children: Child[]) {
  el.replaceChildren();
  append(el, children);
}

export function formatTime(iso: string | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return '—';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const hr = Math.floor(m / 60);
  if (hr < 24) return `${hr}h ${m % 60}m`;
  return `${Math.floor(hr / 24)}d ${hr % 24}h`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** A status badge: color plus the word, never color alone. */
export function statusBadge(status: string): HTMLElement {
  return h('span', { class: `badge status-${status}` }, status);
}

/** Triggers a download of generated text (blob: URL; no server round trip). */
export function download(filename: string, type: string, text: string) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: filename });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * A DOM listener that awaits: the DOM ignores a listener's promise, so a
 * rejection would vanish; here it reaches the console at least.
 */
export function onAsync<E extends Event>(handler: (ev: E) => Promise<void>): (ev: E) => void {
  return (ev) => void handler(ev).catch((err: unknown) => console.error(err));
}
