// client-node makes a new https.Agent (a new TLS connection) per API call; the server
// swaps it for one keep-alive agent per TLS identity (server/k8s/client.ts).
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { keepAliveAgent } from '../../server/k8s/client.js';

describe('keepAliveAgent', () => {
  test('agents with the same TLS identity become one keep-alive agent', () => {
    const a = keepAliveAgent(new https.Agent({ ca: 'CA-1', cert: 'CERT-1', key: 'KEY-1' }));
    const b = keepAliveAgent(new https.Agent({ ca: 'CA-1', cert: 'CERT-1', key: 'KEY-1' }));
    assert.ok(a instanceof https.Agent);
    assert.equal(a, b);
    assert.equal((a as https.Agent & { keepAlive: boolean }).keepAlive, true);
    assert.equal(a.options.cert, 'CERT-1');
  });

  test('a different certificate, CA or verification setting is a different agent', () => {
    const base = { ca: 'CA-2', cert: 'CERT-2', key: 'KEY-2' };
    const a = keepAliveAgent(new https.Agent(base));
    assert.notEqual(keepAliveAgent(new https.Agent({ ...base, cert: 'CERT-3' })), a);
    assert.notEqual(keepAliveAgent(new https.Agent({ ...base, ca: 'CA-3' })), a);
    assert.notEqual(keepAliveAgent(new https.Agent({ ...base, rejectUnauthorized: false })), a);
  });

  test('plain http agents and agent subclasses (proxies) are left alone', () => {
    const plain = new http.Agent();
    assert.equal(keepAliveAgent(plain), plain);
    class ProxyAgent extends https.Agent {}
    const proxy = new ProxyAgent();
    assert.equal(keepAliveAgent(proxy), proxy);
    assert.equal(keepAliveAgent(undefined), undefined);
  });

  test('what client-node builds from a kubeconfig (client certificate) is reused call after call', async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', caData: Buffer.from('CA-KC').toString('base64') }],
      users: [{ name: 'u', certData: Buffer.from('CERT-KC').toString('base64'), keyData: Buffer.from('KEY-KC').toString('base64') }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const agents = [];
    for (let i = 0; i < 3; i++) {
      const opts: https.RequestOptions = {};
      await kc.applyToHTTPSOptions(opts);
      assert.ok(opts.agent instanceof https.Agent);
      agents.push(keepAliveAgent(opts.agent));
    }
    assert.equal(new Set(agents).size, 1);
  });
});
