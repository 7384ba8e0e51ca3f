// Shell completion. The scripts that `oddjob completion bash|zsh|fish` prints
// are thin: on every TAB they run `oddjob __complete WORD... CURRENT` and offer
// what it prints, one candidate per line. The decisions live here, read from
// the command table itself (so a new flag completes without touching this file),
// with the dynamic parts (namespaces, deployments, containers, run ids) asked of
// the server. Completion must never get in the way: every failure is silence,
// and a server that does not answer in time just yields no candidates.
import type { Command, Option } from 'commander';
import { AuditEventType, RunStatus, type DeploymentSummary } from '../protocol/api.js';
import { TARGET_KINDS } from './lib/argv.js';

/** Where the dynamic candidates come from; each may fail or be slow, and then offers nothing. */
export interface CompletionSources {
  namespaces(): Promise<string[]>;
  deployments(namespace: string | undefined): Promise<DeploymentSummary[]>;
  runIds(): Promise<string[]>;
  /** Paths inside the target's image (under the directories its owner declared) that complete `word`. */
  paths(namespace: string | undefined, deployment: string, container: string | undefined, word: string): Promise<string[]>;
  contexts(): string[];
  /** The namespace commands use without -n, when it is known without asking ($ODDJOB_NAMESPACE, the context). */
  defaultNamespace(): string | undefined;
}

interface Walk {
  cmd: Command;
  /** Subcommand names from the root, e.g. ['config', 'use-context']. */
  path: string[];
  /** Option values given so far, by attribute name. */
  values: Record<string, string>;
  positionals: string[];
  /** An option that waits for its value in the word being completed. */
  pending: Option | undefined;
  afterDashDash: boolean;
}

/** The candidates for the last word of `words` (the words after `oddjob`; the last may be empty). */
export async function complete(program: Command, words: readonly string[], sources: CompletionSources): Promise<string[]> {
  const current = words.at(-1) ?? '';
  const walk = walkWords(program, words.slice(0, -1));
  let candidates: string[];
  if (walk.afterDashDash) {
    // The remote command's own argv: paths inside the Deployment's image, when its owner lists some.
    const name = walk.path.join(' ') === 'run' ? targetName(walk.positionals[0]) : undefined;
    return name ? (await sources.paths(namespaceOf(walk, sources), name, walk.values.container, current)).filter((c) => c.startsWith(current)) : [];
  }
  if (walk.pending) candidates = await optionValues(walk, walk.pending, sources);
  else if (current.startsWith('-')) candidates = flagsOf(walk.cmd);
  else candidates = await positionals(walk, sources, current);
  return [...new Set(candidates.filter((c) => c.startsWith(current)))];
}

function walkWords(program: Command, words: readonly string[]): Walk {
  const w: Walk = { cmd: program, path: [], values: {}, positionals: [], pending: undefined, afterDashDash: false };
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    w.pending = undefined;
    if (w.afterDashDash) continue;
    if (word === '--') {
      w.afterDashDash = true;
      continue;
    }
    if (word.startsWith('-') && word !== '-') {
      const eq = word.indexOf('=');
      const opt = findOption(w.cmd, eq > 0 ? word.slice(0, eq) : word);
      if (!opt || !(opt.required || opt.optional)) continue;
      if (eq > 0) w.values[opt.attributeName()] = word.slice(eq + 1);
      else if (i + 1 < words.length) w.values[opt.attributeName()] = words[++i]!;
      else w.pending = opt;
      continue;
    }
    const sub = w.positionals.length === 0 ? w.cmd.commands.find((c) => c.name() === word || c.aliases().includes(word)) : undefined;
    if (sub) {
      w.cmd = sub;
      w.path.push(sub.name());
    } else {
      w.positionals.push(word);
    }
  }
  return w;
}

/** The option as `cmd` or one of its parents (global flags) defines it. */
function findOption(cmd: Command, flag: string): Option | undefined {
  for (let c: Command | null = cmd; c; c = c.parent) {
    const o = c.options.find((o) => o.long === flag || o.short === flag);
    if (o) return o;
  }
  return undefined;
}

function flagsOf(cmd: Command): string[] {
  const out: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) {
    for (const o of c.options) if (!o.hidden && o.long) out.push(o.long);
  }
  return [...out, '--help'];
}

const hidden = (c: Command) => (c as Command & { _hidden?: boolean })._hidden === true;

