// "Deployments I may run": grouped by namespace, with containers, images and
// who may run. The server lists only what the signed-in person may run in.
import { api, type DeploymentSummary } from './api.js';
import { emptyState, link, type Page } from './app.js';
import { clear, h } from './dom.js';
import { formatSeconds } from './argv.js';

export const deploymentsPage: Page = async (ctx) => {
  const { main } = ctx;
  const list = h('div', { class: 'deployments', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading deployments…'));
  const filter = h('input', { id: 'dep-filter', type: 'search', placeholder: 'Filter by name, namespace, image…', autocomplete: 'off', spellcheck: 'false' });
  main.append(
    h(
      'div',
      { class: 'page-head' },
      ctx.heading('Deployments you may run in'),
      h('div', { class: 'field field-inline' }, h('label', { for: 'dep-filter', class: 'sr-only' }, 'Filter deployments'), filter),
    ),
    h(
      'p',
      { class: 'lede' },
      'A run is a one-off Job that copies the Deployment’s pod: same image, environment, secrets and service account. Owners opt in with annotations; you only see what they allow you.',
    ),
    list,
  );
  const { items } = await api.deployments();
  const draw = () => {
    const q = filter.value.trim().toLowerCase();
    const shown = items.filter((d) => !q || [d.namespace, d.name, ...d.containers.flatMap((c) => [c.name, c.image])].some((s) => s.toLowerCase().includes(q)));
    if (!items.length) {
      clear(
        list,
        emptyState(
          'No deployment lets you run commands yet.',
          'A Deployment’s owners opt in with the annotations ',
          h('code', null, 'oddjob.io/allowed-teams'),
          ' or ',
          h('code', null, 'oddjob.io/allowed-users'),
          '. Ask them to add you or one of your teams.',
        ),
      );
      return;
    }
    if (!shown.length) {
      clear(list, emptyState(`Nothing matches “${filter.value}”.`));
      return;
    }
    const byNs = new Map<string, DeploymentSummary[]>();
    for (const d of shown) byNs.set(d.namespace, [...(byNs.get(d.namespace) ?? []), d]);
    clear(
      list,
      [...byNs.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([ns, deps]) =>
          h(
            'section',
            { class: 'ns-group', 'aria-labelledby': `ns-${ns}` },
            h('h2', { id: `ns-${ns}` }, h('span', { class: 'muted' }, 'namespace '), ns),
            h('ul', { class: 'dep-list' }, deps.sort((a, b) => a.name.localeCompare(b.name)).map(card)),
          ),
        ),
    );
  };
  filter.addEventListener('input', draw);
  draw();
};

function card(d: DeploymentSummary): HTMLElement {
  const runHref = `/run?${new URLSearchParams({ namespace: d.namespace, deployment: d.name })}`;
  return h(
    'li',
    { class: 'card dep-card', 'data-deployment': `${d.namespace}/${d.name}` },
    h(
      'div',
      { class: 'dep-head' },
      h('h3', null, d.name),
      link(runHref, 'Run a command', { class: 'btn btn-primary', 'aria-label': `Run a command in ${d.namespace}/${d.name}` }),
    ),
    h(
      'dl',
      { class: 'facts' },
      h('dt', null, d.containers.length > 1 ? 'Containers' : 'Container'),
      h(
        'dd',
        null,
        h(
          'ul',
          { class: 'containers' },
          d.containers.map((c) =>
            h(
              'li',
              null,
              h('strong', null, c.name),
              c.name === d.defaultContainer && d.containers.length > 1 ? h('span', { class: 'badge' }, 'default') : null,
              h('code', { class: 'image' }, c.image),
            ),
          ),
        ),
      ),
      h('dt', null, 'Who may run'),
      h('dd', null, whoMayRun(d)),
      h('dt', null, 'Time limit'),
      h('dd', null, d.maxDurationSeconds ? `at most ${formatSeconds(d.maxDurationSeconds)}` : 'server default'),
    ),
  );
}

function whoMayRun(d: DeploymentSummary): (HTMLElement | string)[] {
  const out: (HTMLElement | string)[] = [];
  for (const t of d.allowedTeams) out.push(h('span', { class: 'chip', title: 'GitHub team' }, `team ${t}`));
  for (const u of d.allowedUsers) out.push(h('span', { class: 'chip', title: 'GitHub user' }, `@${u}`));
  return out.length ? out : ['—'];
}
