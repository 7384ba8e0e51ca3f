// Tasks on the wire: the parameters of an owner-declared command (PRODUCT.md §9) as the
// CLI and the web form see them, and the body that runs one. The Task resource's own
// schema (what owners write) is server/tasks/spec.ts; it builds on TaskParam here.
import { z } from 'zod';
import { LIMITS, k8sLabelName, k8sName } from './api.js';

/** A parameter name: what `$(params.NAME)` refers to. */
export const PARAM_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]{0,62}$';
export const paramName = z.string().regex(new RegExp(PARAM_NAME_PATTERN), 'a parameter name is a letter or _, then letters, digits or _ (at most 63)');

const common = {
  name: paramName,
  description: z.string().max(500).optional(),
  required: z.boolean().optional(),
};

export const StringParam = z.object({
  ...common,
  type: z.literal('string'),
  default: z.string().max(LIMITS.argvItemBytes).optional(),
  /** A JavaScript regular expression the whole value must match (anchor it with ^…$). */
  pattern: z.string().max(1000).optional(),
});
export const IntegerParam = z.object({
  ...common,
  type: z.literal('integer'),
  default: z.number().int().optional(),
  min: z.number().int().optional(),
  max: z.number().int().optional(),
});
export const BooleanParam = z.object({ ...common, type: z.literal('boolean'), default: z.boolean().optional() });
export const ChoiceParam = z.object({
  ...common,
  type: z.literal('choice'),
  choices: z.array(z.string().min(1).max(253)).min(1).max(100),
  default: z.string().optional(),
});
export const TaskParam = z.discriminatedUnion('type', [StringParam, IntegerParam, BooleanParam, ChoiceParam]);
export type TaskParam = z.infer<typeof TaskParam>;
export const PARAM_TYPES = ['string', 'integer', 'boolean', 'choice'] as const;

/** GET /api/tasks: one Task the caller may run (or may see is broken). */
export const TaskSummary = z.object({
  namespace: z.string(),
  name: z.string(),
  deployment: z.string(),
  container: z.string().optional(),
  description: z.string().optional(),
  /** The command as the owner wrote it, `$(params.x)` references included. */
  command: z.array(z.string()),
  params: z.array(TaskParam),
  timeoutSeconds: z.number().int().optional(),
  approval: z.enum(['required', 'none']),
  generation: z.number().int().nonnegative(),
  /** false: the Task is invalid (see `problem`) and cannot run. */
  ready: z.boolean(),
  problem: z.string().optional(),
});
export type TaskSummary = z.infer<typeof TaskSummary>;

/** A value as typed (CLI: always a string) or as the web form sends it. */
export const ParamValue = z.union([
  z.string().max(LIMITS.argvItemBytes, `a parameter value must be at most ${LIMITS.argvItemBytes} bytes`),
  z.number(),
  z.boolean(),
]);

/** POST /api/runs (and /api/runs/preview) with a Task as the target. */
export const TaskRunRequest = z
  .object({
    namespace: k8sLabelName,
    task: k8sName,
    params: z
      .record(z.string().max(63), ParamValue)
      .default({})
      .refine((p) => Object.keys(p).length <= 100, 'at most 100 parameters'),
    reason: z.string().trim().max(LIMITS.reasonChars, `reason must be at most ${LIMITS.reasonChars} characters`).optional(),
    /** Run now even where the Task's schedule's concurrencyPolicy (Forbid, Replace) says otherwise. */
    force: z.boolean().optional(),
  })
  .strict();
export type TaskRunRequest = z.infer<typeof TaskRunRequest>;
export type TaskRunRequestInput = z.input<typeof TaskRunRequest>;
