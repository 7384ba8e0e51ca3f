// This replica's share of the runs: leases (store/leases.ts) on the runs it tracks,
// renewed every RENEW_MS; every RENEW_MS it also adopts active runs whose owner stopped
// renewing. A replica that dies is replaced within LEASE_MS + RENEW_MS (≤ 15 s).
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { RunLeases } from '../store/leases.js';

export const LEASE_MS = 10_000;
export const RENEW_MS = 3_000;

export interface Ownership {
  readonly id: string;
  claim(runId: string): Promise<boolean>;
  release(runId: string): Promise<void>;
  releaseAll(runIds: readonly string[]): Promise<void>;
  start(): void;
  stop(): void;
}

export function runOwnership(o: {
  leases: RunLeases | undefined;
  logger: Logger;
  owned(): string[];
  onLost(runId: string): void;
  adopt(): Promise<void>;
}): Ownership {
  const id = `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
  const { leases, logger } = o;
  let timer: NodeJS.Timeout | undefined;
  let busy = false;
  const tick = async () => {
    if (busy || !leases) return;
    busy = true;
    try {
      for (const lost of await leases.renew(id, o.owned(), LEASE_MS)) {
        logger.warn({ run: lost }, 'another replica took this run over (its lease was not renewed in time); no longer tracking it');
        o.onLost(lost);
      }
      await o.adopt();
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'could not renew run leases or adopt runs (will retry)');
    } finally {
      busy = false;
    }
  };
  return {
    id,
    claim: async (runId) => (leases ? leases.claim(runId, id, LEASE_MS) : true),
    release: async (runId) => {
      await leases
        ?.release(runId, id)
        .catch((err: unknown) => logger.warn({ err: (err as Error).message, run: runId }, 'could not release a run lease (it expires)'));
    },
    releaseAll: async (runIds) => {
      for (const r of runIds) await leases?.release(r, id).catch(() => undefined);
    },
    start() {
      if (!leases) return;
      timer = setInterval(() => void tick(), RENEW_MS);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
    },
  };
}
