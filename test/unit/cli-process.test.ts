// The real `oddjob` binary as a child process against a small local server that
// speaks the protocol (HTTP + WebSocket frames): exit codes, byte-exact
// stdout/stderr, resume after a dropped stream, Ctrl-C detach, usage errors.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import type { Run, RunStatus } from '../../protocol/api.js';
import { Channel, encodeFrame, encodeStatus } from '../../protocol/frames.js';

const BIN = new URL('../../bin/oddjob.mjs', import.meta.url).pathname;
const BINARY = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

interface Script {
  id: string;
  /** Output in production order. */
  log: Array<[1 | 2, Buffer]>;
  end?: { status: RunStatus; exitCode?: number; message?: string };
  /** Before serving output, per connection (1-based); return false to stop here. */
  onConnect?: (n: number, ws: WebSocket, from: number) => boolean;
}

const scripts: Record<string, Script> = {
  api: {
    id: 'exit7aaaaaaa',
    log: [
      [1, Buffer.from('to stdout\n')],
      [2, Buffer.from('to stderr\n')],
      [1, BINARY],
    ],
    end: { status: 'failed', exitCode: 7 },
  },
  slowpoke: {
    id: 'deadlineaaaa',
    log: [[1, Buffer.from('tick 1\n')]],
    end: { status: 'deadline', message: 'the run exceeded its 3s limit' },
  },
  flaky: {
    id: 'flakyaaaaaaa',
    log: Array.from({ length: 40 }, (_, i): [1 | 2, Buffer] => (i % 10 === 9 ? [2, Buffer.from(`warning ${i}\n`)] : [1, Buffer.from(`batch ${i}\n`)])),
    end: { status: 'succeeded', exitCode: 0 },
    onConnect: (n, ws) => {
      if (n === 1) {
        // Serve part of the log, then drop the connection the hard way.
        for (const [c, d] of scripts.flaky!.log.slice(0, 15)) ws.send(encodeFrame(c, d));
        setTimeout(() => ws.terminate(), 50);
        return false;
      }
      return true;
    },
  },
  forever: {
    id: 'foreveraaaaa',
    log: [[1, Buffer.from('working\n')]],
  },
  big: {
    id: 'bigaaaaaaaaa',
    log: Array.from({ length: 64 }, (): [1 | 2, Buffer] => [1, Buffer.alloc(64 * 1024, 'x')]),
    end: { status: 'succeeded', exitCode: 0 },
  },
  echo: {
    id: 'echoaaaaaaaa',
    log: [],
    onConnect: (_n, ws) => {
      ws.send(encodeStatus({ kind: 'running', podName: 'echo-oddjob-abcde-xyz' }));
      let input = '';
      ws.on('message', (m: Buffer) => {
        if (m[0] !== Channel.stdin) return;
        if (m.length > 1) {
          input += m.subarray(1).toString();
          return;
        }
        // Empty stdin frame: end of input.
        const out = Buffer.from(
          input
            .split('\n')
            .filter(Boolean)
            .map((l) => `echo: ${l}\n`)
            .join(''),
        );
        ws.send(encodeFrame(Channel.stdout, out));
        ws.send(encodeStatus({ kind: 'end', status: 'failed', exitCode: 3, outputBytes: out.length, outputTruncated: false }));
        ws.close(1000);
      });
      return false;
    },
  },
};

let server: Server;
let url: string;
const connections = new Map<string, number[]>();
let lastCreate: { headers: IncomingHttpHeaders; body: Record<string, unknown> } | undefined;
const configHome = mkdtempSync(join(tmpdir(), 'oddjob-cli-proc-'));

function runFor(s: Script, body: Record<string, unknown>): Run {
  return {
    id: s.id,
    namespace: String(body.namespace),
    deployment: String(body.deployment),
    container: 'app',
    image: 'demo:1',
    command: body.command as string[],
    user: 'alice',
    interactive: Boolean(body.interactive),
    tty: Boolean(body.tty),
    status: 'pending',
    jobName: `${String(body.deployment)}-oddjob-abcde`,
    createdAt: new Date(Date.now() - 120_000).toISOString(),
    outputBytes: 0,
    outputTruncated: false,
  };
}

