// The web UI's entry point: who am I, then a small History-API router.
// Client routes: /  /run  /runs  /runs/<id>  /schedules  /schedules/<ns>/<task>  /audit (the server answers them
// all with index.html; see server/http/static.ts).
import './style.css';
import { api, ApiError, setUnauthorizedHandler, type WhoAmI } from './api.js';
import type { Page, PageCtx } from './app.js';
import { errorBox, link } from './app.js';
import { clear, h, shown } from './dom.js';
import { deploymentsPage } from './page-deployments.js';
import { runFormPage } from './page-run-form.js';
import { runPage } from './page-run.js';
import { runsPage } from './page-runs.js';
import { auditPage } from './page-audit.js';
import { scheduleHistoryPage, schedulesPage } from './page-schedules.js';
import { notificationsPage } from './page-notifications.js';
import { tasksPage } from './page-tasks.js';
import { requestsPage } from './page-requests.js';

const main = document.getElementById('main')!;
const topbar = document.getElementById('topbar')!;
const RETURN_KEY = 'oddjob.returnTo';

const routes: Array<{ pattern: RegExp; keys: string[]; page: Page; nav: string }> = [
  { pattern: /^\/$/, keys: [], page: deploymentsPage, nav: '/' },
  { pattern: /^\/run$/, keys: [], page: runFormPage, nav: '/' },
  { pattern: /^\/runs$/, keys: [], page: runsPage, nav: '/runs' },
  { pattern: /^\/runs\/([^/]+)$/, keys: ['id'], page: runPage, nav: '/runs' },
  { pattern: /^\/schedules$/, keys: [], page: schedulesPage, nav: '/schedules' },
  { pattern: /^\/schedules\/([^/]+)\/([^/]+)$/, keys: ['namespace', 'task'], page: scheduleHistoryPage, nav: '/schedules' },
  { pattern: /^\/audit$/, keys: [], page: auditPage, nav: '/audit' },
  { pattern: /^\/notifications$/, keys: [], page: notificationsPage, nav: '/notifications' },
  { pattern: /^\/tasks$/, keys: [], page: tasksPage, nav: '/tasks' },
  { pattern: /^\/requests$/, keys: [], page: requestsPage, nav: '/requests' },
];

let me: WhoAmI | undefined;
let cleanup: (() => void) | void;
let renderSeq = 0;

