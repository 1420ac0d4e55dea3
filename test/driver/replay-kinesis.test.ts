/**
 * Replays that publish to Kinesis, end to end with real parts: the `spade` CLI
 * as a child process, s3rver, a throwaway PostgreSQL warehouse and kinesalite
 * (read back shard by shard), with a tampering proxy where a test needs one.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { gunzipSync } from 'node:zlib';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isLosslessNumber, parse as parseLossless } from 'lossless-json';
import type { PublishCheckpoint } from '../../worker/output/kinesis-publish.js';
import { decodeRow } from '../../worker/output/tsv.js';
import { edgeRowUuids } from '../helpers/edge-uuids.js';
import { startKinesis, type KinesisTestServer, type StreamRecord } from '../helpers/kinesalite.js';
import { startKinesisProxy } from '../helpers/kinesis-proxy.js';
import { DEMO_CONFIG, SPADE, startReplayWorld, type ReplayWorld } from '../helpers/replay-env.js';

const START = '2023-11-05 00:30:00';
const END = '2023-11-05 03:00:00';
const TABLES = ['login', 'video_play'];

interface Published {
  table: string;
  version: number;
  runtag: string;
  replay: boolean;
  uuid: string;
  columns: Record<string, unknown>;
}

function parseRecord(r: StreamRecord): Published {
  return parseLossless(r.data) as Published;
}

/** A JSON value as the text PostgreSQL gives for `col::text` (numbers keep their exact digits). */
function asText(v: unknown): string | null {
  if (v === null) return null;
  if (isLosslessNumber(v)) return v.value;
  return String(v);
}

/** The window's rows of a table, each as its columns' text in config order, sorted. */
async function tableRows(w: ReplayWorld, table: string): Promise<string[]> {
  const cols = w.schemas.find((s) => s.event === table)!.columns.map((c) => c.outboundName);
  const rows = await w.query<Record<string, string | null>>(
    `SELECT ${cols.map((c, i) => `"${c}"::text AS c${i}`).join(', ')} FROM physical."${table}" WHERE time BETWEEN $1 AND $2`,
    [START, END],
  );
  return rows.map((r) => JSON.stringify(cols.map((_, i) => r[`c${i}`] ?? null))).sort();
}

function recordRows(w: ReplayWorld, records: Published[], table: string): string[] {
  const cols = w.schemas.find((s) => s.event === table)!.columns.map((c) => c.outboundName);
  return records
    .filter((r) => r.table === table)
    .map((r) => JSON.stringify(cols.map((c) => asText(r.columns[c]))))
    .sort();
}

