// Follows one run from its Job's creation to a terminal state, driven by the
// pod and Job watches (no polling): reports start-up progress, captures output
// (log API, or attach for interactive runs), detects runs that cannot start, hit
// their deadline, were cancelled or vanished, and records the outcome once.
import type * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { AuditClient, Run, RunStatus } from '../../protocol/api.js';
import type { StatusFrame } from '../../protocol/frames.js';
import { backoffDelay } from '../../protocol/backoff.js';
import type { AuditLog } from '../store/audit.js';
import type { RunStore } from '../store/runs.js';
import type { KubeClients } from '../k8s/client.js';
import { isNotFound, kubeFailure } from '../k8s/client.js';
import { LogRequestError, isSplitStreamsUnsupported, readContainerLog, type LogStream } from '../k8s/logs.js';
import { LiveCapture, isPermanentAttachFailure, type CaptureTarget } from './capture.js';
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
  /** Who asked to cancel the run through another replica (store/controls.ts), if anyone did. */
  cancelRequest?: (runId: string) => Promise<Canceller | undefined>;
  /** The attach of an interactive run is up: this replica holds the program's stdin. */
  onAttached?: (runId: string) => void;
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
  private live: LiveCapture | undefined;
  /** Input that arrived before the capture existed (see write()). */
  private earlyStdin: Buffer[] = [];
  private lastSize: { cols: number; rows: number } | undefined;
  /** Bytes of output known missing; -1 once some went missing in an amount nobody can know. */
  private lost = 0;
  private lastOutputAt = Date.now();
  private finishing = false;
  /** The server is shutting down (detach): nothing more is written for this run. */
  private detached = false;
  /** Joins the log's small chunks before they are stored and sent (log capture only). */
  private output: OutputCoalescer | undefined;
  /** Stops following the pod's Events (only while the run waits to start). */
  private stopEvents: (() => void) | undefined;
  private readonly eventsSeen = new Set<string>();
  /** Said with the ending when it has no message of its own (why the run's input went away). */
  private endingNote: string | undefined;

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

  /** Something the person should learn with the ending, whatever it turns out to be. */
  noteForEnding(note: string): void {
    this.endingNote ??= note;
  }

  /**
   * After a restart: the watch's initial list had no pod and no Job for this run.
   * `neverCreated`: nor was a Job ever recorded for it — the server making the run
   * stopped between its record and the Job, so nothing ran.
   */
  onMissing(neverCreated = false): void {
    if (this.done) return;
    void this.finish(
      'lost',
      undefined,
      neverCreated
        ? 'its Job was never created: the server creating the run stopped first (nothing ran)'
        : 'the Job no longer exists (it ended or was deleted while oddjob was not watching)',
    );
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
    this.startCapture(pod.metadata!.name!);
  }

  private startCapture(pod: string): void {
    if (this.capture) return;
    // A container that already ended cannot be attached to: its log is all there is.
    // Ended already or not, the capture lines the log up with what is stored (a restart
    // or an adoption): a log the kubelet rotated meanwhile is a gap, not a skip by count.
    this.capture = this.captureLive(pod).catch((err) => {
      this.log.error({ err }, 'output capture failed');
      this.outputGap(-1, `oddjob could not read the output: ${(err as Error).message}`);
    });
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

  /** Both channels share one coalescer, so chunks keep the order they arrived in. */
  private coalescer(): OutputCoalescer {
    if (this.output) return this.output;
    let storeFailed = false;
    this.output = new OutputCoalescer((chunks) => {
      this.lastOutputAt = Date.now();
      this.hub.appendMany(chunks).catch((err: unknown) => {
        // Viewers still got it; the stored copy (replay, logs after the pod is gone) did not.
        if (!storeFailed) this.log.error({ err }, 'run output could not be stored; live viewers still receive it');
        storeFailed = true;
      });
    });
    return this.output;
  }

  /** Output is missing here: recorded (replay, run record, audit) and told to whoever watches. */
  private outputGap(lost: number, why: string): void {
    if (this.detached) return;
    this.output?.flush();
    this.lost = this.lost < 0 || lost < 0 ? -1 : this.lost + lost;
    this.log.warn({ lost, why }, 'run output has a gap');
    try {
      this.hub.gap(lost, why);
    } catch (err) {
      this.log.error({ err }, 'could not record the output gap');
    }
  }

  /** Attach for live output, the log for what came before (capture.ts). */
  private async captureLive(pod: string): Promise<void> {
    const split = this.deps.splitStreams;
    const output = this.coalescer();
    // What the store holds (after a restart or an adoption): the capture lines up the log after it.
    // A new run has nothing stored: no store round trip before the attach (a TTY's size goes with it).
    const known = this.hub.total === 0 ? { bytes: { 1: 0, 2: 0 }, tail: { 1: Buffer.alloc(0), 2: Buffer.alloc(0) } } : await this.hub.storedOutput(64 * 1024);
    const target: CaptureTarget = {
      namespace: this.run.namespace,
      pod,
      container: this.run.container,
      interactive: this.run.interactive,
      tty: this.run.tty,
      split: split.value !== false,
    };
    const live = new LiveCapture(
      this.deps.kube.kc,
      target,
      {
        output: (channel, data) => {
          this.lastOutputAt = Date.now();
          if (!this.detached) output.push(channel, data);
        },
        flush: () => {
          if (!this.detached) output.flush();
        },
        gap: (lost, why) => this.outputGap(lost, why),
        backlog: () => this.hub.backlog(),
      },
      this.log,
      this.abort.signal,
      known,
    );
    this.live = live;
    if (this.lastSize) live.resize(this.lastSize);
    for (const b of this.earlyStdin.splice(0)) live.write(b);
    let failures = 0;
    try {
      for (;;) {
        if (this.abort.signal.aborted) return;
        // Ended while we were not attached: the log has the rest.
        if (this.exit || this.deadline) return await live.readRest();
        try {
          this.holdingStdin();
          const how = await live.attachOnce();
          failures = 0;
          split.value ??= target.split;
          // A normal end is the container's output closing; it is about to be reported as exited.
          await this.waitForExit(how === 'ended' ? 2000 : 200);
          // The attach's end is not proof that all of it arrived (a 200 MiB bench run ended
          // 22 MiB short, cause unseen): the log is checked against what we have, and
          // whatever it holds after our last bytes is handed on.
          // Not with a TTY: the log of a terminal is not byte for byte what the attach
          // carried (seen in the web test: a false gap and the output twice).
          if (how === 'ended' && (this.exit || this.deadline)) return this.run.tty ? undefined : await live.readRest(true);
          if (how === 'dropped') this.noteDropped();
        } catch (err) {
          if (this.abort.signal.aborted) return;
          failures++;
          const next = await this.afterAttachFailure(err, failures, target);
          if (next === 'retry-now') failures = 0;
          if (next === 'follow-log') {
            this.live = undefined;
            return await this.captureLogs(pod, live.received());
          }
        }
      }
    } finally {
      if (!this.detached) output.flush();
    }
  }

  /** An attach that broke is opened again (unless it broke because this tracker stopped). */
  private noteDropped(): void {
    if (!this.abort.signal.aborted) this.log.warn({ exited: Boolean(this.exit) }, 'attach dropped; re-attaching');
  }

  /** This replica's attach is about to hold the program's stdin: input from viewers on other replicas is addressed here (control.ts). */
  private holdingStdin(): void {
    if (this.run.interactive) this.deps.onAttached?.(this.run.id);
  }

  /** What to do after an attach failed: retry (after a wait), or follow the log instead; throws to give up. */
  private async afterAttachFailure(err: unknown, failures: number, target: CaptureTarget): Promise<'retry' | 'retry-now' | 'follow-log'> {
    if (isSplitStreamsUnsupported(err)) {
      target.split = false;
      this.deps.splitStreams.value = false;
      this.log.warn('the API server does not support PodLogsQuerySplitStreams; stderr is merged into stdout');
      return 'retry-now';
    }
    if (isPermanentAttachFailure(err) && (err as { status: number }).status === 403 && !this.run.interactive) {
      this.log.warn({ err: (err as Error).message }, 'no permission to attach; following the log instead (output may be lost to log rotation)');
      return 'follow-log';
    }
    if (isPermanentAttachFailure(err)) {
      // Most often the container ended between the pod event and the attach.
      await this.waitForExit(1000);
      if (failures > 30) throw err;
      return 'retry';
    }
    this.log.warn({ err: (err as Error).message, failures }, 'attach failed; retrying');
    await sleep(Math.min(100 * 2 ** failures, 5000), this.abort.signal);
    if (failures > 60) throw err;
    return 'retry';
  }

  private async captureLogs(pod: string, from?: Record<1 | 2, number>): Promise<void> {
    const split = this.deps.splitStreams;
    // After a restart, what is already stored must not be stored again.
    const received = from ?? (await this.hub.storedPerChannel());
    const output = this.coalescer();

    const follow = async (stream: LogStream, channel: 1 | 2): Promise<void> => {
      let failures = 0;
      for (;;) {
        if (this.abort.signal.aborted) return;
        const terminatedBefore = Boolean(this.exit || this.deadline);
        try {
          const seen = await readContainerLog(
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
          // A log shorter than what we already have was rotated: it no longer starts
          // where ours does, so skipping by count is meaningless and some output is gone.
          if (seen < received[channel]) {
            this.outputGap(-1, 'the kubelet rotated the container log before oddjob could read all of it');
            return;
          }
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

  /**
   * stdin from the run's owner (interactive runs only). An empty chunk is end of input.
   * Returns false once the input backlog (held until the attach joins the log, or not
   * yet sent to the API server) passes STDIN_HIGH_WATER: the caller stops reading its
   * viewer until stdinDrained() resolves, so input held in memory stays bounded.
   */
  write(data: Buffer): boolean {
    if (this.done || !this.run.interactive) return true;
    // Typed before the pod runs: held until the capture exists, which holds it until it joins.
    if (this.live) this.live.write(data);
    else this.earlyStdin.push(data);
    return this.stdinBacklog() < STDIN_HIGH_WATER;
  }

  /** Resolves when the input backlog is below half the high-water mark (or the run ended). */
  stdinDrained(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.done || this.detached || this.stdinBacklog() < STDIN_HIGH_WATER / 2) return resolve();
        // Neither the held input nor the attach socket says when it drains below a mark.
        setTimeout(check, 20).unref();
      };
      check();
    });
  }

  private stdinBacklog(): number {
    return this.earlyStdin.reduce((n, b) => n + b.length, 0) + (this.live?.stdinBacklog() ?? 0);
  }

  resize(size: { cols: number; rows: number }): void {
    // Sent before the pod runs: kept for the capture, which applies it once attached.
    this.lastSize = size;
    this.live?.resize(size);
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
      await deleteRunJob(this.deps.kube, this.run);
    } catch (err) {
      this.log.warn({ err: kubeFailure(err).message }, 'could not delete the Job');
    }
  }

  private async finish(status: RunStatus, exitCode?: number, message?: string): Promise<void> {
    if (this.done || this.finishing) return;
    this.finishing = true;
    // Cancelled through another replica (which deleted the Job, so this may look like a
    // loss or a killed command): the ending is the cancel, by whoever asked.
    const by = await this.deps.cancelRequest?.(this.run.id).catch((err: unknown) => {
      this.log.warn({ err: (err as Error).message }, 'could not read whether the run was cancelled');
      return undefined;
    });
    if (by) {
      await this.deleteJob();
      this.abort.abort();
      await this.complete('cancelled', undefined, `cancelled by ${by.identity.login}`, by);
      return;
    }
    if (this.capture && status !== 'lost') {
      // Let the capture drain what the container wrote before it ended, for as long as
      // it keeps delivering: a large output read at the node's pace takes a while.
      let drained = false;
      void this.capture.then(() => (drained = true));
      const since = Date.now();
      const progress = () => Math.max(this.lastOutputAt, this.live?.lastOutputAt ?? 0, since);
      // Each wait's timer is cleared when it is done: left pending, a 15 s grace held an
      // idle server open that long after its last run on SIGTERM.
      while (!drained && Date.now() - progress() < 15_000) {
        const tick = new AbortController();
        await Promise.race([this.capture, sleep(500, tick.signal)]).finally(() => tick.abort());
      }
      if (!drained) this.outputGap(-1, 'the output stopped arriving for 15 s after the command ended; the rest could not be read');
    }
    this.abort.abort();
    await this.complete(status, exitCode, message);
  }

  /**
   * The server is shutting down: stop following and record nothing more (the stores
   * are about to close). The run stays active in the store; the next start reconciles
   * it from Kubernetes and finishes it with its true outcome.
   *
   * `handOff`: the server goes on, but another tracker (another replica's, or this
   * one's after adopting the run again) now follows the run. Its viewers are told why
   * and closed, so they reconnect and follow whoever tracks it now; left attached here
   * they would wait for an ending this tracker will never record.
   */
  detach(handOff?: string): void {
    this.detached = true;
    this.unfollowEvents();
    if (handOff) this.hub.end({ kind: 'error', code: 'unavailable', message: handOff });
    this.hub.close();
    this.output?.discard();
    clearTimeout(this.startTimer);
    this.abort.abort();
  }

  private async complete(status: RunStatus, exitCode: number | undefined, message: string | undefined, by?: Canceller): Promise<void> {
    if (this.detached) return;
    message ??= this.endingNote;
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
    const outputLost = this.lost === 0 ? undefined : this.lost;
    await this.update({
      status,
      exitCode,
      message,
      finishedAt: finishedAt.toISOString(),
      outputBytes: size.bytes,
      outputTruncated: size.truncated,
      outputLost,
    });
    const type = status === 'cancelled' ? 'run.cancelled' : status === 'lost' ? 'run.lost' : 'run.finished';
    const frame: StatusFrame = { kind: 'end', status, exitCode, message, outputBytes: this.hub.total, outputTruncated: size.truncated, outputLost };
    const durationMs = Math.max(0, finishedAt.getTime() - started);
    metrics.runsFinished.inc({ status });
    metrics.runDuration.observe({ status }, durationMs / 1000);
    this.log.info({ status, exitCode, durationMs, outputBytes: this.hub.total, outputLost, message }, 'run finished');
    // Viewers (the CLI exits on it) learn the outcome once it is on record.
    const lostNote = outputLost === undefined ? {} : { outputLost };
    await this.auditRun(type, { status, exitCode, message, durationMs, ...lostNote }, by);
    this.hub.end(frame);
    this.deps.onDone(this.run.id);
  }
}

/**
 * Deletes a run's Job (and, in the background, its pod); a Job already gone is fine.
 * The uid precondition: a Job that replaced ours under the same name is not ours to delete.
 * Everything goes in the body: the API server reads DeleteOptions from the body when
 * there is one and ignores the query, so a `propagationPolicy` parameter beside a body
 * was dropped, and a Job's default (orphan) left the run's pod behind.
 */
export async function deleteRunJob(kube: KubeClients, run: Pick<Run, 'jobName' | 'namespace' | 'jobUid'>): Promise<void> {
  try {
    await kube.batch.deleteNamespacedJob({
      name: run.jobName,
      namespace: run.namespace,
      body: { propagationPolicy: 'Background', ...(run.jobUid ? { preconditions: { uid: run.jobUid } } : {}) },
    });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}
