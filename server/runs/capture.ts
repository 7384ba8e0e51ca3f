// Live capture of a run's output: an attach for everything from the moment it connects,
// the log for what the command wrote before that.
//
// Why not just follow the log: the kubelet serves a followed log one line per chunk
// (slow), and a follower that falls more than one rotated file behind (10 MiB × 5 on
// our node) silently skips whole files; when the container exits while it is still
// reading an old file, the follow simply ends there. An attach is fed by the container
// runtime synchronously, so a reader that is slower than the command slows the command
// down instead of losing its output, and it arrives in the runtime's large chunks.
//
// The join (see splice.ts): open the attach and stop reading it — the runtime soon
// blocks the writer — read the log, find where the attach's first byte sits in it,
// hand on the log up to there, then the attach. The first time, the log is handed on
// (and stored) as it is read, and the attach's bytes the log already had are skipped. A dropped attach (API server restart,
// network) is re-opened the same way; the bytes we already have are found in the
// re-read log by their last 64 KiB. When they are not there any more (the kubelet
// rotated them away while nobody was attached), the output has a gap of unknown size,
// and the caller is told so it can tell the user.
import type * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { AttachError, openAttach, type AttachSession } from '../k8s/attach.js';
import { LogRequestError, isSplitStreamsUnsupported, readContainerLog, type LogStream } from '../k8s/logs.js';
import { findJoin, locateTail, type Join } from './splice.js';

export interface CaptureTarget {
  namespace: string;
  pod: string;
  container: string;
  interactive: boolean;
  tty: boolean;
  /** The log can be read per stream (PodLogsQuerySplitStreams); else stderr joins stdout. */
  split: boolean;
}

export interface CaptureSink {
  output(channel: 1 | 2, data: Buffer): void;
  /** Everything handed to output() should reach the hub now. */
  flush(): void;
  /** Output is missing at this point (bytes, -1: amount unknown), with why. */
  gap(lost: number, why: string): void;
  /** Bytes the slowest live viewer has not taken yet. */
  backlog(): number;
}

/** The last bytes of each stream we have: how a re-read log is lined up with them. */
export interface KnownOutput {
  bytes: Record<1 | 2, number>;
  tail: Record<1 | 2, Buffer>;
}

const TAIL_BYTES = 64 * 1024;
/** Lines read from the end of the log to line up what we have after the attach ended. */
const TAIL_LINES = 20_000;
/**
 * How long before our last bytes the log is read from after the attach ended: the
 * narrow one first (a fast writer's last 10 s can be 100+ MiB, read at the kubelet's
 * pace: 9.4 s after a 150 MiB run), the wide one when that does not reach back to our
 * last bytes (they arrived late, or the node's clock is behind). Both cover the
 * whole-second times the API takes.
 */
const SINCE_MARGINS_MS = [2_000, 10_000] as const;
/** Attach bytes held while the join is found; past this the attach is not read (the writer waits). */
const PENDING_MAX = 8 << 20;
/** How far into the live bytes the log's head is looked for when the two do not overlap. */
const SEARCH_MAX = 64 << 20;
/** How long the runtime gets to write what preceded the attach into the log before it is read. */
const LOG_SETTLE_MS = 150;
/** Between tries of a log the kubelet does not serve yet. */
const LOG_RETRY_MS = 100;
/** No more live bytes for this long: the writer is idle, an unconfirmed overlap will not come. */
const QUIET_MS = 300;
/**
 * A viewer this far behind pauses the attach (and so the command) until it is down to
 * VIEWER_LOW: live viewers get every byte, not only the 16 MiB the store keeps. A viewer
 * that takes nothing for VIEWER_STALL_MS is not waited for again in that episode; its own
 * bound (ws/viewer.ts) then cuts it loose and it resumes from the store. HIGH is below
 * that bound (2 MiB in the socket + 4 MiB queued): a viewer cut loose resumes from the
 * store, which keeps 16 MiB by default, so it must not be cut while it keeps reading.
 */
const VIEWER_HIGH = 3 << 20;
const VIEWER_LOW = 1 << 20;
const VIEWER_STALL_MS = 10_000;
/** Slices of a large piece (the log before the attach) handed on between checks of the viewers. */
const PACE_SLICE = 256 << 10;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The attach could not be opened because of what it is (not a passing failure). */
export function isPermanentAttachFailure(err: unknown): boolean {
  return err instanceof AttachError && err.status >= 400 && err.status < 500 && err.status !== 429;
}

