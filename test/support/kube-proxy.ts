// A counting pass-through in front of the real API server, so a test can say how many
// Kubernetes calls the server made for one request (e.g. that listing runs reads no
// Deployment per run), or cut chosen calls off (`hold`). Every request and WebSocket upgrade (attach) goes to the real
// API server with the admin credentials of the test kubeconfig; nothing is answered here.
import http from 'node:http';
import https from 'node:https';
import { writeFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import type * as k8s from '@kubernetes/client-node';

export interface KubeCall {
  method: string;
  path: string;
  watch: boolean;
}

export class CountingKubeProxy {
  readonly calls: KubeCall[] = [];
  /**
   * Requests it returns true for are held, never forwarded nor answered: an API server
   * that stopped answering (a partition), for the calls a test picks.
   */
  hold?: (call: KubeCall) => boolean;
  private server!: http.Server;
  private upstream!: URL;
  private tls: https.RequestOptions = {};
  /** Upgraded (attach) connections: the HTTP server no longer tracks them. */
  private readonly tunnels = new Set<Duplex>();
  url = '';

  async start(kc: k8s.KubeConfig): Promise<this> {
    this.upstream = new URL(kc.getCurrentCluster()!.server);
    await kc.applyToHTTPSOptions(this.tls);
    this.server = http.createServer((req, res) => {
      if (this.hold?.(this.record(req))) return;
      const up = https.request(this.target(req), { ...this.options(req), method: req.method }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        // As the API server does for a watch: headers now, not with the first event.
        res.flushHeaders();
        upRes.pipe(res);
      });
      up.on('error', () => res.destroy());
      res.on('close', () => up.destroy());
      req.pipe(up);
    });
    this.server.requestTimeout = 0;
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      this.record(req);
      const up = https.request(this.target(req), { ...this.options(req), method: req.method });
      up.on('upgrade', (upRes, upSocket, upHead) => {
        const lines = [`HTTP/1.1 101 ${upRes.statusMessage ?? 'Switching Protocols'}`];
        for (let i = 0; i < upRes.rawHeaders.length; i += 2) lines.push(`${upRes.rawHeaders[i]}: ${upRes.rawHeaders[i + 1]}`);
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (upHead.length) socket.write(upHead);
        if (head.length) upSocket.write(head);
        for (const s of [socket, upSocket]) {
          this.tunnels.add(s);
          s.on('close', () => this.tunnels.delete(s));
        }
        upSocket.pipe(socket).pipe(upSocket);
        upSocket.on('error', () => socket.destroy());
        socket.on('error', () => upSocket.destroy());
      });
      up.on('response', (upRes) => {
        socket.end(`HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}\r\nConnection: close\r\n\r\n`);
      });
      up.on('error', () => socket.destroy());
      up.end();
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this;
  }

  /** A kubeconfig that reaches the cluster through this proxy (no credentials of its own). */
  writeKubeconfig(path: string): string {
    const cfg = {
      apiVersion: 'v1',
      kind: 'Config',
      // client-node refuses plain http unless told to skip TLS verification (there is no TLS here).
      clusters: [{ name: 'proxy', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'proxy', user: {} }],
      contexts: [{ name: 'proxy', context: { cluster: 'proxy', user: 'proxy' } }],
      'current-context': 'proxy',
    };
    writeFileSync(path, JSON.stringify(cfg));
    return path;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    for (const s of this.tunnels) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private record(req: http.IncomingMessage): KubeCall {
    const u = new URL(req.url ?? '/', 'http://x');
    const call = { method: req.method ?? 'GET', path: u.pathname, watch: u.searchParams.get('watch') === 'true' };
    this.calls.push(call);
    return call;
  }

  private target(req: http.IncomingMessage): URL {
    return new URL(req.url ?? '/', this.upstream);
  }

  private options(req: http.IncomingMessage): https.RequestOptions {
    const headers = { ...req.headers, host: this.upstream.host };
    return { ca: this.tls.ca, cert: this.tls.cert, key: this.tls.key, headers: { ...headers, ...(this.tls.headers ?? {}) } };
  }
}
