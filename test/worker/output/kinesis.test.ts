/**
 * The Kinesis publisher against a real Kinesis API (kinesalite on loopback),
 * with a proxy in between where a test controls which PutRecords entries fail.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it, type TestContext } from 'node:test';
import { isLosslessNumber, parse as parseLossless } from 'lossless-json';
import {
  checkpointKey,
  KinesisPublisher,
  quarantineKey,
  type KinesisPublishOptions,
} from '../../../worker/output/kinesis-publish.js';
import { RecordEncoder } from '../../../worker/output/kinesis-record.js';
import { parseTableConfig, type TableSchema } from '../../../worker/transform/schema.js';
import { DirStore } from '../../helpers/dirstore.js';
import { startKinesis, type KinesisTestServer } from '../../helpers/kinesalite.js';
import { startKinesisProxy, type ProxyRules } from '../../helpers/kinesis-proxy.js';
import { gzipRows, type Field } from '../../helpers/tsv-files.js';

const CONFIG = JSON.stringify([
  {
    EventName: 'score',
    Version: 2,
    Columns: [
      { InboundName: 'time', OutboundName: 'time', Transformer: 'f@timestamp@unix', ColumnCreationOptions: '' },
      { InboundName: 'id', OutboundName: 'id', Transformer: 'bigint', ColumnCreationOptions: '' },
      { InboundName: 'name', OutboundName: 'name', Transformer: 'varchar', ColumnCreationOptions: '(65535)' },
      { InboundName: 'ok', OutboundName: 'ok', Transformer: 'bool', ColumnCreationOptions: '' },
      { InboundName: 'points', OutboundName: 'points', Transformer: 'float', ColumnCreationOptions: '' },
      { InboundName: 'n', OutboundName: 'n', Transformer: 'int', ColumnCreationOptions: '' },
    ],
  },
]);
const RUNTAG = 'run1';
const FILE = `${RUNTAG}/score/v2/p00000-a1-t1-00000.tsv.gz`;
const UUIDS = `${FILE}.uuids.gz`;

/** The edge event's uuid of row i, as the transform's sidecar holds it. */
const uuidOf = (i: number): string => `5d0c7a3e-1b2f-4c1d-9e8f-${String(i).padStart(12, '0')}`;

function schemas(): TableSchema[] {
  return parseTableConfig(CONFIG, 'test config');
}

function row(i: number): Field[] {
  return [
    `2024-03-01 10:${String(i % 60).padStart(2, '0')}:00.25`,
    `9007199254740${993 + i}`,
    `user\t${i}`,
    i % 2 ? 'true' : 'false',
    '1.5',
    i,
  ];
}

interface Setup {
  kinesis: KinesisTestServer;
  store: DirStore;
  publisher: (endpoint: string, concurrency?: number) => Promise<KinesisPublisher>;
}

async function setup(t: TestContext, stream: string, rows: Field[][]): Promise<Setup | null> {
  const kinesis = await startKinesis(t);
  if (!kinesis) return null;
  await kinesis.createStream(stream, 1);
  const store = DirStore.temp(t);
  await store.put(FILE, gzipRows(rows));
  await store.put(UUIDS, gzipRows(rows.map((_, i) => [uuidOf(i)])));
  return {
    kinesis,
    store,
    publisher: async (endpoint, concurrency = 1) => {
      const opts: KinesisPublishOptions = {
        targets: [{ stream, tables: null }],
        endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'k', secretAccessKey: 's' },
        concurrency,
        baseDelayMs: 5,
        maxDelayMs: 50,
      };
      const p = await KinesisPublisher.open(opts);
      t.after(() => p.close());
      return p;
    },
  };
}

const publishScore = (p: KinesisPublisher, store: DirStore) =>
  p.publishTable({
    store,
    runtag: RUNTAG,
    replay: true,
    schemas: schemas(),
    table: 'score',
    files: [{ key: FILE, uuids: UUIDS }],
  });

function countBy<T>(xs: T[]): Map<T, number> {
  const m = new Map<T, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}

