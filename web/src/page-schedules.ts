// Schedules: every scheduled Task the person may see — schedule, zone, next slot, the
// last slot and its outcome, missed slots, suspension (with who and why) — and a Task's
// slot history with links to each slot's run (its output stays replayable there).
import { api } from './api.js';
import { emptyState, errorBox, link, type Page } from './app.js';
import { clear, formatTime, h, statusBadge } from './dom.js';

export const schedulesPage: Page = async (ctx) => {
  const { main } = ctx;
  main.append(h('div', { class: 'page-head' }, ctx.heading('Schedules')));
  const body = h('div', { class: 'listing', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading…'));
  main.append(body);
  let items;
  try {
    items = (await api.schedules()).items;
  } catch (err) {
    clear(body, errorBox(err, 'Cannot list schedules'));
    return;
  }
  if (!items.length) {
    clear(body, emptyState('No scheduled Tasks you may see.', 'A Task with spec.schedule appears here (see docs/schedules.md).'));
    return;
  }
  clear(
    body,
    h(
      'div',
      { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Schedules' },
      h(
        'table',
        { class: 'table', id: 'schedules-table' },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ['Task', 'Schedule', 'Zone', 'Next', 'Last', 'Missed', 'Suspended'].map((c) => h('th', { scope: 'col' }, c)),
          ),
        ),
        h(
          'tbody',
          null,
          items.map((s) =>
            h(
              'tr',
              { 'data-task': `${s.namespace}/${s.task}` },
              h('td', null, link(`/schedules/${encodeURIComponent(s.namespace)}/${encodeURIComponent(s.task)}`, `${s.namespace}/${s.task}`)),
              h('td', null, s.error ? h('span', { class: 'error', title: s.error }, 'invalid') : h('code', null, s.cron)),
              h('td', null, s.timeZone || '—'),
              h('td', { class: 'nowrap' }, s.nextScheduleTime ? formatTime(s.nextScheduleTime) : '—'),
              h('td', { class: 'nowrap' }, s.lastSlot ? [statusBadge(s.lastSlot.state), ' ', formatTime(s.lastSlot.nominal)] : '—'),
              h('td', null, String(s.missedSlots)),
              h('td', null, s.suspension ? `yes — ${s.suspension.by}: ${s.suspension.reason}` : s.suspendedBySpec ? 'yes (in the Task)' : 'no'),
            ),
          ),
        ),
      ),
    ),
  );
};

export const scheduleHistoryPage: Page = async (ctx) => {
  const { main, params } = ctx;
  const where = `${params.namespace}/${params.task}`;
  main.append(h('div', { class: 'page-head' }, ctx.heading(`Schedule of ${where}`)), h('p', null, link('/schedules', '← All schedules')));
  const body = h('div', { class: 'listing', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading…'));
  main.append(body);
  let items;
  try {
    items = (await api.scheduleHistory(params.namespace!, params.task!)).items;
  } catch (err) {
    clear(body, errorBox(err, `Cannot read the slots of ${where}`));
    return;
  }
  if (!items.length) {
    clear(body, emptyState('No slots yet.'));
    return;
  }
  clear(
    body,
    h(
      'div',
      { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Slots' },
      h(
        'table',
        { class: 'table', id: 'slots-table' },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ['Slot', 'State', 'Run', 'Attempt', 'Message'].map((c) => h('th', { scope: 'col' }, c)),
          ),
        ),
        h(
          'tbody',
          null,
          items.map((s) =>
            h(
              'tr',
              null,
              h('td', { class: 'nowrap' }, formatTime(s.nominal)),
              h('td', null, statusBadge(s.state)),
              h('td', null, s.runId ? link(`/runs/${s.runId}`, s.runId, { class: 'mono' }) : '—'),
              h('td', null, String(s.attempt)),
              h('td', null, s.message ?? ''),
            ),
          ),
        ),
      ),
    ),
  );
};
