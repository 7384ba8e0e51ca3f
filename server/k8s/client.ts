// The one place that builds Kubernetes clients and turns Kubernetes failures
// into oddjob's HTTP errors. Nothing else constructs a KubeConfig.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import https from 'node:https';
import * as k8s from '@kubernetes/client-node';
import { ServiceError, forbidden, notFound, unavailable } from '../errors.js';

export interface KubeClients {
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  batch: k8s.BatchV1Api;
  policy: k8s.PolicyV1Api;
  coordination: k8s.CoordinationV1Api;
  /** oddjob.io resources (Tasks). */
  custom: k8s.CustomObjectsApi;
}

export class KubeConfigError extends Error {}

/** From a kubeconfig file, or the pod's service account when none is given. */
export function loadKube(opts: { kubeconfig?: string }): KubeClients {
  const kc = new k8s.KubeConfig();
  if (opts.kubeconfig) {
    if (!existsSync(opts.kubeconfig)) throw new KubeConfigError(`--kubeconfig ${opts.kubeconfig}: file does not exist`);
    try {
      kc.loadFromString(readFileSync(opts.kubeconfig, 'utf8'));
    } catch (err) {
      throw new KubeConfigError(`--kubeconfig ${opts.kubeconfig}: not a valid kubeconfig (${(err as Error).message})`);
    }
    if (!kc.getCurrentCluster()) {
      throw new KubeConfigError(`--kubeconfig ${opts.kubeconfig}: no current context with a cluster (set current-context)`);
    }
  } else {
    if (!process.env.KUBERNETES_SERVICE_HOST) {
      throw new KubeConfigError('no --kubeconfig given and not running inside a cluster (KUBERNETES_SERVICE_HOST unset)');
    }
    kc.loadFromCluster();
  }
  // As kc.makeApiClient does, but with connections kept alive (see keepAliveAgent).
  const config = k8s.createConfiguration({
    baseServer: new k8s.ServerConfiguration(kc.getCurrentCluster()!.server, {}),
    authMethods: {
      default: {
        getName: () => 'kubeconfig-keep-alive',
        async applySecurityAuthentication(context: k8s.RequestContext) {
          await kc.applySecurityAuthentication(context);
          const agent = context.getAgent();
          if (agent) context.setAgent(keepAliveAgent(agent));
        },
      },
    },
  });
  return {
    kc,
    core: new k8s.CoreV1Api(config),
    apps: new k8s.AppsV1Api(config),
    batch: new k8s.BatchV1Api(config),
    policy: new k8s.PolicyV1Api(config),
    coordination: new k8s.CoordinationV1Api(config),
    custom: new k8s.CustomObjectsApi(config),
  };
}

const keepAliveAgents = new Map<string, https.Agent>();

/**
 * client-node builds a new https.Agent for every API call, so every call opened a new
 * connection: a TLS handshake (and the CA, certificate and key parsed again) on both
 * sides — most of oddjob's CPU per run, and several ms of the API server's. This swaps
 * it for one keep-alive agent per distinct TLS identity. The credentials that change
 * (bearer tokens) travel in headers, which client-node still sets on every call;
 * anything other than a plain https.Agent (proxies) is left as it is.
 */
export function keepAliveAgent<A>(agent: A): A | https.Agent {
  const given: unknown = agent;
  if (!(given instanceof https.Agent) || given.constructor !== https.Agent) return agent;
  const o = given.options;
  const key = createHash('sha256')
    .update(
      JSON.stringify(
        [o.ca, o.cert, o.key, o.pfx, o.passphrase, o.rejectUnauthorized, o.servername].map((v) => (Buffer.isBuffer(v) ? v.toString('base64') : v)),
      ),
    )
    .digest('hex');
  let shared = keepAliveAgents.get(key);
  if (!shared) {
    // A rotated client certificate makes a new identity; keep only the newest few.
    if (keepAliveAgents.size >= 4) {
      const [oldest, old] = keepAliveAgents.entries().next().value as [string, https.Agent];
      keepAliveAgents.delete(oldest);
      old.destroy();
    }
    shared = new https.Agent({ ...o, keepAlive: true, scheduling: 'lifo' });
    keepAliveAgents.set(key, shared);
  }
  return shared;
}

export interface KubeFailure {
  code?: number;
  reason?: string;
  message: string;
}

/** Reads ApiException (code + raw V1Status JSON body) and network errors alike. */
export function kubeFailure(err: unknown): KubeFailure {
  if (err instanceof k8s.ApiException) {
    let reason: string | undefined;
    let message = `HTTP ${err.code}`;
    try {
      const status = JSON.parse(String(err.body)) as { reason?: string; message?: string };
      reason = status.reason;
      if (status.message) message = status.message;
    } catch {
      // body was not a V1Status; keep the code
    }
    return { code: err.code, reason, message };
  }
  const e = err as { statusCode?: number; code?: string | number; message?: string };
  return { code: typeof e.statusCode === 'number' ? e.statusCode : undefined, message: e.message ?? String(err) };
}

export function isNotFound(err: unknown): boolean {
  return kubeFailure(err).code === 404;
}

/** How the RBAC authorizer words a refusal: `User "…" cannot create resource "jobs" in API group "batch" …`. */
const RBAC_REFUSAL = /\bcannot [a-z]+ resource\b/;

/** Maps a Kubernetes failure about `what` ("deployment demo/api") to one of our errors. */
export function toServiceError(err: unknown, what: string): ServiceError {
  if (err instanceof ServiceError) return err;
  const f = kubeFailure(err);
  switch (f.code) {
    case 404:
      return notFound(`${what} not found`);
    case 403:
      // Not every 403 is RBAC: a ResourceQuota, a LimitRange or an admission webhook
      // refuses with one too, and "not allowed" would send the reader to the wrong place.
      if (!RBAC_REFUSAL.test(f.message)) {
        return new ServiceError(
          'rejected',
          `Kubernetes refused ${what}: ${f.message}`,
          "a ResourceQuota, LimitRange or admission policy of the namespace refused it; see the message, and the namespace's owners",
        );
      }
      return forbidden(
        `oddjob's service account is not allowed to access ${what}: ${f.message}`,
        'check the oddjob RBAC rules for this namespace (see rbac/README.md)',
      );
    case 409:
      return new ServiceError('conflict', `${what}: ${f.message}`);
    case 400:
    case 422:
      return new ServiceError('rejected', `Kubernetes rejected ${what}: ${f.message}`);
    default:
      return unavailable(`Kubernetes API error for ${what}: ${f.message}`, 'the Kubernetes API server may be unreachable; try again');
  }
}
