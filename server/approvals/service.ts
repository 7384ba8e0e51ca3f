// Four-eyes approval (PRODUCT.md §10): a run on a target that needs a second person
// becomes a request holding the exact Job manifest (images pinned to digests where
// the cluster reports them) and its hash. Another person who may approve, re-checked
// at that moment, approves (the recorded manifest runs, once) or denies; a change of
// the Deployment or Task that would change the manifest voids the request; requests
// expire. Every step is audited before it takes effect.
import type * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ApprovalRequest, PendingApproval } from '../../protocol/api.js';
import type { AuditLog } from '../store/audit.js';
import { ServiceError, forbidden, notFound, unavailable } from '../errors.js';
import type { KubeClients } from '../k8s/client.js';
import type { ApprovalService, RequestContext } from '../services.js';
import { type RunPlan, type RunPlanner, type RunTarget, isTaskTarget, newRunId } from '../runs/service.js';
import { approvalRequired, approverPolicy, decideApprover, describeChange, describePolicy, manifestHash, pinImages, samePerson } from './policy.js';
import type { ApprovalStore, StoredApproval } from '../store/approvals.js';

export interface ApprovalServiceDeps {
  kube: KubeClients;
  planner: RunPlanner;
  store: ApprovalStore;
  audit: AuditLog;
  logger: Logger;
  config: { ttlSeconds: number; githubOrg?: string; namespaces: readonly string[] };
}

const SERVER_ACTOR = { login: 'oddjob', teams: [] as string[] };
const SERVER_CLIENT = { kind: 'server' as const };

/** The wire shape: what the server keeps for itself (inputs, base hash, teams) stays inside. */
function publicView(r: StoredApproval): ApprovalRequest {
  const { baseHash: _b, input: _i, requesterTeams: _t, notify: _n, ...view } = r;
  return view;
}

