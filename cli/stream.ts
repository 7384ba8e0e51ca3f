// Follows one run's output over its WebSocket stream (protocol/frames.ts):
// stdout/stderr bytes go to our stdout/stderr untouched, progress goes to stderr
// as `oddjob: ...`, and a dropped connection resumes from the number of output
// bytes already written, so nothing is lost or printed twice. For interactive
// runs it also carries stdin (channel 0) and the terminal size (channel 4).
import type { Readable, Writable } from 'node:stream';
import WebSocket from 'ws';
import { backoffDelay } from '../protocol/backoff.js';
import { Channel, CloseCode, decodeFrame, encodeFrame, encodeResize, type StatusFrame } from '../protocol/frames.js';
import { TERMINAL_STATUSES, type Run } from '../protocol/api.js';
import { escapeDisplay } from '../protocol/display.js';
import { apiErrorFrom, networkReason, type OddjobClient } from './client.js';
import type { EndFrame } from './lib/exit.js';

/** The stream ended without an `end` frame and will not come back (error frame, refused, gave up). */
export class StreamError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'StreamError';
  }
}

/** Delays are protocol/backoff.ts's full jitter: the ceiling starts at initialMs and doubles up to maxMs. */
export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
  /**
   * After this long without a healthy connection, ask the server whether the run
   * is still alive: if it is, keep trying (and say so); if it ended, or the server
   * cannot say, give up with a hint.
   */
  giveUpMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { initialMs: 200, maxMs: 5_000, giveUpMs: 60_000 };

export interface InteractiveOptions {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  /** The run has a TTY: raw mode locally (Ctrl-C goes to the remote) and resize forwarding. */
  tty: boolean;
  /** The run keeps stdin open: forward our stdin. */
  stdinOpen: boolean;
}

export interface FollowOptions {
  /** getRun, when given, lets a lost stream be retried for as long as the run is alive. */
  client: Pick<OddjobClient, 'streamUrl' | 'headers'> & Partial<Pick<OddjobClient, 'getRun'>>;
  runId: string;
  /** Keep streaming live until the run ends (false: replay what is stored and stop). */
  follow: boolean;
  /** Output bytes the caller already has. */
  from?: number;
  stdout?: Writable & { columns?: number; rows?: number; isTTY?: boolean };
  stderr?: Writable;
  interactive?: InteractiveOptions;
  /** Aborting stops following (detach); the run itself is not touched. */
  signal?: AbortSignal;
  retry?: Partial<RetryPolicy>;
  /** Called once when the command's container is running. */
  onRunning?: (podName: string) => void;
  /** A run still starting after this long gets a notice saying where it is stuck (default 20 s). */
  slowStartMs?: number;
}

export type FollowResult =
  | { kind: 'end'; end: EndFrame; received: number }
  /** follow=false and the run has not ended: everything stored so far was printed. */
  | { kind: 'closed'; received: number }
  | { kind: 'detached'; received: number };

type Attempt =
  | { kind: 'end'; end: EndFrame }
  | { kind: 'closed' }
  | { kind: 'detached' }
  | { kind: 'fatal'; error: Error }
  | { kind: 'retry'; reason: string; healthy: boolean };

// A connection that delivered output or stayed up this long was not "failing":
// the backoff and the give-up clock start over.
const HEALTHY_AFTER_MS = 5_000;
// The server pings; we ping too, so a silently dead path (NAT, proxy) is noticed.
const KEEPALIVE_MS = 30_000;
const DEAD_AFTER_MS = 75_000;
const STDIN_HIGH_WATER = 1 << 20;
/** stdin bytes per frame. */
const STDIN_FRAME_BYTES = 32 << 10;

export async function followRun(opts: FollowOptions): Promise<FollowResult> {
  return new RunFollower(opts).run();
}

