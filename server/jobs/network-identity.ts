// PURE: which of the Deployment's pod labels a run keeps (docs/network-identity.md).
// NetworkPolicies, Services and PodDisruptionBudgets all select pods by label:
// the run keeps the labels so policies treat it as one of the Deployment's pods,
// a readiness gate keeps it out of every Service's ready endpoints, and the few
// selectors a readiness gate cannot fend off make the run drop the labels they use.
import type { V1LabelSelector, V1PodDisruptionBudget, V1Service } from '@kubernetes/client-node';

/** Owner annotation on the Deployment: `deployment` (default) or `isolated`. */
export const NETWORK_IDENTITY = 'oddjob.io/network-identity';
export const NETWORK_IDENTITY_MODES = ['deployment', 'isolated'] as const;
export type NetworkIdentityMode = (typeof NETWORK_IDENTITY_MODES)[number];
/** On the Job: which labels were dropped and why, for the person reading the preview or `kubectl describe`. */
export const DROPPED_LABELS = 'oddjob.io/dropped-labels';

/**
 * A readiness gate whose condition nothing ever sets: the kubelet reports the pod
 * Ready only when every gate is True, so the run is never a ready or serving
 * endpoint of any Service that selects it.
 */
export const NEVER_SERVES = 'oddjob.io/serves-traffic';

export class NetworkIdentityError extends Error {}

export interface LabelDrop {
  keys: string[];
  because: string;
}

export interface NetworkIdentityPlan {
  mode: NetworkIdentityMode;
  labels: Record<string, string>;
  dropped: LabelDrop[];
}

export interface NetworkIdentityInput {
  namespace: string;
  annotations: Record<string, string> | undefined;
  templateLabels: Record<string, string>;
  /** The Deployment's selector: what `isolated` drops. */
  deploymentSelector: V1LabelSelector | undefined;
  /** Labels oddjob adds; they are never dropped. */
  ownLabels: Record<string, string>;
  services: V1Service[];
  budgets: V1PodDisruptionBudget[];
}

export function parseNetworkIdentity(annotations: Record<string, string> | undefined): NetworkIdentityMode {
  const raw = annotations?.[NETWORK_IDENTITY];
  if (raw === undefined) return 'deployment';
  const value = raw.trim().toLowerCase();
  if ((NETWORK_IDENTITY_MODES as readonly string[]).includes(value)) return value as NetworkIdentityMode;
  throw new NetworkIdentityError(
    `annotation ${NETWORK_IDENTITY} is "${raw}"; the owners of the deployment must set it to one of: ${NETWORK_IDENTITY_MODES.join(', ')}`,
  );
}

/** Kubernetes label-selector semantics: an empty selector matches everything, an absent one nothing. */
export function selectorMatches(selector: V1LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const inValues = has && (e.values ?? []).includes(labels[e.key]!);
    const ok =
      e.operator === 'In' ? inValues : e.operator === 'NotIn' ? !inValues : e.operator === 'Exists' ? has : e.operator === 'DoesNotExist' ? !has : false;
    if (!ok) return false;
  }
  return true;
}

/** Keys whose removal makes the selector stop matching (NotIn and DoesNotExist keep matching an absent label). */
function keysThatUnmatch(selector: V1LabelSelector): string[] {
  return [
    ...Object.keys(selector.matchLabels ?? {}),
    ...(selector.matchExpressions ?? []).filter((e) => e.operator === 'In' || e.operator === 'Exists').map((e) => e.key),
  ];
}

interface Conflict {
  selector: V1LabelSelector;
  because: string;
}

function conflicts(input: NetworkIdentityInput): Conflict[] {
  const out: Conflict[] = [];
  for (const s of input.services) {
    // A Service with no (or an empty) selector manages no endpoints from pods.
    const selector = s.spec?.selector;
    if (!s.spec?.publishNotReadyAddresses || !selector || Object.keys(selector).length === 0) continue;
    out.push({
      selector: { matchLabels: selector },
      because: `Service ${input.namespace}/${s.metadata?.name} publishes not-ready addresses (publishNotReadyAddresses), so the readiness gate cannot keep its traffic away from the run`,
    });
  }
  for (const b of input.budgets) {
    const { maxUnavailable, minAvailable } = b.spec ?? {};
    // An integer minAvailable only counts pods; every other form asks each pod's
    // controller for its scale, and a Job has no scale subresource: the disruption
    // controller would fail and allow no eviction at all while the run's pod exists.
    const form =
      maxUnavailable !== undefined && maxUnavailable !== null
        ? `maxUnavailable: ${maxUnavailable}`
        : typeof minAvailable === 'string'
          ? `minAvailable: ${minAvailable}`
          : undefined;
    if (!form || !b.spec?.selector) continue;
    out.push({
      selector: b.spec.selector,
      because: `PodDisruptionBudget ${input.namespace}/${b.metadata?.name} uses ${form}, which needs the scale of every selected pod's controller; a Job has none, so the budget would allow no evictions while the run's pod exists`,
    });
  }
  return out;
}

export function planNetworkIdentity(input: NetworkIdentityInput): NetworkIdentityPlan {
  const mode = parseNetworkIdentity(input.annotations);
  const labels: Record<string, string> = { ...input.templateLabels };
  const dropped: LabelDrop[] = [];
  if (mode === 'isolated') {
    const sel = input.deploymentSelector ?? {};
    const keys = [...Object.keys(sel.matchLabels ?? {}), ...(sel.matchExpressions ?? []).map((e) => e.key)].filter((k) => Object.hasOwn(labels, k));
    for (const k of keys) delete labels[k];
    if (keys.length) dropped.push({ keys: [...new Set(keys)], because: `${NETWORK_IDENTITY}: isolated` });
  }
  Object.assign(labels, input.ownLabels);
  const own = new Set(Object.keys(input.ownLabels));
  // Each pass drops at least one label or throws, so this ends.
  for (;;) {
    const hit = conflicts(input).find((c) => selectorMatches(c.selector, labels));
    if (!hit) break;
    const keys = [...new Set(keysThatUnmatch(hit.selector))].filter((k) => Object.hasOwn(labels, k) && !own.has(k));
    if (keys.length === 0) {
      throw new NetworkIdentityError(
        `${hit.because}, and its selector matches the run whatever labels it drops; ask the owners to give it a selector with matchLabels or (for a budget) an integer minAvailable`,
      );
    }
    for (const k of keys) delete labels[k];
    dropped.push({ keys, because: hit.because });
  }
  return { mode, labels, dropped };
}

/** One line for the Job's annotation: `app, tier: <why>; …`. */
export function describeDrops(dropped: LabelDrop[]): string {
  return dropped.map((d) => `${d.keys.join(', ')}: ${d.because}`).join('; ');
}
