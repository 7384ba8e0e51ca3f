// Output streams over WebSocket on the same port as the API:
//   GET /api/runs/:id/stream?from=N&follow=0|1   (frames: protocol/frames.ts)
// The upgrade goes through the same checks as HTTP, before the socket is
// upgraded: Origin (browsers must come from the public URL; CLIs send none),
// authentication, validation, and the run service's own authorization.
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { runId as runIdSchema } from '../../protocol/api.js';
import { CloseCode } from '../../protocol/frames.js';
import { type ApiError } from '../../protocol/api-error.js';
import { ServiceError, badRequest, forbidden, notFound, unauthorized } from '../errors.js';
import { httpRefusal, rawErrorResponse, toApiError } from '../http/errors.js';
import type { Logger } from '../logger.js';
import type { Authenticator, RunService } from '../services.js';
import { clientOf } from '../http/client-of.js';
import { metrics } from '../metrics.js';
import { SocketViewer } from './viewer.js';
import { ViewerInput } from './input.js';

const PATH = /^\/api\/runs\/([^/]+)\/stream$/;
const PING_MS = 25_000; // under the 30 s that idle proxies tolerate
/** Streams one person may hold open at once (browser tabs, CLIs following runs). */
export const MAX_STREAMS_PER_IDENTITY = 32;

export function attachStreams(server: http.Server, deps: { publicUrl: () => string; auth: Authenticator; runs: RunService; logger: Logger }) {
  // autoPong off: ViewerInput answers pings itself, and only to peers that read (a ping
  // flood from a peer that never reads would otherwise queue a pong per ping).
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false, autoPong: false });
  // Open streams per identity: each costs up to the viewer's send bounds in memory.
  const openStreams = new Map<string, number>();

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node's HTTP server removes its own socket error handler before 'upgrade': from here
    // until ws takes the socket over, an error (a peer that resets while we authenticate)
    // would be unhandled and end the process.
    socket.on('error', (err) => deps.logger.debug({ err }, 'stream socket error before the upgrade'));
    void handle(req, socket, head).catch((err) => {
      const e = toApiError(err);
      if (!e) deps.logger.error({ err }, 'stream upgrade failed');
      reject(socket, e ?? httpRefusal(500, 'internal', 'internal error'));
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
    const streamKey = identity.login.toLowerCase();
    const open = openStreams.get(streamKey) ?? 0;
    if (open >= MAX_STREAMS_PER_IDENTITY) {
      throw new ServiceError(
        'rate_limited',
        `you (${identity.login}) already have ${open} streams open, the most one person may`,
        'close other oddjob terminals or `oddjob logs -f` sessions and try again',
        'too_many_streams',
      );
    }
    if (!socket.writable) return socket.destroy(); // the peer left while we decided
    openStreams.set(streamKey, open + 1);

    wss.handleUpgrade(req, socket, head, (ws) => {
      metrics.streamViewers.inc();
      ws.once('close', () => {
        metrics.streamViewers.dec();
        const n = (openStreams.get(streamKey) ?? 1) - 1;
        if (n > 0) openStreams.set(streamKey, n);
        else openStreams.delete(streamKey);
      });
      // First, before anything can emit: a protocol violation by the peer (an oversize or
      // malformed frame) makes ws close the socket with the right code (1009, 1002, ...) and
      // emit 'error'. Unhandled, that one frame would end the whole process.
      ws.on('error', (err: Error & { code?: string }) => {
        deps.logger.info({ run: id.data, user: identity.login, code: err.code, err: err.message }, 'stream closed on a protocol violation');
      });
      // handleUpgrade (noServer) does not emit 'connection' by itself; the keepalive below
      // counts on it, and without it every socket was cut at its first ping round (~25 s).
      wss.emit('connection', ws, req);
      const viewer = new SocketViewer(ws);
      const input = new ViewerInput(ws, { run: id.data, user: identity.login }, deps.logger);
      ws.on('message', (data: Buffer, isBinary) => input.receive(data, isBinary));
      ws.on('close', () => input.detach());
      deps.runs.attachViewer(ctx, id.data, { from: Number(fromText), follow }, viewer).then(
        (h) => input.attached(h),
        (err) => {
          viewer.status({
            kind: 'error',
            code: err instanceof ServiceError ? err.code : 'internal',
            message: err instanceof ServiceError ? err.message : 'internal error',
          });
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
      // A socket we paused (its stdin waits for the remote program) cannot read pongs.
      if (ws.isPaused) continue;
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
  if (req.method !== 'GET') throw httpRefusal(405, 'method_not_allowed', 'a stream is opened with GET');
  if (String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket') throw badRequest('only WebSocket upgrades are served here (Upgrade: websocket)');
  const key = req.headers['sec-websocket-key'];
  if (key === undefined || !/^[+/0-9A-Za-z]{22}==$/.test(key)) throw badRequest('missing or invalid Sec-WebSocket-Key header');
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') throw badRequest('unsupported Sec-WebSocket-Version', 'use WebSocket version 13');
  // oddjob speaks no subprotocol; a malformed offer would make ws refuse the handshake.
  const protocol = req.headers['sec-websocket-protocol'];
  if (protocol !== undefined) {
    const offered = protocol.split(',').map((p) => p.trim());
    if (!offered.every((p) => /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(p)) || new Set(offered).size !== offered.length) {
      throw badRequest('invalid Sec-WebSocket-Protocol header');
    }
  }
}

function reject(socket: Duplex, e: ApiError) {
  if (!socket.writable) return socket.destroy();
  socket.end(rawErrorResponse(e));
}
