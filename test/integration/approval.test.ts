// Four-eyes approval on the real cluster, with several real signed-in people (the fake
// GitHub) and the real CLI waiting for decisions. Proves that:
//  - a run on a Deployment with oddjob.io/approval: required becomes a request; its
//    requester cannot approve it, nor can someone who is not an approver; a second
//    person's approval runs exactly the recorded manifest, which streams to the waiting
//    CLI and sets its exit code;
//  - an approved request cannot run twice, even when two approvers race;
//  - a denial (with a reason) ends the wait with nothing run;
//  - an approver's right is re-checked at approval time;
//  - a Deployment change that changes the manifest voids a pending request, saying why;
//  - a request expires and says so;
//  - a Task with approval: required asks for it, the preview says so and by whom, and a
//    Task without it runs at once; every step is in the audit log.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { manifestHash } from '../../server/approvals/policy.js';
import { createTestNamespace, eventually, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { createTask } from '../support/task-crd.js';
import { FakeGitHub } from '../support/fake-github.js';
import { deviceToken, startGitHubServer } from '../support/github-signin.js';
import { runCli, type CliResult, type ServerProcess } from '../support/oddjob.js';
import { WebhookReceiver, newWebhookSecret } from '../support/webhook-receiver.js';
import { freePort } from '../support/net.js';

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let gh: FakeGitHub;
let server: ServerProcess;
let dir: string;
const tokens: Record<string, string> = {};
// The Deployments report to one webhook: approval.* events reach it, with the request.
const hooks = new WebhookReceiver(newWebhookSecret());

const GUARDED = {
  'oddjob.io/allowed-teams': 'acme/payments',
  'oddjob.io/approval': 'required',
  'oddjob.io/approvers': 'acme/payments-leads,carol',
  'oddjob.io/notify': 'ops',
};

interface Answer {
  status: number;
  body: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the tests read many body shapes; the asserts check them
  json(): any;
}
async function http(method: string, path: string, as: string, body?: unknown, base = server.url): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${tokens[as]}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text, json: () => JSON.parse(text) };
}

function cli(as: string, args: string[], base = server.url): Promise<CliResult> {
  return runCli(args, { server: base, env: { ODDJOB_TOKEN: tokens[as] } });
}

/** The newest pending request of `as` (the CLI that made it is waiting meanwhile). */
const seen = new Set<string>();
async function pendingOf(as: string, deployment: string, base = server.url): Promise<{ id: string; runId: string; manifestHash: string }> {
  const found = await eventually(`a new pending request by ${as} on ${deployment}`, async () => {
    const r = await http('GET', '/api/requests?pending=true', as, undefined, base);
    return r
      .json()
      .items.find(
        (x: { id: string; requester: { login: string }; deployment: string }) => x.requester.login === as && x.deployment === deployment && !seen.has(x.id),
      );
  });
  seen.add(found.id);
  return found;
}

async function audit(query: string): Promise<Array<Record<string, unknown> & { type: string; seq: number; actor: { login: string } }>> {
  const r = await http('GET', `/api/audit?${query}&limit=200`, 'erin');
  assert.equal(r.status, 200, r.body);
  return r.json().items;
}

const printAndExit = (text: string, code: number) => ['node', '-e', `console.log(${JSON.stringify(text)}); process.exit(${code})`];

before(async () => {
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'approval');
  for (const name of ['guarded', 'changing']) {
    await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: optedInDeployment(name, GUARDED) });
  }
  for (const [name, approval] of [
    ['risky', 'required'],
    ['safe', 'none'],
  ] as const) {
    await createTask(cluster, ns.name, name, {
      deployment: 'guarded',
      approval,
      command: ['node', '-e', 'console.log(process.argv.at(-1))', '--', '$(params.who)'],
      params: [{ name: 'who', type: 'string', required: true }],
    });
  }
  gh = await new FakeGitHub().start();
  gh.addUser('alice', ['acme/payments']);
  gh.addUser('bob', ['acme/payments']);
  gh.addUser('carol', [], ['acme']);
  gh.addUser('erin', ['acme/payments-leads', 'acme/security']);
  gh.addUser('dave', ['acme/web']);
  dir = mkdtempSync(join(tmpdir(), 'oddjob-approval-'));
  await hooks.start();
  writeFileSync(join(dir, 'hook-secret'), `${hooks.secret}\n`, { mode: 0o600 });
  writeFileSync(
    join(dir, 'notifications.yaml'),
    `insecureLoopbackHttp: true\ntargets:\n  ops:\n    webhook: {url: "${hooks.url}", secretFile: ${join(dir, 'hook-secret')}}\n`,
  );
  server = await startGitHubServer({
    port: await freePort(),
    gh,
    dir,
    namespaces: [ns.name],
    kubeconfig: cluster.kubeconfigPath,
    extra: ['--auditors', 'acme/security', '--auth-rate-limit', '1000', '--start-timeout', '60s', '--notifications', join(dir, 'notifications.yaml')],
  });
  for (const who of ['alice', 'bob', 'carol', 'erin', 'dave']) tokens[who] = await deviceToken(server.url, gh, who);
});

