// PURE: who hears about what. Owners name the operator's targets in the Deployment's
// `oddjob.io/notify` annotation (and, with Tasks, in `notify:`); a name the operator
// did not configure is reported back (preview, audit, log), never silently dropped.
import type { NotifyTarget } from './config.js';
import type { NotifyEventType } from './events.js';

export const NOTIFY_ANNOTATION = 'oddjob.io/notify';

export interface Routing {
  /** Configured targets, in the order named, without duplicates. */
  targets: string[];
  /** Names that are not configured targets (typos, removed targets). */
  unknown: string[];
}

export function routeNotifications(annotation: string | undefined, configured: ReadonlyMap<string, NotifyTarget>): Routing {
  const targets: string[] = [];
  const unknown: string[] = [];
  for (const raw of (annotation ?? '').split(',')) {
    const name = raw.trim().toLowerCase();
    if (!name) continue;
    const list = configured.has(name) ? targets : unknown;
    if (!list.includes(name)) list.push(name);
  }
  return { targets, unknown };
}

/** Does this target want this kind of event (its `events` filter; none = all)? */
export function targetWants(target: Pick<NotifyTarget, 'events'>, type: NotifyEventType): boolean {
  return !target.events || target.events.has(type);
}

/** The sentence that reports unknown names to the person and in the audit log. */
export function describeUnknown(unknown: readonly string[]): string | undefined {
  if (!unknown.length) return undefined;
  return `${NOTIFY_ANNOTATION} names ${unknown.length === 1 ? 'a target' : 'targets'} the operator has not configured: ${unknown.join(', ')} (nothing is sent to ${unknown.length === 1 ? 'it' : 'them'})`;
}
