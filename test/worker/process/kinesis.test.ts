/**
 * `spade process` publishing committed batches to Kinesis (kinesalite on
 * loopback): every committed row arrives, marked as live (`replay: false`,
 * the batch's date runtag), and a SIGTERM in the middle of heavy input loses
 * none of the committed batches' records.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parse as parseLossless } from 'lossless-json';
import { utcDate } from '../../../worker/process/checkpoint.js';
import { LocalStore } from '../../../worker/store/local.js';
import { parseTableConfig } from '../../../worker/transform/schema.js';
import { edgeRowUuids } from '../../helpers/edge-uuids.js';
import { startKinesis } from '../../helpers/kinesalite.js';
import { DEMO_CONFIG } from '../../helpers/replay-env.js';
import {
  committedKeys,
  committedOutput,
  killRunningProcessors,
  sortedEntries,
  startProcessor,
  stopProcessor,
  tempDir,
  Truth,
  waitUntil,
  writeEdgeFile,
} from './harness.js';

after(killRunningProcessors);

const schemas = parseTableConfig(readFileSync(DEMO_CONFIG, 'utf8'), DEMO_CONFIG);

interface Published {
  table: string;
  runtag: string;
  replay: boolean;
  uuid: string;
}

test('spade process --kinesis-stream: committed batches arrive; SIGTERM loses none', async (t) => {
  const kinesis = await startKinesis(t);
  if (!kinesis) return;
  await kinesis.createStream('live', 2);
  const edgeDir = tempDir(t, 'kin-edge');
  const outDir = tempDir(t, 'kin-out');
  const stateDir = tempDir(t, 'kin-state');
  const edge = new LocalStore(edgeDir);
  const out = new LocalStore(outDir);
  const base = Math.floor(Date.now() / 1000) - 7200;
  const truth = new Truth();
  const FILES = 30;
  const writeFiles = async (from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i++) await writeEdgeFile(edge, schemas, base + i * 10, 1000, 300 + i, truth);
  };
  await writeFiles(0, FILES / 2);
  const opts = {
    input: edgeDir,
    output: outDir,
    stateDir,
    config: DEMO_CONFIG,
    rotateMinutes: 0.02,
    pollSeconds: 0.2,
    startDate: utcDate((base - 86_400) * 1000),
    shutdownTimeoutSeconds: 60,
    kinesis: { targets: [{ stream: 'live', tables: null }], endpoint: kinesis.endpoint, concurrency: 4 },
  };
  const rowsByTable = async (): Promise<Map<string, number>> => {
    const records = (await kinesis.readAll('live')).map((r) => parseLossless(r.data) as Published);
    for (const r of records) {
      assert.equal(r.replay, false);
      assert.match(r.runtag, /^\d{8}$/);
    }
    assert.equal(new Set(records.map((r) => `${r.table}/${r.uuid}`)).size, records.length, 'no duplicates');
    const m = new Map<string, number>();
    for (const r of records) m.set(r.table, (m.get(r.table) ?? 0) + 1);
    return m;
  };

  const first = startProcessor(opts, kinesis.env);
  await first.waitFor(/kinesis: published batch/, 30_000);
  await writeFiles(FILES / 2, FILES);
  assert.equal(await stopProcessor(first, 'SIGTERM'), 0, first.stderr());
  // Everything committed before the stop is in the stream, nothing more.
  const committed = await committedOutput(out);
  assert.ok(committed.manifests.length > 0);
  assert.deepEqual(sortedEntries(await rowsByTable()), sortedEntries(committed.rows));
  assert.deepEqual(JSON.parse(readFileSync(join(stateDir, 'kinesis-pending.json'), 'utf8')), { pending: [] });

  const second = startProcessor(opts, kinesis.env);
  // The first may have committed every file already: a SIGTERM before the second's handlers are set would kill it.
  await second.waitFor(/following/);
  await waitUntil('every input committed', () => committedKeys(stateDir).length === FILES, 60_000);
  assert.equal(await stopProcessor(second, 'SIGTERM'), 0, second.stderr());
  assert.deepEqual(sortedEntries(await rowsByTable()), sortedEntries(truth.events));
  // Each record carries its edge event's uuid.
  const records = (await kinesis.readAll('live')).map((r) => parseLossless(r.data) as Published);
  assert.deepEqual(
    records.map((r) => `${r.table}|${r.uuid}`).sort(),
    await edgeRowUuids(edge, DEMO_CONFIG),
    'uuids are the edge events’ uuids',
  );
});
