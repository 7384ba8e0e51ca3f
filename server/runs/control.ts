// Control of a run through a replica that does not own it (store/controls.ts carries
// it). The viewer's side, RemoteInput, stores stdin and terminal sizes in order, one
// row at a time, and stops taking more while the run's stored backlog is full, so a
// viewer that sends a gigabyte holds at most STORE_HIGH_WATER in the store and
// LOCAL_HIGH_WATER here; the socket is paused meanwhile and TCP pushes back on the
// sender. The owner's side, feedStoredInput, hands the rows to the run's attach in
// order, at the pace the program reads, and deletes them once handed on.
import type { Logger } from 'pino';
import { ResizeFrame } from '../../protocol/frames.js';
import type { InputKind, RunControls } from '../store/controls.js';
import type { Wakeups } from '../store/wakeups.js';

/** Stored input of one run not yet taken by its owner, past which writers wait. */
export const STORE_HIGH_WATER = 1 << 20;
/** Input one viewer holds here before the store takes it; past it its socket is paused. */
export const LOCAL_HIGH_WATER = 256 << 10;
/** Largest stdin row: consecutive small writes are joined up to this. */
const MAX_ROW_BYTES = 64 << 10;
/** How long input may wait for a replica to own the run (an adoption takes up to 15 s). */
const NO_OWNER_GRACE_MS = 20_000;
/** How long input may wait for an unreachable store. */
const STORE_GRACE_MS = 30_000;

const sleep = (ms: number, wake?: (cb: () => void) => () => void) =>
  new Promise<void>((resolve) => {
    let off = () => {};
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      off();
      resolve();
    }
    if (wake) off = wake(done);
  });

export interface RemoteInputOptions {
  runId: string;
  controls: RunControls;
  wakeups: Wakeups;
  logger: Logger;
  /** Input can no longer reach the run: say why (the viewer is told and closed). */
  onClosed(message: string): void;
  pollMs?: number;
}

export class RemoteInput {
  private queue: Array<{ kind: InputKind; data: Buffer }> = [];
  private queued = 0;
  private pumping = false;
  private closed = false;
  private backlog = 0;
  private drainWaiters: Array<() => void> = [];

  constructor(private readonly o: RemoteInputOptions) {}

  /** Queues stdin (an empty chunk is end of input); false: stop reading the viewer until drained(). */
  write(data: Buffer): boolean {
    if (this.closed) return true;
    const last = this.queue.at(-1);
    if (data.length > 0 && last && last.kind === 0 && last.data.length > 0 && last.data.length + data.length <= MAX_ROW_BYTES && this.queue.length > 1) {
      // Joined only behind the row being sent (queue[0] is in flight).
      last.data = Buffer.concat([last.data, data]);
    } else {
      this.queue.push({ kind: 0, data: Buffer.from(data) });
    }
    this.queued += data.length;
    void this.pump();
    return this.queued < LOCAL_HIGH_WATER;
  }

  resize(size: { cols: number; rows: number }): void {
    if (this.closed) return;
    const data = Buffer.from(JSON.stringify(size));
    const last = this.queue.at(-1);
    // A newer size replaces one still waiting (not the one in flight).
    if (last?.kind === 4 && this.queue.length > 1) last.data = data;
    else this.queue.push({ kind: 4, data });
    void this.pump();
  }

