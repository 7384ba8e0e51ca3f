// The stream protocol *after* the handshake, attacked (issue 21): against the real
// server process (--auth github through the fake GitHub, so there are two people),
// real runs on the real cluster, and real sockets. One oversize frame used to end the
// whole server; here thousands of seeded frames of every kind of wrongness go over
// dozens of sockets while a well-behaved viewer follows another person's run. The
// server must stay up, close each offending socket with the code that says why, keep
// its memory bounded, and deliver the other run's output byte-exact.
//
// ODDJOB_FUZZ_SECONDS (default 40) and ODDJOB_FUZZ_SEED set the length and the seed;
// `npm run soak` runs it for longer.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { Channel, encodeFrame, encodeResize } from '../../protocol/frames.js';
import { createTestNamespace, eventually, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { seededRandom } from '../support/faults.js';
import { freePort } from '../support/net.js';
import { FakeGitHub } from '../support/fake-github.js';
import { deviceToken, startGitHubServer } from '../support/github-signin.js';
import { tailLines, type ServerProcess } from '../support/oddjob.js';

const FUZZ_SECONDS = Number(process.env.ODDJOB_FUZZ_SECONDS ?? 40);
const SEED = Number(process.env.ODDJOB_FUZZ_SEED ?? 21);
const WORKERS = 8;
/** The chart's memory limit for the server (charts/oddjob/values.yaml resources.limits). */
const MEMORY_LIMIT_BYTES = 512 << 20;

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let gh: FakeGitHub;
let server: ServerProcess;
let base: string;
const tokens: Record<'alice' | 'bob', string> = { alice: '', bob: '' };

before(async () => {
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'stream-fuzz');
  await cluster.apps.createNamespacedDeployment({
    namespace: ns.name,
    body: optedInDeployment('api', { 'oddjob.io/allowed-users': 'alice,bob', 'oddjob.io/max-duration': '30m' }),
  });
  gh = await new FakeGitHub().start();
  gh.addUser('alice', [], ['acme']);
  gh.addUser('bob', [], ['acme']);
  const dir = mkdtempSync(join(tmpdir(), 'oddjob-fuzz-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = await startGitHubServer({
    port,
    gh,
    dir,
    namespaces: [ns.name],
    kubeconfig: cluster.kubeconfigPath,
    extra: ['--auth-rate-limit', '1000', '--start-timeout', '240s'],
  });
  tokens.alice = await deviceToken(base, gh, 'alice');
  tokens.bob = await deviceToken(base, gh, 'bob');
});

after(async () => {
  await server?.kill();
  await gh?.stop();
  await ns?.dispose();
});

// ---- helpers ---------------------------------------------------------------

async function startRun(who: 'alice' | 'bob', command: string[], interactive = false): Promise<string> {
  const res = await fetch(`${base}/api/runs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokens[who]}`, 'content-type': 'application/json' },
    body: JSON.stringify({ namespace: ns.name, deployment: 'api', command, interactive, reason: 'fuzz' }),
  });
  const body = await res.text();
  assert.equal(res.status, 201, body);
  const id = (JSON.parse(body) as { id: string }).id;
  await eventually(
    `run ${id} running`,
    async () => {
      const r = await fetch(`${base}/api/runs/${id}`, { headers: { authorization: `Bearer ${tokens[who]}` } });
      const run = (await r.json()) as { status: string };
      assert.ok(['pending', 'starting', 'running'].includes(run.status), `run ${id} is ${run.status}`);
      return run.status === 'running';
    },
    240_000,
  );
  return id;
}

function streamUrl(id: string, from = 0) {
  return `${base.replace('http', 'ws')}/api/runs/${id}/stream?from=${from}&follow=1`;
}

interface Opened {
  ws: WebSocket;
  closed: Promise<{ code: number; reason: string }>;
  /** Output bytes (channels 1 and 2) received so far, from the first frame on. */
  output: Buffer[];
}

function open(id: string, who: 'alice' | 'bob'): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(streamUrl(id), { headers: { authorization: `Bearer ${tokens[who]}` } });
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    // Listening from the start: frames can arrive in the same read as the handshake answer.
    const output: Buffer[] = [];
    ws.on('message', (d: Buffer) => (d[0] === Channel.stdout || d[0] === Channel.stderr) && output.push(d.subarray(1)));
    ws.on('error', () => undefined); // the close event carries what matters
    ws.on('open', () => resolve({ ws, closed, output }));
    ws.on('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
}

