// The stream format between the server and its clients (CLI, browser).
//
// One WebSocket per viewer at  /api/runs/:id/stream?from=<offset>&follow=<0|1>
// Every message is binary: the first byte is the channel, the rest the payload.
// The channel numbers are the Kubernetes streaming protocol's:
//   0 stdin   client -> server (interactive runs only; never recorded)
//   1 stdout  server -> client
//   2 stderr  server -> client
//   3 status  server -> client, UTF-8 JSON (StatusFrame)
//   4 resize  client -> server, UTF-8 JSON {cols, rows}
//
// Output is an ordered byte log per run (stdout and stderr chunks interleaved in
// the order they were produced). `from` is the number of output bytes (channels
// 1 and 2 together) the client already has: the server replays from there, then
// follows live. A client that reconnects with the count it received gets no gap
// and no duplicate.
import { z } from 'zod';
import { RunStatus } from './api.js';
import { Channel, frameBytes } from './wire.js';

export { Channel, CloseCode } from './wire.js';

export const StatusFrame = z.discriminatedUnion('kind', [
  /**
   * Progress while the pod starts ("waiting for pod: creating the container"). With
   * `event`, the line is a Kubernetes Event about the run's pod (Scheduled, Pulling,
   * FailedScheduling ...): a step worth keeping on screen; `seq` numbers them per run,
   * so a viewer that reconnects (and gets them again) shows each once.
   */
  z.object({
    kind: z.literal('progress'),
    message: z.string(),
    event: z.object({ seq: z.number().int().positive(), reason: z.string(), type: z.enum(['Normal', 'Warning']) }).optional(),
  }),
  /** The command's container is running; output follows. */
  z.object({ kind: z.literal('running'), podName: z.string() }),
  /** The run ended. The server closes the socket after this frame. */
  z.object({
    kind: z.literal('end'),
    status: RunStatus,
    exitCode: z.number().int().optional(),
    message: z.string().optional(),
    outputBytes: z.number().int().nonnegative(),
    outputTruncated: z.boolean(),
    /** As Run.outputLost: bytes the server could not read (-1: an unknown amount); absent: none. */
    outputLost: z.number().int().min(-1).optional(),
  }),
  /** The stream cannot continue (not found, forbidden, ...). The socket closes. */
  z.object({ kind: z.literal('error'), code: z.string(), message: z.string() }),
]);
export type StatusFrame = z.infer<typeof StatusFrame>;

export const ResizeFrame = z.object({
  cols: z.number().int().min(1).max(1000),
  rows: z.number().int().min(1).max(1000),
});
export type ResizeFrame = z.infer<typeof ResizeFrame>;

export function encodeFrame(channel: Channel, payload: Uint8Array | string): Buffer {
  const out = frameBytes(channel, typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload);
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

export function encodeStatus(frame: StatusFrame): Buffer {
  return encodeFrame(Channel.status, JSON.stringify(frame));
}

export function encodeResize(size: ResizeFrame): Buffer {
  return encodeFrame(Channel.resize, JSON.stringify(size));
}

export type DecodedFrame = { channel: 0 | 1 | 2; data: Buffer } | { channel: 3; status: StatusFrame } | { channel: 4; resize: ResizeFrame };

/** Decodes one message; throws an Error with a readable message on garbage. */
export function decodeFrame(msg: Buffer): DecodedFrame {
  if (msg.length < 1) throw new Error('empty frame');
  const channel = msg[0];
  const body = msg.subarray(1);
  switch (channel) {
    case Channel.stdin:
    case Channel.stdout:
    case Channel.stderr:
      return { channel, data: body };
    case Channel.status:
      return { channel, status: StatusFrame.parse(JSON.parse(body.toString('utf8'))) };
    case Channel.resize:
      return { channel, resize: ResizeFrame.parse(JSON.parse(body.toString('utf8'))) };
    default:
      throw new Error(`unknown channel ${channel}`);
  }
}
