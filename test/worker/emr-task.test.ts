/**
 * The EMR task command run the way Hadoop streaming runs it: a child process
 * fed NLineInputFormat lines on stdin (one partition task per line, with or
 * without the `<offset>\t` key), against generated edge logs in a local
 * directory. Its output must be the rows `runPartition` writes in-process.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { generateEdgeLogs } from '../../scripts/generate/edge-logs.js';
import type { SuccessManifest } from '../../driver/manifest.js';
import { encodeTaskLine } from '../../worker/emr-task.js';
import { groupFiles, runPartition, type PartitionTask } from '../../worker/partition-task.js';
import { createTransformPool } from '../../worker/pool/pool.js';
import { LocalStore } from '../../worker/store/local.js';
import { parseTableConfig } from '../../worker/transform/schema.js';
import { repoRoot } from '../helpers/fixtures.js';
import { DEMO_CONFIG, runNodeScript, type CliResult } from '../helpers/replay-env.js';

const MAIN = join(repoRoot(), 'dist', 'test', 'helpers', 'emr-task-main.js');

function runTaskProcess(input: string): Promise<CliResult> {
  return runNodeScript(MAIN, [], { SPADE_EMR_THREADS: '2' }, input);
}

/** table -> sorted row lines of every rows file the partitions' success manifests name. */
async function rowsByTable(dir: string, runtag: string, partitions: string[]): Promise<Map<string, string[]>> {
  const store = new LocalStore(dir);
  const out = new Map<string, string[]>();
  for (const p of partitions) {
    const m = JSON.parse((await store.readBytes(`${runtag}/_success/${p}.json`)).toString()) as SuccessManifest;
    for (const f of m.files) {
      if (f.kind !== 'rows') continue;
      const text = gunzipSync(await store.readBytes(f.key)).toString('utf8');
      const rows = out.get(f.event!) ?? [];
      rows.push(...text.split('\n').filter((l) => l !== ''));
      out.set(f.event!, rows);
    }
  }
  for (const rows of out.values()) rows.sort();
  return out;
}

async function manifest(dir: string, runtag: string, p: string): Promise<SuccessManifest> {
  return JSON.parse(await readFile(join(dir, runtag, '_success', `${p}.json`), 'utf8')) as SuccessManifest;
}

test('spade worker emr-task: stdin task lines give the rows runPartition gives in-process', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'spade-emr-task-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const edgeDir = join(root, 'edge');
  const configText = await readFile(DEMO_CONFIG, 'utf8');
  const schemas = parseTableConfig(configText, DEMO_CONFIG);
  const truth = await generateEdgeLogs(new LocalStore(edgeDir), {
    schemas,
    startSec: Date.UTC(2023, 10, 5, 8, 0, 0) / 1000,
    endSec: Date.UTC(2023, 10, 5, 10, 0, 0) / 1000,
    events: 3000,
    fileSpanSec: 900,
    seed: 5,
  });
  const [filesA, filesB] = groupFiles(
    truth.files.map((f) => ({ key: f.key, size: f.bytes })),
    2,
  );
  assert.ok(filesA && filesB, 'two partitions');
  const runtag = 'emrtest';
  const task = (id: string, files: { key: string; size: number }[], output: string): PartitionTask => ({
    runtag,
    partition: { id, files, bytes: files.reduce((s, f) => s + f.size, 0) },
    edge: edgeDir,
    output,
    settings: { configText, configSource: DEMO_CONFIG, tables: ['login', 'video_play'], prefilter: true },
  });
  const parts = (output: string): PartitionTask[] => [task('p00000', filesA, output), task('p00001', filesB, output)];

  // Reference: the same partitions run in this process.
  const refDir = join(root, 'ref');
  const pool = createTransformPool(2);
  const refAttempts: string[] = [];
  try {
    for (const p of parts(refDir)) refAttempts.push((await runPartition(p, pool)).attempt);
  } finally {
    await pool.close();
  }
  const expected = await rowsByTable(refDir, runtag, ['p00000', 'p00001']);
  assert.deepEqual([...expected.keys()].sort(), ['login', 'video_play']);
  assert.ok([...expected.values()].every((rows) => rows.length > 0));

  // As the driver writes them: one partition's config behind a URL (a file path here), one inline.
  const configPath = join(root, 'config.json');
  await writeFile(configPath, configText);
  const lines = (output: string): string[] => {
    const [a, b] = parts(output);
    return [encodeTaskLine(a!, configPath), encodeTaskLine(b!, null)];
  };

  await t.test('value-only lines (stream.map.input.ignoreKey honoured)', async () => {
    const outDir = join(root, 'out-plain');
    const res = await runTaskProcess(lines(outDir).join('\n') + '\n');
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(await rowsByTable(outDir, runtag, ['p00000', 'p00001']), expected);
    for (const p of ['p00000', 'p00001']) {
      const m = await manifest(outDir, runtag, p);
      assert.equal(m.partition, p);
      assert.equal(m.runtag, runtag);
      assert.ok(!refAttempts.includes(m.attempt), 'a fresh attempt id per run');
      assert.ok(
        m.files.every((f) => f.key.includes(`${p}-${m.attempt}-`)),
        'files under attempt-unique keys',
      );
    }
    // Hadoop's channels: counters and status on stderr, one summary line per partition on stdout.
    const ref = await manifest(refDir, runtag, 'p00000');
    assert.match(res.stderr, new RegExp(`^reporter:counter:spade,lines,${ref.counts.lines}$`, 'm'));
    assert.match(res.stderr, /^reporter:status:partition p00001 done: \d+ file\(s\)$/m);
    assert.match(res.stdout, /^p00000\ta\w+\t\d+\t\d+\np00001\ta\w+\t\d+\t\d+\n$/);
  });

  await t.test('lines keyed by their byte offset (`<offset>\\t<task>`)', async () => {
    const outDir = join(root, 'out-keyed');
    const [a, b] = lines(outDir);
    const input = `0\t${a}\n${Buffer.byteLength(a!) + 1}\t${b}\n`;
    const res = await runTaskProcess(input);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(await rowsByTable(outDir, runtag, ['p00000', 'p00001']), expected);
  });

  await t.test('a task that fails exits non-zero so YARN retries it', async () => {
    const outDir = join(root, 'out-bad');
    const good = task('p00009', filesA, outDir);
    // A config the threads cannot compile: the partition fails (a missing input
    // file, by contrast, is an input error the partition reports and survives).
    const bogus = { ...good, settings: { ...good.settings, configText: '{"not": "a table config"' } };
    const res = await runTaskProcess(encodeTaskLine(bogus, null) + '\n');
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /reporter:counter:spade,failures,1/);
    assert.equal(await new LocalStore(outDir).exists(`${runtag}/_success/p00009.json`), false);
    const notJson = await runTaskProcess('12\tnot json\n');
    assert.notEqual(notJson.code, 0);
    assert.match(notJson.stderr, /stdin line 1: not a JSON partition task/);
  });
});