class RunFollower {
  private received: number;
  private readonly stdout: NonNullable<FollowOptions['stdout']>;
  private readonly stderr: Writable;
  private readonly retry: RetryPolicy;
  private lastProgress = '';
  private eventsShown = 0;
  private readonly startedAt = Date.now();
  /** On a terminal: the progress is one line, rewritten with the elapsed time, until the command runs. */
  private statusShown = false;
  private statusTimer: NodeJS.Timeout | undefined;
  private slowTimer: NodeJS.Timeout | undefined;
  private starting = true;
  private running = false;
  private ws: WebSocket | undefined;
  /** Settles the connection attempt in progress (used by abort and output errors). */
  private settleCurrent: ((a: Attempt) => void) | undefined;
  private outputError: Error | undefined;
  private readonly pendingStdin: Buffer[] = [];
  private pendingStdinBytes = 0;
  private stdinEnded = false;
  private stdinEofSent = false;
  private stdinWaiting = false;
  private disposers: Array<() => void> = [];

  constructor(private readonly opts: FollowOptions) {
    this.received = opts.from ?? 0;
    this.stdout = opts.stdout ?? process.stdout;
    this.stderr = opts.stderr ?? process.stderr;
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
  }

  private notice(line: string) {
    this.clearStatus();
    this.stderr.write(`oddjob: ${line}\n`);
    if (this.statusTimer) this.renderStatus();
  }

  private get tty(): boolean {
    return (this.stderr as Writable & { isTTY?: boolean }).isTTY === true;
  }

  private onProgress(raw: string, event?: { seq: number; type: string }) {
    // The server escapes what Kubernetes (or a neighbour writing Events) says; so do we.
    const message = escapeDisplay(raw);
    // Once the command runs, the server sends progress (not events) only to say something
    // about the output itself (missing here, or not replayable): always shown.
    if (!this.starting) return event ? undefined : this.notice(message);
    if (event) {
      // Each event about the pod is a step worth keeping: one line each, once each.
      if (event.seq <= this.eventsShown) return;
      this.eventsShown = event.seq;
      this.lastProgress = message;
      this.notice(`${event.type === 'Warning' ? 'warning: ' : ''}${message}`);
    }
    this.slowTimer ??= setTimeout(
      () => {
        if (this.starting) this.notice(`still starting after ${Math.round((this.opts.slowStartMs ?? 20_000) / 1000)} s: ${this.lastProgress}`);
      },
      Math.max(0, (this.opts.slowStartMs ?? 20_000) - (Date.now() - this.startedAt)),
    );
    this.slowTimer.unref();
    if (!this.tty) {
      // The server repeats the latest progress to every new connection.
      if (message !== this.lastProgress) this.notice(message);
      this.lastProgress = message;
      return;
    }
    this.lastProgress = message;
    this.renderStatus();
    this.statusTimer ??= setInterval(() => this.renderStatus(), 1000);
    this.statusTimer.unref();
  }

  private renderStatus() {
    const elapsed = Math.floor((Date.now() - this.startedAt) / 1000);
    this.stderr.write(`\r\x1b[2Koddjob: ${this.lastProgress} (${elapsed}s)`);
    this.statusShown = true;
  }

  private clearStatus() {
    if (!this.statusShown) return;
    this.stderr.write('\r\x1b[2K');
    this.statusShown = false;
  }

  /** The command runs, or the run is over: no more start-up progress. */
  private doneStarting() {
    this.starting = false;
    clearInterval(this.statusTimer);
    clearTimeout(this.slowTimer);
    this.statusTimer = undefined;
    this.clearStatus();
  }

  async run(): Promise<FollowResult> {
    const { signal } = this.opts;
    if (signal?.aborted) return { kind: 'detached', received: this.received };
    const onAbort = () => this.settleCurrent?.({ kind: 'detached' });
    signal?.addEventListener('abort', onAbort);
    this.disposers.push(() => signal?.removeEventListener('abort', onAbort));
    this.watchOutput(this.stdout);
    this.watchOutput(this.stderr);
    if (this.opts.interactive) this.startInteractive(this.opts.interactive);
    try {
      return await this.loop();
    } finally {
      this.doneStarting();
      for (const d of this.disposers.splice(0).reverse()) d();
    }
  }

