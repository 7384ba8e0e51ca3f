// The audit trail: filters (user, namespace, deployment, event, status, run,
// time range), cursor paging, NDJSON export (streamed by the server) and CSV
// (built here from that export), and a check of the hash chain.
import { api, AUDIT_TYPES, RUN_STATUSES, type AuditEvent } from './api.js';
import { emptyState, errorBox, link, type Page } from './app.js';
import { clear, download, formatDuration, formatTime, h, shown } from './dom.js';
import { shellJoin } from './argv.js';
import { filterForm, pager } from './filters.js';
import { AUDIT_COLUMNS, toCsv } from './csv.js';

const KEYS = ['user', 'namespace', 'deployment', 'type', 'status', 'runId', 'since', 'until', 'cursor'];

export const auditPage: Page = async (ctx) => {
  const { main, query, me } = ctx;
  const q = new URLSearchParams();
  for (const k of KEYS) if (query.get(k)) q.set(k, query.get(k)!);
  const exportQ = new URLSearchParams(q);
  exportQ.delete('cursor');
  const status = h('span', { class: 'help', 'aria-live': 'polite' });
  const csv = async () => {
    status.textContent = 'Exporting…';
    try {
      const events = await api.auditExport(exportQ);
      download('oddjob-audit.csv', 'text/csv', toCsv(AUDIT_COLUMNS, events));
      status.textContent = `Exported ${events.length} event${events.length === 1 ? '' : 's'}.`;
    } catch (err) {
      status.textContent = shown(`Export failed: ${(err as Error).message}`);
    }
  };
  const verify = async () => {
    status.textContent = 'Verifying the hash chain…';
    try {
      const r = await api.verifyAudit();
      status.textContent = r.ok
        ? `Hash chain intact: ${r.checked} events checked.`
        : `Hash chain BROKEN at event ${r.brokenAt}: ${r.problem ?? 'unknown problem'}`;
      status.classList.toggle('field-error', !r.ok);
    } catch (err) {
      status.textContent = shown(`Verification failed: ${(err as Error).message}`);
    }
  };
  main.append(
    h(
      'div',
      { class: 'page-head' },
      ctx.heading('Audit log'),
      h(
        'div',
        { class: 'head-actions' },
        h('a', { class: 'btn', href: `/api/audit/export${exportQ.size ? `?${exportQ}` : ''}`, download: 'oddjob-audit.ndjson' }, 'Export NDJSON'),
        h('button', { type: 'button', class: 'btn', onclick: csv }, 'Export CSV'),
        me.auditor !== false ? h('button', { type: 'button', class: 'btn btn-quiet', onclick: verify }, 'Verify chain') : '',
        status,
      ),
    ),
    me.auditor === undefined
      ? ''
      : h(
          'p',
          { class: 'lede' },
          me.auditor
            ? 'You are an auditor: you see every event, denied attempts included.'
            : 'You see the events of your own actions. Auditors see everything.',
        ),
    filterForm(
      'audit-filters',
      [
        { kind: 'text', name: 'user', label: 'User' },
        { kind: 'text', name: 'namespace', label: 'Namespace' },
        { kind: 'text', name: 'deployment', label: 'Deployment' },
        { kind: 'select', name: 'type', label: 'Event', options: AUDIT_TYPES, any: 'any event' },
        { kind: 'select', name: 'status', label: 'Outcome', options: RUN_STATUSES, any: 'any outcome' },
        { kind: 'text', name: 'runId', label: 'Run id' },
        { kind: 'datetime', name: 'since', label: 'From' },
        { kind: 'datetime', name: 'until', label: 'Until' },
      ],
      query,
      (nq) => ctx.navigate(`/audit${nq.size ? `?${nq}` : ''}`),
    ),
  );
  const body = h('div', { class: 'listing', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading…'));
  main.append(body);
  let page: { items: AuditEvent[]; nextCursor?: string };
  try {
    page = await api.audit(q);
  } catch (err) {
    clear(body, errorBox(err, 'Cannot read the audit log'));
    return;
  }
  if (!page.items.length) {
    clear(body, emptyState(q.size ? 'No event matches these filters.' : 'The audit log is empty.'));
    return;
  }
  clear(
    body,
    h(
      'div',
      { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Audit events' },
      h(
        'table',
        { class: 'table', id: 'audit-table' },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ['#', 'Time', 'Event', 'Who', 'Where', 'Run', 'Command', 'Outcome', 'Detail'].map((c) => h('th', { scope: 'col' }, c)),
          ),
        ),
        h(
          'tbody',
          null,
          page.items.map((e) =>
            h(
              'tr',
              { 'data-seq': e.seq, 'data-type': e.type, class: e.type === 'run.denied' ? 'row-denied' : null },
              h('td', { class: 'mono' }, String(e.seq)),
              h('td', { class: 'nowrap' }, formatTime(e.time)),
              h('td', null, h('span', { class: `badge event-${e.type.replace('.', '-')}` }, e.type)),
              h('td', null, e.actor.login, h('span', { class: 'muted small' }, ` via ${e.client.kind}`)),
              h('td', null, e.namespace ? `${e.namespace}/${e.deployment ?? ''}` : '—'),
              h('td', null, e.runId ? link(`/runs/${e.runId}`, e.runId, { class: 'mono' }) : '—'),
              h('td', { class: 'cmd-cell' }, e.command ? h('code', { title: shellJoin(e.command) }, shellJoin(e.command)) : '—'),
              h(
                'td',
                { class: 'nowrap' },
                e.status
                  ? `${e.status}${e.exitCode !== undefined ? ` (exit ${e.exitCode})` : ''}${e.durationMs !== undefined ? `, ${formatDuration(e.durationMs)}` : ''}`
                  : '—',
              ),
              h('td', { class: 'detail' }, [e.reason ? `reason: ${e.reason}` : '', e.message ?? ''].filter(Boolean).join(' · ') || '—'),
            ),
          ),
        ),
      ),
    ),
    pager('/audit', q, page.nextCursor, page.items.length),
  );
};
