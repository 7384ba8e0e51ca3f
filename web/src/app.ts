// What every page gets: who is signed in, where to render, and navigation.
import type { WhoAmI } from './api.js';
import { ApiError } from './api.js';
import { h } from './dom.js';

export interface PageCtx {
  me: WhoAmI;
  main: HTMLElement;
  params: Record<string, string>;
  query: URLSearchParams;
  navigate(path: string, opts?: { replace?: boolean }): void;
  /** Sets document.title and returns a focusable page heading. */
  heading(text: string, ...extra: (Node | string)[]): HTMLHeadingElement;
}

/** A page renders into ctx.main and may return a cleanup (close streams, timers). */
export type Page = (ctx: PageCtx) => Promise<(() => void) | void>;

/** An error box a screen reader announces; message and hint in the server's words. */
export function errorBox(err: unknown, title = 'Something went wrong'): HTMLElement {
  const e = err instanceof ApiError ? err : undefined;
  const message = e ? e.message : err instanceof Error ? err.message : String(err);
  return h(
    'div',
    { class: 'alert alert-error', role: 'alert' },
    h('strong', null, title),
    h('p', null, message),
    e?.hint ? h('p', { class: 'hint' }, `Hint: ${e.hint}`) : null,
  );
}

export function emptyState(title: string, ...body: (Node | string)[]): HTMLElement {
  return h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, title), ...body.map((b) => (typeof b === 'string' ? h('p', null, b) : b)));
}

export function link(href: string, text: string | Node, attrs: Record<string, string> = {}): HTMLAnchorElement {
  return h('a', { href, ...attrs }, text);
}