describe('record encoding', () => {
  it('types values per column: exact bigints as JSON numbers, bools, floats, null, strings and timestamps as text', () => {
    const enc = new RecordEncoder(schemas()[0]!, 'tag', true);
    const text = enc.encode(['2024-03-01 10:00:00.5', '9007199254740993', 'a\t"b"\\', 'true', '-0.125', null], 'u-1');
    const rec = parseLossless(text) as Record<string, unknown>;
    assert.equal(rec.table, 'score');
    assert.equal(String(rec.version), '2');
    assert.equal(rec.runtag, 'tag');
    assert.equal(rec.replay, true);
    assert.equal(rec.uuid, 'u-1');
    const cols = rec.columns as Record<string, unknown>;
    assert.ok(isLosslessNumber(cols.id));
    assert.equal(String(cols.id), '9007199254740993');
    assert.equal(cols.time, '2024-03-01 10:00:00.5');
    assert.equal(cols.name, 'a\t"b"\\');
    assert.equal(cols.ok, true);
    assert.equal(String(cols.points), '-0.125');
    assert.equal(cols.n, null);
    assert.match(text, /"id":9007199254740993,/);
  });

  it('writes the uuid as a JSON string, whatever the edge gave', () => {
    const enc = new RecordEncoder(schemas()[0]!, 'tag', false);
    const rec = JSON.parse(enc.encode(['2024-03-01 10:00:00', '1', 'a', 'true', '1', '2'], 'a"b\\c')) as {
      uuid: string;
    };
    assert.equal(rec.uuid, 'a"b\\c');
  });
});

describe('publishing to a 1-shard stream through a proxy that fails entries', () => {
  const ROWS = 1200;
  const rows = Array.from({ length: ROWS }, (_, i) => row(i));

  async function run(t: TestContext, stream: string, rules: ProxyRules) {
    const s = await setup(t, stream, rows);
    if (!s) return null;
    const proxy = await startKinesisProxy(t, s.kinesis.endpoint, rules);
    const p = await s.publisher(proxy.endpoint);
    const [result] = await publishScore(p, s.store);
    const records = await s.kinesis.readAll(stream);
    return { s, proxy, result: result!, records, p };
  }

  it('retries only the failed entries: every row arrives exactly once', async (t) => {
    // Entries 0, 7, 14, ... of the first request fail and never reach the stream.
    const r = await run(t, 'partial', { failEntry: (req, i) => req === 0 && i % 7 === 0 });
    if (!r) return;
    assert.equal(r.proxy.failed, 72);
    // Batches of 500: the first, then its 72 failed entries alone, then the rest.
    assert.deepEqual(r.proxy.requests, [500, 72, 500, 200]);
    assert.deepEqual(r.result.failed, []);
    assert.equal(r.result.published, ROWS);
    assert.equal(r.result.retriedEntries, 72);
    const uuids = r.records.map((x) => x.partitionKey);
    assert.equal(uuids.length, ROWS);
    assert.equal(new Set(uuids).size, ROWS);
    assert.deepEqual(new Set(uuids), new Set(Array.from({ length: ROWS }, (_, i) => uuidOf(i))));
    const first = parseLossless(r.records.find((x) => x.partitionKey === uuidOf(5))!.data) as {
      columns: Record<string, unknown>;
    };
    assert.equal(String(first.columns.id), '9007199254740998');
    assert.equal(first.columns.name, 'user\t5');
  });

  it('entries reported failed that were in fact stored come twice, and only those', async (t) => {
    // Entries 0, 10, 20, ... of the first request are stored, but answered as throttled.
    const r = await run(t, 'lying', { lieEntry: (req, i) => req === 0 && i % 10 === 0 });
    if (!r) return;
    assert.equal(r.proxy.lied, 50);
    assert.deepEqual(r.proxy.requests, [500, 50, 500, 200]);
    assert.equal(r.records.length, ROWS + 50);
    const counts = countBy(r.records.map((x) => x.partitionKey));
    assert.equal(counts.size, ROWS);
    const twice = [...counts].filter(([, n]) => n === 2).map(([u]) => u);
    assert.deepEqual(new Set(twice), new Set(Array.from({ length: 50 }, (_, k) => uuidOf(k * 10))));
  });

  it('throttling of every entry for a while slows the sender down instead of failing', async (t) => {
    const r = await run(t, 'throttled', { failEntry: (req) => req < 6 });
    if (!r) return;
    assert.deepEqual(r.result.failed, []);
    assert.deepEqual(r.proxy.requests.slice(0, 7), [500, 500, 500, 500, 500, 500, 500]);
    assert.equal(new Set(r.records.map((x) => x.partitionKey)).size, ROWS);
    assert.equal(r.records.length, ROWS);
  });
});

