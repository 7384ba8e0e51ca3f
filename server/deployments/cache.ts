// The Deployments of the served namespaces as the API server has them now, fed by one
// watch per namespace. Who may see, stream, type into or cancel an existing run is
// decided from here, so a changed annotation or a deleted Deployment takes effect
// within the watch lag (PRODUCT.md §1), and a listing of 500 runs costs no API call.
// While a namespace's watch is not live (not yet listed, or reconnecting) the cache
// may be behind, so answers come from a GET instead.
import type * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeClients } from '../k8s/client.js';
import { isNotFound, toServiceError } from '../k8s/client.js';
import { ResourceWatch } from '../k8s/watch.js';

export class DeploymentCache {
  private readonly watches = new Map<string, ResourceWatch<k8s.V1Deployment>>();
  private readonly listeners = new Set<(namespace: string, name: string) => void>();

  constructor(private readonly opts: { kube: KubeClients; namespaces: readonly string[]; logger: Logger }) {
    const { kube, logger } = opts;
    for (const namespace of opts.namespaces) {
      const w = new ResourceWatch<k8s.V1Deployment>({
        kc: kube.kc,
        path: `/apis/apps/v1/namespaces/${namespace}/deployments`,
        list: () => kube.apps.listNamespacedDeployment({ namespace }),
        logger,
      });
      w.on((_type, d) => {
        for (const l of this.listeners) l(namespace, d.metadata?.name ?? '');
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

  /** Names the namespace whose watch has not listed yet, if any. */
  unsynced(): string | undefined {
    for (const [ns, w] of this.watches) if (!w.isSynced) return ns;
    return undefined;
  }

  /** Called after every change the watch sees (and after each relist) to a Deployment. */
  onChange(listener: (namespace: string, name: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The Deployment as it is now; undefined when it does not exist. From the watch when
   * it is live, else from the API server. Throws HttpError when neither can answer.
   */
  async current(namespace: string, name: string): Promise<k8s.V1Deployment | undefined> {
    const w = this.watches.get(namespace);
    if (!w) return undefined;
    if (w.isLive) return w.get(name);
    try {
      return await this.opts.kube.apps.readNamespacedDeployment({ namespace, name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw toServiceError(err, `deployment ${namespace}/${name}`);
    }
  }
}