async function expectClose(o: Opened, code: number, what: string) {
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`${what}: the server did not close the socket in 10 s`)), 10_000).unref(),
  );
  const got = await Promise.race([o.closed, timeout]);
  assert.equal(got.code, code, `${what}: close code ${got.code} (${got.reason}), expected ${code}`);
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

const lineScript = (prefix: string, n: number, ms: number) => [
  'node',
  '-e',
  `let i=0;const t=setInterval(()=>{console.log('${prefix} '+ ++i);if(i>=${n}){clearInterval(t);}},${ms});`,
];
const expectedLines = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix} ${i + 1}\n`).join('');

// ---- tests -----------------------------------------------------------------

test('one 70,000-byte frame closes that socket with 1009; the server and other viewers go on', async () => {
  const id = await startRun('alice', lineScript('tick', 40, 100));
  const other = await open(id, 'alice');
  const bad = await open(id, 'alice');
  bad.ws.send(Buffer.alloc(70_000, 1));
  await expectClose(bad, 1009, 'oversize frame');
  assert.equal(server.proc.exitCode, null, `the server is still running:\n${tailLines(server.logs())}`);
  // The other socket is untouched: it receives everything until the run ends.
  const end = await other.closed;
  assert.equal(end.code, 1000, `the other viewer ends normally (${end.reason})`);
  assert.equal(Buffer.concat(other.output).toString(), expectedLines('tick', 40));
  // And a new one can read the whole output from the start.
  const again = await open(id, 'alice');
  await again.closed;
  assert.equal(Buffer.concat(again.output).toString(), expectedLines('tick', 40));
});

test(
  `fuzz: seeded hostile frames over dozens of sockets for ${FUZZ_SECONDS}s; the server stays up and another run streams byte-exact`,
  { timeout: (FUZZ_SECONDS + 360) * 1000 },
  async () => {
    const VICTIM_LINES = Math.ceil(((FUZZ_SECONDS + 30) * 1000) / 20);
    // bob's run, followed by bob from the first byte, the well-behaved viewer.
    const victim = await startRun('bob', lineScript('victim line', VICTIM_LINES, 20));
    const watcher = await open(victim, 'bob');

    // alice's runs: one interactive (reads stdin), one not; both outlive the fuzzing.
    const life = (FUZZ_SECONDS + 60) * 1000;
    const interactive = await startRun('alice', ['node', '-e', `process.stdin.on('data',()=>{});setTimeout(()=>process.exit(0),${life});`], true);
    const plain = await startRun('alice', ['node', '-e', `setInterval(()=>console.log('tick'),500);setTimeout(()=>process.exit(0),${life});`]);

    const stats = { frames: 0, sockets: 0, closesChecked: 0, rawSockets: 0 };
    const halfOpen: net.Socket[] = [];
    let peakRss = 0;

    type Action = (r: ReturnType<typeof seededRandom>) => Promise<void>;
    type Rnd = ReturnType<typeof seededRandom>;
    const closesWith =
      (code: number, target: (r: Rnd) => [string, 'alice' | 'bob'], send: (ws: WebSocket, r: Rnd) => void, what: string): Action =>
      async (r) => {
        const [id, who] = target(r);
        const o = await open(id, who);
        stats.sockets++;
        send(o.ws, r);
        await expectClose(o, code, what);
        stats.closesChecked++;
      };
    const own = (r: Rnd): [string, 'alice'] => [r.pick([interactive, plain]), 'alice'];
    const actions: Array<[string, Action]> = [
      ['oversize frame', closesWith(1009, own, (ws, r) => (ws.send(Buffer.alloc(r.int(65_537, 200_000), r.int(0, 4))), stats.frames++), 'oversize frame')],
      ['empty frame', closesWith(1008, own, (ws) => (ws.send(Buffer.alloc(0)), stats.frames++), 'empty frame')],
      [
        'unknown channel',
        closesWith(1008, own, (ws, r) => (ws.send(Buffer.from([r.pick([1, 2, 3, r.int(5, 255)]), 1, 2, 3])), stats.frames++), 'unknown channel'),
      ],
      ['text frame', closesWith(1003, own, (ws) => (ws.send('hello'), stats.frames++), 'text frame')],
      [
        'stdin on a non-interactive run',
        closesWith(
          1008,
          () => [plain, 'alice'],
          (ws) => (ws.send(encodeFrame(Channel.stdin, 'x\n')), stats.frames++),
          'stdin on a non-interactive run',
        ),
      ],
      [
        "stdin on someone else's run",
        closesWith(
          1008,
          () => [victim, 'alice'],
          (ws) => (ws.send(encodeFrame(Channel.stdin, 'rm -rf /\n')), stats.frames++),
          "stdin on someone else's run",
        ),
      ],
      [
        'malformed resize',
        closesWith(
          1008,
          own,
          (ws, r) => (
            ws.send(encodeFrame(Channel.resize, r.pick(['{', 'null', '{"cols":0,"rows":5}', '{"cols":"a"}', 'x'.repeat(r.int(1, 60_000))]))),
            stats.frames++
          ),
          'malformed resize',
        ),
      ],
      [
        'huge resize JSON',
        closesWith(
          1008,
          own,
          (ws) => (ws.send(encodeFrame(Channel.resize, JSON.stringify({ cols: 80, rows: 24, pad: 'p'.repeat(60_000) }))), stats.frames++),
          'huge resize',
        ),
      ],
      [
        'ping flood',
        closesWith(
          1008,
          own,
          (ws) => {
            for (let i = 0; i < 200; i++) ws.ping(Buffer.alloc(125));
            stats.frames += 200;
          },
          'ping flood',
        ),
      ],
      [
        'resize flood',
        async (r) => {
          const o = await open(interactive, 'alice');
          stats.sockets++;
          const n = r.int(50, 500);
          for (let i = 0; i < n; i++) o.ws.send(encodeResize({ cols: r.int(1, 1000), rows: r.int(1, 1000) }));
          stats.frames += n;
          await new Promise((res) => setTimeout(res, 200));
          assert.equal(o.ws.readyState, WebSocket.OPEN, 'a resize flood of valid frames is not a violation');
          o.ws.close();
        },
      ],
      [
        'bulk stdin to own interactive run',
        async (r) => {
          const o = await open(interactive, 'alice');
          stats.sockets++;
          const n = r.int(1, 64);
          for (let i = 0; i < n; i++) o.ws.send(encodeFrame(Channel.stdin, Buffer.alloc(4096, 97)));
          stats.frames += n;
          await new Promise((res) => setTimeout(res, 100));
          assert.equal(o.ws.readyState, WebSocket.OPEN, 'the owner may type into an interactive run');
          o.ws.close();
        },
      ],
      [
        'dropped mid-frame',
        async (r) => {
          const o = await open(r.pick([interactive, plain, victim]), 'alice');
          stats.sockets++;
          // A frame header that promises more bytes than ever come, then the TCP connection goes.
          const socket = (o.ws as unknown as { _socket: net.Socket })._socket;
          socket.write(Buffer.from([0x82, 0xfe, 0x10, 0x00, 1, 2, 3, 4, ...Buffer.alloc(r.int(0, 100))]));
          stats.frames++;
          socket.destroy();
        },
      ],
      [
        'opened and terminated',
        async (r) => {
          const o = await open(r.pick([interactive, plain, victim]), r.pick(['alice', 'bob'] as const));
          stats.sockets++;
          o.ws.terminate();
        },
      ],
      [
        'half-open TCP',
        async (r) => {
          // A handshake that stops half-way, or completes and then never reads nor closes.
          const s = net.connect(Number(new URL(base).port), '127.0.0.1');
          s.on('error', () => undefined);
          await new Promise((res) => s.once('connect', res));
          const full =
            `GET /api/runs/${plain}/stream?from=0&follow=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${tokens.alice}\r\n\r\n`;
          s.write(r.next() < 0.5 ? full.slice(0, r.int(10, full.length - 5)) : full);
          s.pause(); // never read what the server sends
          stats.rawSockets++;
          if (halfOpen.length < 10)
            halfOpen.push(s); // within the streams one person may hold
          else s.destroy();
        },
      ],
    ];

    const deadline = Date.now() + FUZZ_SECONDS * 1000;
    const counts = new Map<string, number>();
    // Each worker has its own seeded sequence of actions, so a failure names a reproducible one.
    const worker = async (w: number) => {
      const rnd = seededRandom(SEED * 1000 + w);
      while (Date.now() < deadline) {
        const [name, act] = rnd.pick(actions);
        counts.set(name, (counts.get(name) ?? 0) + 1);
        await act(rnd);
        assert.equal(server.proc.exitCode, null, `the server died after "${name}":\n${tailLines(server.logs())}`);
        peakRss = Math.max(peakRss, rssBytes(server.proc.pid!));
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
    for (const s of halfOpen) s.destroy();

    // The well-behaved viewer got every byte of bob's run, once, in order.
    const end = await watcher.closed;
    assert.equal(end.code, 1000, `the victim's viewer ends normally (${end.reason})`);
    const got = Buffer.concat(watcher.output).toString();
    assert.equal(got.length, expectedLines('victim line', VICTIM_LINES).length, 'byte count of the victim run');
    assert.equal(got, expectedLines('victim line', VICTIM_LINES), 'the victim run streamed byte-exact');
    assert.equal(server.proc.exitCode, null, 'the server is still running');
    assert.ok(peakRss < MEMORY_LIMIT_BYTES, `peak RSS ${(peakRss / 1048576).toFixed(0)} MiB stays under the chart limit`);
    console.error(
      `fuzz (seed ${SEED}, ${FUZZ_SECONDS}s): ${stats.frames} frames over ${stats.sockets} WebSockets + ${stats.rawSockets} raw sockets, ` +
        `${stats.closesChecked} close codes checked, peak server RSS ${(peakRss / 1048576).toFixed(1)} MiB; actions: ${JSON.stringify(Object.fromEntries(counts))}`,
    );
  },
);

