// Notifications end to end on the real cluster: a real oddjob server (GitHub mode
// against the fake GitHub, listening on the node's address so pods can reach it), a
// real Standard Webhooks receiver verifying signatures with `standardwebhooks`, and
// the fake Slack. Proves: started and finished arrive once each; a receiver failing
// 3 times gets the event on a retry with the same id; progress posted from inside a
// real pod with the run's credential reaches the receiver (and the credential does
// nothing else, and dies with the run); a hanging target does not slow a run; a
// server SIGKILLed with pending deliveries delivers them after restart, once; and no
// secret appears in logs, audit or the delivery log.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestNamespace, eventually, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { FakeGitHub } from '../support/fake-github.js';
import { FakeSlack } from '../support/fake-slack.js';
import { deviceToken, startGitHubServer } from '../support/github-signin.js';
import { runCli, type ServerProcess } from '../support/oddjob.js';
import { WebhookReceiver, newWebhookSecret } from '../support/webhook-receiver.js';
import { freePort } from '../support/net.js';

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let gh: FakeGitHub;
let slack: FakeSlack;
let receiver: WebhookReceiver;
let stuck: WebhookReceiver;
let server: ServerProcess;
let dir: string;
let base: string;
let port: number;
let token: string;
let auditorToken: string;
let nodeIp: string;
const SECRET = newWebhookSecret();
/** Logs of server processes that were restarted, for the no-secrets check. */
let earlierLogs = '';
const REVOKED_TOKEN = `xoxb-${Date.now()}-revoked-bot-token`;

function start(): Promise<ServerProcess> {
  return startGitHubServer({
    port,
    gh,
    dir,
    namespaces: [ns.name],
    kubeconfig: cluster.kubeconfigPath,
    // Listen where pods reach the host (the node's address); the run page links and
    // ODDJOB_URL use it too.
    extra: ['--host', nodeIp, '--public-url', base, '--notifications', join(dir, 'notifications.yaml'), '--auditors', 'acme/security'],
  });
}

async function api(path: string, init: RequestInit & { as?: string } = {}) {
  const res = await fetch(`${base}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${init.as ?? token}`, 'content-type': 'application/json', ...(init.headers as Record<string, string>) },
  });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) as Record<string, unknown> & { items?: Array<Record<string, unknown>> } };
}

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(args, { server: base, env: { ODDJOB_TOKEN: token, ...env } });

before(async () => {
  cluster = await requireCluster();
  const node = (await cluster.core.listNode()).items[0]!;
  nodeIp = node.status!.addresses!.find((a) => a.type === 'InternalIP')!.address;
  ns = await createTestNamespace(cluster, 'notify-e2e');
  const deploy = (name: string, notify?: string) =>
    cluster.apps.createNamespacedDeployment({
      namespace: ns.name,
      body: optedInDeployment(name, { 'oddjob.io/allowed-teams': 'acme/payments', ...(notify ? { 'oddjob.io/notify': notify } : {}) }),
    });
  await deploy('api', 'hooks,ops-slack,typo-target');
  await deploy('hangs', 'stuck');
  await deploy('quiet');
  await deploy('revoked', 'revoked-slack');
  gh = await new FakeGitHub().start();
  gh.addUser('alice', ['acme/payments']);
  gh.addUser('erin', ['acme/security']);
  slack = await new FakeSlack().start();
  receiver = await new WebhookReceiver(SECRET).start();
  stuck = await new WebhookReceiver(SECRET).start();
  stuck.hang = true;
  dir = mkdtempSync(join(tmpdir(), 'oddjob-notify-'));
  writeFileSync(join(dir, 'hook-secret'), `${SECRET}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'slack-token'), `${slack.token}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'slack-url'), `${slack.webhookUrl}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'revoked-token'), `${REVOKED_TOKEN}\n`, { mode: 0o600 });
  writeFileSync(
    join(dir, 'notifications.yaml'),
    `# Test receivers run on loopback over plain HTTP.
insecureLoopbackHttp: true
delivery: {timeout: 10s, retryBase: 1s, retryCap: 2s}
targets:
  hooks:
    webhook: {url: "${receiver.url}", secretFile: ${join(dir, 'hook-secret')}}
  ops-slack:
    slack: {tokenFile: ${join(dir, 'slack-token')}, channel: "#ops", apiUrl: "${slack.apiUrl}"}
  pay-slack:
    slack: {webhookUrlFile: ${join(dir, 'slack-url')}}
  stuck:
    webhook: {url: "${stuck.url}", secretFile: ${join(dir, 'hook-secret')}}
  revoked-slack:
    slack: {tokenFile: ${join(dir, 'revoked-token')}, channel: "#ops", apiUrl: "${slack.apiUrl}"}
`,
  );
  port = await freePort();
  base = `http://${nodeIp}:${port}`;
  server = await start();
  token = await deviceToken(base, gh, 'alice');
  auditorToken = await deviceToken(base, gh, 'erin');
});

