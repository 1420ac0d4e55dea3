import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commitRun, loadManifestPartKey, readLoadManifests } from '../../driver/commit.js';
import type { EdgeFile } from '../../driver/listing.js';
import { redshiftManifest, successKey, writeJson, type RunRecord } from '../../driver/manifest.js';
import { planPartitions, type Partition } from '../../driver/partition.js';
import { PlanWriter, readPlan, StreamingPlanner } from '../../driver/plan.js';
import type { TransformDigest } from '../../worker/transform/digest.js';
import { emptyCounts } from '../../worker/transform/outcomes.js';
import { MemStore } from '../helpers/memstore.js';

const file = (key: string, size: number): EdgeFile => ({ key, size, writtenAt: new Date(0), clock: 'key' });

/** Files of `units` listing units, `perUnit` each, fed unit after unit in key order. */
function unitsOf(units: number, perUnit: number): [string, EdgeFile[]][] {
  return Array.from({ length: units }, (_, u) => {
    const unit = `2023060${u + 1}/edge-a/`;
    const files = Array.from({ length: perUnit }, (_, i) =>
      file(`${unit}${1685577600 + i}.${String(i).padStart(6, '0')}.log.gz`, 1 + ((i * 37) % 100)),
    );
    return [unit, files];
  });
}

async function plan(
  units: [string, EdgeFile[]][],
  opts: { targetBytes: number; smallPlanFiles?: number; chunkFiles?: number },
): Promise<Partition[][]> {
  const batches: Partition[][] = [];
  const planner = new StreamingPlanner(opts, async (batch) => void batches.push(batch));
  // Interleaved, as parallel listing delivers them.
  const longest = Math.max(...units.map(([, f]) => f.length));
  for (let i = 0; i < longest; i++) for (const [unit, files] of units) if (files[i]) await planner.file(unit, files[i]);
  for (const [unit] of units) await planner.unitDone(unit);
  await planner.finish();
  return batches;
}

test('a small plan is exactly the single planPartitions of all files, as before plans streamed', async () => {
  const units = unitsOf(3, 500);
  const batches = await plan(units, { targetBytes: 2000 });
  assert.equal(batches.length, 1);
  const all = units.flatMap(([, f]) => f.map((x) => ({ key: x.key, size: x.size })));
  assert.deepEqual(batches[0], planPartitions(all, { targetBytes: 2000 }));
});

test('a large plan streams in chunks: every file once, ids in order, partitions near the target', async () => {
  const units = unitsOf(4, 3000);
  const batches = await plan(units, { targetBytes: 5000, smallPlanFiles: 1000, chunkFiles: 700 });
  assert.ok(batches.length > 4, `${batches.length} batches`);
  const partitions = batches.flat();
  assert.deepEqual(
    partitions.map((p) => p.id),
    partitions.map((_, i) => `p${String(i).padStart(5, '0')}`),
  );
  const keys = partitions.flatMap((p) => p.files.map((f) => f.key)).sort();
  assert.deepEqual(keys, units.flatMap(([, f]) => f.map((x) => x.key)).sort());
  for (const p of partitions) {
    assert.equal(
      p.bytes,
      p.files.reduce((s, f) => s + f.size, 0),
    );
    assert.ok(p.bytes <= 5000 + 100, `${p.id}: ${p.bytes} bytes`);
    // A partition never mixes listing units (each chunk is one unit's keys).
    assert.equal(new Set(p.files.map((f) => f.key.slice(0, 16))).size, 1);
  }
});

test('the plan is written in files and read back in the same order; old records with inline partitions still resume', async () => {
  const store = new MemStore();
  const writer = new PlanWriter(store, 'rt');
  const batches = await plan(unitsOf(2, 2000), { targetBytes: 5000, smallPlanFiles: 500, chunkFiles: 400 });
  for (const b of batches) await writer.write(b);
  const record: RunRecord = {
    runtag: 'rt',
    window: { start: 's', end: 'e' },
    tables: [],
    edge: 'mem://edge',
    configSource: 'c',
    plan: writer.index(),
    createdAt: 'now',
  };
  assert.equal(record.plan!.planFiles.length, batches.length);
  assert.equal(record.plan!.files, 4000);
  const read: Partition[] = [];
  for await (const p of readPlan(store, record)) read.push(p);
  assert.deepEqual(read, batches.flat());

  const old: RunRecord = { ...record, plan: undefined, partitions: batches[0] };
  const readOld: Partition[] = [];
  for await (const p of readPlan(store, old)) readOld.push(p);
  assert.deepEqual(readOld, batches[0]);

  // A plan file changed or lost after the run record was written: refused by name.
  await store.put(record.plan!.planFiles[1]!.key, '');
  await assert.rejects(async () => {
    for await (const p of readPlan(store, record)) void p;
  }, /_plan\/00001\.jsonl holds 0 partition\(s\), the run record says \d+/);
});

