/**
 * The review of a window replace (what the replay changes in a table, before it
 * commits), computed by the warehouse inside the load's transaction, over the
 * window's rows before the DELETE and over the staged rows inside the window (the
 * rows the INSERT moves). Two scans per side: rows per Pacific wall-clock hour
 * (reading only `time`; before the DELETE it stands in for the load's count), and
 * one ungrouped row with per column `count(col)` (NULLs = rows - count) and, for
 * numeric columns, min and max (not with `--no-review-columns`). Node only
 * compares the two sides; no row is read into Node.
 *
 * Hours: the `time` column holds Pacific wall-clock timestamps (zone-less, see
 * worker/transform/timefmt.ts `formatPacific`), so grouping by its hour is
 * grouping by Pacific wall-clock hour. On the fall-back day the repeated
 * 01:00 hour is one wall-clock hour and one group (both of its real hours;
 * `repeated` says so); on the spring-forward day the 02:00 hour does not exist
 * and is not listed.
 */
import { IANAZone } from 'luxon';
import { quoteIdent } from './sql.js';
import type { WarehouseColumn } from './table-columns.js';

const PACIFIC = IANAZone.create('America/Los_Angeles');
const HOUR_MS = 3_600_000;
const TIME = quoteIdent('time');

export interface ReviewOptions {
  /** Flag a column whose NULL share rises by more than this (0.2 = 20 points). */
  nullRise: number;
  /** Roll back a flagged table (status `review_refused`). */
  failOnReview: boolean;
  /**
   * Aggregate every column (NULL shares, min/max): the review's main cost on wide
   * tables (BENCHMARKS.md). false (`--no-review-columns`) keeps the rows per hour
   * and the shrink flag: one scan of `time` a side, the first in place of the load's count.
   */
  columns?: boolean;
}

/** One Pacific wall-clock hour of the window: rows before the load and after it. */
export interface HourReview {
  /** `YYYY-MM-DD HH:00`, Pacific wall clock. */
  hour: string;
  before: number;
  after: number;
  /** The fall-back day's repeated hour: one wall-clock hour holding two real hours. */
  repeated?: true;
}

export interface ColumnReview {
  name: string;
  /** information_schema `data_type` of the table's column. */
  dataType: string;
  numeric: boolean;
  nullsBefore: number;
  nullsAfter: number;
  /** NULLs / rows; null when the side has no rows. */
  nullShareBefore: number | null;
  nullShareAfter: number | null;
  /** Numeric columns: smallest and largest value as the warehouse prints it; null without values. */
  minBefore?: string | null;
  maxBefore?: string | null;
  minAfter?: string | null;
  maxAfter?: string | null;
}

export type ReviewFlag =
  | { kind: 'hour_emptied'; hour: string; before: number; message: string }
  | { kind: 'null_rise'; column: string; before: number; after: number; message: string }
  | { kind: 'shrink'; before: number; after: number; maxShrink: number; message: string };

export interface TableReview {
  schema: string;
  table: string;
  window: { start: string; end: string };
  rowsBefore: number;
  rowsAfter: number;
  hours: HourReview[];
  /** Empty when the columns were not reviewed. */
  columns: ColumnReview[];
  /** false: `--no-review-columns`, no column was aggregated (absent in reviews stored before the flag: true). */
  columnsReviewed?: boolean;
  flags: ReviewFlag[];
  nullRise: number;
  /** Time the aggregate queries took in the warehouse. */
  seconds: number;
}

const NUMERIC_TYPES = new Set(['smallint', 'integer', 'bigint', 'real', 'double precision', 'numeric', 'decimal']);

export function isNumericType(dataType: string): boolean {
  return NUMERIC_TYPES.has(dataType.toLowerCase());
}

/** A column the review aggregates: its name and whether min/max are taken. */
export interface ReviewedColumn {
  name: string;
  dataType: string;
  numeric: boolean;
}

/** The load's columns (config order) with the table's types. */
export function reviewedColumns(
  names: readonly string[],
  actual: readonly WarehouseColumn[],
  foldCase: boolean,
): ReviewedColumn[] {
  const key = (n: string): string => (foldCase ? n.toLowerCase() : n);
  const types = new Map(actual.map((c) => [key(c.name), c.dataType]));
  return names.map((name) => {
    const dataType = types.get(key(name)) ?? 'unknown';
    return { name, dataType, numeric: isNumericType(dataType) };
  });
}

/**
 * Rows of the window in `source` (a quoted table name; parameters: [start, end])
 * per Pacific wall-clock hour: `h` the hour (`YYYY-MM-DD HH`), `n` its rows. Only
 * the `time` column is read, so it costs little more than the load's count.
 */
