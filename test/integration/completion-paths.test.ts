// Completion down to script paths, end to end: `oddjob run deploy/api -- node
// scripts/<TAB>` in real bash and zsh (scripted, and typed with TAB under tmux) and fish,
// against the real server and a listing Job on the real cluster reading the real
// demo image. Also: who may ask (only people who may run there), a Deployment
// without oddjob.io/completion-paths, words with path tricks, and the speed of an
// answer from the cache.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestNamespace, eventually, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { BIN, runCli, startServerProcess, type ServerProcess } from '../support/oddjob.js';

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let server: ServerProcess;
let dir: string;
let env: NodeJS.ProcessEnv;

const SCRIPTS = ['scripts/backfill.js', 'scripts/echo-stdin.js', 'scripts/exit.js', 'scripts/flood.js', 'scripts/hello.js', 'scripts/sleep.js'];

before(async () => {
  for (const shell of ['bash', 'zsh', 'fish', 'tmux']) {
    try {
      execFileSync('sh', ['-c', `command -v ${shell}`]);
    } catch {
      throw new Error(`${shell} is not installed; this test needs it (apt-get install -y zsh fish tmux)`);
    }
  }
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'complete-paths');
  const create = (name: string, annotations: Record<string, string>) =>
    cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: optedInDeployment(name, { 'oddjob.io/allowed-users': 'alice', ...annotations }) });
  await create('api', { 'oddjob.io/completion-paths': '/app/scripts' });
  await create('plain', {});
  await create('bobs', { 'oddjob.io/allowed-users': 'bob', 'oddjob.io/completion-paths': '/app/scripts' });
  dir = mkdtempSync(join(tmpdir(), 'oddjob-paths-'));
  server = await startServerProcess([
    ...['--auth', 'dev', '--dev-user', 'alice', '--namespaces', ns.name],
    ...['--kubeconfig', cluster.kubeconfigPath, '--db', join(dir, 'audit.db')],
  ]);
  // `oddjob` on PATH, as an installed CLI would be; this server, nothing else from the environment.
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'oddjob'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
  chmodSync(join(bin, 'oddjob'), 0o755);
  env = {
    ...process.env,
    PATH: `${bin}:${process.env.PATH}`,
    XDG_CONFIG_HOME: join(dir, 'home'),
    ODDJOB_SERVER: server.url,
    ODDJOB_TOKEN: '',
    ODDJOB_NAMESPACE: '',
    ODDJOB_CONTEXT: '',
  };
  for (const shell of ['bash', 'zsh', 'fish']) {
    const r = await runCli(['completion', shell], { server: server.url, env });
    writeFileSync(join(dir, `oddjob.${shell}`), r.stdout);
  }
});

after(async () => {
  await server?.kill();
  await ns?.dispose();
});

const api = async (path: string) => {
  const res = await fetch(`${server.url}${path}`);
  return { status: res.status, body: (await res.json()) as { state?: string; paths?: string[]; message?: string; error?: { message: string } } };
};
const pathsOf = (deployment: string, word: string) => api(`/api/namespaces/${ns.name}/deployments/${deployment}/paths?word=${encodeURIComponent(word)}`);

const bash = (words: string[]) =>
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

// zsh: the completion function as a widget would call it, with compadd recording what it is offered.
const zsh = (words: string[]) =>
  execFileSync(
    'zsh',
    [
      '-f',
      '-c',
      `compadd() { print -r -- "\${@[-1]}" }; source "$1"; words=(${words.map((w) => `'${w}'`).join(' ')}); CURRENT=${words.length}; _oddjob`,
      'zsh',
      join(dir, 'oddjob.zsh'),
    ],
    { env, encoding: 'utf8' },
  ).trimEnd();

// fish: its own completion machinery (complete -C) on the command line as typed.
const fish = (line: string) =>
  execFileSync('fish', ['--no-config', '-c', `source $argv[1]; complete -C '${line}'`, join(dir, 'oddjob.fish')], { env, encoding: 'utf8' })
    .trimEnd()
    .split('\n')
    .map((l) => l.split('\t')[0])
    .join('\n');

