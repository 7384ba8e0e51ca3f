// Reads a container's log through the API server as a byte stream.
// Used instead of client-node's Log because we need the `stream` parameter
// (stdout and stderr apart, PodLogsQuerySplitStreams) and exact resumption: a
// container log is a stable byte sequence, so after a dropped connection we
// re-read it and skip the bytes we already have — no timestamps, no guessing.
import https from 'node:https';
import http from 'node:http';
import type * as k8s from '@kubernetes/client-node';
import { keepAliveAgent } from './client.js';

export type LogStream = 'Stdout' | 'Stderr' | 'All';

export interface LogReadOptions {
  namespace: string;
  pod: string;
  container: string;
  stream: LogStream;
  follow: boolean;
  /** Bytes of this stream already received; they are read and discarded. */
  skipBytes: number;
  /** Only the last this many lines (the kubelet seeks there; the rest is not read). */
  tailLines?: number;
  /** Only what was written from this moment on (RFC 3339; the node's clock, whole seconds). */
  sinceTime?: string;
  signal?: AbortSignal;
}

export class LogRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The API server rejects `stream` when PodLogsQuerySplitStreams is off. */
export function isSplitStreamsUnsupported(err: unknown): boolean {
  return (
    err instanceof LogRequestError && (err.status === 400 || err.status === 422) && /stream/i.test(err.message) && /may not be specified/i.test(err.message)
  );
}

/**
 * Streams the log to `onData` (after skipping `skipBytes`). Resolves with the
 * total bytes of this stream seen (skipped + delivered) when the server ends
 * the response — which does not prove the container finished.
 */
export async function readContainerLog(kc: k8s.KubeConfig, opts: LogReadOptions, onData: (chunk: Buffer) => void): Promise<number> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster in kubeconfig');
  const url = new URL(`${cluster.server}/api/v1/namespaces/${encodeURIComponent(opts.namespace)}/pods/${encodeURIComponent(opts.pod)}/log`);
  url.searchParams.set('container', opts.container);
  if (opts.follow) url.searchParams.set('follow', 'true');
  if (opts.stream !== 'All') url.searchParams.set('stream', opts.stream);
  if (opts.tailLines !== undefined) url.searchParams.set('tailLines', String(opts.tailLines));
  if (opts.sinceTime !== undefined) url.searchParams.set('sinceTime', opts.sinceTime);

  const reqOpts: https.RequestOptions = { method: 'GET', headers: {} };
  await kc.applyToHTTPSOptions(reqOpts);
  reqOpts.agent = keepAliveAgent(reqOpts.agent);
  const lib = url.protocol === 'https:' ? https : http;

  return new Promise<number>((resolve, reject) => {
    let seen = 0;
    const req = lib.request(url, { ...reqOpts, signal: opts.signal }, (res) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          let message = body;
          try {
            message = (JSON.parse(body) as { message?: string }).message ?? body;
          } catch {
            // not a Status object
          }
          reject(new LogRequestError(res.statusCode ?? 0, message.trim()));
        });
        return;
      }
      res.on('data', (chunk: Buffer) => {
        const start = seen;
        seen += chunk.length;
        if (seen <= opts.skipBytes) return;
        onData(start >= opts.skipBytes ? chunk : chunk.subarray(opts.skipBytes - start));
      });
      res.on('end', () => resolve(seen));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('log stream aborted')));
    });
    req.on('error', reject);
    req.end();
  });
}
