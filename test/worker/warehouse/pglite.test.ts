import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { type Warehouse } from '../../../worker/warehouse/warehouse.js';
import { openWarehouse } from '../../../worker/warehouse/open.js';
import { lastRowEnd, RowBlobCutter } from '../../../worker/warehouse/pglite.js';
import {
  COLUMN_REFUSALS,
  columnRefusal,
  contentsQuery,
  CREATE_COLUMN_TEST_TABLES,
  CREATE_TEST_TABLES,
  EXPECTED,
  files,
  GOOD,
  gzipRows,
  load,
  tsv,
  wholeTableQuery,
  type Field,
} from '../../helpers/tsv-files.js';

async function contents(warehouse: Warehouse, table = 'ev'): Promise<string[]> {
  const rows = await warehouse.query<{ r: string }>(contentsQuery(table));
  return rows.map((row) => row.r);
}

async function reset(warehouse: Warehouse): Promise<void> {
  await warehouse.execute(`DROP SCHEMA IF EXISTS physical CASCADE; ${CREATE_TEST_TABLES}`);
}

/** Rows whose text is full of escaped newlines and backslashes, so blob cuts land next to them. */
function trickyRows(count: number): Field[][] {
  const rows: Field[][] = [];
  for (let i = 0; i < count; i++) {
    const text = `r${i}\n${'\\'.repeat(i % 5)}\n${'x'.repeat(i % 37)}${'\\'.repeat(i % 3)}`;
    rows.push(['2024-03-01 10:30:00', i, text]);
  }
  return rows;
}

test('lastRowEnd finds the last LF that is not escaped', () => {
  const b = (s: string): Buffer => Buffer.from(s, 'latin1');
  assert.equal(lastRowEnd(b('a\tb\n')), 4);
  assert.equal(lastRowEnd(b('a\\\nb')), -1); // backslash+LF is an embedded newline
  assert.equal(lastRowEnd(b('a\\\\\nb')), 4); // escaped backslash, then a real row end
  assert.equal(lastRowEnd(b('a\n\\\\\\\nb')), 2);
  assert.equal(lastRowEnd(b('\nx')), 1);
  assert.equal(lastRowEnd(b('\\\nx')), -1);
  assert.equal(lastRowEnd(b('no row end')), -1);
});

test('RowBlobCutter hands out whole rows only, and all bytes exactly once', () => {
  const input = Buffer.from(tsv(trickyRows(500)), 'utf8');
  for (const [limit, piece] of [
    [100, 7],
    [257, 64],
    [1000, 1],
    [4096, 333],
  ] as const) {
    const cutter = new RowBlobCutter(limit);
    const blobs: Buffer[] = [];
    for (let at = 0; at < input.length; at += piece) {
      const blob = cutter.push(input.subarray(at, at + piece));
      if (blob) blobs.push(Buffer.from(blob));
    }
    const last = cutter.end();
    if (last) blobs.push(last);
    assert.ok(blobs.length > 1, `several blobs for limit ${limit}`);
    assert.ok(Buffer.concat(blobs).equals(input), `lossless for limit ${limit}`);
    for (const blob of blobs) assert.equal(lastRowEnd(blob), blob.length, 'each blob ends at a row end');
  }
});

