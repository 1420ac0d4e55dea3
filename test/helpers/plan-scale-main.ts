/**
 * Child process of the plan-at-scale tests (and of `npm run bench:plan`), run with
 * a capped heap: `node --max-old-space-size=512 plan-scale-main.js <mode> <json>`.
 * Prints one JSON line of results on stdout.
 *
 * - plan:      lists a synthetic edge bucket of `keys` keys (synthetic-edge.ts) and
 *              writes the streamed plan and run record under `dir`; checks that the
 *              partitions cover every key exactly once; `hash` is over the partitions
 *              in the order they were formed.
 * - resume:    reads the run record and plan back as a resume does; same checks, same hash.
 * - manifests: writes success manifests naming `files` row files over `tables`
 *              tables, commits them (commit.ts) into load manifests, and checks that the
 *              load manifests name exactly the success manifests' files.
 */
import { createHash } from 'node:crypto';
import { commitRun, readLoadManifests } from '../../driver/commit.js';
import { readJson, runRecordKey, successKey, writeJson, type RunRecord } from '../../driver/manifest.js';
import type { Partition } from '../../driver/partition.js';
import { planWindow, readPlan } from '../../driver/plan.js';
import { LocalStore } from '../../worker/store/local.js';
import type { TransformDigest } from '../../worker/transform/digest.js';
import { emptyCounts } from '../../worker/transform/outcomes.js';
import { SYNTHETIC_WINDOW, syntheticEdge, SyntheticEdgeStore } from './synthetic-edge.js';

interface Args {
  dir: string;
  runtag: string;
  keys: number;
  /** manifests mode */
  files?: number;
  tables?: number;
  partBytes?: number;
  listConcurrency?: number;
  targetBytes?: number;
}

/** Every key exactly once: one bit per key. */
class Coverage {
  private readonly seen: Uint8Array;
  files = 0;
  constructor(private readonly edge: SyntheticEdgeStore) {
    this.seen = new Uint8Array(edge.totalKeys);
  }
  add(key: string): void {
    const i = this.edge.indexOf(key);
    if (this.seen[i]) throw new Error(`key ${key} is in two partitions`);
    this.seen[i] = 1;
    this.files++;
  }
  check(): void {
    if (this.files !== this.edge.totalKeys) {
      const missing = this.seen.indexOf(0);
      throw new Error(`${this.edge.totalKeys - this.files} key(s) in no partition (first: index ${missing})`);
    }
  }
}

function hashPartition(hash: ReturnType<typeof createHash>, p: Partition, coverage: Coverage): void {
  hash.update(`${p.id} ${p.bytes}\n`);
  for (const f of p.files) {
    hash.update(`${f.key} ${f.size}\n`);
    coverage.add(f.key);
  }
}

async function plan(a: Args): Promise<unknown> {
  const edge = syntheticEdge(a.keys);
  const out = new LocalStore(a.dir);
  const hash = createHash('sha256');
  const coverage = new Coverage(edge);
  const planned = await planWindow(edge, out, a.runtag, SYNTHETIC_WINDOW, {
    targetBytes: a.targetBytes ?? 256 * 1024 * 1024,
    concurrency: a.listConcurrency ?? 8,
    onPartitions: (batch) => {
      for (const p of batch) hashPartition(hash, p, coverage);
    },
  });
  coverage.check();
  const record: RunRecord = {
    runtag: a.runtag,
    window: { start: SYNTHETIC_WINDOW.start, end: SYNTHETIC_WINDOW.end },
    tables: [],
    edge: edge.url,
    configSource: 'synthetic',
    plan: planned.index!,
    createdAt: new Date().toISOString(),
  };
  await writeJson(out, runRecordKey(a.runtag), record);
  const recordBytes = (await out.readBytes(runRecordKey(a.runtag))).length;
  return {
    ...planned.totals,
    keys: edge.totalKeys,
    planFiles: planned.index!.planFiles.length,
    recordBytes,
    hash: hash.digest('hex'),
  };
}

