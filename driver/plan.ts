/**
 * The streamed plan: partitions formed while the listing runs, written to the
 * output store as they form, and read back the same way by a resume. The run record
 * (`_run.json`) names the plan's files (`<runtag>/_plan/00000.jsonl`, one partition
 * per line) instead of holding every key, so neither the driver's memory nor one JSON
 * document grows with the number of edge files.
 *
 * How partitions form (partition.ts does the balancing):
 * - Up to `smallPlanFiles` files, nothing is written until the listing ends, and the
 *   whole set is partitioned at once: exactly the plan of a single `planPartitions`
 *   call, as before plans streamed.
 * - Past it, each listing unit (a date or autoscale-group prefix, listed in key order)
 *   collects its files into a chunk, and a chunk is partitioned on its own when it
 *   reaches `chunkFiles` files or `chunkBytes` bytes, or its unit ends. With
 *   `chunkBytes` many times the target (64: one plan file per ~64 partitions), a chunk's LPT partitions stay within one
 *   file of each other, and every partition stays within one file of the target; only
 *   the last chunk of each unit makes lighter (still equal) partitions. Memory is
 *   about `concurrency` chunks, whatever the number of keys.
 * A chunk's partitions depend only on its unit's keys, but partition ids are given in
 * the order chunks complete, which parallel listing does not fix: a resume therefore
 * never plans again, it reads the written plan back.
 */
import type { ObjectStore } from '../worker/store/objectstore.js';
import { UsageError } from './cli/errors.js';
import { streamWindowFiles, type EdgeFile, type ListingSink, type ListOptions } from './listing.js';
import type { RunRecord } from './manifest.js';
import { planPartitions, type Partition, type PartitionFile } from './partition.js';
import type { ReplayWindow } from './window.js';

/** One file of the plan: a JSON Lines file of partitions. */
export interface PlanFile {
  /** Key under the output store, e.g. `<runtag>/_plan/00000.jsonl`. */
  key: string;
  partitions: number;
  files: number;
  bytes: number;
}

/** What the run record says of its plan. */
export interface PlanIndex {
  partitions: number;
  files: number;
  bytes: number;
  planFiles: PlanFile[];
}

export interface StreamingPlanOptions {
  targetBytes: number;
  /** Up to this many files the plan is made at once, as a single `planPartitions` (default 100,000). */
  smallPlanFiles?: number;
  /** A listing unit's chunk is partitioned at this many files (default 50,000)... */
  chunkFiles?: number;
  /** ...or at this many bytes (default 64 × targetBytes). */
  chunkBytes?: number;
}

export const planFileKey = (runtag: string, n: number): string => `${runtag}/_plan/${String(n).padStart(5, '0')}.jsonl`;

export const partitionId = (n: number): string => `p${String(n).padStart(5, '0')}`;

/** Where formed partitions go: a batch at a time (the partitions of one chunk, or of a small plan). */
export type PartitionBatchSink = (partitions: Partition[]) => Promise<void>;

/**
 * A listing sink that forms partitions as files arrive (see the module comment) and
 * hands them to `emit` with their final ids.
 */
export class StreamingPlanner implements ListingSink {
  private readonly smallPlanFiles: number;
  private readonly chunkFiles: number;
  private readonly chunkBytes: number;
  /** Files per listing unit not yet partitioned. */
  private readonly pending = new Map<string, { files: PartitionFile[]; bytes: number }>();
  private readonly doneUnits = new Set<string>();
  private streaming = false;
  private buffered = 0;
  private nextId = 0;
  /** Chunks are partitioned and emitted one at a time, so ids follow the order of the batches. */
  private emitting: Promise<void> = Promise.resolve();

  constructor(
    private readonly opts: StreamingPlanOptions,
    private readonly emit: PartitionBatchSink,
  ) {
    this.smallPlanFiles = opts.smallPlanFiles ?? 100_000;
    this.chunkFiles = opts.chunkFiles ?? 50_000;
    this.chunkBytes = opts.chunkBytes ?? 64 * opts.targetBytes;
  }

  file(unit: string, f: EdgeFile): Promise<void> | void {
    let p = this.pending.get(unit);
    if (!p) this.pending.set(unit, (p = { files: [], bytes: 0 }));
    p.files.push({ key: f.key, size: f.size });
    p.bytes += f.size;
    if (!this.streaming) {
      if (++this.buffered <= this.smallPlanFiles) return;
      return this.startStreaming();
    }
    if (p.files.length >= this.chunkFiles || p.bytes >= this.chunkBytes) return this.cut(unit);
  }

  unitDone(unit: string): Promise<void> | void {
    this.doneUnits.add(unit);
    if (this.streaming) return this.cut(unit);
  }

  /** After the listing: partitions whatever is left. */
  async finish(): Promise<void> {
    if (!this.streaming) {
      const all: PartitionFile[] = [];
      for (const p of this.pending.values()) for (const f of p.files) all.push(f);
      this.pending.clear();
      if (all.length > 0) await this.emitBatch(planPartitions(all, { targetBytes: this.opts.targetBytes }));
      return;
    }
    for (const unit of [...this.pending.keys()]) await this.cut(unit);
    await this.emitting;
  }

  /** Too many files to hold: units that ended are partitioned now, the others as their chunks fill. */
  private async startStreaming(): Promise<void> {
    this.streaming = true;
    for (const [unit, p] of [...this.pending]) {
      if (this.doneUnits.has(unit)) await this.cut(unit);
      else while (p.files.length >= this.chunkFiles) await this.cut(unit, this.chunkFiles);
    }
  }

