import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { columnType, createTableSql } from '../../../worker/warehouse/ddl.js';
import { quoteIdent } from '../../../worker/warehouse/sql.js';
import { compileSchema } from '../../../worker/transform/columns.js';
import { openGeoIp } from '../../../worker/transform/geoip.js';
import { UserIdMapper } from '../../../worker/transform/mapping.js';
import { parseTableConfig, type TableSchema } from '../../../worker/transform/schema.js';
import { ExactInteger } from '../../../worker/transform/values.js';
import { fixturePath } from '../../helpers/fixtures.js';
import { startPostgres } from '../../helpers/postgres.js';

const col = (name: string, transformer: string, options = '', extra: Record<string, string> = {}) => ({
  InboundName: name,
  OutboundName: name,
  Transformer: transformer,
  ColumnCreationOptions: options,
  ...extra,
});

/** One column of every transformer. */
const EVERY_TYPE: TableSchema = parseTableConfig(
  JSON.stringify([
    {
      EventName: 'every-type',
      Columns: [
        col('time', 'f@timestamp@unix', ' sortkey'),
        col('utc_time', 'f@timestamp@unix-utc'),
        col('layout_time', 'f@timestamp@2006-01-02 15:04:05'),
        col('n', 'int'),
        col('big', 'bigint'),
        col('f', 'float'),
        col('device_id', 'varchar', '(32) distkey'),
        col('free_text', 'varchar'),
        col('flag', 'bool'),
        col('city', 'ipCity'),
        col('country', 'ipCountry'),
        col('region', 'ipRegion'),
        col('asn', 'ipAsn'),
        col('asn_id', 'ipAsnInteger'),
        col('hash', 'stringToIntegerMD5'),
        col('user_id', 'userIDWithMapping', '', { SupportingColumns: 'login' }),
        col('we"ird', 'varchar', '(5)'),
      ],
    },
  ]),
  'test',
)[0]!;

const COLUMN_LINES = [
  '"time" TIMESTAMP',
  '"utc_time" TIMESTAMP',
  '"layout_time" TIMESTAMP',
  '"n" INT',
  '"big" BIGINT',
  '"f" DOUBLE PRECISION',
  '"device_id" VARCHAR(32)',
  '"free_text" VARCHAR(256)',
  '"flag" BOOLEAN',
  '"city" VARCHAR(64)',
  '"country" VARCHAR(2)',
  '"region" VARCHAR(64)',
  '"asn" VARCHAR(128)',
  '"asn_id" INT',
  '"hash" BIGINT',
  '"user_id" BIGINT',
  '"we""ird" VARCHAR(5)',
];