async function resume(a: Args): Promise<unknown> {
  const edge = syntheticEdge(a.keys);
  const out = new LocalStore(a.dir);
  const record = await readJson<RunRecord>(out, runRecordKey(a.runtag));
  if (!record) throw new Error('no run record');
  const hash = createHash('sha256');
  const coverage = new Coverage(edge);
  let partitions = 0;
  for await (const p of readPlan(out, record)) {
    hashPartition(hash, p, coverage);
    partitions++;
  }
  coverage.check();
  return {
    partitions,
    files: coverage.files,
    bytes: record.plan?.bytes,
    keys: edge.totalKeys,
    hash: hash.digest('hex'),
  };
}

const DIGEST: TransformDigest = {
  format: 1,
  config: 'sha256:synthetic',
  geoipCity: null,
  geoipAsn: null,
  userIdMapping: null,
  digest: 'sha256:synthetic',
};
const tableName = (t: number): string => `table_${String(t).padStart(3, '0')}`;

async function manifests(a: Args): Promise<unknown> {
  const files = a.files!;
  const tables = a.tables!;
  const partitionCount = Math.ceil(files / tables);
  const out = new LocalStore(a.dir);
  const ids = (n: number): string => `p${String(n).padStart(5, '0')}`;
  // Success manifests: each partition has one row file per table (the last one fewer, to reach `files` exactly).
  let written = 0;
  for (let p = 0; p < partitionCount; p++) {
    const rows = [];
    for (let t = 0; t < tables && written < files; t++, written++) {
      rows.push({
        kind: 'rows',
        event: tableName(t),
        key: `${a.runtag}/${ids(p)}/a1/${tableName(t)}.tsv.gz`,
        bytes: 1,
        rows: 1,
      });
    }
    await writeJson(out, successKey(a.runtag, ids(p)), {
      runtag: a.runtag,
      partition: ids(p),
      attempt: 'a1',
      files: rows,
      counts: emptyCounts(),
      inputErrors: [],
      transformDigest: DIGEST,
      finishedAt: new Date(0).toISOString(),
    });
  }
  async function* partitions(): AsyncGenerator<Partition> {
    for (let p = 0; p < partitionCount; p++) yield { id: ids(p), files: [], bytes: 0 };
  }
  const tableNames = Array.from({ length: tables }, (_, t) => tableName(t));
  const committed = await commitRun({
    output: out,
    runtag: a.runtag,
    tables: tableNames,
    partitions: partitions(),
    digest: DIGEST,
    partBytes: a.partBytes,
  });
  // The union of the load manifests must be exactly the success manifests' row files.
  const seen = new Uint8Array(partitionCount * tables);
  let named = 0;
  let parts = 0;
  for (const t of tableNames) {
    const m = committed.manifests.get(t)!;
    parts += m.keys.length;
    const listed = await readLoadManifests(out, m.keys);
    if (listed.length !== m.files)
      throw new Error(`${t}: ${listed.length} file(s) in its manifests, commit says ${m.files}`);
    for (const f of listed) {
      const match = /\/p(\d+)\/a1\/(table_\d+)\.tsv\.gz$/.exec(f.key);
      if (!match || match[2] !== t) throw new Error(`${t}: manifest names ${f.key}`);
      const i = Number(match[1]) * tables + Number(match[2].slice('table_'.length));
      if (seen[i]) throw new Error(`${f.key} is named twice`);
      seen[i] = 1;
      named++;
    }
  }
  if (named !== files) throw new Error(`load manifests name ${named} file(s), success manifests ${files}`);
  return { files, named, tables, parts, partitions: partitionCount };
}

const [mode, json] = process.argv.slice(2);
const args = JSON.parse(json ?? '{}') as Args;
const run = mode === 'plan' ? plan : mode === 'resume' ? resume : mode === 'manifests' ? manifests : null;
if (!run) {
  console.error(`usage: plan-scale-main.js plan|resume|manifests '<json>'`);
  process.exit(2);
}
const result = await run(args);
process.stdout.write(JSON.stringify(result) + '\n');