before(async () => {
  const wss = new WebSocketServer({ noServer: true });
  server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const json = (status: number, v: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(v));
      };
      const path = new URL(req.url!, 'http://x').pathname;
      if (req.method === 'POST' && path === '/api/runs') {
        const body = JSON.parse(raw) as Record<string, unknown>;
        lastCreate = { headers: req.headers, body };
        if (body.deployment === 'closed') {
          return json(403, {
            error: { code: 'forbidden', message: 'deployment default/closed is not opted in to oddjob', hint: 'ask its owners to add oddjob.io/allowed-teams' },
          });
        }
        const s = scripts[String(body.deployment)];
        return s ? json(201, runFor(s, body)) : json(404, { error: { code: 'not_found', message: `deployment ${String(body.deployment)} not found` } });
      }
      if (path === '/api/runs')
        return json(200, {
          items: [{ ...runFor(scripts.api!, { namespace: 'payments', deployment: 'api', command: ['node', '-e', 'x y'] }), status: 'failed', exitCode: 7 }],
        });
      if (path === '/api/audit/export') {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        return res.end('{"seq":1,"type":"run.denied"}\n{"seq":2,"type":"run.requested"}\n');
      }
      if (path === '/api/audit/verify') return json(200, { ok: false, checked: 5, brokenAt: 3, problem: 'hash of event 3 does not match' });
      json(404, { error: { code: 'not_found', message: 'no such route' } });
    });
  });
  server.on('upgrade', (req, socket, head) => {
    const u = new URL(req.url!, 'http://x');
    const id = /^\/api\/runs\/([a-z0-9]+)\/stream$/.exec(u.pathname)?.[1];
    const s = Object.values(scripts).find((x) => x.id === id);
    if (!s) return socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
    wss.handleUpgrade(req, socket, head, (ws) => {
      const from = Number(u.searchParams.get('from'));
      const seen = connections.get(s.id) ?? [];
      seen.push(from);
      connections.set(s.id, seen);
      ws.send(encodeStatus({ kind: 'progress', message: 'waiting for pod: pulling image' }));
      if (s.onConnect && !s.onConnect(seen.length, ws, from)) return;
      // Replay from `from`, as the server's output hub does.
      let pos = 0;
      for (const [c, d] of s.log) {
        const endPos = pos + d.length;
        if (endPos > from) ws.send(encodeFrame(c, d.subarray(Math.max(0, from - pos))));
        pos = endPos;
      }
      if (s.end) {
        ws.send(encodeStatus({ kind: 'end', ...s.end, outputBytes: pos, outputTruncated: false }));
        ws.close(1000);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

interface Result {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function oddjob(
  args: string[],
  env: Record<string, string> = {},
  whileRunning?: (p: ReturnType<typeof spawn>, out: () => string) => void,
  input = '',
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH, HOME: configHome, XDG_CONFIG_HOME: configHome, ODDJOB_SERVER: url, ODDJOB_TOKEN: 'sekrit', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d) => (err += d));
    p.stdin.end(input);
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`oddjob ${args.join(' ')} timed out; stderr:\n${err}`));
    }, 30_000);
    whileRunning?.(p, () => Buffer.concat(out).toString());
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
  });
}

const noStack = (r: Result) => assert.doesNotMatch(r.stderr, /\n\s+at |Error:|node:internal/, 'no stack trace');

