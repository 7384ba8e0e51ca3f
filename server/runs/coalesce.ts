// Joins the small chunks a followed container log arrives in before they are stored
// and sent. The kubelet flushes its log response after every line, so a chatty
// process reaches us as ~100-byte chunks: 2 million of them for 200 MiB. Each chunk
// used to cost a SQLite transaction, a WebSocket frame per viewer and a write in every
// CLI; joined per event-loop turn (at most MAX_BYTES) they cost that once per turn.
// Order is kept: consecutive chunks of one channel are joined, a chunk of the other
// channel starts a new piece.
import type { OutputChunk } from '../store/output.js';

/** A batch is flushed at once when it reaches this many bytes. */
export const MAX_COALESCED_BYTES = 256 * 1024;

export class OutputCoalescer {
  private pieces: { channel: 1 | 2; parts: Buffer[]; bytes: number }[] = [];
  private bytes = 0;
  private scheduled: NodeJS.Immediate | undefined;

  constructor(
    private readonly sink: (chunks: OutputChunk[]) => void,
    private readonly maxBytes = MAX_COALESCED_BYTES,
  ) {}

  push(channel: 1 | 2, data: Buffer): void {
    if (data.length === 0) return;
    const last = this.pieces.at(-1);
    if (last && last.channel === channel) {
      last.parts.push(data);
      last.bytes += data.length;
    } else {
      this.pieces.push({ channel, parts: [data], bytes: data.length });
    }
    this.bytes += data.length;
    if (this.bytes >= this.maxBytes) this.flush();
    else this.scheduled ??= setImmediate(() => this.flush());
  }

  /** Hands everything pending to the sink now (before a stream's end is acted on). */
  flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    if (this.pieces.length === 0) return;
    const pieces = this.pieces;
    this.pieces = [];
    this.bytes = 0;
    this.sink(pieces.map((p) => ({ channel: p.channel, data: p.parts.length === 1 ? p.parts[0]! : Buffer.concat(p.parts, p.bytes) })));
  }

  /** Drops what is pending (the server is shutting down and the stores are closing). */
  discard(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    this.pieces = [];
    this.bytes = 0;
  }
}
