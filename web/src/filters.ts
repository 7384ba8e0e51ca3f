// Filter forms whose state lives in the URL (shareable, back-button friendly),
// and cursor paging links.
import { h } from './dom.js';

export type FilterField =
  | { kind: 'text'; name: string; label: string; placeholder?: string; pattern?: string }
  | { kind: 'select'; name: string; label: string; options: readonly string[]; any: string }
  | { kind: 'checkbox'; name: string; label: string }
  | { kind: 'datetime'; name: string; label: string };

export function filterForm(id: string, fields: FilterField[], query: URLSearchParams, onApply: (q: URLSearchParams) => void): HTMLFormElement {
  const controls = fields.map((f) => {
    const cid = `${id}-${f.name}`;
    const value = query.get(f.name) ?? '';
    if (f.kind === 'checkbox') {
      return h(
        'div',
        { class: 'check check-inline' },
        h('input', { id: cid, name: f.name, type: 'checkbox', checked: value === 'true' }),
        h('label', { for: cid }, f.label),
      );
    }
    let input: HTMLElement;
    if (f.kind === 'select') {
      input = h(
        'select',
        { id: cid, name: f.name },
        h('option', { value: '' }, f.any),
        f.options.map((o) => h('option', { value: o, selected: o === value }, o)),
      );
    } else if (f.kind === 'datetime') {
      input = h('input', { id: cid, name: f.name, type: 'datetime-local', value: isoToLocalInput(value), step: '1' });
    } else {
      input = h('input', {
        id: cid,
        name: f.name,
        type: 'text',
        value,
        placeholder: f.placeholder ?? '',
        autocomplete: 'off',
        spellcheck: 'false',
        autocapitalize: 'off',
      });
    }
    return h('div', { class: 'field' }, h('label', { for: cid }, f.label), input);
  });
  const form = h(
    'form',
    { id, class: 'filters', role: 'search', 'aria-label': 'Filters' },
    controls,
    h(
      'div',
      { class: 'filter-actions' },
      h('button', { type: 'submit', class: 'btn btn-primary' }, 'Apply'),
      h('button', { type: 'reset', class: 'btn btn-quiet' }, 'Clear'),
    ),
  );
  const read = () => {
    const q = new URLSearchParams();
    for (const f of fields) {
      const el = form.elements.namedItem(f.name) as HTMLInputElement | HTMLSelectElement | null;
      if (!el) continue;
      if (f.kind === 'checkbox') {
        if ((el as HTMLInputElement).checked) q.set(f.name, 'true');
      } else if (f.kind === 'datetime') {
        if (el.value) {
          const d = new Date(el.value);
          if (!Number.isNaN(d.getTime())) q.set(f.name, d.toISOString());
        }
      } else if (el.value.trim()) q.set(f.name, el.value.trim());
    }
    return q;
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    onApply(read());
  });
  form.addEventListener('reset', (ev) => {
    ev.preventDefault();
    onApply(new URLSearchParams());
  });
  return form;
}

function isoToLocalInput(iso: string): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** "Next page" (with the server's cursor) and "First page" links for a listing at `path`. */
export function pager(path: string, query: URLSearchParams, nextCursor: string | undefined, shown: number): HTMLElement {
  const first = new URLSearchParams(query);
  first.delete('cursor');
  const next = new URLSearchParams(query);
  if (nextCursor) next.set('cursor', nextCursor);
  return h(
    'nav',
    { class: 'pager', 'aria-label': 'Pages' },
    query.get('cursor') ? h('a', { href: `${path}?${first}`, class: 'btn btn-small' }, '← First page') : null,
    h('span', { class: 'muted' }, `${shown} shown`),
    nextCursor ? h('a', { href: `${path}?${next}`, class: 'btn btn-small', rel: 'next' }, 'Next page →') : h('span', { class: 'muted' }, 'end of list'),
  );
}
