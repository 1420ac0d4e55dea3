/**
 * One output batch of the continuous processor: the files written from a run
 * of inputs, committed together by one success manifest
 * `<YYYYMMDD>/_success/<batch-id>.json` naming its files and the inputs it
 * covers. Output keys carry the batch id (unique per batch and process), so a
 * batch that dies uncommitted leaves only files no manifest names, which are
 * never loaded; its inputs are processed again by a later batch.
 *
 * Input is transformed by pool tasks that write their own files, tagged
 * `<batch-id>-t<n>` (stdin with one thread: on the main thread, into the
 * batch's own `writers`); the batch collects the results of the tasks that
 * succeeded, and commits once none is running. File mode: a failed task adds
 * nothing (its inputs are read again by a later task), and after a kill the
 * files of uncommitted batches are named by no manifest. Stdin mode: stdin
 * cannot be read again, so the files of a stdin batch (its tasks' and the
 * quarantine of lines rejected on the main thread) are spooled under
 * `<state>/spool/<batch-id>/`, next to a small `<batch-id>.json` record, so
 * that after a hard kill start-up knows which batch a torn spool file belonged
 * to and commits what it salvages (salvage-spool.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OutputWriters, type WrittenFile } from '../output/writers.js';
import { byKey, type ObjectStore } from '../store/objectstore.js';
import type { DamagedInput } from '../pool/thread.js';
import { emptyCounts, mergeCounts, type OutcomeCounts } from '../transform/outcomes.js';
import { EventProcessor, type ProcessorOptions } from '../transform/processor.js';
import type { TableSchema } from '../transform/schema.js';
import { successKey, type SuccessManifest } from '../partition-task.js';
import { utcDate } from './checkpoint.js';

export const MANIFEST_KIND = 'spade-process-batch';

/**
 * A file of a committed batch. Row files name the columns of their fields, in
 * order, as the config that wrote them had them: the config may be reloaded
 * before the batch is loaded, and the load must COPY the file as it was written
 * (an older version's file into a table that has gained columns), not as the
 * config in use then says. Absent in manifests of older versions.
 */
export type BatchFile = WrittenFile & { columns?: string[] };

/** Success manifest of a batch; its first fields are those of a replay partition's manifest. */
export interface BatchManifest extends SuccessManifest {
  kind: typeof MANIFEST_KIND;
  files: BatchFile[];
  /** Input location (URL, directory or `-` for stdin). */
  input: string;
  /** Input keys fully covered by this batch (empty for stdin). */
  inputs: string[];
  openedAt: string;
  /** Set on a batch committed by start-up salvage (stdin mode). */
  salvaged?: boolean;
}

export interface SpoolRecord {
  batch: string;
  runtag: string;
  mode: 'files' | 'stdin';
  openedAt: string;
}

export interface BatchOptions {
  store: ObjectStore;
  stateDir: string;
  mode: SpoolRecord['mode'];
  rotateBytes: number;
  processorOptions: ProcessorOptions;
  /** The config of `processorOptions`: the columns of each (event, version) the batch writes. */
  schemas: readonly TableSchema[];
  /** Write uuid sidecars next to the row files (OutputWriters' `rowUuids`). */
  rowUuids?: boolean;
  now?: number;
}

