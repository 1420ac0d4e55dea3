/**
 * The review's cost in a load (bench:replay): a table of 50 columns (time, 20
 * bigint, 10 double precision, 19 varchar) with `rows` rows in the window,
 * replaced by `rows` rows of gzip TSV files through the PostgreSQL warehouse,
 * the way a replay loads it: once to fill the window, then measured, alternating
 * a load with the review, one with the rows per hour only (`--no-review-columns`)
 * and one without. The review's share is its aggregate queries' time over the
 * whole load transaction's time.
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { PgServer } from '../../test/helpers/postgres.js';
import { prng } from '../generate/edge-logs.js';
import { PostgresWarehouse } from '../../worker/warehouse/postgres.js';
import { qualifiedName, quoteIdent } from '../../worker/warehouse/sql.js';
import type { ExpectedColumn } from '../../worker/warehouse/table-columns.js';
import type { TableLoad, TableLoadResult } from '../../worker/warehouse/warehouse.js';

const TABLE = 'review_wide';
const WINDOW = { start: '2023-11-05 00:00:00', end: '2023-11-05 23:59:59' };
const WINDOW_START_MS = Date.UTC(2023, 10, 5, 0, 0, 0);
const ROWS_PER_FILE = 250_000;

export interface ReviewCost {
  rows: number;
  columns: number;
  /** Load transactions with the review: whole load, and the review's part. */
  withReview: { loadSecs: number; reviewSecs: number }[];
  /** Loads with the rows-per-hour review only (`--no-review-columns`). */
  hoursOnly: { loadSecs: number; reviewSecs: number }[];
  /** The same load without the review. */
  withoutReview: number[];
  tsvMb: number;
}

function wideColumns(): ExpectedColumn[] {
  const columns: ExpectedColumn[] = [{ name: 'time', type: 'TIMESTAMP' }];
  for (let i = 1; i <= 20; i++) columns.push({ name: `b${i}`, type: 'BIGINT' });
  for (let i = 1; i <= 10; i++) columns.push({ name: `d${i}`, type: 'DOUBLE PRECISION' });
  for (let i = 1; i <= 19; i++) columns.push({ name: `s${i}`, type: 'VARCHAR(64)' });
  return columns;
}

/** Rows spread over the window's 25 real hours of wall clock text, ~2% NULLs per column. */
async function writeFiles(
  dir: string,
  rows: number,
  columns: ExpectedColumn[],
): Promise<{ paths: string[]; bytes: number }> {
  mkdirSync(dir, { recursive: true });
  const rnd = prng(50);
  const paths: string[] = [];
  let bytes = 0;
  for (let first = 0; first < rows; first += ROWS_PER_FILE) {
    const count = Math.min(ROWS_PER_FILE, rows - first);
    const path = join(dir, `part-${paths.length}.tsv.gz`);
    const chunks = (function* (): Generator<string> {
      let buffer: string[] = [];
      for (let r = 0; r < count; r++) {
        const wall = new Date(WINDOW_START_MS + Math.floor(((first + r) / rows) * 86_399_000));
        const fields = [wall.toISOString().slice(0, 19).replace('T', ' ')];
        for (let c = 1; c < columns.length; c++) {
          if (rnd() < 0.02) {
            fields.push('');
            continue;
          }
          const type = columns[c]!.type;
          if (type === 'BIGINT') fields.push(String(Math.floor(rnd() * 1e9)));
          else if (type === 'DOUBLE PRECISION') fields.push((rnd() * 1000).toFixed(3));
          else fields.push(`w${Math.floor(rnd() * 1e5)}`);
        }
        buffer.push(fields.join('\t'));
        if (buffer.length === 5000) {
          yield buffer.join('\n') + '\n';
          buffer = [];
        }
      }
      if (buffer.length) yield buffer.join('\n') + '\n';
    })();
    let size = 0;
    const counted = Readable.from(chunks).on('data', (c: Buffer | string) => (size += Buffer.byteLength(c)));
    await pipeline(counted, createGzip({ level: 1 }), createWriteStream(path));
    bytes += size;
    paths.push(path);
  }
  return { paths, bytes };
}

