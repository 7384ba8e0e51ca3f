// Which Deployments a person may run in: read from the served namespaces and
// filtered through the same decision that guards POST /api/runs. Also completes
// paths inside a Deployment's image for the same people (deployments/paths.ts).
import type { Logger } from 'pino';
import type { DeploymentSummary, PathCompletion } from '../../protocol/api.js';
import { badRequest, forbidden, namespaceNotServed } from '../errors.js';
import type { KubeClients } from '../k8s/client.js';
import { toServiceError } from '../k8s/client.js';
import { CloneError, chooseContainer, summarizeDeployment } from '../jobs/clone.js';
import { decideContainer } from '../policy/containers.js';
import { decideAccess } from '../policy/decide.js';
import type { DeploymentService, RequestContext } from '../services.js';
import { COMPLETION_PATHS, checkWord, completePath, parseRoots } from './path-index.js';
import { PathIndexCache } from './paths.js';

export interface DeploymentServiceDeps {
  kube: KubeClients;
  config: { namespaces: readonly string[]; githubOrg?: string };
  logger: Logger;
}

/** Candidates per answer: a TAB that would offer more is a prompt to type more. */
const MAX_CANDIDATES = 500;

export function createDeploymentService(deps: DeploymentServiceDeps): DeploymentService {
  const { kube, config } = deps;
  const paths = new PathIndexCache({ kube, logger: deps.logger });
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

    async completePaths(ctx, q): Promise<PathCompletion> {
      const { namespace, deployment: name } = q;
      if (!config.namespaces.includes(namespace)) throw namespaceNotServed(namespace, config.namespaces);
      const word = checkWord(q.word);
      if (!word.ok) throw badRequest(word.why);
      let d;
      try {
        d = await kube.apps.readNamespacedDeployment({ namespace, name });
      } catch (err) {
        throw toServiceError(err, `deployment ${namespace}/${name}`);
      }
      const annotations = d.metadata?.annotations;
      // The same people, and the same containers, as a run.
      const access = decideAccess({ namespace, deployment: name, annotations, identity: ctx.identity, defaultOrg: config.githubOrg });
      if (!access.allow) throw forbidden(access.reason);
      let container: string;
      try {
        container = chooseContainer(d, q.container);
      } catch (err) {
        if (err instanceof CloneError) throw badRequest(err.message);
        throw err;
      }
      const names = (d.spec?.template?.spec?.containers ?? []).map((c) => c.name);
      const target = decideContainer({ where: `${namespace}/${name}`, annotations, containers: names, chosen: container, requested: q.container });
      if (!target.allow) throw forbidden(target.reason, target.hint);
      const roots = parseRoots(annotations?.[COMPLETION_PATHS]);
      if (!roots.ok) return { state: 'unavailable', paths: [], message: roots.why };
      const answer = paths.lookup(d, container, roots.roots, ctx.identity.login);
      if (answer.state === 'indexing') return { state: 'indexing', paths: [], message: 'listing the files in the image; try again in a few seconds' };
      if (answer.state === 'unavailable') return { state: 'unavailable', paths: [], message: answer.why };
      return { state: 'ready', paths: completePath(answer.index, q.word).slice(0, MAX_CANDIDATES) };
    },
  };
}
