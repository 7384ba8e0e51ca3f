// The Tasks of the served namespaces, fed by one watch per namespace: what
// `oddjob tasks` lists, and where each Task's validity is decided and written to its
// status (Ready True/False with the reason). A run never trusts this cache for what it
// runs: it reads the Task from the API server at request time (runs/service.ts).
import type { Logger } from 'pino';
import type { KubeClients } from '../k8s/client.js';
import { watchTasks, writeTaskStatus } from '../k8s/tasks.js';
import type { ResourceWatch } from '../k8s/watch.js';
import { type TaskObject, type TaskValidation, readyCondition, validateTaskSpec } from './spec.js';

export interface CatalogEntry {
  task: TaskObject;
  validation: TaskValidation;
}

export class TaskCatalog {
  private readonly watches = new Map<string, ResourceWatch<TaskObject>>();
  /** Validation per Task uid+generation: a status write brings the Task back unchanged. */
  private readonly validated = new Map<string, { key: string; validation: TaskValidation }>();

  constructor(private readonly opts: { kube: KubeClients; namespaces: readonly string[]; logger: Logger; githubOrg?: string }) {
    for (const namespace of opts.namespaces) {
      const w = watchTasks(opts.kube, namespace, opts.logger);
      w.on((type, task) => {
        if (type === 'DELETED') this.validated.delete(task.metadata?.uid ?? '');
        else void this.report(task);
      });
      this.watches.set(namespace, w);
    }
  }

  start(): void {
    for (const w of this.watches.values()) w.start();
  }

  stop(): void {
    for (const w of this.watches.values()) w.stop();
  }

  whenSynced(): Promise<void> {
    return Promise.all([...this.watches.values()].map((w) => w.whenSynced())).then(() => undefined);
  }

  unsynced(): string | undefined {
    for (const [ns, w] of this.watches) if (!w.isSynced) return ns;
    return undefined;
  }

  get(namespace: string, name: string): CatalogEntry | undefined {
    const task = this.watches.get(namespace)?.get(name);
    return task ? { task, validation: this.validate(task) } : undefined;
  }

  /** Whether the namespace's watch has listed (otherwise list() may be missing Tasks). */
  isSynced(namespace: string): boolean {
    return this.watches.get(namespace)?.isSynced ?? false;
  }

  list(namespace: string): CatalogEntry[] {
    return (this.watches.get(namespace)?.list() ?? []).map((task) => ({ task, validation: this.validate(task) }));
  }

  validate(task: TaskObject): TaskValidation {
    const uid = task.metadata?.uid ?? `${task.metadata?.namespace}/${task.metadata?.name}`;
    const key = `${task.metadata?.generation ?? 0}`;
    const hit = this.validated.get(uid);
    if (hit?.key === key) return hit.validation;
    const validation = validateTaskSpec(task.spec, this.opts.githubOrg);
    if (this.validated.size > 10_000) this.validated.clear();
    this.validated.set(uid, { key, validation });
    return validation;
  }

  /** Writes the Ready condition when it differs from what the Task's status says. */
  private async report(task: TaskObject): Promise<void> {
    const validation = this.validate(task);
    const previous = task.status?.conditions?.find((c) => c.type === 'Ready');
    const next = readyCondition(validation, task.metadata?.generation, previous, new Date());
    if (
      previous &&
      previous.status === next.status &&
      previous.reason === next.reason &&
      previous.message === next.message &&
      previous.observedGeneration === next.observedGeneration
    ) {
      return;
    }
    try {
      await writeTaskStatus(this.opts.kube, task, next);
      if (!validation.ok) this.opts.logger.info({ task: `${task.metadata?.namespace}/${task.metadata?.name}`, problem: validation.problem }, 'task is invalid');
    } catch (err) {
      this.opts.logger.warn(
        { err: (err as Error).message, task: `${task.metadata?.namespace}/${task.metadata?.name}` },
        'could not write the status of a task',
      );
    }
  }
}
