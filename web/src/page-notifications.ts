// The notification delivery log (auditors): what was sent to which target, how many
// attempts it took, the last error, and a Redeliver button (same webhook id).
import { api, type Delivery } from './api.js';
import { emptyState, errorBox, link, type Page } from './app.js';
import { clear, formatTime, h, shown } from './dom.js';
import { filterForm, pager } from './filters.js';

const KEYS = ['state', 'runId', 'target', 'cursor'];
const STATES = ['pending', 'delivered', 'failed'] as const;

export const notificationsPage: Page = async (ctx) => {
  const { main, query } = ctx;
  const q = new URLSearchParams();
  for (const k of KEYS) if (query.get(k)) q.set(k, query.get(k)!);
  const status = h('span', { class: 'help', 'aria-live': 'polite' });
  main.append(
    h('div', { class: 'page-head' }, ctx.heading('Notifications'), h('div', { class: 'head-actions' }, status)),
    h('p', { class: 'lede' }, 'Every notification sent to the operator’s targets (Slack, webhooks). Pending ones are being retried; failed ones gave up.'),
    filterForm(
      'notify-filters',
      [
        { kind: 'select', name: 'state', label: 'State', options: STATES, any: 'any state' },
        { kind: 'text', name: 'runId', label: 'Run id' },
        { kind: 'text', name: 'target', label: 'Target' },
      ],
      query,
      (nq) => ctx.navigate(`/notifications${nq.size ? `?${nq}` : ''}`),
    ),
  );
  const body = h('div', { class: 'listing', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading…'));
  main.append(body);
  let page: { items: Delivery[]; nextCursor?: string };
  try {
    page = await api.notifications(q);
  } catch (err) {
    clear(body, errorBox(err, 'Cannot read the delivery log'));
    return;
  }
  if (!page.items.length) {
    clear(body, emptyState(q.size ? 'No delivery matches these filters.' : 'Nothing has been sent yet.'));
    return;
  }
  const redeliver = async (d: Delivery) => {
    status.textContent = `Redelivering ${d.id}…`;
    try {
      await api.redeliver(d.id);
      status.textContent = `Delivery ${d.id} will be sent again now (webhook id ${d.webhookId}).`;
    } catch (err) {
      status.textContent = shown(`Redelivery failed: ${(err as Error).message}`);
    }
  };
  clear(
    body,
    h(
      'div',
      { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Deliveries' },
      h(
        'table',
        { class: 'table', id: 'notifications-table' },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ['#', 'Created', 'State', 'Target', 'Event', 'Run', 'Attempts', 'Last error', ''].map((c) => h('th', { scope: 'col' }, c)),
          ),
        ),
        h(
          'tbody',
          null,
          page.items.map((d) =>
            h(
              'tr',
              { 'data-id': d.id, class: d.state === 'failed' ? 'row-denied' : null },
              h('td', { class: 'mono' }, String(d.id)),
              h('td', { class: 'nowrap' }, formatTime(d.createdAt)),
              h('td', null, d.state === 'pending' && d.nextAttemptAt ? `pending (next ${formatTime(d.nextAttemptAt)})` : d.state),
              h('td', null, d.target),
              h('td', null, d.event),
              h('td', null, d.runId ? link(`/runs/${d.runId}`, d.runId, { class: 'mono' }) : '—'),
              h('td', null, String(d.attempts)),
              h('td', { class: 'detail' }, d.lastError ?? '—'),
              h(
                'td',
                null,
                d.state === 'pending' ? '' : h('button', { type: 'button', class: 'btn btn-small', onclick: () => void redeliver(d) }, 'Redeliver'),
              ),
            ),
          ),
        ),
      ),
    ),
    pager('/notifications', q, page.nextCursor, page.items.length),
  );
};
