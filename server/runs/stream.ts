// Follows a run's output through the store, for a viewer on a replica that does not
// track the run: stored bytes from the viewer's offset, then each new stored chunk as
// it lands, then the end frame once the run's record is final. The store is the one
// source, read strictly by offset, so a viewer that switches replicas resumes where it
// was with no gap and no duplicate. New bytes are noticed by a wake-up (PostgreSQL
// NOTIFY) or, failing that, by polling.
import { TERMINAL_STATUSES, type Run } from '../../protocol/api.js';
import type { OutputStore } from '../store/output.js';
import type { RunStore } from '../store/runs.js';
import type { Wakeups } from '../store/wakeups.js';
import type { Viewer } from '../services.js';

export interface StoreFollowOptions {
  runId: string;
  output: OutputStore;
  runs: RunStore;
  wakeups: Wakeups;
  viewer: Viewer;
  from: number;
  /** How long to wait for a wake-up before looking anyway. */
  pollMs?: number;
  /** Whether the run's ending is in the audit log: the end frame waits for it (bounded), as a local viewer's does. */
  endingRecorded?: () => Promise<boolean>;
}

/** Starts following; the returned function stops it (the viewer went away). */
export function followThroughStore(o: StoreFollowOptions): () => void {
  const { runId, output, runs, wakeups, viewer } = o;
  let pos = o.from;
  let stopped = false;
  let running = false;
  let wake: (() => void) | undefined;
  let woken = false;
  const off = wakeups.on(runId, () => {
    woken = true;
    wake?.();
  });
  const ready = () => new Promise<void>((r) => ((viewer.ready?.() ?? true) ? r() : viewer.onReady ? viewer.onReady(r) : r()));
  const sleep = () =>
    new Promise<void>((resolve) => {
      if (woken) return resolve();
      const t = setTimeout(done, o.pollMs ?? 1000);
      function done() {
        clearTimeout(t);
        wake = undefined;
        resolve();
      }
      wake = done;
    });
  const drain = async () => {
    for await (const chunk of output.read(runId, pos)) {
      if (stopped) return;
      viewer.output(chunk.channel, chunk.data);
      pos += chunk.data.length;
      await ready();
    }
  };
  const loop = async () => {
    for (;;) {
      woken = false;
      // The record first: once it is final, everything stored was stored before it.
      const run: Run | undefined = await runs.get(runId);
      if (run?.status === 'running' && run.podName && !running) {
        // As from the owner: an interactive client sends its input once the command runs.
        running = true;
        viewer.status({ kind: 'running', podName: run.podName });
      }
      await drain();
      if (stopped) return;
      if (!run || TERMINAL_STATUSES.includes(run.status)) {
        // The owner stores the final state, then records the ending: a viewer (the CLI
        // exits on the end frame) learns the outcome once it is on record.
        for (let i = 0; i < 50 && run && o.endingRecorded && !(await o.endingRecorded()); i++) await new Promise((r) => setTimeout(r, 100));
        if (stopped) return;
        if (run) {
          viewer.status({
            kind: 'end',
            status: run.status,
            exitCode: run.exitCode,
            message: run.message,
            outputBytes: run.outputBytes,
            outputTruncated: run.outputTruncated,
          });
        }
        viewer.close();
        return;
      }
      await sleep();
      if (stopped) return;
    }
  };
  loop()
    .catch((err: unknown) => {
      if (stopped) return;
      viewer.status({
        kind: 'error',
        code: 'unavailable',
        message: `the run's output could not be read from the store: ${(err as Error).message}; reconnect to resume`,
      });
      viewer.close();
    })
    .finally(off);
  return () => {
    stopped = true;
    wake?.();
    off();
  };
}
