// Command lines for people who think in shell syntax. oddjob never runs a shell:
// the command is an argv, executed as-is. This module splits a pasted command
// line the way a POSIX shell would split words (quotes and backslashes), and
// names the shell features that will NOT happen (pipes, globs, $VARS, ...), so
// what you see in the argument fields is exactly what the container executes.
// Pure: no DOM, unit-tested in test/unit/web-argv.test.ts.
import { parseDuration } from '../../protocol/duration.js';

export { formatDuration as formatSeconds } from '../../protocol/duration.js';

export type SplitResult = { ok: true; argv: string[]; warnings: string[] } | { ok: false; error: string };

export function splitCommandLine(line: string): SplitResult {
  const argv: string[] = [];
  const warnings = new Set<string>();
  let cur = '';
  let inWord = false;
  let i = 0;
  const s = line.replace(/\r\n?/g, '\n');
  while (i < s.length) {
    const c = s[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) argv.push(cur);
      cur = '';
      inWord = false;
      i++;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) return { ok: false, error: `unterminated single quote (starting at character ${i + 1})` };
      cur += s.slice(i + 1, end);
      i = end + 1;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let closed = false;
      while (j < s.length) {
        const d = s[j]!;
        if (d === '"') {
          closed = true;
          break;
        }
        if (d === '\\' && j + 1 < s.length && '"\\$`\n'.includes(s[j + 1]!)) {
          if (s[j + 1] !== '\n') cur += s[j + 1];
          j += 2;
          continue;
        }
        if (d === '$' || d === '`') warnings.add(`"${d}" is passed literally: no variable or command substitution happens`);
        cur += d;
        j++;
      }
      if (!closed) return { ok: false, error: `unterminated double quote (starting at character ${i + 1})` };
      i = j + 1;
      continue;
    }
    if (c === '\\') {
      if (i + 1 >= s.length) return { ok: false, error: 'the line ends with a lone backslash' };
      if (s[i + 1] === '\n') inWord = cur.length > 0;
      else cur += s[i + 1];
      i += 2;
      continue;
    }
    if ('|&;<>()'.includes(c))
      warnings.add(
        `"${c}" is passed literally: there is no shell, so no pipes, redirects or command lists (wrap the line in sh -c '...' if the image has a shell)`,
      );
    else if (c === '$' || c === '`') warnings.add(`"${c}" is passed literally: no variable or command substitution happens`);
    else if ('*?['.includes(c)) warnings.add(`"${c}" is passed literally: no filename globbing happens`);
    else if (c === '~' && !cur) warnings.add('"~" is passed literally: no home-directory expansion happens');
    cur += c;
    i++;
  }
  if (inWord) argv.push(cur);
  if (argv.length === 0) return { ok: false, error: 'the command line is empty' };
  return { ok: true, argv, warnings: [...warnings] };
}

/** Quotes one argument so that a POSIX shell would read it back as the same word. */
export function shellQuote(arg: string): string {
  if (arg === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/** The form's time limit: empty means the server's default, anything else is protocol/duration.ts's grammar. */
export function parseDurationInput(text: string): { ok: true; seconds: number | undefined } | { ok: false; error: string } {
  if (!text.trim()) return { ok: true, seconds: undefined };
  return parseDuration(text);
}
