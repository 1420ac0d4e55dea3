/**
 * Gzip TSV row files built in memory, and the window-replace fixture shared by
 * the warehouse tests (PostgreSQL and PGlite run the same scenario, so they
 * must start from the same table and expect the same rows).
 */
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { quoteIdent } from '../../driver/warehouse/sql.js';
import type { TableLoad } from '../../driver/warehouse/warehouse.js';

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

/** A load of `physical.<table>` over WINDOW. */
export function load(table: string, list: TableLoad['files'], extra: Partial<TableLoad> = {}): TableLoad {
  return { schema: 'physical', table, window: WINDOW, files: list, maxShrink: 0.9, allowShrink: false, ...extra };
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