describe('createTableSql', () => {
  it('PostgreSQL: types only, key markers dropped', () => {
    assert.equal(
      createTableSql(EVERY_TYPE, { dialect: 'postgres', schema: 'logs' }),
      `CREATE TABLE "logs"."every-type" (\n${COLUMN_LINES.map((l) => '  ' + l).join(',\n')}\n);`,
    );
  });

  it('Redshift: sortkey and distkey stay column attributes', () => {
    const lines = COLUMN_LINES.map((l) => '  ' + l);
    lines[0] += ' SORTKEY';
    lines[6] += ' DISTKEY';
    assert.equal(
      createTableSql(EVERY_TYPE, { dialect: 'redshift', schema: 'logs' }),
      `CREATE TABLE "logs"."every-type" (\n${lines.join(',\n')}\n);`,
    );
  });

  it('IF NOT EXISTS on request, identifiers quoted', () => {
    const sql = createTableSql(EVERY_TYPE, { dialect: 'postgres', schema: 'a"b', ifNotExists: true });
    assert.ok(sql.startsWith('CREATE TABLE IF NOT EXISTS "a""b"."every-type" (\n'), sql);
    assert.equal(quoteIdent('x"y""z'), '"x""y""""z"');
  });

  it('the real config: one statement per event, with its keys in Redshift', () => {
    const path = fixturePath('spade/table_config.json');
    const tables = parseTableConfig(readFileSync(path, 'utf8'), path);
    const first = createTableSql(tables[0]!, { dialect: 'redshift', schema: 'logs' });
    assert.match(
      first,
      /^CREATE TABLE "logs"\."video_ad_impression" \(\n {2}"time" TIMESTAMP SORTKEY,\n {2}"ip" VARCHAR\(15\),\n {2}"city" VARCHAR\(64\),/,
    );
    assert.match(first, /\n {2}"device_id" VARCHAR\(32\) DISTKEY,\n/);
    for (const t of tables) {
      const sql = createTableSql(t, { dialect: 'postgres', schema: 'logs' });
      assert.equal(sql.split('\n').length, t.columns.length + 2);
      assert.doesNotMatch(sql, /KEY/);
    }
  });

  it('has a type for every transformer it can be given', () => {
    for (const c of EVERY_TYPE.columns) assert.ok(columnType(c).length > 0);
  });
});

describe('DDL on a real PostgreSQL', () => {
  it('creates all 54 real tables and loads converted values of every type', async (t) => {
    const server = await startPostgres(t);
    if (!server) return;
    const db = await server.createDatabase('ddl_test');
    const schema = 'spade "logs"';
    await server.query(db, `CREATE SCHEMA ${quoteIdent(schema)}`);

    const path = fixturePath('spade/table_config.json');
    const tables = parseTableConfig(readFileSync(path, 'utf8'), path);
    for (const table of tables) await server.query(db, createTableSql(table, { dialect: 'postgres', schema }));
    const count = await server.query<{ n: string }>(
      db,
      'SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = $1',
      [schema],
    );
    assert.equal(Number(count[0]!.n), 54);

    // Values produced by the transformers load into the types the DDL declares.
    await server.query(db, createTableSql(EVERY_TYPE, { dialect: 'postgres', schema }));
    const geoip = await openGeoIp({
      cityPath: fixturePath('geoip/GeoIP2-City-Test.mmdb'),
      asnPath: fixturePath('geoip/GeoLite2-ASN-Test.mmdb'),
    });
    const compiled = compileSchema(EVERY_TYPE, {
      geoip,
      // Never asked: the id below is an integer already.
      userIds: new UserIdMapper({
        urlTemplate: 'http://127.0.0.1:9/users?login={login}',
        jsonPath: 'id',
        timeoutMs: 1000,
        maxConcurrent: 1,
        cacheSize: 1,
      }),
    });
    const props = {
      time: 1678615200.25,
      utc_time: 1e9,
      layout_time: '2016-02-29 23:59:59.999',
      n: -2147483648,
      big: new ExactInteger('9223372036854775807'),
      f: 1e21,
      device_id: 'd'.repeat(40),
      free_text: 'tab\there "q" \\ 日本語',
      flag: 1,
      city: '2.125.160.216',
      country: '2.125.160.216',
      region: '2.125.160.216',
      asn: '1.128.0.1',
      asn_id: '1.0.0.1',
      hash: 'hello',
      user_id: '9007199254740993',
      'we"ird': 'abcdefgh',
    };
    const out: (string | null)[] = [];
    assert.equal(compiled.convert(props, out), 0);
    const placeholders = out.map((_, i) => `$${i + 1}`).join(', ');
    const target = `${quoteIdent(schema)}.${quoteIdent(EVERY_TYPE.event)}`;
    await server.query(db, `INSERT INTO ${target} VALUES (${placeholders})`, out);
    const rows = await server.query<Record<string, string>>(
      db,
      `SELECT ${compiled.columnNames.map((c) => `${quoteIdent(c)}::text AS ${quoteIdent(c)}`).join(', ')} FROM ${target}`,
    );
    assert.deepEqual(rows[0], {
      time: '2023-03-12 03:00:00.25',
      utc_time: '2001-09-09 01:46:40',
      layout_time: '2016-02-29 23:59:59.999',
      n: '-2147483648',
      big: '9223372036854775807',
      f: '1e+21',
      device_id: 'd'.repeat(32),
      free_text: 'tab\there "q" \\ 日本語',
      flag: 'true',
      city: 'Boxford',
      country: 'GB',
      region: 'ENG',
      asn: 'AS1221 Telstra Pty Ltd',
      asn_id: '15169',
      hash: '1564557354',
      user_id: '9007199254740993',
      'we"ird': 'abcde',
    });
  });
});
