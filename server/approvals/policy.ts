// PURE: four-eyes approval (PRODUCT.md §10) — when a run needs a second person, who
// that may be, the digest of exactly what was approved, and pinning images to the
// digests the cluster reports. No I/O; table-tested in test/unit/approvals.test.ts.
import { createHash } from 'node:crypto';
import type { V1Container, V1Job, V1Pod } from '@kubernetes/client-node';
import { canonicalJson } from '../audit/chain.js';
import { type AccessPolicy, parseAccessPolicy } from '../policy/decide.js';

export const APPROVAL_ANNOTATIONS = {
  approval: 'oddjob.io/approval',
  approvers: 'oddjob.io/approvers',
} as const;

/**
 * Free-form runs follow the Deployment's `oddjob.io/approval`; Task runs follow the
 * Task's `approval` only (a Task is a command the owners reviewed already).
 */
export function approvalRequired(target: { deploymentAnnotations: Record<string, string> | undefined; task?: { approval: 'required' | 'none' } }): boolean {
  if (target.task) return target.task.approval === 'required';
  return (target.deploymentAnnotations?.[APPROVAL_ANNOTATIONS.approval] ?? '').trim().toLowerCase() === 'required';
}

/**
 * Who may approve: `oddjob.io/approvers` (teams as org/slug, logins), else whoever may
 * run the target (`runPolicy`: the Task's lists or the Deployment's annotations).
 */
export function approverPolicy(deploymentAnnotations: Record<string, string> | undefined, runPolicy: AccessPolicy, defaultOrg?: string): AccessPolicy {
  const listed = deploymentAnnotations?.[APPROVAL_ANNOTATIONS.approvers];
  if (listed === undefined || listed.trim() === '') return runPolicy;
  const entries = listed
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const teams = entries.filter((e) => e.includes('/'));
  const users = entries.filter((e) => !e.includes('/'));
  const p = parseAccessPolicy({ 'oddjob.io/allowed-teams': teams.join(','), 'oddjob.io/allowed-users': users.join(',') }, defaultOrg);
  return { ...p, problems: p.problems.map((x) => x.replace(/oddjob\.io\/allowed-(teams|users)/, APPROVAL_ANNOTATIONS.approvers)) };
}

export function describePolicy(p: AccessPolicy): string {
  const parts = [];
  if (p.allowedTeams.length) parts.push(`teams ${p.allowedTeams.join(', ')}`);
  if (p.allowedUsers.length) parts.push(`users ${p.allowedUsers.join(', ')}`);
  return parts.join('; ') || 'nobody';
}

export interface Person {
  login: string;
  id?: number;
}

/** Same person: by GitHub user id where both have one (a login can be renamed and reused), else by login. */
export function samePerson(a: Person, b: Person): boolean {
  if (a.id !== undefined && b.id !== undefined) return a.id === b.id;
  return a.login.toLowerCase() === b.login.toLowerCase();
}

export type ApproverDecision = { allow: true } | { allow: false; code: 'self' | 'not_approver'; reason: string };

export function decideApprover(input: { approvers: AccessPolicy; identity: Person & { teams: string[] }; requester: Person; where: string }): ApproverDecision {
  if (samePerson(input.identity, input.requester)) {
    return {
      allow: false,
      code: 'self',
      reason: `you requested this run, so you cannot decide on it: four eyes means a second person (${describePolicy(input.approvers)})`,
    };
  }
  const login = input.identity.login.toLowerCase();
  if (input.approvers.allowedUsers.includes(login)) return { allow: true };
  const mine = new Set(input.identity.teams.map((t) => t.toLowerCase()));
  if (input.approvers.allowedTeams.some((t) => mine.has(t))) return { allow: true };
  return {
    allow: false,
    code: 'not_approver',
    reason: `you (${input.identity.login}) may not approve runs in ${input.where}; its approvers are ${describePolicy(input.approvers)}`,
  };
}

/** SHA-256 (hex) of the canonical JSON of a manifest: equal manifests, equal hashes, whatever the key order. */
export function manifestHash(manifest: object): string {
  return createHash('sha256').update(canonicalJson(manifest)).digest('hex');
}

const DIGEST_REF = /^(?:docker-pullable:\/\/)?([^@\s]+)@(sha256:[0-9a-f]{64})$/;

/** `registry/repo:tag` → `registry/repo` (a port's colon is kept). */
function repository(image: string): string {
  const at = image.indexOf('@');
  const noDigest = at >= 0 ? image.slice(0, at) : image;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}

/**
 * The Job with each container's image pinned to the digest running pods of the
 * Deployment report for that same image reference (status.containerStatuses[].imageID,
 * written by the kubelet). Where no pod reports one, the image stays as written.
 */
export function pinImages(job: V1Job, pods: readonly V1Pod[]): { job: V1Job; pinned: Record<string, string> } {
  const out = structuredClone(job);
  const pinned: Record<string, string> = {};
  const digestOf = (image: string): string | undefined => {
    if (image.includes('@sha256:')) return undefined;
    for (const pod of pods) {
      const specs = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
      const statuses = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])];
      for (const st of statuses) {
        if (specs.find((c) => c.name === st.name)?.image !== image) continue;
        const m = DIGEST_REF.exec(st.imageID ?? '');
        if (m && repository(m[1]!) === repository(image)) return `${repository(image)}@${m[2]}`;
      }
    }
    return undefined;
  };
  const spec = out.spec?.template?.spec;
  const all: V1Container[] = [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])];
  for (const c of all) {
    if (!c.image) continue;
    const d = digestOf(c.image);
    if (d) {
      pinned[c.image] = d;
      c.image = d;
    }
  }
  return { job: out, pinned };
}

/** In words, what differs between the manifest a request recorded and the one the target gives now. */
export function describeChange(before: V1Job, after: V1Job): string {
  const a = before.spec?.template?.spec;
  const b = after.spec?.template?.spec;
  const changes: string[] = [];
  const byName = (cs: V1Container[] | undefined) => new Map((cs ?? []).map((c) => [c.name, c]));
  const ac = byName([...(a?.containers ?? []), ...(a?.initContainers ?? [])]);
  const bc = byName([...(b?.containers ?? []), ...(b?.initContainers ?? [])]);
  for (const [name, c] of ac) {
    const d = bc.get(name);
    if (!d) changes.push(`container ${name} is gone`);
    else if (c.image !== d.image) changes.push(`container ${name}'s image changed from ${c.image} to ${d.image}`);
    else if (canonicalJson(c) !== canonicalJson(d)) changes.push(`container ${name} changed`);
  }
  for (const name of bc.keys()) if (!ac.has(name)) changes.push(`container ${name} was added`);
  if (!changes.length) changes.push('the pod template changed');
  return changes.join('; ');
}

export function emptyPolicy(): AccessPolicy {
  return { optedIn: true, allowedTeams: [], allowedUsers: [], problems: [] };
}
