// PURE: the short Job that lists the directories a Deployment's owner declared for
// path completion (deployments/path-index.ts). It is not a run: it takes the
// Deployment's image and what that image needs to be pulled and admitted
// (pull secrets, security contexts, node placement, working directory), and
// nothing else — no env, no secrets, no volumes, no service account token, no
// labels that a NetworkPolicy or a Service selects. Its command is fixed; the
// roots come from the owner's annotation (already checked to be plain paths) and
// reach `sh` only as positional arguments, never as script text.
import type { V1Deployment, V1Job } from '@kubernetes/client-node';
import { LABELS } from './clone.js';
import { MAX_ENTRIES } from '../deployments/path-index.js';

export const INDEX_PURPOSE = 'oddjob.io/purpose';

// The working directory first (relative paths start there), then every directory
// (with a trailing "/") and every other entry under the roots, a bounded number.
const LIST_SCRIPT = `pwd; for r in "$@"; do find "$r" -maxdepth 8 -type d 2>/dev/null | sed 's|$|/|'; find "$r" -maxdepth 8 ! -type d 2>/dev/null; done | head -n ${MAX_ENTRIES}`;

export function indexJobName(deployment: string, suffix: string): string {
  const tail = `-oddjob-paths-${suffix}`;
  return `${deployment.slice(0, 63 - tail.length).replace(/[-.]+$/, '')}${tail}`;
}

export function indexJob(deployment: V1Deployment, container: string, roots: readonly string[], suffix: string): V1Job {
  const name = deployment.metadata!.name!;
  const pod = deployment.spec!.template.spec!;
  const c = pod.containers.find((x) => x.name === container)!;
  const labels = { [LABELS.managedBy]: 'oddjob', [LABELS.deployment]: name, [INDEX_PURPOSE]: 'completion-index' };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: indexJobName(name, suffix), namespace: deployment.metadata!.namespace, labels },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: 60,
      ttlSecondsAfterFinished: 60,
      template: {
        metadata: { labels: { [INDEX_PURPOSE]: 'completion-index' } },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          imagePullSecrets: pod.imagePullSecrets,
          securityContext: pod.securityContext,
          nodeSelector: pod.nodeSelector,
          tolerations: pod.tolerations,
          affinity: pod.affinity?.nodeAffinity ? { nodeAffinity: pod.affinity.nodeAffinity } : undefined,
          runtimeClassName: pod.runtimeClassName,
          containers: [
            {
              name: 'index',
              image: c.image,
              imagePullPolicy: c.imagePullPolicy,
              workingDir: c.workingDir,
              securityContext: c.securityContext,
              command: ['sh', '-c', LIST_SCRIPT, 'oddjob-paths', ...roots],
              resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '500m', memory: '128Mi' } },
            },
          ],
        },
      },
    },
  };
}