  private async loop(): Promise<FollowResult> {
    let attempt = 0;
    let failingSince: number | undefined;
    let lostSince: number | undefined;
    let announced = false;
    for (;;) {
      const a = await this.connectOnce(() => {
        if (announced) this.notice('stream reconnected; resuming');
        announced = false;
      });
      switch (a.kind) {
        case 'end':
          return { kind: 'end', end: a.end, received: this.received };
        case 'closed':
          return { kind: 'closed', received: this.received };
        case 'detached':
          return { kind: 'detached', received: this.received };
        case 'fatal':
          throw a.error;
        case 'retry':
          break;
      }
      if (a.healthy) {
        attempt = 0;
        failingSince = undefined;
        lostSince = undefined;
      }
      let now = Date.now();
      failingSince ??= now;
      lostSince ??= now;
      if (now - failingSince >= this.retry.giveUpMs) {
        const run = await this.currentRun();
        now = Date.now();
        const lostFor = `${Math.round((now - lostSince) / 1000)}s`;
        if (run && !TERMINAL_STATUSES.includes(run.status)) {
          // The run is alive: its output is worth waiting for, however long the outage.
          this.notice(`run ${this.opts.runId} is still ${run.status}; still trying to get its output back (lost ${lostFor} ago: ${a.reason})`);
          failingSince = now;
        } else {
          throw new StreamError(
            'unreachable',
            `lost the output stream of run ${this.opts.runId} and could not get it back for ${lostFor} (last error: ${a.reason})` +
              (run ? `; the run has ended (${run.status})` : ''),
            run ? `its output: oddjob logs ${this.opts.runId}` : `the run may still be going: oddjob logs ${this.opts.runId} -f`,
          );
        }
      }
      // One quick silent retry covers a server restart or a proxy hiccup; say something only if that fails too.
      if (!announced && now > failingSince) {
        this.notice(`stream interrupted (${a.reason}); reconnecting...`);
        announced = true;
      }
      const delay = backoffDelay(attempt++, { baseMs: this.retry.initialMs, capMs: this.retry.maxMs });
      if (!(await sleep(delay, this.opts.signal))) return { kind: 'detached', received: this.received };
    }
  }