after(async () => {
  await server?.kill();
  await Promise.all([gh?.stop(), slack?.stop(), receiver?.stop(), stuck?.stop()]);
  await ns?.dispose();
});

/** The script a run executes inside its pod: progress with its credential, then probes what else the credential opens. */
const PROGRESS_SCRIPT = `
const { ODDJOB_URL: url, ODDJOB_RUN_ID: id, ODDJOB_RUN_TOKEN: tok } = process.env;
const post = (path, body) => fetch(url + path, { method: 'POST', headers: { authorization: 'Bearer ' + tok, 'content-type': 'application/json' }, body: JSON.stringify(body) });
(async () => {
  console.log('env', Boolean(url), Boolean(id), tok ? tok.slice(0, 4) : 'none');
  console.log('progress', (await post('/api/runs/' + id + '/progress', { message: '40% done <!channel>' })).status);
  console.log('other-run', (await post('/api/runs/aaaaaaaaaaaa/progress', { message: 'x' })).status);
  console.log('other-route', (await fetch(url + '/api/runs', { headers: { authorization: 'Bearer ' + tok } })).status);
  process.exit(3);
})();`;

describe('notifications on a real cluster', () => {
  let runId: string;

  test('a run notifies its targets once each (started, progress from inside the pod, failed); Slack updates in place', async () => {
    const preview = await api('/api/runs/preview', { method: 'POST', body: JSON.stringify({ namespace: ns.name, deployment: 'api', command: ['true'] }) });
    assert.equal(preview.status, 200, preview.text);
    assert.deepEqual(preview.json().notify, { targets: ['hooks', 'ops-slack'], unknown: ['typo-target'] });

    const r = await cli(['run', '-n', ns.name, 'deploy/api', '--', 'node', '-e', PROGRESS_SCRIPT]);
    const out = r.stdout.toString();
    assert.equal(r.code, 3, `exit code; stderr:\n${r.stderr}\nstdout:\n${out}`);
    assert.match(out, /env true true ojr_/);
    assert.match(out, /progress 201/);
    assert.match(out, /other-run 401/, 'the credential is refused for another run');
    assert.match(out, /other-route 401/, 'the credential is refused for any other route');
    runId = /run ([a-z0-9]{12})/.exec(r.stderr)?.[1] ?? '';
    assert.match(runId, /^[a-z0-9]{12}$/, r.stderr);

    const got = await eventually('3 webhooks', async () => receiver.ofRun(runId).length >= 3 && receiver.ofRun(runId), 30_000);
    await new Promise((res) => setTimeout(res, 3000)); // a duplicate would show up now
    assert.deepEqual(
      receiver.ofRun(runId).map((w) => w.body.type),
      ['run.started', 'run.progress', 'run.failed'],
    );
    assert.equal(new Set(got.map((w) => w.id)).size, 3);
    assert.equal(receiver.rejected.length, 0, 'every request verified with standardwebhooks');
    assert.equal(got[1]!.body.data.text, '40% done <!channel>');
    assert.equal(got[2]!.body.data.run?.exitCode, 3);
    assert.equal(got[2]!.body.data.url, `${base}/runs/${runId}`);

    const messages = [...slack.messages.values()].filter((m) => JSON.stringify(m.blocks).includes(runId));
    const top = messages.filter((m) => !m.thread_ts);
    assert.equal(top.length, 1, 'one Slack message for the run');
    assert.equal(top[0]!.updates.length, 1, 'updated in place when it finished');
    assert.match(JSON.stringify(top[0]!.updates[0]!.blocks), /failed/);

    const run = await api(`/api/runs/${runId}`);
    assert.deepEqual((run.json().progress as { message: string }).message, '40% done <!channel>');
    const requested = await api(`/api/audit?runId=${runId}&type=run.requested`);
    assert.deepEqual(requested.json().items![0]!.notifyUnknown, ['typo-target'], 'the unknown target name is on record');
    const progress = await api(`/api/audit?runId=${runId}&type=run.progress`);
    assert.equal(progress.json().items!.length, 1);
  });

  test("the run's credential sits in a Secret owned by the Job, and dies with the run", async () => {
    const secret = await cluster.core.readNamespacedSecret({ name: `oddjob-run-${runId}`, namespace: ns.name });
    assert.equal(secret.metadata?.ownerReferences?.[0]?.kind, 'Job');
    const runToken = Buffer.from(secret.data!.token!, 'base64').toString();
    const late = await fetch(`${base}/api/runs/${runId}/progress`, {
      method: 'POST',
      headers: { authorization: `Bearer ${runToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'after the end' }),
    });
    assert.equal(late.status, 401, 'refused once the run ended');
    const asUser = await fetch(`${base}/api/whoami`, { headers: { authorization: `Bearer ${runToken}` } });
    assert.equal(asUser.status, 401, 'not a sign-in credential');
  });

  test('`oddjob notify` posts progress with the run credential from the environment, and only that', async () => {
    const r = await cli(['run', '--detach', '-n', ns.name, 'deploy/api', '--', 'node', '-e', 'setTimeout(() => {}, 20000)']);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.toString().trim();
    await eventually('the run running', async () => (await api(`/api/runs/${id}`)).json().status === 'running', 60_000);
    const secret = await cluster.core.readNamespacedSecret({ name: `oddjob-run-${id}`, namespace: ns.name });
    const env = { ODDJOB_URL: base, ODDJOB_RUN_ID: id, ODDJOB_RUN_TOKEN: Buffer.from(secret.data!.token!, 'base64').toString(), ODDJOB_TOKEN: '' };
    const ok = await runCli(['notify', 'halfway', 'there'], { server: base, env });
    assert.equal(ok.code, 0, ok.stderr);
    await eventually(
      'the progress webhook',
      async () => receiver.ofRun(id).some((w) => w.body.type === 'run.progress' && w.body.data.text === 'halfway there'),
      30_000,
    );
    const missing = await runCli(['notify', 'x'], { server: base, env: { ...env, ODDJOB_RUN_TOKEN: '' } });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /ODDJOB_RUN_TOKEN is not set/);
    const wrongRun = await runCli(['notify', 'x'], { server: base, env: { ...env, ODDJOB_RUN_ID: runId } });
    assert.notEqual(wrongRun.code, 0, 'another run (ended) refuses it');
    assert.match(wrongRun.stderr, /not valid/);
    assert.equal((await cli(['cancel', id])).code, 0);
  });

  test('a receiver failing the first 3 times gets the event on a retry with the same id', async () => {
    receiver.failNext = 3;
    const before = receiver.attempts.length;
    const r = await cli(['run', '-n', ns.name, 'deploy/api', '--', 'true']);
    assert.equal(r.code, 0, r.stderr);
    const id = /run ([a-z0-9]{12})/.exec(r.stderr)![1]!;
    await eventually('started and succeeded', async () => receiver.ofRun(id).length === 2, 60_000);
    const started = receiver.ofRun(id)[0]!;
    const attemptsOfStarted = receiver.attempts.slice(before).filter((a) => a.id === started.id);
    assert.deepEqual(
      attemptsOfStarted.map((a) => a.status),
      [500, 500, 500, 204],
    );
    const log = await cli(['notifications', '--run', id, '--json'], { ODDJOB_TOKEN: auditorToken });
    assert.equal(log.code, 0, log.stderr);
    const rows = log.stdout
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; target: string; attempts: number; state: string });
    assert.deepEqual(rows.find((x) => x.target === 'hooks' && x.event === 'run.started')?.attempts, 4);
    const denied = await cli(['notifications'], { ODDJOB_TOKEN: token });
    assert.notEqual(denied.code, 0, 'only auditors read the delivery log');
  });

  test('a hanging target does not slow a run', async () => {
    const timed = async (deployment: string) => {
      const t0 = Date.now();
      const r = await cli(['run', '-n', ns.name, `deploy/${deployment}`, '--', 'node', '-e', 'setTimeout(() => {}, 2000)']);
      assert.equal(r.code, 0, r.stderr);
      return Date.now() - t0;
    };
    // Alternate to even out pod start-up noise.
    const quiet = [await timed('quiet'), await timed('quiet')];
    const hanging = [await timed('hangs'), await timed('hangs')];
    const hangAttempts = stuck.attempts.length;
    console.log(
      `run wall time without notifications: ${quiet.join(', ')} ms; with a hanging target: ${hanging.join(', ')} ms; attempts held by the hanging receiver: ${hangAttempts}`,
    );
    assert.ok(hangAttempts >= 1, 'the hanging target was tried');
    // Each hanging attempt is held for the 10 s delivery timeout; a run that waited on one would take that long more.
    assert.ok(Math.min(...hanging) < Math.max(...quiet) + 5000, `runs with a hanging target took ${hanging.join(', ')} ms vs ${quiet.join(', ')} ms`);
  });

  test('a server SIGKILLed with pending deliveries delivers them after restart, once', async () => {
    receiver.failNext = 10_000;
    const r = await cli(['run', '-n', ns.name, 'deploy/api', '--', 'true']);
    assert.equal(r.code, 0, r.stderr);
    const id = /run ([a-z0-9]{12})/.exec(r.stderr)![1]!;
    await eventually(
      'a refused attempt of its finish',
      async () =>
        receiver.attempts.filter((a) => a.status === 500).length > 0 &&
        (await cli(['notifications', '--run', id, '--json'], { ODDJOB_TOKEN: auditorToken })).stdout.toString().includes('run.succeeded'),
      30_000,
    );
    earlierLogs += server.logs();
    await server.kill('SIGKILL');
    assert.equal(receiver.ofRun(id).length, 0, 'nothing delivered before the kill');
    receiver.failNext = 0;
    server = await start();
    await eventually('both events after the restart', async () => receiver.ofRun(id).length >= 2, 60_000);
    await new Promise((res) => setTimeout(res, 3000));
    assert.deepEqual(
      receiver.ofRun(id).map((w) => w.body.type),
      ['run.started', 'run.succeeded'],
    );
  });

  test('a revoked Slack token: dead letters at once, in the CLI and /metrics; after fixing the token file and a restart, redelivered in bulk', async () => {
    const r = await cli(['run', '-n', ns.name, 'deploy/revoked', '--', 'true']);
    assert.equal(r.code, 0, r.stderr);
    const id = /run ([a-z0-9]{12})/.exec(r.stderr)![1]!;
    const failed = async () => {
      const out = await cli(['notifications', '--failed', '--target', 'revoked-slack', '--run', id, '--json'], { ODDJOB_TOKEN: auditorToken });
      assert.equal(out.code, 0, out.stderr);
      return out.stdout
        .toString()
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { event: string; attempts: number; lastError: string; webhookId: string });
    };
    const dead = await eventually(
      'both events dead letters',
      async () => {
        const rows = await failed();
        return rows.length === 2 && rows;
      },
      30_000,
    );
    assert.deepEqual(dead.map((d) => [d.event, d.attempts]).sort(), [
      ['run.started', 1],
      ['run.succeeded', 1],
    ]);
    assert.ok(
      dead.every((d) => /^chat\.postMessage: invalid_auth \(not retried/.test(d.lastError)),
      JSON.stringify(dead),
    );
    const metricsText = await (await fetch(`${base}/metrics`)).text();
    assert.match(metricsText, /^oddjob_notification_deliveries\{target="revoked-slack",state="failed"\} 2$/m);
    assert.match(metricsText, /^oddjob_notification_attempts_total\{target="revoked-slack",outcome="refused"\} 2$/m);
    assert.match(server.logs(), /refused by the target for a reason retrying cannot fix/);

    // The operator puts the right token in the file and restarts; dead letters stay dead until redelivered.
    writeFileSync(join(dir, 'revoked-token'), `${slack.token}\n`, { mode: 0o600 });
    earlierLogs += server.logs();
    await server.kill();
    server = await start();
    assert.equal((await failed()).length, 2);
    const denied = await cli(['notifications', 'redeliver', '--failed', '--target', 'revoked-slack']);
    assert.notEqual(denied.code, 0, 'only auditors redeliver');
    const again = await cli(['notifications', 'redeliver', '--failed', '--target', 'revoked-slack'], { ODDJOB_TOKEN: auditorToken });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout.toString(), /^2 failed deliveries to revoked-slack will be sent again now/);
    await eventually(
      'the run in Slack, updated in place',
      async () => [...slack.messages.values()].some((m) => JSON.stringify(m.blocks).includes(id) && m.updates.length === 1),
      30_000,
    );
    const log = await cli(['notifications', '--run', id, '--json'], { ODDJOB_TOKEN: auditorToken });
    const rows = log.stdout
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { state: string; webhookId: string });
    assert.deepEqual(
      rows.map((x) => x.state),
      ['delivered', 'delivered'],
    );
    assert.deepEqual(new Set(rows.map((x) => x.webhookId)), new Set(dead.map((d) => d.webhookId)), 'the same deliveries, not new ones');
    const audited = await api('/api/audit?type=notification.redelivered&limit=5', { as: auditorToken });
    assert.match(audited.text, /redelivery of every failed delivery to target revoked-slack/);
  });

  test('nothing secret in the server log, the audit log or the delivery log', async () => {
    const audit = await api('/api/audit/export', { as: auditorToken });
    const deliveries = await api('/api/notifications?limit=500', { as: auditorToken });
    assert.equal(deliveries.status, 200);
    const db = readFileSync(join(dir, 'audit.db')).toString('latin1');
    const haystacks = { 'server log': earlierLogs + server.logs(), 'audit log': audit.text, 'delivery log': deliveries.text, 'store file': db };
    const secrets = {
      'webhook secret': SECRET.slice('whsec_'.length),
      'Slack token': slack.token,
      'revoked Slack token': REVOKED_TOKEN,
      'Slack webhook URL': slack.webhookPath.split('/').pop()!,
    };
    for (const [where, text] of Object.entries(haystacks)) {
      for (const [what, value] of Object.entries(secrets)) assert.ok(!text.includes(value), `${what} found in the ${where}`);
      assert.doesNotMatch(text, /ojr_[A-Za-z0-9_-]{20}/, `a run credential found in the ${where}`);
    }
    assert.ok(audit.text.includes('run.progress'), 'the check read the real audit log');
  });
});
