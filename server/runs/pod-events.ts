// PURE: which Kubernetes Events belong to a run's pod, and the progress line each
// one becomes while the run waits to start (Scheduled, Pulling, Pulled, Created,
// FailedScheduling, BackOff, FailedMount ...).
//
// An Event is not evidence of anything: whoever may create events in the namespace
// can write one about any object, with any reason and message. So an Event counts
// only if it names the run's own pod by uid (the pod oddjob verified as its Job's),
// its text is shown with every control and format character escaped, and it is
// cut to a bounded length; a run forwards a bounded number of them.
// Table-tested in test/unit/pod-events.test.ts.
import type { CoreV1Event } from '@kubernetes/client-node';
import { escapeDisplay } from '../../protocol/display.js';

/** Event lines forwarded per run; a flood past it is summarised once. */
export const MAX_EVENT_LINES = 50;
const MAX_MESSAGE = 300;
const MAX_REASON = 64;

export interface PodEventLine {
  /**
   * One per Event object: seen again (relist, or the same event counting up, as
   * MissingClusterDNS or BackOff do every few seconds) it is not shown again.
   */
  key: string;
  reason: string;
  type: 'Normal' | 'Warning';
  message: string;
}

export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

function cut(text: string, max: number): string {
  const flat = escapeDisplay(text.trim());
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** The progress line for an Event about `pod`, or undefined when it is not about that pod. */
export function describePodEvent(event: CoreV1Event, pod: PodRef): PodEventLine | undefined {
  const about = event.involvedObject;
  if (!about || about.kind !== 'Pod' || about.uid !== pod.uid || about.name !== pod.name) return undefined;
  if (about.namespace !== pod.namespace || event.metadata?.namespace !== pod.namespace) return undefined;
  const reason = cut(event.reason ?? 'Event', MAX_REASON);
  const type = event.type === 'Warning' ? 'Warning' : 'Normal';
  const message = cut(event.message ?? '', MAX_MESSAGE);
  // A repeated event (BackOff, FailedScheduling) is one object whose count grows.
  const count = event.series?.count ?? event.count ?? 1;
  const key = event.metadata?.uid ?? event.metadata?.name ?? reason;
  return { key, reason, type, message: `${reason}${message ? `: ${message}` : ''}${count > 1 ? ` (x${count})` : ''}` };
}
