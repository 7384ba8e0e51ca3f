// Makes text that someone typed safe to show to someone else. An argv, a reason,
// a token description or a User-Agent can carry terminal escape sequences (clear
// the screen, set the window title, rewrite the rows above) or Unicode that
// reorders or hides text (bidi overrides, zero-width characters: "Trojan Source").
// Shown raw, such text drives the viewer's terminal or misleads their eyes; this
// function shows each such character as a visible escape instead. Used by every
// CLI table and every place the web UI shows user text; `--json` output and
// exports stay exact. Pure, table-tested in test/unit/display.test.ts.

// Cc: C0 controls, DEL and C1 controls. Cf: format characters (bidi embeddings,
// overrides and isolates, zero-width space/joiners, BOM, soft hyphen, tag
// characters). Zl/Zp: line and paragraph separators. Cs: lone surrogates (a valid
// pair is one code point under the u flag, so only unpaired halves match).
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;
const UNSAFE_KEEP_NEWLINES = /(?!\n)[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeOne(ch: string): string {
  const named = NAMED[ch];
  if (named) return named;
  const cp = ch.codePointAt(0)!;
  if (cp < 0x80) return `\\x${cp.toString(16).padStart(2, '0')}`;
  if (cp <= 0xffff) return `\\u${cp.toString(16).padStart(4, '0')}`;
  return `\\u{${cp.toString(16)}}`;
}

/**
 * `text` with every control, format (bidi, zero-width) and separator character
 * replaced by a visible escape (`\x1b`, `\u202e`, `\n`). Backslashes are left as
 * they are, so escaping twice changes nothing; a literal `\x1b` typed as four
 * characters therefore looks like an escaped ESC — harmless, both are inert.
 * keepNewlines: leave `\n` alone (for multi-line blocks such as a Job manifest).
 */
export function escapeDisplay(text: string, opts: { keepNewlines?: boolean } = {}): string {
  return text.replace(opts.keepNewlines ? UNSAFE_KEEP_NEWLINES : UNSAFE, escapeOne);
}

/** True when escapeDisplay would change the text. */
export function hasUnsafeDisplay(text: string): boolean {
  return new RegExp(UNSAFE.source, 'u').test(text);
}