describe('completion of paths inside the Deployment’s image', () => {
  test('the first ask lists the image with a short Job; then bash, zsh and fish complete scripts/ from the cache', async () => {
    const first = await pathsOf('api', 'scripts/');
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.ok(first.body.state === 'indexing' || first.body.state === 'ready', JSON.stringify(first.body));
    const ready = await eventually(
      'the listing',
      async () => {
        const r = await pathsOf('api', 'scripts/');
        return r.body.state === 'ready' ? r.body : undefined;
      },
      60_000,
    );
    assert.deepEqual(ready.paths, SCRIPTS);
    // The listing Job is cleaned up once read.
    await eventually('the listing Job deleted', async () => {
      const jobs = await cluster.batch.listNamespacedJob({ namespace: ns.name, labelSelector: 'oddjob.io/purpose=completion-index' });
      return jobs.items.length === 0;
    });

    const timings: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await pathsOf('api', 'scripts/h');
      timings.push(performance.now() - t0);
    }
    console.log(`path completion answered from the cache in ${timings.map((t) => t.toFixed(1)).join(', ')} ms`);
    assert.ok(Math.min(...timings) < 200, `answers from the cache took ${timings.join(', ')} ms`);

    const line = ['oddjob', 'run', '-n', ns.name, 'deploy/api', '--', 'node'];
    assert.equal(bash([...line, 'scripts/h']), 'scripts/hello.js');
    assert.equal(bash([...line, 'scripts/']), SCRIPTS.join('\n'));
    assert.equal(bash([...line, 'scr']), 'scripts/');
    assert.equal(bash([...line, '/app/scripts/fl']), '/app/scripts/flood.js');
    // Without -n: the server's only namespace.
    assert.equal(bash(['oddjob', 'run', 'deploy/api', '--', 'node', 'scripts/e']), 'scripts/echo-stdin.js\nscripts/exit.js');
    assert.equal(bash([...line.slice(0, 4), 'deploy/plain', '--', 'node', 'scripts/']), '');

    assert.equal(zsh([...line, 'scripts/h']), 'scripts/hello.js');
    assert.equal(zsh([...line, 'scr']), 'scripts/');
    assert.equal(fish(`oddjob run -n ${ns.name} deploy/api -- node scripts/h`), 'scripts/hello.js');
    assert.equal(fish(`oddjob run -n ${ns.name} deploy/api -- node scripts/`), SCRIPTS.join('\n'));
  });

  test('typed with TAB in an interactive bash', async () => {
    const sock = `oddjob-paths-${process.pid}`;
    const tmux = (...args: string[]) => execFileSync('tmux', ['-L', sock, ...args], { env, encoding: 'utf8' });
    tmux('new-session', '-d', '-x', '200', '-y', '20', 'bash', '--norc', '--noprofile', '-i');
    try {
      tmux('send-keys', `PS1='$ '; source ${join(dir, 'oddjob.bash')}`, 'Enter');
      tmux('send-keys', `oddjob run -n ${ns.name} deploy/api -- node scr`, 'Tab');
      await eventually('scripts/ completed', async () => /^\$ oddjob run .* -- node scripts\/$/m.test(tmux('capture-pane', '-p')), 20_000);
      tmux('send-keys', 'he', 'Tab');
      const screen = await eventually(
        'scripts/hello.js completed',
        async () => {
          const s = tmux('capture-pane', '-p');
          return /^\$ oddjob run .* -- node scripts\/hello\.js$/m.test(s) ? s : undefined;
        },
        20_000,
      );
      assert.match(screen, /-- node scripts\/hello\.js$/m);
    } finally {
      tmux('kill-server');
    }
  });

  test('typed with TAB in an interactive zsh: a deployment name, then a script path', async () => {
    const sock = `oddjob-paths-zsh-${process.pid}`;
    const tmux = (...args: string[]) => execFileSync('tmux', ['-L', sock, ...args], { env, encoding: 'utf8' });
    // -f: no rc files; the completion system is loaded as a user's .zshrc would.
    tmux('new-session', '-d', '-x', '200', '-y', '20', 'zsh', '-f', '-i');
    const screenShows = (what: string, re: RegExp) =>
      eventually(
        what,
        async () => {
          const s = tmux('capture-pane', '-p');
          return re.test(s) ? s : undefined;
        },
        20_000,
      );
    try {
      tmux('send-keys', `PS1='$ '; autoload -Uz compinit && compinit -u; source ${join(dir, 'oddjob.zsh')}`, 'Enter');
      tmux('send-keys', `oddjob run -n ${ns.name} deploy/a`, 'Tab');
      await screenShows('deploy/api completed', /^\$ oddjob run -n \S+ deploy\/api ?$/m);
      tmux('send-keys', ' -- node scr', 'Tab');
      await screenShows('scripts/ completed', /^\$ oddjob run .* -- node scripts\/$/m);
      tmux('send-keys', 'he', 'Tab');
      const screen = await screenShows('scripts/hello.js completed', /^\$ oddjob run .* -- node scripts\/hello\.js ?$/m);
      assert.match(screen, /deploy\/api +-- node scripts\/hello\.js ?$/m);
    } finally {
      tmux('kill-server');
    }
  });

  test('only people who may run there; no roots, no listing; path tricks are refused', async () => {
    const bobs = await pathsOf('bobs', 'scripts/');
    assert.equal(bobs.status, 403, JSON.stringify(bobs.body));
    const jobs = await cluster.batch.listNamespacedJob({ namespace: ns.name, labelSelector: 'oddjob.io/deployment=bobs' });
    assert.equal(jobs.items.length, 0, 'a refused ask creates nothing');

    const plain = await pathsOf('plain', 'scripts/');
    assert.equal(plain.status, 200);
    assert.deepEqual(plain.body, { state: 'unavailable', paths: [], message: 'the deployment declares no oddjob.io/completion-paths' });

    for (const word of ['../etc/', 'scripts/../../etc/', 'a\x1b[2J']) {
      const r = await pathsOf('api', word);
      assert.equal(r.status, 400, `${JSON.stringify(word)}: ${JSON.stringify(r.body)}`);
    }
    // Outside the declared roots: nothing, although the files exist in the image.
    assert.deepEqual((await pathsOf('api', '/etc/')).body.paths, []);
    assert.deepEqual((await pathsOf('api', 'server')).body.paths, []);
    const missing = await pathsOf('nope', '');
    assert.equal(missing.status, 404);
  });
});
