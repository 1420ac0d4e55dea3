/**
 * Loads committed batches into the warehouse in the background, in commit
 * order, a group of batches per transaction (append.ts says why one transaction
 * for all tables). A load starts at most every `loadEveryMs` (`--load-every`)
 * and takes every batch queued by then (up to MAX_GROUP): on Redshift each
 * COMMIT is expensive and commits run one after another cluster-wide, so
 * grouping bounds them to one per interval whatever the batch rate.
 *
 * A failed load is retried after a pause that doubles from `retryMs` up to
 * MAX_RETRY_MS; the queue does not move past it, so batches are never skipped
 * and never loaded out of order (the warehouse may be down, a table may be
 * being altered: nothing is lost, the manifests stay in the checkpoint's
 * `unloaded` list until their load commits). Exactly-once comes from the
 * record table in the warehouse (append.ts), not from this queue.
 *
 * Redshift reads the files itself: before each attempt, a MANIFEST per table of
 * each batch is written next to the batch's success manifest (the same content
 * every attempt, so rewriting is harmless).
 */
import { redshiftManifest, batchLoadManifestKey } from '../warehouse/redshift-manifest.js';
import { copyUnits, type AppendBatch, type AppendFile, type WarehouseAppender } from '../warehouse/append.js';
import type { ObjectStore } from '../store/objectstore.js';
import type { TableSchema } from '../transform/schema.js';
import type { BatchManifest } from './batch.js';
import { RetryPause } from './retry-pause.js';

/** Most batches in one load (one transaction). */
export const MAX_GROUP = 100;
/** Longest pause between two attempts of a failing load. */
export const MAX_RETRY_MS = 5 * 60_000;

/**
 * `--load-every` by warehouse. Redshift: 300 s, because each COMMIT there costs
 * seconds and the cluster runs commits one after another (every loader, every
 * user), so a batch rate of minutes must not become a commit rate of minutes per
 * processor. PostgreSQL and PGlite: 0, each batch as soon as it is committed (a
 * commit costs milliseconds there, and the rows are queryable sooner); a backlog
 * (after a restart or an outage) is still loaded as one group.
 */
export function defaultLoadEverySeconds(kind: string): number {
  return kind === 'redshift' ? 300 : 0;
}

export interface LoaderHooks {
  loaded(manifestKey: string, rows: number, already: boolean): Promise<void>;
  /** A load of `manifestKeys` failed; it is tried again in `retryInMs`. */
  failed(manifestKeys: readonly string[], err: Error, attempt: number, retryInMs: number): void;
}

export interface LoaderTiming {
  /** Shortest time between the starts of two loads (0: load as soon as a batch is committed). */
  loadEveryMs: number;
  /** First pause after a failed load; doubled at each failure in a row. */
  retryMs: number;
}

export class ContinuousLoader {
  /** Manifest keys to load, in commit order, with when each was queued (ms). */
  private readonly queue: { key: string; since: number }[] = [];
  private running: Promise<void> | null = null;
  private stopping = false;
  private readonly pause = new RetryPause();
  private nextLoadAt = 0;

  constructor(
    private readonly appender: WarehouseAppender,
    private readonly store: ObjectStore,
    private readonly hooks: LoaderHooks,
    private readonly timing: LoaderTiming,
    /** The table config in use: the columns each table's files hold, checked against the table. */
    private readonly schemas: () => readonly TableSchema[],
  ) {}

  enqueue(manifestKey: string): void {
    if (this.queue.some((q) => q.key === manifestKey)) return;
    this.queue.push({ key: manifestKey, since: Date.now() });
    // Started on the next tick, so the batches queued together (a restart's backlog) load as one group.
    if (this.running === null && !this.stopping) {
      this.running = Promise.resolve()
        .then(() => this.loop())
        .finally(() => (this.running = null));
    }
  }

  pending(): number {
    return this.queue.length;
  }

  /** When the oldest batch still waiting for its load was queued (ms), or null when none waits. */
  oldestWaitingSince(): number | null {
    return this.queue[0]?.since ?? null;
  }

  /** Lets the load in progress finish (or fail); queued manifests stay in the checkpoint for the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.pause.wake();
    await this.running;
    await this.appender.close();
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopping && this.queue.length > 0) {
      const wait = this.nextLoadAt - Date.now();
      if (wait > 0) {
        await this.pause.sleep(wait);
        continue;
      }
      this.nextLoadAt = Date.now() + this.timing.loadEveryMs;
      const keys = this.queue.slice(0, MAX_GROUP).map((q) => q.key);
      try {
        const results = await this.loadGroup(keys);
        failures = 0;
        for (const [i, key] of keys.entries()) {
          this.queue.shift();
          const res = results[i];
          await this.hooks.loaded(key, res?.rows ?? 0, res?.status === 'already_loaded');
        }
      } catch (err) {
        failures++;
        const retryInMs = Math.min(MAX_RETRY_MS, this.timing.retryMs * 2 ** Math.min(failures - 1, 20));
        this.hooks.failed(keys, err as Error, failures, retryInMs);
        await this.pause.sleep(retryInMs);
      }
    }
  }

  private async loadGroup(keys: readonly string[]): ReturnType<WarehouseAppender['append']> {
    const batches: AppendBatch[] = [];
    for (const key of keys) batches.push(await this.batchOf(key));
    return this.appender.append(batches, (k) => this.store.read(k), this.schemas());
  }

  private async batchOf(key: string): Promise<AppendBatch> {
    const manifest = JSON.parse((await this.store.readBytes(key)).toString('utf8')) as BatchManifest;
    const files: AppendFile[] = [];
    for (const f of manifest.files) {
      if (f.kind === 'rows' && f.event !== undefined)
        files.push({ table: f.event, key: f.key, url: this.store.urlOf(f.key), columns: f.columns });
    }
    const batch: AppendBatch = { manifest: this.store.urlOf(key), files };
    if (this.appender.kind === 'redshift') batch.manifestUrls = await this.writeLoadManifests(manifest, files);
    return batch;
  }

  /** One Redshift MANIFEST per table of the batch (per COPY: copyUnits), naming exactly its files. */
  private async writeLoadManifests(manifest: BatchManifest, files: AppendFile[]): Promise<Map<string, string>> {
    const urls = new Map<string, string>();
    for (const unit of copyUnits(files)) {
      const key = batchLoadManifestKey(manifest.runtag, manifest.partition, unit.name);
      await this.store.put(key, redshiftManifest(unit.files.map((f) => f.url as string)));
      urls.set(unit.name, this.store.urlOf(key));
    }
    return urls;
  }
}
