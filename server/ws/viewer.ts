// One WebSocket viewer of a run's output. Frames go out in order; past the socket's
// high-water mark they wait in a queue, so a briefly slow viewer loses nothing.
// The queue is bounded: a viewer that stops reading (a stalled browser tab, a
// paused CLI) must not make the server hold a chatty run's whole output in memory.
// Past the bound the queue is dropped and the socket closed with `tooSlow`; the
// client reconnects with the bytes it has and resumes from the stored output.
import type { WebSocket } from 'ws';
import { CloseCode, encodeFrame, encodeStatus, type StatusFrame } from '../../protocol/frames.js';
import type { Viewer } from '../services.js';

// Together these bound what one viewer can make the server hold (about 6 MiB, freed
// when it is cut loose): a few dozen sockets that never read, each replaying a run's
// stored output, must not add up to the server's memory limit. A viewer that reads
// at all keeps up (loopback and LAN drain megabytes in milliseconds); one cut loose
// reconnects and resumes from the bytes it has, losing nothing.
const HIGH_WATER = 2 << 20;
/** Bytes queued for one viewer beyond the socket's own buffer before it is cut loose. */
export const MAX_QUEUED_BYTES = 4 << 20;

export class SocketViewer implements Viewer {
  private queue: Buffer[] = [];
  private queued = 0;
  private closing = false;
  private draining = false;
  private cut = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly maxQueuedBytes = MAX_QUEUED_BYTES,
  ) {}

  output(channel: 1 | 2, data: Buffer) {
    this.send(encodeFrame(channel, data));
  }

  status(frame: StatusFrame) {
    this.send(encodeStatus(frame));
  }

  backlog() {
    return this.queued + this.ws.bufferedAmount;
  }

  close() {
    this.closing = true;
    this.flush();
  }

  ready(): boolean {
    return !this.cut && this.ws.readyState === this.ws.OPEN && this.queue.length === 0 && this.ws.bufferedAmount <= HIGH_WATER;
  }

  onReady(cb: () => void) {
    // ws has no event for "buffered amount went down"; the drain loop below polls too.
    const tick = () => {
      if (this.cut || this.ws.readyState !== this.ws.OPEN) return;
      if (this.ready()) cb();
      else setTimeout(tick, 10);
    };
    setTimeout(tick, 10);
  }

  private send(frame: Buffer) {
    if (this.cut || this.ws.readyState !== this.ws.OPEN) return;
    if (this.queue.length || this.ws.bufferedAmount > HIGH_WATER) {
      if (this.queued + frame.length > this.maxQueuedBytes) {
        // What reached the socket arrives before the close frame, so the client's byte
        // count is exact and its reconnect resumes right after it.
        this.cut = true;
        this.queue = [];
        this.queued = 0;
        this.ws.close(CloseCode.tooSlow, `this viewer fell more than ${this.maxQueuedBytes >> 20} MiB behind; reconnect to resume`);
        return;
      }
      this.queue.push(frame);
      this.queued += frame.length;
      this.scheduleDrain();
      return;
    }
    this.ws.send(frame);
  }

  private scheduleDrain() {
    if (this.draining) return;
    this.draining = true;
    const tick = () => {
      if (this.cut || this.ws.readyState !== this.ws.OPEN) {
        this.queue = [];
        this.queued = 0;
        this.draining = false;
        return;
      }
      while (this.queue.length && this.ws.bufferedAmount <= HIGH_WATER) {
        const frame = this.queue.shift()!;
        this.queued -= frame.length;
        this.ws.send(frame);
      }
      if (this.queue.length) setTimeout(tick, 10);
      else {
        this.draining = false;
        if (this.closing) this.flush();
      }
    };
    setTimeout(tick, 10);
  }

  private flush() {
    if (!this.closing || this.queue.length || this.draining) return;
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(CloseCode.normal);
  }
}