export function newBatchId(): string {
  return `b${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

export function spoolRoot(stateDir: string): string {
  return join(stateDir, 'spool');
}

export class Batch {
  readonly id = newBatchId();
  readonly runtag: string;
  readonly openedAtMs: number;
  readonly inputs: string[] = [];
  readonly inputErrors: DamagedInput[] = [];
  /** Decompressed input bytes so far. */
  inputBytes = 0;
  /** Lines given to the processor (stdin mode: any input at all makes the batch worth committing). */
  lines = 0;
  readonly writers: OutputWriters;
  processor: EventProcessor;
  private readonly doneCounts = emptyCounts();
  /** Files and counts of the pool tasks that transformed this batch's input files (file mode). */
  private readonly taskFiles: WrittenFile[] = [];
  private readonly taskCounts = emptyCounts();
  /** Pool tasks still running, with the threads each takes; a batch is committed or dropped only once none is. */
  private readonly running = new Map<Promise<void>, number>();
  private nextTask = 0;
  /** Input keys of the running tasks. */
  private readonly inFlight = new Set<string>();
  /** Where the batch's files are spooled until uploaded (stdin mode: its threads' files too), for salvage. */
  readonly spoolDir: string;
  private readonly recordPath: string;
  /** Columns of each `event/v<version>`, from the first config of this batch that has it. */
  private readonly columnsOf = new Map<string, string[]>();

  private constructor(private readonly opts: BatchOptions) {
    this.openedAtMs = opts.now ?? Date.now();
    this.runtag = utcDate(this.openedAtMs);
    this.spoolDir = join(spoolRoot(opts.stateDir), this.id);
    this.recordPath = join(spoolRoot(opts.stateDir), `${this.id}.json`);
    this.writers = new OutputWriters({
      store: opts.store,
      prefix: this.runtag,
      fileTag: this.id,
      rotateBytes: opts.rotateBytes,
      spool: true,
      spoolDir: this.spoolDir,
      rowUuids: opts.rowUuids,
    });
    this.processor = new EventProcessor(opts.processorOptions, this.writers);
    this.noteColumns(opts.schemas);
  }

  /**
   * Remembers the columns of every table version of a config the batch writes
   * with. The first config wins: a version's columns do not change (a changed
   * table is a new version, written under its own `v<version>/`).
   */
  noteColumns(schemas: readonly TableSchema[]): void {
    for (const s of schemas) {
      const key = `${s.event}/v${s.version}`;
      if (!this.columnsOf.has(key))
        this.columnsOf.set(
          key,
          s.columns.map((c) => c.outboundName),
        );
    }
  }

  static async open(opts: BatchOptions): Promise<Batch> {
    const batch = new Batch(opts);
    // File input can be read again: a file-mode batch has nothing to salvage after a kill
    // (its tasks spool on their own).
    if (opts.mode !== 'stdin') return batch;
    await mkdir(batch.spoolDir, { recursive: true, mode: 0o700 });
    const record: SpoolRecord = {
      batch: batch.id,
      runtag: batch.runtag,
      mode: opts.mode,
      openedAt: new Date(batch.openedAtMs).toISOString(),
    };
    await writeFile(batch.recordPath, JSON.stringify(record) + '\n');
    return batch;
  }

  /** A new config takes effect between inputs: rows keep going to the same writers. */
  switchProcessor(options: ProcessorOptions, schemas: readonly TableSchema[]): void {
    mergeCounts(this.doneCounts, this.processor.counts);
    this.processor = new EventProcessor(options, this.writers);
    this.noteColumns(schemas);
  }

  counts(): OutcomeCounts {
    const all = mergeCounts(mergeCounts(emptyCounts(), this.doneCounts), this.processor.counts);
    return mergeCounts(all, this.taskCounts);
  }

  /** A file tag unique within the batch for the next pool task, e.g. `b…-t3`. */
  taskTag(): string {
    return `${this.id}-t${this.nextTask++}`;
  }

  /**
   * Tracks a pool task transforming `keys`: when it succeeds its files, counts
   * and inputs join the batch; when it fails, nothing of it does (a failed task
   * reports no files, so whatever it uploaded is named by no manifest) and
   * `onFailed` is told, so that its inputs are read again.
   */
  track(
    keys: string[],
    task: Promise<{
      files: WrittenFile[];
      counts: OutcomeCounts;
      inputErrors: DamagedInput[];
    }>,
    onSettled: () => void,
    onFailed: (keys: string[], reason: string) => void,
    /** Threads the task takes (all of the pool's for inputs spread over them). */
    threads = 1,
  ): void {
    for (const k of keys) this.inFlight.add(k);
    const done = task.then(
      (res) => {
        this.taskFiles.push(...res.files);
        mergeCounts(this.taskCounts, res.counts);
        this.inputErrors.push(...res.inputErrors);
        this.inputs.push(...keys);
        this.inputBytes += res.counts.inputBytes;
      },
      (err: unknown) => onFailed(keys, err instanceof Error ? err.message : String(err)),
    );
    const entry = done.finally(() => {
      for (const k of keys) this.inFlight.delete(k);
      this.running.delete(entry);
      onSettled();
    });
    this.running.set(entry, threads);
  }

  /** Input keys taken by this batch and not committed yet: done or in a running task. */
  *uncommittedKeys(): Iterable<string> {
    yield* this.inputs;
    yield* this.inFlight;
  }

  /** Pool threads taken by this batch's tasks in flight. */
  get runningTasks(): number {
    let threads = 0;
    for (const n of this.running.values()) threads += n;
    return threads;
  }

  /** Waits until no pool task of this batch is running. */
  async settle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running.keys()]);
  }

  isEmpty(): boolean {
    return this.inputs.length === 0 && this.lines === 0 && this.running.size === 0;
  }

  ageMs(now = Date.now()): number {
    return now - this.openedAtMs;
  }

  /**
   * Finishes and uploads every file, then writes the success manifest (last:
   * its existence is what makes the files loadable). Returns the manifest and its key.
   */
  async commit(inputLocation: string): Promise<{ manifest: BatchManifest; key: string }> {
    await this.settle();
    const files: BatchFile[] = [...(await this.writers.close()), ...this.taskFiles].sort(byKey).map((f) => {
      const columns = f.kind === 'rows' ? this.columnsOf.get(`${f.event}/v${f.version}`) : undefined;
      return columns ? { ...f, columns } : f;
    });
    const manifest: BatchManifest = {
      runtag: this.runtag,
      partition: this.id,
      attempt: this.id,
      files,
      counts: this.counts(),
      inputErrors: this.inputErrors,
      finishedAt: new Date().toISOString(),
      kind: MANIFEST_KIND,
      input: inputLocation,
      inputs: this.inputs,
      openedAt: new Date(this.openedAtMs).toISOString(),
    };
    const key = successKey(this.runtag, this.id);
    await this.opts.store.put(key, JSON.stringify(manifest, null, 1) + '\n');
    await this.removeSpool();
    return { manifest, key };
  }

  /** Drops the batch: nothing of it is ever named by a manifest. */
  async abort(): Promise<void> {
    await this.settle();
    await this.writers.abort();
    await this.removeSpool();
  }

  private async removeSpool(): Promise<void> {
    await rm(this.spoolDir, { recursive: true, force: true });
    await rm(this.recordPath, { force: true });
  }
}