  drained(): Promise<void> {
    if (this.closed || this.queued < LOCAL_HIGH_WATER / 2) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  close(): void {
    this.closed = true;
    this.queue = [];
    this.queued = 0;
    this.drainWaiters.splice(0).forEach((r) => r());
  }

  private fail(message: string) {
    if (this.closed) return;
    this.close();
    this.o.onClosed(message);
  }

  private wake = (cb: () => void) => this.o.wakeups.onControl(this.o.runId, cb);

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    const { runId, controls } = this.o;
    const poll = this.o.pollMs ?? 250;
    let noOwnerSince: number | undefined;
    let storeFailingSince: number | undefined;
    try {
      while (this.queue.length && !this.closed) {
        const item = this.queue[0]!;
        try {
          // Room first: the owner takes input at the pace the program reads it.
          while (this.backlog >= STORE_HIGH_WATER && !this.closed) {
            await sleep(poll, this.wake);
            this.backlog = await controls.backlog(runId);
          }
          if (this.closed) return;
          const sent = await controls.sendInput(runId, item.kind, item.data);
          storeFailingSince = undefined;
          if ('kind' in sent) {
            if (sent.kind === 'session-gone') {
              return this.fail(
                `input can no longer reach run ${runId}: the oddjob replica that held its interactive session (${sent.sessionOwner}) stopped, ` +
                  `and Kubernetes closes a program's input when its attach ends; its output goes on: oddjob logs -f ${runId}`,
              );
            }
            noOwnerSince ??= Date.now();
            if (Date.now() - noOwnerSince > NO_OWNER_GRACE_MS) {
              return this.fail(`input cannot reach run ${runId}: no oddjob replica has held it for ${NO_OWNER_GRACE_MS / 1000} s (has it ended?)`);
            }
            await sleep(poll, this.wake);
            continue;
          }
          noOwnerSince = undefined;
          this.backlog = sent.backlog;
          this.queue.shift();
          this.queued -= item.kind === 0 ? item.data.length : 0;
          if (this.queued < LOCAL_HIGH_WATER / 2) this.drainWaiters.splice(0).forEach((r) => r());
        } catch (err) {
          storeFailingSince ??= Date.now();
          if (Date.now() - storeFailingSince > STORE_GRACE_MS) {
            return this.fail(`input to run ${runId} could not be stored for ${STORE_GRACE_MS / 1000} s (${(err as Error).message}); reconnect to type again`);
          }
          this.o.logger.warn({ run: runId, err: (err as Error).message }, 'could not store input for the owner of a run (retrying)');
          await sleep(1000);
        }
      }
    } finally {
      this.pumping = false;
    }
  }
}

/** Where the owner hands stored input on: the run's tracker. */
export interface InputTarget {
  write(data: Buffer): boolean;
  stdinDrained(): Promise<void>;
  resize(size: { cols: number; rows: number }): void;
}

/** The owner's side: feeds the run's stored input to `target` in order until stopped. */
export function feedStoredInput(o: {
  runId: string;
  owner: string;
  controls: RunControls;
  wakeups: Wakeups;
  target: InputTarget;
  logger: Logger;
  pollMs?: number;
}): () => void {
  const { runId, owner, controls, target } = o;
  let stopped = false;
  let woken = false;
  let wake: (() => void) | undefined;
  const off = o.wakeups.onControl(runId, () => {
    woken = true;
    wake?.();
  });
  const idle = () =>
    new Promise<void>((resolve) => {
      if (woken || stopped) return resolve();
      const t = setTimeout(done, o.pollMs ?? 1000);
      function done() {
        clearTimeout(t);
        wake = undefined;
        resolve();
      }
      wake = done;
    });
  void (async () => {
    while (!stopped) {
      woken = false;
      try {
        const rows = await controls.pendingInput(runId, owner);
        if (rows.length === 0) {
          await idle();
          continue;
        }
        const taken: number[] = [];
        for (const row of rows) {
          if (stopped) break;
          if (row.kind === 4) {
            const size = parseSize(row.data);
            if (size) target.resize(size);
          } else if (!target.write(row.data)) {
            // The program reads slower than input comes: wait for it before taking more.
            await target.stdinDrained();
          }
          taken.push(row.seq);
        }
        await controls.inputTaken(runId, taken);
      } catch (err) {
        if (stopped) return;
        o.logger.warn({ run: runId, err: (err as Error).message }, 'could not take stored input for a run (retrying)');
        await sleep(1000);
      }
    }
  })();
  return () => {
    stopped = true;
    wake?.();
    off();
  };
}

function parseSize(data: Buffer): ResizeFrame | undefined {
  try {
    const size = ResizeFrame.safeParse(JSON.parse(data.toString('utf8')));
    return size.success ? size.data : undefined;
  } catch {
    return undefined;
  }
}
