/**
 * Property test: random strings written through OutputWriters into gzip TSV
 * files and loaded by a real PostgreSQL text COPY read back exactly (up to the
 * documented substitutions). Reproduce a failure with SPADE_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { it } from 'node:test';
import { createGunzip } from 'node:zlib';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { POSTGRES_COPY_OPTIONS } from '../../../worker/output/redshift-copy.js';
import { OutputWriters } from '../../../worker/output/writers.js';
import { DirStore } from '../../helpers/dirstore.js';
import { startPostgres } from '../../helpers/postgres.js';
import { prng } from '../../../scripts/generate/edge-logs.js';

const RANDOM_ROWS = 3000;
const VALUE_COLUMNS = 4;

/** Whole values that have tripped up COPY encoders somewhere. */
const SPECIAL_VALUES = [
  '',
  '\\N',
  '\\\\N',
  'N',
  '\\.',
  '.',
  '\\',
  '\\\\',
  '\t',
  '\n',
  '\r',
  '\r\n',
  '\n\r',
  '\u0000',
  'a\u0000b',
  '"',
  "'",
  '""',
  'NULL',
  'null',
  ' ',
  '  leading and trailing  ',
  '\\0',
  '\\x41',
  '\\n',
  '\\t',
  '\\r',
  '\\b\\f\\v',
  '\\101',
  '\\\n',
  '\\\t',
  '\\\r',
  'ends with backslash\\',
  '\uFEFF',
  '\uFFFF',
  '\uFFFE',
  '\uFDD0',
  '\u{10FFFF}',
  '\u{1FFFE}',
  '\u2028\u2029',
  '😀👍🏽',
  '\uD800',
  '\uDFFF',
  'x\uDBFFy',
  '\u0001\u001f\u007f\u0080\u009f',
];

function randomPiece(rand: () => number): string {
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  const kind = rand();
  if (kind < 0.4) return String.fromCharCode(int(0x20, 0x7e));
  if (kind < 0.55) return ['\t', '\n', '\r', '\\', '"', "'", '\u0000', '.', 'N'][int(0, 8)];
  if (kind < 0.62) return ['\\N', '\\.', '\r\n', '\\\\', '\\n', '\\0', '\\x7f'][int(0, 6)];
  if (kind < 0.67) return String.fromCharCode(int(0x01, 0x1f));
  if (kind < 0.82) {
    const cp = int(0x80, 0xfffd);
    return cp >= 0xd800 && cp <= 0xdfff ? '\uFFFD' : String.fromCharCode(cp);
  }
  if (kind < 0.96) return String.fromCodePoint(int(0x10000, 0x10ffff));
  return String.fromCharCode(int(0xd800, 0xdfff)); // a lone surrogate (or, by chance, half of a pair)
}

function randomValue(rand: () => number): string | null {
  const r = rand();
  if (r < 0.1) return null;
  if (r < 0.15) return '';
  if (r < 0.25) return SPECIAL_VALUES[Math.floor(rand() * SPECIAL_VALUES.length)];
  const pieces = r < 0.27 ? 1000 + Math.floor(rand() * 19000) : 1 + Math.floor(rand() * 40);
  let s = '';
  for (let i = 0; i < pieces; i++) s += randomPiece(rand);
  return s;
}

/** What the database must hold: '' and null are NULL, NUL and lone surrogates become U+FFFD. */
function expectedValue(v: string | null): string | null {
  if (v === null || v === '') return null;
  let out = '';
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0) out += '\uFFFD';
    else if (c >= 0xd800 && c <= 0xdbff) {
      const d = v.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        out += v[i] + v[i + 1];
        i++;
      } else out += '\uFFFD';
    } else if (c >= 0xdc00 && c <= 0xdfff) out += '\uFFFD';
    else out += v[i];
  }
  return out;
}

it('random strings survive OutputWriters -> gzip TSV -> PostgreSQL text COPY exactly', async (t) => {
  const server = await startPostgres(t);
  if (!server) return;
  const seed = process.env.SPADE_SEED ? Number(process.env.SPADE_SEED) : randomInt(2 ** 31);
  t.diagnostic(`seed ${seed} (reproduce with SPADE_SEED=${seed})`);
  const rand = prng(seed);

  // Every special value in every column first, then random rows.
  const input: (string | null)[][] = [];
  for (let i = 0; i < SPECIAL_VALUES.length; i++) {
    input.push(Array.from({ length: VALUE_COLUMNS }, (_, c) => SPECIAL_VALUES[(i + c) % SPECIAL_VALUES.length]));
  }
  for (let i = 0; i < RANDOM_ROWS; i++) input.push(Array.from({ length: VALUE_COLUMNS }, () => randomValue(rand)));

  const store = DirStore.temp(t);
  const writers = new OutputWriters({ store, prefix: 'run', fileTag: 'rt-a1', rotateBytes: 256 * 1024 });
  input.forEach((values, id) => writers.writeRow('roundtrip', 1, [String(id), ...values]));
  const files = await writers.close();
  assert.ok(files.length > 1, `expected rotation into several files, got ${files.length}`);
  t.diagnostic(`${input.length} rows x ${VALUE_COLUMNS} values in ${files.length} files`);
  assert.equal(
    files.reduce((n, f) => n + f.rows, 0),
    input.length,
  );

  const client = new pg.Client({ connectionString: await server.createDatabase('roundtrip') });
  await client.connect();
  t.after(() => client.end());
  const cols = Array.from({ length: VALUE_COLUMNS }, (_, c) => `c${c} text`).join(', ');
  await client.query(`CREATE TABLE t (id int NOT NULL, ${cols})`);
  for (const f of files) {
    const copy = client.query(copyFrom(`COPY t FROM STDIN WITH ${POSTGRES_COPY_OPTIONS}`));
    await pipeline(createReadStream(store.pathOf(f.key)), createGunzip(), copy);
    assert.equal(copy.rowCount, f.rows, `rows loaded from ${f.key} (seed ${seed})`);
  }

  const { rows } = await client.query<Record<string, string | null> & { id: number }>('SELECT * FROM t ORDER BY id');
  assert.equal(rows.length, input.length, `row count (seed ${seed})`);
  const mismatches: string[] = [];
  rows.forEach((row, id) => {
    assert.equal(row.id, id, `ids are dense (seed ${seed})`);
    for (let c = 0; c < VALUE_COLUMNS; c++) {
      const want = expectedValue(input[id][c]);
      const got = row[`c${c}`];
      if (got !== want && mismatches.length < 10) {
        mismatches.push(
          `row ${id} c${c}: input ${JSON.stringify(input[id][c])} want ${JSON.stringify(want)} got ${JSON.stringify(got)}`,
        );
      }
    }
  });
  assert.deepEqual(mismatches, [], `seed ${seed}`);
});
