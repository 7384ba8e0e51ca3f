// Which Deployments a person may run in: read from the served namespaces and
// filtered through the same decision that guards POST /api/runs.
import type { Logger } from 'pino';
import type { DeploymentSummary } from '../../protocol/api.js';
import { namespaceNotServed } from '../errors.js';
import type { KubeClients } from '../k8s/client.js';
import { toServiceError } from '../k8s/client.js';
import { summarizeDeployment } from '../jobs/clone.js';
import { decideAccess } from '../policy/decide.js';
import type { DeploymentService, RequestContext } from '../services.js';

export interface DeploymentServiceDeps {
  kube: KubeClients;
  config: { namespaces: readonly string[]; githubOrg?: string };
  logger: Logger;
}

export function createDeploymentService(deps: DeploymentServiceDeps): DeploymentService {
  const { kube, config } = deps;
  return {
    servedNamespaces: () => [...config.namespaces],
    async listRunnable(ctx: RequestContext, namespace?: string): Promise<DeploymentSummary[]> {
      if (namespace && !config.namespaces.includes(namespace)) throw namespaceNotServed(namespace, config.namespaces);
      const namespaces = namespace ? [namespace] : config.namespaces;
      const out: DeploymentSummary[] = [];
      for (const ns of namespaces) {
        let items;
        try {
          items = (await kube.apps.listNamespacedDeployment({ namespace: ns })).items;
        } catch (err) {
          throw toServiceError(err, `deployments in namespace ${ns}`);
        }
        for (const d of items) {
          const decision = decideAccess({
            namespace: ns,
            deployment: d.metadata!.name!,
            annotations: d.metadata?.annotations,
            identity: ctx.identity,
            defaultOrg: config.githubOrg,
          });
          if (decision.allow) out.push(summarizeDeployment(d, config.githubOrg));
        }
      }
      return out.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
    },
  };
}