/** Loads `rows` rows into a 50-column table `repeats` times per mode (full review, hours only, none), alternating. */
export async function measureReviewCost(opts: {
  pg: PgServer;
  db: string;
  dir: string;
  rows: number;
  repeats: number;
  say: (line: string) => void;
}): Promise<ReviewCost> {
  const columns = wideColumns();
  const target = qualifiedName('physical', TABLE);
  await opts.pg.query(opts.db, 'CREATE SCHEMA IF NOT EXISTS physical');
  await opts.pg.query(
    opts.db,
    `CREATE TABLE ${target} (${columns.map((c) => `${quoteIdent(c.name)} ${c.type}`).join(', ')})`,
  );
  opts.say(`review cost: writing ${opts.rows} rows x ${columns.length} columns of gzip TSV ...`);
  const { paths, bytes } = await writeFiles(opts.dir, opts.rows, columns);
  const warehouse = await PostgresWarehouse.open(opts.db, { poolSize: 1 });
  type Mode = 'full' | 'hours' | 'none';
  const load = (mode: Mode): Promise<TableLoadResult> => {
    const spec: TableLoad = {
      schema: 'physical',
      table: TABLE,
      columns,
      window: WINDOW,
      files: paths.map((p) => ({ key: p, url: p })),
      maxShrink: 0.1,
      allowShrink: false,
      ...(mode === 'none' ? {} : { review: { nullRise: 0.2, failOnReview: false, columns: mode === 'full' } }),
    };
    return warehouse.replaceWindow(spec, async (key) => createReadStream(key));
  };
  const cost: ReviewCost = {
    rows: opts.rows,
    columns: columns.length,
    withReview: [],
    hoursOnly: [],
    withoutReview: [],
    tsvMb: bytes / 1e6,
  };
  try {
    const first = await load('none');
    if (first.status !== 'loaded') throw new Error(`review cost: first load ${first.status}: ${first.error ?? ''}`);
    await opts.pg.query(opts.db, `VACUUM ANALYZE ${target}`);
    for (let i = 0; i < opts.repeats; i++) {
      for (const mode of ['full', 'hours', 'none'] as const) {
        const what = { full: 'with the review', hours: 'with rows per hour only', none: 'without the review' }[mode];
        opts.say(`review cost: load ${i + 1}/${opts.repeats} ${what} ...`);
        const r = await load(mode);
        if (r.status !== 'loaded' || r.inserted !== opts.rows || r.before !== opts.rows) {
          throw new Error(
            `review cost: load ${r.status} (before ${r.before}, inserted ${r.inserted}): ${r.error ?? ''}`,
          );
        }
        const measured = { loadSecs: r.seconds, reviewSecs: r.review?.seconds ?? NaN };
        if (mode === 'full') cost.withReview.push(measured);
        else if (mode === 'hours') cost.hoursOnly.push(measured);
        else cost.withoutReview.push(r.seconds);
        // Each load leaves the old rows dead; vacuum so every load starts alike.
        await opts.pg.query(opts.db, `VACUUM ${target}`);
      }
    }
  } finally {
    await warehouse.close();
  }
  return cost;
}

const f2 = (n: number): string => n.toFixed(2);

/** The BENCHMARKS.md lines of a measurement. */
export function reviewCostLines(cost: ReviewCost): string[] {
  const shares = cost.withReview.map((r) => r.reviewSecs / r.loadSecs);
  const hourShares = cost.hoursOnly.map((r) => r.reviewSecs / r.loadSecs);
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const pct = (xs: number[]): string => xs.map((s) => `${(s * 100).toFixed(1)}%`).join(', ');
  return [
    `review cost: ${cost.rows} rows x ${cost.columns} columns in the window (20 bigint, 10 double, 19 varchar, time), ` +
      `${f2(cost.tsvMb)} MB TSV; each load replaces the ${cost.rows} rows with ${cost.rows} rows (PostgreSQL warehouse, one transaction)`,
    `  with the review:    ${cost.withReview.map((r) => `load ${f2(r.loadSecs)} s of which review ${f2(r.reviewSecs)} s`).join('; ')}`,
    `  rows per hour only: ${cost.hoursOnly.map((r) => `load ${f2(r.loadSecs)} s of which review ${f2(r.reviewSecs)} s`).join('; ')}`,
    `  without the review: ${cost.withoutReview.map((s) => `load ${f2(s)} s`).join('; ')}`,
    `  review share of the load: ${pct(shares)} (median ${(median(shares) * 100).toFixed(1)}%; target < 10%)`,
    `  --no-review-columns share: ${pct(hourShares)} (median ${(median(hourShares) * 100).toFixed(1)}%)`,
  ];
}
