// ResourceWatch.isLive (server/k8s/watch.ts) decides whether who-may-see-a-run answers
// come from the watch-fed cache or from a fresh GET: it must be true only while a watch
// is open, and false from the moment a watch fails until one is open again. Replays
// API-server watch responses from a local HTTP server.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import pino from 'pino';
import { ResourceWatch } from '../../server/k8s/watch.js';

const deployment = (name: string, rv: string): k8s.V1Deployment => ({ metadata: { name, namespace: 'ns', resourceVersion: rv } });

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond(), `never became true: ${what}`);
}

describe('ResourceWatch.isLive', () => {
  let mode: 'open' | 'fail' = 'open';
  const open = new Set<http.ServerResponse>();
  let watches = 0;
  const server = http.createServer((req, res) => {
    watches++;
    if (mode === 'fail') {
      res.writeHead(500).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.flushHeaders();
    open.add(res);
    res.on('close', () => open.delete(res));
    res.write(`${JSON.stringify({ type: 'ADDED', object: deployment(`d${watches}`, String(10 + watches)) })}\n`);
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  test('true while a watch is open; false after it fails, until one is open again', async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as { port: number }).port}`, skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const w = new ResourceWatch<k8s.V1Deployment>({
      kc,
      path: '/apis/apps/v1/namespaces/ns/deployments',
      list: async () => ({ items: [deployment('d0', '10')], metadata: { resourceVersion: '10' } }),
      logger: pino({ level: 'silent' }),
    });
    assert.equal(w.isLive, false, 'not before the first list');
    w.start();
    await w.whenSynced();
    await until('the first watch is open', () => w.isLive);
    assert.ok(w.get('d0'));

    mode = 'fail';
    for (const res of open) res.destroy();
    await until('the failure is noticed', () => !w.isLive);
    const failedAt = watches;
    await until('a retry was refused too', () => watches > failedAt);
    assert.equal(w.isLive, false, 'still not live while the API server refuses the watch');

    mode = 'open';
    await until('a watch is open again', () => w.isLive);
    w.stop();
    assert.equal(w.isLive, false, 'not after stop');
  });
});
