// PURE: completion of paths inside a Deployment's image (`oddjob run deploy/api --
// node scripts/<TAB>`). The owner declares which directories may be listed with
// the annotation oddjob.io/completion-paths; a short Job lists them once per image
// (deployments/paths.ts) and the listing, parsed here, answers every TAB.
// Nothing outside the declared roots is ever listed or offered, and what a person
// types is only matched against that listing, never passed to a shell or a path
// API. Table-tested in test/unit/path-index.test.ts.
import { hasUnsafeDisplay } from '../../protocol/display.js';

export const COMPLETION_PATHS = 'oddjob.io/completion-paths';
const MAX_ROOTS = 8;
/** Entries kept from one listing (the Job's output is cut there too). */
export const MAX_ENTRIES = 20_000;
const MAX_PATH = 1024;
/** Plain absolute paths: no `..`, no `.` segments, no doubled slashes, nothing a shell would read. */
const SAFE_PATH = /^\/(?:[A-Za-z0-9_@+,=:%~-][A-Za-z0-9._@+,=:%~-]*\/?)*$/;

export type Roots = { ok: true; roots: string[] } | { ok: false; why: string };

/** The roots an owner declared (comma-separated absolute directories), or why they cannot be used. */
export function parseRoots(annotation: string | undefined): Roots {
  if (annotation === undefined || annotation.trim() === '') return { ok: false, why: `the deployment declares no ${COMPLETION_PATHS}` };
  const roots = annotation
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
  if (roots.length > MAX_ROOTS) return { ok: false, why: `${COMPLETION_PATHS} names ${roots.length} directories; at most ${MAX_ROOTS}` };
  for (const r of roots) {
    if (!SAFE_PATH.test(r) || r.length > 256 || r.split('/').some((s) => s === '..')) {
      return { ok: false, why: `${COMPLETION_PATHS}: "${r}" is not a plain absolute directory (e.g. /app/scripts)` };
    }
  }
  return { ok: true, roots: [...new Set(roots.map((r) => (r.length > 1 ? r.replace(/\/+$/, '') : r)))].sort() };
}

export interface PathIndex {
  /** The container's working directory, where relative paths start. */
  cwd: string;
  /** Absolute paths under the roots; directories end with "/". Sorted. */
  entries: string[];
}

const under = (path: string, roots: readonly string[]) => roots.some((r) => r === '/' || path === `${r}/` || path.startsWith(`${r}/`));

/**
 * The listing the index Job printed: its working directory on the first line, then one
 * path per line (directories with a trailing "/"). Lines outside the roots, unsafe to
 * show, or too long are dropped: the image is the Deployment's, but its file names are
 * not ours to trust.
 */
export function parseListing(output: string, roots: readonly string[]): PathIndex | undefined {
  const lines = output.split('\n');
  const cwd = lines.shift()?.trim() ?? '';
  if (!cwd.startsWith('/') || hasUnsafeDisplay(cwd)) return undefined;
  const entries = new Set<string>();
  for (const line of lines) {
    if (entries.size >= MAX_ENTRIES) break;
    const path = line.replace(/\/{2,}/g, '/');
    if (!path || path.length > MAX_PATH || hasUnsafeDisplay(path) || !path.startsWith('/')) continue;
    if (path.split('/').some((s) => s === '..' || s === '.')) continue;
    if (!under(path, roots)) continue;
    // A root itself is listed as "/app/scripts/": offered, but not "/app/scripts" alone.
    entries.add(path);
  }
  // The roots' parent directories, so `/a<TAB>` leads down to /app/scripts/.
  for (const r of roots) {
    for (let i = r.indexOf('/', 1); i !== -1; i = r.indexOf('/', i + 1)) entries.add(r.slice(0, i + 1));
  }
  return { cwd: cwd.replace(/\/+$/, '') || '/', entries: [...entries].sort() };
}

export type WordCheck = { ok: true } | { ok: false; why: string };

/** What a person may ask to complete: a path-looking word, no tricks. */
export function checkWord(word: string): WordCheck {
  if (word.length > MAX_PATH) return { ok: false, why: `the word to complete is longer than ${MAX_PATH} characters` };
  if (hasUnsafeDisplay(word)) return { ok: false, why: 'the word to complete contains control or format characters' };
  if (word.split('/').some((s) => s === '..')) return { ok: false, why: 'paths with ".." are not completed' };
  return { ok: true };
}

/**
 * The candidates for `word` (as typed: relative to the working directory, or absolute):
 * the entries one level below the directory part of the word, written the way the word
 * was (relative stays relative), as bash completes file names.
 */
export function completePath(index: PathIndex, word: string): string[] {
  if (!checkWord(word).ok) return [];
  const relative = !word.startsWith('/');
  const base = relative ? (index.cwd === '/' ? '/' : `${index.cwd}/`) : '';
  const bare = word.startsWith('./') ? word.slice(2) : word;
  const prefix = `${relative && word.startsWith('./') ? './' : ''}`;
  const wanted = (base + bare).replace(/\/{2,}/g, '/');
  const dir = wanted.slice(0, wanted.lastIndexOf('/') + 1);
  const out: string[] = [];
  for (const e of index.entries) {
    if (!e.startsWith(wanted) || e === dir) continue;
    const rest = e.slice(dir.length);
    // One level at a time: "scripts/" before "scripts/db/migrate.js".
    const slash = rest.indexOf('/');
    if (slash !== -1 && slash !== rest.length - 1) continue;
    out.push(relative ? prefix + e.slice(base.length) : e);
  }
  // A relative word that does not start inside the working directory reaches nothing.
  return relative ? out.filter((p) => !p.startsWith('/')) : out;
}