/** The uuids in a row file's sidecar, in row order. */
async function sidecarUuids(w: ReplayWorld, rowKey: string): Promise<string[]> {
  const text = gunzipSync(await w.out.readBytes(`${rowKey}.uuids.gz`)).toString('utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => decodeRow(l)[0]!);
}

async function checkpoints(w: ReplayWorld, runtag: string, stream: string): Promise<PublishCheckpoint[]> {
  const out: PublishCheckpoint[] = [];
  for await (const o of w.out.list(`${runtag}/_kinesis/${stream}/`)) {
    if (o.key.endsWith('.json')) out.push(JSON.parse((await w.out.readBytes(o.key)).toString('utf8')));
  }
  return out;
}

test('replay publishing to Kinesis', async (t0) => {
  let world: ReplayWorld | null = null;
  let kinesis: KinesisTestServer | null = null;

  await t0.test('every loaded row arrives exactly once in a 2-shard stream, marked as a replay', async (t) => {
    world = await startReplayWorld(t0, {
      startSec: Date.UTC(2023, 10, 5, 5, 0, 0) / 1000,
      endSec: Date.UTC(2023, 10, 5, 13, 0, 0) / 1000,
      events: 4000,
      dbName: 'replay_kinesis',
    });
    if (!world) return;
    kinesis = await startKinesis(t0);
    if (!kinesis) return t.skip('kinesalite is not installed');
    await kinesis.createStream('replays', 2);
    const w = world;
    const res = await w.replay([
      START,
      END,
      ...TABLES,
      '--runtag',
      'k1',
      '--kinesis-stream',
      'replays',
      '--kinesis-endpoint',
      kinesis.endpoint,
    ]);
    assert.equal(res.code, 0, res.stderr);
    const raw = await kinesis.readAll('replays');
    assert.equal(new Set(raw.map((r) => r.shard)).size, 2, 'records in both shards');
    const records = raw.map(parseRecord);
    for (const r of records) {
      assert.equal(r.replay, true);
      assert.equal(r.runtag, 'k1');
      assert.equal(String(r.version), '0');
    }
    assert.deepEqual(
      raw.map((r) => r.partitionKey),
      records.map((r) => r.uuid),
      'partition key is the uuid',
    );
    assert.equal(new Set(records.map((r) => `${r.table}/${r.uuid}`)).size, records.length, 'no duplicates');
    // Each record carries its edge event's uuid (with the event's time, so a uuid is matched to its row).
    assert.deepEqual(
      records.map((r) => `${r.table}|${r.uuid}|${asText(r.columns.time)}`).sort(),
      await edgeRowUuids(w.edge, DEMO_CONFIG, {
        tables: TABLES,
        keep: (e) => e.columns.time != null && e.columns.time >= START && e.columns.time <= END,
        describe: (e) => e.columns.time!,
      }),
      'uuids are the edge events’ uuids',
    );
    for (const table of TABLES) {
      const expected = await tableRows(w, table);
      assert.ok(expected.length > 50, `${table} has rows in the window`);
      assert.deepEqual(recordRows(w, records, table), expected, `${table}: the stream holds exactly the loaded rows`);
    }
    assert.match(res.stdout, /replays\s+login\s+published/);
    const total = records.length;
    assert.match(
      res.stdout,
      new RegExp(
        `replays\\s+video_play\\s+published\\s+\\d+\\s+0\\s+${records.filter((r) => r.table === 'video_play').length}\\s`,
      ),
    );
    assert.ok(total > 0);
  });

  await t0.test('a table whose load fails publishes nothing; the others publish and the run exits 1', async (t) => {
    if (!world || !kinesis) return t.skip('needs the first test');
    const w = world;
    await kinesis.createStream('failing', 1);
    await w.query(`ALTER TABLE physical.login ADD CONSTRAINT refuse_all CHECK (false) NOT VALID`);
    try {
      const res = await w.replay([
        START,
        END,
        ...TABLES,
        '--runtag',
        'k2',
        '--kinesis-stream',
        'failing',
        '--kinesis-endpoint',
        kinesis.endpoint,
      ]);
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stdout, /login\s+failed/);
      const records = (await kinesis.readAll('failing')).map(parseRecord);
      assert.equal(records.filter((r) => r.table === 'login').length, 0);
      assert.deepEqual(recordRows(w, records, 'video_play'), await tableRows(w, 'video_play'));
    } finally {
      await w.query(`ALTER TABLE physical.login DROP CONSTRAINT refuse_all`);
    }
  });

  await t0.test('killed while publishing, the re-run publishes only the files not yet published', async (t) => {
    if (!world || !kinesis) return t.skip('needs the first test');
    const w = world;
    await kinesis.createStream('crash', 1);
    // The first 3 PutRecords pass, then the stream stalls: the driver is killed in the middle.
    const proxy = await startKinesisProxy(t, kinesis.endpoint, { hold: (n) => n >= 3 });
    const args = [
      'replay',
      START,
      END,
      'login',
      '--runtag',
      'k3',
      '--partition-mb',
      '0.05',
      '--kinesis-stream',
      'crash',
      '--kinesis-concurrency',
      '1',
      '--kinesis-endpoint',
      proxy.endpoint,
      '--edge',
      's3://edge',
      '--output',
      's3://out',
      '--rsurl',
      w.rsurl,
      '--config',
      DEMO_CONFIG,
      '--log-file',
      '',
      '--threads',
      '2',
    ];
    const child = spawn(process.execPath, [SPADE, ...args], { env: { ...process.env, ...w.env }, stdio: 'ignore' });
    const exited = once(child, 'exit');
    while (proxy.held === 0 && child.exitCode === null) await sleep(50);
    assert.equal(child.exitCode, null, 'the driver was still publishing');
    child.kill('SIGKILL');
    await exited;
    const before = await checkpoints(w, 'k3', 'crash');
    assert.ok(before.length >= 1, 'some files were published before the kill');
    const firstRun = await kinesis.readAll('crash');

    proxy.rules = {};
    const res = await w.replay([
      START,
      END,
      'login',
      '--runtag',
      'k3',
      '--kinesis-stream',
      'crash',
      '--kinesis-concurrency',
      '1',
      '--kinesis-endpoint',
      proxy.endpoint,
    ]);
    assert.equal(res.code, 0, res.stderr);
    const after = await checkpoints(w, 'k3', 'crash');
    assert.ok(after.length > before.length, 'more files than were published before the kill');
    assert.match(
      res.stdout,
      new RegExp(`crash\\s+login\\s+published\\s+${after.length - before.length}\\s+${before.length}\\s`),
    );
    const counts = new Map<string, number>();
    for (const r of await kinesis.readAll('crash')) counts.set(r.partitionKey, (counts.get(r.partitionKey) ?? 0) + 1);
    // Files checkpointed before the kill: each published row exactly once.
    let early = 0;
    for (const cp of before) {
      const uuids = await sidecarUuids(w, cp.key);
      assert.equal(uuids.length, cp.rows, `a uuid per row of ${cp.key}`);
      for (const [i, uuid] of uuids.entries()) {
        const n = counts.get(uuid);
        if (n === undefined) continue; // outside the window
        assert.equal(n, 1, `${cp.key} row ${i} published once`);
        early++;
      }
    }
    assert.equal(
      early,
      before.reduce((s, c) => s + c.records, 0),
    );
    // Everything loaded is in the stream; duplicates only from the file that was under way.
    const records = [...counts.keys()];
    assert.equal(records.length, (await tableRows(w, 'login')).length);
    const dupes = [...counts.values()].reduce((s, n) => s + n - 1, 0);
    assert.ok(dupes <= firstRun.length - early, `duplicates (${dupes}) only from the interrupted file`);
  });
  await t0.test(
    '--skip-ace-upload publishes right after the transform; loading that run later publishes nothing again',
    async (t) => {
      if (!world || !kinesis) return t.skip('needs the first test');
      const w = world;
      await kinesis.createStream('transformonly', 1);
      const flags = ['--kinesis-stream', 'transformonly', '--kinesis-endpoint', kinesis.endpoint];
      const first = await w.replay([START, END, 'video_play', '--runtag', 'k4', '--skip-ace-upload', ...flags]);
      assert.equal(first.code, 0, first.stderr);
      const published = (await kinesis.readAll('transformonly')).map(parseRecord);
      assert.deepEqual(recordRows(w, published, 'video_play'), await tableRows(w, 'video_play'));
      const files = (await checkpoints(w, 'k4', 'transformonly')).length;
      assert.ok(files > 0);
      const load = await w.replay([START, END, 'video_play', '--runtag', 'k4', '--skip-transform', ...flags]);
      assert.equal(load.code, 0, load.stderr);
      assert.match(load.stdout, new RegExp(`transformonly\\s+video_play\\s+published\\s+0\\s+${files}\\s+0\\s`));
      assert.equal((await kinesis.readAll('transformonly')).length, published.length);
    },
  );
  await t0.test(
    'a run transformed without --kinesis-stream is refused with --skip-transform --kinesis-stream, before loading',
    async (t) => {
      if (!world || !kinesis) return t.skip('needs the first test');
      const w = world;
      await kinesis.createStream('late', 1);
      const first = await w.replay([START, END, 'video_play', '--runtag', 'k5', '--skip-ace-upload']);
      assert.equal(first.code, 0, first.stderr);
      await w.query(`DELETE FROM physical.video_play`);
      const res = await w.replay([
        START,
        END,
        'video_play',
        '--runtag',
        'k5',
        '--skip-transform',
        '--kinesis-stream',
        'late',
        '--kinesis-endpoint',
        kinesis.endpoint,
      ]);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /runtag k5 was transformed without uuids/);
      assert.match(res.stderr, /re-run the transform under a new --runtag with --kinesis-stream/);
      assert.deepEqual(await w.query(`SELECT 1 FROM physical.video_play`), [], 'nothing was loaded');
      assert.deepEqual(await kinesis.readAll('late'), []);
    },
  );
});
