// A real PostgreSQL 15 server for tests (and `npm run db:up`): Debian's postgresql-15
// binaries, a fresh cluster in a temporary directory, run as the dedicated `postgres`
// user when we are root (initdb refuses root), password authentication (scram) on a
// free loopback port and a unix socket. Never a mock.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './net.js';

export const PG_BIN = process.env.ODDJOB_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface PostgresServer {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly dir: string;
  /** postgres://oddjob:PASSWORD@127.0.0.1:PORT/DATABASE */
  url(database?: string, opts?: { password?: boolean }): string;
  /** A new empty database; its URL (with the password). */
  createDatabase(name?: string): Promise<string>;
  /** Stops the server (fast shutdown: clients are disconnected, committed data stays). */
  stop(): Promise<void>;
  /** Starts it again on the same data and port. */
  start(): Promise<void>;
  /** Stops it and deletes its directory (unless it was given one to keep). */
  destroy(): Promise<void>;
}

function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error('running as root, and initdb refuses root: the `postgres` user (created by the postgresql-15 package) is missing');
  }
}

/**
 * Starts a fresh server. `dir` keeps its data there (db:up); without it, a temporary
 * directory that destroy() removes. Fails with how to install PostgreSQL 15 if it is missing.
 */
export async function startPostgres(opts: { dir?: string; port?: number; detached?: boolean; listen?: readonly string[] } = {}): Promise<PostgresServer> {
  if (!fs.existsSync(path.join(PG_BIN, 'postgres'))) {
    throw new Error(`PostgreSQL 15 is not installed (no ${PG_BIN}/postgres): apt-get update && apt-get install -y postgresql-15`);
  }
  const owner = runAs();
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'oddjob-pg-'));
  const data = path.join(dir, 'data');
  const passwordFile = path.join(dir, 'password');
  const portFile = path.join(dir, 'port');
  const user = 'oddjob';
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o755);
  let password: string;
  if (fs.existsSync(path.join(data, 'PG_VERSION'))) {
    password = fs.readFileSync(passwordFile, 'utf8').trim();
  } else {
    password = randomBytes(18).toString('base64url');
    fs.writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    if (owner) {
      fs.chownSync(dir, owner.uid, owner.gid);
      fs.chownSync(passwordFile, owner.uid, owner.gid);
    }
    execFileSync(
      path.join(PG_BIN, 'initdb'),
      ['-D', data, '-U', user, `--pwfile=${passwordFile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C', '--no-sync'],
      { stdio: ['ignore', 'ignore', 'pipe'], ...owner, cwd: dir },
    );
  }
  // Extra addresses (the node's, for pods in the cluster) take password logins from any
  // host that reaches them; loopback stays the default and the only one otherwise.
  const listen = ['127.0.0.1', ...(opts.listen ?? [])];
  if (opts.listen?.length) {
    const hba = path.join(data, 'pg_hba.conf');
    const line = 'host all all 0.0.0.0/0 scram-sha-256';
    if (!fs.readFileSync(hba, 'utf8').includes(line)) fs.appendFileSync(hba, `${line}\n`);
  }
  const port = opts.port ?? (fs.existsSync(portFile) ? Number(fs.readFileSync(portFile, 'utf8')) : await freePort());
  fs.writeFileSync(portFile, String(port));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const log: string[] = [];

  const url = (database = 'postgres', o: { password?: boolean } = {}) =>
    `postgres://${user}${o.password === false ? '' : `:${encodeURIComponent(password)}`}@127.0.0.1:${port}/${database}`;

  const start = async () => {
    child = spawn(
      path.join(PG_BIN, 'postgres'),
      ['-D', data, '-p', String(port), '-k', dir, '-c', `listen_addresses=${listen.join(',')}`, '-c', 'max_connections=200', '-c', 'log_min_messages=warning'],
      opts.detached
        ? { stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'server.log'), 'a')], ...owner, cwd: dir, detached: true }
        : { stdio: ['ignore', 'ignore', 'pipe'], ...owner, cwd: dir },
    );
    if (opts.detached) child.unref();
    child.stderr?.on('data', (d: Buffer) => {
      log.push(d.toString());
      if (log.length > 50) log.shift();
    });
    const c = child;
    exited = new Promise((resolve) => c.once('exit', () => resolve()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (c.exitCode !== null) throw new Error(`postgres exited with ${c.exitCode}: ${log.join('').slice(-2000)}`);
      const client = new pg.Client({ connectionString: url() });
      try {
        await client.connect();
        await client.end();
        return;
      } catch (err) {
        await client.end().catch(() => {});
        if (Date.now() > deadline)
          throw new Error(`postgres did not accept connections in 30 s: ${(err as Error).message}\n${log.join('').slice(-2000)}`, { cause: err });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const stop = async () => {
    if (!child || child.exitCode !== null) return;
    child.kill('SIGINT'); // fast shutdown
    await exited;
    child = undefined;
  };
  await start();
  let n = 0;
  return {
    port,
    user,
    password,
    dir,
    url,
    async createDatabase(name = `t${process.pid}_${++n}_${randomBytes(3).toString('hex')}`) {
      const client = new pg.Client({ connectionString: url() });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name}"`);
      } finally {
        await client.end();
      }
      return url(name);
    },
    stop,
    start,
    async destroy() {
      await stop();
      if (!opts.dir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