describe('oddjob (the binary)', () => {
  test('exit code passthrough; stdout and stderr byte-exact and apart', async () => {
    const r = await oddjob([
      'run',
      'deploy/api',
      '--reason',
      'INC-1',
      '--timeout',
      '1h30m',
      '--',
      'node',
      'scripts/exit.js',
      '7',
      '',
      'a  b',
      '--',
      '-n',
      '$HOME',
    ]);
    assert.equal(r.code, 7, r.stderr);
    assert.deepEqual(r.stdout, Buffer.concat([Buffer.from('to stdout\n'), BINARY]));
    assert.equal(r.stderr, 'oddjob: run exit7aaaaaaa created (job api-oddjob-abcde)\noddjob: waiting for pod: pulling image\nto stderr\n');
    // The argv arrives exactly as typed (no shell, -- and flags after it untouched), with the defaults filled in.
    assert.deepEqual(lastCreate?.body, {
      namespace: 'default',
      deployment: 'api',
      command: ['node', 'scripts/exit.js', '7', '', 'a  b', '--', '-n', '$HOME'],
      reason: 'INC-1',
      interactive: false,
      tty: false,
      timeoutSeconds: 5400,
      noSidecars: false,
    });
    assert.equal(lastCreate?.headers.authorization, 'Bearer sekrit');
    assert.match(String(lastCreate?.headers['x-oddjob-client']), /^cli\/\d+\.\d+\.\d+/);
  });

  test('namespace from ODDJOB_NAMESPACE, flags -n/-c/--no-sidecars', async () => {
    await oddjob(['run', 'deploy/api', '--', 'true'], { ODDJOB_NAMESPACE: 'payments' });
    assert.equal(lastCreate?.body.namespace, 'payments');
    await oddjob(['run', '-n', 'ops', '-c', 'worker', '--no-sidecars', 'deployment/api', '--', 'true'], { ODDJOB_NAMESPACE: 'payments' });
    assert.deepEqual([lastCreate?.body.namespace, lastCreate?.body.container, lastCreate?.body.noSidecars], ['ops', 'worker', true]);
  });

  test('deadline → 124, with the output so far and the reason', async () => {
    const r = await oddjob(['run', 'deploy/slowpoke', '--timeout', '3s', '--', 'node', 'scripts/sleep.js', '60']);
    assert.equal(r.code, 124, r.stderr);
    assert.equal(r.stdout.toString(), 'tick 1\n');
    assert.match(r.stderr, /oddjob: run deadlineaaaa hit its time limit: the run exceeded its 3s limit\n$/);
  });

  test('403 on create → 125, the message and hint on stderr, nothing on stdout', async () => {
    const r = await oddjob(['run', 'deploy/closed', '--', 'node', '-e', '1']);
    assert.equal(r.code, 125);
    assert.equal(r.stderr, 'oddjob: deployment default/closed is not opted in to oddjob\n  hint: ask its owners to add oddjob.io/allowed-teams\n');
    assert.equal(r.stdout.length, 0);
  });

  test('a dropped WebSocket resumes from the bytes received: no gap, no duplicate', async () => {
    const r = await oddjob(['run', 'deploy/flaky', '--', 'node', 'scripts/backfill.js']);
    assert.equal(r.code, 0, r.stderr);
    const log = scripts.flaky!.log;
    const expected = (c: 1 | 2) => Buffer.concat(log.filter(([ch]) => ch === c).map(([, d]) => d)).toString();
    assert.equal(r.stdout.toString(), expected(1));
    const firstPart = log.slice(0, 15).reduce((n, [, d]) => n + d.length, 0);
    assert.deepEqual(connections.get('flakyaaaaaaa'), [0, firstPart]);
    assert.equal(r.stderr, `oddjob: run flakyaaaaaaa created (job flaky-oddjob-abcde)\noddjob: waiting for pod: pulling image\n${expected(2)}`);
  });

  test('--detach prints only the id on stdout and exits 0', async () => {
    const r = await oddjob(['run', '--detach', 'deploy/api', '--', 'node', 'x.js']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'exit7aaaaaaa\n');
  });

  test('Ctrl-C detaches: exit 130, the run keeps going, and how to follow or cancel it', async () => {
    const r = await oddjob(['run', 'deploy/forever', '--', 'sleep', '1000'], {}, (p, out) => {
      const t = setInterval(() => {
        if (out().includes('working')) {
          clearInterval(t);
          p.kill('SIGINT');
        }
      }, 20);
    });
    assert.equal(r.code, 130, r.stderr);
    assert.match(
      r.stderr,
      /oddjob: detached; run foreveraaaaa keeps running\.\n {2}follow: oddjob logs foreveraaaaa -f\n {2}cancel: oddjob cancel foreveraaaaa\n$/,
    );
  });

  test('--help works for the program and for run', async () => {
    const r = await oddjob(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout.toString(), /^Usage: oddjob/);
    assert.match(r.stdout.toString(), /Examples:/);
    const run = await oddjob(['run', '--help']);
    assert.equal(run.code, 0);
    assert.match(run.stdout.toString(), /124 +the run hit its time limit/);
  });

  test('unknown flag → exit 2 and one clear line, no stack trace', async () => {
    const r = await oddjob(['runs', '--bogus']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, "oddjob: unknown option '--bogus'\n  hint: see: oddjob runs --help\n");
    noStack(r);
  });

  test('run: usage mistakes are 125 (oddjob could not run it) and name the fix', async () => {
    const bad = await oddjob(['run', '--bogus', 'deploy/api', '--', 'x']);
    assert.equal(bad.code, 125);
    noStack(bad);
    const noDash = await oddjob(['run', 'deploy/api', 'node', '-e', '1']);
    assert.equal(noDash.code, 125);
    assert.match(noDash.stderr, /the command to run goes after `--`/);
    const target = await oddjob(['run', 'api', '--', 'ls']);
    assert.equal(target.code, 125);
    assert.match(target.stderr, /deploy\/NAME.*\n {2}hint: oddjob run deploy\/api -- CMD/);
    const schema = await oddjob(['run', '-n', 'Bad_NS', 'deploy/api', '--', 'ls']);
    assert.equal(schema.code, 125);
    assert.match(schema.stderr, /^oddjob: namespace: must be lowercase/);
  });

  test('-i: piped stdin reaches the command once it runs, and its end is passed on', async () => {
    const r = await oddjob(['run', '-i', 'deploy/echo', '--', 'node', 'scripts/echo-stdin.js'], {}, undefined, 'hello there\nexit\n');
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout.toString(), 'echo: hello there\necho: exit\n');
    assert.equal(lastCreate?.body.interactive, true);
  });

  test('an unreachable server is one actionable line', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const r = await oddjob(['run', 'deploy/api', '--', 'ls'], { ODDJOB_SERVER: `http://127.0.0.1:${port}` });
    assert.equal(r.code, 125);
    assert.equal(
      r.stderr,
      `oddjob: cannot reach the oddjob server at http://127.0.0.1:${port}: ECONNREFUSED — is it running? (set --server or ODDJOB_SERVER)\n`,
    );
  });

  test('runs table, audit --json passthrough, audit verify exit 1, logs replay', async () => {
    const runs = await oddjob(['runs', '--mine']);
    assert.equal(runs.code, 0, runs.stderr);
    assert.match(
      runs.stdout.toString(),
      /^ID +STATUS +EXIT +DEPLOYMENT +USER +AGE +COMMAND\nexit7aaaaaaa +failed +7 +payments\/api +alice +2m +node -e 'x y'\n$/,
    );
    const audit = await oddjob(['audit', '--json', '--since', '24h']);
    assert.equal(audit.code, 0, audit.stderr);
    assert.equal(audit.stdout.toString(), '{"seq":1,"type":"run.denied"}\n{"seq":2,"type":"run.requested"}\n');
    const verify = await oddjob(['audit', 'verify']);
    assert.equal(verify.code, 1);
    assert.equal(verify.stdout.toString(), 'audit chain BROKEN at seq 3: hash of event 3 does not match (5 events checked)\n');
    const logs = await oddjob(['logs', 'exit7aaaaaaa']);
    assert.equal(logs.code, 0, 'logs exits 0 whatever the run did');
    assert.deepEqual(logs.stdout, Buffer.concat([Buffer.from('to stdout\n'), BINARY]));
  });

  test('a reader that goes away (| head) ends oddjob cleanly, without a stack trace', async () => {
    const r = await oddjob(['logs', 'bigaaaaaaaaa'], {}, (p) => p.stdout!.once('data', () => p.stdout!.destroy()));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\noddjob: cannot write the output \(EPIPE\)\n$/);
    noStack(r);
  });

  test('login against a server without GitHub sign-in fails with its reason, no stack trace', async () => {
    const r = await oddjob(['login']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^oddjob: no such route\n/);
    noStack(r);
  });
});
