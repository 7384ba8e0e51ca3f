// Path completion inside a Deployment's image: one listing per (namespace, image,
// roots), built by a short Job (jobs/index-job.ts) the first time someone asks,
// then kept and answered from memory. A TAB never waits for the Job: the first
// answers "indexing", later ones answer from the cache in milliseconds.
// Who may ask is decided by the caller (deployments/service.ts): only people who
// may run in the Deployment. Each build is logged with who caused it.
import { randomBytes } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeClients } from '../k8s/client.js';
import { isNotFound, kubeFailure } from '../k8s/client.js';
import { indexJob } from '../jobs/index-job.js';
import { parseListing, type PathIndex } from './path-index.js';

/** A listing of a tag (which can move) is rebuilt after this; one of a digest is kept. */
const TAG_TTL_MS = 10 * 60_000;
/** A build that failed (no sh or find in the image, cannot be scheduled) is not retried sooner. */
const FAILED_TTL_MS = 2 * 60_000;
const BUILD_TIMEOUT_MS = 90_000;
const MAX_CACHED = 500;
const MAX_LOG_BYTES = 2 << 20;

type Entry =
  { state: 'building'; since: number } | { state: 'ready'; index: PathIndex; at: number; pinned: boolean } | { state: 'failed'; why: string; at: number };

export type IndexAnswer = { state: 'ready'; index: PathIndex } | { state: 'indexing' } | { state: 'unavailable'; why: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** true once the listing pod succeeded; throws when it failed or cannot start. */
function listingDone(pod: k8s.V1Pod): boolean {
  const status = pod.status?.containerStatuses?.[0]?.state;
  if (pod.status?.phase === 'Succeeded') return true;
  if (pod.status?.phase === 'Failed') {
    const t = status?.terminated;
    throw new Error(`the listing Job failed (${t?.reason ?? 'Error'}, exit code ${t?.exitCode ?? '?'}); the image needs sh and find`);
  }
  const waiting = status?.waiting?.reason;
  if (waiting && /ErrImagePull|ImagePullBackOff|InvalidImageName|CreateContainer|RunContainerError/.test(waiting)) {
    throw new Error(`the listing Job cannot start (${waiting})`);
  }
  return false;
}

export class PathIndexCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly deps: { kube: KubeClients; logger: Logger }) {}

  /** The listing for this Deployment's container image and roots, starting a build when there is none. */
  lookup(deployment: k8s.V1Deployment, container: string, roots: readonly string[], requestedBy: string): IndexAnswer {
    const namespace = deployment.metadata!.namespace!;
    const image = deployment.spec!.template.spec!.containers.find((c) => c.name === container)?.image ?? '';
    const key = JSON.stringify([namespace, image, roots]);
    const now = Date.now();
    const e = this.entries.get(key);
    if (e?.state === 'ready' && (e.pinned || now - e.at < TAG_TTL_MS)) return { state: 'ready', index: e.index };
    if (e?.state === 'failed' && now - e.at < FAILED_TTL_MS) return { state: 'unavailable', why: e.why };
    if (e?.state === 'building' && now - e.since < BUILD_TIMEOUT_MS + 10_000) return { state: 'indexing' };
    if (this.entries.size >= MAX_CACHED) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { state: 'building', since: now });
    this.deps.logger.info({ namespace, deployment: deployment.metadata!.name, container, image, roots, requestedBy }, 'building the path completion index');
    void this.build(deployment, container, roots).then(
      (index) => this.entries.set(key, { state: 'ready', index, at: Date.now(), pinned: image.includes('@sha256:') }),
      (err: unknown) => {
        const why = (err as Error).message;
        this.deps.logger.warn({ namespace, deployment: deployment.metadata!.name, image, why }, 'path completion index failed');
        this.entries.set(key, { state: 'failed', why, at: Date.now() });
      },
    );
    // A stale listing of a tag still answers while the new one builds.
    return e?.state === 'ready' ? { state: 'ready', index: e.index } : { state: 'indexing' };
  }

  private async build(deployment: k8s.V1Deployment, container: string, roots: readonly string[]): Promise<PathIndex> {
    const { kube } = this.deps;
    const namespace = deployment.metadata!.namespace!;
    const body = indexJob(deployment, container, roots, randomBytes(4).toString('hex'));
    const job = await kube.batch.createNamespacedJob({ namespace, body });
    const name = job.metadata!.name!;
    const uid = job.metadata!.uid!;
    try {
      // A few seconds at most, once per image: polling the Job's pod is simpler than a watch here.
      const deadline = Date.now() + BUILD_TIMEOUT_MS;
      while (Date.now() < deadline) {
        await sleep(400);
        const pods = await kube.core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/controller-uid=${uid}` });
        // The label is only a claim; the pod counts if our Job controls it.
        const pod = pods.items.find((p) => p.metadata?.ownerReferences?.some((r) => r.controller && r.uid === uid));
        if (!pod || !listingDone(pod)) continue;
        const log = await kube.core.readNamespacedPodLog({ namespace, name: pod.metadata!.name!, container: 'index', limitBytes: MAX_LOG_BYTES });
        const index = parseListing(String(log), roots);
        if (!index) throw new Error('the listing Job printed no working directory');
        return index;
      }
      throw new Error(`the listing Job did not finish within ${BUILD_TIMEOUT_MS / 1000}s`);
    } finally {
      await kube.batch.deleteNamespacedJob({ name, namespace, body: { propagationPolicy: 'Background', preconditions: { uid } } }).catch((err: unknown) => {
        if (!isNotFound(err)) this.deps.logger.warn({ job: name, err: kubeFailure(err).message }, 'could not delete the listing Job');
      });
    }
  }
}
