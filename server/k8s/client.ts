// The one place that builds Kubernetes clients and turns Kubernetes failures
// into oddjob's HTTP errors. Nothing else constructs a KubeConfig.
import { existsSync, readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { HttpError, forbidden, notFound, unavailable } from '../http/errors.js';

export interface KubeClients {
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  batch: k8s.BatchV1Api;
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
  return {
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    batch: kc.makeApiClient(k8s.BatchV1Api),
  };
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

/** Maps a Kubernetes failure about `what` ("deployment demo/api") to an HttpError. */
export function toHttpError(err: unknown, what: string): HttpError {
  if (err instanceof HttpError) return err;
  const f = kubeFailure(err);
  switch (f.code) {
    case 404:
      return notFound(`${what} not found`);
    case 403:
      return forbidden(
        `oddjob's service account is not allowed to access ${what}: ${f.message}`,
        'check the oddjob RBAC rules for this namespace (see rbac/README.md)',
      );
    case 409:
      return new HttpError(409, 'conflict', `${what}: ${f.message}`);
    case 400:
    case 422:
      return new HttpError(422, 'rejected_by_kubernetes', `Kubernetes rejected ${what}: ${f.message}`);
    default:
      return unavailable(`Kubernetes API error for ${what}: ${f.message}`, 'the Kubernetes API server may be unreachable; try again');
  }
}
