// The CLI's kubectl/gh habits, end to end: two real server processes (GitHub
// sign-in against test/support/fake-github.ts), the real CLI binary, the real
// cluster. Proves every kubectl spelling of a target, -o json|yaml|wide|name and
// --no-headers on every listing, two contexts signed in side by side, the
// namespace picked or explained, and bash completion of a deployment name in a
// real bash (scripted and typed with TAB under tmux).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { createTestNamespace, eventually, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { FakeGitHub } from '../support/fake-github.js';
import { startGitHubServer } from '../support/github-signin.js';
import { BIN, runCli, type ServerProcess } from '../support/oddjob.js';
import { freePort } from '../support/net.js';

let cluster: TestCluster;
let ns1: { name: string; dispose: () => Promise<void> };
let ns2: { name: string; dispose: () => Promise<void> };
let gh: FakeGitHub;
let dir: string;
let home: string;
/** Serves ns1 only. */
let a: ServerProcess;
/** Serves ns1 and ns2. */
let b: ServerProcess;

async function startServer(namespaces: string[], db: string): Promise<ServerProcess> {
  return startGitHubServer({ port: await freePort(), gh, dir, namespaces, kubeconfig: cluster.kubeconfigPath, db, extra: ['--auth-rate-limit', '1000'] });
}

before(async () => {
  cluster = await requireCluster();
  ns1 = await createTestNamespace(cluster, 'habits-a');
  ns2 = await createTestNamespace(cluster, 'habits-b');
  for (const ns of [ns1, ns2]) {
    await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: optedInDeployment('api', { 'oddjob.io/allowed-users': 'alice' }) });
  }
  gh = await new FakeGitHub().start();
  gh.addUser('alice', [], ['acme']);
  dir = mkdtempSync(join(tmpdir(), 'oddjob-habits-'));
  home = join(dir, 'home');
  a = await startServer([ns1.name], 'a.db');
  b = await startServer([ns1.name, ns2.name], 'b.db');
});

after(async () => {
  await a?.kill();
  await b?.kill();
  await gh?.stop();
  await ns1?.dispose();
  await ns2?.dispose();
});

/** The CLI as a person runs it: nothing from this test process's environment decides for it. */
const cleanEnv = (extra: NodeJS.ProcessEnv = {}) => ({
  XDG_CONFIG_HOME: home,
  ODDJOB_SERVER: '',
  ODDJOB_TOKEN: '',
  ODDJOB_NAMESPACE: '',
  ODDJOB_CONTEXT: '',
  ...extra,
});
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(args, { server: '', env: cleanEnv(env) });

