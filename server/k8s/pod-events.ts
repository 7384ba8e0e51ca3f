// Follows the Events about one pod (a list-watch on the namespace's events with a
// field selector on the pod's uid). What an Event means, and whether it is really
// about the pod, is decided in runs/pod-events.ts; this only fetches them.
import type * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeClients } from './client.js';
import { ResourceWatch } from './watch.js';

export function watchPodEvents(
  kube: KubeClients,
  logger: Logger,
  pod: { namespace: string; uid: string },
  onEvent: (event: k8s.CoreV1Event) => void,
): () => void {
  const fieldSelector = `involvedObject.uid=${pod.uid}`;
  const watch = new ResourceWatch<k8s.CoreV1Event>({
    kc: kube.kc,
    path: `/api/v1/namespaces/${pod.namespace}/events`,
    fieldSelector,
    list: () => kube.core.listNamespacedEvent({ namespace: pod.namespace, fieldSelector }),
    logger,
    timeoutSeconds: 120,
  });
  watch.on((type, event) => {
    if (type !== 'DELETED') onEvent(event);
  });
  watch.start();
  return () => watch.stop();
}
