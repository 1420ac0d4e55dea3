/**
 * Continuous loading into Redshift. No Redshift runs here: the Redshift loader
 * (ContinuousLoader + WarehouseAppender + RedshiftWarehouse) runs against a real
 * PostgreSQL standing in for the connection, as the replay's Redshift path is
 * tested (redshift.test.ts). Every statement the loader sends is recorded on its
 * way to the server. PostgreSQL cannot run Redshift's `COPY … FROM 's3://…manifest'
 * MANIFEST …`, so (in the first test only) that one statement is carried out the
 * way Redshift would: the MANIFEST is read from s3rver, and the files it names
 * are copied into the table on the same connection, inside the same transaction;
 * `pg_last_copy_count()` answers with their rows. Everything else (BEGIN, LOCK,
 * the column check, the record INSERT, COMMIT/ROLLBACK) runs on PostgreSQL itself.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { startPostgres } from '../../helpers/postgres.js';
import { startS3Server, type S3TestServer } from '../../helpers/s3server.js';
import { gzipRows } from '../../helpers/tsv-files.js';
import { ContinuousLoader } from '../../../worker/process/loader.js';
import type { BatchManifest } from '../../../worker/process/batch.js';
import { openStore } from '../../../worker/store/location.js';
import { parseTableConfig } from '../../../worker/transform/schema.js';
import { WarehouseAppender } from '../../../worker/warehouse/append.js';
import { openWarehouse } from '../../../worker/warehouse/open.js';

const ROLE = 'arn:aws:iam::123456789012:role/spade-loader';
const KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const OPTIONS = `MANIFEST GZIP DELIMITER '\\t' ESCAPE EMPTYASNULL NULL AS '\\0' TIMEFORMAT 'auto' COMPUPDATE OFF STATUPDATE OFF`;

const schemas = parseTableConfig(
  JSON.stringify(
    ['ev', 'other'].map((EventName) => ({
      EventName,
      Columns: [
        { InboundName: 'time', OutboundName: 'time', Transformer: 'f@timestamp@unix', ColumnCreationOptions: '' },
        { InboundName: 'n', OutboundName: 'n', Transformer: 'int', ColumnCreationOptions: '' },
        { InboundName: 's', OutboundName: 's', Transformer: 'varchar', ColumnCreationOptions: '(200)' },
      ],
    })),
  ),
  'test',
);

const CREATE_TABLES = `CREATE SCHEMA physical;
  CREATE TABLE physical.ev (s varchar(200), n int, time timestamp);
  CREATE TABLE physical.other (time timestamp, n int, s varchar(200));
  -- Redshift's DDL of the record table (DEFAULT SYSDATE) is not PostgreSQL's: it exists already here.
  CREATE TABLE physical.spade_loaded_manifests (manifest text PRIMARY KEY, loaded_at timestamptz NOT NULL DEFAULT now(), files integer, rows bigint);`;

/** Statements sent to the database through any pg client, while recording is on. */
interface StatementLog {
  statements: string[];
  params: unknown[][];
  restore(): void;
}

/**
 * Records every text statement of every pg client (the warehouse's pool) and,
 * with `s3`, carries out Redshift COPYs from a MANIFEST as Redshift would.
 */
