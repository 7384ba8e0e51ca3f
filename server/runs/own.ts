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
  /** Runs with a live lease (anyone's). */
  held(): Promise<Set<string>>;
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
  // Renewing and adopting take turns with themselves only: a slow adoption (a dead
  // replica's many runs) must not hold up the renewals that keep this replica's own.
  let renewing = false;
  let adopting = false;
  // Runs whose claim has completed (and not been released): only these have a lease row
  // to renew. A run being created is in owned() from before its claim is written; renewed
  // then, it had no row, was taken for lost, and its tracker was dropped a moment later —
  // a run nobody followed to its end (seen: a run never ended, a replay never streamed).
  const claimed = new Set<string>();
  const renew = async () => {
    if (renewing || !leases) return;
    renewing = true;
    try {
      const gone = await leases.renew(
        id,
        o.owned().filter((r) => claimed.has(r)),
        LEASE_MS,
      );
      // A run that ended meanwhile released its lease itself (after leaving owned()): not lost.
      const still = new Set(o.owned());
      for (const lost of gone.filter((r) => still.has(r) && claimed.has(r))) {
        claimed.delete(lost);
        logger.warn({ run: lost }, 'another replica took this run over (its lease was not renewed in time); no longer tracking it');
        o.onLost(lost);
      }
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'could not renew run leases (will retry)');
    } finally {
      renewing = false;
    }
  };
  const adopt = async () => {
    if (adopting || !leases) return;
    adopting = true;
    try {
      await o.adopt();
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'could not adopt runs (will retry)');
    } finally {
      adopting = false;
    }
  };
  return {
    id,
    claim: async (runId) => {
      if (!leases) return true;
      const ok = await leases.claim(runId, id, LEASE_MS);
      if (ok) claimed.add(runId);
      return ok;
    },
    held: async () => (leases ? leases.held() : new Set()),
    release: async (runId) => {
      claimed.delete(runId);
      await leases
        ?.release(runId, id)
        .catch((err: unknown) => logger.warn({ err: (err as Error).message, run: runId }, 'could not release a run lease (it expires)'));
    },
    releaseAll: async (runIds) => {
      for (const r of runIds) {
        claimed.delete(r);
        await leases?.release(r, id).catch(() => undefined);
      }
    },
    start() {
      if (!leases) return;
      timer = setInterval(() => void renew().then(adopt), RENEW_MS);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
    },
  };
}
