// Re-exports of the protocol types the server's seams use, so services.ts
// has one import site for the wire contract.
export type {
  AuditClient,
  AuditEvent,
  AuditQuery,
  AuditVerifyResult,
  DeploymentSummary,
  Identity,
  PathCompletion,
  Run,
  RunListQuery,
  RunRequest,
} from '../protocol/api.js';
export type { ResizeFrame as ResizeFrameShape } from '../protocol/frames.js';