function recordStatements(s3: S3TestServer | null): StatementLog {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  const log: StatementLog = { statements: [], params: [], restore: () => (proto.query = original) };
  const lastCopy = new WeakMap<object, number>();
  proto.query = function (this: pg.Client, ...args: unknown[]): unknown {
    const [text, params] = args;
    if (typeof text !== 'string') return original.apply(this, args);
    log.statements.push(text);
    log.params.push(Array.isArray(params) ? params : []);
    const copy = /^COPY (\S+) \(([^)]*)\) FROM '(s3:\/\/[^']+)' .* MANIFEST GZIP /.exec(text);
    if (s3 && copy) {
      return (async () => {
        const manifest = JSON.parse((await getObject(s3, copy[3] as string)).toString('utf8')) as {
          entries: { url: string; mandatory: boolean }[];
        };
        let rows = 0;
        for (const entry of manifest.entries) {
          const stream = original.call(
            this,
            copyFrom(`COPY ${copy[1]} (${copy[2]}) FROM STDIN WITH (FORMAT text, DELIMITER E'\\t', NULL '')`),
          ) as ReturnType<typeof copyFrom>;
          await pipeline(Readable.from([await getObject(s3, entry.url)]), createGunzip(), stream);
          rows += stream.rowCount;
        }
        lastCopy.set(this, rows);
        return { command: 'COPY', rowCount: rows, rows: [], fields: [] };
      })();
    }
    if (s3 && text === 'SELECT pg_last_copy_count() AS n') {
      return Promise.resolve({ command: 'SELECT', rowCount: 1, rows: [{ n: lastCopy.get(this) ?? 0 }], fields: [] });
    }
    return original.apply(this, args);
  };
  return log;
}