export class LiveCapture {
  private session: AttachSession | undefined;
  private joined = false;
  private heldStdin: Buffer[] = [];
  private stdinEnded = false;
  private stdinEofSent = false;
  private lastSize: { cols: number; rows: number } | undefined;
  private readonly recent: Record<1 | 2, { parts: Buffer[]; bytes: number }> = { 1: { parts: [], bytes: 0 }, 2: { parts: [], bytes: 0 } };
  private readonly have: Record<1 | 2, number>;
  private waitingForViewer: NodeJS.Timeout | undefined;
  /** A viewer stalled past VIEWER_STALL_MS: not waited for until the backlog is low again. */
  private gaveUpOnViewer = false;
  /** Live bytes of each stream the log already handed on (the first join streams the log). */
  private readonly skip: Record<1 | 2, number> = { 1: 0, 2: 0 };
  /** Last time live output arrived (the tracker waits for a capture that is still delivering). */
  lastOutputAt = Date.now();

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly target: CaptureTarget,
    private readonly sink: CaptureSink,
    private readonly logger: Logger,
    private readonly signal: AbortSignal,
    known: KnownOutput,
  ) {
    this.have = { ...known.bytes };
    for (const ch of [1, 2] as const) if (known.tail[ch].length) this.remember(ch, known.tail[ch]);
  }

  /** Bytes of each stream handed on so far. */
  received(): Record<1 | 2, number> {
    return { ...this.have };
  }

  /**
   * Attaches, joins the log, delivers until the attach ends. Resolves `ended` when the
   * stream closed normally (the container's output ended) and `dropped` when it broke.
   */
  async attachOnce(): Promise<'ended' | 'dropped'> {
    const pending: { channel: 1 | 2; data: Buffer }[] = [];
    let pendingBytes = 0;
    let wake: ((force?: boolean) => void) | undefined;
    const channelOf = (ch: 1 | 2): 1 | 2 => (this.target.split || this.target.tty ? ch : 1);
    let paused = true;
    let pendingLimit = PENDING_MAX;
    const session = await openAttach(
      this.kc,
      { namespace: this.target.namespace, pod: this.target.pod, container: this.target.container, stdin: this.target.interactive, tty: this.target.tty },
      (raw, data) => {
        const ch = channelOf(raw);
        this.lastOutputAt = Date.now();
        if (this.joined) {
          this.deliverLive(ch, data);
          if (!this.waitingForViewer) {
            const backlog = this.sink.backlog();
            if (backlog < VIEWER_LOW) this.gaveUpOnViewer = false;
            else if (backlog > VIEWER_HIGH && !this.gaveUpOnViewer) this.waitForViewers(session);
          }
          return;
        }
        pending.push({ channel: ch, data });
        pendingBytes += data.length;
        wake?.();
        if (pendingBytes > pendingLimit && !paused) {
          session.pause();
          paused = true;
        }
      },
    );
    this.session = session;
    this.joined = false;
    // The terminal size goes now, not at the join: a size is not output, and a command
    // that reads its size as it starts must find the viewer's, not 0x0.
    if (this.lastSize) session.resize(this.lastSize);
    this.logger.info({ have: this.have }, 'attached');
    const onAbort = () => session.close();
    this.signal.addEventListener('abort', onAbort, { once: true });
    try {
      // Until the log is read, the attach is not read: the runtime stops the writer once
      // the few MiB between it and us are full, so the overlap to find stays small.
      session.pause();
      await sleep(LOG_SETTLE_MS);
      // Refused by the node (the container is not running yet): nothing is attached.
      const refused = () => {
        const failure = session.failure();
        if (failure && pendingBytes === 0) throw failure;
      };
      refused();
      const streams = this.logStreams();
      // Streams of which we have nothing yet (the first attach) are handed on as they are
      // read, while the attach holds the writer back: see readLogHandingOn.
      const streamed = new Set(streams.filter((s) => !this.target.tty && this.have[s.channel] === 0).map((s) => s.channel));
      this.skip[1] = this.skip[2] = 0;
      const logs = await Promise.all(
        streams.map((s) => (streamed.has(s.channel) ? this.readLogHandingOn(s.stream, s.channel) : this.readLogOnceReadable(s.stream))),
      );
      refused();
      session.resume();
      paused = false;
      let ended = false;
      void session.ended.then(() => ((ended = true), wake?.(true)));

      const prefixes: { channel: 1 | 2; data: Buffer }[] = [];
      for (const [i, { channel }] of streams.entries()) {
        const log = logs[i]!;
        let settled = false;
        for (;;) {
          const live = Buffer.concat(pending.filter((p) => p.channel === channel).map((p) => p.data));
          const join = findJoin(log, live, settled || ended);
          if (join.kind !== 'need-more') {
            const prefix = this.joinAt(channel, log, live, join, streamed.has(channel));
            if (prefix) prefixes.push({ channel, data: prefix });
            break;
          }
          // No overlap found yet: the log's head may be further into the live bytes than
          // the usual bound lets them reach.
          if (paused && pendingBytes > PENDING_MAX && pendingBytes < SEARCH_MAX) {
            pendingLimit = SEARCH_MAX;
            session.resume();
            paused = false;
          }
          const before = pendingBytes;
          // Searched again once a good step more has arrived, not on every message: each
          // search joins and scans everything held.
          await new Promise<void>((r) => {
            wake = (force) => (force || pendingBytes - before >= Math.max(64 << 10, before / 8)) && r();
            setTimeout(r, QUIET_MS);
          });
          wake = undefined;
          if (pendingBytes === before) settled = true;
          if (paused && pendingBytes > pendingLimit) settled = true; // cannot hold more: decide with what we have
        }
      }
      // Paced like live output: tens of MiB at once would cut a viewer loose, and the
      // store it would resume from keeps only 16 MiB by default.
      for (const p of prefixes) await this.deliverPaced(p.channel, p.data);
      for (const p of pending) await this.deliverPaced(p.channel, this.unskipped(p.channel, p.data));
      pending.length = 0;
      this.joined = true;
      if (paused) {
        session.resume();
        paused = false;
      }
      this.sink.flush();
      this.releaseStdin();
      const end = await session.ended;
      this.sink.flush();
      this.logger.info({ code: end.code, reason: end.reason, failure: end.failure?.message, have: this.have }, 'attach ended');
      return end.code === 1000 && !end.failure ? 'ended' : 'dropped';
    } finally {
      clearInterval(this.waitingForViewer);
      this.waitingForViewer = undefined;
      this.signal.removeEventListener('abort', onAbort);
      this.joined = false;
      this.session = undefined;
      session.close();
    }
  }

  /** Where the attach joins the log: the log's bytes still to hand on before the attach's (none if it was streamed). */
  private joinAt(channel: 1 | 2, log: Buffer, live: Buffer, join: Exclude<Join, { kind: 'need-more' }>, streamed: boolean): Buffer | undefined {
    const facts = { channel, logBytes: log.length, liveBytes: live.length, have: this.have[channel] };
    if (join.kind === 'join') {
      this.logger.info({ ...facts, at: join.at }, 'attach joined the log');
      if (join.ambiguous) this.logger.warn({ channel }, 'output repeats itself where the attach joins the log; took the longest overlap');
      // Handed on already: the attach's first bytes are the log's after the join.
      if (streamed) this.skip[channel] = log.length - join.at;
      return streamed ? undefined : this.unseen(channel, log, join.at);
    }
    // Everything the log has is live too; what came before the attach is gone.
    this.logger.warn({ ...facts, liveAt: join.liveAt }, 'the log was rotated between the attach and the log read');
    this.sink.gap(-1, 'the kubelet rotated the container log before oddjob could read what the command wrote before oddjob attached');
    // A streamed log is out already (the gap is marked after it, not before): the
    // attach goes on after it, and its bytes before the log's head are dropped with
    // what the gap stands for.
    if (streamed) this.skip[channel] = join.liveAt + log.length;
    return undefined;
  }

  private waitForViewers(session: AttachSession) {
    session.pause();
    const since = Date.now();
    this.waitingForViewer = setInterval(() => {
      if (this.sink.backlog() > VIEWER_LOW && Date.now() - since < VIEWER_STALL_MS) return;
      this.gaveUpOnViewer = Date.now() - since >= VIEWER_STALL_MS;
      clearInterval(this.waitingForViewer);
      this.waitingForViewer = undefined;
      session.resume();
    }, 20);
  }

  /**
   * The log of a stream we have nothing of yet, handed on as it is read (and returned
   * whole for the join). The join needs the whole log before it knows where the attach
   * starts (seconds on a busy node); a server that died meanwhile would have stored
   * nothing, and its successor could not tell a log the kubelet rotated since from the
   * whole output (a silent loss). With these bytes stored, it finds them gone and says so.
   *
   * Only with the attach open (and paused): the runtime then holds the writer back, so
   * this read ends where the writer stopped. Read before the attach, a fast writer ran
   * ahead of it, the kubelet rotated the file under it and the read ended with that file;
   * what was read could then not be lined up with the next file — a gap reported where
   * none was (200 MiB, every byte received, exit 123) — nor could bytes lost between
   * the two be told apart from none.
   */
  private async readLogHandingOn(stream: LogStream, channel: 1 | 2): Promise<Buffer> {
    const parts: Buffer[] = [];
    const queue: Buffer[] = [];
    let finished = false;
    let wake: (() => void) | undefined;
    const reading = this.readLogOnceReadable(stream, (chunk) => {
      parts.push(chunk);
      queue.push(chunk);
      wake?.();
    }).finally(() => {
      finished = true;
      wake?.();
    });
    reading.catch(() => undefined);
    // Paced like the rest: a viewer gets it as fast as it reads, the store keeps up.
    for (;;) {
      while (queue.length) await this.deliverPaced(channel, queue.shift()!);
      if (finished) break;
      await new Promise<void>((r) => {
        wake = r;
        if (queue.length || finished) r();
      });
      wake = undefined;
    }
    await reading;
    this.sink.flush();
    return Buffer.concat(parts);
  }

  /**
   * The container finished while we were not attached (or the attach broke): hand on
   * what the log has after the bytes we already have. `endSeen`: the attach stayed
   * until it closed with the container's output; then a log that holds only our last
   * bytes (the kubelet rotated the file just before the last few) has nothing new.
   */
  async readRest(endSeen = false): Promise<void> {
    const lastOutputAt = this.lastOutputAt;
    const streams = this.logStreams();
    await Promise.all(
      streams.map(async ({ stream, channel }) => {
        // Usually nothing or little is missing: the end of the log is enough to line it
        // up (a whole final file can be 100+ MiB, read at the kubelet's pace).
        // The API server refuses tailLines together with stream=Stdout|Stderr.
        // With stream=Stdout|Stderr (which refuses tailLines) the log since shortly before
        // our last bytes does it (SINCE_MARGINS_MS).
        if (this.have[channel] > 0) {
          for (const margin of stream === 'All' ? [undefined] : SINCE_MARGINS_MS) {
            const end =
              margin === undefined
                ? await this.readLog(stream, { tailLines: TAIL_LINES })
                : await this.readLog(stream, { sinceTime: new Date(lastOutputAt - margin).toISOString().replace(/\.\d+Z$/, 'Z') });
            const at = locateTail(end, this.tail(channel), end.length, endSeen);
            if (at !== undefined) {
              this.logger.info(
                { channel, have: this.have[channel], after: end.length - at, read: end.length, sinceMs: margin },
                'the log after the attach ended: lined up with its end',
              );
              return this.deliverPaced(channel, end.subarray(at));
            }
          }
        }
        const log = await this.readLog(stream);
        const rest = this.unseen(channel, log, log.length, endSeen);
        this.logger.info({ channel, have: this.have[channel], logBytes: log.length, after: rest.length }, 'the log after the attach ended: read whole');
        await this.deliverPaced(channel, rest);
      }),
    );
    this.sink.flush();
  }

  /** The logs to read: per stream, or one combined (a TTY, or no PodLogsQuerySplitStreams). */
  private logStreams(): { stream: LogStream; channel: 1 | 2 }[] {
    if (this.target.tty || !this.target.split) return [{ stream: 'All', channel: 1 }];
    return [
      { stream: 'Stdout', channel: 1 },
      { stream: 'Stderr', channel: 2 },
    ];
  }

  /** The part of log[0..end] we do not have yet; a gap is reported when we cannot tell. */
  private unseen(channel: 1 | 2, log: Buffer, end: number, endSeen = false): Buffer {
    if (this.have[channel] === 0) return log.subarray(0, end);
    const tail = this.tail(channel);
    // Most often the log still starts where ours does: then it is a plain offset.
    if (log.length >= this.have[channel] && this.have[channel] <= end && log.subarray(this.have[channel] - tail.length, this.have[channel]).equals(tail)) {
      return log.subarray(this.have[channel], end);
    }
    const at = locateTail(log, tail, end, endSeen);
    if (at !== undefined) return log.subarray(at, end);
    if (end === 0) return log.subarray(0, 0);
    this.sink.gap(-1, 'the kubelet rotated the container log while oddjob was not attached to the run; what was written in between is gone');
    return log.subarray(0, end);
  }

  /**
   * The attach may be up before the kubelet serves the log (it answers 400 until its own
   * status says the container runs, up to a second later): retried until then.
   */
  private async readLogOnceReadable(stream: LogStream, onChunk?: (chunk: Buffer) => void): Promise<Buffer> {
    for (let tries = 1; ; tries++) {
      try {
        const log = await this.readLog(stream, {}, onChunk);
        this.logger.info({ stream, bytes: log.length, tries }, 'read the log up to the attach');
        return log;
      } catch (err) {
        if (!(err instanceof LogRequestError) || err.status !== 400 || isSplitStreamsUnsupported(err) || tries >= 200 || this.signal.aborted) throw err;
        await sleep(LOG_RETRY_MS);
      }
    }
  }

  /** The log, whole; or, with onChunk, handed to it as it arrives (and an empty buffer returned). */
  private async readLog(stream: LogStream, only: { tailLines?: number; sinceTime?: string } = {}, onChunk?: (chunk: Buffer) => void): Promise<Buffer> {
    const parts: Buffer[] = [];
    await readContainerLog(
      this.kc,
      {
        namespace: this.target.namespace,
        pod: this.target.pod,
        container: this.target.container,
        stream,
        follow: false,
        skipBytes: 0,
        ...only,
        signal: this.signal,
      },
      (chunk) => {
        // Reading is progress too: the tracker waits for a capture that still makes some.
        this.lastOutputAt = Date.now();
        if (onChunk) onChunk(chunk);
        else parts.push(chunk);
      },
    );
    return Buffer.concat(parts);
  }

  /** Hands on a large piece in slices, each once the live viewers have taken most of the last. */
  private async deliverPaced(channel: 1 | 2, data: Buffer): Promise<void> {
    for (let at = 0; at < data.length; at += PACE_SLICE) {
      this.deliver(channel, data.subarray(at, at + PACE_SLICE));
      this.sink.flush();
      const since = Date.now();
      for (;;) {
        const backlog = this.sink.backlog();
        if (backlog < VIEWER_LOW) this.gaveUpOnViewer = false;
        if (backlog <= VIEWER_HIGH || this.gaveUpOnViewer || this.signal.aborted) break;
        if (Date.now() - since >= VIEWER_STALL_MS) {
          this.gaveUpOnViewer = true;
          break;
        }
        await sleep(20);
      }
    }
  }

  /** Live bytes, less those the streamed log already handed on. */
  private deliverLive(channel: 1 | 2, data: Buffer) {
    this.deliver(channel, this.unskipped(channel, data));
  }

  private unskipped(channel: 1 | 2, data: Buffer): Buffer {
    const n = Math.min(this.skip[channel], data.length);
    this.skip[channel] -= n;
    return n ? data.subarray(n) : data;
  }

  private deliver(channel: 1 | 2, data: Buffer) {
    if (data.length === 0) return;
    this.have[channel] += data.length;
    this.remember(channel, data);
    this.sink.output(channel, data);
  }

  private remember(channel: 1 | 2, data: Buffer) {
    const r = this.recent[channel];
    r.parts.push(data);
    r.bytes += data.length;
    while (r.parts.length > 1 && r.bytes - r.parts[0]!.length >= TAIL_BYTES) r.bytes -= r.parts.shift()!.length;
  }

  private tail(channel: 1 | 2): Buffer {
    const r = this.recent[channel];
    const all = r.parts.length === 1 ? r.parts[0]! : Buffer.concat(r.parts);
    r.parts = [all];
    return all.subarray(Math.max(0, all.length - TAIL_BYTES));
  }

  // ── input (interactive runs) ─────────────────────────────────────────────
  // Held until the join is made: input echoed back before that could be mistaken for
  // output the log already has.

  write(data: Buffer): void {
    if (data.length === 0) this.stdinEnded = true;
    else this.heldStdin.push(data);
    if (this.joined) this.releaseStdin();
  }

  /** Input not yet handed to the API server: held until the join, or in the socket's buffer. */
  stdinBacklog(): number {
    return this.heldStdin.reduce((n, b) => n + b.length, 0) + (this.session?.bufferedAmount() ?? 0);
  }

  resize(size: { cols: number; rows: number }): void {
    this.lastSize = size;
    this.session?.resize(size);
  }

  private releaseStdin() {
    const s = this.session;
    if (!s) return;
    if (this.lastSize) s.resize(this.lastSize);
    for (const b of this.heldStdin.splice(0)) s.write(b);
    if (this.stdinEnded && !this.stdinEofSent) {
      this.stdinEofSent = true;
      s.endStdin();
    }
  }
}
