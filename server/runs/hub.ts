// Fan-out of one run's output: every chunk gets its absolute offset (stdout + stderr
// bytes in production order), is sent to the attached live viewers and written to
// the store, in that order of offsets. A viewer that joins at byte N replays stored
// bytes from N, then takes the chunks still on their way to the store from memory,
// then live bytes: no gap and no duplicate, although the store is asynchronous.
//
// How the switch from replay to live stays exact: `settled` is the offset below which
// every chunk's store write has finished (stored, or refused past the storage limit or
// by a failure). A store query issued when `settled` was S sees every stored byte
// below S; so when it finds nothing at the viewer's position P < S, the bytes [P, S)
// were never stored, and the viewer is told so. Once P >= settled, everything from P on
// is in `unsettled` (memory), and handing it over and switching to live happen in one
// synchronous step.
import { OutputFencedError, type OutputChunk, type OutputGap, type OutputStore, type WriteFence } from '../store/output.js';
import type { StatusFrame } from '../../protocol/frames.js';
import type { Viewer } from '../services.js';

interface Attached {
  viewer: Viewer;
  pos: number;
  /** Still receiving stored output; live chunks reach it through the store or `unsettled`. */
  replaying: boolean;
  /** The run ended while it replayed: the end frame it gets after its replay. */
  ended?: StatusFrame;
}

/** How long a failed store write is retried (by default) before its chunks are given up. */
const RETRY_FOR_MS = 60_000;

interface Placed extends OutputChunk {
  offset: number;
}

export class OutputHub {
  private readonly viewers = new Set<Attached>();
  private lastProgress: StatusFrame | undefined;
  /** The pod's Events so far, while the run starts: a viewer that joins late sees the steps too. */
  private readonly events: StatusFrame[] = [];
  private ended = false;
  /** The server is shutting down: a failed write is not retried. */
  private closed = false;
  /** Chunks at or past `settled`, oldest first: handed to viewers, not yet through the store. */
  private unsettled: Placed[] = [];
  private queued: { chunks: Placed[]; done: (err?: unknown) => void }[] = [];
  private writing: Promise<void> | undefined;
  private settled: number;
  private stored: { bytes: number; truncated: boolean };

  /** Gaps this hub recorded (the store has them too): told to viewers whose replay passed them meanwhile. */
  private readonly recordedGaps: OutputGap[] = [];
  /** Why a gap could not be stored (it was still told to the live viewers). */
  onGapError: ((err: unknown) => void) | undefined;

  /** Bytes produced so far (stored or, past the storage limit, only streamed). */
  total: number;

  private constructor(
    private readonly runId: string,
    private readonly store: OutputStore,
    size: { bytes: number; truncated: boolean },
    private readonly retryForMs: number,
    /** This replica's lease, when replicas share the run: a write after a takeover is refused. */
    private readonly fence?: WriteFence,
  ) {
    this.total = this.settled = size.bytes;
    this.stored = size;
  }

  /** The hub of a run, continuing after what the store already holds. */
  static async open(runId: string, store: OutputStore, opts: { retryForMs?: number; fence?: WriteFence } = {}): Promise<OutputHub> {
    return new OutputHub(runId, store, await store.size(runId), opts.retryForMs ?? RETRY_FOR_MS, opts.fence);
  }

  append(channel: 1 | 2, data: Buffer): Promise<void> {
    return this.appendMany([{ channel, data }]);
  }

