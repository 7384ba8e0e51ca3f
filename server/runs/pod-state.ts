// PURE: what a run's pod status means for the person waiting on it — still
// starting (and why), running, finished with an exit code, or unable to start.
import type { V1Job, V1Pod, V1ContainerStatus } from '@kubernetes/client-node';

export type PodView =
  | { kind: 'starting'; progress: string }
  | { kind: 'running' }
  | { kind: 'terminated'; exitCode: number; reason?: string }
  | { kind: 'cannot-start'; message: string };

/** Waiting reasons that will not fix themselves; the run fails instead of hanging. */
const FATAL_WAITING = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
  'CrashLoopBackOff',
]);

function describeWaiting(status: V1ContainerStatus, what: string): PodView | undefined {
  const w = status.state?.waiting;
  if (!w) return undefined;
  const reason = w.reason ?? 'Waiting';
  const detail = w.message ? `: ${w.message}` : '';
  if (FATAL_WAITING.has(reason)) return { kind: 'cannot-start', message: `${what} cannot start — ${reason}${detail}` };
  const friendly: Record<string, string> = {
    ContainerCreating: 'creating the container',
    PodInitializing: 'running init containers',
  };
  return { kind: 'starting', progress: friendly[reason] ?? `${reason}${detail}` };
}

export function interpretPod(pod: V1Pod, container: string): PodView {
  const status = pod.status ?? {};
  const main = status.containerStatuses?.find((c) => c.name === container);
  if (main?.state?.terminated) {
    return { kind: 'terminated', exitCode: main.state.terminated.exitCode, reason: main.state.terminated.reason };
  }
  if (main?.state?.running) return { kind: 'running' };

  // Regular init containers that fail doom the pod (restartPolicy Never).
  const sidecars = new Set((pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === 'Always').map((c) => c.name));
  for (const ic of status.initContainerStatuses ?? []) {
    const t = ic.state?.terminated;
    if (t && t.exitCode !== 0 && !sidecars.has(ic.name)) {
      return { kind: 'cannot-start', message: `init container ${ic.name} failed with exit code ${t.exitCode}${t.reason ? ` (${t.reason})` : ''}` };
    }
    const v = describeWaiting(ic, `init container ${ic.name}`);
    if (v?.kind === 'cannot-start') return v;
  }
  if (status.phase === 'Failed') {
    return { kind: 'cannot-start', message: `pod failed${status.reason ? ` (${status.reason})` : ''}${status.message ? `: ${status.message}` : ''}` };
  }
  const scheduled = status.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False') {
    return { kind: 'starting', progress: `not scheduled yet — ${scheduled.reason ?? ''}${scheduled.message ? `: ${scheduled.message}` : ''}` };
  }
  if (main) {
    const v = describeWaiting(main, `container ${container}`);
    if (v) return v;
  }
  if (!scheduled) return { kind: 'starting', progress: 'waiting for the scheduler' };
  return { kind: 'starting', progress: 'starting the pod' };
}

export type JobView = { kind: 'active' } | { kind: 'deadline'; message: string } | { kind: 'failed'; message: string } | { kind: 'complete' };

export function interpretJob(job: V1Job): JobView {
  for (const c of job.status?.conditions ?? []) {
    if (c.status !== 'True') continue;
    // Since 1.31 the Job controller sets FailureTarget first, then kills the
    // pods, and adds Failed only once they are gone: the pod's exit (137)
    // would otherwise arrive before we learn it was the deadline.
    if ((c.type === 'Failed' || c.type === 'FailureTarget') && c.reason === 'DeadlineExceeded') {
      return { kind: 'deadline', message: `the run hit its time limit (${job.spec?.activeDeadlineSeconds}s)` };
    }
    if (c.type === 'Failed' || c.type === 'FailureTarget') return { kind: 'failed', message: `${c.reason ?? 'Failed'}${c.message ? `: ${c.message}` : ''}` };
    if (c.type === 'Complete') return { kind: 'complete' };
  }
  return { kind: 'active' };
}
