// Re-exports of the protocol types the server's seams use, so services.ts
// has one import site for the wire contract.
export type {
  ApprovalListQuery,
  ApprovalRequest,
  AuditClient,
  AuditEvent,
  AuditQuery,
  AuditVerifyResult,
  Delivery,
  DeliveryListQuery,
  DeploymentSummary,
  Identity,
  NotifyRouting,
  PathCompletion,
  PendingApproval,
  Run,
  RunListQuery,
  RunPreview,
  RunRequest,
} from '../protocol/api.js';
export type { TaskRunRequest, TaskSummary } from '../protocol/tasks.js';
export type { ResizeFrame as ResizeFrameShape } from '../protocol/frames.js';
