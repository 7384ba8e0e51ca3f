// readContainerLog (server/k8s/logs.ts) against a local server replaying the
// API server's recorded answers (test/fixtures/k8s/): the Status bodies it
// refuses a log with, a stream cut short, and exact resumption after one.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LogRequestError, isSplitStreamsUnsupported, readContainerLog, type LogReadOptions } from '../../server/k8s/logs.js';
import { fixture, sendStatus, startKubeReplay, startStream, type Call, type KubeReplay } from '../support/kube-replay.js';

const STDOUT = fixture('log-stdout.txt'); // "line 1\n" … "line 5\n"
const opts: LogReadOptions = { namespace: 'h14-capture', pod: 'talk', container: 'app', stream: 'Stdout', follow: true, skipBytes: 0 };

describe('readContainerLog against replayed API-server answers', { timeout: 30_000 }, () => {
  let replay: KubeReplay | undefined;
  afterEach(async () => {
    await replay?.close();
    replay = undefined;
  });

  async function read(handle: (call: Call) => void, o: Partial<LogReadOptions> = {}) {
    replay = await startKubeReplay(handle);
    const chunks: Buffer[] = [];
    const result = readContainerLog(replay.kc, { ...opts, ...o }, (c) => chunks.push(Buffer.from(c)));
    return { result, text: () => Buffer.concat(chunks).toString('utf8') };
  }

  test('asks for one container, one stream, following, with the kubeconfig credentials', async () => {
    const r = await read((call) => {
      startStream(call.res, 'text/plain');
      call.res.end(STDOUT);
    });
    assert.equal(await r.result, Buffer.byteLength(STDOUT));
    assert.equal(r.text(), STDOUT);
    const call = replay!.calls[0]!;
    assert.equal(call.path, '/api/v1/namespaces/h14-capture/pods/talk/log');
    assert.deepEqual(Object.fromEntries(call.query), { container: 'app', follow: 'true', stream: 'Stdout' });
    assert.equal(call.req.headers.authorization, 'Bearer replay-token');
  });

  // [fixture, status, what the error must say]
  const refusals: [string, number, string][] = [
    ['log-pod-not-found-404.json', 404, 'pods "nope" not found'],
    ['log-bad-container-400.json', 400, 'container nope is not valid for pod talk'],
    ['log-waiting-400.json', 400, `container "app" in pod "stuck" is waiting to start: image can't be pulled`],
    ['log-invalid-stream-422.json', 422, 'PodLogOptions "talk" is invalid: stream: Unsupported value: "Both": supported values: "Stdout", "Stderr", "All"'],
  ];
  for (const [file, status, message] of refusals) {
    test(`a ${status} Status (${file}) rejects with the Status's message and code`, async () => {
      const r = await read((call) => sendStatus(call.res, status, fixture(file)));
      await assert.rejects(r.result, (err: unknown) => err instanceof LogRequestError && err.status === status && err.message === message);
      // Only "stream may not be specified" means the cluster lacks PodLogsQuerySplitStreams.
      await r.result.catch((err: unknown) => assert.equal(isSplitStreamsUnsupported(err), false));
      assert.equal(r.text(), '', 'no Status JSON leaks into the output');
    });
  }

  test('a body that is not a Status (a proxy in the way) is reported as it came', async () => {
    const r = await read((call) => {
      call.res.writeHead(502, { 'Content-Type': 'text/html' });
      call.res.end('<html><body>502 Bad Gateway</body></html>\n');
    });
    await assert.rejects(
      r.result,
      (err: unknown) => err instanceof LogRequestError && err.status === 502 && err.message === '<html><body>502 Bad Gateway</body></html>',
    );
  });

  test('a stream cut short rejects (it did not end), keeps what arrived, and a re-read skips exactly that', async () => {
    const cut = STDOUT.indexOf('line 3') + 3; // mid-line, mid-chunk
    const first = await read((call) => {
      startStream(call.res, 'text/plain');
      call.res.write(STDOUT.slice(0, cut));
      setImmediate(() => call.req.socket.destroy());
    });
    await assert.rejects(first.result);
    assert.equal(first.text(), STDOUT.slice(0, cut));
    await replay!.close();

    // The resumption: the API server sends the whole log again, in its own chunks.
    const have = Buffer.byteLength(first.text());
    const second = await read(
      (call) => {
        startStream(call.res, 'text/plain');
        call.res.write(STDOUT.slice(0, 4));
        call.res.end(STDOUT.slice(4));
      },
      { skipBytes: have },
    );
    assert.equal(await second.result, Buffer.byteLength(STDOUT), 'counts skipped and delivered bytes');
    assert.equal(first.text() + second.text(), STDOUT, 'no gap, nothing twice');
  });

  test('aborting stops a follow that is still open', async () => {
    const ac = new AbortController();
    const r = await read(
      (call) => {
        startStream(call.res, 'text/plain');
        call.res.write('line 1\n');
      },
      { signal: ac.signal },
    );
    await replay!.call(1);
    ac.abort();
    await assert.rejects(r.result, { name: 'AbortError' });
  });
});
