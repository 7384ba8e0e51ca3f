// Run history: filters (mine, namespace, deployment, status), cursor paging,
// NDJSON/CSV export of everything the filters match; refreshed live while open.
import { api, collectPages, RUN_STATUSES, type Run } from './api.js';
import { emptyState, errorBox, link, type Page } from './app.js';
import { clear, download, formatDuration, formatTime, h, shown, statusBadge } from './dom.js';
import { shellJoin } from './argv.js';
import { filterForm, pager } from './filters.js';
import { RUN_COLUMNS, toCsv } from './csv.js';

const KEYS = ['mine', 'namespace', 'deployment', 'status', 'cursor'];
const LIVE_REFRESH_MS = 3_000;

export const runsPage: Page = async (ctx) => {
  const { main, query } = ctx;
  const q = new URLSearchParams();
  for (const k of KEYS) if (query.get(k)) q.set(k, query.get(k)!);
  const exportStatus = h('span', { class: 'help', 'aria-live': 'polite' });
  const doExport = async (format: 'ndjson' | 'csv') => {
    exportStatus.textContent = 'Exporting…';
    try {
      const base = new URLSearchParams(q);
      base.delete('cursor');
      base.set('limit', '500');
      const all = await collectPages<Run>((cursor) => {
        const p = new URLSearchParams(base);
        if (cursor) p.set('cursor', cursor);
        return api.listRuns(p);
      });
      if (format === 'csv') download('oddjob-runs.csv', 'text/csv', toCsv(RUN_COLUMNS, all));
      else download('oddjob-runs.ndjson', 'application/x-ndjson', all.map((r) => JSON.stringify(r)).join('\n') + (all.length ? '\n' : ''));
      exportStatus.textContent = `Exported ${all.length} run${all.length === 1 ? '' : 's'}.`;
    } catch (err) {
      exportStatus.textContent = shown(`Export failed: ${(err as Error).message}`);
    }
  };
  main.append(
    h(
      'div',
      { class: 'page-head' },
      ctx.heading('Runs'),
      h(
        'div',
        { class: 'head-actions' },
        link('/run', 'New run', { class: 'btn btn-primary' }),
        h('button', { type: 'button', class: 'btn', onclick: () => doExport('ndjson') }, 'Export NDJSON'),
        h('button', { type: 'button', class: 'btn', onclick: () => doExport('csv') }, 'Export CSV'),
        exportStatus,
      ),
    ),
    filterForm(
      'runs-filters',
      [
        { kind: 'checkbox', name: 'mine', label: 'Only my runs' },
        { kind: 'text', name: 'namespace', label: 'Namespace' },
        { kind: 'text', name: 'deployment', label: 'Deployment' },
        { kind: 'select', name: 'status', label: 'Status', options: RUN_STATUSES, any: 'any status' },
      ],
      query,
      (nq) => ctx.navigate(`/runs${nq.size ? `?${nq}` : ''}`),
    ),
  );
  const body = h('div', { class: 'listing', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading…'));
  main.append(body);
  let page: { items: Run[]; nextCursor?: string };
  try {
    page = await api.listRuns(q);
  } catch (err) {
    clear(body, errorBox(err, 'Cannot list runs'));
    return;
  }
  render(page);
  // Live: the list follows new runs and status changes while the page is open (and visible).
  let lastJson = JSON.stringify(page);
  let busy = false;
  const timer = setInterval(() => {
    if (busy || document.hidden) return;
    busy = true;
    api
      .listRuns(q)
      .then((next) => {
        const json = JSON.stringify(next);
        if (json !== lastJson && body.isConnected) {
          lastJson = json;
          render(next);
        }
      })
      // A failed refresh keeps what is shown; the next one tries again.
      .catch(() => undefined)
      .finally(() => (busy = false));
  }, LIVE_REFRESH_MS);
  return () => clearInterval(timer);

  function render(page: { items: Run[]; nextCursor?: string }) {
    if (!page.items.length) {
      clear(body, emptyState(q.size ? 'No run matches these filters.' : 'No runs yet.', link('/run', 'Start one')));
      return;
    }
    const now = Date.now();
    clear(
      body,
      h(
        'div',
        { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Runs' },
        h(
          'table',
          { class: 'table', id: 'runs-table' },
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              ['Run', 'Status', 'Deployment', 'Command', 'User', 'Created', 'Duration', 'Exit'].map((c, i) =>
                h('th', { scope: 'col', class: i >= 5 ? 'hide-sm' : null }, c),
              ),
            ),
          ),
          h(
            'tbody',
            null,
            page.items.map((r) =>
              h(
                'tr',
                { 'data-run-id': r.id },
                h('td', null, link(`/runs/${r.id}`, r.id, { class: 'mono' })),
                h('td', null, statusBadge(r.status)),
                h('td', null, `${r.namespace}/${r.deployment}`),
                h('td', { class: 'cmd-cell' }, h('code', { title: shellJoin(r.command) }, shellJoin(r.command))),
                h('td', null, r.user),
                h('td', { class: 'hide-sm nowrap' }, formatTime(r.createdAt)),
                h(
                  'td',
                  { class: 'hide-sm nowrap' },
                  r.startedAt ? formatDuration((r.finishedAt ? Date.parse(r.finishedAt) : now) - Date.parse(r.startedAt)) : '—',
                ),
                h('td', { class: 'hide-sm' }, r.exitCode !== undefined ? String(r.exitCode) : '—'),
              ),
            ),
          ),
        ),
      ),
      pager('/runs', q, page.nextCursor, page.items.length),
    );
  }
};
