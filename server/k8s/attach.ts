// Attaches to a running container's stdout/stderr (and stdin) through the API server,
// the Kubernetes streaming protocol over WebSocket (channel byte + data).
// Used instead of client-node's Attach for two reasons: it ignores backpressure (every
// message is pushed into the Writable regardless), and it does not say when the stream
// ends. Here output is handed to a synchronous callback, so the socket is read only as
// fast as the caller consumes it: TCP flow control reaches the container runtime, which
// writes to attached streams synchronously, so a writer faster than us is slowed down
// instead of racing ahead of the kubelet's log rotation.
import type https from 'node:https';
import type * as k8s from '@kubernetes/client-node';
import WebSocket from 'ws';

export interface AttachOptions {
  namespace: string;
  pod: string;
  container: string;
  stdin: boolean;
  /** With a TTY, stderr is merged into stdout by the runtime. */
  tty: boolean;
}

export interface AttachSession {
  /** stdin bytes (interactive runs). */
  write(data: Buffer): void;
  /** End of stdin (v5 protocol: close the stdin stream). */
  endStdin(): void;
  resize(size: { cols: number; rows: number }): void;
  /** Bytes sent (stdin, resizes) and not yet handed to the network. */
  bufferedAmount(): number;
  /** Stop reading the stream (the runtime then blocks the container's writes) / read again. */
  pause(): void;
  resume(): void;
  close(): void;
  /** Resolves when the stream ends (the container's output closed, or the connection dropped). */
  readonly ended: Promise<{ code: number; reason: string; failure?: AttachError }>;
  /** The API server reported that the attach failed (it upgrades first, then connects to the node). */
  failure(): AttachError | undefined;
}

export class AttachError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'AttachError';
  }
}

const PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
const CLOSE_STREAM = 255;

/** Opens the attach; resolves once the stream is up (output before that moment is not in it). */
export async function openAttach(kc: k8s.KubeConfig, opts: AttachOptions, onOutput: (channel: 1 | 2, data: Buffer) => void): Promise<AttachSession> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster in kubeconfig');
  const url = new URL(`${cluster.server}/api/v1/namespaces/${encodeURIComponent(opts.namespace)}/pods/${encodeURIComponent(opts.pod)}/attach`);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set('container', opts.container);
  url.searchParams.set('stdout', 'true');
  url.searchParams.set('stderr', String(!opts.tty));
  url.searchParams.set('stdin', String(opts.stdin));
  url.searchParams.set('tty', String(opts.tty));
  const tls: https.RequestOptions = { headers: {} };
  await kc.applyToHTTPSOptions(tls);

  const ws = new WebSocket(url, PROTOCOLS, { ...(tls as WebSocket.ClientOptions), perMessageDeflate: false, handshakeTimeout: 30_000, maxPayload: 64 << 20 });
  ws.binaryType = 'nodebuffer';
  // The API server accepts the WebSocket before it reaches the node: an attach the node
  // refuses (the container is not running yet) opens, then ends with a Status on channel 3.
  let failure: AttachError | undefined;
  const ended = new Promise<{ code: number; reason: string; failure?: AttachError }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString('utf8'), failure }));
  });
  ws.on('message', (data: Buffer, isBinary) => {
    const buf = isBinary ? data : Buffer.from(data);
    if (buf.length < 2) return;
    const channel = buf[0];
    if (channel === 1 || channel === 2) onOutput(channel, buf.subarray(1));
    else if (channel === 3) failure ??= statusFailure(buf.subarray(1));
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d.slice(0, 4096)));
      res.on('end', () => {
        let message = body;
        try {
          message = (JSON.parse(body) as { message?: string }).message ?? body;
        } catch {
          // not a Status object
        }
        reject(new AttachError(res.statusCode ?? 0, message.trim() || `attach refused (${res.statusCode})`));
      });
    });
    ws.once('error', (err) => reject(err));
  });
  ws.on('error', () => undefined); // the close that follows ends the session
  const v5 = ws.protocol === 'v5.channel.k8s.io';
  const send = (b: Buffer) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(b);
  };
  return {
    write: (data) => send(Buffer.concat([Buffer.from([0]), data])),
    endStdin: () => {
      // Before v5 the only way to signal EOF was closing the whole connection.
      if (v5) send(Buffer.from([CLOSE_STREAM, 0]));
    },
    resize: (size) => send(Buffer.concat([Buffer.from([4]), Buffer.from(JSON.stringify({ Width: size.cols, Height: size.rows }))])),
    bufferedAmount: () => ws.bufferedAmount,
    failure: () => failure,
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    close: () => {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate();
    },
    ended,
  };
}

/** A Status on the error channel: undefined for Success. */
function statusFailure(body: Buffer): AttachError | undefined {
  try {
    const status = JSON.parse(body.toString('utf8')) as { status?: string; message?: string; code?: number };
    if (status.status === 'Success') return undefined;
    return new AttachError(status.code ?? 500, status.message ?? 'attach failed');
  } catch {
    return new AttachError(500, body.toString('utf8').slice(0, 500) || 'attach failed');
  }
}