describe('checkpoints and quarantine', () => {
  it('a published file is not published again; an oversize record is quarantined with its reason', async (t) => {
    const big = 'x'.repeat(1_100_000);
    const rows = [row(0), [...row(1).slice(0, 2), big, ...row(1).slice(3)], row(2)];
    const s = await setup(t, 'cp', rows);
    if (!s) return;
    const p = await s.publisher(s.kinesis.endpoint);
    const [first] = await publishScore(p, s.store);
    assert.equal(first!.published, 2);
    assert.equal(first!.quarantined, 1);
    const q = readFileSync(s.store.pathOf(quarantineKey(RUNTAG, 'cp', FILE)), 'utf8');
    const qrec = JSON.parse(q) as { row: number; reason: string };
    assert.equal(qrec.row, 1);
    assert.match(qrec.reason, /over the 1 MiB limit/);
    assert.ok(await s.store.exists(checkpointKey(RUNTAG, 'cp', FILE)));
    const [second] = await publishScore(p, s.store);
    assert.equal(second!.alreadyPublished, 1);
    assert.equal(second!.published, 0);
    const records = await s.kinesis.readAll('cp');
    assert.deepEqual(
      records.map((r) => r.partitionKey),
      [uuidOf(0), uuidOf(2)],
    );
  });
});

describe('uuid sidecars', () => {
  it('a file without a uuid sidecar is refused, naming the runtag and what to do; nothing is sent', async (t) => {
    const s = await setup(t, 'nouuids', [row(0), row(1)]);
    if (!s) return;
    const p = await s.publisher(s.kinesis.endpoint);
    const [r] = await p.publishTable({
      store: s.store,
      runtag: RUNTAG,
      replay: true,
      schemas: schemas(),
      table: 'score',
      files: [{ key: FILE }],
    });
    assert.equal(r!.published, 0);
    assert.equal(r!.failed.length, 1);
    assert.match(r!.failed[0]!.error, /runtag run1 was transformed without uuids/);
    assert.match(r!.failed[0]!.error, /re-run the transform under a new --runtag with --kinesis-stream/);
    assert.equal(await s.store.exists(checkpointKey(RUNTAG, 'nouuids', FILE)), false);
    assert.deepEqual(await s.kinesis.readAll('nouuids'), []);
  });

  it('a sidecar with fewer uuids than rows fails the file (no checkpoint); an unusable uuid is quarantined', async (t) => {
    const s = await setup(t, 'short', [row(0), row(1), row(2)]);
    if (!s) return;
    const p = await s.publisher(s.kinesis.endpoint);
    await s.store.put(UUIDS, gzipRows([[uuidOf(0)], [uuidOf(1)]]));
    const [short] = await publishScore(p, s.store);
    assert.equal(short!.failed.length, 1);
    assert.match(short!.failed[0]!.error, /uuids\.gz ends at line 2, before row 3 of /);
    assert.equal(await s.store.exists(checkpointKey(RUNTAG, 'short', FILE)), false);
    // An empty uuid cannot be a partition key: that row is quarantined, the others go.
    await s.store.put(UUIDS, gzipRows([[uuidOf(0)], [null], [uuidOf(2)]]));
    const [ok] = await publishScore(p, s.store);
    assert.deepEqual(ok!.failed, []);
    assert.equal(ok!.quarantined, 1);
    const q = JSON.parse(readFileSync(s.store.pathOf(quarantineKey(RUNTAG, 'short', FILE)), 'utf8')) as {
      row: number;
      reason: string;
    };
    assert.equal(q.row, 1);
    assert.match(q.reason, /not a valid partition key/);
    const keys = (await s.kinesis.readAll('short')).map((r) => r.partitionKey);
    assert.ok(keys.includes(uuidOf(0)) && keys.includes(uuidOf(2)) && !keys.includes(uuidOf(1)));
  });
});
