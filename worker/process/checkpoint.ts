/**
 * The continuous processor's durable checkpoint: which input files are fully
 * committed (their rows are in a batch whose success manifest exists), kept
 * per date prefix for the lookback window, plus the manifests still to be
 * loaded into the warehouse. Saved atomically (temp file, fsync, rename), so a
 * kill at any moment leaves either the old or the new checkpoint.
 *
 * The success manifests in the output store are the real commit record; the
 * checkpoint is their cache. A kill between a manifest's write and the next
 * checkpoint save is repaired at start-up by `reconcile` in processor.ts,
 * which reads the manifests written since the last save.
 */
import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

export const CHECKPOINT_VERSION = 1;

export interface CheckpointData {
  version: number;
  /** The input location the keys belong to; a checkpoint of another input is refused. */
  input: string;
  /** Oldest date prefix (YYYYMMDD) still tracked: keys of older prefixes are ignored as done. */
  floor: string;
  /** Committed input keys by date prefix (only prefixes >= floor). */
  committed: Record<string, string[]>;
  /** Ids of recent committed batches (for reconciling with manifests). */
  batches: string[];
  /** Runtag (date) of the newest batch committed; manifests are looked for from the day before it. */
  lastBatchDate: string | null;
  /** Manifest keys committed but not yet loaded into the warehouse (with --rsurl). */
  unloaded: string[];
  savedAt: string;
}

const RECENT_BATCHES = 2000;

export class Checkpoint {
  private readonly committedSet = new Set<string>();
  private readonly batchSet: Set<string>;

  private constructor(
    private readonly path: string,
    readonly data: CheckpointData,
  ) {
    for (const keys of Object.values(data.committed)) for (const k of keys) this.committedSet.add(k);
    this.batchSet = new Set(data.batches);
  }

  static fileIn(stateDir: string): string {
    return join(stateDir, 'checkpoint.json');
  }

  /** Loads the checkpoint of `stateDir`, or starts a new one at `startDate` when there is none. */
  static async load(stateDir: string, input: string, startDate: string): Promise<Checkpoint> {
    const path = Checkpoint.fileIn(stateDir);
    let text: string | null = null;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === null) {
      return new Checkpoint(path, {
        version: CHECKPOINT_VERSION,
        input,
        floor: startDate,
        committed: {},
        batches: [],
        lastBatchDate: null,
        unloaded: [],
        savedAt: new Date().toISOString(),
      });
    }
    let data: CheckpointData;
    try {
      data = JSON.parse(text) as CheckpointData;
    } catch (err) {
      throw new Error(`checkpoint ${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    if (data.version !== CHECKPOINT_VERSION) throw new Error(`checkpoint ${path}: unknown version ${data.version}`);
    if (data.input !== input) {
      throw new Error(
        `checkpoint ${path} belongs to input ${data.input}, not ${input}: use another --state-dir or remove it`,
      );
    }
    data.unloaded ??= [];
    return new Checkpoint(path, data);
  }

  /** Manifests committed and not loaded in the checkpoint of `stateDir`, without taking it; null when there is none. */
  static async peekUnloaded(stateDir: string): Promise<number | null> {
    let text: string;
    try {
      text = await readFile(Checkpoint.fileIn(stateDir), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    return ((JSON.parse(text) as Partial<CheckpointData>).unloaded ?? []).length;
  }

  isCommitted(key: string): boolean {
    return this.committedSet.has(key);
  }

  knowsBatch(id: string): boolean {
    return this.batchSet.has(id);
  }

  /** Records a committed batch: its input keys (keys older than the floor are dropped) and manifest. */
  addBatch(id: string, runtag: string, inputs: readonly string[], manifestKey: string | null): void {
    for (const key of inputs) {
      const date = datePrefixOf(key);
      if (date === null || date < this.data.floor || this.committedSet.has(key)) continue;
      (this.data.committed[date] ??= []).push(key);
      this.committedSet.add(key);
    }
    if (!this.batchSet.has(id)) {
      this.batchSet.add(id);
      this.data.batches.push(id);
      if (this.data.batches.length > RECENT_BATCHES) {
        for (const old of this.data.batches.splice(0, this.data.batches.length - RECENT_BATCHES))
          this.batchSet.delete(old);
      }
    }
    if (this.data.lastBatchDate === null || runtag > this.data.lastBatchDate) this.data.lastBatchDate = runtag;
    if (manifestKey !== null && !this.data.unloaded.includes(manifestKey)) this.data.unloaded.push(manifestKey);
  }

  markLoaded(manifestKey: string): void {
    this.data.unloaded = this.data.unloaded.filter((k) => k !== manifestKey);
  }

  /** Moves the floor forward (never back) and forgets the keys of prefixes before it. */
  advanceFloor(date: string): void {
    if (date <= this.data.floor) return;
    this.data.floor = date;
    for (const d of Object.keys(this.data.committed)) {
      if (d >= date) continue;
      for (const k of this.data.committed[d] ?? []) this.committedSet.delete(k);
      delete this.data.committed[d];
    }
  }

  committedCount(): number {
    return this.committedSet.size;
  }

  /** Atomic save: a reader (or the next start) sees the old file or the whole new one. */
  async save(): Promise<void> {
    this.data.savedAt = new Date().toISOString();
    const tmp = `${this.path}.tmp-${process.pid}`;
    const handle = await open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(JSON.stringify(this.data) + '\n');
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(tmp, this.path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw new Error(`saving checkpoint ${this.path} failed: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** `YYYYMMDD` of an edge key `YYYYMMDD/...`, or null for keys outside that layout. */
export function datePrefixOf(key: string): string | null {
  const m = /^(\d{8})\//.exec(key);
  return m ? (m[1] as string) : null;
}

/** UTC date `YYYYMMDD` of a time in ms. */
export function utcDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');
}

/** `date` (YYYYMMDD) moved by `days`. */
export function addDays(date: string, days: number): string {
  const ms = Date.UTC(Number(date.slice(0, 4)), Number(date.slice(4, 6)) - 1, Number(date.slice(6, 8)));
  return utcDate(ms + days * 86_400_000);
}

/** Every date from `from` to `to` inclusive (empty when from > to). */
export function dateRange(from: string, to: string): string[] {
  const out: string[] = [];
  for (let d = from; d <= to && out.length < 3660; d = addDays(d, 1)) out.push(d);
  return out;
}
