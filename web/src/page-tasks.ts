// "Tasks I may run": the commands owners declared, each with a form built from its
// parameter types. The server checks every value; the form only helps to type them.
import { api, ApiError, type TaskParam, type TaskSummary } from './api.js';
import { emptyState, errorBox, type Page } from './app.js';
import { clear, h, onAsync } from './dom.js';
import { approvalNotice } from './page-run-form.js';
import { formatSeconds, shellJoin } from './argv.js';

export const tasksPage: Page = async (ctx) => {
  const { main } = ctx;
  main.append(
    ctx.heading('Tasks you may run'),
    h(
      'p',
      { class: 'lede' },
      'Commands the owners of a Deployment declared and reviewed. Fill in the parameters; the server checks each value and passes it as one argument, never through a shell.',
    ),
  );
  const { items } = await api.tasks();
  if (!items.length) {
    main.append(emptyState('No Task you may run.', 'Owners declare them as Task resources (oddjob.io/v1alpha1) next to their Deployment.'));
    return;
  }
  main.append(
    h(
      'ul',
      { class: 'dep-list', id: 'tasks' },
      items.map((t) => taskCard(ctx, t)),
    ),
  );
};

function field(t: TaskSummary, p: TaskParam): { el: HTMLElement; value: () => string | number | boolean | undefined } {
  const id = `param-${t.namespace}-${t.name}-${p.name}`;
  const label = h('label', { for: id }, p.name, p.required ? h('span', { class: 'muted' }, ' (required)') : null);
  const help = p.description ? h('p', { class: 'help' }, p.description) : null;
  switch (p.type) {
    case 'boolean': {
      const input = h('input', { id, type: 'checkbox', name: p.name, checked: p.default === true });
      return { el: h('div', { class: 'check' }, input, label, help), value: () => input.checked };
    }
    case 'choice': {
      const select = h(
        'select',
        { id, name: p.name },
        p.default === undefined ? h('option', { value: '' }, '—') : null,
        p.choices.map((c) => h('option', { value: c, selected: c === p.default }, c)),
      );
      return { el: h('div', { class: 'field' }, label, select, help), value: () => select.value || undefined };
    }
    case 'integer': {
      const input = h('input', { id, type: 'number', name: p.name, step: 1, min: p.min, max: p.max, value: p.default, class: 'short' });
      const range = p.min !== undefined || p.max !== undefined ? h('p', { class: 'help' }, `${p.min ?? '…'} to ${p.max ?? '…'}`) : null;
      return { el: h('div', { class: 'field' }, label, input, range, help), value: () => (input.value === '' ? undefined : input.value) };
    }
    case 'string': {
      const input = h('input', { id, type: 'text', name: p.name, value: p.default, class: 'mono', autocomplete: 'off', spellcheck: 'false' });
      const pattern = p.pattern ? h('p', { class: 'help' }, 'Must match ', h('code', null, p.pattern)) : null;
      return {
        el: h('div', { class: 'field' }, label, input, pattern, help),
        value: () => (input.value === '' && p.default === undefined && !p.required ? undefined : input.value),
      };
    }
  }
}

function taskCard(ctx: Parameters<Page>[0], t: TaskSummary): HTMLElement {
  const fields = t.params.map((p) => ({ p, ...field(t, p) }));
  const reason = h('input', { id: `reason-${t.namespace}-${t.name}`, type: 'text', maxlength: 500, placeholder: 'why (recorded in the audit log)' });
  const out = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', disabled: !t.ready }, 'Run task');
  const values = () => {
    const params: Record<string, string | number | boolean> = {};
    for (const f of fields) {
      const v = f.value();
      if (v !== undefined) params[f.p.name] = v;
    }
    return params;
  };
  const form = h(
    'form',
    { class: 'run-form', novalidate: true, 'data-task': `${t.namespace}/${t.name}` },
    fields.map((f) => f.el),
    h('div', { class: 'field' }, h('label', { for: `reason-${t.namespace}-${t.name}` }, 'Reason'), reason),
    h('div', { class: 'actions' }, submit),
    out,
  );
  form.addEventListener(
    'submit',
    onAsync(async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      out.replaceChildren();
      try {
        const started = await api.createRun({ namespace: t.namespace, task: t.name, params: values(), reason: reason.value.trim() || undefined });
        if ('approval' in started) {
          clear(out, approvalNotice(started.approval.approvers), h('p', null, `Request ${started.approval.id} is waiting for a decision.`));
          submit.disabled = false;
          return;
        }
        ctx.navigate(`/runs/${started.id}`);
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 401)) clear(out, errorBox(err, 'The task did not run'));
        submit.disabled = false;
      }
    }),
  );
  return h(
    'li',
    { class: 'card dep-card', 'data-testid': `task-${t.name}` },
    h('div', { class: 'dep-head' }, h('h3', null, t.name), t.approval === 'required' ? h('span', { class: 'badge' }, 'needs approval') : null),
    t.description ? h('p', null, t.description) : null,
    h(
      'dl',
      { class: 'facts' },
      h('dt', null, 'Runs in'),
      h('dd', null, `${t.namespace}/${t.deployment}${t.container ? ` (${t.container})` : ''}`),
      h('dt', null, 'Command'),
      h('dd', null, h('code', null, shellJoin(t.command))),
      h('dt', null, 'Time limit'),
      h('dd', null, t.timeoutSeconds ? formatSeconds(t.timeoutSeconds) : 'server default'),
    ),
    t.ready ? form : h('div', { class: 'alert alert-error', role: 'alert' }, h('strong', null, 'This Task is invalid and cannot run. '), t.problem ?? ''),
  );
}
