// Wake-ups for readers that follow a run through the store from another replica:
// PostgreSQL LISTEN on one channel, NOTIFY sent by the writers of output and run
// state in the same transaction (so it arrives after the commit). A wake-up only says
// "look again"; readers also poll, so a lost connection or a missed notification
// delays them by at most a poll interval and never loses data. SQLite (one replica)
// has no notifications: polling alone.
import pg from 'pg';
import type { Connection } from './database.js';
import type { DbTarget } from './target.js';

/** The channel every run change is announced on; the payload is the run id. */
export const RUN_CHANNEL = 'oddjob_run';
/** Input, cancels and taken input of a run (store/controls.ts); the payload is the run id. */
export const CONTROL_CHANNEL = 'oddjob_control';

export interface Wakeups {
  /** Calls `cb` whenever the run's output or state may have changed. */
  on(runId: string, cb: () => void): () => void;
  /** Calls `cb` whenever the run's controls (input, cancel) may have changed. */
  onControl(runId: string, cb: () => void): () => void;
  close(): Promise<void>;
}

export function openWakeups(conn: Connection, opts: { onError?(err: Error): void } = {}): Wakeups {
  const channels = new Map<string, Map<string, Set<() => void>>>([
    [RUN_CHANNEL, new Map()],
    [CONTROL_CHANNEL, new Map()],
  ]);
  const listen = (listeners: Map<string, Set<() => void>>) => (runId: string, cb: () => void) => {
    let set = listeners.get(runId);
    if (!set) listeners.set(runId, (set = new Set()));
    set.add(cb);
    return () => {
      set.delete(cb);
      if (set.size === 0) listeners.delete(runId);
    };
  };
  const on = listen(channels.get(RUN_CHANNEL)!);
  const onControl = listen(channels.get(CONTROL_CHANNEL)!);
  if (conn.engine !== 'postgres') return { on, onControl, close: async () => {} };

  const target = conn.target as Extract<DbTarget, { engine: 'postgres' }>;
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  const connect = () => {
    if (closed) return;
    const url = new URL(target.url);
    if (target.password !== undefined) url.password = encodeURIComponent(target.password);
    const c = new pg.Client({ connectionString: url.toString(), application_name: 'oddjob-listen' });
    client = c;
    const again = (err?: Error) => {
      if (client !== c || closed) return;
      client = undefined;
      if (err) opts.onError?.(err);
      c.end().catch(() => {});
      retry = setTimeout(connect, 1000);
      retry.unref();
    };
    c.on('error', again);
    c.on('end', () => again());
    c.on('notification', (n) => {
      if (!n.payload) return;
      for (const cb of channels.get(n.channel)?.get(n.payload) ?? []) cb();
    });
    c.connect()
      .then(() => c.query(`LISTEN ${RUN_CHANNEL}; LISTEN ${CONTROL_CHANNEL}`))
      .catch((err: Error) => again(err));
  };
  connect();
  return {
    on,
    onControl,
    async close() {
      closed = true;
      clearTimeout(retry);
      await client?.end().catch(() => {});
    },
  };
}
