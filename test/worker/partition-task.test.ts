/**
 * A replay partition of one large file uses every thread of the node
 * (worker/pool/spread.ts): the same rows and counts as one thread reading it,
 * written by one output series per thread, all named by the success manifest.
 */
import assert from 'node:assert/strict';
import { appendFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { generateEdgeLogs } from '../../scripts/generate/edge-logs.js';
import { runPartition, type PartitionTask } from '../../worker/partition-task.js';
import { createTransformPool } from '../../worker/pool/pool.js';
import { LocalStore } from '../../worker/store/local.js';
import { parseTableConfig } from '../../worker/transform/schema.js';
import { DEMO_CONFIG } from '../helpers/replay-env.js';

test('a partition of one large file is spread over the threads: the rows and counts of one thread', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'spade-partition-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const edgeDir = join(root, 'edge');
  const configText = await readFile(DEMO_CONFIG, 'utf8');
  const generated = join(root, 'generated');
  const truth = await generateEdgeLogs(new LocalStore(generated), {
    schemas: parseTableConfig(configText, DEMO_CONFIG),
    startSec: Date.UTC(2023, 10, 5, 8, 0, 0) / 1000,
    endSec: Date.UTC(2023, 10, 5, 10, 0, 0) / 1000,
    events: 25_000,
    fileSpanSec: 900,
    seed: 11,
  });
  // One file holding them all (gzip members concatenated), several MB of lines.
  const key = '20231105/all.log.gz';
  await mkdir(join(edgeDir, '20231105'), { recursive: true });
  for (const f of truth.files) await appendFile(join(edgeDir, key), await readFile(join(generated, f.key)));
  const size = (await readFile(join(edgeDir, key))).length;
  const task = (output: string): PartitionTask => ({
    runtag: 'spread',
    partition: { id: 'p00000', files: [{ key, size }], bytes: size },
    edge: edgeDir,
    output,
    settings: { configText, configSource: DEMO_CONFIG },
  });
  const run = async (threads: number, out: string): Promise<Awaited<ReturnType<typeof runPartition>>> => {
    const pool = createTransformPool(threads);
    try {
      return await runPartition(task(join(root, out)), pool);
    } finally {
      await pool.close();
    }
  };
  const one = await run(1, 'one');
  const four = await run(4, 'four');

  assert.ok(one.counts.inputBytes > 8 * 1024 * 1024, `${one.counts.inputBytes} bytes of lines`);
  assert.deepEqual(four.counts, one.counts);
  const rows = async (out: string, r: typeof one): Promise<Map<string, string[]>> => {
    const byTable = new Map<string, string[]>();
    for (const f of r.files.filter((x) => x.kind === 'rows')) {
      const lines = gunzipSync(await readFile(join(root, out, f.key)))
        .toString('utf8')
        .split('\n')
        .filter(Boolean);
      byTable.set(`${f.event}/v${f.version}`, [...(byTable.get(`${f.event}/v${f.version}`) ?? []), ...lines]);
    }
    for (const v of byTable.values()) v.sort();
    return byTable;
  };
  assert.deepEqual(await rows('four', four), await rows('one', one));
  // Every thread that got chunks wrote its own series; the manifest names them all.
  const series = new Set(four.files.map((f) => /-(c\d+)-\d{5}\./.exec(f.key)?.[1]));
  assert.ok(series.size >= 2, `files from ${[...series].join(', ')}`);
  const manifest = JSON.parse(await readFile(join(root, 'four', 'spread', '_success', 'p00000.json'), 'utf8')) as {
    files: unknown[];
  };
  assert.equal(manifest.files.length, four.files.length);
});
