// The run form: where (deployment, container), what (an argv, one field per
// argument, so quoting is never a guess), why (reason), how (interactive, TTY,
// time limit). "Preview" shows the Job the server would create, as YAML; the
// server validates everything and its words are shown as they are.
import { api, ApiError, type DeploymentSummary, type RunRequestInput } from './api.js';
import { emptyState, errorBox, link, type Page } from './app.js';
import { clear, h, onAsync, shown } from './dom.js';
import { formatSeconds, parseDurationInput, shellJoin, splitCommandLine } from './argv.js';

const REASON_MAX = 500;

export const runFormPage: Page = async (ctx) => {
  const { main, query } = ctx;
  main.append(ctx.heading('Run a command'));
  const { items } = await api.deployments();
  if (!items.length) {
    main.append(emptyState('No deployment lets you run commands yet.', link('/', 'See why')));
    return;
  }
  const key = (d: DeploymentSummary) => `${d.namespace}/${d.name}`;
  const wanted = `${query.get('namespace') ?? ''}/${query.get('deployment') ?? ''}`;
  let current = items.find((d) => key(d) === wanted) ?? items[0]!;

  // ── where ──
  const depSelect = h('select', { id: 'deployment', name: 'deployment', required: true });
  const byNs = new Map<string, DeploymentSummary[]>();
  for (const d of items) byNs.set(d.namespace, [...(byNs.get(d.namespace) ?? []), d]);
  for (const [ns, deps] of [...byNs].sort(([a], [b]) => a.localeCompare(b))) {
    depSelect.append(
      h(
        'optgroup',
        { label: `namespace ${ns}` },
        deps.map((d) => h('option', { value: key(d), selected: key(d) === key(current) }, d.name)),
      ),
    );
  }
  const containerSelect = h('select', { id: 'container', name: 'container' });
  const imageNote = h('p', { class: 'help', id: 'container-help' });
  const fillContainers = () => {
    clear(
      containerSelect,
      current.containers.map((c) => h('option', { value: c.name, selected: c.name === current.defaultContainer }, c.name)),
    );
    containerSelect.disabled = current.containers.length < 2;
    updateImage();
    timeoutHelp.textContent = current.maxDurationSeconds
      ? `Optional. e.g. 90s, 10m, 1h. This deployment allows at most ${formatSeconds(current.maxDurationSeconds)}.`
      : 'Optional. e.g. 90s, 10m, 1h. Empty: the server default.';
  };
  const updateImage = () => {
    const c = current.containers.find((x) => x.name === containerSelect.value);
    clear(imageNote, 'Image ', h('code', null, c?.image ?? '?'), ' · same env, secrets and service account as the Deployment');
  };

  // ── what: one field per argument ──
  const argList = h('ol', { class: 'argv', id: 'argv' });
  const argInputs = (): HTMLInputElement[] => [...argList.querySelectorAll<HTMLInputElement>('input')];
  const argv = () => argInputs().map((i) => i.value);
  const willRun = h('code', { id: 'will-run' });
  const updateWillRun = () => {
    const a = argv();
    // Trailing empty fields are ignored (the "next argument" you did not fill in).
    while (a.length > 1 && a[a.length - 1] === '') a.pop();
    willRun.textContent = a.length && a[0] ? shown(shellJoin(a)) : '(nothing yet)';
  };
  const relabel = () => {
    argInputs().forEach((input, i) => {
      const li = input.closest('li')!;
      const label = li.querySelector('label')!;
      label.textContent = i === 0 ? 'Program' : `Argument ${i}`;
      li.querySelector('button')!.setAttribute('aria-label', i === 0 ? 'Remove the program' : `Remove argument ${i}`);
      input.setAttribute('data-index', String(i));
    });
    updateWillRun();
  };
  const addArg = (value = '', after?: HTMLLIElement, focus = false) => {
    const id = `arg-${Math.random().toString(36).slice(2, 8)}`;
    const input = h('input', {
      id,
      type: 'text',
      class: 'mono',
      value,
      autocomplete: 'off',
      autocapitalize: 'off',
      spellcheck: 'false',
      'aria-describedby': 'argv-help',
    });
    const li: HTMLLIElement = h(
      'li',
      null,
      h('label', { for: id }),
      h(
        'div',
        { class: 'arg-row' },
        input,
        h('button', { type: 'button', class: 'btn btn-quiet btn-icon', title: 'Remove', onclick: (): void => removeArg(li) }, '✕'),
      ),
    );
    input.addEventListener('input', updateWillRun);
    input.addEventListener('keydown', (ev: KeyboardEvent) => {
      if (ev.key === 'Enter' && !ev.ctrlKey && !ev.metaKey) {
        ev.preventDefault();
        addArg('', li, true);
      } else if (ev.key === 'Backspace' && input.value === '' && argInputs().length > 1) {
        ev.preventDefault();
        const prev = li.previousElementSibling?.querySelector('input') ?? li.nextElementSibling?.querySelector('input');
        removeArg(li);
        (prev as HTMLInputElement | null)?.focus();
      }
    });
    if (after) after.after(li);
    else argList.append(li);
    relabel();
    if (focus) input.focus();
    return input;
  };
  const removeArg = (li: HTMLLIElement) => {
    li.remove();
    if (!argInputs().length) addArg();
    relabel();
  };
  const setArgv = (a: string[]) => {
    argList.replaceChildren();
    for (const v of a) addArg(v);
    if (!a.length) addArg();
  };
  const initial = query.getAll('arg');
  setArgv(initial.length ? initial : ['']);

  // ── paste a command line ──
  const pasteArea = h('textarea', {
    id: 'cmdline',
    rows: 2,
    class: 'mono',
    spellcheck: 'false',
    autocapitalize: 'off',
    placeholder: `node scripts/backfill.js --since "2024-01-01" --dry-run`,
  });
  const pastePreview = h('div', { class: 'split-preview', 'aria-live': 'polite', id: 'split-preview' });
  let lastSplit: string[] | undefined;
  const useSplit = h(
    'button',
    {
      type: 'button',
      class: 'btn',
      disabled: true,
      onclick: () => {
        if (!lastSplit) return;
        setArgv(lastSplit);
        argInputs()[0]?.focus();
      },
    },
    'Use these arguments',
  );
  pasteArea.addEventListener('input', () => {
    const r = splitCommandLine(pasteArea.value);
    if (!pasteArea.value.trim()) {
      lastSplit = undefined;
      useSplit.disabled = true;
      pastePreview.replaceChildren();
      return;
    }
    if (!r.ok) {
      lastSplit = undefined;
      useSplit.disabled = true;
      clear(pastePreview, h('p', { class: 'field-error' }, r.error));
      return;
    }
    lastSplit = r.argv;
    useSplit.disabled = false;
    clear(
      pastePreview,
      h('p', { class: 'help' }, `${r.argv.length} argument${r.argv.length === 1 ? '' : 's'}:`),
      h(
        'ol',
        { class: 'chips' },
        r.argv.map((a, i) => h('li', { class: 'chip mono', title: i === 0 ? 'program' : `argument ${i}` }, a === '' ? '(empty)' : a)),
      ),
      r.warnings.length
        ? h(
            'ul',
            { class: 'warnings' },
            r.warnings.map((w) => h('li', null, w)),
          )
        : null,
    );
  });

  // ── why and how ──
  const reason = h('textarea', {
    id: 'reason',
    name: 'reason',
    rows: 2,
    maxlength: REASON_MAX,
    placeholder: 'e.g. backfill invoices for INC-1234',
    'aria-describedby': 'reason-help',
  });
  const reasonHelp = h('p', { class: 'help', id: 'reason-help' }, `Recorded in the audit log. 0/${REASON_MAX}`);
  reason.addEventListener('input', () => (reasonHelp.textContent = `Recorded in the audit log. ${reason.value.length}/${REASON_MAX}`));
  const interactive = h('input', { id: 'interactive', type: 'checkbox', 'aria-describedby': 'interactive-help' });
  const tty = h('input', { id: 'tty', type: 'checkbox', disabled: true, 'aria-describedby': 'tty-help' });
  interactive.addEventListener('change', () => {
    tty.disabled = !interactive.checked;
    if (!interactive.checked) tty.checked = false;
  });
  const timeout = h('input', {
    id: 'timeout',
    type: 'text',
    inputmode: 'text',
    placeholder: 'default',
    autocomplete: 'off',
    class: 'short',
    'aria-describedby': 'timeout-help timeout-error',
  });
  const timeoutHelp = h('p', { class: 'help', id: 'timeout-help' });
  const timeoutError = h('p', { class: 'field-error', id: 'timeout-error', 'aria-live': 'polite' });
  const commandError = h('p', { class: 'field-error', id: 'command-error', 'aria-live': 'polite' });

  const formError = h('div', { id: 'form-error', tabindex: '-1' });
  const previewOut = h('section', { id: 'job-preview', class: 'preview', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Start run');
  const previewBtn = h('button', { type: 'button', class: 'btn' }, 'Preview Job');

  const build = (): RunRequestInput | undefined => {
    formError.replaceChildren();
    commandError.textContent = '';
    timeoutError.textContent = '';
    const a = argv();
    while (a.length > 1 && a[a.length - 1] === '') a.pop();
    let ok = true;
    if (!a[0]) {
      commandError.textContent = 'Enter the program to run in the first field (e.g. node), then one field per argument.';
      ok = false;
    }
    const t = parseDurationInput(timeout.value);
    if (!t.ok) {
      timeoutError.textContent = t.error;
      ok = false;
    }
    if (!ok) {
      (a[0] ? timeout : argInputs()[0])?.focus();
      return undefined;
    }
    const [namespace, deployment] = depSelect.value.split('/') as [string, string];
    const body: RunRequestInput = {
      namespace,
      deployment,
      container: containerSelect.value || undefined,
      command: a,
      interactive: interactive.checked,
      tty: tty.checked,
    };
    if (reason.value.trim()) body.reason = reason.value.trim();
    if (t.ok && t.seconds !== undefined) body.timeoutSeconds = t.seconds;
    return body;
  };
  const showServerError = (err: unknown, title: string) => {
    clear(formError, errorBox(err, title));
    formError.focus();
  };

  const form = h(
    'form',
    { id: 'run-form', class: 'run-form', novalidate: true },
    h(
      'fieldset',
      null,
      h('legend', null, 'Where'),
      h(
        'div',
        { class: 'grid-2' },
        h('div', { class: 'field' }, h('label', { for: 'deployment' }, 'Deployment'), depSelect),
        h('div', { class: 'field' }, h('label', { for: 'container' }, 'Container'), containerSelect),
      ),
      imageNote,
    ),
    h(
      'fieldset',
      null,
      h('legend', null, 'Command'),
      h(
        'p',
        { class: 'help', id: 'argv-help' },
        'One field per argument, passed to the program exactly as typed: no shell, no quoting, no variable expansion. Enter adds the next argument; Backspace in an empty field removes it.',
      ),
      argList,
      commandError,
      h('div', { class: 'row' }, h('button', { type: 'button', class: 'btn', onclick: () => addArg('', undefined, true) }, '+ Add argument')),
      h('p', { class: 'will-run' }, h('span', { class: 'muted' }, 'Will execute: '), willRun),
      h(
        'details',
        { class: 'paste' },
        h('summary', null, 'Paste a command line'),
        h('label', { for: 'cmdline' }, 'Command line (split like a shell would, but nothing else: no pipes, globs or variables)'),
        pasteArea,
        pastePreview,
        useSplit,
      ),
    ),
    h(
      'fieldset',
      null,
      h('legend', null, 'Details'),
      h('div', { class: 'field' }, h('label', { for: 'reason' }, 'Reason'), reason, reasonHelp),
      h(
        'div',
        { class: 'check' },
        interactive,
        h('label', { for: 'interactive' }, 'Interactive'),
        h('p', { class: 'help', id: 'interactive-help' }, 'Keep stdin open so you can type into the command.'),
      ),
      h(
        'div',
        { class: 'check' },
        tty,
        h('label', { for: 'tty' }, 'Terminal (TTY)'),
        h('p', { class: 'help', id: 'tty-help' }, 'For shells and REPLs: keystrokes go straight to the program, which echoes them.'),
      ),
      h('div', { class: 'field' }, h('label', { for: 'timeout' }, 'Time limit'), timeout, timeoutHelp, timeoutError),
    ),
    formError,
    h('div', { class: 'actions' }, submit, previewBtn, h('span', { class: 'help' }, 'Ctrl+Enter starts the run')),
    previewOut,
  );

  depSelect.addEventListener('change', () => {
    current = items.find((d) => key(d) === depSelect.value) ?? current;
    fillContainers();
    previewOut.replaceChildren();
  });
  containerSelect.addEventListener('change', updateImage);
  fillContainers();

  let busy = false;
  const setBusy = (b: boolean) => {
    busy = b;
    submit.disabled = b;
    previewBtn.disabled = b;
    form.setAttribute('aria-busy', String(b));
  };
  form.addEventListener('keydown', (ev: KeyboardEvent) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener(
    'submit',
    onAsync(async (ev) => {
      ev.preventDefault();
      if (busy) return;
      const body = build();
      if (!body) return;
      setBusy(true);
      try {
        const started = await api.createRun(body);
        if ('approval' in started) {
          ctx.navigate(`/requests?created=${started.approval.id}`);
          return;
        }
        ctx.navigate(`/runs/${started.id}`);
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 401)) showServerError(err, 'The run was not started');
        setBusy(false);
      }
    }),
  );
  previewBtn.addEventListener(
    'click',
    onAsync(async () => {
      if (busy) return;
      const body = build();
      if (!body) return;
      setBusy(true);
      clear(previewOut, h('p', { class: 'muted' }, 'Building the preview…'));
      try {
        const [{ job, approval }, yaml] = await Promise.all([api.previewRun(body), import('yaml')]);
        clear(
          previewOut,
          approval ? approvalNotice(approval.approvers) : null,
          h('h2', null, 'The Job that would be created'),
          h('p', { class: 'help' }, 'Nothing was created. Nothing was audited either. Starting the run creates this Job under a new run id.'),
          h('pre', { class: 'yaml', tabindex: '0', 'aria-label': 'Job manifest (YAML)' }, h('code', null, yaml.stringify(job, { lineWidth: 0 }))),
        );
      } catch (err) {
        previewOut.replaceChildren();
        if (!(err instanceof ApiError && err.status === 401)) showServerError(err, 'No preview');
      } finally {
        setBusy(false);
      }
    }),
  );

  main.append(form);
};

/** What a preview says when the run will wait for a second person. */
export function approvalNotice(approvers: string): HTMLElement {
  return h(
    'div',
    { class: 'alert', role: 'status', 'data-testid': 'approval-needed' },
    h('strong', null, 'This run needs approval. '),
    `Starting it creates a request; it runs once one of these approves it: ${approvers}.`,
  );
}
