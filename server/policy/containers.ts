// PURE: what owners decide beyond who may run. `oddjob.io/allowed-containers` limits
// the containers a run may target (a privileged sidecar is no place for a command
// unless the owner says so); `oddjob.io/sidecars` says whether a run may drop the
// other containers (`--no-sidecars`), which may be a security sidecar. A malformed
// value refuses every run and names the annotation: a typo must not open what the
// owner meant to close. Table-tested in test/unit/containers-policy.test.ts.
import { ANNOTATIONS } from './decide.js';

export type Refusal = { allow: false; reason: string; hint: string };

export const SIDECAR_MODES = ['keep', 'drop', 'either'] as const;
export type SidecarMode = (typeof SIDECAR_MODES)[number];
/** Without the annotation a run keeps its sidecars unless it asks to drop them (as before the annotation existed). */
export const DEFAULT_SIDECAR_MODE: SidecarMode = 'either';

// A container name is a DNS label (RFC 1123).
const CONTAINER_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

const malformed = (where: string, annotation: string, problem: string): Refusal => ({
  allow: false,
  reason: `deployment ${where} has a malformed ${annotation} annotation (${problem}), so oddjob refuses every run there until it is fixed`,
  hint: `ask the owners of the deployment to fix ${annotation}`,
});

export function decideContainer(input: {
  /** namespace/name, for messages */
  where: string;
  annotations: Record<string, string> | undefined;
  /** The Deployment's regular containers. */
  containers: readonly string[];
  /** The container the run would use (after -c and the default-container rules). */
  chosen: string;
  /** What -c asked for, if anything. */
  requested?: string;
}): { allow: true } | Refusal {
  const annotation = ANNOTATIONS.allowedContainers;
  const raw = input.annotations?.[annotation];
  if (raw === undefined) return { allow: true };
  const entries = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (entries.length === 0) return malformed(input.where, annotation, 'it lists no container; list at least one, or remove it to allow any container');
  for (const name of entries) {
    if (!CONTAINER_NAME.test(name)) return malformed(input.where, annotation, `"${name}" is not a container name`);
    if (!input.containers.includes(name)) {
      return malformed(input.where, annotation, `it names container "${name}", but the deployment has only: ${input.containers.join(', ')}`);
    }
  }
  if (entries.includes(input.chosen)) return { allow: true };
  const allowed = entries.join(', ');
  if (input.requested !== undefined) {
    return {
      allow: false,
      reason: `-c ${input.chosen}: runs in deployment ${input.where} may use only ${allowed} (${annotation})`,
      hint: `use -c with one of: ${allowed}`,
    };
  }
  return {
    allow: false,
    reason: `the default container of deployment ${input.where}, ${input.chosen}, is not one runs may use (${annotation}: ${allowed})`,
    hint: `choose one with -c: ${allowed}`,
  };
}

export function decideSidecars(input: {
  where: string;
  annotations: Record<string, string> | undefined;
  /** --no-sidecars */
  requestedDrop: boolean;
  /** The other regular containers of the Deployment (what --no-sidecars would drop). */
  sidecars: readonly string[];
}): { allow: true; drop: boolean } | Refusal {
  const annotation = ANNOTATIONS.sidecars;
  const raw = input.annotations?.[annotation];
  const mode = raw === undefined ? DEFAULT_SIDECAR_MODE : raw.trim().toLowerCase();
  switch (mode) {
    case 'either':
      return { allow: true, drop: input.requestedDrop };
    case 'drop':
      // The owner's choice for every run: the sidecars must not run twice (e.g. a queue consumer).
      return { allow: true, drop: true };
    case 'keep':
      if (input.requestedDrop && input.sidecars.length > 0) {
        return {
          allow: false,
          reason: `--no-sidecars: deployment ${input.where} keeps its sidecars in every run (${annotation}: keep): ${input.sidecars.join(', ')}`,
          hint: 'run without --no-sidecars',
        };
      }
      return { allow: true, drop: false };
    default:
      return malformed(input.where, annotation, `"${raw}" is not one of ${SIDECAR_MODES.join(', ')}`);
  }
}