export function createApprovalService(deps: ApprovalServiceDeps): ApprovalService & {
  needed(plan: RunPlan): { approvers: string } | undefined;
  request(ctx: RequestContext, req: RunTarget, plan: RunPlan): Promise<PendingApproval>;
  start(): void;
  stop(): void;
} {
  const { kube, planner, store, audit, logger, config } = deps;
  const served = new Set(config.namespaces);

  const approversOf = (deployment: k8s.V1Deployment | undefined, plan: Pick<RunPlan, 'runPolicy'>) =>
    approverPolicy(deployment?.metadata?.annotations, plan.runPolicy, config.githubOrg);

  /** The Deployment's own pods, by its selector: their kubelet-reported image digests pin the Job's images. */
  async function deploymentPods(deployment: k8s.V1Deployment): Promise<k8s.V1Pod[]> {
    const labels = deployment.spec?.selector?.matchLabels;
    if (!labels || Object.keys(labels).length === 0) return [];
    try {
      const list = await kube.core.listNamespacedPod({
        namespace: deployment.metadata!.namespace!,
        labelSelector: Object.entries(labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
      });
      return list.items.filter((p) => p.status?.phase === 'Running');
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'could not read the deployment pods to pin image digests; images stay as written');
      return [];
    }
  }

  /** The requester, as recorded, for re-planning and for the run itself. */
  const requesterCtx = (r: StoredApproval, client: RequestContext['client']): RequestContext => ({
    identity: { login: r.requester.login, id: r.requester.id, teams: r.requesterTeams },
    client,
  });

  /**
   * The target as it is now, planned for the requester: undefined when it still yields the
   * manifest that was requested, else why not.
   */
  async function changed(r: StoredApproval): Promise<{ why: string } | { plan: RunPlan }> {
    let plan: RunPlan;
    try {
      plan = await planner.plan(requesterCtx(r, SERVER_CLIENT), r.input.req, 'silent');
    } catch (err) {
      if (err instanceof ServiceError && err.kind !== 'unavailable') return { why: `the run can no longer be planned: ${err.message}` };
      throw err;
    }
    if (r.task && plan.task?.generation !== r.taskGeneration) {
      return { why: `task ${r.namespace}/${r.task} changed since the request (generation ${r.taskGeneration} → ${plan.task?.generation})` };
    }
    const now = await planner.build(plan, r.requester.login, r.runId);
    if (manifestHash(now) !== r.baseHash) {
      return { why: `deployment ${r.namespace}/${r.deployment} changed since the request: ${describeChange(r.job as k8s.V1Job, now)}` };
    }
    return { plan };
  }

  async function voidRequest(r: StoredApproval, why: string): Promise<StoredApproval | undefined> {
    const next = await store.decide(r.id, { status: 'void', decidedAt: new Date().toISOString(), message: why });
    if (!next) return undefined;
    try {
      await audit.append({
        type: 'approval.voided',
        actor: SERVER_ACTOR,
        client: SERVER_CLIENT,
        requestId: r.id,
        ...(r.notify ? { notify: r.notify } : {}),
        runId: r.runId,
        namespace: r.namespace,
        deployment: r.deployment,
        task: r.task,
        owner: r.requester.login,
        manifestHash: r.manifestHash,
        message: why,
      });
    } catch (err) {
      logger.error({ err }, 'could not record a voided approval request');
    }
    logger.info({ request: r.id, why }, 'approval request void');
    return next;
  }

  async function expireIfDue(r: StoredApproval): Promise<StoredApproval> {
    if (r.status !== 'pending' || Date.parse(r.expiresAt) > Date.now()) return r;
    const message = `nobody decided within ${Math.round(config.ttlSeconds / 60)} minutes; the request expired at ${r.expiresAt}`;
    const next = await store.decide(r.id, { status: 'expired', decidedAt: new Date().toISOString(), message });
    if (!next) return (await store.get(r.id)) ?? r;
    try {
      await audit.append({
        type: 'approval.expired',
        actor: SERVER_ACTOR,
        client: SERVER_CLIENT,
        requestId: r.id,
        ...(r.notify ? { notify: r.notify } : {}),
        runId: r.runId,
        namespace: r.namespace,
        deployment: r.deployment,
        task: r.task,
        owner: r.requester.login,
        manifestHash: r.manifestHash,
        message,
      });
    } catch (err) {
      logger.error({ err }, 'could not record an expired approval request');
    }
    return next;
  }

  /**
   * Who may decide on `r` now, from the Deployment (and Task) as they are: for a decision
   * (`fresh`) as the API server has them this moment, not as the watch last saw them.
   */
  async function approversNow(r: StoredApproval, fresh = false) {
    const deployment = fresh
      ? await planner.readDeployment(r.namespace, r.deployment).catch(() => undefined)
      : await planner.currentDeployment(r.namespace, r.deployment);
    let runPolicy;
    try {
      runPolicy = (await planner.plan(requesterCtx(r, SERVER_CLIENT), r.input.req, 'silent')).runPolicy;
    } catch {
      // Whatever made the plan fail also voids the request; nobody may decide meanwhile
      // except those the approvers annotation names.
      runPolicy = { optedIn: true, allowedTeams: [], allowedUsers: [], problems: [] };
    }
    return { deployment, policy: approversOf(deployment, { runPolicy }) };
  }

  async function mayDecide(ctx: RequestContext, r: StoredApproval): Promise<boolean> {
    const { policy } = await approversNow(r);
    return decideApprover({ approvers: policy, identity: ctx.identity, requester: r.requester, where: r.namespace }).allow;
  }

  async function visible(ctx: RequestContext, r: StoredApproval): Promise<boolean> {
    if (!served.has(r.namespace)) return false;
    if (samePerson(ctx.identity, r.requester) || ctx.auditor === true) return true;
    const deployment = await planner.currentDeployment(r.namespace, r.deployment).catch(() => undefined);
    if (planner.mayRunInDeployment(ctx, r.namespace, deployment)) return true;
    return mayDecide(ctx, r).catch(() => false);
  }

  async function visibleRequest(ctx: RequestContext, id: string): Promise<StoredApproval> {
    const r = await store.get(id);
    if (!r || !(await visible(ctx, r))) throw notFound(`request ${id} not found`);
    return expireIfDue(r);
  }

  async function refuseDecision(ctx: RequestContext, r: StoredApproval, reason: string, hint: string): Promise<never> {
    try {
      await audit.append({
        type: 'run.denied',
        actor: ctx.identity,
        client: ctx.client,
        requestId: r.id,
        runId: r.runId,
        namespace: r.namespace,
        deployment: r.deployment,
        task: r.task,
        owner: r.requester.login,
        message: reason,
      });
    } catch (err) {
      logger.error({ err }, 'could not record a refused approval');
    }
    throw forbidden(reason, hint);
  }

  /** Checks that `ctx` may decide on a pending `r` now; audits and throws otherwise. */
  async function checkDecider(ctx: RequestContext, r: StoredApproval): Promise<void> {
    if (r.status !== 'pending') {
      throw new ServiceError(
        r.status === 'expired' ? 'gone' : 'conflict',
        `request ${r.id} is ${r.status}${r.message ? `: ${r.message}` : ''}`,
        undefined,
        `request_${r.status}`,
      );
    }
    const { policy } = await approversNow(r, true);
    const d = decideApprover({ approvers: policy, identity: ctx.identity, requester: r.requester, where: `${r.namespace}/${r.deployment}` });
    if (!d.allow)
      await refuseDecision(ctx, r, d.reason, d.code === 'self' ? `ask one of: ${describePolicy(policy)}` : 'ask the owners to add you to oddjob.io/approvers');
  }

  let sweeper: NodeJS.Timeout | undefined;
  let unsubscribe = () => {};

  async function sweep() {
    for (const r of await store.list({ status: 'pending', limit: 500 })) await expireIfDue(r);
  }

  /** A changed Deployment voids its pending requests whose manifest it changes, at once (not only at approval). */
  async function recheckDeployment(namespace: string, name: string) {
    for (const r of await store.list({ status: 'pending', limit: 500 })) {
      if (r.namespace !== namespace || r.deployment !== name) continue;
      const c = await changed(r).catch((err) => {
        logger.warn({ err: (err as Error).message, request: r.id }, 'could not re-check an approval request');
        return undefined;
      });
      if (c && 'why' in c) await voidRequest(r, c.why);
    }
  }

  return {
    start() {
      sweeper = setInterval(
        () => void sweep().catch((err) => logger.error({ err }, 'approval expiry sweep failed')),
        Math.min(30_000, config.ttlSeconds * 250),
      );
      sweeper.unref();
      unsubscribe = planner.onDeploymentChange((ns, name) => void recheckDeployment(ns, name));
    },
    stop() {
      clearInterval(sweeper);
      unsubscribe();
    },

    needed(plan) {
      if (!approvalRequired({ deploymentAnnotations: plan.deployment.metadata?.annotations, task: plan.task })) return undefined;
      return { approvers: describePolicy(approversOf(plan.deployment, plan)) };
    },

    async request(ctx, req, plan) {
      if (plan.interactive || plan.tty) {
        throw new ServiceError(
          'invalid',
          `runs in ${plan.namespace}/${plan.deploymentName} need approval, and an interactive run cannot wait for it`,
          'run it without -i/-t',
        );
      }
      const id = newRunId();
      const runId = newRunId();
      const base = await planner.build(plan, ctx.identity.login, runId);
      const { job } = pinImages(base, await deploymentPods(plan.deployment));
      const hash = manifestHash(job);
      const approvers = describePolicy(approversOf(plan.deployment, plan));
      const notifyTargets = planner.notifyTargets(plan);
      const now = new Date();
      const record: StoredApproval = {
        id,
        status: 'pending',
        namespace: plan.namespace,
        deployment: plan.deploymentName,
        container: plan.container,
        image: job.spec?.template?.spec?.containers?.[0]?.image ?? plan.image,
        task: plan.task?.name,
        taskGeneration: plan.task?.generation,
        command: plan.argv,
        reason: plan.reason,
        requester: { login: ctx.identity.login, id: ctx.identity.id },
        approvers,
        runId,
        manifestHash: hash,
        job: job as unknown as Record<string, unknown>,
        createdAt: now.toISOString(),
        expiresAt: new Date(now.getTime() + config.ttlSeconds * 1000).toISOString(),
        baseHash: manifestHash(base),
        input: isTaskTarget(req) ? { kind: 'task', req } : { kind: 'deploy', req },
        requesterTeams: ctx.identity.teams,
        ...(notifyTargets ? { notify: notifyTargets } : {}),
      };
      try {
        await audit.appendDurable({
          type: 'approval.requested',
          actor: ctx.identity,
          client: ctx.client,
          requestId: id,
          ...(record.notify ? { notify: record.notify } : {}),
          runId,
          namespace: record.namespace,
          deployment: record.deployment,
          container: record.container,
          image: record.image,
          task: record.task,
          taskGeneration: record.taskGeneration,
          command: record.command,
          reason: record.reason,
          manifestHash: hash,
          message: `needs approval by ${approvers}`,
        });
      } catch (err) {
        logger.error({ err }, 'audit log unwritable; refusing the request');
        throw unavailable('the audit log cannot be written, so the request was refused', 'an operator must fix the audit store; see the server log');
      }
      await store.create(record);
      logger.info(
        { request: id, user: ctx.identity.login, namespace: record.namespace, deployment: record.deployment, task: record.task },
        'approval requested',
      );
      return { approval: publicView(record) };
    },

    async listRequests(ctx, q) {
      const out: ApprovalRequest[] = [];
      for (let r of await store.list({ status: q.pending ? 'pending' : undefined, limit: q.limit })) {
        if (!(await visible(ctx, r))) continue;
        r = await expireIfDue(r);
        if (q.pending && r.status !== 'pending') continue;
        out.push(publicView(r));
      }
      return out;
    },

    async getRequest(ctx, id) {
      return publicView(await visibleRequest(ctx, id));
    },

    async approve(ctx, id, reason) {
      const r = await visibleRequest(ctx, id);
      await checkDecider(ctx, r);
      const c = await changed(r);
      if ('why' in c) {
        await voidRequest(r, c.why);
        throw new ServiceError(
          'conflict',
          `request ${id} is void: ${c.why}`,
          'the requester can ask again against the Deployment as it is now',
          'request_void',
        );
      }
      const decided = await store.decide(id, {
        status: 'approved',
        decidedAt: new Date().toISOString(),
        decidedBy: { login: ctx.identity.login, id: ctx.identity.id },
        decisionReason: reason,
      });
      if (!decided) {
        const now = await store.get(id);
        throw new ServiceError('conflict', `request ${id} was ${now?.status ?? 'decided'} meanwhile`, undefined, 'request_decided');
      }
      try {
        await audit.appendDurable({
          type: 'approval.granted',
          actor: ctx.identity,
          client: ctx.client,
          requestId: id,
          ...(r.notify ? { notify: r.notify } : {}),
          runId: r.runId,
          namespace: r.namespace,
          deployment: r.deployment,
          task: r.task,
          taskGeneration: r.taskGeneration,
          command: r.command,
          owner: r.requester.login,
          manifestHash: r.manifestHash,
          reason,
        });
      } catch (err) {
        logger.error({ err }, 'audit log unwritable; the approved run does not start');
        await store.note(id, 'approved, but the audit log could not be written, so nothing ran');
        throw unavailable('the approval could not be recorded, so nothing ran', 'an operator must fix the audit store; see the server log');
      }
      try {
        // Exactly the recorded manifest, under the run id it already carries: a second
        // create of it would answer 409, so it cannot run twice.
        await planner.launch(requesterCtx(r, ctx.client), c.plan, {
          id: r.runId,
          job: r.job as unknown as k8s.V1Job,
          approvalId: id,
          approvedBy: { login: ctx.identity.login, id: ctx.identity.id },
          note: `approved by ${ctx.identity.login} (request ${id})`,
        });
      } catch (err) {
        await store.note(id, `approved, but the run could not start: ${(err as Error).message}`);
        throw err;
      }
      return publicView((await store.get(id)) ?? decided);
    },

    async deny(ctx, id, reason) {
      const r = await visibleRequest(ctx, id);
      await checkDecider(ctx, r);
      try {
        await audit.appendDurable({
          type: 'approval.denied',
          actor: ctx.identity,
          client: ctx.client,
          requestId: id,
          ...(r.notify ? { notify: r.notify } : {}),
          runId: r.runId,
          namespace: r.namespace,
          deployment: r.deployment,
          task: r.task,
          command: r.command,
          owner: r.requester.login,
          manifestHash: r.manifestHash,
          reason,
        });
      } catch (err) {
        logger.error({ err }, 'audit log unwritable; the denial is not taken');
        throw unavailable('the denial could not be recorded', 'an operator must fix the audit store; see the server log');
      }
      const decided = await store.decide(id, {
        status: 'denied',
        decidedAt: new Date().toISOString(),
        decidedBy: { login: ctx.identity.login, id: ctx.identity.id },
        decisionReason: reason,
      });
      if (!decided)
        throw new ServiceError('conflict', `request ${id} was ${(await store.get(id))?.status ?? 'decided'} meanwhile`, undefined, 'request_decided');
      return publicView(decided);
    },
  };
}
