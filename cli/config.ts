// Where the CLI finds its server and token: --server, then the environment
// (ODDJOB_SERVER, ODDJOB_TOKEN), then the login config file. The environment is
// read only through the named helpers here, so every knob is listed in one place.
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { describeZodError } from '../protocol/api.js';
import { CliError } from './errors.js';

export type Env = Readonly<Record<string, string | undefined>>;

// Empty means unset: test harnesses and CI often blank a variable rather than delete it.
const nonEmpty = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);
export const serverFromEnv = (env: Env) => nonEmpty(env.ODDJOB_SERVER);
export const tokenFromEnv = (env: Env) => nonEmpty(env.ODDJOB_TOKEN);
export const namespaceFromEnv = (env: Env) => nonEmpty(env.ODDJOB_NAMESPACE);
export const debugEnabled = (env: Env) => Boolean(nonEmpty(env.ODDJOB_DEBUG));

export function configPath(env: Env): string {
  return join(nonEmpty(env.XDG_CONFIG_HOME) ?? join(nonEmpty(env.HOME) ?? homedir(), '.config'), 'oddjob', 'config.json');
}

const httpUrl = z.string().refine((s) => isHttpUrl(s), 'must be an http:// or https:// URL');

// Loose: `oddjob login` (later) may store more than this CLI version knows about.
export const ConfigFile = z.looseObject({
  server: httpUrl.optional(),
  token: z.string().min(1, 'must not be empty').optional(),
});
export type ConfigFile = z.infer<typeof ConfigFile>;

export interface LoadedConfig {
  path: string;
  config: ConfigFile | undefined;
  /** Things worth telling the person, e.g. a token file others can read. */
  warnings: string[];
}

export function loadConfig(env: Env): LoadedConfig {
  const path = configPath(env);
  let text: string;
  let mode: number;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { path, config: undefined, warnings: [] };
    throw new CliError(`cannot read the config file ${path}: ${(err as Error).message}`);
  }
  const warnings: string[] = [];
  // The file holds a bearer token: group/other access is a leak waiting to happen.
  if ((mode & 0o077) !== 0) {
    warnings.push(`${path} can be read by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); it holds your token — run: chmod 600 ${path}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CliError(`the config file ${path} is not valid JSON: ${(err as Error).message}`, {
      hint: 'fix or delete it, or set ODDJOB_SERVER and ODDJOB_TOKEN instead',
    });
  }
  const parsed = ConfigFile.safeParse(json);
  if (!parsed.success) {
    throw new CliError(`the config file ${path} is invalid: ${describeZodError(parsed.error)}`, {
      hint: 'fix or delete it, or set ODDJOB_SERVER and ODDJOB_TOKEN instead',
    });
  }
  return { path, config: parsed.data, warnings };
}

/**
 * Writes the login config: merged with what is there, to a 0600 temp file in a
 * 0700 directory, then renamed over the old one, so a crash never leaves a
 * half-written file and the token is never readable by others, not even briefly.
 * `undefined` values remove their key.
 */
export function saveConfig(env: Env, update: Partial<ConfigFile>): string {
  const path = configPath(env);
  let current: Record<string, unknown>;
  try {
    current = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    if (typeof current !== 'object' || current === null || Array.isArray(current)) current = {};
  } catch {
    current = {};
  }
  const next: Record<string, unknown> = { ...current, ...update };
  for (const [k, v] of Object.entries(next)) if (v === undefined) delete next[k];
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600); // in case the umask or an old file got in the way
    renameSync(tmp, path);
  } catch (err) {
    throw new CliError(`cannot write the config file ${path}: ${(err as Error).message}`);
  }
  return path;
}

export interface Endpoint {
  /** Normalised base URL without a trailing slash. */
  server: string;
  token: string | undefined;
}

/**
 * Resolves server and token. The config file is read only when the flag and
 * environment leave something open, and its token is only sent to the server
 * it was issued for: `--server https://elsewhere` must not leak it.
 */
export function resolveEndpoint(flagServer: string | undefined, env: Env, readConfig: () => ConfigFile | undefined): Endpoint {
  let config: ConfigFile | undefined;
  let configRead = false;
  const cfg = () => {
    if (!configRead) {
      config = readConfig();
      configRead = true;
    }
    return config;
  };
  const raw = nonEmpty(flagServer) ?? serverFromEnv(env) ?? cfg()?.server;
  if (!raw) {
    throw new CliError('no oddjob server is configured', {
      hint: 'pass --server URL or set ODDJOB_SERVER (e.g. ODDJOB_SERVER=http://127.0.0.1:8080)',
    });
  }
  const server = normaliseServer(raw);
  let token = tokenFromEnv(env);
  if (!token) {
    const c = cfg();
    if (c?.token && (!c.server || sameOrigin(c.server, server))) token = c.token;
  }
  return { server, token };
}

export function normaliseServer(raw: string): string {
  if (!isHttpUrl(raw)) {
    throw new CliError(`the server "${raw}" is not an http:// or https:// URL`, { hint: 'e.g. --server http://127.0.0.1:8080' });
  }
  const u = new URL(raw);
  u.search = '';
  u.hash = '';
  return u.toString().replace(/\/+$/, '');
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && Boolean(u.host);
  } catch {
    return false;
  }
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}
