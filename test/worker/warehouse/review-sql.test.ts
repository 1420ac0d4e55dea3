/**
 * The review of a window replace: the Pacific hours of a window (DST days), and
 * the review computed inside the load transaction on a real PostgreSQL and on
 * PGlite (same scenario, same expected review): counts per hour, NULL shares,
 * min/max, flags; `preview` and `failOnReview` leave the table as it was.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openWarehouse } from '../../../worker/warehouse/open.js';
import { windowHours, type TableReview } from '../../../worker/warehouse/review-sql.js';
import type { Warehouse } from '../../../worker/warehouse/warehouse.js';
import { startPostgres } from '../../helpers/postgres.js';
import { contentsQuery, CREATE_TEST_TABLES, EXPECTED, files, GOOD, gzipRows, load } from '../../helpers/tsv-files.js';

test('the Pacific hours of a window: the spring-forward gap is not listed, the fall-back hour is listed once', () => {
  const spring = windowHours({ start: '2023-03-12 00:00:00', end: '2023-03-12 04:59:59' });
  assert.deepEqual(
    spring.map((h) => h.hour),
    ['2023-03-12 00', '2023-03-12 01', '2023-03-12 03', '2023-03-12 04'],
  );
  assert.ok(spring.every((h) => !h.repeated));
  const fall = windowHours({ start: '2023-11-05 00:30:00', end: '2023-11-05 03:00:00' });
  assert.deepEqual(
    fall.map((h) => [h.hour, h.repeated]),
    [
      ['2023-11-05 00', false],
      ['2023-11-05 01', true],
      ['2023-11-05 02', false],
      ['2023-11-05 03', false],
    ],
  );
  assert.equal(windowHours({ start: '2023-06-01 00:00:00', end: '2023-06-01 23:59:59' }).length, 24);
});

/** What the GOOD files do to the CREATE_TEST_TABLES window, as the review must say it. */
function assertGoodReview(review: TableReview | undefined): void {
  assert.ok(review, 'a review');
  assert.equal(review.rowsBefore, 2);
  assert.equal(review.rowsAfter, 4);
  assert.deepEqual(review.hours, [
    { hour: '2024-03-01 10:00', before: 2, after: 3 },
    { hour: '2024-03-01 11:00', before: 0, after: 1 },
  ]);
  const byName = new Map(review.columns.map((c) => [c.name, c]));
  assert.deepEqual(
    ['time', 'n', 's'].map((name) => {
      const c = byName.get(name)!;
      return [name, c.numeric, c.nullsBefore, c.nullsAfter, c.nullShareAfter];
    }),
    [
      ['time', false, 0, 0, 0],
      ['n', true, 0, 1, 0.25],
      ['s', false, 0, 2, 0.5],
    ],
  );
  const n = byName.get('n')!;
  assert.deepEqual([n.minBefore, n.maxBefore, n.minAfter, n.maxAfter], ['2', '3', '10', '12']);
  // n: 0% -> 25% (> 20 points), s: 0% -> 50%; rows grew, no hour lost its rows.
  assert.deepEqual(
    review.flags.map((f) => (f.kind === 'null_rise' ? `${f.kind} ${f.column}` : f.kind)),
    ['null_rise n', 'null_rise s'],
  );
}

async function reviewScenario(warehouse: Warehouse, reset: () => Promise<void>): Promise<void> {
  const contents = async (): Promise<string[]> =>
    (await warehouse.query<{ r: string }>(contentsQuery('ev'))).map((row) => row.r);
  await reset();
  const original = await contents();
  const good = files(GOOD);
  const review = { nullRise: 0.2, failOnReview: false };

  const previewed = await warehouse.replaceWindow(load('ev', good.list, { review, preview: true }), good.open);
  assert.equal(previewed.status, 'previewed', previewed.error);
  assert.equal(previewed.inserted, 4);
  assertGoodReview(previewed.review);
  assert.deepEqual(await contents(), original, 'a preview leaves the table as it was');

  // Without the columns: the same rows and hours, no column aggregated, so nothing flagged here.
  const hoursOnly = await warehouse.replaceWindow(
    load('ev', good.list, { review: { ...review, columns: false }, preview: true }),
    good.open,
  );
  assert.equal(hoursOnly.status, 'previewed', hoursOnly.error);
  const counted = hoursOnly.review!;
  assert.deepEqual(
    [counted.rowsBefore, counted.rowsAfter, counted.hours, counted.columns, counted.columnsReviewed, counted.flags],
    [2, 4, previewed.review!.hours, [], false, []],
  );

  const refused = await warehouse.replaceWindow(
    load('ev', good.list, { review: { ...review, failOnReview: true } }),
    good.open,
  );
  assert.equal(refused.status, 'review_refused');
  assert.match(refused.error ?? '', /physical\.ev: the review flagged column n: NULL share 0\.0% -> 25\.0%/);
  assertGoodReview(refused.review);
  assert.deepEqual(await contents(), original, 'a refused table is left as it was');

  // A higher threshold flags nothing: the load commits, with its review.
  const loaded = await warehouse.replaceWindow(
    load('ev', good.list, { review: { nullRise: 0.6, failOnReview: true } }),
    good.open,
  );
  assert.equal(loaded.status, 'loaded', loaded.error);
  assert.deepEqual(loaded.review?.flags, []);
  assert.deepEqual(await contents(), EXPECTED);

  // Every row of the 10:00 hour gone, the table shrunk beyond the guard: both flagged, shrink refused.
  await reset();
  const late = files({ 'run/ev/v1/late.gz': gzipRows([['2024-03-01 11:00:00', 9, 'late']]) });
  const shrunk = await warehouse.replaceWindow(
    load('ev', late.list, { review, maxShrink: 0.1, preview: true }),
    late.open,
  );
  assert.equal(shrunk.status, 'shrink_refused');
  assert.deepEqual(
    shrunk.review?.flags.map((f) => f.message),
    ["rows 2 -> 1 (50.0% fewer, more than the shrink guard's 10.0%)", 'hour 2024-03-01 10:00: 2 rows -> none'],
  );
  assert.deepEqual(await contents(), original);
  const shrunkHoursOnly = await warehouse.replaceWindow(
    load('ev', late.list, { review: { ...review, columns: false }, maxShrink: 0.1, preview: true }),
    late.open,
  );
  assert.deepEqual(
    shrunkHoursOnly.review?.flags.map((f) => f.message),
    shrunk.review?.flags.map((f) => f.message),
    'the hour and shrink flags do not need the columns',
  );
  assert.deepEqual(await contents(), original);
}

test('review inside the load transaction on PostgreSQL', async (t) => {
  const server = await startPostgres(t);
  if (!server) return;
  const db = await server.createDatabase('review_sql');
  const warehouse = await openWarehouse(db);
  try {
    await reviewScenario(warehouse, () =>
      warehouse.execute(`DROP SCHEMA IF EXISTS physical CASCADE; ${CREATE_TEST_TABLES}`),
    );
  } finally {
    await warehouse.close();
  }
});

test('review inside the load transaction on PGlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spade-review-pglite-'));
  const warehouse = await openWarehouse(`pglite://${dir}`);
  try {
    await reviewScenario(warehouse, () =>
      warehouse.execute(`DROP SCHEMA IF EXISTS physical CASCADE; ${CREATE_TEST_TABLES}`),
    );
  } finally {
    await warehouse.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