  /**
   * Sends the chunks to the live viewers now and stores them (in order, batched with
   * whatever else waits for the store). Resolves once they are stored; rejects when the
   * store failed — the viewers still got them, and offsets stay those of the produced
   * output either way.
   */
  appendMany(chunks: readonly OutputChunk[]): Promise<void> {
    const placed: Placed[] = [];
    for (const { channel, data } of chunks) {
      if (data.length === 0) continue;
      placed.push({ channel, data, offset: this.total });
      this.total += data.length;
    }
    if (placed.length === 0) return Promise.resolve();
    this.unsettled.push(...placed);
    for (const c of placed) for (const a of this.viewers) deliver(a, c);
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ chunks: placed, done: (err) => (err === undefined ? resolve() : reject(err)) });
      this.writing ??= this.write();
    });
  }

  private async write(): Promise<void> {
    // Everything queued while a write is in flight goes in the next one: one transaction
    // per round trip, however small the chunks.
    await Promise.resolve();
    while (this.queued.length) {
      const batch = this.queued;
      this.queued = [];
      const chunks = batch.flatMap((b) => b.chunks);
      let failure: unknown;
      // A database that restarts (or fails over) comes back within seconds: retry the
      // same chunks meanwhile, so what the run printed is stored whole and at the same
      // offsets; only after retryForMs are they given up (viewers still got them).
      const giveUpAt = Date.now() + this.retryForMs;
      for (let attempt = 0; ; attempt++) {
        try {
          const r = await this.store.appendMany(this.runId, chunks, this.fence);
          this.stored = { bytes: r.bytes, truncated: r.truncated };
          failure = undefined;
          break;
        } catch (err) {
          failure = err ?? new Error('the output store failed');
          // Another replica holds the run now: retrying cannot help, and must not.
          if (this.closed || err instanceof OutputFencedError || Date.now() >= giveUpAt) break;
          await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
        }
      }
      const last = chunks.at(-1)!;
      this.settled = last.offset + last.data.length;
      const keep = this.unsettled.findIndex((c) => c.offset >= this.settled);
      this.unsettled = keep < 0 ? [] : this.unsettled.slice(keep);
      for (const b of batch) b.done(failure);
    }
    this.writing = undefined;
  }

  /** Stops retrying failed writes (the stores are about to close). */
  close(): void {
    this.closed = true;
  }

  /** Resolves once every chunk handed in so far has been through the store. */
  async settle(): Promise<void> {
    while (this.writing) await this.writing;
  }

  status(frame: StatusFrame): void {
    if (frame.kind === 'progress' || frame.kind === 'running') this.lastProgress = frame;
    if (frame.kind === 'progress' && frame.event && this.events.length < 64) this.events.push(frame);
    if (frame.kind === 'running') this.events.length = 0;
    for (const a of this.viewers) if (!a.replaying) a.viewer.status(frame);
  }

  /**
   * Replays stored output from `from`, then (when `follow`) keeps the viewer for live
   * output; `onReplayed` runs once the replay has been handed to the viewer (a viewer
   * that does not follow is ended there).
   *
   * The replay is paced by the viewer (Viewer.ready/onReady): stored output is read
   * only as fast as the viewer's socket drains, so a viewer that never reads costs a
   * socket's worth of memory, not a run's stored output.
   */
  attach(viewer: Viewer, from: number, follow: boolean, onReplayed?: () => void): () => void {
    const a: Attached = { viewer, pos: from, replaying: true };
    const live = follow && !this.ended;
    let detached = false;
    if (live) this.viewers.add(a);
    const ready = () => new Promise<void>((r) => ((viewer.ready?.() ?? true) ? r() : viewer.onReady ? viewer.onReady(r) : r()));

    // Gaps are shown where they happened, so a replay says what the live view said.
    const told = new Set<string>();
    let gaps: OutputGap[] = [];
    const tellGapsUpTo = (offset: number) => {
      for (const g of gaps) {
        if (g.offset < from || g.offset > offset || told.has(gapKey(g))) continue;
        told.add(gapKey(g));
        viewer.status(gapNotice(g));
      }
    };
    const replay = async () => {
      gaps = await this.store.gaps(this.runId);
      for (;;) {
        const chunks = this.store.read(this.runId, a.pos)[Symbol.asyncIterator]();
        let seen: number;
        for (;;) {
          await ready();
          if (detached) return;
          seen = this.settled;
          const next = await chunks.next();
          if (detached) return void chunks.return?.(undefined);
          if (next.done) break;
          tellGapsUpTo(a.pos);
          viewer.output(next.value.channel, next.value.data);
          a.pos += next.value.data.length;
        }
        // Settled before the last query, yet not in the store: never stored (past the
        // storage limit, or the store failed). A viewer that joins after it cannot get it.
        if (a.pos < seen) {
          const limit = `${Math.round(this.store.maxBytesPerRun / 1048576)} MiB`;
          viewer.status({
            kind: 'progress',
            message: `${seen - a.pos} bytes of output were only streamed live (past the ${limit} kept per run) and cannot be replayed; live output follows`,
          });
          a.pos = seen;
        }
        // Written meanwhile: read the store again.
        if (a.pos < this.settled) continue;
        // The rest is in memory; hand it over and go live in this same step.
        for (const c of this.unsettled) {
          const end = c.offset + c.data.length;
          if (end <= a.pos) continue;
          viewer.output(c.channel, c.offset < a.pos ? c.data.subarray(a.pos - c.offset) : c.data);
          a.pos = end;
        }
        return finish();
      }
    };
    const finish = () => {
      a.replaying = false;
      // Including those recorded while it replayed (live viewers were told of them then).
      gaps = [...gaps, ...this.recordedGaps].sort((x, y) => x.offset - y.offset);
      tellGapsUpTo(Number.MAX_SAFE_INTEGER);
      if (live && !a.ended) {
        for (const e of this.events) if (e !== this.lastProgress) viewer.status(e);
        if (this.lastProgress) viewer.status(this.lastProgress);
      }
      onReplayed?.();
      if (a.ended) {
        viewer.status(a.ended);
        viewer.close();
      }
    };
    replay().catch((err: unknown) => {
      if (detached) return;
      this.viewers.delete(a);
      viewer.status({ kind: 'error', code: 'unavailable', message: `the stored output could not be read: ${(err as Error).message}; reconnect to resume` });
      viewer.close();
    });
    return () => {
      detached = true;
      this.viewers.delete(a);
    };
  }

  /** Output is missing here (see capture.ts): recorded for replays and told to the viewers now. */
  gap(lost: number, why: string): void {
    const gap: OutputGap = { offset: this.total, lost, why };
    this.recordedGaps.push(gap);
    this.store.addGap(this.runId, gap, this.fence).catch((err: unknown) => this.onGapError?.(err));
    // One that is still replaying is told when its replay reaches the gap.
    for (const a of this.viewers) if (!a.replaying) a.viewer.status(gapNotice(gap));
  }

  end(frame: StatusFrame): void {
    this.ended = true;
    for (const a of this.viewers) {
      if (a.replaying) {
        // It still has stored output to receive; it ends when its replay does.
        a.ended = frame;
        continue;
      }
      a.viewer.status(frame);
      a.viewer.close();
    }
    this.viewers.clear();
  }

  /** Bytes stored per channel (what a restarted capture must not store again). */
  storedPerChannel(): Promise<Record<1 | 2, number>> {
    return this.store.perChannel(this.runId);
  }

  /** What the store holds, as of the last settled write (settle() first for an exact answer). */
  storedSize(): { bytes: number; truncated: boolean } {
    return { ...this.stored };
  }

  /** Bytes stored per channel and the last `tailBytes` of each (how a restarted capture lines up the log). */
  async storedOutput(tailBytes: number): Promise<{ bytes: Record<1 | 2, number>; tail: Record<1 | 2, Buffer> }> {
    const bytes: Record<1 | 2, number> = { 1: 0, 2: 0 };
    const parts: Record<1 | 2, Buffer[]> = { 1: [], 2: [] };
    for await (const c of this.store.read(this.runId, 0)) {
      bytes[c.channel] += c.data.length;
      const p = parts[c.channel];
      p.push(c.data);
      while (p.length > 1 && p.reduce((n, b) => n + b.length, 0) - p[0]!.length >= tailBytes) p.shift();
    }
    const tail = (ch: 1 | 2) => {
      const all = Buffer.concat(parts[ch]);
      return all.subarray(Math.max(0, all.length - tailBytes));
    };
    return { bytes, tail: { 1: tail(1), 2: tail(2) } };
  }

  /** The largest backlog among the live viewers (see Viewer.backlog). */
  backlog(): number {
    // Chunks on their way to the store are held in memory too: a slow store slows the capture.
    let max = this.total - this.settled;
    // One still replaying is behind by everything it has yet to get, not only its socket.
    for (const a of this.viewers) max = Math.max(max, (a.replaying ? this.total - a.pos : 0) + (a.viewer.backlog?.() ?? 0));
    return max;
  }

  /** The run's end was told to the viewers: a viewer attached now is not live. */
  get hasEnded(): boolean {
    return this.ended;
  }

  get viewerCount(): number {
    return this.viewers.size;
  }
}

/** What a viewer is told at a gap (a status the CLI prints and the web terminal shows). */
export function gapNotice(gap: OutputGap): StatusFrame {
  const size = gap.lost < 0 ? 'an unknown amount of' : `${gap.lost} bytes of`;
  return { kind: 'progress', message: `OUTPUT LOST: ${size} output is missing here (${gap.why})` };
}

const gapKey = (g: OutputGap) => `${g.offset}:${g.lost}:${g.why}`;

function deliver(a: Attached, c: Placed) {
  if (a.replaying) return; // its replay gets there (store, then `unsettled`)
  const end = c.offset + c.data.length;
  if (end <= a.pos) return; // already has it (replayed)
  a.viewer.output(c.channel, c.offset < a.pos ? c.data.subarray(a.pos - c.offset) : c.data);
  a.pos = end;
}
