/**
 * Standard input cut into lines for the pool (stdin-lines.ts): the same
 * lines, numbers and sources however the pipe splits the bytes, globs decoded
 * and deduplicated, bad lines reported with their true line numbers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deflateRawSync } from 'node:zlib';
import { encodeGlobLine } from '../../../worker/process/globs.js';
import { StdinLines, type StdinLineSink } from '../../../worker/process/stdin-lines.js';

interface Seen {
  /** `<source> <lineNo> <text>` of every line passed on. */
  lines: string[];
  /** `<lineNo> <reason> <text head>` of every line reported. */
  bad: string[];
  duplicates: number;
}

function sink(seen: Seen): StdinLineSink {
  return {
    async lines(source, firstLineNo, lines, data) {
      assert.equal(data.at(-1), 0x0a, 'a run ends with LF');
      const texts = data.toString('utf8').slice(0, -1).split('\n');
      assert.equal(texts.length, lines, 'a run holds the lines it says');
      texts.forEach((text, k) => seen.lines.push(`${source} ${firstLineNo + k} ${text}`));
    },
    badLine(lineNo, reason, text) {
      seen.bad.push(`${lineNo} ${reason} ${text.slice(0, 12)}`);
    },
    duplicateGlob() {
      seen.duplicates++;
    },
  };
}

/** Feeds `input` cut into pieces of `pieceBytes` and returns what the sink saw. */
async function cut(input: Buffer, pieceBytes: number): Promise<Seen> {
  const seen: Seen = { lines: [], bad: [], duplicates: 0 };
  const lines = new StdinLines({ maxLineBytes: 100, runBytes: 64 });
  const s = sink(seen);
  for (let at = 0; at < input.length; at += pieceBytes) await lines.push(input.subarray(at, at + pieceBytes), s);
  await lines.end(s);
  assert.equal(lines.pendingBytes, 0);
  return seen;
}

test('lines, globs and bad lines: the same numbers and sources however stdin is split', async () => {
  const glob = encodeGlobLine(
    [
      { uuid: 'g1', n: 1 },
      { uuid: 'g2', n: 'ü' },
    ],
    (b) => deflateRawSync(b),
  );
  const input = Buffer.from(
    [
      '{"a":1}',
      glob,
      'Abc def', // starts with A, not a glob
      '{"b":"crlf"}\r',
      '',
      glob, // a duplicate
      'AQAAAAAA', // not valid DEFLATE
      'x'.repeat(150), // over the limit
      '{"c":"ü"}',
      'tail without LF',
    ].join('\n'),
  );
  const whole = await cut(input, input.length);
  assert.deepEqual(whole.lines, [
    'stdin 1 {"a":1}',
    'stdin-glob 2 {"uuid":"g1","n":1}',
    'stdin-glob 3 {"uuid":"g2","n":"ü"}',
    'stdin 3 Abc def',
    'stdin 4 {"b":"crlf"}\r', // as read: the threads' reader drops the CR
    'stdin 5 ',
    'stdin 9 {"c":"ü"}',
    'stdin 10 tail without LF',
  ]);
  assert.deepEqual(whole.bad, ['7 bad_glob glob is not ', '8 line_too_long xxxxxxxxxxxx']);
  assert.equal(whole.duplicates, 1);
  for (const pieceBytes of [1, 2, 3, 7, 64, 100, 101, 1000]) {
    assert.deepEqual(await cut(input, pieceBytes), whole, `pieces of ${pieceBytes} bytes`);
  }
});
