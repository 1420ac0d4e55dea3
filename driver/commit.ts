/**
 * Commit, streamed: the success manifests are read in plan order, a few at a time,
 * and each one's row files go straight into its table's load manifest, which is
 * written out in parts as it grows. Memory holds a window of success manifests and
 * the unwritten tail of each table's manifest, whatever the number of partitions.
 *
 * Why load manifests are split, and at what size: a Redshift COPY takes one
 * manifest, so a table with several parts is loaded by several COPYs into the same
 * staging table within the one load transaction (worker/warehouse/redshift.ts): the table
 * still changes all at once or not at all. A part is closed at MANIFEST_PART_BYTES
 * (4 MiB, ~25,000 files): each part is one object body built in memory before its
 * PUT, and a COPY spreads a manifest's files over the cluster's slices, which 25,000
 * files already keep busy on any cluster, so a larger part would gain nothing per
 * COPY. Past BUFFERED_BYTES_BUDGET of unwritten entries over all tables (a replay of
 * hundreds of tables), the largest tail is written early as a smaller part.
 * Tables with fewer files have exactly one manifest, `_load/<table>.manifest`, in
 * the same format as before.
 */
import type { WrittenFile } from '../worker/output/writers.js';
import type { DamagedInput } from '../worker/pool/thread.js';
import { ObjectNotFoundError, type ObjectStore } from '../worker/store/objectstore.js';
import { emptyCounts, mergeCounts, type OutcomeCounts } from '../worker/transform/outcomes.js';
import type { TransformDigest } from '../worker/transform/digest.js';
import { MANIFEST_FRAME_BYTES, manifestEntryBytes } from '../worker/warehouse/redshift-manifest.js';
import { loadManifestKey, readJson, redshiftManifest, successKey, type SuccessManifest } from './manifest.js';
import type { Partition } from './partition.js';
import { ManifestDigestCheck } from './run-digest.js';

export const MANIFEST_PART_BYTES = 4 * 1024 * 1024;
export const BUFFERED_BYTES_BUDGET = 64 * 1024 * 1024;
/** Success manifests read at the same time. */
const READ_CONCURRENCY = 16;

/** Key of a table's load manifest part `n` (part 0 keeps the name of an unsplit manifest). */
export const loadManifestPartKey = (runtag: string, table: string, n: number): string =>
  n === 0 ? loadManifestKey(runtag, table) : `${runtag}/_load/${table}.parts/${String(n).padStart(5, '0')}.manifest`;

/** One table's load manifest, written in parts of at most `partBytes` (MANIFEST_PART_BYTES). */
class TableManifestWriter {
  readonly keys: string[] = [];
  files = 0;
  urls: string[] = [];
  /** What `urls` add to the next part's text (manifestEntryBytes). */
  bytes = 0;

  constructor(
    private readonly store: ObjectStore,
    private readonly runtag: string,
    readonly table: string,
    private readonly partBytes: number,
  ) {}

  /** Adds a file; returns a part to write when the current one is full. */
  add(url: string): Promise<void> | null {
    const entryBytes = manifestEntryBytes(url);
    const full = this.urls.length > 0 && MANIFEST_FRAME_BYTES + this.bytes + entryBytes > this.partBytes;
    const flushing = full ? this.flush() : null;
    this.urls.push(url);
    this.bytes += entryBytes;
    this.files++;
    return flushing;
  }

  /** Writes what is buffered as the next part (an empty manifest if the table has no file at all). */
  flush(): Promise<void> {
    const key = loadManifestPartKey(this.runtag, this.table, this.keys.length);
    this.keys.push(key);
    const text = redshiftManifest(this.urls);
    this.urls = [];
    this.bytes = 0;
    return this.store.put(key, text);
  }

  async finish(): Promise<void> {
    if (this.urls.length > 0 || this.keys.length === 0) await this.flush();
  }
}

export interface CommitOptions {
  output: ObjectStore;
  runtag: string;
  /** The run's tables: each gets a load manifest, empty if it has no file. */
  tables: string[];
  /** The run's partitions, in plan order; each has a success manifest (checked before). */
  partitions: AsyncIterable<Partition>;
  /** The run's transform digest: every success manifest must carry it. */
  digest: TransformDigest;
  /** Largest load manifest part, in bytes (default MANIFEST_PART_BYTES; tests make it small). */
  partBytes?: number;
  /** Also keep each table's row files (for Kinesis publishing, which needs their uuid sidecars). */
  keepFiles?: boolean;
  /** Called for each success manifest as it is read (e.g. the Kinesis uuid check). */
  onManifest?(m: SuccessManifest): void;
  /** Called after every manifest was read and checked, before the last parts are written; may throw. */
  beforeFinish?(): void;
}

