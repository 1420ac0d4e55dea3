/**
 * There is no Redshift here: the statements are checked as text, and the Redshift
 * code path runs against a real PostgreSQL (which rejects the Redshift-only COPY),
 * to see that a failed COPY leaves the table alone and never leaks credentials.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { startPostgres } from '../../helpers/postgres.js';
import { COLUMNS } from '../../helpers/tsv-files.js';
import { RedshiftWarehouse, STL_LOAD_ERRORS_SQL } from '../../../worker/warehouse/redshift.js';
import {
  countWindowSql,
  createTempSql,
  deleteWindowSql,
  dropTableSql,
  insertWindowSql,
  qualifiedName,
  redshiftCopySql,
} from '../../../worker/warehouse/sql.js';
import { type TableLoad } from '../../../worker/warehouse/warehouse.js';
import { openWarehouse, parseWarehouseUrl } from '../../../worker/warehouse/open.js';
import { Redactor } from '../../../worker/redact.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const TOKEN = 'FwoGZXIvYXdzEXAMPLETOKEN+abc/def==';
const KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const COLS = ['time', 'n', 's'];

test('Redshift COPY statement with an IAM role', () => {
  assert.equal(
    redshiftCopySql('"tmp"', COLS, 's3://bucket/run-1/manifests/ev.manifest', {
      iamRole: 'arn:aws:iam::123456789012:role/spade-loader',
    }),
    `COPY "tmp" ("time", "n", "s") FROM 's3://bucket/run-1/manifests/ev.manifest' IAM_ROLE 'arn:aws:iam::123456789012:role/spade-loader' ` +
      `MANIFEST GZIP DELIMITER '\\t' ESCAPE EMPTYASNULL NULL AS '\\0' TIMEFORMAT 'auto' COMPUPDATE OFF STATUPDATE OFF`,
  );
  assert.match(redshiftCopySql('"tmp"', COLS, 's3://b/m', { iamRole: 'default' }), / IAM_ROLE default MANIFEST /);
});

test('Redshift COPY statement with access keys', () => {
  assert.equal(
    redshiftCopySql('"tmp"', COLS, 's3://b/m.manifest', {
      accessKeyId: KEY_ID,
      secretAccessKey: SECRET,
      sessionToken: TOKEN,
    }),
    `COPY "tmp" ("time", "n", "s") FROM 's3://b/m.manifest' CREDENTIALS 'aws_access_key_id=${KEY_ID};aws_secret_access_key=${SECRET};token=${TOKEN}' ` +
      `MANIFEST GZIP DELIMITER '\\t' ESCAPE EMPTYASNULL NULL AS '\\0' TIMEFORMAT 'auto' COMPUPDATE OFF STATUPDATE OFF`,
  );
  assert.match(
    redshiftCopySql('"tmp"', COLS, 's3://b/m', { accessKeyId: KEY_ID, secretAccessKey: SECRET }),
    new RegExp(
      `CREDENTIALS 'aws_access_key_id=${KEY_ID};aws_secret_access_key=${SECRET.replace(/\//g, '\\/')}' MANIFEST`,
    ),
  );
});

test('Redshift COPY statement refuses values that could break out of their literal, without echoing secrets', () => {
  assert.throws(
    () => redshiftCopySql('"t"', COLS, "s3://b/x' ; DROP TABLE y; --", { iamRole: 'default' }),
    /manifest URL/,
  );
  assert.throws(() => redshiftCopySql('"t"', COLS, 's3://b/x\\', { iamRole: 'default' }), /manifest URL/);
  assert.throws(() => redshiftCopySql('"t"', COLS, 'https://b/x', { iamRole: 'default' }), /not an s3:\/\/bucket\/key/);
  assert.throws(
    () => redshiftCopySql('"t"', COLS, 's3://b/x', { iamRole: "arn:aws:iam::123456789012:role/x'" }),
    /IAM role/,
  );
  for (const bad of [`${SECRET}'`, `${SECRET};token=x`, `${SECRET}\\`, `${SECRET}\n`]) {
    assert.throws(
      () => redshiftCopySql('"t"', COLS, 's3://b/x', { accessKeyId: KEY_ID, secretAccessKey: bad }),
      (err: Error) => err.message.includes('AWS secret access key') && !err.message.includes(SECRET),
    );
  }
});

test('Redshift transaction statements', () => {
  const target = qualifiedName('physical', 'we"ird');
  assert.equal(target, '"physical"."we""ird"');
  assert.equal(countWindowSql(target), 'SELECT count(*) AS n FROM "physical"."we""ird" WHERE "time" BETWEEN $1 AND $2');
  assert.equal(deleteWindowSql(target), 'DELETE FROM "physical"."we""ird" WHERE "time" BETWEEN $1 AND $2');
  // Redshift has no ON COMMIT DROP: the staging table is dropped before COMMIT instead.
  assert.equal(createTempSql('"tmp"', target, false), 'CREATE TEMP TABLE "tmp" (LIKE "physical"."we""ird")');
  assert.equal(
    createTempSql('"tmp"', target, true),
    'CREATE TEMP TABLE "tmp" (LIKE "physical"."we""ird") ON COMMIT DROP',
  );
  assert.equal(dropTableSql('"tmp"'), 'DROP TABLE "tmp"');
  assert.equal(
    insertWindowSql(target, '"tmp"', ['time', 'we"ird col']),
    'INSERT INTO "physical"."we""ird" ("time", "we""ird col") SELECT "time", "we""ird col" FROM "tmp" WHERE "time" BETWEEN $1 AND $2',
  );
  assert.match(STL_LOAD_ERRORS_SQL, /FROM stl_load_errors WHERE query = pg_last_copy_id\(\)/);
});

test('Redshift URLs', () => {
  assert.equal(
    parseWarehouseUrl('postgres://u:p@spade.abc123.us-west-2.redshift.amazonaws.com:5439/dev').kind,
    'redshift',
  );
  assert.equal(
    parseWarehouseUrl('postgres://u:p@wg.123.us-west-2.redshift-serverless.amazonaws.com:5439/dev').kind,
    'redshift',
  );
  assert.equal(parseWarehouseUrl('redshift://u:p@10.0.0.1:5439/dev').kind, 'redshift');
});

test('Redactor hides secrets, also percent-encoded', () => {
  const redactor = new Redactor();
  redactor.add(SECRET);
  redactor.addUrl('postgres://u:p%40ssw0rd@h/db');
  assert.equal(
    redactor.apply(`key ${SECRET} url ${encodeURIComponent(SECRET)} pw p@ssw0rd p%40ssw0rd`),
    'key *** url *** pw *** ***',
  );
});

test('Redshift load path on a PostgreSQL server: COPY fails, table untouched, no credentials in messages', async (t) => {
  const server = await startPostgres(t);
  if (!server) return;
  delete process.env.REDSHIFT_IAM_ROLE; // this test wants the access-key path
  const db = await server.createDatabase('redshift_path');
  await server.query(
    db,
    `CREATE SCHEMA physical;
     CREATE TABLE physical.ev (time timestamp, n int, s varchar(200));
     INSERT INTO physical.ev VALUES ('2024-03-01 10:30:00', 1, 'kept'), ('2024-03-01 12:00:00', 2, 'outside');`,
  );
  const logs: string[] = [];
  const url = db.replace(/^postgres:/, 'redshift:');
  const redshiftUrlWarehouse = await openWarehouse(url, {
    log: (m) => logs.push(m),
    awsCredentials: async () => ({ accessKeyId: KEY_ID, secretAccessKey: SECRET, sessionToken: TOKEN }),
  });
  await redshiftUrlWarehouse.close();
  assert.equal(redshiftUrlWarehouse.kind, 'redshift');

  const warehouse = await RedshiftWarehouse.open(db, {
    log: (m) => logs.push(m),
    awsCredentials: async () => ({ accessKeyId: KEY_ID, secretAccessKey: SECRET, sessionToken: TOKEN }),
  });
  try {
    const load: TableLoad = {
      schema: 'physical',
      table: 'ev',
      columns: COLUMNS,
      window: { start: '2024-03-01 10:00:00', end: '2024-03-01 11:00:00' },
      files: [{ key: 'run/ev/v1/a.gz', url: 's3://bucket/run/ev/v1/a.gz' }],
      manifestUrl: 's3://bucket/run/manifests/ev.manifest',
      maxShrink: 0.1,
      allowShrink: false,
    };
    const noFiles = async (): Promise<Readable> => {
      throw new Error('Redshift must not read files itself');
    };
    const result = await warehouse.replaceWindow(load, noFiles);
    assert.equal(result.status, 'failed');
    // The count and DELETE ran before the COPY (PostgreSQL does not know Redshift's COPY options).
    assert.equal(result.before, 1);
    assert.equal(result.deleted, 1);
    assert.match(result.error ?? '', /physical\.ev: copying file s3:\/\/bucket\/run\/manifests\/ev\.manifest failed/);
    const rows = await server.query<{ n: number }>(db, 'SELECT n FROM physical.ev ORDER BY n');
    assert.deepEqual(
      rows.map((r) => r.n),
      [1, 2],
    );
    // The COPY that reached the server (logged with its failure) names the config's columns in file order.
    const copies = readFileSync(server.logFile, 'utf8')
      .split('\n')
      .filter((line) => line.includes('STATEMENT:  COPY '));
    assert.equal(copies.length, 1, copies.join('\n'));
    assert.match(
      copies[0] ?? '',
      /STATEMENT: {2}COPY "spade_load_ev_\d+_[0-9a-f]{6}" \("time", "n", "s"\) FROM 's3:\/\/bucket\/run\/manifests\/ev\.manifest' /,
    );

    // A table whose columns differ is refused by the same check before anything runs; the table is untouched.
    await server.query(db, 'CREATE TABLE physical.wrong (n int, "time" timestamp, s varchar(20), extra int)');
    await server.query(db, "INSERT INTO physical.wrong VALUES (7, '2024-03-01 10:30:00', 'kept', 8)");
    const refused = await warehouse.replaceWindow({ ...load, table: 'wrong' }, noFiles);
    assert.equal(refused.status, 'columns_refused');
    assert.equal(
      refused.error,
      'table physical.wrong does not match the config\'s columns (not in the config: "extra" integer; ' +
        'type mismatch: "s" is character varying(20), the config writes VARCHAR(200)); ' +
        'the table was left as it was: ALTER it to match, or fix the config',
    );
    assert.deepEqual(await server.query(db, 'SELECT n, s, extra FROM physical.wrong'), [{ n: 7, s: 'kept', extra: 8 }]);

    const noManifest = await warehouse.replaceWindow({ ...load, manifestUrl: undefined }, noFiles);
    assert.equal(noManifest.status, 'failed');
    assert.match(noManifest.error ?? '', /manifest URL/);

    // Once fetched for a COPY, the keys are hidden from anything the warehouse reports.
    assert.equal(warehouse.redact(`${KEY_ID} ${SECRET} ${TOKEN} ${server.password}`), '*** *** *** ***');
    for (const text of [result.error ?? '', noManifest.error ?? '', ...logs]) {
      for (const secret of [SECRET, TOKEN, KEY_ID, server.password]) assert.ok(!text.includes(secret), text);
    }
    assert.ok(logs.some((line) => line.includes('COPY 1 file(s) from s3://bucket/run/manifests/ev.manifest')));
  } finally {
    await warehouse.close();
  }

  // With an IAM role no keys are fetched at all.
  let fetched = 0;
  const withRole = await RedshiftWarehouse.open(db, {
    iamRole: 'arn:aws:iam::123456789012:role/spade-loader',
    awsCredentials: async () => {
      fetched++;
      return { accessKeyId: KEY_ID, secretAccessKey: SECRET };
    },
  });
  try {
    assert.deepEqual(await withRole.copyAuth(), { iamRole: 'arn:aws:iam::123456789012:role/spade-loader' });
    assert.equal(fetched, 0);
  } finally {
    await withRole.close();
  }
});
