// The approver's inbox: run requests waiting for a second person. Each shows exactly
// what would run (argv, image, the Job manifest and its hash); Approve runs it, Deny
// needs a reason. The server decides who may (never the requester).
import { api, ApiError, type ApprovalRequest } from './api.js';
import { emptyState, errorBox, link, type Page } from './app.js';
import { clear, formatTime, h, onAsync } from './dom.js';
import { shellJoin } from './argv.js';

export const requestsPage: Page = async (ctx) => {
  const { main, me } = ctx;
  main.append(ctx.heading('Requests'), h('p', { class: 'lede' }, 'Runs that wait for a second person. You cannot decide on your own requests.'));
  const created = ctx.query.get('created');
  if (created) main.append(h('div', { class: 'alert', role: 'status' }, `Request ${created} created: it runs once someone approves it.`));
  const list = h('ul', { class: 'dep-list', id: 'requests' });
  main.append(list);
  const draw = async () => {
    const { items } = await api.requests(true);
    if (!items.length) {
      clear(list, emptyState('Nothing is waiting for a decision.'));
      return;
    }
    clear(
      list,
      items.map((r) => card(r, r.requester.login.toLowerCase() === me.login.toLowerCase())),
    );
  };
  const card = (r: ApprovalRequest, mine: boolean) => {
    const reason = h('input', { id: `decide-${r.id}`, type: 'text', maxlength: 500, placeholder: 'reason (required to deny)' });
    const out = h('div', { 'aria-live': 'polite' });
    const decide = (approve: boolean) =>
      onAsync(async () => {
        out.replaceChildren();
        try {
          if (approve) {
            const done = await api.approve(r.id, reason.value.trim() || undefined);
            ctx.navigate(`/runs/${done.runId}`);
          } else {
            if (!reason.value.trim()) {
              clear(out, h('p', { class: 'field-error' }, 'Say why you deny it.'));
              reason.focus();
              return;
            }
            await api.deny(r.id, reason.value.trim());
            await draw();
          }
        } catch (err) {
          if (!(err instanceof ApiError && err.status === 401)) clear(out, errorBox(err, approve ? 'Not approved' : 'Not denied'));
        }
      });
    return h(
      'li',
      { class: 'card dep-card', 'data-request': r.id },
      h('div', { class: 'dep-head' }, h('h3', null, r.task ? `task/${r.task}` : `deploy/${r.deployment}`, h('span', { class: 'muted' }, ` in ${r.namespace}`))),
      h(
        'dl',
        { class: 'facts' },
        h('dt', null, 'Requested by'),
        h('dd', null, `${r.requester.login} at ${formatTime(r.createdAt)}`),
        h('dt', null, 'Command'),
        h('dd', null, h('code', null, shellJoin(r.command))),
        h('dt', null, 'Image'),
        h('dd', null, h('code', null, r.image)),
        r.reason ? [h('dt', null, 'Reason'), h('dd', null, r.reason)] : null,
        h('dt', null, 'Approvers'),
        h('dd', null, r.approvers),
        h('dt', null, 'Expires'),
        h('dd', null, formatTime(r.expiresAt)),
        h('dt', null, 'Manifest SHA-256'),
        h('dd', null, h('code', null, r.manifestHash)),
      ),
      h('details', null, h('summary', null, 'The Job that will run'), h('pre', { class: 'yaml' }, h('code', null, JSON.stringify(r.job, null, 2)))),
      mine
        ? h('p', { class: 'muted' }, 'Your request: someone else must decide.')
        : h(
            'div',
            { class: 'actions' },
            h('label', { for: `decide-${r.id}`, class: 'sr-only' }, 'Reason'),
            reason,
            h('button', { type: 'button', class: 'btn btn-primary', onclick: decide(true) }, 'Approve and run'),
            h('button', { type: 'button', class: 'btn', onclick: decide(false) }, 'Deny'),
          ),
      out,
    );
  };
  await draw();
  main.append(h('p', null, link('/runs', 'Runs')));
};
