// What a person typed, shown to someone else, end to end: the real server (GitHub
// sign-in against the fake GitHub) on the real cluster, and the real CLI whose
// stdout bytes are checked. An argv carrying "set the window title" and "clear the
// screen", a bidi override in a reason, a token description and a User-Agent with
// C1 controls all reach `oddjob audit`, `oddjob runs` and `oddjob tokens` visibly
// escaped, while --json stays exact. Then the recycled login: another GitHub
// account registering the same login sees none of the first one's runs, events or
// tokens.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestNamespace, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { FakeGitHub } from '../support/fake-github.js';
import { startGitHubServer } from '../support/github-signin.js';
import { runCli, type ServerProcess } from '../support/oddjob.js';
import { freePort } from '../support/net.js';

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let gh: FakeGitHub;
let server: ServerProcess;
let base: string;
let dir: string;

const TITLE = '\x1b]0;pwned\x07';
const CLEAR = '\x1b[2J';
const RLO = '\u202e';
const C1_CSI = '\u009b'; // an 8-bit CSI: reaches us as the byte 0x9b in a header
const ARGV = ['node', '-e', 'process.exit(0)', TITLE, CLEAR];
const REASON = `INC-1 ${RLO}gnp.exe`;

before(async () => {
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'display-e2e');
  await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: optedInDeployment('api', { 'oddjob.io/allowed-teams': 'acme/payments' }) });
  gh = await new FakeGitHub().start();
  gh.addUser('xavier', ['acme/payments'], ['acme'], 1);
  gh.addUser('erin', ['acme/security'], ['acme'], 5);
  dir = mkdtempSync(join(tmpdir(), 'oddjob-display-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = await startGitHubServer({
    port,
    gh,
    dir,
    namespaces: [ns.name],
    kubeconfig: cluster.kubeconfigPath,
    extra: ['--auditors', 'acme/security', '--team-refresh', '1s'],
  });
});

after(async () => {
  await server?.kill();
  await gh?.stop();
  await ns?.dispose();
});

/** POST with a raw User-Agent (fetch would refuse the byte 0x9b); JSON answer. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the tests read many body shapes; the asserts check them
function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body ?? {});
    const req = http.request(
      `${base}${path}`,
      { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), ...headers } },
      (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve({ status: res.statusCode!, json: b ? JSON.parse(b) : undefined }));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** `oddjob login`'s device flow, from a client whose User-Agent is `agent`. */
async function signIn(login: string, agent = 'oddjob-test'): Promise<string> {
  const start = await post('/auth/device', {});
  assert.equal(start.status, 200);
  gh.approveDevice(start.json.userCode, login);
  const done = await post('/auth/device/token', { deviceCode: start.json.deviceCode }, { 'user-agent': agent });
  assert.equal(done.status, 200, JSON.stringify(done.json));
  return done.json.token;
}

const cli = (token: string, args: string[]) => runCli(args, { server: base, env: { ODDJOB_TOKEN: token, XDG_CONFIG_HOME: join(dir, 'nobody') } });

