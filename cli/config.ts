// Where the CLI finds its server and token: --server, then the environment
// (ODDJOB_SERVER, ODDJOB_TOKEN), then the login config file. The environment is
// read only through the named helpers here, so every knob is listed in one place.
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { describeZodError, k8sLabelName } from '../protocol/api.js';
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
const token = z.string().min(1, 'must not be empty');

/** One server the CLI knows: where it is, the token it issued us, and the namespace we use there by default. */
export const ContextEntry = z.looseObject({
  server: httpUrl,
  token: token.optional(),
  namespace: k8sLabelName.optional(),
});
export type ContextEntry = z.infer<typeof ContextEntry>;

// Loose: a later CLI version may store more than this one knows about.
// `server`/`token` at the top are the file as it was before contexts; read, never written.
export const ConfigFile = z.looseObject({
  server: httpUrl.optional(),
  token: token.optional(),
  currentContext: z.string().optional(),
  contexts: z.record(z.string(), ContextEntry).optional(),
});
export type ConfigFile = z.infer<typeof ConfigFile>;

export const contextEnvName = (env: Env) => nonEmpty(env.ODDJOB_CONTEXT);

/** A context is named after its server's host (and path), the way gh names its hosts. */
export function contextNameFor(server: string): string {
  const u = new URL(server);
  return `${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

/**
 * The file's contexts, with a file from before contexts read as one context for
 * its server (current), so an old login keeps working and is rewritten in the new
 * shape on the next write.
 */
export function contextsOf(c: ConfigFile | undefined): { current: string | undefined; contexts: Record<string, ContextEntry> } {
  const contexts: Record<string, ContextEntry> = { ...(c?.contexts ?? {}) };
  let current = c?.currentContext;
  if (c?.server) {
    const name = contextNameFor(normaliseServer(c.server));
    contexts[name] ??= { server: c.server, ...(c.token ? { token: c.token } : {}) };
    current ??= name;
  }
  return { current, contexts };
}

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
 * Changes the contexts: read (an old file migrated), changed by `change`, then
 * written to a 0600 temp file in a 0700 directory and renamed over the old one,
 * so a crash never leaves a half-written file and the token is never readable by
 * others, not even briefly. Keys this version does not know are kept.
 */
export function updateContexts(env: Env, change: (c: { current: string | undefined; contexts: Record<string, ContextEntry> }) => void): string {
  const path = configPath(env);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) raw = {};
  } catch {
    raw = {};
  }
  const parsed = ConfigFile.safeParse(raw);
  const c = contextsOf(parsed.success ? parsed.data : undefined);
  change(c);
  const { server: _oldServer, token: _oldToken, currentContext: _c, contexts: _cs, ...rest } = raw;
  const next = { ...rest, ...(c.current ? { currentContext: c.current } : {}), contexts: c.contexts };
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
  /** The context that goes with this server, when the config file was read and has one. */
  context?: { name: string; namespace?: string };
}

/**
 * Resolves server and token: --server, else --context's server, else
 * $ODDJOB_SERVER, else $ODDJOB_CONTEXT's or the current context's server. The
 * config file is read only when the flags and environment leave something open,
 * and a context's token is only sent to the server it was issued for:
 * `--server https://elsewhere` must not leak it.
 */
export function resolveEndpoint(flagServer: string | undefined, env: Env, readConfig: () => ConfigFile | undefined, flagContext?: string): Endpoint {
  let config: ReturnType<typeof contextsOf> | undefined;
  let legacyToken: string | undefined;
  const cfg = () => {
    if (!config) {
      const file = readConfig();
      config = contextsOf(file);
      // A token saved without a server (before contexts) went to whichever server was asked.
      if (file?.token && !file.server) legacyToken = file.token;
    }
    return config;
  };
  const named = (name: string, from: string) => {
    const c = cfg().contexts[name];
    if (!c) {
      const known = Object.keys(cfg().contexts);
      throw new CliError(`no context named "${name}" (${from})`, {
        hint: known.length ? `known contexts: ${known.join(', ')} (see: oddjob config get-contexts)` : 'add one with: oddjob login --server URL',
      });
    }
    return { name, entry: c };
  };
  const envContext = contextEnvName(env);
  let selected: { name: string; entry: ContextEntry } | undefined;
  let raw = nonEmpty(flagServer);
  if (nonEmpty(flagContext)) {
    selected = named(flagContext!, '--context');
    raw ??= selected.entry.server;
  }
  raw ??= serverFromEnv(env);
  if (!raw) {
    if (envContext) selected = named(envContext, 'ODDJOB_CONTEXT');
    else if (cfg().current && cfg().contexts[cfg().current!]) selected = { name: cfg().current!, entry: cfg().contexts[cfg().current!]! };
    raw = selected?.entry.server;
  }
  if (!raw) {
    throw new CliError('no oddjob server is configured', {
      hint: 'pass --server URL or set ODDJOB_SERVER (e.g. ODDJOB_SERVER=http://127.0.0.1:8080), or sign in: oddjob login --server URL',
    });
  }
  const server = normaliseServer(raw);
  const envToken = tokenFromEnv(env);
  if (envToken && !selected && !config) return { server, token: envToken };
  // The context for this server: the one asked for if it is this server's, else any that is.
  const match =
    selected && sameOrigin(selected.entry.server, server)
      ? selected
      : Object.entries(cfg().contexts)
          .filter(([, c]) => sameOrigin(c.server, server))
          .map(([name, entry]) => ({ name, entry }))
          .sort((a, b) => Number(b.name === cfg().current) - Number(a.name === cfg().current))[0];
  const token = envToken ?? match?.entry.token ?? legacyToken;
  return {
    server,
    token,
    ...(match ? { context: { name: match.name, ...(match.entry.namespace ? { namespace: match.entry.namespace } : {}) } } : {}),
  };
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

export function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}
