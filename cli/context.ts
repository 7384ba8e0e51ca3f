// What every subcommand module receives: the process's streams and environment,
// a lazily built API client (server and token resolved on first use), and the
// exit code the action settles on. Keeps `process` out of the command modules.
import type { Command } from 'commander';
import { OddjobClient } from './client.js';
import { loadConfig, resolveEndpoint, type Endpoint, type Env } from './config.js';
import { versionSkewWarning } from '../protocol/version.js';

export interface Io {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
  env: Env;
}

/** An action returns its exit code (undefined = 0). */
export type Action<A extends unknown[]> = (...args: A) => Promise<number | void>;

export class CliContext {
  exitCode = 0;
  /** For `run`: the argv after `--`, exactly as given; undefined when there was no `--`. */
  commandArgv: string[] | undefined;
  private clientInstance: OddjobClient | undefined;
  private endpointInstance: Endpoint | undefined;

  constructor(
    readonly io: Io,
    readonly version: string,
  ) {}

  /** Wraps an action so its returned number becomes the process exit code. */
  act<A extends unknown[]>(fn: Action<A>): (...args: A) => Promise<void> {
    return async (...args: A) => {
      this.exitCode = (await fn(...args)) ?? 0;
    };
  }

  /** Server, token and context from --server/--context, the environment and the config file. */
  endpoint(cmd: Command): Endpoint {
    if (!this.endpointInstance) {
      const flags = cmd.optsWithGlobals() as { server?: string; context?: string };
      this.endpointInstance = resolveEndpoint(
        flags.server,
        this.io.env,
        () => {
          const loaded = loadConfig(this.io.env);
          for (const w of loaded.warnings) this.warn(w);
          return loaded.config;
        },
        flags.context,
      );
    }
    return this.endpointInstance;
  }

  client(cmd: Command): OddjobClient {
    if (!this.clientInstance) {
      const { server, token } = this.endpoint(cmd);
      let checked = false;
      const onServerVersion = (serverVersion: string | null) => {
        if (checked) return;
        checked = true;
        const warning = versionSkewWarning(this.version, serverVersion);
        if (warning) this.warn(warning);
      };
      this.clientInstance = new OddjobClient({ server, token, version: this.version, onServerVersion });
    }
    return this.clientInstance;
  }

  out(text: string): void {
    this.io.stdout.write(text);
  }

  /** oddjob's own messages: always stderr, always prefixed, so stdout stays the command's. */
  note(line: string): void {
    this.io.stderr.write(`oddjob: ${line}\n`);
  }

  warn(line: string): void {
    this.io.stderr.write(`oddjob: warning: ${line}\n`);
  }
}