/** `oddjob login` through the device flow, alice typing the code at (fake) GitHub. */
async function login(args: string[]): Promise<string> {
  const p = spawn(process.execPath, [BIN, 'login', ...args], { env: { ...process.env, ...cleanEnv() }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  const code = await eventually('the one-time code', async () => /one-time code: (\S+)/.exec(err)?.[1], 30_000);
  gh.approveDevice(code, 'alice');
  const exit = await new Promise<number | null>((r) => p.on('exit', r));
  assert.equal(exit, 0, err);
  return err;
}

const hostOf = (s: ServerProcess) => new URL(s.url).host;

describe('oddjob CLI habits, end to end', () => {
  test('two servers signed in side by side as contexts; config switches; --context picks; an old config file still works', async () => {
    await login(['--server', a.url]);
    const outB = await login(['--server', b.url, '--context', 'b']);
    assert.match(outB, /as context b \(now the current context\)/);

    const list = await cli(['config', 'get-contexts', '-o', 'json']);
    assert.equal(list.code, 0, list.stderr);
    const doc = JSON.parse(list.stdout.toString());
    assert.equal(doc.kind, 'ContextList');
    assert.deepEqual(
      doc.items.map((c: { name: string; server: string; current: boolean; signedIn: boolean }) => [c.name, c.server, c.current, c.signedIn]),
      [
        [hostOf(a), a.url, false, true],
        ['b', b.url, true, true],
      ].sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    );
    assert.doesNotMatch(list.stdout.toString(), /odjt_/, 'get-contexts never prints a token');

    const whoB = await cli(['whoami']);
    assert.equal(whoB.code, 0, whoB.stderr);
    assert.match(whoB.stdout.toString(), new RegExp(`login:\\s+alice[\\s\\S]*server: ${b.url}`));
    const whoA = await cli(['--context', hostOf(a), 'whoami']);
    assert.equal(whoA.code, 0, whoA.stderr);
    assert.match(whoA.stdout.toString(), new RegExp(`server: ${a.url}`));
    const envA = await cli(['whoami'], { ODDJOB_CONTEXT: hostOf(a) });
    assert.match(envA.stdout.toString(), new RegExp(`server: ${a.url}`));

    const use = await cli(['config', 'use-context', hostOf(a)]);
    assert.equal(use.code, 0, use.stderr);
    assert.equal((await cli(['config', 'current-context'])).stdout.toString(), `${hostOf(a)}\n`);
    const table = await cli(['config', 'get-contexts']);
    assert.match(table.stdout.toString(), new RegExp(`^\\*\\s+${hostOf(a).replace(/\./g, '\\.')}\\s+${a.url}`, 'm'));
    const unknown = await cli(['--context', 'nope', 'whoami']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no context named "nope"[\s\S]*hint: known contexts: .*b/);

    // A config file as `oddjob login` wrote it before contexts: still signed in,
    // and rewritten as contexts on the next change.
    const saved = JSON.parse(readFileSync(join(home, 'oddjob', 'config.json'), 'utf8'));
    const oldHome = join(dir, 'old-home');
    mkdirSync(join(oldHome, 'oddjob'), { recursive: true });
    writeFileSync(join(oldHome, 'oddjob', 'config.json'), JSON.stringify({ server: a.url, token: saved.contexts[hostOf(a)].token }), { mode: 0o600 });
    const oldWho = await cli(['whoami'], { XDG_CONFIG_HOME: oldHome });
    assert.equal(oldWho.code, 0, oldWho.stderr);
    assert.match(oldWho.stdout.toString(), /login:\s+alice[\s\S]*via:\s+token/);
    assert.equal((await cli(['config', 'set-namespace', ns1.name], { XDG_CONFIG_HOME: oldHome })).code, 0);
    const migrated = JSON.parse(readFileSync(join(oldHome, 'oddjob', 'config.json'), 'utf8'));
    assert.deepEqual(migrated, {
      currentContext: hostOf(a),
      contexts: { [hostOf(a)]: { server: a.url, token: saved.contexts[hostOf(a)].token, namespace: ns1.name } },
    });
  });

  test("every kubectl spelling of the target runs; the namespace is the server's only one; other kinds are refused with the forms", async () => {
    // Current context: server a, which serves ns1 only; no -n anywhere.
    const full = await cli(['run', 'deployment.apps/api', '--', 'node', '-e', 'console.log("ran in", process.env.HOSTNAME ? "pod" : "?")']);
    assert.equal(full.code, 0, full.stderr);
    assert.equal(full.stdout.toString(), 'ran in pod\n');
    const forms = ['deploy/api', 'deployment/api', 'deployments/api', 'deployments.apps/api', 'deployment.v1.apps/api', 'deployments.v1.apps/api'];
    const ids: string[] = [];
    for (const form of forms) {
      const r = await cli(['run', '--detach', form, '--', 'true']);
      assert.equal(r.code, 0, `${form}: ${r.stderr}`);
      ids.push(r.stdout.toString().trim());
    }
    const runs = JSON.parse((await cli(['runs', '-o', 'json', '--limit', '20'])).stdout.toString());
    for (const id of ids) {
      const run = runs.items.find((r: { id: string }) => r.id === id);
      assert.ok(run, `run ${id} listed`);
      assert.equal(run.namespace, ns1.name);
      assert.equal(run.deployment, 'api');
    }
    const refused = await cli(['run', 'statefulset.apps/api', '--', 'true']);
    assert.equal(refused.code, 125);
    assert.match(refused.stderr, /runs commands in Deployments or Tasks; "statefulset\.apps\/api" is a statefulset\.apps/);
    assert.match(
      refused.stderr,
      /accepted forms: deploy\/NAME, deployment\/NAME, deployments\/NAME, deployment\.apps\/NAME, deployments\.apps\/NAME, deployment\.v1\.apps\/NAME, deployments\.v1\.apps\/NAME/,
    );
  });

  test('several namespaces: run asks which, a 404 lists the served ones (to signed-in callers only), set-namespace remembers', async () => {
    const several = await cli(['--context', 'b', 'run', 'deploy/api', '--', 'true']);
    assert.equal(several.code, 125);
    assert.match(several.stderr, new RegExp(`serves several namespaces \\(${ns1.name}, ${ns2.name}\\)[\\s\\S]*oddjob config set-namespace`));

    const unserved = await cli(['--context', 'b', 'run', '-n', 'kube-system', 'deploy/api', '--', 'true']);
    assert.equal(unserved.code, 125);
    assert.match(unserved.stderr, /namespace kube-system is not served by this oddjob server/);
    assert.match(unserved.stderr, new RegExp(`hint: namespaces you can use: ${ns1.name}, ${ns2.name}`));
    const deps = await cli(['--context', 'b', 'deployments', '-n', 'kube-system']);
    assert.equal(deps.code, 1);
    assert.match(deps.stderr, new RegExp(`namespaces you can use: ${ns1.name}, ${ns2.name}`));

    // Anonymous callers learn nothing.
    for (const path of ['/api/namespaces', '/api/deployments?namespace=kube-system']) {
      const anon = await fetch(`${b.url}${path}`);
      assert.equal(anon.status, 401);
      const body = await anon.text();
      assert.ok(!body.includes(ns1.name) && !body.includes(ns2.name), body);
    }

    assert.equal((await cli(['--context', 'b', 'config', 'set-namespace', ns2.name])).code, 0);
    const ran = await cli(['--context', 'b', 'run', 'deploy/api', '--', 'node', '-e', 'console.log("ok")']);
    assert.equal(ran.code, 0, ran.stderr);
    const runs = JSON.parse((await cli(['--context', 'b', 'runs', '-o', 'json', '--limit', '1'])).stdout.toString());
    assert.equal(runs.items[0].namespace, ns2.name);
  });

  test('-o json|yaml|wide|name and --no-headers on runs, audit, deployments, tokens', async () => {
    const listings: Array<[string[], string, RegExp, string, string]> = [
      // args, kind, what -o name prints, first header, a wide-only header
      [['runs'], 'RunList', /^[a-z0-9]{12}$/, 'ID', 'POD'],
      [['audit'], 'AuditEventList', /^\d+$/, 'SEQ', 'CLIENT'],
      [['deployments'], 'DeploymentList', /^deployment\.apps\/api$/, 'NAMESPACE', 'IMAGES'],
      [['tokens'], 'TokenList', /^[0-9a-f]{12}$/, 'ID', 'EXPIRES AT'],
    ];
    for (const [args, kind, name, first, wideOnly] of listings) {
      const what = args.join(' ');
      const json = await cli([...args, '-o', 'json']);
      assert.equal(json.code, 0, `${what}: ${json.stderr}`);
      const doc = JSON.parse(json.stdout.toString());
      assert.equal(doc.kind, kind);
      assert.ok(doc.items.length > 0, `${what} -o json lists something`);

      const yaml = await cli([...args, '-o', 'yaml']);
      assert.equal(yaml.code, 0, yaml.stderr);
      assert.deepEqual(parseYaml(yaml.stdout.toString()), doc, `${what}: -o yaml is the same document`);

      const names = (await cli([...args, '-o', 'name'])).stdout.toString().trimEnd().split('\n');
      assert.equal(names.length, doc.items.length);
      for (const n of names) assert.match(n, name, what);

      const table = (await cli(args)).stdout.toString().split('\n');
      assert.ok(table[0]!.startsWith(first), `${what}: ${table[0]}`);
      assert.ok(!table[0]!.includes(wideOnly), `${what}: no wide column by default`);
      const wide = (await cli([...args, '-o', 'wide'])).stdout.toString().split('\n');
      assert.ok(wide[0]!.startsWith(first) && wide[0]!.includes(wideOnly), `${what} -o wide: ${wide[0]}`);
      // Rows compared by their first column: AGE moves on between two calls.
      const firstColumn = (lines: string[]) => lines.filter(Boolean).map((l) => l.split(/\s+/)[0]);
      const bare = (await cli([...args, '--no-headers'])).stdout.toString().split('\n');
      assert.deepEqual(firstColumn(bare), firstColumn(table.slice(1)), `${what} --no-headers is the table without its header line`);
      const bareWide = (await cli([...args, '-o', 'wide', '--no-headers'])).stdout.toString().split('\n');
      assert.deepEqual(firstColumn(bareWide), firstColumn(wide.slice(1)));
      assert.ok(bareWide.every((l) => !l.includes(wideOnly)));

      const both = await cli([...args, '--json', '-o', 'json']);
      assert.equal(both.code, 2);
      assert.match(both.stderr, /--json and -o cannot be combined/);
      const bad = await cli([...args, '-o', 'xml']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /json, yaml, wide, name/);
    }
  });

  test('bash completion completes a deployment name from the real server (scripted, and typed with TAB in an interactive bash)', async () => {
    // `oddjob` on PATH, as an installed CLI would be.
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'oddjob'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
    chmodSync(join(bin, 'oddjob'), 0o755);
    const env = { ...process.env, ...cleanEnv(), PATH: `${bin}:${process.env.PATH}` };
    const script = (await cli(['completion', 'bash'])).stdout.toString();
    writeFileSync(join(dir, 'oddjob.bash'), script);

    const complete = (words: string[]) =>
      execFileSync(
        'bash',
        [
          '--norc',
          '--noprofile',
          '-c',
          `source "$1"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _oddjob; printf '%s\\n' "\${COMPREPLY[@]}"`,
          'bash',
          join(dir, 'oddjob.bash'),
        ],
        { env, encoding: 'utf8' },
      ).trimEnd();
    assert.equal(complete(['oddjob', 'run', 'deploy/a']), 'deploy/api');
    assert.equal(complete(['oddjob', 'run', 'deployment.apps/']), 'deployment.apps/api');
    assert.equal(complete(['oddjob', '--context', 'b', 'run', '-n', ns2.name, 'deploy/api', '-c', '']), 'app');
    assert.deepEqual(complete(['oddjob', '--context', 'b', 'run', '-n', '']).split('\n'), [ns1.name, ns2.name]);
    assert.equal(complete(['oddjob', 'dep']), 'deployments');
    const ids = complete(['oddjob', 'logs', '']).split('\n');
    assert.ok(ids.length >= 7 && ids.every((id) => /^[a-z0-9]{12}$/.test(id)), ids.join(','));
    // A server that is down: no candidates, no noise, exit 0.
    assert.equal(complete(['oddjob', '--server', 'http://127.0.0.1:1', 'run', 'deploy/']), '');

    // A person at an interactive bash pressing TAB.
    const sock = `oddjob-habits-${process.pid}`;
    const tmux = (...args: string[]) => execFileSync('tmux', ['-L', sock, ...args], { env, encoding: 'utf8' });
    tmux('new-session', '-d', '-x', '200', '-y', '20', 'bash', '--norc', '--noprofile', '-i');
    try {
      tmux('send-keys', `PS1='$ '; source ${join(dir, 'oddjob.bash')}`, 'Enter');
      tmux('send-keys', 'oddjob run deploy/a', 'Tab');
      const screen = await eventually(
        'the completed deployment name on the screen',
        async () => {
          const s = tmux('capture-pane', '-p');
          // capture-pane trims the space the completion added after the name.
          return /^\$ oddjob run deploy\/api$/m.test(s) ? s : undefined;
        },
        20_000,
      );
      assert.match(screen, /^\$ oddjob run deploy\/api$/m);
    } finally {
      tmux('kill-server');
    }
  });
});