  /** The run as the server sees it now; undefined when it cannot say within 10 s. */
  private async currentRun(): Promise<Run | undefined> {
    const { client, runId } = this.opts;
    if (!client.getRun) return undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        client.getRun(runId),
        new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), 10_000);
        }),
      ]);
    } catch {
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  private connectOnce(onOpen: () => void): Promise<Attempt> {
    return new Promise<Attempt>((resolve) => {
      const { client, runId, follow } = this.opts;
      const startedWith = this.received;
      let openedAt: number | undefined;
      let heard = Date.now();
      let settled = false;
      let closeOutcome: Attempt | undefined;
      const queue: Buffer[] = [];
      let pumping = false;

      const ws = new WebSocket(client.streamUrl(runId, this.received, follow), {
        headers: client.headers(),
        handshakeTimeout: 15_000,
        perMessageDeflate: false,
      });
      this.ws = ws;

      const healthy = () => this.received > startedWith || (openedAt !== undefined && Date.now() - openedAt >= HEALTHY_AFTER_MS);

      const settle = (a: Attempt) => {
        if (settled) return;
        settled = true;
        clearInterval(keepalive);
        this.settleCurrent = undefined;
        if (this.ws === ws) this.ws = undefined;
        // Paused by backpressure: resume so the close handshake can be read.
        if (ws.isPaused) ws.resume();
        if (ws.readyState === WebSocket.OPEN) ws.close(CloseCode.normal);
        else if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
        resolve(a);
      };
      this.settleCurrent = settle;

      const keepalive = setInterval(() => {
        if (Date.now() - heard > DEAD_AFTER_MS) ws.terminate();
        else if (ws.readyState === WebSocket.OPEN) ws.ping();
      }, KEEPALIVE_MS);
      keepalive.unref();

      const pump = async () => {
        if (pumping) return;
        pumping = true;
        try {
          while (queue.length && !settled) {
            const outcome = await this.handle(queue.shift()!, ws);
            if (outcome) return settle(outcome);
          }
          if (closeOutcome) settle(closeOutcome);
        } finally {
          pumping = false;
        }
      };

      ws.on('open', () => {
        openedAt = Date.now();
        heard = openedAt;
        onOpen();
        // Input typed while we were reconnecting goes out now (the run was already running).
        this.flushStdin(ws);
      });
      ws.on('message', (data: WebSocket.RawData) => {
        heard = Date.now();
        queue.push(toBuffer(data));
        void pump();
      });
      ws.on('ping', () => (heard = Date.now()));
      ws.on('pong', () => (heard = Date.now()));
      let lastError = '';
      ws.on('error', (err) => {
        lastError = networkReason(err);
      });
      ws.on('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', () => undefined);
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const body = Buffer.concat(chunks).toString('utf8');
          // apiErrorFrom cannot reject: it reads a string we already hold.
          void apiErrorFrom({ status, statusText: res.statusMessage, text: async () => body }, 'GET', `/api/runs/${runId}/stream`).then((err) => {
            // 4xx will not get better by asking again; 5xx (restart, overload, proxy) might.
            if (status >= 400 && status < 500 && status !== 408 && status !== 429) settle({ kind: 'fatal', error: err });
            else settle({ kind: 'retry', reason: err.message, healthy: false });
          });
        });
      });
      ws.on('close', (code: number, reasonBuf: Buffer) => {
        const reason = reasonBuf.toString('utf8');
        if (code === CloseCode.normal && !follow) {
          closeOutcome = { kind: 'closed' };
        } else if (code === CloseCode.policy) {
          closeOutcome = { kind: 'fatal', error: new StreamError('forbidden', reason || `the server refused the stream of run ${runId}`) };
        } else if (code === CloseCode.notFound) {
          closeOutcome = { kind: 'fatal', error: new StreamError('not_found', reason || `run ${runId} not found`) };
        } else {
          const why = openedAt === undefined ? lastError || `connection failed (${code})` : `closed with code ${code}${reason ? `: ${reason}` : ''}`;
          closeOutcome = { kind: 'retry', reason: why, healthy: healthy() };
        }
        void pump();
      });
      // Our stdout went away between attempts: no point in connecting again.
      if (this.outputError) settle({ kind: 'fatal', error: this.outputError });
    });
  }

  /** One message, in order; resolves when its bytes were accepted by our output. */
  private async handle(msg: Buffer, ws: WebSocket): Promise<Attempt | undefined> {
    let frame;
    try {
      frame = decodeFrame(msg);
    } catch (err) {
      return { kind: 'fatal', error: new StreamError('protocol', `the server sent a frame this CLI cannot read: ${(err as Error).message}`) };
    }
    switch (frame.channel) {
      case Channel.stdout:
      case Channel.stderr: {
        if (frame.data.length === 0) return undefined;
        this.clearStatus();
        const out = frame.channel === Channel.stdout ? this.stdout : this.stderr;
        // Counted when handed to the stream: Writable keeps order, so a resume from here has no gap.
        this.received += frame.data.length;
        if (!out.write(frame.data)) {
          ws.pause();
          await drained(out, this.opts.signal);
          ws.resume();
        }
        return undefined;
      }
      case Channel.status:
        return this.onStatus(frame.status, ws);
      default:
        return undefined; // stdin and resize only flow from us to the server
    }
  }

  private onStatus(s: StatusFrame, ws: WebSocket): Attempt | undefined {
    switch (s.kind) {
      case 'progress':
        this.onProgress(s.message, s.event);
        return undefined;
      case 'running':
        this.doneStarting();
        if (!this.running) this.opts.onRunning?.(s.podName);
        this.running = true;
        // The server can only pass input to a container that is attached, so we hold it until now.
        this.sendSize(ws);
        this.flushStdin(ws);
        return undefined;
      case 'end':
        this.doneStarting();
        return { kind: 'end', end: s };
      case 'error':
        if (s.code === 'unavailable') return { kind: 'retry', reason: s.message, healthy: false };
        return { kind: 'fatal', error: new StreamError(s.code, s.message) };
    }
  }

  private watchOutput(out: Writable) {
    // EPIPE (`oddjob logs x | head`) must end the follow cleanly, not crash.
    const onError = (err: NodeJS.ErrnoException) => {
      this.outputError ??= new StreamError('output', `cannot write the output (${err.code ?? err.message})`);
      this.settleCurrent?.({ kind: 'fatal', error: this.outputError });
    };
    out.on('error', onError);
    this.disposers.push(() => out.off('error', onError));
  }

  // ── interactive ────────────────────────────────────────────────────────

  private startInteractive(io: InteractiveOptions) {
    const { stdin } = io;
    const stdout = this.stdout;
    if (io.tty) {
      const onResize = () => this.ws && this.running && this.sendSize(this.ws);
      stdout.on('resize', onResize);
      this.disposers.push(() => stdout.off('resize', onResize));
    }
    if (!io.stdinOpen) return;
    if (io.tty && stdin.isTTY && stdin.setRawMode) {
      // Raw: keystrokes (Ctrl-C included) go to the remote program, not to us.
      stdin.setRawMode(true);
      const restore = () => stdin.setRawMode?.(false);
      process.once('exit', restore);
      this.disposers.push(() => {
        restore();
        process.off('exit', restore);
      });
    }
    const onData = (chunk: Buffer | string) => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      this.pendingStdin.push(b);
      this.pendingStdinBytes += b.length;
      if (this.pendingStdinBytes > STDIN_HIGH_WATER) stdin.pause();
      if (this.ws) this.flushStdin(this.ws);
    };
    const onEnd = () => {
      this.stdinEnded = true;
      if (this.ws) this.flushStdin(this.ws);
    };
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
    this.disposers.push(() => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.pause();
    });
  }

  private flushStdin(ws: WebSocket) {
    if (!this.running || ws.readyState !== WebSocket.OPEN) return;
    const stdin = this.opts.interactive?.stdin;
    while (this.pendingStdin.length) {
      const chunk = this.pendingStdin.shift()!;
      // A frame must stay under the server's 64 KiB limit (it closes the stream with 1009
      // otherwise), and a pipe hands us 64 KiB reads: with the channel byte, one too many.
      for (let at = 0; at < chunk.length; at += STDIN_FRAME_BYTES) ws.send(encodeFrame(Channel.stdin, chunk.subarray(at, at + STDIN_FRAME_BYTES)));
    }
    this.pendingStdinBytes = 0;
    // An empty stdin frame is end-of-input, so `echo data | oddjob run -i ...` lets the command see EOF.
    if (this.stdinEnded && !this.stdinEofSent) {
      ws.send(encodeFrame(Channel.stdin, Buffer.alloc(0)));
      this.stdinEofSent = true;
    }
    if (!stdin || this.stdinEnded || this.stdinWaiting) return;
    if (ws.bufferedAmount > STDIN_HIGH_WATER) {
      // The socket is not keeping up (slow link): stop reading input until it does.
      stdin.pause();
      this.stdinWaiting = true;
      const t = setInterval(() => {
        if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount <= STDIN_HIGH_WATER / 2) {
          clearInterval(t);
          this.stdinWaiting = false;
          stdin.resume();
        }
      }, 20);
      this.disposers.push(() => clearInterval(t));
    } else if (stdin.isPaused()) {
      stdin.resume();
    }
  }

  private sendSize(ws: WebSocket) {
    const io = this.opts.interactive;
    if (!io?.tty || ws.readyState !== WebSocket.OPEN) return;
    const { columns, rows } = this.stdout;
    if (!columns || !rows) return;
    ws.send(encodeResize({ cols: clamp(columns), rows: clamp(rows) }));
  }
}

const clamp = (n: number) => Math.min(1000, Math.max(1, Math.floor(n)));

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function drained(out: Writable, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      out.off('error', done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    out.once('drain', done);
    out.once('close', done);
    out.once('error', done);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
