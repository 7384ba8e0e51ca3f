// A real Standard Webhooks receiver for tests: an HTTP server that verifies every
// request with the `standardwebhooks` library (the one receivers are told to use),
// records what it accepted, and can be told to fail, hang or answer slowly — the way
// real receivers misbehave. Deduplication by webhook-id is the receiver's side of
// "exactly once": `unique()` is what a careful receiver would act on, `received` is
// every verified request.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface ReceivedWebhook {
  id: string;
  timestamp: number;
  body: { version: number; type: string; timestamp: string; data: Record<string, unknown> & { run?: Record<string, unknown>; text?: string } };
  raw: string;
  at: number;
}

export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  /** Requests whose signature did not verify (should stay empty). */
  readonly rejected: string[] = [];
  /** Every request, verified or not, with the answer given (for "failed N times" checks). */
  readonly attempts: Array<{ id: string; status: number | 'hang' }> = [];
  /** Answer this many requests with 500 first. */
  failNext = 0;
  /** Never answer (until the connection is dropped by the sender). */
  hang = false;
  private server!: http.Server;
  private readonly hanging = new Set<http.ServerResponse>();
  /** The most requests held unanswered at one moment (hang mode). */
  maxHeld = 0;
  url = '';

  constructor(readonly secret: string) {}

  async start(host = '127.0.0.1'): Promise<this> {
    const wh = new Webhook(this.secret);
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const id = String(req.headers['webhook-id'] ?? '');
        if (this.hang) {
          this.attempts.push({ id, status: 'hang' });
          this.hanging.add(res);
          this.maxHeld = Math.max(this.maxHeld, this.hanging.size);
          res.on('close', () => this.hanging.delete(res));
          return;
        }
        if (this.failNext > 0) {
          this.failNext--;
          this.attempts.push({ id, status: 500 });
          res.writeHead(500).end('try later');
          return;
        }
        try {
          const body = wh.verify(raw, req.headers as Record<string, string>) as ReceivedWebhook['body'];
          this.received.push({ id, timestamp: Number(req.headers['webhook-timestamp']), body, raw, at: Date.now() });
          this.attempts.push({ id, status: 204 });
          res.writeHead(204).end();
        } catch (err) {
          this.rejected.push(`${id}: ${(err as Error).message}`);
          this.attempts.push({ id, status: 401 });
          res.writeHead(401).end();
        }
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, host, resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://${host}:${port}/hooks/oddjob`;
    return this;
  }

  /** Requests being held unanswered right now (hang mode). */
  get held(): number {
    return this.hanging.size;
  }

  /** One entry per webhook-id (what a deduplicating receiver acts on). */
  unique(): ReceivedWebhook[] {
    const seen = new Map<string, ReceivedWebhook>();
    for (const r of this.received) if (!seen.has(r.id)) seen.set(r.id, r);
    return [...seen.values()];
  }

  ofRun(runId: string): ReceivedWebhook[] {
    return this.received.filter((r) => r.body.data.run?.id === runId);
  }

  async stop(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A fresh Standard Webhooks secret: whsec_ + base64 of 32 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64')}`;
}
