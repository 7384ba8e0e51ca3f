// Schedules: every scheduled Task the person may see — schedule, zone, next slot, the
// last slot and its outcome, missed slots, suspension (with who and why) — and a Task's
// slot history with links to each slot's run (its output stays replayable there).
// Where the server says the person may change a schedule (who may run the Task), it has
// Suspend (with a reason), Resume and Run now; the server decides every one of them and
// its refusals are shown in its words.
import { api, ApiError, type ScheduleSummary } from './api.js';
import { emptyState, errorBox, link, type Page, type PageCtx } from './app.js';
import { clear, formatTime, h, onAsync, statusBadge } from './dom.js';
import { approvalNotice } from './page-run-form.js';

function suspendedText(s: ScheduleSummary): string {
  if (s.suspension) return `yes — by ${s.suspension.by} at ${formatTime(s.suspension.at)}: ${s.suspension.reason}`;
  return s.suspendedBySpec ? 'yes (in the Task)' : 'no';
}

/**
 * Suspend (asks why first), Resume, Run now. Run now passes the schedule's params and
 * honours its concurrencyPolicy; when the server refuses because a run is still going,
 * "Run anyway" starts one past the policy (the CLI's --force), which the audit records.
 * The buttons go in the schedule's row; the reason's form and the server's answers in a
 * panel below it, shown only while it has something to say.
 */
function scheduleControls(ctx: PageCtx, s: ScheduleSummary, changed: (s: ScheduleSummary) => void) {
  const id = `${s.namespace}-${s.task}`;
  const out = h('div', { 'aria-live': 'polite' });
  const reason = h('input', { id: `suspend-reason-${id}`, type: 'text', maxlength: 500, required: true, placeholder: 'why (recorded in the audit log)' });
  const panel = h('div', { class: 'schedule-panel' });
  const panelRow = h('tr', { class: 'panel-row', hidden: true }, h('td', { colspan: 8 }, panel));
  const refresh = () => (panelRow.hidden = form.hidden && out.childElementCount === 0);
  const say = (...children: Node[]) => {
    clear(out, ...children);
    refresh();
  };
  const failed = (err: unknown, title: string) => {
    if (!(err instanceof ApiError && err.status === 401)) say(errorBox(err, title));
  };
  const form: HTMLFormElement = h(
    'form',
    { class: 'actions', hidden: true, novalidate: true },
    h('label', { for: `suspend-reason-${id}` }, 'Reason'),
    reason,
    h('button', { type: 'submit', class: 'btn btn-danger btn-small' }, 'Suspend schedule'),
    h(
      'button',
      {
        type: 'button',
        class: 'btn btn-quiet btn-small',
        onclick: () => {
          form.hidden = true;
          say();
        },
      },
      'Cancel',
    ),
  );
  form.addEventListener(
    'submit',
    onAsync(async (ev) => {
      ev.preventDefault();
      say();
      if (!reason.value.trim()) {
        say(h('p', { class: 'field-error', role: 'alert' }, 'Say why you suspend it: the reason is recorded in the audit log and shown here.'));
        reason.focus();
        return;
      }
      try {
        changed(await api.suspendSchedule(s.namespace, s.task, reason.value.trim()));
      } catch (err) {
        failed(err, 'Not suspended');
      }
    }),
  );
  const resume = onAsync(async () => {
    say();
    try {
      changed(await api.resumeSchedule(s.namespace, s.task));
    } catch (err) {
      failed(err, 'Not resumed');
    }
  });
  const runNow = (force: boolean) =>
    onAsync(async (ev: Event) => {
      const button = ev.currentTarget as HTMLButtonElement;
      button.disabled = true;
      say();
      try {
        const started = await api.createRun({ namespace: s.namespace, task: s.task, params: s.params ?? {}, ...(force ? { force: true } : {}) });
        if ('approval' in started) say(approvalNotice(started.approval.approvers), h('p', null, `Request ${started.approval.id} is waiting for a decision.`));
        else ctx.navigate(`/runs/${started.id}`);
      } catch (err) {
        if (err instanceof ApiError && err.code === 'concurrency_forbid') {
          say(
            h(
              'div',
              { class: 'alert alert-error', role: 'alert' },
              h('strong', null, 'Not started'),
              h('p', null, err.message),
              h(
                'p',
                null,
                h('button', { type: 'button', class: 'btn btn-danger btn-small', onclick: runNow(true) }, 'Run anyway'),
                ' starts another run past the concurrency policy (recorded in the audit log).',
              ),
            ),
          );
        } else failed(err, 'Not started');
      } finally {
        button.disabled = false;
      }
    });
  if (!s.suspension) panel.append(form);
  panel.append(out);
  const buttons = h(
    'div',
    { class: 'actions', 'data-testid': `controls-${s.task}` },
    s.suspension
      ? h('button', { type: 'button', class: 'btn btn-small', onclick: resume }, 'Resume')
      : h(
          'button',
          {
            type: 'button',
            class: 'btn btn-small',
            onclick: () => {
              form.hidden = false;
              refresh();
              reason.focus();
            },
          },
          'Suspend',
        ),
    s.error ? null : h('button', { type: 'button', class: 'btn btn-small', onclick: runNow(false) }, 'Run now'),
  );
  return { buttons, panelRow };
}

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
  const withControls = items.some((s) => s.mayChange);
  /** One schedule: its row and, for one the viewer may change, the panel under it. */
  const group = (s: ScheduleSummary): HTMLTableSectionElement => {
    const controls = s.mayChange ? scheduleControls(ctx, s, (next) => tbody.replaceWith(group({ ...next, mayChange: true }))) : undefined;
    const tbody = h(
      'tbody',
      { 'data-task': `${s.namespace}/${s.task}` },
      h(
        'tr',
        null,
        h('td', null, link(`/schedules/${encodeURIComponent(s.namespace)}/${encodeURIComponent(s.task)}`, `${s.namespace}/${s.task}`)),
        h('td', null, s.error ? h('span', { class: 'error', title: s.error }, 'invalid') : h('code', null, s.cron)),
        h('td', null, s.timeZone || '—'),
        h('td', { class: 'nowrap' }, s.nextScheduleTime ? formatTime(s.nextScheduleTime) : '—'),
        h('td', { class: 'nowrap' }, s.lastSlot ? [statusBadge(s.lastSlot.state), ' ', formatTime(s.lastSlot.nominal)] : '—'),
        h('td', null, String(s.missedSlots)),
        h('td', { class: 'suspended' }, suspendedText(s)),
        withControls ? h('td', null, controls?.buttons) : null,
      ),
      controls?.panelRow,
    );
    return tbody;
  };
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
            ['Task', 'Schedule', 'Zone', 'Next', 'Last', 'Missed', 'Suspended', ...(withControls ? ['Actions'] : [])].map((c) => h('th', { scope: 'col' }, c)),
          ),
        ),
        items.map(group),
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