async function optionValues(w: Walk, opt: Option, s: CompletionSources): Promise<string[]> {
  if (opt.argChoices) return opt.argChoices;
  switch (opt.attributeName()) {
    case 'namespace':
      return s.namespaces();
    case 'context':
      return s.contexts();
    case 'status':
      return [...RunStatus.options];
    case 'type':
      return [...AuditEventType.options];
    case 'deployment':
      return (await s.deployments(namespaceOf(w, s))).map((d) => d.name);
    case 'container': {
      const name = targetName(w.positionals[0]);
      if (!name) return [];
      const d = (await s.deployments(namespaceOf(w, s))).find((d) => d.name === name);
      return d ? d.containers.map((c) => c.name) : [];
    }
    default:
      return [];
  }
}

async function positionals(w: Walk, s: CompletionSources, current: string): Promise<string[]> {
  const subs = w.cmd.commands.filter((c) => !hidden(c)).map((c) => c.name());
  if (subs.length && w.positionals.length === 0 && w.cmd.registeredArguments.length === 0) return subs;
  switch (w.path.join(' ')) {
    case 'run':
      return w.positionals.length === 0 ? targets(await s.deployments(namespaceOf(w, s)), current) : [];
    case 'logs':
    case 'attach':
    case 'cancel':
      return w.positionals.length === 0 ? s.runIds() : [];
    case 'config use-context':
      return w.positionals.length === 0 ? s.contexts() : [];
    case 'config set-namespace':
      return w.positionals.length === 0 ? s.namespaces() : [];
    case 'completion':
      return w.positionals.length === 0 ? ['bash', 'zsh', 'fish'] : [];
    case 'help':
      return w.positionals.length === 0 ? w.cmd.parent!.commands.filter((c) => !hidden(c)).map((c) => c.name()) : [];
    default:
      return [];
  }
}

/** deploy/NAME for each Deployment, keeping the kind already typed (deployment.apps/…). */
function targets(deployments: readonly DeploymentSummary[], current: string): string[] {
  const slash = current.indexOf('/');
  const typed = slash > 0 ? current.slice(0, slash) : '';
  const kind = TARGET_KINDS.includes(typed.toLowerCase()) ? typed : 'deploy';
  return deployments.map((d) => `${kind}/${d.name}`);
}

function targetName(target: string | undefined): string | undefined {
  const slash = target?.indexOf('/') ?? -1;
  return slash > 0 ? target!.slice(slash + 1) : undefined;
}

function namespaceOf(w: Walk, s: CompletionSources): string | undefined {
  return w.values.namespace ?? s.defaultNamespace();
}

// ── the scripts ──────────────────────────────────────────────────────────────

// Each asks `oddjob __complete` with the words typed so far (the last one being
// the word under the cursor) and offers its lines; a candidate ending in "/" gets
// no trailing space, so deploy/<TAB> can go on.
const BASH = `# oddjob completion for bash. Load it with:
#   source <(oddjob completion bash)
# or save it to ~/.local/share/bash-completion/completions/oddjob
_oddjob() {
  local IFS=$'\\n'
  COMPREPLY=($(oddjob __complete "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
  if [[ \${#COMPREPLY[@]} -eq 1 && \${COMPREPLY[0]} == */ ]]; then
    compopt -o nospace 2>/dev/null
  fi
}
complete -F _oddjob oddjob
`;

const ZSH = `#compdef oddjob
# oddjob completion for zsh. Load it with (after compinit):
#   source <(oddjob completion zsh)
# or save it as _oddjob in a directory on your $fpath
_oddjob() {
  local -a lines
  local c
  lines=("\${(@f)$(oddjob __complete "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  for c in "\${lines[@]}"; do
    [[ -z $c ]] && continue
    if [[ $c == */ ]]; then compadd -Q -S '' -- "$c"; else compadd -Q -- "$c"; fi
  done
}
if (( $+functions[compdef] )); then compdef _oddjob oddjob; fi
`;

const FISH = `# oddjob completion for fish. Load it with:
#   oddjob completion fish | source
# or save it to ~/.config/fish/completions/oddjob.fish
function __oddjob_complete
    set -l words (commandline -opc) (commandline -ct)
    oddjob __complete $words[2..-1] 2>/dev/null
end
complete -c oddjob -f -a '(__oddjob_complete)'
`;

export const COMPLETION_SCRIPTS: Readonly<Record<string, string>> = { bash: BASH, zsh: ZSH, fish: FISH };
