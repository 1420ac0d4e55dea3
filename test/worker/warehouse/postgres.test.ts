import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import pg from 'pg';
import { startPostgres, type PgServer } from '../../helpers/postgres.js';
import { type Warehouse } from '../../../worker/warehouse/warehouse.js';
import { openWarehouse, parseWarehouseUrl } from '../../../worker/warehouse/open.js';
import { redactUrl } from '../../../worker/redact.js';
import { quoteIdent } from '../../../worker/warehouse/sql.js';
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
  wholeTableQuery,
  type Field,
} from '../../helpers/tsv-files.js';

/** Rows of the test table, as text, in a stable order. */
async function contents(server: PgServer, db: string, table = 'ev'): Promise<string[]> {
  const rows = await server.query<{ r: string }>(db, contentsQuery(table));
  return rows.map((row) => row.r);
}

async function setup(server: PgServer, name: string): Promise<string> {
  const db = await server.createDatabase(name);
  await server.query(db, CREATE_TEST_TABLES);
  return db;
}

async function withWarehouse<T>(url: string, fn: (w: Warehouse) => Promise<T>, logs?: string[]): Promise<T> {
  const warehouse = await openWarehouse(url, { log: (m) => logs?.push(m) });
  try {
    return await fn(warehouse);
  } finally {
    await warehouse.close();
  }
}

