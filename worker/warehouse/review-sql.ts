/**
 * The review of a window replace (what the replay changes in a table, before it
 * commits), computed by the warehouse inside the load's transaction: one
 * aggregate query over the window's rows before the DELETE, one over the staged
 * rows inside the window (the rows the INSERT moves). Each query is one scan,
 * grouped by Pacific wall-clock hour, with per column `count(col)` (NULLs =
 * rows - count) and, for numeric columns, min and max; Node only adds the hours
 * up and compares the two sides. No row is read into Node.
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
  columns: ColumnReview[];
  flags: ReviewFlag[];
  nullRise: number;
  /** Time the two aggregate queries took in the warehouse. */
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
 * One scan of `source` (a quoted table name) restricted to the window
 * (parameters: [start, end]), one result row per Pacific wall-clock hour:
 * `h` the hour, `n` its rows, `c<i>` non-NULL values of column i, `lo<i>`/`hi<i>`
 * min/max of numeric column i as text. PostgreSQL, PGlite and Redshift alike
 * (date_trunc, to_char, CAST AS VARCHAR).
 */
export function reviewAggregateSql(source: string, columns: readonly ReviewedColumn[]): string {
  const hour = `date_trunc('hour', ${TIME})`;
  const parts = [`to_char(${hour}, 'YYYY-MM-DD HH24') AS h`, 'count(*) AS n'];
  columns.forEach((column, i) => {
    const name = quoteIdent(column.name);
    parts.push(`count(${name}) AS c${i}`);
    if (column.numeric) {
      parts.push(`CAST(min(${name}) AS VARCHAR) AS lo${i}`, `CAST(max(${name}) AS VARCHAR) AS hi${i}`);
    }
  });
  return `SELECT ${parts.join(', ')} FROM ${source} WHERE ${TIME} BETWEEN $1 AND $2 GROUP BY ${hour}`;
}

/** What one side's aggregate says, summed over its hours. */
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

/** Numeric order of two values printed by the warehouse: exact for integers (bigint beyond 2^53), else as doubles. */
export function compareNumericText(a: string, b: string): number {
  const integer = /^-?\d+$/;
  if (integer.test(a) && integer.test(b)) {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return Number(a) - Number(b);
}

/** Sums the per-hour rows of one aggregate query. */
export function sumAggregate(
  rows: readonly Record<string, unknown>[],
  columns: readonly ReviewedColumn[],
): SideAggregate {
  const side: SideAggregate = {
    hours: new Map(),
    rows: 0,
    nonNull: columns.map(() => 0),
    min: columns.map(() => null),
    max: columns.map(() => null),
  };
  for (const row of rows) {
    const n = count(row.n);
    const hour = String(row.h);
    side.hours.set(hour, (side.hours.get(hour) ?? 0) + n);
    side.rows += n;
    columns.forEach((column, i) => {
      side.nonNull[i]! += count(row[`c${i}`]);
      if (!column.numeric) return;
      const lo = row[`lo${i}`];
      const hi = row[`hi${i}`];
      if (lo !== null && lo !== undefined) {
        const text = String(lo);
        if (side.min[i] === null || compareNumericText(text, side.min[i]!) < 0) side.min[i] = text;
      }
      if (hi !== null && hi !== undefined) {
        const text = String(hi);
        if (side.max[i] === null || compareNumericText(text, side.max[i]!) > 0) side.max[i] = text;
      }
    });
  }
  return side;
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
  columns: readonly ReviewedColumn[];
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
    flags,
    nullRise: input.nullRise,
    seconds: input.seconds,
  };
}

/** Flags that make `--fail-on-review` roll the table back (a shrink accepted by --allow-shrink does not). */
export function refusingFlags(review: TableReview, allowShrink: boolean): ReviewFlag[] {
  return review.flags.filter((flag) => !(flag.kind === 'shrink' && allowShrink));
}
