// Which database a store opens: `--db` is a SQLite file path (the embedded default)
// or a postgres:// URL. Pure apart from reading a password file.
import { readFileSync } from 'node:fs';

export type DbTarget = { engine: 'sqlite'; path: string } | { engine: 'postgres'; url: string; password?: string };

export class DbTargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DbTargetError';
  }
}

const URL_SCHEME = /^postgres(ql)?:\/\//i;

/**
 * `value` is --db. The PostgreSQL password comes from the URL, else --db-password-file,
 * else PGPASSWORD; never more than one of URL and file (which one would win is a guess
 * an operator should not have to make).
 */
export function parseDbTarget(value: string, opts: { passwordFile?: string; env?: NodeJS.ProcessEnv } = {}): DbTarget {
  if (!URL_SCHEME.test(value)) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
      throw new DbTargetError(`${redact(value)} is neither a file path nor a postgres:// or postgresql:// URL`);
    }
    if (opts.passwordFile !== undefined) throw new DbTargetError('--db-password-file only applies to a postgres:// URL, and --db is a SQLite file');
    return { engine: 'sqlite', path: value };
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new DbTargetError(`${redact(value)} is not a valid URL; the form is postgres://USER@HOST:PORT/DATABASE`);
  }
  if (!url.hostname && !url.searchParams.get('host')) {
    throw new DbTargetError(`${redact(value)} names no host; the form is postgres://USER@HOST:PORT/DATABASE`);
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!database) throw new DbTargetError(`${redact(value)} names no database; add it as the path, e.g. postgres://oddjob@db:5432/oddjob`);
  if (url.password && opts.passwordFile !== undefined) {
    throw new DbTargetError('the --db URL has a password and --db-password-file is set too; give one of them');
  }
  let password = url.password ? decodeURIComponent(url.password) : undefined;
  if (password === undefined && opts.passwordFile !== undefined) {
    try {
      password = readFileSync(opts.passwordFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
      throw new DbTargetError(`--db-password-file: cannot read ${opts.passwordFile}: ${why}`);
    }
    if (!password) throw new DbTargetError(`--db-password-file: ${opts.passwordFile} is empty`);
  }
  password ??= opts.env?.PGPASSWORD || undefined;
  url.password = '';
  return { engine: 'postgres', url: url.toString(), password };
}

/** The target as it may be logged or shown: never a password. */
export function describeTarget(t: DbTarget): string {
  return t.engine === 'sqlite' ? t.path : redact(t.url);
}

/** A URL with its password replaced, for messages. */
export function redact(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}