after(async () => {
  await server?.kill();
  await gh?.stop();
  await hooks.stop();
  await ns?.dispose();
});

describe('a run that needs approval', () => {
  test('request → self-approval refused → non-approver refused → second person approves → the approved argv streams to the waiting CLI', async () => {
    const waiting = cli('alice', ['run', '-n', ns.name, 'deploy/guarded', '--reason', 'INC-1', '--', ...printAndExit('approved output', 3)]);
    const request = await pendingOf('alice', 'guarded');
    const self = await cli('alice', ['approve', request.id]);
    assert.equal(self.code, 1);
    assert.match(self.stderr, /you requested this run, so you cannot decide on it/);
    const bob = await cli('bob', ['approve', request.id]);
    assert.equal(bob.code, 1);
    assert.match(bob.stderr, /you \(bob\) may not approve runs in .*\/guarded; its approvers are teams acme\/payments-leads; users carol/);
    const listed = await cli('carol', ['requests', '--pending', '-o', 'json']);
    assert.ok(
      JSON.parse(listed.stdout.toString()).items.some((r: { id: string }) => r.id === request.id),
      'carol sees it in her inbox',
    );
    assert.deepEqual((await http('GET', '/api/requests?pending=true', 'dave')).json().items, [], 'dave sees nothing');

    const approved = await cli('carol', ['approve', request.id, '--reason', 'looks right']);
    assert.equal(approved.code, 0, approved.stderr);
    assert.equal(approved.stdout.toString().trim(), request.runId);

    const r = await waiting;
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout.toString(), 'approved output\n');
    assert.match(r.stderr, new RegExp(`request ${request.id} approved by carol: looks right; run ${request.runId} starts`));

    // The approver may follow what she let run, though she may not run in the Deployment herself.
    const seenByCarol = await http('GET', `/api/runs/${request.runId}`, 'carol');
    assert.equal(seenByCarol.status, 200, seenByCarol.body);
    assert.deepEqual(seenByCarol.json().approvedBy.login, 'carol');
    assert.equal((await http('GET', `/api/runs/${request.runId}`, 'dave')).status, 404);

    // The Job in the cluster is the manifest recorded in the request, byte for byte.
    const stored = (await http('GET', `/api/requests/${request.id}`, 'alice')).json();
    assert.equal(stored.status, 'approved');
    assert.equal(manifestHash(stored.job), stored.manifestHash);
    const job = await cluster.batch.readNamespacedJob({ namespace: ns.name, name: stored.job.metadata.name });
    assert.deepEqual(job.spec?.template.spec?.containers[0]?.command, stored.job.spec.template.spec.containers[0].command);
    assert.equal(job.spec?.template.spec?.containers[0]?.image, stored.job.spec.template.spec.containers[0].image);
    assert.deepEqual(job.metadata?.labels, stored.job.metadata.labels);

    const events = (await audit(`namespace=${ns.name}`)).filter((e) => e.requestId === request.id).reverse();
    assert.deepEqual(
      events.map((e) => `${e.type}:${e.actor.login}`),
      ['approval.requested:alice', 'run.denied:alice', 'run.denied:bob', 'approval.granted:carol', 'run.requested:alice', 'run.created:alice'],
    );
    assert.equal(events[0]!.manifestHash, stored.manifestHash);
    assert.equal(events[3]!.reason, 'looks right');

    // The Deployment's notification target heard the request and the approval, then the run's end.
    const about = (type: string) => hooks.unique().find((h) => h.body.type === type && (h.body.data.request as { id?: string } | undefined)?.id === request.id);
    const [asked, yes] = await eventually('approval.requested and approval.granted webhooks', async () => {
      const both = [about('approval.requested'), about('approval.granted')];
      return both.every(Boolean) && both;
    });
    assert.equal(asked!.body.data.actor, 'alice');
    assert.deepEqual(asked!.body.data.request, {
      id: request.id,
      command: printAndExit('approved output', 3),
      reason: 'INC-1',
      url: `${server.url}/requests`,
    });
    assert.deepEqual([yes!.body.data.actor, yes!.body.data.owner, (yes!.body.data.request as { reason: string }).reason], ['carol', 'alice', 'looks right']);
    await eventually('the run.failed webhook', async () => hooks.ofRun(request.runId).some((h) => h.body.type === 'run.failed'));
    assert.equal(hooks.rejected.length, 0, 'every webhook verified with standardwebhooks');
  });

  test('an approved request cannot run twice, even when two approvers race', async () => {
    const r = await cli('alice', ['run', '-n', ns.name, '--no-wait', 'deploy/guarded', '--', ...printAndExit('once', 0)]);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.toString().trim();
    seen.add(id);
    const [a, b] = await Promise.all([http('POST', `/api/requests/${id}/approve`, 'carol', {}), http('POST', `/api/requests/${id}/approve`, 'erin', {})]);
    assert.deepEqual([a.status, b.status].sort(), [200, 409], `${a.body} ${b.body}`);
    const again = await cli('erin', ['approve', id]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`request ${id} is approved`));
    const runId = a.status === 200 ? a.json().runId : b.json().runId;
    const jobs = await cluster.batch.listNamespacedJob({ namespace: ns.name, labelSelector: `oddjob.io/run-id=${runId}` });
    assert.equal(jobs.items.length, 1);
    assert.equal((await audit(`namespace=${ns.name}&type=approval.granted`)).filter((e) => e.requestId === id).length, 1);
  });

  test('a denial ends the wait; nothing runs', async () => {
    const jobsBefore = (await cluster.batch.listNamespacedJob({ namespace: ns.name })).items.length;
    const waiting = cli('alice', ['run', '-n', ns.name, 'deploy/guarded', '--', ...printAndExit('never', 0)]);
    const request = await pendingOf('alice', 'guarded');
    const noReason = await cli('erin', ['deny', request.id]);
    assert.notEqual(noReason.code, 0);
    assert.match(noReason.stderr, /--reason/);
    const denied = await cli('erin', ['deny', request.id, '--reason', 'not during the freeze']);
    assert.equal(denied.code, 0, denied.stderr);
    const r = await waiting;
    assert.equal(r.code, 125);
    assert.match(r.stderr, new RegExp(`request ${request.id} was denied by erin: not during the freeze; nothing ran`));
    assert.equal((await cluster.batch.listNamespacedJob({ namespace: ns.name })).items.length, jobsBefore);
    const e = (await audit(`namespace=${ns.name}&type=approval.denied`)).find((x) => x.requestId === request.id);
    assert.equal(e?.actor.login, 'erin');
    assert.equal(e?.reason, 'not during the freeze');
    await eventually('the approval.denied webhook', async () =>
      hooks
        .unique()
        .some((h) => h.body.type === 'approval.denied' && (h.body.data.request as { id: string; reason: string }).reason === 'not during the freeze'),
    );
  });

  test("an approver's right is re-checked at approval time", async () => {
    const r = await cli('alice', ['run', '-n', ns.name, '--no-wait', 'deploy/guarded', '--', ...printAndExit('later', 0)]);
    const id = r.stdout.toString().trim();
    seen.add(id);
    // Taking carol off the approvers changes no manifest: the request stands, carol may no longer decide.
    await cluster.apps.patchNamespacedDeployment(
      { namespace: ns.name, name: 'guarded', body: [{ op: 'replace', path: '/metadata/annotations/oddjob.io~1approvers', value: 'acme/payments-leads' }] },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    try {
      // Decided from the Deployment as the API server has it now, not after the watch catches up.
      // Once no approver, carol may not even see it (404) — or, if her view is a watch lag
      // behind, is refused by the fresh check (403). Either way nothing runs.
      const carol = await http('POST', `/api/requests/${id}/approve`, 'carol', {});
      assert.ok([403, 404].includes(carol.status), carol.body);
      if (carol.status === 403) assert.match(carol.json().error.message, /you \(carol\) may not approve runs in .*\/guarded/);
      assert.equal((await http('GET', `/api/requests/${id}`, 'alice')).json().status, 'pending');
      const ok = await http('POST', `/api/requests/${id}/approve`, 'erin', {});
      assert.equal(ok.status, 200, ok.body);
    } finally {
      await cluster.apps.patchNamespacedDeployment(
        {
          namespace: ns.name,
          name: 'guarded',
          body: [{ op: 'replace', path: '/metadata/annotations/oddjob.io~1approvers', value: GUARDED['oddjob.io/approvers'] }],
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
      );
    }
  });

  test('a Deployment image change voids a pending request, and says why', async () => {
    const waiting = cli('alice', ['run', '-n', ns.name, 'deploy/changing', '--', ...printAndExit('stale', 0)]);
    const request = await pendingOf('alice', 'changing');
    await cluster.apps.patchNamespacedDeployment(
      { namespace: ns.name, name: 'changing', body: [{ op: 'replace', path: '/spec/template/spec/containers/0/image', value: 'docker.io/oddjob/demo:9.9.9' }] },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    const r = await waiting;
    assert.equal(r.code, 125);
    assert.match(
      r.stderr,
      /was void: deployment .*\/changing changed since the request: container app's image changed from docker\.io\/oddjob\/demo:0\.1\.0 to docker\.io\/oddjob\/demo:9\.9\.9; nothing ran/,
    );
    const approve = await http('POST', `/api/requests/${request.id}/approve`, 'carol', {});
    assert.equal(approve.status, 409);
    const e = (await audit(`namespace=${ns.name}&type=approval.voided`)).find((x) => x.requestId === request.id);
    assert.match(String(e?.message), /image changed/);
    await eventually('the approval.voided webhook, saying why', async () =>
      hooks
        .unique()
        .some(
          (h) =>
            h.body.type === 'approval.voided' && (h.body.data.request as { id: string }).id === request.id && /image changed/.test(String(h.body.data.message)),
        ),
    );
  });
});

describe('Tasks and approval', () => {
  test('the preview says a run needs approval, and by whom', async () => {
    const p = await http('POST', '/api/runs/preview', 'alice', { namespace: ns.name, task: 'risky', params: { who: 'x' } });
    assert.equal(p.status, 200, p.body);
    assert.deepEqual(p.json().approval, { required: true, approvers: 'teams acme/payments-leads; users carol' });
    assert.deepEqual(p.json().argv, ['node', '-e', 'console.log(process.argv.at(-1))', '--', 'x']);
    const free = await http('POST', '/api/runs/preview', 'alice', { namespace: ns.name, deployment: 'guarded', command: ['true'] });
    assert.equal(free.json().approval.required, true);
    const safe = await http('POST', '/api/runs/preview', 'alice', { namespace: ns.name, task: 'safe', params: { who: 'x' } });
    assert.equal(safe.json().approval, undefined);
  });

  test('a Task with approval: required waits for a second person; one without runs at once', async () => {
    const safe = await cli('alice', ['run', '-n', ns.name, 'task/safe', '-p', 'who=at once']);
    assert.equal(safe.code, 0, safe.stderr);
    assert.equal(safe.stdout.toString(), 'at once\n');
    const waiting = cli('alice', ['run', '-n', ns.name, 'task/risky', '-p', 'who=after approval']);
    const request = await pendingOf('alice', 'guarded');
    const stored = (await http('GET', `/api/requests/${request.id}`, 'carol')).json();
    assert.equal(stored.task, 'risky');
    assert.equal(stored.taskGeneration, 1);
    assert.equal((await cli('carol', ['approve', request.id])).code, 0);
    const r = await waiting;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'after approval\n');
  });
});

test('a request expires, and says so', async () => {
  const short = await startGitHubServer({
    port: await freePort(),
    gh,
    dir,
    db: 'short.db',
    namespaces: [ns.name],
    kubeconfig: cluster.kubeconfigPath,
    extra: ['--approval-ttl', '3s', '--auth-rate-limit', '1000'],
  });
  try {
    for (const who of ['alice', 'carol']) tokens[who] = await deviceToken(short.url, gh, who);
    const r = await cli('alice', ['run', '-n', ns.name, 'deploy/guarded', '--', ...printAndExit('too late', 0)], short.url);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /was expired: nobody decided within/);
    const request = (await http('GET', '/api/requests', 'alice', undefined, short.url)).json().items[0];
    assert.equal(request.status, 'expired');
    const late = await http('POST', `/api/requests/${request.id}/approve`, 'carol', {}, short.url);
    assert.equal(late.status, 410, late.body);
  } finally {
    await short.kill();
    // The tokens of the main server for the other tests.
    for (const who of ['alice', 'carol']) tokens[who] = await deviceToken(server.url, gh, who);
  }
});
