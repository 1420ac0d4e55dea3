import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeRow, encodeField, encodeRow } from '../../../worker/output/tsv.js';

describe('encodeField', () => {
  const cases: [name: string, input: string, expected: string][] = [
    ['plain ASCII', 'hello world', 'hello world'],
    ['empty string', '', ''],
    ['tab', 'a\tb', 'a\\\tb'],
    ['LF', 'a\nb', 'a\\\nb'],
    ['CR', 'a\rb', 'a\\\rb'],
    ['CRLF', 'a\r\nb', 'a\\\r\\\nb'],
    ['backslash', 'a\\b', 'a\\\\b'],
    ['only a backslash', '\\', '\\\\'],
    ['trailing backslash', 'ab\\', 'ab\\\\'],
    ['text \\N (not NULL)', '\\N', '\\\\N'],
    ['end-of-data marker \\.', '\\.', '\\\\.'],
    ['backslash letters are not escapes', '\\n\\t\\r\\x41\\101', '\\\\n\\\\t\\\\r\\\\x41\\\\101'],
    ['double quotes untouched', 'say "hi"', 'say "hi"'],
    ['single quotes untouched', "it's", "it's"],
    ['NUL becomes U+FFFD', 'a\u0000b', 'a\uFFFDb'],
    ['only NUL', '\u0000', '\uFFFD'],
    ['other controls untouched', '\u0001\u0008\u000b\u000c\u001f\u007f', '\u0001\u0008\u000b\u000c\u001f\u007f'],
    ['emoji (astral plane)', 'hi 😀👍🏽', 'hi 😀👍🏽'],
    ['astral next to specials', '😀\t𝄞\n', '😀\\\t𝄞\\\n'],
    ['CJK and combining marks', '漢字 é', '漢字 é'],
    ['line/paragraph separators untouched', 'a\u2028b\u2029c', 'a\u2028b\u2029c'],
    ['non-characters untouched', '\uFFFF\uFFFE\uFDD0', '\uFFFF\uFFFE\uFDD0'],
    // Left as is here; the UTF-8 encoder writes U+FFFD for it (see the Buffer test below).
    ['lone high surrogate', 'a\uD83Db', 'a\uD83Db'],
    ['lone low surrogate', 'a\uDE00b', 'a\uDE00b'],
    ['everything at once', '\\\t\n\r\u0000x', '\\\\\\\t\\\n\\\r\uFFFDx'],
    ['specials at both ends', '\tmid\t', '\\\tmid\\\t'],
  ];
  for (const [name, input, expected] of cases) {
    it(name, () => assert.equal(encodeField(input), expected));
  }

  it('returns the same string object when nothing needs escaping (fast path)', () => {
    const s = 'x'.repeat(1000) + 'y';
    assert.equal(encodeField(s), s);
  });

  it('lone surrogates become U+FFFD when the row is encoded as UTF-8, pairs survive', () => {
    const bytes = Buffer.from(encodeRow(['a\uD83Db', '\uDE00', '😀']), 'utf8');
    assert.equal(bytes.toString('utf8'), 'a\uFFFDb\t\uFFFD\t😀\n');
  });
});

describe('encodeRow', () => {
  it('joins by TAB and ends with LF', () => assert.equal(encodeRow(['a', 'b', 'c']), 'a\tb\tc\n'));
  it('writes null and empty string as empty fields', () => assert.equal(encodeRow([null, '', 'x', null]), '\t\tx\t\n'));
  it('one field', () => assert.equal(encodeRow(['only']), 'only\n'));
  it('escapes inside fields', () => assert.equal(encodeRow(['a\tb', 'c\nd']), 'a\\\tb\tc\\\nd\n'));
  it('has exactly (fields - 1) unescaped tabs and one unescaped LF', () => {
    const line = encodeRow(['\t\t', '\\', '\n', '\\\t']);
    assert.deepEqual(decodeRow(line), ['\t\t', '\\', '\n', '\\\t']);
  });
  it('escapes every field not marked plain, wherever the first escape is', () => {
    const plain = [true, false, false, true, false];
    assert.equal(encodeRow(['12', null, 'a\tb', '3.5', 'c\\'], plain), '12\t\ta\\\tb\t3.5\tc\\\\\n');
    assert.equal(encodeRow(['12', 'x\n', '', '-1', 'ok'], plain), '12\tx\\\n\t\t-1\tok\n');
    assert.equal(encodeRow(['12', 'x', '', '-1', 'ok'], plain), '12\tx\t\t-1\tok\n');
  });
});

describe('decodeRow', () => {
  it('inverts encodeRow for awkward values', () => {
    const fields = ['\\', '\\\\N', '\t', '\r\n', 'a\\', '\\.', 'plain', '😀'];
    assert.deepEqual(decodeRow(encodeRow(fields)), fields);
  });
  it('maps empty fields to null', () => assert.deepEqual(decodeRow('\t\tx\t\n'), [null, null, 'x', null]));
  it('keeps an escaped final LF as data', () => assert.deepEqual(decodeRow('a\\\n'), ['a\n']));
  it('rejects unescaped LF inside a row', () => assert.throws(() => decodeRow('a\nb'), /unescaped LF/));
  it('round-trips random strings', () => {
    let seed = 12345;
    const next = (): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed;
    };
    const alphabet = ['a', 'Z', '\\', '\t', '\n', '\r', '\u0000', 'N', '.', '😀', 'é', '"'];
    for (let n = 0; n < 2000; n++) {
      const fields: (string | null)[] = [];
      const width = 1 + (next() % 5);
      for (let f = 0; f < width; f++) {
        let s = '';
        const len = next() % 12;
        for (let i = 0; i < len; i++) s += alphabet[next() % alphabet.length];
        fields.push(next() % 7 === 0 ? null : s);
      }
      const expected = fields.map((f) => (f ? f.replaceAll('\u0000', '\uFFFD') : null));
      assert.deepEqual(decodeRow(encodeRow(fields)), expected, JSON.stringify(fields));
    }
  });
});