test('PGlite warehouse', { timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'spade-pglite-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const logs: string[] = [];
  // A plain path whose parent does not exist yet; a small blob size, so that even
  // test files are copied in several pieces.
  const path = join(dir, 'nested', 'db');
  let warehouse = await openWarehouse(path, { pgliteBlobBytes: 4096, log: (m) => logs.push(m) });
  t.after(() => warehouse.close());
  assert.equal(warehouse.kind, 'pglite');

  await t.test('replaces the window exactly, leaves the rest alone, and is repeatable', async () => {
    await reset(warehouse);
    const { list, open } = files(GOOD);
    const first = await warehouse.replaceWindow(load('ev', list), open);
    assert.equal(first.status, 'loaded', first.error);
    assert.deepEqual(
      { before: first.before, deleted: first.deleted, inserted: first.inserted, dropped: first.droppedOutsideWindow },
      { before: 2, deleted: 2, inserted: 4, dropped: 1 },
    );
    assert.deepEqual(await contents(warehouse), EXPECTED);
    assert.deepEqual(await contents(warehouse, 'other'), ['2024-03-01 10:30:00|5|other table']);

    const second = await warehouse.replaceWindow(load('ev', list), open);
    assert.equal(second.status, 'loaded', second.error);
    assert.deepEqual([second.before, second.deleted, second.inserted], [4, 4, 4]);
    assert.deepEqual(await contents(warehouse), EXPECTED);
    assert.ok(logs.some((line) => line.includes('physical.ev: loaded 2 file(s)')));
    assert.equal(await warehouse.tableExists('physical', 'ev'), true);
    assert.equal(await warehouse.tableExists('physical', 'nope'), false);
  });

  await t.test('a file bigger than the blob size loads exactly, escaped newlines at the cuts', async () => {
    await reset(warehouse);
    const rows = trickyRows(3000);
    const big = gzipRows(rows);
    const result = await warehouse.replaceWindow(load('ev', [{ key: 'big.gz', url: 's3://b/big.gz' }]), async () =>
      Readable.from([big]),
    );
    assert.equal(result.status, 'loaded', result.error);
    assert.equal(result.inserted, rows.length);
    const loaded = await warehouse.query<{ n: number; s: string }>(
      "SELECT n, s FROM physical.ev WHERE time BETWEEN '2024-03-01 10:00:00' AND '2024-03-01 11:00:00' ORDER BY n",
    );
    assert.deepEqual(
      loaded.map((row) => [row.n, row.s]),
      rows.map((row) => [row[1], row[2]]),
    );
  });

  await t.test('a bad value fails the load, names file and line, and leaves the table as it was', async () => {
    await reset(warehouse);
    const before = await contents(warehouse);
    const rows = trickyRows(2000);
    (rows[1500] as Field[])[1] = 'not-a-number';
    const { list, open } = files({ 'run/ev/v1/good.gz': GOOD['run/ev/v1/a.gz'], 'run/ev/v1/bad.gz': gzipRows(rows) });
    const result = await warehouse.replaceWindow(load('ev', list), open);
    assert.equal(result.status, 'failed');
    assert.match(result.error ?? '', /physical\.ev/);
    assert.match(result.error ?? '', /run\/ev\/v1\/bad\.gz/);
    assert.match(result.error ?? '', /invalid input syntax for type integer: "not-a-number"/);
    // Line of the file, not of the blob it was copied in.
    assert.match(result.error ?? '', /line 1501, column n/);
    assert.deepEqual(await contents(warehouse), before);

    const broken = await warehouse.replaceWindow(load('ev', [{ key: 'not-gzip', url: 's3://b/not-gzip' }]), async () =>
      Readable.from([Buffer.from('plain text')]),
    );
    assert.equal(broken.status, 'failed');
    assert.match(broken.error ?? '', /file not-gzip failed: gzip: /);
    assert.deepEqual(await contents(warehouse), before);
  });

  await t.test('the shrink guard refuses a load that loses rows unless allowed', async () => {
    await reset(warehouse);
    const before = await contents(warehouse);
    const { list, open } = files({ 'one.gz': gzipRows([['2024-03-01 10:05:00', 30, 'only one']]) });
    const refused = await warehouse.replaceWindow(load('ev', list, { maxShrink: 0.1 }), open);
    assert.equal(refused.status, 'shrink_refused');
    assert.match(refused.error ?? '', /from 2 to 1 rows/);
    assert.match(refused.error ?? '', /--allow-shrink/);
    assert.deepEqual(await contents(warehouse), before);

    const allowed = await warehouse.replaceWindow(load('ev', list, { maxShrink: 0.1, allowShrink: true }), open);
    assert.equal(allowed.status, 'loaded', allowed.error);
    assert.deepEqual(await contents(warehouse), [
      '2024-03-01 09:59:59|1|before window',
      '2024-03-01 10:05:00|30|only one',
      '2024-03-01 11:00:01|4|after window',
    ]);
  });

  await t.test('concurrent calls are serialised on the one connection', async () => {
    await reset(warehouse);
    await warehouse.execute('CREATE TABLE physical."we""ird" (time timestamp, n int, s text)');
    const a = files(GOOD);
    const b = files({ 'w.gz': gzipRows([['2024-03-01 10:10:00', 1, 'quoted']]) });
    const [ev, weird, count] = await Promise.all([
      warehouse.replaceWindow(load('ev', a.list), a.open),
      warehouse.replaceWindow(load('we"ird', b.list), b.open),
      warehouse.query<{ n: number }>('SELECT count(*)::int AS n FROM physical.other'),
    ]);
    assert.equal(ev.status, 'loaded', ev.error);
    assert.equal(weird.status, 'loaded', weird.error);
    assert.equal(count[0]?.n, 1);
    assert.deepEqual(await contents(warehouse), EXPECTED);
    assert.deepEqual(await contents(warehouse, 'we"ird'), ['2024-03-01 10:10:00|1|quoted']);

    const missing = await warehouse.replaceWindow(load('absent', a.list), a.open);
    assert.equal(missing.error, 'table physical.absent does not exist (create it with `spade ddl`)');
  });

  await t.test('columns load by name; tables whose columns differ are refused and left alone', async () => {
    await reset(warehouse);
    await warehouse.execute(CREATE_COLUMN_TEST_TABLES);
    const refused = Object.keys(COLUMN_REFUSALS);
    const before = new Map<string, unknown>();
    for (const table of refused) before.set(table, await warehouse.query(wholeTableQuery(table)));
    const results = await Promise.all(
      ['ev', 'reordered', ...refused].map((table) =>
        warehouse.replaceWindow(load(table, files(GOOD).list), files(GOOD).open),
      ),
    );
    const byTable = new Map(results.map((r) => [r.table, r]));
    for (const table of ['ev', 'reordered'])
      assert.equal(byTable.get(table)?.status, 'loaded', byTable.get(table)?.error);
    // Every value in its own column, although the table's columns are in another order.
    assert.deepEqual(await contents(warehouse, 'reordered'), EXPECTED);
    assert.deepEqual(await contents(warehouse), EXPECTED);
    for (const table of refused) {
      const result = byTable.get(table);
      assert.equal(result?.status, 'columns_refused', `${table}: ${result?.error}`);
      assert.equal(result?.error, columnRefusal(table));
      assert.deepEqual(await warehouse.query(wholeTableQuery(table)), before.get(table), table);
    }
  });

  await t.test('the data survives closing and reopening the directory', async () => {
    await warehouse.close();
    warehouse = await openWarehouse(`pglite://${path}`);
    assert.deepEqual(await contents(warehouse), EXPECTED);
  });
});