// ---- exhaustion (issue 12, point 4): memory stays bounded under each attack -------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

test('512 MiB of stdin into a program that never reads it: the server pushes back, its memory stays bounded', { timeout: 300_000 }, async () => {
  const id = await startRun('alice', ['node', '-e', 'setTimeout(() => process.exit(0), 120000)'], true);
  const pid = server.proc.pid!;
  const before = rssBytes(pid);
  const o = await open(id, 'alice');
  const chunk = encodeFrame(Channel.stdin, Buffer.alloc(60_000, 120));
  const TARGET = 512 << 20;
  let sent = 0;
  let peak = before;
  const deadline = Date.now() + 30_000;
  while (sent < TARGET && Date.now() < deadline && o.ws.readyState === WebSocket.OPEN) {
    // Like a fast client: keep 8 MiB in flight, no more.
    if (o.ws.bufferedAmount > 8 << 20) {
      await sleep(20);
      peak = Math.max(peak, rssBytes(pid));
      continue;
    }
    o.ws.send(chunk);
    sent += chunk.length - 1;
    if ((sent / 60_000) % 64 === 0) peak = Math.max(peak, rssBytes(pid));
  }
  const accepted = sent - o.ws.bufferedAmount;
  assert.equal(server.proc.exitCode, null, 'the server is still running');
  assert.equal(o.ws.readyState, WebSocket.OPEN, 'the owner typing into their own run is not cut off');
  console.error(`stdin flood: ${MiB(accepted)} left the client in 30 s (of ${MiB(TARGET)} offered); server RSS ${MiB(before)} → peak ${MiB(peak)}`);
  assert.ok(accepted < 64 << 20, `the server pushed back: only ${MiB(accepted)} got past the client`);
  assert.ok(peak - before < 128 << 20, `server RSS grew by ${MiB(peak - before)}`);
  o.ws.terminate();
  await fetch(`${base}/api/runs/${id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${tokens.alice}` } });
});

