/**
 * Gzip TSV row files built in memory, and the window-replace fixture shared by
 * the warehouse tests (PostgreSQL and PGlite run the same scenario, so they
 * must start from the same table and expect the same rows).
 */
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { quoteIdent } from '../../worker/warehouse/sql.js';
import type { ExpectedColumn } from '../../worker/warehouse/table-columns.js';
import type { TableLoad } from '../../worker/warehouse/warehouse.js';

export type Field = string | number | null;

/** One TSV field as the row writer encodes it (common.md): `\`, TAB, LF, CR escaped; NULL is empty. */
function field(value: Field): string {
  if (value === null) return '';
  return String(value).replace(/[\\\t\n\r]/g, (c) => `\\${c}`);
}

/** Rows as TSV text, each row ending with LF. */
export function tsv(rows: Field[][]): string {
  return rows.map((row) => row.map(field).join('\t') + '\n').join('');
}

export function gzipRows(rows: Field[][]): Buffer {
  return gzipSync(Buffer.from(tsv(rows), 'utf8'));
}

export const WINDOW = { start: '2024-03-01 10:00:00', end: '2024-03-01 11:00:00' };

export const TRICKY = 'tab\there, newline\nthere, cr\r, backslash \\ and \\N, quote " \' and ünïcødé ✓';

/** In-memory files keyed by object key: the list a load names, and how to open each. */
export function files(map: Record<string, Buffer>): {
  list: TableLoad['files'];
  open: (key: string) => Promise<Readable>;
} {
  return {
    list: Object.keys(map).map((key) => ({ key, url: `s3://bucket/${key}` })),
    open: async (key) => {
      const body = map[key];
      if (!body) throw new Error(`no such test file ${key}`);
      return Readable.from([body]);
    },
  };
}

/** The config's columns of the test tables: the fields of the test files, in this order. */
export const COLUMNS: readonly ExpectedColumn[] = [
  { name: 'time', type: 'TIMESTAMP' },
  { name: 'n', type: 'INT' },
  { name: 's', type: 'VARCHAR(200)' },
];

/** A load of `physical.<table>` over WINDOW. */
export function load(table: string, list: TableLoad['files'], extra: Partial<TableLoad> = {}): TableLoad {
  return {
    schema: 'physical',
    table,
    columns: COLUMNS,
    window: WINDOW,
    files: list,
    maxShrink: 0.9,
    allowShrink: false,
    ...extra,
  };
}

/**
 * Creates schema `physical` with tables `ev` (two rows inside WINDOW, one on
 * each side of it) and `other` (one row that a load of `ev` must not touch).
 */
export const CREATE_TEST_TABLES = `CREATE SCHEMA physical;
     CREATE TABLE physical.ev (time timestamp, n int, s varchar(200));
     CREATE TABLE physical.other (time timestamp, n int, s varchar(200));
     INSERT INTO physical.ev VALUES
       ('2024-03-01 09:59:59', 1, 'before window'),
       ('2024-03-01 10:00:00', 2, 'old in window'),
       ('2024-03-01 10:30:00', 3, 'old in window'),
       ('2024-03-01 11:00:01', 4, 'after window');
     INSERT INTO physical.other VALUES ('2024-03-01 10:30:00', 5, 'other table');`;

/** Rows of `physical.<table>` as text (`time|n|s`, NULL spelled out), in a stable order; column `r`. */
export function contentsQuery(table: string): string {
  return `SELECT concat_ws('|', to_char(time, 'YYYY-MM-DD HH24:MI:SS'), coalesce(n::text, 'NULL'), coalesce(s, 'NULL')) AS r
       FROM physical.${quoteIdent(table)} ORDER BY 1`;
}

/** Two files for `ev`: rows inside WINDOW (tricky text, NULL, empty string) and one row past its end. */
export const GOOD = {
  'run/ev/v1/a.gz': gzipRows([
    ['2024-03-01 10:00:00', 10, TRICKY],
    ['2024-03-01 10:15:00', null, ''],
    ['2024-03-01 10:20:00', 11, null],
  ]),
  'run/ev/v1/b.gz': gzipRows([
    ['2024-03-01 11:00:00', 12, 'last second of the window'],
    ['2024-03-01 11:00:02', 13, 'outside: dropped'],
  ]),
};

/** `contentsQuery('ev')` after GOOD replaced WINDOW of the CREATE_TEST_TABLES table. */
export const EXPECTED = [
  '2024-03-01 09:59:59|1|before window',
  `2024-03-01 10:00:00|10|${TRICKY}`,
  '2024-03-01 10:15:00|NULL|NULL',
  '2024-03-01 10:20:00|11|NULL',
  '2024-03-01 11:00:00|12|last second of the window',
  '2024-03-01 11:00:01|4|after window',
].sort();

/**
 * Tables whose columns differ from COLUMNS, each with one row inside WINDOW
 * (run after CREATE_TEST_TABLES): `reordered` has the config's columns in
 * another order and a wider type (bigint for INT, text for VARCHAR(200)), so it
 * loads by name; the others must be refused and left as they are.
 */
export const CREATE_COLUMN_TEST_TABLES = `
     CREATE TABLE physical.reordered (s text, n bigint, time timestamp);
     CREATE TABLE physical.missing_col (time timestamp, n int);
     CREATE TABLE physical.extra_col (time timestamp, n int, s varchar(200), note text);
     CREATE TABLE physical.wrong_type (time timestamp, n varchar(20), s varchar(100));
     INSERT INTO physical.reordered (time, n, s) VALUES
       ('2024-03-01 09:59:59', 1, 'before window'),
       ('2024-03-01 10:00:00', 2, 'old in window'),
       ('2024-03-01 10:30:00', 3, 'old in window'),
       ('2024-03-01 11:00:01', 4, 'after window');
     INSERT INTO physical.missing_col VALUES ('2024-03-01 10:30:00', 5);
     INSERT INTO physical.extra_col VALUES ('2024-03-01 10:30:00', 6, 'kept', 'a note');
     INSERT INTO physical.wrong_type VALUES ('2024-03-01 10:30:00', '7', 'kept');`;

/** Why each refused table of CREATE_COLUMN_TEST_TABLES is refused. */
export const COLUMN_REFUSALS: Record<string, string> = {
  missing_col: 'missing in the table: "s" VARCHAR(200)',
  extra_col: 'not in the config: "note" text',
  wrong_type:
    'type mismatch: "n" is character varying(20), the config writes INT, ' +
    '"s" is character varying(100), the config writes VARCHAR(200)',
};

/** The message of a refused table of CREATE_COLUMN_TEST_TABLES. */
export function columnRefusal(table: string): string {
  return (
    `table physical.${table} does not match the config's columns (${COLUMN_REFUSALS[table] ?? '?'}); ` +
    'the table was left as it was: ALTER it to match, or fix the config'
  );
}

/** Every row of a table as text, every column by name, in a stable order: shows that a refused table is unchanged. */
export function wholeTableQuery(table: string): string {
  return `SELECT t::text AS r FROM physical.${quoteIdent(table)} t ORDER BY 1`;
}
