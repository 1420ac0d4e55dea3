/**
 * Appends committed batches to the warehouse in the background, one at a time,
 * in commit order, retrying a failed one after a pause (the warehouse may be
 * down; nothing is lost: the manifest stays in the checkpoint's `unloaded`
 * list until its append commits). Exactly-once comes from AppendLoader's
 * manifest table, not from this queue.
 */
import { AppendLoader, type AppendFile } from '../warehouse/append.js';
import type { ObjectStore } from '../store/objectstore.js';
import type { TableSchema } from '../transform/schema.js';
import type { BatchManifest } from './batch.js';
import { RetryPause } from './retry-pause.js';

export interface LoaderHooks {
  loaded(manifestKey: string, rows: number, already: boolean): Promise<void>;
  failed(manifestKey: string, err: Error): void;
}

export class ContinuousLoader {
  private readonly queue: string[] = [];
  private running: Promise<void> | null = null;
  private stopping = false;
  private readonly pause = new RetryPause();

  constructor(
    private readonly loader: AppendLoader,
    private readonly store: ObjectStore,
    private readonly hooks: LoaderHooks,
    private readonly retryMs: number,
    /** The table config in use: the columns each table's files hold, checked against the table. */
    private readonly schemas: () => readonly TableSchema[],
  ) {}

  enqueue(manifestKey: string): void {
    if (this.queue.includes(manifestKey)) return;
    this.queue.push(manifestKey);
    if (this.running === null && !this.stopping) this.running = this.loop().finally(() => (this.running = null));
    this.pause.wake();
  }

  pending(): number {
    return this.queue.length;
  }

  /** Lets the append in progress finish (or fail); queued manifests stay in the checkpoint for the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.pause.wake();
    await this.running;
    await this.loader.close();
  }

  private async loop(): Promise<void> {
    while (!this.stopping && this.queue.length > 0) {
      const key = this.queue[0] as string;
      try {
        const res = await this.appendOne(key);
        this.queue.shift();
        await this.hooks.loaded(key, res.rows, res.status === 'already_loaded');
      } catch (err) {
        this.hooks.failed(key, err as Error);
        await this.pause.sleep(this.retryMs);
      }
    }
  }

  private async appendOne(key: string): Promise<{ status: 'loaded' | 'already_loaded'; rows: number }> {
    const manifest = JSON.parse((await this.store.readBytes(key)).toString('utf8')) as BatchManifest;
    const files: AppendFile[] = [];
    for (const f of manifest.files)
      if (f.kind === 'rows' && f.event !== undefined) files.push({ table: f.event, key: f.key });
    return this.loader.append(this.store.urlOf(key), files, (k) => this.store.read(k), this.schemas());
  }
}
