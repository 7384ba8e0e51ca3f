// The stream's wire constants and byte layout (protocol/frames.ts describes the
// format). No dependencies, not even zod or Buffer: the browser bundle
// (web/src/stream.ts) imports this module, and the server and CLI reach it
// through frames.ts.

export const Channel = { stdin: 0, stdout: 1, stderr: 2, status: 3, resize: 4 } as const;
export type Channel = (typeof Channel)[keyof typeof Channel];

/** WebSocket close codes we use beyond 1000 (normal). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  policy: 1008, // unauthenticated / forbidden / bad origin
  internal: 1011,
  notFound: 4404,
  /** The viewer fell too far behind; it reconnects with the bytes it has and resumes. */
  tooSlow: 4408,
} as const;

/** One message: the channel byte, then the payload. */
export function frameBytes(channel: Channel, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 1);
  out[0] = channel;
  out.set(payload, 1);
  return out;
}
