// Who is calling, as the audit log records it: the client kind (from the
// X-Oddjob-Client header), the address and the user agent. Shared by HTTP
// requests (http/app.ts) and WebSocket upgrades (ws/upgrade.ts).
import type http from 'node:http';
import type { Request } from 'express';
import type { RequestContext } from '../services.js';

export function clientOf(req: http.IncomingMessage, kind?: RequestContext['client']['kind']): RequestContext['client'] {
  const tag = String(req.headers['x-oddjob-client'] ?? '');
  const agent = String(req.headers['user-agent'] ?? '').slice(0, 200) || undefined;
  // Express's req.ip honours --trust-proxy; a raw upgrade request has only the socket.
  const address = (req as Partial<Request>).ip ?? req.socket.remoteAddress;
  return { kind: kind ?? (tag.startsWith('cli/') ? 'cli' : tag.startsWith('web/') ? 'web' : 'api'), address, agent };
}
