import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compareColumns,
  expectedColumns,
  type ExpectedColumn,
  type WarehouseColumn,
} from '../../../worker/warehouse/table-columns.js';
import { parseTableConfig } from '../../../worker/transform/schema.js';

const col = (name: string, dataType: string, maxLength: number | null = null): WarehouseColumn => ({
  name,
  dataType,
  maxLength,
});

/** Whether a table column of this type holds what the config's `type` writes. */
function accepts(type: string, actual: WarehouseColumn): boolean {
  const d = compareColumns([{ name: actual.name, type }], [actual], false);
  assert.deepEqual([d.missing, d.extra], [[], []]);
  return d.mismatched.length === 0;
}

test('type rules: same family, at least as wide', () => {
  assert.equal(accepts('INT', col('a', 'integer')), true);
  assert.equal(accepts('INT', col('a', 'bigint')), true);
  assert.equal(accepts('INT', col('a', 'smallint')), false);
  assert.equal(accepts('BIGINT', col('a', 'integer')), false);
  assert.equal(accepts('BIGINT', col('a', 'character varying', 256)), false);
  assert.equal(accepts('DOUBLE PRECISION', col('a', 'double precision')), true);
  assert.equal(accepts('DOUBLE PRECISION', col('a', 'real')), false);
  assert.equal(accepts('DOUBLE PRECISION', col('a', 'numeric')), false);
  assert.equal(accepts('VARCHAR(64)', col('a', 'character varying', 64)), true);
  assert.equal(accepts('VARCHAR(64)', col('a', 'character varying', 65535)), true);
  assert.equal(accepts('VARCHAR(64)', col('a', 'character varying')), true);
  assert.equal(accepts('VARCHAR(64)', col('a', 'text')), true);
  assert.equal(accepts('VARCHAR(64)', col('a', 'character varying', 63)), false);
  assert.equal(accepts('VARCHAR(2)', col('a', 'character', 2)), false);
  assert.equal(accepts('VARCHAR(64)', col('a', 'integer')), false);
  assert.equal(accepts('BOOLEAN', col('a', 'boolean')), true);
  assert.equal(accepts('BOOLEAN', col('a', 'date')), false);
  assert.equal(accepts('TIMESTAMP', col('a', 'timestamp without time zone')), true);
  assert.equal(accepts('TIMESTAMP', col('a', 'timestamp with time zone')), false);
});

test('names: exact, or folded to lower case (Redshift); order does not matter', () => {
  const expected: ExpectedColumn[] = [
    { name: 'time', type: 'TIMESTAMP' },
    { name: 'UserId', type: 'BIGINT' },
  ];
  const table = [col('userid', 'bigint'), col('time', 'timestamp without time zone')];
  assert.deepEqual(compareColumns(expected, table, true), { missing: [], extra: [], mismatched: [] });
  const exact = compareColumns(expected, table, false);
  assert.deepEqual(
    exact.missing.map((c) => c.name),
    ['UserId'],
  );
  assert.deepEqual(
    exact.extra.map((c) => c.name),
    ['userid'],
  );
});

test('expectedColumns: the highest version of the event, in config order, typed as ddl.ts types them', () => {
  const schemas = parseTableConfig(
    JSON.stringify([
      {
        EventName: 'ev',
        Version: 2,
        Columns: [
          { InboundName: 't', OutboundName: 'time', Transformer: 'f@timestamp@unix', ColumnCreationOptions: '' },
          { InboundName: 'c', OutboundName: 'city', Transformer: 'ipCity', ColumnCreationOptions: '' },
          { InboundName: 'n', OutboundName: 'n', Transformer: 'varchar', ColumnCreationOptions: '(12)' },
        ],
      },
      {
        EventName: 'ev',
        Version: 1,
        Columns: [{ InboundName: 'n', OutboundName: 'n', Transformer: 'int', ColumnCreationOptions: '' }],
      },
    ]),
    'test',
  );
  assert.deepEqual(expectedColumns(schemas, 'ev'), [
    { name: 'time', type: 'TIMESTAMP' },
    { name: 'city', type: 'VARCHAR(64)' },
    { name: 'n', type: 'VARCHAR(12)' },
  ]);
  assert.equal(expectedColumns(schemas, 'absent'), undefined);
});
