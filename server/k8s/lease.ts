// The coordination.k8s.io/v1 Lease that elects the replica doing singleton work
// (leader/election.ts decides; this only reads and writes it). Every write carries
// the resourceVersion it was based on, so of two replicas racing for the lease the
// API server lets exactly one win; the other gets 409.
import { existsSync, readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import type { LeaseRecord, LeaseWrite } from '../leader/election.js';
import { kubeFailure, type KubeClients } from './client.js';

/** A write lost a race (409): someone else changed or created the lease first. */
export class LeaseConflict extends Error {}

export interface LeaseClient {
  /** "lease NAMESPACE/NAME", for logs. */
  readonly description: string;
  /** null when the Lease does not exist. */
  get(): Promise<LeaseRecord | null>;
  create(write: LeaseWrite): Promise<LeaseRecord>;
  /** Replaces the spec if the lease is still at `resourceVersion`; LeaseConflict otherwise. */
  update(write: LeaseWrite, resourceVersion: string): Promise<LeaseRecord>;
}

type CallOptions = NonNullable<Parameters<k8s.CoordinationV1Api['readNamespacedLease']>[1]>;

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** The namespace of the pod this process runs in, or undefined outside a cluster. */
export function ownNamespace(): string | undefined {
  if (!process.env.KUBERNETES_SERVICE_HOST || !existsSync(SERVICE_ACCOUNT_NAMESPACE)) return undefined;
  return readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8').trim() || undefined;
}

/**
 * `timeoutMs` bounds each call: a request the API server never answers must not hold
 * the election loop (the leader's deadline is enforced separately, by a timer).
 */
export function leaseClient(kube: KubeClients, namespace: string, name: string, opts: { timeoutMs: number }): LeaseClient {
  const description = `lease ${namespace}/${name}`;
  const call = async <T>(what: string, f: (options: CallOptions) => Promise<T>): Promise<T> => {
    // Aborted, not just abandoned: a request left hanging would keep its socket, and
    // with it the process, alive past a graceful shutdown.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), opts.timeoutMs);
    const options: CallOptions = {
      middleware: [
        {
          pre: (ctx) => {
            ctx.setSignal(controller.signal);
            return new k8s.Observable(Promise.resolve(ctx));
          },
          post: (ctx) => new k8s.Observable(Promise.resolve(ctx)),
        },
      ],
      middlewareMergeStrategy: 'append',
    };
    try {
      return await f(options);
    } catch (err) {
      if (controller.signal.aborted) throw new Error(`${what} ${description}: no answer from the API server in ${opts.timeoutMs} ms`, { cause: err });
      const f = kubeFailure(err);
      if (f.code === 409) throw new LeaseConflict(`${what} ${description}: ${f.message}`, { cause: err });
      if (f.code === 403) {
        throw new Error(`${what} ${description}: forbidden (${f.message}); grant get, create and update on leases in ${namespace} (see rbac/README.md)`, {
          cause: err,
        });
      }
      throw new Error(`${what} ${description}: ${f.message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  };
  const body = (write: LeaseWrite, resourceVersion?: string): k8s.V1Lease => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace, resourceVersion, labels: { 'app.kubernetes.io/name': 'oddjob' } },
    spec: {
      holderIdentity: write.holder,
      leaseDurationSeconds: write.leaseDurationSeconds,
      acquireTime: microTime(write.acquireTime),
      renewTime: microTime(write.renewTime),
      leaseTransitions: write.transitions,
    },
  });
  return {
    description,
    get: () =>
      call('read', async (options) => {
        try {
          return toRecord(await kube.coordination.readNamespacedLease({ name, namespace }, options));
        } catch (err) {
          if (kubeFailure(err).code === 404) return null;
          throw err;
        }
      }),
    create: (write) => call('create', async (options) => toRecord(await kube.coordination.createNamespacedLease({ namespace, body: body(write) }, options))),
    update: (write, resourceVersion) =>
      call('update', async (options) =>
        toRecord(await kube.coordination.replaceNamespacedLease({ name, namespace, body: body(write, resourceVersion) }, options)),
      ),
  };
}

// The API server wants MicroTime with six fractional digits; V1MicroTime serializes so.
function microTime(ms: number | undefined): k8s.V1MicroTime | undefined {
  return ms === undefined ? undefined : new k8s.V1MicroTime(ms);
}

// client-node hands MicroTime fields back as the raw string (it has no deserializer for them).
function time(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  const ms = v instanceof Date ? v.getTime() : Date.parse(String(v));
  return Number.isNaN(ms) ? undefined : ms;
}

function toRecord(lease: k8s.V1Lease): LeaseRecord {
  const s = lease.spec ?? {};
  return {
    holder: s.holderIdentity ?? '',
    leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
    acquireTime: time(s.acquireTime),
    renewTime: time(s.renewTime),
    transitions: s.leaseTransitions ?? 0,
    resourceVersion: lease.metadata?.resourceVersion ?? '',
  };
}
