// Output streams over WebSocket on the same port as the API:
//   GET /api/runs/:id/stream?from=N&follow=0|1   (frames: protocol/frames.ts)
// The upgrade goes through the same checks as HTTP, before the socket is
// upgraded: Origin (browsers must come from the public URL; CLIs send none),
// authentication, validation, and the run service's own authorization.
import type http from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { runId as runIdSchema } from '../../protocol/api.js';
import { Channel, CloseCode, ResizeFrame } from '../../protocol/frames.js';
import { HttpError, badRequest, forbidden, notFound, unauthorized } from '../http/errors.js';
import type { Logger } from '../logger.js';
import type { Authenticator, RunService, Viewer } from '../services.js';
import { clientOf } from '../http/app.js';
import { SocketViewer } from './viewer.js';

const PATH = /^\/api\/runs\/([^/]+)\/stream$/;
const PING_MS = 25_000; // under the 30 s that idle proxies tolerate

export function attachStreams(server: http.Server, deps: { publicUrl: () => string; auth: Authenticator; runs: RunService; logger: Logger }) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false });

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    void handle(req, socket, head).catch((err) => {
      const e = err instanceof HttpError ? err : new HttpError(500, 'internal', 'internal error');
      if (!(err instanceof HttpError)) deps.logger.error({ err }, 'stream upgrade failed');
      reject(socket, e);
    });
  });

  async function handle(req: http.IncomingMessage, socket: Duplex, head: Buffer) {
    const url = new URL(req.url ?? '/', 'http://x');
    const m = PATH.exec(url.pathname);
    if (!m) throw notFound('no such stream endpoint');
    checkHandshake(req);
    // Browsers always send Origin on a WebSocket handshake; the CLI sends none and
    // authenticates with a bearer token, which a hostile page cannot attach.
    const allowedOrigin = new URL(deps.publicUrl()).origin;
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== allowedOrigin) throw forbidden(`origin ${origin} is not allowed`, `use oddjob at ${allowedOrigin}`);
    const principal = await deps.auth.authenticate(req);
    if (!principal) throw unauthorized();
    if (principal.via === 'session' && origin === undefined) throw forbidden('a browser session may only open streams from an oddjob page');
    const identity = principal.identity;
    let rawId: string;
    try {
      rawId = decodeURIComponent(m[1]!);
    } catch {
      throw badRequest('invalid run id (bad percent-encoding)');
    }
    const id = runIdSchema.safeParse(rawId);
    if (!id.success) throw badRequest('invalid run id');
    const fromText = url.searchParams.get('from') ?? '0';
    if (!/^\d{1,15}$/.test(fromText)) throw badRequest('from must be a non-negative integer');
    const follow = (url.searchParams.get('follow') ?? '1') !== '0';
    const ctx = { identity, client: clientOf(req), auditor: principal.auditor };
    // Authorize (and find the run) before upgrading, so refusals are plain HTTP answers.
    await deps.runs.getRun(ctx, id.data);

    wss.handleUpgrade(req, socket, head, (ws) => {
      // handleUpgrade (noServer) does not emit 'connection' by itself; the keepalive below
      // counts on it, and without it every socket was cut at its first ping round (~25 s).
      wss.emit('connection', ws, req);
      const viewer = new SocketViewer(ws);
      let handle: Awaited<ReturnType<RunService['attachViewer']>> | undefined;
      ws.on('message', (data: Buffer, isBinary) => {
        if (!isBinary || data.length === 0 || !handle) return;
        if (data[0] === Channel.stdin) handle.stdin(data.subarray(1));
        else if (data[0] === Channel.resize) {
          try {
            handle.resize(ResizeFrame.parse(JSON.parse(data.subarray(1).toString('utf8'))));
          } catch {
            ws.close(CloseCode.policy, 'malformed resize frame');
          }
        }
      });
      ws.on('close', () => handle?.detach());
      deps.runs.attachViewer(ctx, id.data, { from: Number(fromText), follow }, viewer).then(
        (h) => {
          handle = h;
          if (ws.readyState !== ws.OPEN) h.detach();
        },
        (err) => {
          viewer.status({ kind: 'error', code: err instanceof HttpError ? err.code : 'internal', message: err instanceof HttpError ? err.message : 'internal error' });
          viewer.close();
        },
      );
    });
  }

  // Keepalive: ping every 25 s; a peer that missed the previous pong is gone.
  const alive = new WeakSet<WebSocket>();
  wss.on('connection', (ws) => {
    alive.add(ws);
    ws.on('pong', () => alive.add(ws));
  });
  const timer = setInterval(() => {
    for (const ws of wss.clients) {
      if (!alive.has(ws)) {
        ws.terminate();
        continue;
      }
      alive.delete(ws);
      ws.ping();
    }
  }, PING_MS);
  timer.unref();

  return {
    close() {
      clearInterval(timer);
      for (const ws of wss.clients) ws.close(CloseCode.goingAway, 'server shutting down');
      wss.close();
    },
  };
}

/**
 * What ws.handleUpgrade would refuse, refused here first: ws answers a malformed
 * handshake in plain text, and every refusal of the API has the JSON error shape.
 */
function checkHandshake(req: http.IncomingMessage) {
  if (req.method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'a stream is opened with GET');
  if (String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket') throw badRequest('only WebSocket upgrades are served here (Upgrade: websocket)');
  const key = req.headers['sec-websocket-key'];
  if (key === undefined || !/^[+/0-9A-Za-z]{22}==$/.test(key)) throw badRequest('missing or invalid Sec-WebSocket-Key header');
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') throw new HttpError(400, 'invalid_request', 'unsupported Sec-WebSocket-Version', 'use WebSocket version 13');
  // oddjob speaks no subprotocol; a malformed offer would make ws refuse the handshake.
  const protocol = req.headers['sec-websocket-protocol'];
  if (protocol !== undefined) {
    const offered = protocol.split(',').map((p) => p.trim());
    if (!offered.every((p) => /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(p)) || new Set(offered).size !== offered.length) {
      throw badRequest('invalid Sec-WebSocket-Protocol header');
    }
  }
}

function reject(socket: Duplex, e: HttpError) {
  if (!socket.writable) return socket.destroy();
  const body = JSON.stringify({ error: { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) } });
  socket.end(
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
