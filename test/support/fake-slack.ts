// A fake Slack speaking the endpoints oddjob uses, with Slack's real shapes:
//   POST /services/T…/B…/SECRET   incoming webhook: 200 "ok"; errors as text bodies with
//                                 their real statuses: 400 invalid_payload, 403
//                                 action_prohibited / invalid_token, 404 channel_not_found,
//                                 410 channel_is_archived; 429 with Retry-After
//   POST /api/chat.postMessage    Web API: HTTP 200 {ok:true, channel, ts, message} or
//   POST /api/chat.update         HTTP 200 {ok:false, error}; 429 + Retry-After when rate limited;
//                                 Authorization: Bearer xoxb-… (invalid_auth / not_authed)
// Knobs: `failWebhook` / `failApi` queue error answers; `rateLimit` queues 429s;
// `limitFor(ms)` rate-limits every request for a while, the way Slack does: each one
// answered 429 with Retry-After set to the seconds left (rounded up).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackPost {
  channel: string;
  ts: string;
  text: string;
  blocks: unknown[];
  thread_ts?: string;
  updates: Array<{ text: string; blocks: unknown[] }>;
}

export class FakeSlack {
  readonly token = `xoxb-${Date.now()}-fake-bot-token`;
  readonly webhookPath = `/services/T0FAKE/B0FAKE/${Math.random().toString(36).slice(2)}xyz`;
  /** Incoming webhook messages, as posted. */
  readonly webhookMessages: Array<{ text: string; blocks: unknown[] }> = [];
  /** Web API messages by ts, with their updates in order (delete one to play a user deleting it). */
  readonly messages = new Map<string, SlackPost>();
  readonly calls: Array<{ path: string; status: number; answer: string }> = [];
  /** Error codes the next incoming-webhook requests answer with (one each). */
  failWebhook: string[] = [];
  /** Error codes the next Web API requests answer with ({ok:false,error}). */
  failApi: string[] = [];
  /** The next N requests (any endpoint) answer 429 with Retry-After: retryAfter. */
  rateLimit = 0;
  retryAfter = 1;
  private limitedUntil = 0;
  private nextTs = 1_700_000_000;
  private server!: http.Server;
  url = '';

  get webhookUrl(): string {
    return `${this.url}${this.webhookPath}`;
  }

  get apiUrl(): string {
    return `${this.url}/api`;
  }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.handle(req, res, Buffer.concat(chunks).toString('utf8')));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}) {
    this.calls.push({ path: req.url ?? '', status, answer: body });
    res.writeHead(status, headers).end(body);
  }

  /** Every request in the next `ms` is refused with 429. */
  limitFor(ms: number): void {
    this.limitedUntil = Date.now() + ms;
  }

  /** Requests answered 429. */
  get rateLimited(): number {
    return this.calls.filter((c) => c.status === 429).length;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, raw: string) {
    if (req.method !== 'POST') return this.answer(req, res, 405, 'method_not_allowed');
    const left = this.limitedUntil - Date.now();
    if (this.rateLimit > 0 || left > 0) {
      if (left <= 0) this.rateLimit--;
      // Slack's rate limit answer: HTTP 429, Retry-After in seconds (Web API also says ratelimited).
      const body = req.url?.startsWith('/api/') ? JSON.stringify({ ok: false, error: 'ratelimited' }) : 'rate_limited';
      const retryAfter = left > 0 ? Math.ceil(left / 1000) : this.retryAfter;
      return this.answer(req, res, 429, body, { 'retry-after': String(retryAfter), 'content-type': 'application/json; charset=utf-8' });
    }
    if (req.url === this.webhookPath) return this.incoming(req, res, raw);
    if (req.url === '/api/chat.postMessage' || req.url === '/api/chat.update') return this.api(req, res, raw);
    return req.url?.startsWith('/services/') ? this.answer(req, res, 403, 'invalid_token') : this.answer(req, res, 404, 'not found');
  }

  private incoming(req: http.IncomingMessage, res: http.ServerResponse, raw: string) {
    const fail = this.failWebhook.shift();
    if (fail) {
      const status = { invalid_payload: 400, action_prohibited: 403, channel_not_found: 404, channel_is_archived: 410 }[fail] ?? 500;
      return this.answer(req, res, status, fail);
    }
    let msg: { text?: unknown; blocks?: unknown };
    try {
      msg = JSON.parse(raw) as typeof msg;
    } catch {
      return this.answer(req, res, 400, 'invalid_payload');
    }
    if (typeof msg.text !== 'string' && !Array.isArray(msg.blocks)) return this.answer(req, res, 400, 'no_text');
    this.webhookMessages.push({ text: String(msg.text ?? ''), blocks: (msg.blocks as unknown[]) ?? [] });
    return this.answer(req, res, 200, 'ok', { 'content-type': 'text/html' });
  }

  private api(req: http.IncomingMessage, res: http.ServerResponse, raw: string) {
    const json = (body: object) => this.answer(req, res, 200, JSON.stringify(body), { 'content-type': 'application/json; charset=utf-8' });
    const auth = req.headers.authorization;
    if (!auth) return json({ ok: false, error: 'not_authed' });
    if (auth !== `Bearer ${this.token}`) return json({ ok: false, error: 'invalid_auth' });
    const fail = this.failApi.shift();
    if (fail) return json({ ok: false, error: fail });
    let body: { channel?: string; ts?: string; text?: string; blocks?: unknown[]; thread_ts?: string };
    try {
      body = JSON.parse(raw) as typeof body;
    } catch {
      return json({ ok: false, error: 'invalid_json' });
    }
    if (!body.channel) return json({ ok: false, error: 'channel_not_found' });
    if (body.text === undefined && !body.blocks) return json({ ok: false, error: 'no_text' });
    const channel = body.channel.startsWith('#') ? 'C0FAKECHAN' : body.channel;
    if (req.url === '/api/chat.update') {
      const m = body.ts ? this.messages.get(body.ts) : undefined;
      if (!m || m.channel !== channel) return json({ ok: false, error: 'message_not_found' });
      m.updates.push({ text: body.text ?? '', blocks: body.blocks ?? [] });
      return json({ ok: true, channel, ts: m.ts, text: body.text });
    }
    const ts = `${this.nextTs++}.000100`;
    this.messages.set(ts, { channel, ts, text: body.text ?? '', blocks: body.blocks ?? [], thread_ts: body.thread_ts, updates: [] });
    return json({ ok: true, channel, ts, message: { type: 'message', text: body.text, ts } });
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
