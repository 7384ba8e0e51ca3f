// PURE: which Kubernetes objects belong to a run. The run-id label is only a claim:
// anyone who may create a pod in any served namespace can put it on their own pod.
// A run is driven only by the Job oddjob created (same namespace, the name it chose,
// the uid the API server gave it at create time) and by the pod that Job controls.
// Table-tested in test/unit/ownership.test.ts.
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import type { Run } from '../../protocol/api.js';
import { LABELS } from '../jobs/clone.js';

export type Ownership = { ok: true } | { ok: false; why: string };

type RunKeys = Pick<Run, 'id' | 'namespace' | 'jobName' | 'jobUid' | 'podName'>;

const yes: Ownership = { ok: true };
const no = (why: string): Ownership => ({ ok: false, why });

export function jobBelongsTo(run: RunKeys, job: V1Job): Ownership {
  const m = job.metadata ?? {};
  if (m.namespace !== run.namespace) return no(`it is in namespace ${m.namespace ?? '?'}, the run is in ${run.namespace}`);
  if (m.name !== run.jobName) return no(`it is Job ${m.name ?? '?'}, the run's Job is ${run.jobName}`);
  if (!run.jobUid) return no('the uid of the Job oddjob created is not known');
  if (m.uid !== run.jobUid) return no(`its uid ${m.uid ?? '?'} is not that of the Job oddjob created (${run.jobUid})`);
  return yes;
}

export function podBelongsTo(run: RunKeys, pod: V1Pod): Ownership {
  const m = pod.metadata ?? {};
  if (m.namespace !== run.namespace) return no(`it is in namespace ${m.namespace ?? '?'}, the run is in ${run.namespace}`);
  if (!run.jobUid) return no('the uid of the Job oddjob created is not known');
  const controller = (m.ownerReferences ?? []).find((r) => r.controller === true);
  if (!controller || controller.kind !== 'Job' || controller.apiVersion !== 'batch/v1' || controller.uid !== run.jobUid) {
    return no(`it is not controlled by the run's Job ${run.jobName} (uid ${run.jobUid})`);
  }
  // backoffLimit 0: a run's Job makes one pod. Once it is known, no other counts.
  if (run.podName && m.name !== run.podName) return no(`the run's pod is ${run.podName}`);
  return yes;
}

/**
 * For a run recorded before Job uids were stored: the Job found under the run's name is
 * taken as the run's own only if it carries everything oddjob put on it for this run.
 */
export function jobAdoptableBy(run: RunKeys & Pick<Run, 'deployment' | 'user' | 'command'>, job: V1Job): Ownership {
  const m = job.metadata ?? {};
  if (m.namespace !== run.namespace || m.name !== run.jobName) return no(`it is ${m.namespace ?? '?'}/${m.name ?? '?'}, not ${run.namespace}/${run.jobName}`);
  const labels = m.labels ?? {};
  const annotations = m.annotations ?? {};
  const expected: Array<[string, string | undefined, string]> = [
    [`label ${LABELS.managedBy}`, labels[LABELS.managedBy], 'oddjob'],
    [`label ${LABELS.runId}`, labels[LABELS.runId], run.id],
    [`label ${LABELS.deployment}`, labels[LABELS.deployment], run.deployment],
    [`annotation ${LABELS.runId}`, annotations[LABELS.runId], run.id],
    ['annotation oddjob.io/user', annotations['oddjob.io/user'], run.user],
    ['annotation oddjob.io/command', annotations['oddjob.io/command'], JSON.stringify(run.command)],
  ];
  for (const [what, got, want] of expected) if (got !== want) return no(`its ${what} is not what oddjob set for run ${run.id}`);
  if (!m.uid) return no('it has no uid');
  return yes;
}