test('PostgreSQL warehouse', { timeout: 300_000 }, async (t) => {
  const server = await startPostgres(t);
  if (!server) return;
  await t.test('replaces the window exactly, leaves the rest alone, and is repeatable', async () => {
    const db = await setup(server, 'replace');
    const { list, open } = files(GOOD);
    const logs: string[] = [];
    await withWarehouse(
      db,
      async (warehouse) => {
        assert.equal(warehouse.kind, 'postgres');
        const first = await warehouse.replaceWindow(load('ev', list), open);
        assert.equal(first.status, 'loaded', first.error);
        assert.deepEqual(
          {
            before: first.before,
            deleted: first.deleted,
            inserted: first.inserted,
            dropped: first.droppedOutsideWindow,
          },
          { before: 2, deleted: 2, inserted: 4, dropped: 1 },
        );
        assert.deepEqual(await contents(server, db), EXPECTED);
        assert.deepEqual(await contents(server, db, 'other'), ['2024-03-01 10:30:00|5|other table']);

        const second = await warehouse.replaceWindow(load('ev', list), open);
        assert.equal(second.status, 'loaded', second.error);
        assert.deepEqual([second.before, second.deleted, second.inserted], [4, 4, 4]);
        assert.deepEqual(await contents(server, db), EXPECTED);

        // The temp tables were dropped at COMMIT: nothing left on the pooled connections.
        const temps = await warehouse.query<{ n: string }>(
          "SELECT count(*) AS n FROM pg_class WHERE relname LIKE 'spade_load_%'",
        );
        assert.equal(Number(temps[0]?.n), 0);
        assert.equal(await warehouse.tableExists('physical', 'ev'), true);
        assert.equal(await warehouse.tableExists('physical', 'nope'), false);
      },
      logs,
    );
    assert.ok(logs.some((line) => line.includes('physical.ev: loaded 2 file(s)')));
    for (const line of logs) assert.ok(!line.includes(server.password), line);
  });

  await t.test('a bad value in the second file fails the load and leaves the table as it was', async () => {
    const db = await setup(server, 'badvalue');
    const before = await contents(server, db);
    const { list, open } = files({
      'run/ev/v1/good.gz': GOOD['run/ev/v1/a.gz'],
      'run/ev/v1/bad.gz': gzipRows([
        ['2024-03-01 10:40:00', 20, 'fine'],
        ['2024-03-01 10:41:00', 'not-a-number', 'broken'],
      ]),
    });
    await withWarehouse(db, async (warehouse) => {
      const result = await warehouse.replaceWindow(load('ev', list), open);
      assert.equal(result.status, 'failed');
      const error = result.error ?? '';
      assert.match(error, /physical\.ev/);
      assert.match(error, /run\/ev\/v1\/bad\.gz/);
      assert.match(error, /invalid input syntax for type integer: "not-a-number"/);
      assert.match(error, /line 2, column n/);
      assert.ok(!error.includes(server.password));
      assert.deepEqual(await contents(server, db), before);

      // The pool is still usable after a failed load.
      const again = await warehouse.replaceWindow(load('ev', files(GOOD).list), files(GOOD).open);
      assert.equal(again.status, 'loaded', again.error);
    });
  });

  await t.test('a connection killed mid-COPY fails the load and leaves the table as it was', async () => {
    const db = await setup(server, 'killed');
    const before = await contents(server, db);
    const big: Field[][] = [];
    for (let i = 0; i < 20000; i++) big.push(['2024-03-01 10:45:00', i, `row ${i} ${'x'.repeat(50)}`]);
    const bigGzip = gzipRows(big);
    let killed = 0;
    let killer: Promise<void> = Promise.resolve();
    const open = async (key: string): Promise<Readable> => {
      if (key !== 'run/ev/v1/big.gz') return Readable.from([GOOD['run/ev/v1/a.gz']]);
      const stream = new PassThrough();
      // Half the file now; the backend is terminated while its COPY waits for the rest.
      stream.write(bigGzip.subarray(0, bigGzip.length >> 1));
      killer = (async () => {
        for (let attempt = 0; attempt < 500 && killed === 0; attempt++) {
          const rows = await server.query<{ ok: boolean }>(
            db,
            `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
            WHERE application_name = 'spade_kill_test' AND query LIKE 'COPY%' AND state = 'active'`,
          );
          killed = rows.filter((r) => r.ok).length;
          if (killed === 0) await new Promise((resolve) => setTimeout(resolve, 20));
        }
        if (!stream.destroyed) stream.end(bigGzip.subarray(bigGzip.length >> 1));
      })();
      return stream;
    };
    const list = [
      { key: 'run/ev/v1/a.gz', url: 's3://b/run/ev/v1/a.gz' },
      { key: 'run/ev/v1/big.gz', url: 's3://b/run/ev/v1/big.gz' },
    ];
    await withWarehouse(`${db}?application_name=spade_kill_test`, async (warehouse) => {
      const result = await warehouse.replaceWindow(load('ev', list), open);
      await killer; // pg_terminate_backend may answer after the load has already failed
      assert.equal(killed, 1, 'the COPY backend was terminated');
      assert.equal(result.status, 'failed');
      assert.match(result.error ?? '', /physical\.ev/);
      assert.match(result.error ?? '', /run\/ev\/v1\/big\.gz/);
      // The server's message, or the socket's when the rest of the file is written first to the dead connection.
      assert.match(result.error ?? '', /terminat|ECONNRESET|EPIPE/i);
      assert.deepEqual(await contents(server, db), before);

      // A fresh connection replaces the dead one.
      const again = await warehouse.replaceWindow(load('ev', files(GOOD).list), files(GOOD).open);
      assert.equal(again.status, 'loaded', again.error);
      assert.deepEqual(await contents(server, db), EXPECTED);
    });
  });

  await t.test('the shrink guard refuses a load that loses rows unless allowed', async () => {
    const db = await setup(server, 'shrink');
    const before = await contents(server, db);
    const { list, open } = files({ 'run/ev/v1/one.gz': gzipRows([['2024-03-01 10:05:00', 30, 'only one']]) });
    await withWarehouse(db, async (warehouse) => {
      const refused = await warehouse.replaceWindow(load('ev', list, { maxShrink: 0.1 }), open);
      assert.equal(refused.status, 'shrink_refused');
      assert.deepEqual([refused.before, refused.inserted], [2, 1]);
      assert.match(refused.error ?? '', /from 2 to 1 rows/);
      assert.match(refused.error ?? '', /--allow-shrink/);
      assert.deepEqual(await contents(server, db), before);

      const allowed = await warehouse.replaceWindow(load('ev', list, { maxShrink: 0.1, allowShrink: true }), open);
      assert.equal(allowed.status, 'loaded', allowed.error);
      assert.deepEqual(await contents(server, db), [
        '2024-03-01 09:59:59|1|before window',
        '2024-03-01 10:05:00|30|only one',
        '2024-03-01 11:00:01|4|after window',
      ]);
    });
  });

  await t.test('four tables load concurrently on four pooled connections', async () => {
    const db = await server.createDatabase('concurrent');
    const tables = ['t1', 't2', 't3', 't4'];
    await server.query(
      db,
      `CREATE SCHEMA physical; ${tables.map((name) => `CREATE TABLE physical.${name} (time timestamp, n int, s text);`).join(' ')}`,
    );
    // Every load waits in openFile until all four are inside their transactions at once.
    let arrived = 0;
    let releaseAll: () => void = () => undefined;
    const allArrived = new Promise<void>((resolve) => (releaseAll = resolve));
    const open = async (key: string): Promise<Readable> => {
      if (++arrived === tables.length) releaseAll();
      await allArrived;
      const table = key.split('/')[1] as string;
      return Readable.from([gzipRows([['2024-03-01 10:10:00', tables.indexOf(table), table]])]);
    };
    const warehouse = await openWarehouse(db, { poolSize: 4 });
    try {
      const results = await Promise.all(
        tables.map((table) =>
          warehouse.replaceWindow(
            load(table, [{ key: `run/${table}/v1/a.gz`, url: `s3://b/run/${table}/v1/a.gz` }]),
            open,
          ),
        ),
      );
      assert.deepEqual(
        results.map((r) => [r.table, r.status, r.inserted]),
        tables.map((table) => [table, 'loaded', 1]),
      );
      for (const [i, table] of tables.entries()) {
        assert.deepEqual(await contents(server, db, table), [`2024-03-01 10:10:00|${i}|${table}`]);
      }
    } finally {
      await warehouse.close();
    }
  });

  await t.test('columns load by name; tables whose columns differ are refused and left alone', async () => {
    const db = await setup(server, 'columns');
    await server.query(db, CREATE_COLUMN_TEST_TABLES);
    const refused = Object.keys(COLUMN_REFUSALS);
    const before = new Map<string, unknown>();
    for (const table of refused) before.set(table, await server.query(db, wholeTableQuery(table)));
    await withWarehouse(db, async (warehouse) => {
      // One "run": the good tables and the refused ones loaded at once.
      const results = await Promise.all(
        ['ev', 'reordered', ...refused].map((table) =>
          warehouse.replaceWindow(load(table, files(GOOD).list), files(GOOD).open),
        ),
      );
      const byTable = new Map(results.map((r) => [r.table, r]));
      for (const table of ['ev', 'reordered'])
        assert.equal(byTable.get(table)?.status, 'loaded', byTable.get(table)?.error);
      // Every value in its own column, although the table's columns are in another order.
      assert.deepEqual(await contents(server, db, 'reordered'), EXPECTED);
      assert.deepEqual(await contents(server, db), EXPECTED);
      for (const table of refused) {
        const result = byTable.get(table);
        assert.equal(result?.status, 'columns_refused', `${table}: ${result?.error}`);
        assert.equal(result?.error, columnRefusal(table));
        assert.deepEqual([result?.before, result?.deleted, result?.inserted], [0, 0, 0]);
        assert.deepEqual(await server.query(db, wholeTableQuery(table)), before.get(table), table);
      }
    });
  });

  await t.test('two loads of one window at once serialise: one copy of each row, not two', async () => {
    const db = await setup(server, 'samewindow');
    const { list, open } = files(GOOD);
    // The first load stops inside its transaction (window deleted, before its COPY)
    // until the second load is seen waiting for a lock on the server: the overlap is certain.
    let firstInside: () => void = () => undefined;
    const firstIsInside = new Promise<void>((resolve) => (firstInside = resolve));
    let releaseFirst: () => void = () => undefined;
    const firstReleased = new Promise<void>((resolve) => (releaseFirst = resolve));
    const openHeld = async (key: string): Promise<Readable> => {
      firstInside();
      await firstReleased;
      return open(key);
    };
    const [first, second] = [await openWarehouse(db), await openWarehouse(db)];
    try {
      const loadingFirst = first.replaceWindow(load('ev', list), openHeld);
      await firstIsInside;
      let secondDone = false;
      const loadingSecond = second.replaceWindow(load('ev', list), open).finally(() => (secondDone = true));
      // Until the second load waits for the first (fixed code) or has finished without waiting (the bug).
      for (;;) {
        const waiting = await server.query<{ n: string }>(
          db,
          "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = 'samewindow' AND wait_event_type = 'Lock'",
        );
        if (Number(waiting[0]?.n) > 0 || secondDone) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      releaseFirst();
      const results = await Promise.all([loadingFirst, loadingSecond]);
      for (const r of results) assert.equal(r.status, 'loaded', r.error);
      assert.deepEqual(await contents(server, db), EXPECTED);
      // The second saw the first one's rows and replaced them.
      assert.deepEqual([results[1]?.before, results[1]?.deleted, results[1]?.inserted], [4, 4, 4]);
    } finally {
      await first.close();
      await second.close();
    }
  });

  await t.test('a table altered while its load waits for the lock is checked again and refused', async () => {
    const db = await setup(server, 'altered');
    const before = await contents(server, db);
    const { list, open } = files(GOOD);
    // This connection holds the table lock, so the load passes its first column check and waits.
    const holder = new pg.Client({ connectionString: db });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE physical.ev IN ACCESS EXCLUSIVE MODE');
      await withWarehouse(db, async (warehouse) => {
        const loading = warehouse.replaceWindow(load('ev', list), open);
        for (;;) {
          const waiting = await server.query<{ n: string }>(
            db,
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = 'altered' AND wait_event_type = 'Lock'",
          );
          if (Number(waiting[0]?.n) > 0) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        await holder.query('ALTER TABLE physical.ev ADD COLUMN note text');
        await holder.query('COMMIT');
        const result = await loading;
        assert.equal(result.status, 'columns_refused', result.error);
        assert.match(result.error ?? '', /not in the config: "note" text/);
        assert.deepEqual(await contents(server, db), before);
      });
    } finally {
      await holder.end();
    }
  });

  await t.test('missing table, missing time column and odd identifiers', async () => {
    const db = await server.createDatabase('idents');
    await server.query(
      db,
      `CREATE SCHEMA physical;
     CREATE TABLE physical."we""ird" (time timestamp, n int, s text);
     CREATE TABLE physical.notime (n int, s text);`,
    );
    const { list, open } = files({ 'run/we"ird/v1/a.gz': gzipRows([['2024-03-01 10:10:00', 1, 'quoted']]) });
    await withWarehouse(db, async (warehouse) => {
      const weird = await warehouse.replaceWindow(load('we"ird', list), open);
      assert.equal(weird.status, 'loaded', weird.error);
      assert.deepEqual(await contents(server, db, 'we"ird'), ['2024-03-01 10:10:00|1|quoted']);
      assert.equal(await warehouse.tableExists('physical', 'we"ird'), true);

      const missing = await warehouse.replaceWindow(load('absent', list), open);
      assert.equal(missing.status, 'failed');
      assert.equal(missing.error, 'table physical.absent does not exist (create it with `spade ddl`)');

      const noTime = await warehouse.replaceWindow(load('notime', list), open);
      assert.equal(noTime.status, 'failed');
      assert.match(noTime.error ?? '', /physical\.notime has no "time" column/);

      const badWindow = await warehouse.replaceWindow(
        load('we"ird', list, { window: { start: "x' OR 1=1", end: 'y' } }),
        open,
      );
      assert.equal(badWindow.status, 'failed');
      assert.match(badWindow.error ?? '', /window start/);

      const missingFile = await warehouse.replaceWindow(
        load('we"ird', [{ key: 'run/gone.gz', url: 's3://b/run/gone.gz' }]),
        open,
      );
      assert.equal(missingFile.status, 'failed');
      assert.match(missingFile.error ?? '', /file run\/gone\.gz failed: no such test file/);
    });
    assert.equal(quoteIdent('we"ird'), '"we""ird"');
    assert.throws(() => quoteIdent('a\0b'), /NUL/);
  });

  await t.test('a password in the URL never appears in messages', async () => {
    const wrong = `${server.url.replace(server.password, 'S3cretWrongPw')}`;
    await assert.rejects(openWarehouse(wrong), (err: Error) => {
      assert.ok(!err.message.includes('S3cretWrongPw'), err.message);
      assert.ok(!(err.stack ?? '').includes('S3cretWrongPw'));
      assert.match(err.message, /cannot connect to postgres:\/\/spade:\*\*\*@127\.0\.0\.1/);
      return true;
    });
    const db = await server.createDatabase('redact');
    await withWarehouse(db, async (warehouse) => {
      await assert.rejects(warehouse.execute(`SELECT '${server.password}'::int`), (err: Error) => {
        assert.ok(!err.message.includes(server.password), err.message);
        assert.match(err.message, /\*\*\*/);
        return true;
      });
    });
    assert.equal(redactUrl('postgres://u:p%40ss@h:5432/db'), 'postgres://u:***@h:5432/db');
    assert.equal(redactUrl('postgres://u@h/db'), 'postgres://u@h/db');
    assert.equal(redactUrl('/some/dir'), '/some/dir');
    assert.throws(
      () => parseWarehouseUrl('mysql://u:pw123@h/db'),
      (err: Error) => !err.message.includes('pw123'),
    );
  });
});

test('warehouse URLs pick the implementation', () => {
  assert.deepEqual(parseWarehouseUrl('postgres://u:p@localhost/db'), {
    kind: 'postgres',
    target: 'postgres://u:p@localhost/db',
  });
  assert.equal(parseWarehouseUrl('postgresql://h/db').kind, 'postgres');
  assert.equal(parseWarehouseUrl('postgres://u:p@c1.abc.us-west-2.redshift.amazonaws.com:5439/dev').kind, 'redshift');
  assert.deepEqual(parseWarehouseUrl('redshift://u:p@h:5439/dev'), {
    kind: 'redshift',
    target: 'postgres://u:p@h:5439/dev',
  });
  assert.deepEqual(parseWarehouseUrl('pglite:///tmp/x'), { kind: 'pglite', target: '/tmp/x' });
  assert.deepEqual(parseWarehouseUrl('pglite:rel/dir'), { kind: 'pglite', target: 'rel/dir' });
  assert.deepEqual(parseWarehouseUrl('./data/wh'), { kind: 'pglite', target: './data/wh' });
});
