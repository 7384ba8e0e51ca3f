// Follows one run from its Job's creation to a terminal state, driven by the
// pod and Job watches (no polling): reports start-up progress, captures output
// (log API, or attach for interactive runs), detects runs that cannot start, hit
// their deadline, were cancelled or vanished, and records the outcome once.
import { PassThrough, Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { AuditClient, Run, RunStatus } from '../../protocol/api.js';
import type { StatusFrame } from '../../protocol/frames.js';
import { backoffDelay } from '../../protocol/backoff.js';
import type { AuditLog } from '../store/audit.js';
import type { RunStore } from '../store/runs.js';
import type { KubeClients } from '../k8s/client.js';
import { isNotFound, kubeFailure } from '../k8s/client.js';
import { LogRequestError, isSplitStreamsUnsupported, readContainerLog, type LogStream } from '../k8s/logs.js';
import { metrics } from '../metrics.js';
import { OutputCoalescer } from './coalesce.js';
import type { OutputHub } from './hub.js';
import { interpretJob, interpretPod } from './pod-state.js';
import { MAX_EVENT_LINES, describePodEvent, type PodRef } from './pod-events.js';

export interface TrackerDeps {
  kube: KubeClients;
  audit: AuditLog;
  runs: RunStore;
  logger: Logger;
  startTimeoutSeconds: number;
  /** Shared answer to "does this API server keep stdout and stderr apart?" */
  splitStreams: { value: boolean | undefined };
  onDone: (runId: string) => void;
  /** Follows the Events about a pod; returns a stop function. */
  watchPodEvents?: (pod: { namespace: string; uid: string }, onEvent: (event: k8s.CoreV1Event) => void) => () => void;
}

/** Interactive input the server holds for one run before it pushes back on the viewer. */
export const STDIN_HIGH_WATER = 1 << 20;

/** Who ended a run by hand, and from where (for the audit record). */
export interface Canceller {
  identity: { login: string; teams: string[] };
  client: AuditClient;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

export class RunTracker {
  private phase: 'starting' | 'running' | 'done' = 'starting';
  private lastProgress = '';
  private readonly abort = new AbortController();
  private capture: Promise<void> | undefined;
  private exit: { exitCode: number; reason?: string } | undefined;
  private exitWaiters: Array<() => void> = [];
  private deadline: string | undefined;
  private jobOutcome: ReturnType<typeof interpretJob> | undefined;
  private startTimer: NodeJS.Timeout | undefined;
  private stdin: PassThrough | undefined;
  private attachSocket: { send(data: Buffer): void; close(): void } | undefined;
  private lastSize: { cols: number; rows: number } | undefined;
  private finishing = false;
  /** The server is shutting down (detach): nothing more is written for this run. */
  private detached = false;
  /** Joins the log's small chunks before they are stored and sent (log capture only). */
  private output: OutputCoalescer | undefined;
  /** Stops following the pod's Events (only while the run waits to start). */
  private stopEvents: (() => void) | undefined;
  private readonly eventsSeen = new Set<string>();

  constructor(
    public run: Run,
    private readonly hub: OutputHub,
    private readonly deps: TrackerDeps,
  ) {
    if (run.status === 'running') this.phase = 'running';
    const elapsed = (Date.now() - Date.parse(run.createdAt)) / 1000;
    if (this.phase === 'starting') {
      const left = Math.max(1, deps.startTimeoutSeconds - elapsed);
      this.startTimer = setTimeout(() => {
        if (this.phase === 'starting') {
          void this.failToStart(`the pod did not start within ${deps.startTimeoutSeconds}s${this.lastProgress ? ` (last state: ${this.lastProgress})` : ''}`);
        }
      }, left * 1000);
      this.startTimer.unref();
    }
  }

  get done(): boolean {
    return this.phase === 'done';
  }

  private get log() {
    return this.deps.logger.child({ run: this.run.id });
  }

  /** Run-state writes, in order: the store is asynchronous, and a later state must not land first. */
  private stored: Promise<void> = Promise.resolve();

  /** Applies the patch now (what this tracker answers with) and writes it behind the ones before it. */
  private update(patch: Partial<Run>): Promise<void> {
    this.run = { ...this.run, ...patch };
    const id = this.run.id;
    this.stored = this.stored.then(
      () => this.deps.runs.update(id, patch).then(() => undefined),
      () => this.deps.runs.update(id, patch).then(() => undefined),
    );
    return this.stored.catch((err: unknown) => this.log.error({ err }, 'could not store the run state'));
  }

  /**
   * Records a run event with the group commit (one fsync shared by the runs that change
   * state in the same event-loop turn). Never rejects: a failure is logged.
   */
  private auditRun(type: 'run.started' | 'run.finished' | 'run.cancelled' | 'run.lost', extra: Record<string, unknown>, by?: Canceller): Promise<void> {
    const actor = by?.identity ?? { login: this.run.user, id: this.run.userId, teams: [] };
    return this.deps.audit
      .appendDurable({
        type,
        actor,
        client: by?.client ?? { kind: 'server' },
        // Someone else acting on this run: the record names both.
        owner: actor.login.toLowerCase() === this.run.user.toLowerCase() ? undefined : this.run.user,
        runId: this.run.id,
        namespace: this.run.namespace,
        deployment: this.run.deployment,
        container: this.run.container,
        image: this.run.image,
        ...extra,
      })
      .then(
        () => undefined,
        (err: unknown) => this.log.error({ err }, `could not record ${type} in the audit log`),
      );
  }

  // ── watch events ────────────────────────────────────────────────────────

  onPod(pod: k8s.V1Pod | undefined): void {
    if (this.done) return;
    if (!pod) {
      // The pod is gone. With a known exit or deadline we can finish; otherwise
      // the Job decides (it may create nothing more: backoffLimit is 0).
      this.signalExit();
      void this.maybeFinish();
      return;
    }
    const name = pod.metadata?.name;
    if (name && this.run.podName !== name) void this.update({ podName: name });
    const view = interpretPod(pod, this.run.container);
    if (view.kind === 'starting') this.followEvents(pod);
    switch (view.kind) {
      case 'starting':
        if (view.progress !== this.lastProgress) {
          this.lastProgress = view.progress;
          this.hub.status({ kind: 'progress', message: `waiting for pod: ${view.progress}` });
        }
        return;
      case 'cannot-start':
        void this.failToStart(view.message);
        return;
      case 'running':
        this.startRunning(pod);
        return;
      case 'terminated':
        // Record the exit first: a capture that starts now reads the finished log once.
        this.exit = { exitCode: view.exitCode, reason: view.reason };
        this.startRunning(pod);
        this.signalExit();
        void this.maybeFinish();
    }
  }

  onJob(job: k8s.V1Job | undefined): void {
    if (this.done) return;
    if (!job) {
      if (this.finishing) return;
      void this.finish('lost', undefined, 'the Job was deleted before oddjob saw the command end');
      return;
    }
    const view = interpretJob(job);
    this.jobOutcome = view;
    if (view.kind === 'deadline') {
      this.deadline = view.message;
      this.signalExit();
      void this.maybeFinish();
    } else if (view.kind !== 'active') {
      void this.maybeFinish();
    }
  }

  /** After a restart: the watch's initial list had no pod and no Job for this run. */
  onMissing(): void {
    if (this.done) return;
    void this.finish('lost', undefined, 'the Job no longer exists (it ended or was deleted while oddjob was not watching)');
  }

  /** While the run waits to start, what Kubernetes does with its pod becomes progress lines. */
  private followEvents(pod: k8s.V1Pod): void {
    const m = pod.metadata ?? {};
    if (this.stopEvents || !this.deps.watchPodEvents || !m.uid || !m.name || !/^[0-9a-f-]{1,64}$/.test(m.uid)) return;
    const ref: PodRef = { namespace: this.run.namespace, name: m.name, uid: m.uid };
    this.stopEvents = this.deps.watchPodEvents({ namespace: ref.namespace, uid: ref.uid }, (event) => {
      if (this.phase !== 'starting') return;
      const line = describePodEvent(event, ref);
      if (!line || this.eventsSeen.has(line.key)) return;
      if (this.eventsSeen.size >= MAX_EVENT_LINES) return;
      this.eventsSeen.add(line.key);
      const last = this.eventsSeen.size === MAX_EVENT_LINES;
      this.hub.status({
        kind: 'progress',
        message: last ? `${line.message} (further events about the pod are not shown)` : line.message,
        event: { seq: this.eventsSeen.size, reason: line.reason, type: line.type },
      });
    });
  }

  private unfollowEvents(): void {
    this.stopEvents?.();
    // A stopped follow stays stopped: the run is past waiting to start.
    this.stopEvents = () => undefined;
  }

  // ── running ─────────────────────────────────────────────────────────────

  private startRunning(pod: k8s.V1Pod): void {
    if (this.phase === 'starting') {
      this.phase = 'running';
      this.unfollowEvents();
      clearTimeout(this.startTimer);
      const startedAt = new Date().toISOString();
      const delaySeconds = (Date.parse(startedAt) - Date.parse(this.run.createdAt)) / 1000;
      metrics.runStartDelay.observe(Math.max(0, delaySeconds));
      this.log.info({ pod: pod.metadata!.name!, delaySeconds }, 'run started');
      void this.update({ status: 'running', startedAt, podName: pod.metadata!.name! });
      void this.auditRun('run.started', {});
      this.hub.status({ kind: 'running', podName: pod.metadata!.name! });
    }
    if (!this.capture) {
      this.capture = (this.run.interactive ? this.captureAttach(pod.metadata!.name!) : this.captureLogs(pod.metadata!.name!)).catch((err) =>
        this.log.error({ err }, 'output capture failed'),
      );
    }
  }

  private signalExit() {
    this.exitWaiters.splice(0).forEach((r) => r());
  }

  private waitForExit(ms: number): Promise<void> {
    if (this.exit || this.deadline) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.exitWaiters.push(() => (clearTimeout(t), resolve()));
    });
  }

  private async captureLogs(pod: string): Promise<void> {
    const split = this.deps.splitStreams;
    // After a restart, what is already stored must not be stored again.
    const received = await this.hub.storedPerChannel();
    // Both channels share one coalescer, so chunks keep the order they arrived in.
    let storeFailed = false;
    const output = new OutputCoalescer((chunks) => {
      this.hub.appendMany(chunks).catch((err: unknown) => {
        // Viewers still got it; the stored copy (replay, logs after the pod is gone) did not.
        if (!storeFailed) this.log.error({ err }, 'run output could not be stored; live viewers still receive it');
        storeFailed = true;
      });
    });
    this.output = output;

    const follow = async (stream: LogStream, channel: 1 | 2): Promise<void> => {
      let failures = 0;
      for (;;) {
        if (this.abort.signal.aborted) return;
        const terminatedBefore = Boolean(this.exit || this.deadline);
        try {
          await readContainerLog(
            this.deps.kube.kc,
            {
              namespace: this.run.namespace,
              pod,
              container: this.run.container,
              stream,
              follow: !terminatedBefore,
              skipBytes: received[channel],
              signal: this.abort.signal,
            },
            (chunk) => {
              if (this.detached) return;
              received[channel] += chunk.length;
              output.push(channel, chunk);
            },
          ).finally(() => {
            // Everything read is handed on before the end of the stream is acted on.
            if (!this.detached) output.flush();
          });
          failures = 0;
          // The end of a log stream does not prove the container finished.
          if (terminatedBefore) return;
          await this.waitForExit(2000);
          // Loop once more: a read after the exit picks up anything the follow missed.
        } catch (err) {
          if (this.abort.signal.aborted) return;
          if (isSplitStreamsUnsupported(err)) throw err;
          if (err instanceof LogRequestError && err.status === 404) return; // pod gone
          failures++;
          this.log.warn({ err: (err as Error).message, stream, failures }, 'log stream interrupted; resuming');
          await sleep(backoffDelay(failures - 1, { baseMs: 200, capMs: 5000 }), this.abort.signal);
          if (failures > 60) return;
        }
      }
    };

    if (split.value !== false) {
      try {
        await Promise.all([follow('Stdout', 1), follow('Stderr', 2)]);
        split.value = true;
        return;
      } catch (err) {
        if (!isSplitStreamsUnsupported(err)) throw err;
        split.value = false;
        this.log.warn('the API server does not support PodLogsQuerySplitStreams; stderr is merged into stdout');
      }
    }
    await follow('All', 1);
  }

  private async captureAttach(pod: string): Promise<void> {
    // Input typed before the attach is up waits here (bounded by write()'s backpressure).
    const stdin = (this.stdin ??= new PassThrough());
    const sink = (channel: 1 | 2) =>
      new Writable({
        write: (chunk: Buffer, _enc, cb) => {
          this.hub
            .append(channel, Buffer.from(chunk))
            .catch((err: unknown) => this.log.error({ err }, 'run output could not be stored; live viewers still receive it'));
          cb();
        },
      });
    const ws = await new k8s.Attach(this.deps.kube.kc).attach(
      this.run.namespace,
      pod,
      this.run.container,
      sink(1),
      this.run.tty ? null : sink(2),
      stdin,
      this.run.tty,
    );
    this.attachSocket = ws as unknown as { send(data: Buffer): void; close(): void };
    // The viewer usually sends its size before the attach is up; apply it now.
    if (this.lastSize) this.resize(this.lastSize);
    await new Promise<void>((resolve) => {
      (ws as unknown as { on(e: string, f: () => void): void }).on('close', () => resolve());
      this.abort.signal.addEventListener('abort', () => (ws.close(), resolve()), { once: true });
    });
  }

  /**
   * stdin from the run's owner (interactive runs only). An empty chunk is end of input.
   * Returns false once the input backlog (not yet read by the attach, or not yet sent
   * to the API server) passes STDIN_HIGH_WATER: the caller stops reading its viewer
   * until stdinDrained() resolves, so input held in memory stays bounded.
   */
  write(data: Buffer): boolean {
    if (this.done || !this.run.interactive) return true;
    const stdin = (this.stdin ??= new PassThrough());
    if (stdin.writableEnded) return true;
    if (data.length === 0) stdin.end();
    else stdin.write(data);
    return this.stdinBacklog() < STDIN_HIGH_WATER;
  }

  /** Resolves when the input backlog is below half the high-water mark (or the run ended). */
  stdinDrained(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.done || this.detached || this.stdinBacklog() < STDIN_HIGH_WATER / 2) return resolve();
        // Neither the PassThrough nor the attach socket says when it drains below a mark.
        setTimeout(check, 20).unref();
      };
      check();
    });
  }

  private stdinBacklog(): number {
    const s = this.stdin;
    const socket = this.attachSocket as { bufferedAmount?: number } | undefined;
    return (s ? s.writableLength + s.readableLength : 0) + (socket?.bufferedAmount ?? 0);
  }

  resize(size: { cols: number; rows: number }): void {
    this.lastSize = size;
    // Channel 4 of the Kubernetes streaming protocol carries the terminal size.
    this.attachSocket?.send(Buffer.concat([Buffer.from([4]), Buffer.from(JSON.stringify({ Width: size.cols, Height: size.rows }))]));
  }

  // ── endings ─────────────────────────────────────────────────────────────

  private async maybeFinish(): Promise<void> {
    if (this.done || this.finishing) return;
    if (this.deadline) {
      await this.finish('deadline', undefined, this.deadline);
      return;
    }
    if (this.exit) {
      await this.finish(this.exit.exitCode === 0 ? 'succeeded' : 'failed', this.exit.exitCode);
      return;
    }
    // No container exit seen (pod gone before we looked): trust the Job.
    if (this.jobOutcome?.kind === 'complete') await this.finish('succeeded', 0);
    else if (this.jobOutcome?.kind === 'failed') await this.finish('failed', undefined, this.jobOutcome.message);
  }

  private async failToStart(message: string): Promise<void> {
    if (this.done || this.finishing) return;
    // Claim the ending before deleting the Job: its DELETED event must not be
    // read as "lost" while the delete is in flight.
    this.finishing = true;
    this.log.info({ message }, 'run cannot start');
    await this.deleteJob();
    this.abort.abort();
    await this.complete('failed', undefined, message);
  }

  async cancel(by: Canceller): Promise<void> {
    if (this.done || this.finishing) return;
    this.finishing = true;
    await this.deleteJob();
    this.abort.abort();
    await this.complete('cancelled', undefined, `cancelled by ${by.identity.login}`, by);
  }

  private async deleteJob(): Promise<void> {
    try {
      // The uid precondition: a Job that replaced ours under the same name is not ours to delete.
      // Everything goes in the body: the API server reads DeleteOptions from the body when
      // there is one and ignores the query, so a `propagationPolicy` parameter beside a body
      // was dropped, and a Job's default (orphan) left the run's pod behind.
      await this.deps.kube.batch.deleteNamespacedJob({
        name: this.run.jobName,
        namespace: this.run.namespace,
        body: { propagationPolicy: 'Background', ...(this.run.jobUid ? { preconditions: { uid: this.run.jobUid } } : {}) },
      });
    } catch (err) {
      if (!isNotFound(err)) this.log.warn({ err: kubeFailure(err).message }, 'could not delete the Job');
    }
  }

  private async finish(status: RunStatus, exitCode?: number, message?: string): Promise<void> {
    if (this.done || this.finishing) return;
    this.finishing = true;
    if (this.capture && status !== 'lost') {
      // Let the capture drain what the container wrote before it ended.
      await Promise.race([this.capture, sleep(15_000)]);
    }
    this.abort.abort();
    await this.complete(status, exitCode, message);
  }

  /**
   * The server is shutting down: stop following and record nothing more (the stores
   * are about to close). The run stays active in the store; the next start reconciles
   * it from Kubernetes and finishes it with its true outcome.
   */
  detach(): void {
    this.detached = true;
    this.unfollowEvents();
    this.hub.close();
    this.output?.discard();
    clearTimeout(this.startTimer);
    this.abort.abort();
  }

  private async complete(status: RunStatus, exitCode: number | undefined, message: string | undefined, by?: Canceller): Promise<void> {
    if (this.detached) return;
    // Output read but not yet handed on belongs before the end frame.
    this.output?.flush();
    this.phase = 'done';
    this.unfollowEvents();
    clearTimeout(this.startTimer);
    const finishedAt = new Date();
    const started = Date.parse(this.run.startedAt ?? this.run.createdAt);
    // The record says how much output was stored: wait for the store to have it all.
    await this.hub.settle();
    const size = this.hub.storedSize();
    await this.update({ status, exitCode, message, finishedAt: finishedAt.toISOString(), outputBytes: size.bytes, outputTruncated: size.truncated });
    const type = status === 'cancelled' ? 'run.cancelled' : status === 'lost' ? 'run.lost' : 'run.finished';
    const frame: StatusFrame = { kind: 'end', status, exitCode, message, outputBytes: this.hub.total, outputTruncated: size.truncated };
    const durationMs = Math.max(0, finishedAt.getTime() - started);
    metrics.runsFinished.inc({ status });
    metrics.runDuration.observe({ status }, durationMs / 1000);
    this.log.info({ status, exitCode, durationMs, outputBytes: this.hub.total, message }, 'run finished');
    // Viewers (the CLI exits on it) learn the outcome once it is on record.
    await this.auditRun(type, { status, exitCode, message, durationMs }, by);
    this.hub.end(frame);
    this.deps.onDone(this.run.id);
  }
}