  /** Partitions the unit's pending files (the first `count` of them: they are in key order). */
  private cut(unit: string, count?: number): Promise<void> {
    const p = this.pending.get(unit);
    if (!p || p.files.length === 0) return this.emitting;
    const files = count === undefined || count >= p.files.length ? p.files : p.files.slice(0, count);
    if (files === p.files) this.pending.delete(unit);
    else {
      p.files = p.files.slice(files.length);
      p.bytes = p.files.reduce((s, f) => s + f.size, 0);
    }
    const partitions = planPartitions(files, { targetBytes: this.opts.targetBytes });
    this.emitting = this.emitting.then(() => this.emitBatch(partitions));
    return this.emitting;
  }

  private async emitBatch(partitions: Partition[]): Promise<void> {
    for (const part of partitions) part.id = partitionId(this.nextId++);
    await this.emit(partitions);
  }
}

/** Writes each batch of partitions as one plan file; `index()` is what the run record keeps. */
export class PlanWriter {
  private readonly planFiles: PlanFile[] = [];
  private totals = { partitions: 0, files: 0, bytes: 0 };

  constructor(
    private readonly store: ObjectStore,
    private readonly runtag: string,
  ) {}

  readonly write: PartitionBatchSink = async (partitions) => {
    const planFile: PlanFile = {
      key: planFileKey(this.runtag, this.planFiles.length),
      partitions: partitions.length,
      files: 0,
      bytes: 0,
    };
    const lines: string[] = [];
    for (const p of partitions) {
      planFile.files += p.files.length;
      planFile.bytes += p.bytes;
      lines.push(JSON.stringify(p));
    }
    this.planFiles.push(planFile);
    this.totals.partitions += planFile.partitions;
    this.totals.files += planFile.files;
    this.totals.bytes += planFile.bytes;
    await this.store.put(planFile.key, lines.join('\n') + '\n');
  };

  index(): PlanIndex {
    return { ...this.totals, planFiles: this.planFiles };
  }
}

export interface PlannedWindow {
  totals: { partitions: number; files: number; bytes: number };
  /** The first partition formed (what `--plan` shows the executor's command with). */
  first: Partition | undefined;
  /** The plan files written, for the run record; null when nothing was written (`--plan`). */
  index: PlanIndex | null;
}

/**
 * Lists the window (listing.ts) and forms its partitions as the keys arrive, writing
 * them under `<runtag>/_plan/` of `output`; with `output` null (`--plan`) they are
 * only counted.
 */
export async function planWindow(
  edge: ObjectStore,
  output: ObjectStore | null,
  runtag: string,
  w: ReplayWindow,
  opts: StreamingPlanOptions & ListOptions & { onPartitions?: (batch: Partition[]) => void },
): Promise<PlannedWindow> {
  const writer = output ? new PlanWriter(output, runtag) : null;
  const totals = { partitions: 0, files: 0, bytes: 0 };
  let first: Partition | undefined;
  const planner = new StreamingPlanner(opts, async (batch) => {
    first ??= batch[0];
    totals.partitions += batch.length;
    for (const p of batch) {
      totals.files += p.files.length;
      totals.bytes += p.bytes;
    }
    opts.onPartitions?.(batch);
    if (writer) await writer.write(batch);
  });
  await streamWindowFiles(edge, w, planner, opts);
  await planner.finish();
  return { totals, first, index: writer?.index() ?? null };
}

/** What a run record's plan amounts to, from its index or (older records) its inline partitions. */
export function planTotals(record: RunRecord): { partitions: number; files: number; bytes: number } {
  if (record.plan) return { partitions: record.plan.partitions, files: record.plan.files, bytes: record.plan.bytes };
  const partitions = record.partitions ?? [];
  return {
    partitions: partitions.length,
    files: partitions.reduce((s, p) => s + p.files.length, 0),
    bytes: partitions.reduce((s, p) => s + p.bytes, 0),
  };
}

/**
 * The run's partitions in plan order, one plan file in memory at a time. A record
 * written before plans streamed holds its partitions inline: they are resumed as they are.
 */
export async function* readPlan(store: ObjectStore, record: RunRecord): AsyncGenerator<Partition> {
  if (!record.plan) {
    if (!record.partitions) {
      throw new UsageError(
        `runtag ${record.runtag}: its run record has neither a plan nor partitions (not written by spade-replay?); use a new --runtag`,
      );
    }
    yield* record.partitions;
    return;
  }
  for (const planFile of record.plan.planFiles) {
    let text: string;
    try {
      text = (await store.readBytes(planFile.key)).toString('utf8');
    } catch (err) {
      throw new Error(
        `runtag ${record.runtag}: plan file ${store.urlOf(planFile.key)} cannot be read (${(err as Error).message}); ` +
          `the run cannot resume: use a new --runtag`,
        { cause: err },
      );
    }
    let n = 0;
    let lineNo = 0;
    for (const line of text.split('\n')) {
      lineNo++;
      if (line === '') continue;
      let p: Partition;
      try {
        p = JSON.parse(line) as Partition;
      } catch (err) {
        throw new Error(`${store.urlOf(planFile.key)} line ${lineNo} is not valid JSON: ${(err as Error).message}`, {
          cause: err,
        });
      }
      n++;
      yield p;
    }
    if (n !== planFile.partitions) {
      throw new Error(
        `${store.urlOf(planFile.key)} holds ${n} partition(s), the run record says ${planFile.partitions}; ` +
          `the plan was changed after it was written: use a new --runtag`,
      );
    }
  }
}