async function getObject(s3: S3TestServer, url: string): Promise<Buffer> {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
  if (!m) throw new Error(`not an s3 URL: ${url}`);
  const res = await s3.client.send(new GetObjectCommand({ Bucket: m[1], Key: m[2] }));
  return Buffer.from(await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

/** Puts a committed batch into the output store: its row files and its success manifest. */
async function putBatch(
  s3: S3TestServer,
  id: string,
  files: { event: string; rows: (string | number | null)[][] }[],
): Promise<string> {
  const manifestFiles: BatchManifest['files'] = [];
  for (const [i, f] of files.entries()) {
    const key = `20240301/${f.event}/v1/${id}-${i}.gz`;
    const body = gzipRows(f.rows);
    await s3.client.send(new PutObjectCommand({ Bucket: 'out', Key: `stream/${key}`, Body: body }));
    manifestFiles.push({
      key,
      kind: 'rows',
      event: f.event,
      version: 1,
      rows: f.rows.length,
      bytes: body.length,
      uncompressedBytes: 0,
    });
  }
  const manifest = {
    runtag: '20240301',
    partition: id,
    attempt: id,
    files: manifestFiles,
    finishedAt: '2024-03-01T10:00:00.000Z',
    kind: 'spade-process-batch',
    input: 's3://edge/',
    inputs: [],
    openedAt: '2024-03-01T10:00:00.000Z',
  } as unknown as BatchManifest;
  const key = `20240301/_success/${id}.json`;
  await s3.client.send(
    new PutObjectCommand({ Bucket: 'out', Key: `stream/${key}`, Body: JSON.stringify(manifest, null, 1) }),
  );
  return key;
}

/** A loader over `warehouseUrl` (Redshift) whose hooks resolve once `expected` batches are loaded. */
async function startLoader(
  s3: S3TestServer,
  warehouseUrl: string,
  opts: Parameters<typeof openWarehouse>[1],
  expected: number,
): Promise<{
  loader: ContinuousLoader;
  loaded: Promise<{ key: string; rows: number; already: boolean }[]>;
  failures: string[];
}> {
  const appender = await WarehouseAppender.open(await openWarehouse(warehouseUrl, opts), { createTables: true });
  const done: { key: string; rows: number; already: boolean }[] = [];
  const failures: string[] = [];
  let resolve!: (v: typeof done) => void;
  const loaded = new Promise<typeof done>((r) => (resolve = r));
  const loader = new ContinuousLoader(
    appender,
    openStore('s3://out/stream', { client: s3.client }),
    {
      loaded: async (key, rows, already) => {
        done.push({ key, rows, already });
        if (done.length === expected) resolve(done);
      },
      failed: (_keys, err) => failures.push(err.message),
    },
    { loadEveryMs: 0, retryMs: 60_000 },
    () => schemas,
  );
  return { loader, loaded, failures };
}

test('Redshift loading: MANIFEST per table and batch in the output store, COPY with the replay options, record and COMMIT in one transaction', async (t) => {
  const server = await startPostgres(t);
  if (!server) return;
  const s3 = await startS3Server(t, { buckets: ['out'] });
  const db = await server.createDatabase('redshift_load');
  await server.query(db, CREATE_TABLES);
  const b1 = await putBatch(s3, 'b1', [
    { event: 'ev', rows: [['2024-03-01 10:00:00', 1, 'one']] },
    { event: 'other', rows: [['2024-03-01 10:00:01', 2, 'two']] },
    { event: 'ev', rows: [['2024-03-01 10:00:02', 3, 'tab\there']] },
  ]);
  const b2 = await putBatch(s3, 'b2', [{ event: 'ev', rows: [['2024-03-01 10:05:00', 4, null]] }]);
  const url = db.replace(/^postgres:/, 'redshift:');

  const log = recordStatements(s3);
  t.after(() => log.restore());
  const { loader, loaded, failures } = await startLoader(s3, url, { iamRole: ROLE }, 2);
  const since = log.statements.length;
  loader.enqueue(b1);
  loader.enqueue(b2);
  const results = await loaded;
  await loader.stop();
  assert.deepEqual(failures, []);
  assert.deepEqual(results, [
    { key: b1, rows: 3, already: false },
    { key: b2, rows: 1, already: false },
  ]);

  // The MANIFEST files: one per batch and table, naming exactly that table's files of the batch.
  const manifestOf = async (key: string): Promise<unknown> =>
    JSON.parse((await getObject(s3, `s3://out/stream/${key}`)).toString('utf8'));
  assert.deepEqual(await manifestOf('20240301/_load/b1/ev.manifest'), {
    entries: [
      { url: 's3://out/stream/20240301/ev/v1/b1-0.gz', mandatory: true },
      { url: 's3://out/stream/20240301/ev/v1/b1-2.gz', mandatory: true },
    ],
  });
  assert.deepEqual(await manifestOf('20240301/_load/b1/other.manifest'), {
    entries: [{ url: 's3://out/stream/20240301/other/v1/b1-1.gz', mandatory: true }],
  });
  assert.deepEqual(await manifestOf('20240301/_load/b2/ev.manifest'), {
    entries: [{ url: 's3://out/stream/20240301/ev/v1/b2-0.gz', mandatory: true }],
  });

  // The statements of the load, in order: one transaction for both batches and both tables.
  const columnCheck = /^SELECT column_name, data_type, character_maximum_length FROM information_schema\.columns /;
  const copy = (table: string, manifest: string): string =>
    `COPY "physical"."${table}" ("time", "n", "s") FROM 's3://out/stream/20240301/_load/${manifest}' IAM_ROLE '${ROLE}' ${OPTIONS}`;
  const record = 'INSERT INTO "physical"."spade_loaded_manifests" (manifest, files, rows) VALUES ($1, $2, $3)';
  const statements = log.statements.slice(since).map((s) => (columnCheck.test(s) ? 'column check' : s));
  assert.deepEqual(statements, [
    'BEGIN',
    'LOCK "physical"."spade_loaded_manifests"',
    'SELECT manifest FROM "physical"."spade_loaded_manifests" WHERE manifest IN ($1, $2)',
    'column check',
    'column check',
    copy('ev', 'b1/ev.manifest'),
    'SELECT pg_last_copy_count() AS n',
    copy('other', 'b1/other.manifest'),
    'SELECT pg_last_copy_count() AS n',
    record,
    copy('ev', 'b2/ev.manifest'),
    'SELECT pg_last_copy_count() AS n',
    record,
    'COMMIT',
  ]);
  const recordParams = log.params.slice(since).filter((_p, i) => log.statements[since + i] === record);
  assert.deepEqual(recordParams, [
    ['s3://out/stream/20240301/_success/b1.json', 3, 3],
    ['s3://out/stream/20240301/_success/b2.json', 1, 1],
  ]);

  // What PostgreSQL committed: the rows (by column name: physical.ev has its columns in another order) and the records.
  assert.deepEqual(await server.query(db, 'SELECT time::text, n, s FROM physical.ev ORDER BY n'), [
    { time: '2024-03-01 10:00:00', n: 1, s: 'one' },
    { time: '2024-03-01 10:00:02', n: 3, s: 'tab\there' },
    { time: '2024-03-01 10:05:00', n: 4, s: null },
  ]);
  assert.deepEqual(await server.query(db, 'SELECT n FROM physical.other'), [{ n: 2 }]);
  assert.deepEqual(
    await server.query(db, 'SELECT manifest, files, rows::int FROM physical.spade_loaded_manifests ORDER BY manifest'),
    [
      { manifest: 's3://out/stream/20240301/_success/b1.json', files: 3, rows: 3 },
      { manifest: 's3://out/stream/20240301/_success/b2.json', files: 1, rows: 1 },
    ],
  );

  // A restart that finds b1 still in its checkpoint (killed before saving) loads nothing twice.
  const again = await startLoader(s3, url, { iamRole: ROLE }, 1);
  const before = log.statements.length;
  again.loader.enqueue(b1);
  assert.deepEqual(await again.loaded, [{ key: b1, rows: 0, already: true }]);
  await again.loader.stop();
  assert.ok(!log.statements.slice(before).some((s) => s.startsWith('COPY')), 'no COPY for a recorded batch');
  assert.deepEqual(await server.query(db, 'SELECT count(*)::int AS n FROM physical.ev'), [{ n: 3 }]);
});

test('Redshift loading: a failed COPY rolls the group back, records nothing, and masks the credentials', async (t) => {
  const server = await startPostgres(t);
  if (!server) return;
  const s3 = await startS3Server(t, { buckets: ['out'] });
  const db = await server.createDatabase('redshift_load_fail');
  await server.query(db, CREATE_TABLES);
  const b1 = await putBatch(s3, 'b1', [
    { event: 'other', rows: [['2024-03-01 10:00:01', 2, 'two']] },
    { event: 'ev', rows: [['2024-03-01 10:00:00', 1, 'one']] },
  ]);
  // No emulation: PostgreSQL rejects the Redshift COPY, as a failing Redshift COPY would fail.
  const log = recordStatements(null);
  t.after(() => log.restore());
  const logs: string[] = [];
  let failed!: (err: Error) => void;
  const failure = new Promise<Error>((resolve) => (failed = resolve));
  const appender = await WarehouseAppender.open(
    await openWarehouse(db.replace(/^postgres:/, 'redshift:'), {
      awsCredentials: async () => ({ accessKeyId: KEY_ID, secretAccessKey: SECRET }),
      log: (m) => logs.push(m),
    }),
  );
  const loader = new ContinuousLoader(
    appender,
    openStore('s3://out/stream', { client: s3.client }),
    {
      loaded: async () => assert.fail('nothing may load'),
      failed: (_keys, err) => failed(err),
    },
    { loadEveryMs: 0, retryMs: 60_000 },
    () => schemas,
  );
  const since = log.statements.length;
  loader.enqueue(b1);
  const err = await failure;
  await loader.stop();
  assert.match(
    err.message,
    /^physical\.ev: COPY of s3:\/\/out\/stream\/20240301\/_load\/b1\/ev\.manifest \(batch s3:\/\/out\/stream\/20240301\/_success\/b1\.json\) failed: /,
  );
  const sent = log.statements.slice(since);
  assert.equal(sent.filter((s) => s.startsWith('COPY')).length, 1);
  assert.match(sent.find((s) => s.startsWith('COPY')) ?? '', new RegExp(`CREDENTIALS 'aws_access_key_id=${KEY_ID};`));
  assert.ok(sent.includes('ROLLBACK') && !sent.includes('COMMIT'), sent.join('\n'));
  for (const text of [err.message, err.stack ?? '', ...logs]) {
    for (const secret of [SECRET, KEY_ID, server.password]) assert.ok(!text.includes(secret), text);
  }
  assert.deepEqual(await server.query(db, 'SELECT count(*)::int AS n FROM physical.spade_loaded_manifests'), [
    { n: 0 },
  ]);
  assert.deepEqual(await server.query(db, 'SELECT count(*)::int AS n FROM physical.ev'), [{ n: 0 }]);
});
