// What a Kubernetes refusal becomes for the person (server/k8s/client.ts toServiceError),
// over the API server's real V1Status bodies.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { toServiceError } from '../../server/k8s/client.js';

const status = (code: number, reason: string, message: string) =>
  new k8s.ApiException(code, message, JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code }), {});

const table: Array<{ name: string; err: unknown; kind: string; says: RegExp }> = [
  {
    name: 'RBAC: oddjob may not create Jobs there',
    err: status(
      403,
      'Forbidden',
      'jobs.batch is forbidden: User "system:serviceaccount:oddjob:oddjob" cannot create resource "jobs" in API group "batch" in the namespace "payments"',
    ),
    kind: 'forbidden',
    says: /^oddjob's service account is not allowed to access job payments\/x/,
  },
  {
    name: 'a ResourceQuota refuses the Job',
    err: status(
      403,
      'Forbidden',
      'jobs.batch "x" is forbidden: exceeded quota: jobs, requested: count/jobs.batch=1, used: count/jobs.batch=5, limited: count/jobs.batch=5',
    ),
    kind: 'rejected',
    says: /^Kubernetes refused job payments\/x: .*exceeded quota/,
  },
  {
    name: 'an admission webhook denies it',
    err: status(403, 'Forbidden', 'admission webhook "policy.example.com" denied the request: jobs must carry a cost-center label'),
    kind: 'rejected',
    says: /^Kubernetes refused job payments\/x: admission webhook/,
  },
  {
    name: 'invalid',
    err: status(422, 'Invalid', 'Job.batch "x" is invalid: spec.template: Invalid value'),
    kind: 'rejected',
    says: /^Kubernetes rejected job/,
  },
  { name: 'gone', err: status(404, 'NotFound', 'jobs.batch "x" not found'), kind: 'not_found', says: /not found/ },
];

for (const row of table) {
  test(`Kubernetes refusal → ServiceError: ${row.name}`, () => {
    const e = toServiceError(row.err, 'job payments/x');
    assert.equal(e.kind, row.kind);
    assert.match(e.message, row.says);
  });
}
