// What a stream viewer sends *to* the server, checked frame by frame. The peer is
// untrusted: anything outside the protocol (protocol/frames.ts) closes that one
// socket with a close code that says why, and a log line; nothing else notices.
// stdin is the only bulk input, and it is bounded: when the run's input backlog is
// full the socket is paused (TCP pushes back on the sender) until the remote
// program has read it, so no client can make the server hold its input in memory.
import type { WebSocket } from 'ws';
import { Channel, CloseCode, ResizeFrame } from '../../protocol/frames.js';
import type { Logger } from '../logger.js';
import type { ViewerHandle } from '../services.js';

/** stdin accepted before the run's input is attached; past it the socket is paused. */
export const EARLY_STDIN_BYTES = 256 << 10;
/** Resize frames applied at most this often; a flood collapses to the last size. */
const RESIZE_INTERVAL_MS = 50;
/** {"cols":1000,"rows":1000} is 25 bytes; anything much longer is not a resize. */
const MAX_RESIZE_BYTES = 256;
/** Pings answered per second before the peer is taken for a flood. */
const MAX_PINGS_PER_SECOND = 20;

/** Close codes for what a peer can get wrong (RFC 6455 §7.4.1). */
const UNSUPPORTED_DATA = 1003;

export class ViewerInput {
  private handle: ViewerHandle | undefined;
  private early: Buffer[] = [];
  private earlyBytes = 0;
  private waiting = false;
  private closed = false;
  private pendingSize: ResizeFrame | undefined;
  private resizeTimer: NodeJS.Timeout | undefined;
  private lastResizeAt = 0;
  private pingWindow = { start: 0, count: 0 };

  constructor(
    private readonly ws: WebSocket,
    private readonly who: { run: string; user: string },
    private readonly logger: Logger,
  ) {
    // ws answers pings itself unless told not to; a peer that pings without reading
    // would then grow our send buffer by a pong per ping (the server runs with autoPong off).
    ws.on('ping', (data: Buffer) => this.ping(data));
  }

  receive(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    if (!isBinary) return this.violation(UNSUPPORTED_DATA, 'text frames are not part of the stream protocol; send binary frames');
    if (data.length === 0) return this.violation(CloseCode.policy, 'empty frame: every frame starts with its channel byte');
    switch (data[0]) {
      case Channel.stdin:
        return this.stdin(data.subarray(1));
      case Channel.resize:
        return this.resize(data.subarray(1));
      default:
        return this.violation(CloseCode.policy, `channel ${data[0]} is not accepted from a viewer (only 0 stdin and 4 resize)`);
    }
  }

  /** The run service accepted the viewer: early stdin goes through now. */
  attached(handle: ViewerHandle): void {
    if (this.closed) return handle.detach();
    this.handle = handle;
    const early = this.early;
    this.early = [];
    this.earlyBytes = 0;
    for (const chunk of early) if (!this.closed) this.stdin(chunk);
    if (this.pendingSize && !this.resizeTimer) this.applyResize();
    if (!this.waiting && this.ws.isPaused) this.ws.resume();
  }

  detach(): void {
    this.closed = true;
    this.early = [];
    clearTimeout(this.resizeTimer);
    this.handle?.detach();
  }

  private stdin(data: Buffer) {
    const h = this.handle;
    if (!h) {
      // The viewer typed before its attach finished: keep it, within a bound.
      this.early.push(data);
      this.earlyBytes += data.length;
      if (this.earlyBytes > EARLY_STDIN_BYTES) this.ws.pause();
      return;
    }
    if (!h.accepts.stdin) {
      return this.violation(CloseCode.policy, 'this run does not take input from you (only its owner may type into an interactive run)');
    }
    if (h.stdin(data) || this.waiting) return;
    // The remote program is not reading as fast as we receive: stop reading the socket.
    this.waiting = true;
    this.ws.pause();
    void h.stdinDrained().then(() => {
      this.waiting = false;
      if (!this.closed) this.ws.resume();
    });
  }

  private resize(body: Buffer) {
    if (body.length > MAX_RESIZE_BYTES) return this.violation(CloseCode.policy, `resize frame over ${MAX_RESIZE_BYTES} bytes`);
    let size: ResizeFrame;
    try {
      size = ResizeFrame.parse(JSON.parse(body.toString('utf8')));
    } catch {
      return this.violation(CloseCode.policy, 'malformed resize frame: send {"cols":N,"rows":N} with 1..1000');
    }
    this.pendingSize = size;
    if (!this.handle || this.resizeTimer) return;
    const wait = this.lastResizeAt + RESIZE_INTERVAL_MS - Date.now();
    if (wait <= 0) this.applyResize();
    else this.resizeTimer = setTimeout(() => this.applyResize(), wait);
  }

  private applyResize() {
    this.resizeTimer = undefined;
    const size = this.pendingSize;
    this.pendingSize = undefined;
    if (!size || this.closed || !this.handle?.accepts.resize) return;
    this.lastResizeAt = Date.now();
    this.handle.resize(size);
  }

  private ping(data: Buffer) {
    if (this.closed) return;
    const now = Date.now();
    if (now - this.pingWindow.start >= 1000) this.pingWindow = { start: now, count: 0 };
    if (++this.pingWindow.count > MAX_PINGS_PER_SECOND) {
      return this.violation(CloseCode.policy, `more than ${MAX_PINGS_PER_SECOND} pings a second`);
    }
    // A pong is only owed to a peer that reads what we send.
    if (this.ws.bufferedAmount < 64 << 10) this.ws.pong(data);
  }

  private violation(code: number, reason: string) {
    if (this.closed) return;
    this.closed = true;
    this.logger.info({ ...this.who, code, reason }, 'stream closed: protocol violation');
    this.ws.close(code, reason);
    // A peer that does not answer our close frame is not waited for.
    setTimeout(() => this.ws.terminate(), 5_000).unref();
    this.detach();
  }
}
