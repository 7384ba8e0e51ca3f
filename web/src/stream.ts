// One run's output stream over WebSocket, the browser twin of cli/stream.ts
// (protocol/frames.ts): binary messages whose first byte is the channel.
// `received` counts output bytes (channels 1+2) handed to the terminal; after a
// drop we reconnect with ?from=received, so nothing is lost or shown twice.
//
// Keepalive: the server pings every 25 s and browsers answer pings by
// themselves (the test proves an idle socket survives several ping rounds), so
// no app-level heartbeat is needed. A browser cannot see pings, so a silently
// dead path is noticed by the browser's own TCP handling; a refused reconnect
// (signed out, run gone) is told apart by asking the HTTP API.
import type { StatusFrame } from '../../protocol/frames.js';
import { backoffDelay } from '../../protocol/backoff.js';
import { Channel, CloseCode, frameBytes } from '../../protocol/wire.js';
import { api, ApiError } from './api.js';

export type ConnState = 'connecting' | 'live' | 'reconnecting' | 'done' | 'failed';

export interface StreamHandlers {
  output(data: Uint8Array, channel: 1 | 2): void;
  progress(message: string, event?: { seq: number; reason: string; type: 'Normal' | 'Warning' }): void;
  running(podName: string): void;
  end(frame: Extract<StatusFrame, { kind: 'end' }>): void;
  state(state: ConnState, detail?: string): void;
}

const RETRY_INITIAL_MS = 200;
const RETRY_MAX_MS = 5_000;
const GIVE_UP_MS = 60_000;
const HEALTHY_AFTER_MS = 5_000;
const enc = new TextEncoder();

export class RunStream {
  received = 0;
  connections = 0;
  private ws: WebSocket | undefined;
  private running = false;
  private finished = false;
  private stopped = false;
  private pending: Uint8Array[] = [];
  private eofPending = false;
  private attempt = 0;
  private failingSince: number | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private lastSize: { cols: number; rows: number } | undefined;

  constructor(
    private readonly runId: string,
    private readonly h: StreamHandlers,
    private readonly opts: { tty: boolean },
  ) {}

  start() {
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.ws?.close(CloseCode.normal);
    this.ws = undefined;
  }

  /** Reconnect now (the "retry" button after giving up). */
  retryNow() {
    if (this.finished || this.stopped) return;
    clearTimeout(this.retryTimer);
    this.failingSince = undefined;
    this.attempt = 0;
    this.ws?.close(CloseCode.normal);
    this.connect();
  }

  /** Keystrokes or a line for the command; held until the container is attached. */
  sendStdin(data: string | Uint8Array) {
    if (this.finished) return;
    this.pending.push(typeof data === 'string' ? enc.encode(data) : data);
    this.flush();
  }

  /** End of input (an empty stdin frame), like Ctrl-D at a cooked terminal. */
  sendEof() {
    this.eofPending = true;
    this.flush();
  }

  resize(cols: number, rows: number) {
    this.lastSize = { cols: clamp(cols), rows: clamp(rows) };
    this.sendSize();
  }

  private sendSize() {
    const ws = this.ws;
    if (!this.opts.tty || !this.running || !this.lastSize || ws?.readyState !== WebSocket.OPEN) return;
    ws.send(frameBytes(Channel.resize, enc.encode(JSON.stringify(this.lastSize))));
  }

  private flush() {
    const ws = this.ws;
    if (!this.running || ws?.readyState !== WebSocket.OPEN) return;
    while (this.pending.length) ws.send(frameBytes(Channel.stdin, this.pending.shift()!));
    if (this.eofPending) {
      ws.send(frameBytes(Channel.stdin, new Uint8Array(0)));
      this.eofPending = false;
    }
  }

  private connect() {
    if (this.stopped || this.finished) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${proto}//${location.host}/api/runs/${encodeURIComponent(this.runId)}/stream?from=${this.received}&follow=1`;
    const startedWith = this.received;
    let openedAt: number | undefined;
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.connections++;
    this.h.state(this.connections === 1 ? 'connecting' : 'reconnecting');
    let settled = false;
    let fatal: string | undefined;
    let retryReason: string | undefined;

    ws.onopen = () => {
      openedAt = Date.now();
      this.h.state('live');
    };
    ws.onmessage = (ev: MessageEvent<ArrayBuffer>) => {
      if (this.ws !== ws) return;
      const msg = new Uint8Array(ev.data);
      if (msg.length === 0) return;
      const ch = msg[0];
      if (ch === Channel.stdout || ch === Channel.stderr) {
        const data = msg.subarray(1);
        if (!data.length) return;
        this.received += data.length;
        this.h.output(data, ch);
        return;
      }
      if (ch !== Channel.status) return;
      let s: StatusFrame;
      try {
        s = JSON.parse(new TextDecoder().decode(msg.subarray(1))) as StatusFrame;
      } catch {
        fatal = 'the server sent a status frame this page cannot read';
        ws.close(CloseCode.normal);
        return;
      }
      switch (s.kind) {
        case 'progress':
          this.h.progress(s.message, s.event);
          break;
        case 'running':
          this.running = true;
          this.h.running(s.podName);
          this.sendSize();
          this.flush();
          break;
        case 'end':
          this.finished = true;
          this.running = false;
          this.h.end(s);
          this.h.state('done');
          break;
        case 'error':
          if (s.code === 'unavailable') retryReason = s.message;
          else fatal = s.message;
          break;
      }
    };
    ws.onclose = (ev) => {
      if (settled || this.ws !== ws) return;
      settled = true;
      this.ws = undefined;
      this.running = false;
      if (this.finished || this.stopped) return;
      if (fatal) return this.h.state('failed', fatal);
      if (ev.code === CloseCode.policy) return this.h.state('failed', ev.reason || 'the server refused the stream');
      if (ev.code === CloseCode.notFound) return this.h.state('failed', ev.reason || `run ${this.runId} not found`);
      const healthy = this.received > startedWith || (openedAt !== undefined && Date.now() - openedAt >= HEALTHY_AFTER_MS);
      const why = retryReason ?? (openedAt === undefined ? 'could not connect' : `connection closed (${ev.code})`);
      void this.scheduleRetry(healthy, why, openedAt === undefined);
    };
  }

  private async scheduleRetry(healthy: boolean, why: string, refused: boolean) {
    if (healthy) {
      this.attempt = 0;
      this.failingSince = undefined;
    }
    const now = Date.now();
    this.failingSince ??= now;
    if (refused) {
      // The browser hides why an upgrade was refused; the HTTP API tells us (401, 404, ...).
      try {
        await api.getRun(this.runId);
      } catch (err) {
        if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
          this.h.state('failed', err.message);
          return;
        }
      }
    }
    if (this.stopped || this.finished) return;
    if (now - this.failingSince >= GIVE_UP_MS) {
      this.h.state('failed', `lost the output stream and could not get it back for ${GIVE_UP_MS / 1000}s (${why})`);
      return;
    }
    this.h.state('reconnecting', why);
    this.retryTimer = setTimeout(() => this.connect(), backoffDelay(this.attempt++, { baseMs: RETRY_INITIAL_MS, capMs: RETRY_MAX_MS }));
  }
}

const clamp = (n: number) => Math.min(1000, Math.max(1, Math.floor(n)));
