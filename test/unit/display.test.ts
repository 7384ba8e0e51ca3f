// protocol/display.ts: what every CLI table and web page does to text someone typed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeDisplay, hasUnsafeDisplay } from '../../protocol/display.js';

describe('escapeDisplay', () => {
  const cases: Array<[string, string, string]> = [
    ['plain text', 'plain text', 'plain text'],
    ['non-ASCII letters and emoji stay', 'café 日本 😀', 'café 日本 😀'],
    ['set window title (OSC 0, BEL)', '\x1b]0;pwned\x07', '\\x1b]0;pwned\\x07'],
    ['clear screen (CSI 2J)', 'a\x1b[2Jb', 'a\\x1b[2Jb'],
    ['cursor up and erase line', '\x1b[1A\x1b[2K', '\\x1b[1A\\x1b[2K'],
    ['newline, carriage return, tab', 'a\nb\rc\td', 'a\\nb\\rc\\td'],
    ['NUL and backspace', '\x00\x08', '\\x00\\x08'],
    ['DEL', 'x\x7f', 'x\\x7f'],
    ['C1 CSI (8-bit)', '\u009b2J', '\\u009b2J'],
    ['C1 OSC and ST', '\u009d0;t\u009c', '\\u009d0;t\\u009c'],
    ['right-to-left override', 'ab\u202ecd', 'ab\\u202ecd'],
    ['bidi embeddings and pop', '\u202a\u202b\u202c\u202d', '\\u202a\\u202b\\u202c\\u202d'],
    ['bidi isolates', '\u2066\u2067\u2068\u2069', '\\u2066\\u2067\\u2068\\u2069'],
    ['zero-width space, joiners, marks', '\u200b\u200c\u200d\u200e\u200f', '\\u200b\\u200c\\u200d\\u200e\\u200f'],
    ['BOM / zero-width no-break space', '\ufeffx', '\\ufeffx'],
    ['word joiner, Arabic letter mark, soft hyphen', '\u2060\u061c\u00ad', '\\u2060\\u061c\\u00ad'],
    ['line and paragraph separators', '\u2028\u2029', '\\u2028\\u2029'],
    ['tag characters (astral Cf)', '\u{e0041}', '\\u{e0041}'],
    ['lone surrogates', '\ud800x\udc00', '\\ud800x\\udc00'],
    ['backslashes stay as they are', 'C:\\x1b', 'C:\\x1b'],
  ];
  for (const [name, input, want] of cases) {
    test(name, () => {
      assert.equal(escapeDisplay(input), want);
      assert.equal(hasUnsafeDisplay(input), input !== want);
      // Idempotent: escaping what was shown changes nothing.
      assert.equal(escapeDisplay(want), want);
    });
  }
  test('keepNewlines leaves \\n and escapes everything else', () => {
    assert.equal(escapeDisplay('a\nb\r\x1b\u202e', { keepNewlines: true }), 'a\nb\\r\\x1b\\u202e');
  });
  test('no unsafe code point survives, over the whole BMP and the astral Cf block', () => {
    const unsafe = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;
    for (let cp = 0; cp <= 0xffff; cp++) {
      const out = escapeDisplay(String.fromCharCode(cp));
      for (const ch of out) assert.ok(!unsafe.test(ch), `U+${cp.toString(16)} -> ${JSON.stringify(out)}`);
    }
    for (let cp = 0xe0000; cp <= 0xe007f; cp++) assert.ok(!unsafe.test(escapeDisplay(String.fromCodePoint(cp))));
  });
});
