// A list-then-watch loop that assumes watches die: it re-watches from the last
// resourceVersion, relists on 410 Gone, backs off on errors, and aborts a watch
// that has been silent for too long (client-node 1.4 has no idle timeout and its
// informer stops for good on the first error).
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { metrics, watchedResource } from '../metrics.js';
import { backoffDelay } from '../../protocol/backoff.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export interface Listed<T> {
  items: T[];
  metadata?: { resourceVersion?: string };
}

export interface ResourceWatchOptions<T extends k8s.KubernetesObject> {
  kc: k8s.KubeConfig;
  /** e.g. /api/v1/namespaces/demo/pods */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  list: () => Promise<Listed<T>>;
  logger: Logger;
  /** Server-side watch timeout; the watchdog fires a little after it. */
  timeoutSeconds?: number;
}

export class ResourceWatch<T extends k8s.KubernetesObject> {
  private readonly objects = new Map<string, T>();
  private readonly listeners = new Set<(type: WatchEventType, obj: T) => void>();
  private readonly syncWaiters: Array<() => void> = [];
  private resourceVersion = '';
  private request: AbortController | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;
  private failures = 0;
  private synced = false;
  /** A watch request is open: the cache lags the API server by no more than the watch does. */
  private watching = false;

  constructor(private readonly opts: ResourceWatchOptions<T>) {}

  on(listener: (type: WatchEventType, obj: T) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get(name: string): T | undefined {
    return this.objects.get(name);
  }

  list(): T[] {
    return [...this.objects.values()];
  }

  /** Resolves once the first list has been delivered. */
  whenSynced(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((r) => this.syncWaiters.push(r));
  }

  get isSynced(): boolean {
    return this.synced;
  }

  /**
   * Listed and watching right now. Between a failed watch and the next list or watch
   * the cache may miss changes, so callers that must not act on stale state ask the
   * API server instead.
   */
  get isLive(): boolean {
    return this.synced && this.watching && !this.stopped;
  }

  start(): void {
    this.stopped = false;
    void this.relist();
  }

  stop(): void {
    this.stopped = true;
    this.watching = false;
    clearTimeout(this.watchdog);
    clearTimeout(this.retry);
    this.request?.abort();
  }

  private emit(type: WatchEventType, obj: T) {
    for (const l of this.listeners) {
      try {
        l(type, obj);
      } catch (err) {
        this.opts.logger.error({ err, path: this.opts.path }, 'watch listener failed');
      }
    }
  }

  private async relist(): Promise<void> {
    if (this.stopped) return;
    try {
      const list = await this.opts.list();
      const seen = new Set<string>();
      for (const obj of list.items) {
        const name = obj.metadata!.name!;
        seen.add(name);
        const had = this.objects.has(name);
        this.objects.set(name, obj);
        this.emit(had ? 'MODIFIED' : 'ADDED', obj);
      }
      for (const [name, obj] of this.objects) {
        if (!seen.has(name)) {
          this.objects.delete(name);
          this.emit('DELETED', obj);
        }
      }
      this.resourceVersion = list.metadata?.resourceVersion ?? '';
      if (!this.synced) {
        this.synced = true;
        this.syncWaiters.splice(0).forEach((r) => r());
      }
      this.failures = 0;
      await this.watch();
    } catch (err) {
      this.scheduleRetry(err, true);
    }
  }

  private async watch(): Promise<void> {
    if (this.stopped) return;
    const timeoutSeconds = this.opts.timeoutSeconds ?? 290;
    const query: Record<string, string | number | boolean> = {
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds,
    };
    if (this.opts.labelSelector) query.labelSelector = this.opts.labelSelector;
    if (this.opts.fieldSelector) query.fieldSelector = this.opts.fieldSelector;
    this.armWatchdog(timeoutSeconds + 30);
    this.watching = false;
    let ended = false;
    this.request = await new k8s.Watch(this.opts.kc).watch(
      this.opts.path,
      query,
      (type, obj: T & { code?: number }) => {
        this.armWatchdog(timeoutSeconds + 30);
        if (type === 'BOOKMARK') {
          this.resourceVersion = obj.metadata?.resourceVersion ?? this.resourceVersion;
          return;
        }
        if (type === 'ERROR') {
          // 410 Gone arrives as an ERROR event: our resourceVersion is too old.
          metrics.watchRestarts.inc({ resource: watchedResource(this.opts.path), reason: 'expired' });
          this.resourceVersion = '';
          this.watching = false;
          this.request?.abort();
          return;
        }
        const name = obj.metadata!.name!;
        this.resourceVersion = obj.metadata?.resourceVersion ?? this.resourceVersion;
        if (type === 'DELETED') this.objects.delete(name);
        else this.objects.set(name, obj);
        this.emit(type as WatchEventType, obj);
      },
      (err: unknown) => {
        ended = true;
        this.watching = false;
        clearTimeout(this.watchdog);
        if (this.stopped) return;
        const code = (err as { statusCode?: number } | null)?.statusCode;
        if (err && code !== 410 && (err as Error).name !== 'AbortError') {
          this.scheduleRetry(err, false);
        } else if (!this.resourceVersion || code === 410) {
          void this.relist();
        } else {
          void this.watch().catch((e) => this.scheduleRetry(e, false));
        }
      },
    );
    // watch() resolves once the API server answered 200 (or after done() for a refusal).
    if (!ended && !this.stopped) this.watching = true;
  }

  private armWatchdog(seconds: number) {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      this.opts.logger.warn({ path: this.opts.path }, 'watch silent for too long; restarting it');
      metrics.watchRestarts.inc({ resource: watchedResource(this.opts.path), reason: 'silent' });
      this.request?.abort();
    }, seconds * 1000);
    this.watchdog.unref();
  }

  private scheduleRetry(err: unknown, relist: boolean) {
    if (this.stopped) return;
    const delay = backoffDelay(this.failures++, { baseMs: 400, capMs: 10_000 });
    this.opts.logger.warn({ path: this.opts.path, err: (err as Error)?.message, delay }, 'watch failed; retrying');
    metrics.watchRestarts.inc({ resource: watchedResource(this.opts.path), reason: 'error' });
    clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      if (relist || !this.resourceVersion) void this.relist();
      else void this.watch().catch((e) => this.scheduleRetry(e, true));
    }, delay);
  }
}