const DIGEST: TransformDigest = {
  format: 1,
  config: 'sha256:c',
  geoipCity: null,
  geoipAsn: null,
  userIdMapping: null,
  digest: 'sha256:d',
};

async function successManifests(store: MemStore, runtag: string, partitions: number, tables: string[]): Promise<void> {
  for (let p = 0; p < partitions; p++) {
    const id = `p${String(p).padStart(5, '0')}`;
    await writeJson(store, successKey(runtag, id), {
      runtag,
      partition: id,
      attempt: 'a1',
      files: tables.map((t) => ({ kind: 'rows', event: t, key: `${runtag}/${id}/a1/${t}.tsv.gz`, bytes: 1, rows: 1 })),
      counts: emptyCounts(),
      inputErrors: [],
      transformDigest: DIGEST,
      finishedAt: 'then',
    });
  }
}

async function* ids(n: number): AsyncGenerator<Partition> {
  for (let p = 0; p < n; p++) yield { id: `p${String(p).padStart(5, '0')}`, files: [], bytes: 0 };
}

test('commit: a small table gets one load manifest, byte for byte what it was; a table with no file an empty one', async () => {
  const store = new MemStore('s3://out');
  await successManifests(store, 'rt', 3, ['a', 'b']);
  const committed = await commitRun({
    output: store,
    runtag: 'rt',
    tables: ['a', 'b', 'c'],
    partitions: ids(3),
    digest: DIGEST,
  });
  assert.deepEqual(committed.manifests.get('a'), { keys: ['rt/_load/a.manifest'], files: 3 });
  const text = (await store.readBytes('rt/_load/a.manifest')).toString();
  assert.equal(text, redshiftManifest([0, 1, 2].map((p) => store.urlOf(`rt/p0000${p}/a1/a.tsv.gz`))));
  assert.equal((await store.readBytes('rt/_load/c.manifest')).toString(), redshiftManifest([]));
  assert.deepEqual(
    (await readLoadManifests(store, ['rt/_load/b.manifest'])).map((f) => f.key),
    ['rt/p00000/a1/b.tsv.gz', 'rt/p00001/a1/b.tsv.gz', 'rt/p00002/a1/b.tsv.gz'],
  );
});

test('commit: a large table is split into parts that together name each file once', async () => {
  const store = new MemStore('s3://out');
  await successManifests(store, 'rt', 500, ['a']);
  const committed = await commitRun({
    output: store,
    runtag: 'rt',
    tables: ['a'],
    partitions: ids(500),
    digest: DIGEST,
    partBytes: 4096,
  });
  const m = committed.manifests.get('a')!;
  assert.ok(m.keys.length >= 5, `${m.keys.length} parts`);
  assert.equal(m.keys[1], loadManifestPartKey('rt', 'a', 1));
  for (const k of m.keys) assert.ok((await store.readBytes(k)).length <= 4096, k);
  const files = await readLoadManifests(store, m.keys);
  assert.deepEqual(
    files.map((f) => f.key),
    Array.from({ length: 500 }, (_, p) => `rt/p${String(p).padStart(5, '0')}/a1/a.tsv.gz`),
  );
});

test('commit: a success manifest made with other settings is refused before the last parts are written', async () => {
  const store = new MemStore('s3://out');
  await successManifests(store, 'rt', 2, ['a']);
  await assert.rejects(
    commitRun({
      output: store,
      runtag: 'rt',
      tables: ['a'],
      partitions: ids(2),
      digest: { ...DIGEST, config: 'sha256:other', digest: 'x' },
    }),
    /runtag rt: partitions were transformed with other settings than the run's, nothing was loaded: partition p00000: config differs/,
  );
  assert.equal(await store.exists('rt/_load/a.manifest'), false);
});