export interface CommitResult {
  counts: OutcomeCounts;
  damagedInputs: DamagedInput[];
  /** Per table: its load manifests' keys (one unless split) and its number of row files. */
  manifests: Map<string, { keys: string[]; files: number }>;
  /** Per table, its row files, when `keepFiles`. */
  filesByTable?: Map<string, WrittenFile[]>;
}

/**
 * Reads every success manifest of the run once, in plan order: merges the counts,
 * checks the transform digests and writes the per-table load manifests. Throws (and
 * writes no final manifest part) when a success manifest is missing or was made with
 * other settings; parts that filled up before that are overwritten by the next commit
 * and never loaded on their own.
 */
export async function commitRun(opts: CommitOptions): Promise<CommitResult> {
  const { output, runtag } = opts;
  const writers = new Map(
    opts.tables.map((t) => [t, new TableManifestWriter(output, runtag, t, opts.partBytes ?? MANIFEST_PART_BYTES)]),
  );
  const filesByTable = opts.keepFiles ? new Map<string, WrittenFile[]>(opts.tables.map((t) => [t, []])) : undefined;
  const counts = emptyCounts();
  const damagedInputs: DamagedInput[] = [];
  const digestCheck = new ManifestDigestCheck(opts.digest, runtag);
  let buffered = 0;

  // One request per manifest (no existence check first): the listing before the commit found them all.
  const read = async (p: Partition): Promise<[Partition, SuccessManifest | null]> => {
    const key = successKey(runtag, p.id);
    let bytes: Buffer;
    try {
      bytes = await output.readBytes(key);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) return [p, null];
      throw err;
    }
    try {
      return [p, JSON.parse(bytes.toString('utf8')) as SuccessManifest];
    } catch (err) {
      throw new Error(`${output.urlOf(key)} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
  };
  for await (const [p, m] of mapOrdered(opts.partitions, READ_CONCURRENCY, read)) {
    if (!m) {
      throw new Error(
        `partition ${p.id} has no success manifest (it disappeared during the commit); nothing was loaded. ` +
          `Re-run with --runtag ${runtag} to finish it`,
      );
    }
    // Five problems are enough to say (finish throws): no need to read the rest.
    if (!digestCheck.add(p.id, m)) digestCheck.finish();
    opts.onManifest?.(m);
    mergeCounts(counts, m.counts);
    damagedInputs.push(...m.inputErrors);
    for (const f of m.files) {
      if (f.kind !== 'rows') continue;
      const w = writers.get(f.event ?? '');
      if (!w) continue;
      filesByTable?.get(w.table)?.push(f);
      const before = w.bytes;
      const part = w.add(output.urlOf(f.key));
      if (part) await part;
      buffered += w.bytes - before;
      if (buffered > BUFFERED_BYTES_BUDGET) buffered -= await flushLargest(writers);
    }
  }
  digestCheck.finish();
  opts.beforeFinish?.();
  for (const w of writers.values()) await w.finish();
  return {
    counts,
    damagedInputs,
    manifests: new Map([...writers].map(([t, w]) => [t, { keys: w.keys, files: w.files }])),
    filesByTable,
  };
}

/** Writes the largest unwritten tail as a part of its own; returns the bytes it freed. */
async function flushLargest(writers: Map<string, TableManifestWriter>): Promise<number> {
  let largest: TableManifestWriter | null = null;
  for (const w of writers.values()) if (!largest || w.bytes > largest.bytes) largest = w;
  if (!largest || largest.urls.length === 0) return 0;
  const freed = largest.bytes;
  await largest.flush();
  return freed;
}

/**
 * A table's files, read back from its load manifests (the keys under `output`), for
 * the warehouses that read the files themselves; one table's at a time.
 */
export async function readLoadManifests(output: ObjectStore, keys: string[]): Promise<{ key: string; url: string }[]> {
  const probe = output.urlOf('x');
  const base = probe.slice(0, -1);
  const files: { key: string; url: string }[] = [];
  for (const manifestKey of keys) {
    const m = await readJson<{ entries: { url: string }[] }>(output, manifestKey);
    if (!m) throw new Error(`load manifest ${output.urlOf(manifestKey)} is missing`);
    for (const { url } of m.entries) {
      if (!url.startsWith(base))
        throw new Error(`load manifest ${output.urlOf(manifestKey)} names ${url}, outside ${output.url}`);
      files.push({ key: url.slice(base.length), url });
    }
  }
  return files;
}

/** `fn` over `source` with up to `limit` calls in flight, results in source order. */
export async function* mapOrdered<T, R>(
  source: AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<R>,
): AsyncGenerator<R> {
  const inFlight: Promise<R>[] = [];
  for await (const item of source) {
    const started = fn(item);
    // Handled when its turn comes; until then a rejection must not count as unhandled.
    started.catch(() => {});
    inFlight.push(started);
    if (inFlight.length >= limit) yield await inFlight.shift()!;
  }
  while (inFlight.length > 0) yield await inFlight.shift()!;
}
