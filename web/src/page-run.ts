// One run: facts, status, a live terminal (xterm) fed by the run's WebSocket
// stream, stdin for the person who started an interactive run, cancel, and a
// shareable URL (/runs/<id>) that replays the stored output even after the pod
// and Job are gone.
import { api, ApiError, TERMINAL, type Run } from './api.js';
import { errorBox, link, type Page } from './app.js';
import { clear, formatBytes, formatDuration, formatTime, h, onAsync, shown, statusBadge } from './dom.js';
import { shellJoin } from './argv.js';
import { isRunOwner } from '../../protocol/owner.js';
import { RunStream, type ConnState } from './stream.js';
import { TerminalSearch } from './search.js';

const STDERR_ON = '\x1b[31m';
const STDERR_OFF = '\x1b[39m';

export const runPage: Page = async (ctx) => {
  const { main, params, me } = ctx;
  const id = params.id!;
  if (!/^[a-z0-9]{12}$/.test(id)) {
    main.append(ctx.heading('Run not found'), h('p', null, `“${id}” is not a run id (12 lowercase letters or digits). `, link('/runs', 'See all runs'), '.'));
    return;
  }
  let run: Run;
  try {
    run = await api.getRun(id);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      main.append(ctx.heading('Run not found'), errorBox(err, `Run ${id} is not visible to you`), h('p', null, link('/runs', 'See all runs')));
      return;
    }
    throw err;
  }
  const owner = isRunOwner(run, me);
  const takesInput = run.interactive && owner;

  const badgeSlot = h('span', { class: 'title-badge', id: 'run-status' });
  const facts = h('dl', { class: 'facts facts-run' });
  const statusLine = h('p', { class: 'stream-state', id: 'stream-state', role: 'status', 'aria-live': 'polite' });
  // What Kubernetes did with the pod while the run waited to start (its Events), one line each.
  const podEvents = h('ol', { class: 'pod-events', id: 'pod-events', 'aria-label': 'Pod events', hidden: true });
  let eventsShown = 0;
  const cancelBtn = h('button', { type: 'button', class: 'btn btn-danger', id: 'cancel-run' }, 'Cancel run');
  const retryBtn = h('button', { type: 'button', class: 'btn btn-small', hidden: true }, 'Reconnect');
  const actionError = h('div', { 'aria-live': 'assertive' });
  const shareInput = h('input', {
    id: 'share-url',
    type: 'text',
    readonly: true,
    value: location.href,
    class: 'mono',
    'aria-label': 'Shareable link to this run',
  });
  const copyBtn = h('button', { type: 'button', class: 'btn btn-small' }, 'Copy link');
  copyBtn.addEventListener(
    'click',
    onAsync(async () => {
      shareInput.select();
      try {
        await navigator.clipboard.writeText(shareInput.value);
        copyBtn.textContent = 'Copied';
      } catch {
        copyBtn.textContent = 'Press Ctrl+C';
      }
      setTimeout(() => (copyBtn.textContent = 'Copy link'), 2000);
    }),
  );
  const again = `/run?${new URLSearchParams([['namespace', run.namespace], ['deployment', run.deployment], ...run.command.map((a) => ['arg', a])])}`;

  // Find in the output, and the stored output as a file (GET /api/runs/ID/log).
  const searchInput = h('input', { type: 'search', id: 'log-search', placeholder: 'Find in output', 'aria-label': 'Find in output', class: 'log-search' });
  const searchPrev = h('button', { type: 'button', class: 'btn btn-small', id: 'search-prev', 'aria-label': 'Previous match' }, '↑');
  const searchNext = h('button', { type: 'button', class: 'btn btn-small', id: 'search-next', 'aria-label': 'Next match' }, '↓');
  const searchCount = h('span', { class: 'help', id: 'search-count', 'aria-live': 'polite' });
  const logUrl = `/api/runs/${id}/log`;
  const logTools = h(
    'div',
    { class: 'log-tools' },
    h('div', { class: 'log-find', role: 'search' }, searchInput, searchPrev, searchNext, searchCount),
    h(
      'div',
      { class: 'log-downloads' },
      h('a', { class: 'btn btn-small', id: 'download-log', href: logUrl, download: `oddjob-${id}.log` }, 'Download output'),
      run.tty
        ? null
        : h('a', { class: 'btn btn-small', id: 'download-stderr', href: `${logUrl}?stream=stderr`, download: `oddjob-${id}-stderr.log` }, 'stderr only'),
      run.tty ? null : h('span', { class: 'help legend' }, h('span', { class: 'stderr-swatch' }), 'stderr'),
    ),
  );

  // The wrapper carries padding and border; xterm gets a plain box (it sizes from it).
  const termInner = h('div', { class: 'terminal-inner' });
  const termHost = h('div', { class: 'run-terminal', id: 'terminal' }, termInner);
  const inputHelp = takesInput
    ? h(
        'p',
        { class: 'help', id: 'terminal-help' },
        run.tty
          ? 'Interactive with a TTY: click the terminal (or Tab to it) and type; keys go straight to the program. Ctrl+D ends input for most programs.'
          : 'Interactive: click the terminal (or Tab to it) and type; Enter sends the line. Ctrl+D sends end of input.',
      )
    : run.interactive
      ? h('p', { class: 'help' }, `Only ${run.user}, who started this run, can type into it.`)
      : null;

  main.append(
    h(
      'div',
      { class: 'page-head' },
      ctx.heading(`Run ${id}`, ' ', badgeSlot),
      h('div', { class: 'head-actions' }, cancelBtn, link(again, 'Run again…', { class: 'btn' })),
    ),
    facts,
    h('div', { class: 'share' }, shareInput, copyBtn),
    actionError,
    h('div', { class: 'terminal-bar' }, statusLine, retryBtn),
    podEvents,
    logTools,
    termHost,
    inputHelp ?? '',
  );

  // xterm is most of the UI's weight: loaded only on this page.
  const { createTerminal } = await import('./terminal.js');
  const t = createTerminal(termInner, { tty: run.tty, input: takesInput, label: takesInput ? `Terminal input for run ${id}` : `Output of run ${id}` });
  const { term } = t;
  const search = new TerminalSearch(term);
  const find = (direction: 1 | -1) => (searchCount.textContent = search.step(searchInput.value, direction));
  searchInput.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    e.preventDefault();
    find(e.shiftKey ? -1 : 1);
  });
  searchInput.addEventListener('input', () => find(1));
  searchPrev.addEventListener('click', () => find(-1));
  searchNext.addEventListener('click', () => find(1));

  let progress = '';
  let conn: ConnState = 'connecting';
  let connDetail = '';
  const drawStatusLine = () => {
    const ended = TERMINAL.includes(run.status);
    let text: string;
    if (conn === 'failed') text = `Stream stopped: ${connDetail}`;
    else if (conn === 'reconnecting') text = `Connection lost (${connDetail || 'reconnecting'}); reconnecting and resuming at byte ${stream.received}…`;
    else if (ended) text = `Ended: ${run.status}${run.exitCode !== undefined ? `, exit code ${run.exitCode}` : ''}${run.message ? ` — ${run.message}` : ''}`;
    else if (run.status === 'running') text = takesInput ? 'Running — live. Type into the terminal.' : 'Running — output is live.';
    else text = progress || 'Waiting for the pod to start…';
    statusLine.textContent = shown(text);
    statusLine.dataset.state = conn;
    retryBtn.hidden = conn !== 'failed' || ended;
  };

  const drawFacts = () => {
    clear(badgeSlot, statusBadge(run.status));
    const ended = TERMINAL.includes(run.status);
    const dur = run.startedAt ? (run.finishedAt ? Date.parse(run.finishedAt) : Date.now()) - Date.parse(run.startedAt) : undefined;
    const item = (k: string, v: Node | string, testid?: string) => [h('dt', null, k), h('dd', testid ? { 'data-testid': testid } : null, v)];
    clear(
      facts,
      item('Deployment', `${run.namespace}/${run.deployment}`),
      item('Container', run.container),
      item('Image', h('code', null, run.image)),
      item('Command', h('code', { class: 'cmd' }, shellJoin(run.command))),
      item('Started by', run.user),
      run.reason ? item('Reason', run.reason) : null,
      item('Mode', run.interactive ? (run.tty ? 'interactive, TTY' : 'interactive') : 'output only'),
      item('Created', formatTime(run.createdAt)),
      item('Duration', ended || run.startedAt ? formatDuration(dur) : 'not started', 'duration'),
      item('Exit code', run.exitCode !== undefined ? String(run.exitCode) : ended ? '—' : 'not yet', 'exit-code'),
      item(
        'Output',
        run.outputExpiredAt
          ? `deleted ${formatTime(run.outputExpiredAt)} (kept for a limited time; the audit log keeps the rest)`
          : `${formatBytes(run.outputBytes)}${run.outputTruncated ? ' (truncated: the stored output hit its limit)' : ''}`,
      ),
      run.outputLost
        ? item('Output lost', run.outputLost < 0 ? 'some (amount unknown): read too late, after the kubelet rotated the log' : formatBytes(run.outputLost))
        : null,
      run.message ? item('Message', run.message) : null,
      run.progress ? item('Progress', `${run.progress.message} (${formatTime(run.progress.time)})`, 'progress') : null,
    );
    cancelBtn.hidden = ended;
    drawStatusLine();
  };

  let refreshing: Promise<void> | undefined;
  const refresh = () =>
    (refreshing ??= api
      .getRun(id)
      .then((r) => {
        run = r;
        drawFacts();
      })
      .catch(() => undefined)
      .finally(() => (refreshing = undefined)));

  const stream = new RunStream(
    id,
    {
      output: (data, channel) => {
        // stderr in the terminal's red, so it stands apart from stdout (a TTY run has one stream).
        if (channel === 2 && !run.tty) term.write(STDERR_ON);
        term.write(data);
        if (channel === 2 && !run.tty) term.write(STDERR_OFF);
      },
      progress: (m, event) => {
        // A gap in the output is shown where it happened, not only in the status line.
        if (!event && m.startsWith('OUTPUT LOST')) term.write(`\r\n\x1b[1;31m[oddjob] ${m}\x1b[0m\r\n`);
        if (event && event.seq > eventsShown) {
          eventsShown = event.seq;
          podEvents.append(h('li', { class: event.type === 'Warning' ? 'warning' : null, 'data-reason': event.reason }, m));
          podEvents.hidden = false;
        }
        progress = m;
        drawStatusLine();
      },
      running: () => {
        if (run.status === 'pending') run = { ...run, status: 'running' };
        drawFacts();
        void refresh();
        if (takesInput) term.focus();
      },
      end: (f) => {
        run = {
          ...run,
          status: f.status as Run['status'],
          exitCode: f.exitCode,
          message: f.message,
          outputBytes: f.outputBytes,
          outputTruncated: f.outputTruncated,
          outputLost: f.outputLost,
        };
        drawFacts();
        void refresh();
        term.options.disableStdin = true;
        term.options.cursorBlink = false;
      },
      state: (s, detail) => {
        conn = s;
        connDetail = detail ?? '';
        drawStatusLine();
      },
    },
    { tty: run.tty },
  );
  retryBtn.addEventListener('click', () => stream.retryNow());

  if (takesInput) {
    term.onResize(({ cols, rows }) => stream.resize(cols, rows));
    stream.resize(term.cols, term.rows);
    let line = '';
    term.onData((d) => {
      if (TERMINAL.includes(run.status)) return;
      if (run.tty) return stream.sendStdin(d);
      // No TTY on the other side: this page is the line discipline (echo, backspace, Enter, Ctrl-D).
      for (const ch of d) {
        if (ch === '\r' || ch === '\n') {
          term.write('\r\n');
          stream.sendStdin(`${line}\n`);
          line = '';
        } else if (ch === '\x7f' || ch === '\b') {
          if (line) {
            line = [...line].slice(0, -1).join('');
            term.write('\b \b');
          }
        } else if (ch === '\x04') {
          if (line) stream.sendStdin(line);
          line = '';
          stream.sendEof();
        } else if (ch === '\x15') {
          term.write('\b \b'.repeat([...line].length));
          line = '';
        } else if (ch >= ' ') {
          line += ch;
          term.write(ch);
        }
      }
    });
  }

  let confirmTimer: ReturnType<typeof setTimeout> | undefined;
  cancelBtn.addEventListener(
    'click',
    onAsync(async () => {
      if (cancelBtn.dataset.confirm !== '1') {
        cancelBtn.dataset.confirm = '1';
        cancelBtn.textContent = 'Confirm cancel';
        confirmTimer = setTimeout(() => {
          cancelBtn.dataset.confirm = '';
          cancelBtn.textContent = 'Cancel run';
        }, 5000);
        return;
      }
      clearTimeout(confirmTimer);
      cancelBtn.disabled = true;
      cancelBtn.textContent = 'Cancelling…';
      try {
        run = await api.cancelRun(id);
        drawFacts();
      } catch (err) {
        clear(actionError, errorBox(err, 'Could not cancel the run'));
      } finally {
        cancelBtn.disabled = false;
        cancelBtn.dataset.confirm = '';
        cancelBtn.textContent = 'Cancel run';
      }
    }),
  );

  const ticker = setInterval(() => {
    if (run.startedAt && !TERMINAL.includes(run.status)) drawFacts();
  }, 1000);

  drawFacts();
  stream.start();
  // For tests and curious people: how many bytes this page has, and how many sockets it used.
  termHost.dataset.runId = id;
  const exposeCounters = setInterval(() => {
    termHost.dataset.received = String(stream.received);
    termHost.dataset.connections = String(stream.connections);
  }, 250);

  return () => {
    clearInterval(ticker);
    clearInterval(exposeCounters);
    clearTimeout(confirmTimer);
    stream.stop();
    t.dispose();
  };
};