export function reviewHoursSql(source: string): string {
  const hour = `date_trunc('hour', ${TIME})`;
  return (
    `SELECT to_char(${hour}, 'YYYY-MM-DD HH24') AS h, count(*) AS n FROM ${source} ` +
    `WHERE ${TIME} BETWEEN $1 AND $2 GROUP BY ${hour}`
  );
}

/**
 * One row over the window in `source` (parameters: [start, end]): `n` rows,
 * `c<i>` non-NULL values of column i, `lo<i>`/`hi<i>` min/max of numeric column i
 * as text. Not grouped by hour: grouping costs about twice as much per row with
 * this many aggregates (hash table entries instead of one running state).
 * PostgreSQL, PGlite and Redshift alike (CAST AS VARCHAR).
 */
export function reviewColumnsSql(source: string, columns: readonly ReviewedColumn[]): string {
  const parts = ['count(*) AS n'];
  columns.forEach((column, i) => {
    const name = quoteIdent(column.name);
    parts.push(`count(${name}) AS c${i}`);
    if (column.numeric) {
      parts.push(`CAST(min(${name}) AS VARCHAR) AS lo${i}`, `CAST(max(${name}) AS VARCHAR) AS hi${i}`);
    }
  });
  return `SELECT ${parts.join(', ')} FROM ${source} WHERE ${TIME} BETWEEN $1 AND $2`;
}

/** What one side's queries say. */
export interface SideAggregate {
  /** `YYYY-MM-DD HH` -> rows. */
  hours: Map<string, number>;
  rows: number;
  nonNull: number[];
  min: (string | null)[];
  max: (string | null)[];
}