test('30 viewers that never read, each replaying a run with 16 MiB of stored output: memory stays bounded', { timeout: 300_000 }, async () => {
  const id = await startRun('alice', [
    'node',
    '-e',
    "const l='x'.repeat(1023)+'\\n';let i=0;(function w(){while(i<16384){i++;if(!process.stdout.write(l))return process.stdout.once('drain',w);}setTimeout(()=>{},120000)})()",
  ]);
  const reader = await open(id, 'alice');
  await eventually('16 MiB of output streamed and stored', async () => Buffer.concat(reader.output).length >= 16 << 20, 120_000).catch((err) => {
    throw new Error(`${err.message}; got ${Buffer.concat(reader.output).length} bytes, socket state ${reader.ws.readyState}`);
  });
  reader.ws.close();
  const pid = server.proc.pid!;
  const before = rssBytes(pid);
  let peak = before;
  const sockets: net.Socket[] = [];
  for (let i = 0; i < 30; i++) {
    const s = net.connect(Number(new URL(base).port), '127.0.0.1');
    s.on('error', () => undefined);
    s.write(
      `GET /api/runs/${id}/stream?from=0&follow=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${tokens.alice}\r\n\r\n`,
    );
    s.pause(); // never reads a byte
    sockets.push(s);
  }
  for (let t = 0; t < 40; t++) {
    await sleep(250);
    peak = Math.max(peak, rssBytes(pid));
  }
  for (const s of sockets) s.destroy();
  assert.equal(server.proc.exitCode, null, 'the server is still running');
  console.error(`30 non-reading viewers × 16 MiB replay: server RSS ${MiB(before)} → peak ${MiB(peak)}`);
  assert.ok(peak - before < 256 << 20, `server RSS grew by ${MiB(peak - before)} (30 × 16 MiB would be 480 MiB)`);
  await fetch(`${base}/api/runs/${id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${tokens.alice}` } });
});
