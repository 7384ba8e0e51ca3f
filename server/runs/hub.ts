// Fan-out of one run's output: every chunk is stored first, then sent to the
// attached viewers. Offsets are absolute (stdout + stderr bytes in production
// order), so a viewer that joins at byte N gets stored bytes from N and then
// live bytes, with no gap and no duplicate. better-sqlite3 is synchronous, so
// "replay, then subscribe" happens without an await in between: nothing can
// slip through.
import type { OutputChunk, OutputStore } from '../audit/output.js';
import type { StatusFrame } from '../../protocol/frames.js';
import type { Viewer } from '../services.js';

interface Attached {
  viewer: Viewer;
  pos: number;
  /** Still receiving stored output; live chunks reach it through the store. */
  replaying: boolean;
  /** The run ended while it replayed: the end frame it gets after its replay. */
  ended?: StatusFrame;
}

export class OutputHub {
  private readonly viewers = new Set<Attached>();
  private lastProgress: StatusFrame | undefined;
  /** The pod's Events so far, while the run starts: a viewer that joins late sees the steps too. */
  private readonly events: StatusFrame[] = [];
  private ended = false;

  /** Bytes produced so far (stored or, past the storage limit, only streamed). */
  total: number;

  constructor(
    private readonly runId: string,
    private readonly store: OutputStore,
  ) {
    this.total = store.size(runId).bytes;
  }

  append(channel: 1 | 2, data: Buffer): void {
    this.appendMany([{ channel, data }]);
  }

  /**
   * Stores the chunks (one transaction) and sends them to the viewers. When the store
   * fails, the viewers still get the output and the error is thrown afterwards, so the
   * caller can report it; offsets stay those of the produced output either way.
   */
  appendMany(chunks: readonly OutputChunk[]): void {
    const live = chunks.filter((c) => c.data.length > 0);
    if (live.length === 0) return;
    let start = this.total;
    for (const c of live) this.total += c.data.length;
    let failure: unknown;
    try {
      this.store.appendMany(this.runId, live);
    } catch (err) {
      failure = err;
    }
    for (const { channel, data } of live) {
      for (const a of this.viewers) deliver(a, channel, data, start);
      start += data.length;
    }
    if (failure !== undefined) throw failure;
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
   * socket's worth of memory, not a run's stored output. While it replays, live chunks
   * are not sent to it: they are in the store, and the replay reaches them. Reading the
   * end of the store and switching to live happen in one synchronous step (the store
   * is synchronous), so nothing falls between them.
   */
  attach(viewer: Viewer, from: number, follow: boolean, onReplayed?: () => void): () => void {
    const a: Attached = { viewer, pos: from, replaying: true };
    const live = follow && !this.ended;
    let detached = false;
    if (live) this.viewers.add(a);
    const chunks = this.store.read(this.runId, from);
    const finish = () => {
      a.replaying = false;
      // Output past the storage limit (or not stored because the store failed) was only
      // streamed live; a viewer that joins after it cannot get it, and is told so.
      if (a.pos < this.total) {
        const limit = `${Math.round(this.store.maxBytesPerRun / 1048576)} MiB`;
        viewer.status({
          kind: 'progress',
          message: `${this.total - a.pos} bytes of output were only streamed live (past the ${limit} kept per run) and cannot be replayed; live output follows`,
        });
        a.pos = this.total;
      }
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
    const pump = () => {
      if (detached) return;
      while (viewer.ready?.() ?? true) {
        const next = chunks.next();
        if (next.done) return finish();
        viewer.output(next.value.channel, next.value.data);
        a.pos += next.value.data.length;
      }
      viewer.onReady?.(pump);
    };
    pump();
    return () => {
      detached = true;
      this.viewers.delete(a);
    };
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
  storedPerChannel(): Record<1 | 2, number> {
    const out: Record<1 | 2, number> = { 1: 0, 2: 0 };
    for (const c of this.store.read(this.runId, 0)) out[c.channel] += c.data.length;
    return out;
  }

  storedSize(): { bytes: number; truncated: boolean } {
    return this.store.size(this.runId);
  }

  get viewerCount(): number {
    return this.viewers.size;
  }
}

function deliver(a: Attached, channel: 1 | 2, data: Buffer, start: number) {
  if (a.replaying) return; // stored: its replay gets there
  const end = start + data.length;
  if (end <= a.pos) return; // already has it (replayed)
  a.viewer.output(channel, start < a.pos ? data.subarray(a.pos - start) : data);
  a.pos = end;
}