function count(value: unknown): number {
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

function text(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

/**
 * One side from its hours rows (reviewHoursSql) and its column row
 * (reviewColumnsSql; null when the columns are not reviewed: the rows are then
 * the hours' sum).
 */
export function sideAggregate(
  hourRows: readonly Record<string, unknown>[],
  columnRow: Record<string, unknown> | null | undefined,
  columns: readonly ReviewedColumn[],
): SideAggregate {
  const hours = new Map<string, number>();
  for (const row of hourRows) hours.set(String(row.h), (hours.get(String(row.h)) ?? 0) + count(row.n));
  if (columnRow === null) {
    let rows = 0;
    for (const n of hours.values()) rows += n;
    return { hours, rows, nonNull: [], min: [], max: [] };
  }
  const row = columnRow ?? {};
  return {
    hours,
    rows: count(row.n),
    nonNull: columns.map((_, i) => count(row[`c${i}`])),
    min: columns.map((c, i) => (c.numeric ? text(row[`lo${i}`]) : null)),
    max: columns.map((c, i) => (c.numeric ? text(row[`hi${i}`]) : null)),
  };
}

/** A setting's value now (parameter: its name). */
export const CURRENT_SETTING_SQL = 'SELECT current_setting($1) AS v';
/** Sets a setting until the end of the transaction (parameters: name, value); a rollback undoes it. */
export const SET_LOCAL_SQL = 'SELECT set_config($1, $2, true)';

/**
 * The PostgreSQL settings the review's queries run with (set for them in the load's
 * transaction, and set back after them), where the server has them:
 * - `jit` off: JIT compiles the column query's ~100 aggregates on every run, which
 *   costs more than it saves on a window of a million rows (PostgreSQL; PGlite has no JIT);
 * - `enable_sort` off: the staging table has no statistics, so the planner expects
 *   about as many hours as rows and sorts them all to count ~25 groups. Hashed
 *   instead: 0.30-0.36 s against 0.41-0.54 s on 1M rows, and bench:replay's review
 *   0.43-0.52 s against 0.72-1.01 s with the rows per hour only.
 */
export function reviewSettings(
  server: { jit: boolean; planner: boolean },
  columnsReviewed: boolean,
): [name: string, value: string][] {
  const settings: [string, string][] = [];
  if (server.jit && columnsReviewed) settings.push(['jit', 'off']);
  if (server.planner) settings.push(['enable_sort', 'off']);
  return settings;
}

/** Pacific offset (ms east of UTC) at an instant. */
function offsetMs(instantMs: number): number {
  return PACIFIC.offset(instantMs) * 60_000;
}

/** How many real hours a Pacific wall-clock hour (given as "wall ms as if UTC") has: 0 (DST gap), 1, or 2 (fall back). */
export function realHoursOf(wallHourMs: number): number {
  let real = 0;
  for (const offset of [-7 * HOUR_MS, -8 * HOUR_MS]) if (offsetMs(wallHourMs - offset) === offset) real++;
  return real;
}

function wallMs(text: string): number {
  return Date.parse(`${text.slice(0, 13).replace(' ', 'T')}:00:00Z`);
}

function hourText(ms: number): string {
  return new Date(ms).toISOString().slice(0, 13).replace('T', ' ');
}

/** Every Pacific wall-clock hour (`YYYY-MM-DD HH`) the window touches that exists, and whether it is repeated. */
export function windowHours(window: { start: string; end: string }): { hour: string; repeated: boolean }[] {
  const hours: { hour: string; repeated: boolean }[] = [];
  const last = wallMs(window.end);
  for (let h = wallMs(window.start); h <= last; h += HOUR_MS) {
    const real = realHoursOf(h);
    if (real > 0) hours.push({ hour: hourText(h), repeated: real === 2 });
  }
  return hours;
}

function share(nulls: number, rows: number): number | null {
  return rows > 0 ? nulls / rows : null;
}

function points(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/** The review of one table from its two sides, with what looks wrong flagged. */
export function buildReview(input: {
  schema: string;
  table: string;
  window: { start: string; end: string };
  /** Empty with `columnsReviewed` false. */
  columns: readonly ReviewedColumn[];
  columnsReviewed?: boolean;
  before: SideAggregate;
  after: SideAggregate;
  nullRise: number;
  maxShrink: number;
  seconds: number;
}): TableReview {
  const { before, after } = input;
  const listed = new Map(windowHours(input.window).map((h) => [h.hour, h.repeated]));
  // A row at an hour the window does not list (e.g. in the DST gap) is shown, not hidden.
  for (const hour of [...before.hours.keys(), ...after.hours.keys()]) if (!listed.has(hour)) listed.set(hour, false);
  const hours: HourReview[] = [...listed.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([hour, repeated]) => ({
      hour: `${hour}:00`,
      before: before.hours.get(hour) ?? 0,
      after: after.hours.get(hour) ?? 0,
      ...(repeated ? { repeated: true as const } : {}),
    }));
  const columns: ColumnReview[] = input.columns.map((column, i) => {
    const nullsBefore = before.rows - before.nonNull[i]!;
    const nullsAfter = after.rows - after.nonNull[i]!;
    const review: ColumnReview = {
      name: column.name,
      dataType: column.dataType,
      numeric: column.numeric,
      nullsBefore,
      nullsAfter,
      nullShareBefore: share(nullsBefore, before.rows),
      nullShareAfter: share(nullsAfter, after.rows),
    };
    if (column.numeric) {
      review.minBefore = before.min[i] ?? null;
      review.maxBefore = before.max[i] ?? null;
      review.minAfter = after.min[i] ?? null;
      review.maxAfter = after.max[i] ?? null;
    }
    return review;
  });

  const flags: ReviewFlag[] = [];
  if (before.rows > 0 && after.rows < (1 - input.maxShrink) * before.rows) {
    const lost = (before.rows - after.rows) / before.rows;
    flags.push({
      kind: 'shrink',
      before: before.rows,
      after: after.rows,
      maxShrink: input.maxShrink,
      message: `rows ${before.rows} -> ${after.rows} (${points(lost)} fewer, more than the shrink guard's ${points(input.maxShrink)})`,
    });
  }
  for (const hour of hours) {
    if (hour.before > 0 && hour.after === 0) {
      flags.push({
        kind: 'hour_emptied',
        hour: hour.hour,
        before: hour.before,
        message: `hour ${hour.hour}: ${hour.before} rows -> none`,
      });
    }
  }
  for (const column of columns) {
    const { nullShareBefore: was, nullShareAfter: now } = column;
    if (was === null || now === null || !(now - was > input.nullRise)) continue;
    flags.push({
      kind: 'null_rise',
      column: column.name,
      before: was,
      after: now,
      message: `column ${column.name}: NULL share ${points(was)} -> ${points(now)} (up by more than ${(input.nullRise * 100).toFixed(1)} points)`,
    });
  }
  return {
    schema: input.schema,
    table: input.table,
    window: { ...input.window },
    rowsBefore: before.rows,
    rowsAfter: after.rows,
    hours,
    columns,
    ...(input.columnsReviewed === false ? { columnsReviewed: false } : {}),
    flags,
    nullRise: input.nullRise,
    seconds: input.seconds,
  };
}

/** Flags that make `--fail-on-review` roll the table back (a shrink accepted by --allow-shrink does not). */
export function refusingFlags(review: TableReview, allowShrink: boolean): ReviewFlag[] {
  return review.flags.filter((flag) => !(flag.kind === 'shrink' && allowShrink));
}
