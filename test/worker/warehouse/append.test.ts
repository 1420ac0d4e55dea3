/**
 * The continuous processor's append (AppendLoader) against a real PostgreSQL:
 * it names the config's columns, and runs the replay's column check first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppendLoader } from '../../../worker/warehouse/append.js';
import { parseTableConfig } from '../../../worker/transform/schema.js';
import { startPostgres } from '../../helpers/postgres.js';
import {
  COLUMN_REFUSALS,
  columnRefusal,
  contentsQuery,
  CREATE_COLUMN_TEST_TABLES,
  CREATE_TEST_TABLES,
  files,
  GOOD,
  TRICKY,
  wholeTableQuery,
} from '../../helpers/tsv-files.js';

/** A config whose tables all have the columns of the test files: time, n, s (tsv-files.ts COLUMNS). */
function config(tables: string[]): ReturnType<typeof parseTableConfig> {
  const columns = [
    { InboundName: 'time', OutboundName: 'time', Transformer: 'f@timestamp@unix', ColumnCreationOptions: '' },
    { InboundName: 'n', OutboundName: 'n', Transformer: 'int', ColumnCreationOptions: '' },
    { InboundName: 's', OutboundName: 's', Transformer: 'varchar', ColumnCreationOptions: '(200)' },
  ];
  return parseTableConfig(JSON.stringify(tables.map((EventName) => ({ EventName, Columns: columns }))), 'test');
}

const TABLES = ['ev', 'reordered', ...Object.keys(COLUMN_REFUSALS)];
const A = 'run/ev/v1/a.gz';
const B = 'run/ev/v1/b.gz';

test('append: columns by name, and a table whose columns differ fails the batch with nothing loaded', async (t) => {
  const server = await startPostgres(t);
  if (!server) return;
  const db = await server.createDatabase('append_columns');
  await server.query(db, CREATE_TEST_TABLES);
  await server.query(db, CREATE_COLUMN_TEST_TABLES);
  const { open } = files(GOOD);
  const loader = await AppendLoader.open(db);
  try {
    const snapshot = async (): Promise<unknown[]> =>
      Promise.all(TABLES.map((table) => server.query(db, wholeTableQuery(table))));

    for (const bad of Object.keys(COLUMN_REFUSALS)) {
      const before = await snapshot();
      const batch = [
        { table: 'reordered', key: A },
        { table: bad, key: A },
      ];
      await assert.rejects(loader.append(`s3://b/m-${bad}.json`, batch, open, config(TABLES)), (err: Error) => {
        assert.equal(err.message, columnRefusal(bad));
        return true;
      });
      assert.deepEqual(await snapshot(), before, `${bad}: nothing loaded`);
      assert.equal(await loader.isLoaded(`s3://b/m-${bad}.json`), false);
    }

    // A table the config does not have is refused too.
    await assert.rejects(
      loader.append('s3://b/m-unknown.json', [{ table: 'reordered', key: A }], open, config(['ev'])),
      /table physical\.reordered is not in the config/,
    );

    const res = await loader.append(
      's3://b/m-good.json',
      [
        { table: 'reordered', key: A },
        { table: 'reordered', key: B },
        { table: 'ev', key: A },
      ],
      open,
      config(TABLES),
    );
    assert.deepEqual(res, { status: 'loaded', rows: 8 });
    // Appended (nothing replaced), every value in its own column although the columns are in another order.
    const reordered = await server.query<{ r: string }>(db, contentsQuery('reordered'));
    assert.deepEqual(
      reordered.map((row) => row.r),
      [
        '2024-03-01 09:59:59|1|before window',
        `2024-03-01 10:00:00|10|${TRICKY}`,
        '2024-03-01 10:00:00|2|old in window',
        '2024-03-01 10:15:00|NULL|NULL',
        '2024-03-01 10:20:00|11|NULL',
        '2024-03-01 10:30:00|3|old in window',
        '2024-03-01 11:00:00|12|last second of the window',
        '2024-03-01 11:00:01|4|after window',
        '2024-03-01 11:00:02|13|outside: dropped',
      ],
    );
  } finally {
    await loader.close();
  }
});
