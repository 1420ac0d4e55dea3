/**
 * `spade process --kinesis-stream`: publishes each committed batch's rows to
 * Kinesis in the background, one batch at a time in commit order (records
 * `"replay": false`, `runtag` the batch's date runtag), never a batch that was
 * not committed.
 *
 * Nothing is lost across stops and crashes: a batch's manifest key is written
 * to `<state-dir>/kinesis-pending.json` (atomically) BEFORE the batch commits,
 * and removed once every file of it is published. At start the keys listed
 * there are published (a key whose manifest does not exist is a batch that
 * never committed, and is dropped). Files already published are skipped by
 * their checkpoints (kinesis-publish.ts), so a batch interrupted half-way
 * publishes only its remaining files. On SIGTERM the queue is drained before
 * the processor exits (within its shutdown timeout); a failing stream leaves
 * the batch pending for the next start and is retried meanwhile.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KinesisPublisher, type KinesisPublishOptions, type RowFile } from '../output/kinesis-publish.js';
import type { ObjectStore } from '../store/objectstore.js';
import type { TableSchema } from '../transform/schema.js';
import type { BatchManifest } from './batch.js';
import { RetryPause } from './retry-pause.js';

const PENDING_FILE = 'kinesis-pending.json';

export class KinesisQueue {
  /** Manifest keys not yet completely published, in commit order (persisted). */
  private readonly pending: string[] = [];
  /** Of those, the ones whose batch has committed (ready to publish). */
  private readonly ready = new Set<string>();
  private running: Promise<void> | null = null;
  private stopping = false;
  private readonly pause = new RetryPause();
  private saveChain: Promise<void> = Promise.resolve();

  private constructor(
    private readonly publisher: KinesisPublisher,
    private readonly store: ObjectStore,
    private readonly stateDir: string,
    private readonly schemas: () => readonly TableSchema[],
    private readonly log: (level: 'info' | 'warn' | 'error', msg: string) => void,
    private readonly retryMs: number,
  ) {}

  /** Checks the streams, then resumes the batches a previous run left unpublished. */
  static async open(args: {
    options: KinesisPublishOptions;
    store: ObjectStore;
    stateDir: string;
    schemas: () => readonly TableSchema[];
    log: (level: 'info' | 'warn' | 'error', msg: string) => void;
    retryMs: number;
  }): Promise<KinesisQueue> {
    const publisher = await KinesisPublisher.open(args.options);
    const q = new KinesisQueue(publisher, args.store, args.stateDir, args.schemas, args.log, args.retryMs);
    let left: string[] = [];
    try {
      left = (JSON.parse(await readFile(join(args.stateDir, PENDING_FILE), 'utf8')) as { pending: string[] }).pending;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const key of left) {
      if (await args.store.exists(key)) {
        q.pending.push(key);
        q.ready.add(key);
      } else {
        args.log('info', `kinesis: batch ${key} never committed; nothing to publish`);
      }
    }
    if (left.length) {
      args.log('info', `kinesis: ${q.pending.length} committed batch(es) left unpublished by the last run`);
      await q.save();
      q.kick();
    }
    return q;
  }

  /** Records (durably) that `manifestKey` is about to commit; call before writing the manifest. */
  async intend(manifestKey: string): Promise<void> {
    if (!this.pending.includes(manifestKey)) this.pending.push(manifestKey);
    await this.save();
  }

  /** The batch committed: publish it. */
  committed(manifestKey: string): void {
    this.ready.add(manifestKey);
    this.kick();
  }

  /** The batch did not commit after all. */
  async forget(manifestKey: string): Promise<void> {
    const i = this.pending.indexOf(manifestKey);
    if (i >= 0) this.pending.splice(i, 1);
    await this.save();
  }

  /** Records acknowledged by the streams since start. */
  get published(): number {
    return this.publisher.published;
  }

  /** Publishes what is ready (one attempt per batch), then closes; what failed stays pending for the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.pause.wake();
    await this.running;
    await this.saveChain;
    this.publisher.close();
  }

  private kick(): void {
    if (this.running === null) this.running = this.loop().finally(() => (this.running = null));
    this.pause.wake();
  }

  private async loop(): Promise<void> {
    for (;;) {
      const key = this.pending.find((k) => this.ready.has(k));
      if (key === undefined) return;
      const ok = await this.publishBatch(key);
      if (ok) {
        this.pending.splice(this.pending.indexOf(key), 1);
        this.ready.delete(key);
        await this.save();
        continue;
      }
      if (this.stopping) return;
      await this.pause.sleep(this.retryMs);
    }
  }

  /** True when every file of the batch is published to every stream that wants its table. */
  private async publishBatch(key: string): Promise<boolean> {
    let manifest: BatchManifest;
    try {
      manifest = JSON.parse((await this.store.readBytes(key)).toString('utf8')) as BatchManifest;
    } catch (err) {
      this.log('error', `kinesis: cannot read ${this.store.urlOf(key)} (will retry): ${(err as Error).message}`);
      return false;
    }
    const byTable = new Map<string, RowFile[]>();
    for (const f of manifest.files) {
      if (f.kind !== 'rows' || f.event === undefined) continue;
      byTable.set(f.event, [...(byTable.get(f.event) ?? []), { key: f.key, version: f.version, uuids: f.uuids }]);
    }
    const results = (
      await Promise.all(
        [...byTable].map(([table, files]) =>
          this.publisher.publishTable({
            store: this.store,
            runtag: manifest.runtag,
            replay: false,
            schemas: this.schemas(),
            table,
            files,
          }),
        ),
      )
    ).flat();
    const failed = results.flatMap((r) => r.failed.map((f) => `${r.table} -> ${r.stream}: ${f.key}: ${f.error}`));
    for (const f of failed) this.log('error', `kinesis: not published (will retry): ${f}`);
    if (failed.length) return false;
    const published = results.reduce((s, r) => s + r.published, 0);
    this.log('info', `kinesis: published batch ${manifest.partition}: ${published} record(s)`);
    return true;
  }

  private save(): Promise<void> {
    const path = join(this.stateDir, PENDING_FILE);
    const text = JSON.stringify({ pending: [...this.pending] }) + '\n';
    const next = this.saveChain.then(async () => {
      await writeFile(`${path}.tmp`, text);
      await rename(`${path}.tmp`, path);
    });
    this.saveChain = next.catch((err: unknown) =>
      this.log('error', `kinesis: saving ${path} failed: ${(err as Error).message}`),
    );
    return next;
  }
}