function navigate(path: string, opts: { replace?: boolean } = {}) {
  if (opts.replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  void render();
}

function renderTopbar(active: string) {
  if (!me) {
    clear(topbar, h('div', { class: 'topbar-inner' }, h('span', { class: 'brand' }, 'oddjob')));
    return;
  }
  const navItem = (href: string, text: string) => h('li', null, link(href, text, href === active ? { 'aria-current': 'page', class: 'active' } : {}));
  const who = me.name ? `${me.name} (${me.login})` : me.login;
  const signOut =
    me.auth === 'dev'
      ? null
      : h(
          'button',
          {
            type: 'button',
            class: 'btn btn-quiet btn-small',
            onclick: async () => {
              try {
                const r = await api.signOut();
                if (r === 'unsupported') {
                  alert('Sign-out is not available: this server runs without sign-in (dev mode).');
                  return;
                }
              } catch (err) {
                alert(shown(`Sign-out failed: ${(err as Error).message}`));
                return;
              }
              location.assign('/');
            },
          },
          'Sign out',
        );
  clear(
    topbar,
    h(
      'div',
      { class: 'topbar-inner' },
      link('/', h('span', { class: 'brand' }, 'oddjob'), { class: 'brand-link', 'aria-label': 'oddjob home' }),
      h(
        'nav',
        { 'aria-label': 'Main' },
        h(
          'ul',
          { class: 'nav' },
          navItem('/', 'Deployments'),
          navItem('/tasks', 'Tasks'),
          navItem('/schedules', 'Schedules'),
          navItem('/requests', 'Requests'),
          navItem('/runs', 'Runs'),
          navItem('/audit', 'Audit'),
          me.auditor ? navItem('/notifications', 'Notifications') : null,
        ),
      ),
      h(
        'div',
        { class: 'user', 'data-testid': 'whoami' },
        h('span', { class: 'user-login', title: me.teams.length ? `teams: ${me.teams.join(', ')}` : 'no teams' }, who),
        me.auditor ? h('span', { class: 'badge badge-auditor', title: 'may read every audit event' }, 'auditor') : null,
        me.auth === 'dev' ? h('span', { class: 'badge badge-dev', title: 'the server runs with --auth dev' }, 'dev') : null,
        signOut,
      ),
    ),
  );
}

function signInPage(reason?: string) {
  renderTopbar('');
  document.title = 'Sign in · oddjob';
  const path = location.pathname + location.search;
  if (path !== '/') sessionStorage.setItem(RETURN_KEY, path);
  clear(
    main,
    h(
      'section',
      { class: 'signin card' },
      h('h1', { tabindex: '-1' }, 'Sign in to oddjob'),
      h(
        'p',
        null,
        'oddjob runs one-off commands inside the runtime of a Deployment, with its owners’ consent and an audit trail. Sign in with your GitHub account; your teams decide where you may run.',
      ),
      reason ? h('p', { class: 'alert alert-error', role: 'alert' }, reason) : null,
      h('a', { class: 'btn btn-primary btn-large', href: '/auth/github', 'data-native': '' }, 'Sign in with GitHub'),
    ),
  );
  main.querySelector('h1')?.focus();
}

async function render() {
  const seq = ++renderSeq;
  try {
    cleanup?.();
  } catch {
    // a page's cleanup must not block navigation
  }
  cleanup = undefined;
  if (!me) {
    try {
      me = await api.whoami();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return signInPage();
      if (err instanceof ApiError && err.status === 403) return signInPage(err.message);
      renderTopbar('');
      clear(main, errorBox(err, 'Cannot reach oddjob'));
      return;
    }
    const back = sessionStorage.getItem(RETURN_KEY);
    if (back) {
      sessionStorage.removeItem(RETURN_KEY);
      if (back.startsWith('/') && !back.startsWith('//') && back !== location.pathname + location.search) {
        history.replaceState(null, '', back);
      }
    }
  }
  const path = location.pathname.replace(/\/+$/, '') || '/';
  const route = routes.find((r) => r.pattern.test(path));
  renderTopbar(route?.nav ?? '');
  main.replaceChildren();
  if (!route) {
    document.title = 'Not found · oddjob';
    clear(
      main,
      h('h1', { tabindex: '-1' }, 'Page not found'),
      h('p', null, 'There is no page at ', h('code', null, location.pathname), '. ', link('/', 'Go to your deployments'), '.'),
    );
    main.querySelector('h1')?.focus();
    return;
  }
  const m = route.pattern.exec(path)!;
  const params: Record<string, string> = {};
  route.keys.forEach((k, i) => (params[k] = decodeURIComponent(m[i + 1]!)));
  const ctx: PageCtx = {
    me,
    main,
    params,
    query: new URLSearchParams(location.search),
    navigate,
    heading(text, ...extra) {
      document.title = shown(`${text} · oddjob`);
      return h('h1', { tabindex: '-1' }, text, ...extra);
    },
  };
  try {
    const c = await route.page(ctx);
    if (seq !== renderSeq) {
      c?.();
      return;
    }
    cleanup = c;
  } catch (err) {
    if (seq !== renderSeq) return;
    if (err instanceof ApiError && err.status === 401) return;
    main.appendChild(errorBox(err));
  }
  if (seq === renderSeq) {
    const target = (history.state as { focus?: string } | null)?.focus;
    if (!target) main.querySelector<HTMLElement>('h1')?.focus({ preventScroll: true });
  }
}

setUnauthorizedHandler(() => {
  if (!me) return; // the first whoami: render() shows the sign-in page itself
  me = undefined;
  cleanup?.();
  cleanup = undefined;
  signInPage('Your session has ended; sign in again.');
});

// Same-origin links navigate inside the app; /api, /auth and downloads are real navigations.
document.addEventListener('click', (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = (ev.target as Element | null)?.closest?.('a');
  if (!a || a.target || a.hasAttribute('download') || a.hasAttribute('data-native')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || /^\/(api|auth)(\/|$)/.test(url.pathname)) return;
  ev.preventDefault();
  navigate(url.pathname + url.search + url.hash);
});
window.addEventListener('popstate', () => void render());

void render();