/** No byte that a terminal acts on: C0 (but \n), DEL, C1 (as UTF-8), bidi and zero-width characters. */
function assertInert(out: Buffer, what: string) {
  const text = out.toString('utf8');
  // eslint-disable-next-line no-control-regex -- finding raw control characters is the point
  const bad = /[\x00-\x09\x0b-\x1f\x7f\u0080-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/u.exec(text);
  assert.equal(bad, null, `${what} printed ${JSON.stringify(bad?.[0])} raw:\n${JSON.stringify(text)}`);
}

let xavier1: string;
let runId: string;

describe('typed text is shown escaped to whoever lists it', () => {
  test('a run whose argv sets the title and clears the screen, with a bidi override in its reason', async () => {
    xavier1 = await signIn('xavier', `curl/8 ${C1_CSI}2J`);
    const r = await cli(xavier1, ['run', '-n', ns.name, 'deploy/api', '--reason', REASON, '--', ...ARGV]);
    assert.equal(r.code, 0, r.stderr);
    runId = /run ([a-z0-9]{12})/.exec(r.stderr)![1]!;
  });

  test('oddjob audit (an auditor): argv and reason escaped, byte for byte', async () => {
    const erin = await signIn('erin');
    const r = await cli(erin, ['audit', '--user', 'xavier']);
    assert.equal(r.code, 0, r.stderr);
    assertInert(r.stdout, 'oddjob audit');
    const text = r.stdout.toString('utf8');
    assert.ok(text.includes("'\\x1b]0;pwned\\x07' '\\x1b[2J'"), text);
    // Exact --json: the NDJSON export has the argv as typed.
    const json = await cli(erin, ['audit', '--user', 'xavier', '--json']);
    const requested = json.stdout
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((e) => e.type === 'run.requested');
    assert.deepEqual(requested.command, ARGV);
    assert.equal(requested.reason, REASON);
    assert.ok(json.stdout.includes(Buffer.from('\\u001b]0;pwned\\u0007')), 'JSON escapes it, as JSON does');
  });

  test('oddjob runs: the command escaped; --json exact', async () => {
    const r = await cli(xavier1, ['runs']);
    assert.equal(r.code, 0, r.stderr);
    assertInert(r.stdout, 'oddjob runs');
    assert.match(r.stdout.toString('utf8'), new RegExp(`${runId} .*node -e 'process.exit\\(0\\)' '\\\\x1b\\]0;pwned\\\\x07' '\\\\x1b\\[2J'`));
    const json = await cli(xavier1, ['runs', '--json']);
    assert.deepEqual(JSON.parse(json.stdout.toString('utf8').trim().split('\n')[0]!).command, ARGV);
  });

  test('oddjob tokens: a description and a User-Agent with controls, escaped', async () => {
    const created = await fetch(`${base}/auth/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${xavier1}`, 'content-type': 'application/json' },
      body: JSON.stringify({ description: `ci ${TITLE}${RLO}` }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const r = await cli(xavier1, ['tokens']);
    assert.equal(r.code, 0, r.stderr);
    assertInert(r.stdout, 'oddjob tokens');
    const text = r.stdout.toString('utf8');
    assert.ok(text.includes('ci \\x1b]0;pwned\\x07\\u202e'), text);
    assert.ok(text.includes('\\u009b2J)'), text); // the C1 CSI from the User-Agent
    const json = await cli(xavier1, ['tokens', '--json']);
    assert.ok(
      json.stdout
        .toString('utf8')
        .split('\n')
        .some((l) => l && JSON.parse(l).description === `ci ${TITLE}${RLO}`),
    );
  });
});

describe('a recycled GitHub login inherits nothing', () => {
  test('xavier (id 1) renames; a new account (id 2) takes the login: no runs, no audit events, no tokens of the first', async () => {
    assert.ok(runId, 'the first test made a run');
    gh.recycleLogin('xavier', 'xavier-renamed');
    gh.addUser('xavier', ['acme/web'], ['acme'], 2);
    const xavier2 = await signIn('xavier');

    const runs = await cli(xavier2, ['runs', '--json']);
    assert.equal(runs.code, 0, runs.stderr);
    assert.equal(runs.stdout.toString('utf8').trim(), '', "none of the first xavier's runs");
    const mine = await cli(xavier2, ['runs', '--mine', '--json']);
    assert.equal(mine.stdout.toString('utf8').trim(), '');
    const one = await fetch(`${base}/api/runs/${runId}`, { headers: { authorization: `Bearer ${xavier2}` } });
    assert.equal(one.status, 404, await one.text());
    const logs = await cli(xavier2, ['logs', runId]);
    assert.notEqual(logs.code, 0, 'and not its output');

    const audit = await cli(xavier2, ['audit', '--json']);
    const events = audit.stdout
      .toString('utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    assert.ok(events.length > 0 && events.every((e) => e.actor.id === 2), JSON.stringify(events.map((e) => [e.type, e.actor])));
    assert.ok(!events.some((e) => e.runId === runId));

    const tokens = await cli(xavier2, ['tokens', '--json']);
    const ids = tokens.stdout
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(ids.length, 1, 'only its own sign-in');
    assert.ok(ids[0].current);
  });
});
