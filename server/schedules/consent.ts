// PURE: may a schedule start a run in this Deployment now? A slot has no person behind
// it, so the question is the owner's consent alone: the Deployment is opted in to
// oddjob and still names someone who may run in it. Removing the annotations, or
// emptying them, withdraws consent, and the next slot is `denied` with no Job.
import { parseAccessPolicy } from '../policy/decide.js';

export type ScheduleConsent = { allow: true } | { allow: false; code: 'not_opted_in'; reason: string; hint: string };

export function decideScheduledRun(where: string, annotations: Record<string, string> | undefined, defaultOrg?: string): ScheduleConsent {
  const policy = parseAccessPolicy(annotations, defaultOrg);
  if (policy.optedIn && (policy.allowedTeams.length > 0 || policy.allowedUsers.length > 0)) return { allow: true };
  return {
    allow: false,
    code: 'not_opted_in',
    reason: policy.optedIn
      ? `deployment ${where} allows nobody to run in it (its oddjob.io/allowed-* annotations are empty), so its schedules do not run`
      : `deployment ${where} has not opted in to oddjob (no oddjob.io/allowed-teams or oddjob.io/allowed-users annotation), so its schedules do not run`,
    hint: "the Deployment's owners must opt it in again; slots until then are recorded as denied",
  };
}
