/**
 * `spade process --follow`: the continuous processor. Reads edge input as it
 * arrives (new files under an S3 prefix or directory, or lines on stdin),
 * transforms it into batches of rotating gzip TSV files under the date runtag
 * `YYYYMMDD/<event>/v<version>/` of the output, and commits each batch with a
 * success manifest. Optionally loads the committed batches into a warehouse
 * (PostgreSQL, PGlite or Redshift; loader.ts, warehouse/append.ts).
 *
 * Exactly-once, file input: an input file counts as done only once the batch
 * holding its rows is committed (manifest written), and then the checkpoint
 * (`<state-dir>/checkpoint.json`, saved atomically) records it. After a crash,
 * files of uncommitted batches are processed again by a new batch with a new
 * id; the old batch's files are named by no manifest, so they are never
 * loaded. A kill between a manifest's write and the checkpoint's save is
 * repaired at start-up from the manifests themselves (`reconcile`).
 *
 * Input files are transformed by a piscina pool (`--threads`, default one per
 * core): pending files are dealt out in groups, one task per free thread, each
 * task writing its own files into the open batch (a batch never holds part of
 * a file). Stdin is cut into lines on the main thread (globs decoded there)
 * and spread over every thread of the pool in chunks (with one thread, they
 * are transformed on the main thread); their files spool under the batch's
 * spool dir, so that a hard kill's rows are salvaged at the next start, as
 * stdin cannot be read again. A batch stops taking
 * input when it is `--rotate-minutes` old or has read `--batch-input-mb`, and
 * is committed once its running tasks are done; within it each table's file
 * rotates at `--rotate-mb` uncompressed.
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { WarehouseAppender } from '../warehouse/append.js';
import { openWarehouse } from '../warehouse/open.js';
import { createTransformPool, defaultThreads, type TransformPool } from '../pool/pool.js';
import { ChunkFeed, CHUNK_BYTES } from '../pool/chunk-feed.js';
import { LineRunPacker } from '../pool/line-runs.js';
import { filesPerTask, spreadInputs, urlInputs } from '../pool/spread.js';
import { sharedGeoIpFiles } from '../pool/shared-geoip.js';
import { collectYoungGeneration } from '../pool/young-gc.js';
import type { TaskResult, TransformTask } from '../pool/thread.js';
import { openStore } from '../store/location.js';
import type { ObjectStore } from '../store/objectstore.js';
import { readConfigText } from '../transform/config-source.js';
import { formatCounts } from '../transform/outcomes.js';
import { prepareTransform, type PreparedTransform, type TransformSettings } from '../transform/setup.js';
import { Batch, MANIFEST_KIND, type BatchManifest } from './batch.js';
import { addDays, Checkpoint, datePrefixOf, dateRange, utcDate } from './checkpoint.js';
import { compareFound, InputFollower, type FoundFile } from './follow-s3.js';
import { StdinLines, type StdinLineSink } from './stdin-lines.js';
import { ContinuousLoader, defaultLoadEverySeconds } from './loader.js';
import { KinesisQueue } from './kinesis-queue.js';
import type { KinesisPublishOptions } from '../output/kinesis-publish.js';
import { successKey } from '../partition-task.js';
import { ProcessMetrics, startMetricsServer, type MetricsServer } from './metrics.js';
import { salvageSpool } from './salvage-spool.js';
import { redactText, redactUrl } from '../redact.js';

export interface ProcessOptions {
  /** `s3://bucket/prefix`, a directory, or `-`/absent for stdin. */
  input?: string;
  output: string;
  stateDir: string;
  config: string;
  geoipCity?: string;
  geoipAsn?: string;
  rotateMb?: number;
  rotateMinutes?: number;
  batchInputMb?: number;
  pollSeconds?: number;
  /** Full re-listing of the tracked date prefixes every this many polls. */
  sweepEvery?: number;
  lookbackDays?: number;
  /** First date prefix (YYYYMMDD) to read on a fresh state dir; default today (UTC). */
  startDate?: string;
  reloadSeconds?: number;
  shutdownTimeoutSeconds?: number;
  metricsPort?: number;
  metricsToken?: string;
  /** Warehouse to load each committed batch into: postgres://, redshift:// (or a Redshift host), pglite://DIR. */
  rsurl?: string;
  schema?: string;
  /** Redshift COPY: IAM role (default env REDSHIFT_IAM_ROLE, else the AWS default credential chain). */
  iamRole?: string;
  /** Shortest time between two loads (default: 300 on Redshift, 0 elsewhere; loader.ts). */
  loadEverySeconds?: number;
  /** Create missing tables before loading (PostgreSQL, PGlite; default true). */
  createTables?: boolean;
  /** Publish each committed batch's rows to these Kinesis streams. */
  kinesis?: KinesisPublishOptions;
  /** Transform threads, for file input and stdin (default: one per core). */
  threads?: number;
  /** Stdin stream for stdin mode (default process.stdin). */
  stdin?: Readable;
  log?: (level: 'info' | 'warn' | 'error', msg: string) => void;
  /** Called when shutdown overran its timeout (default: exit the process with code 70). */
  onShutdownTimeout?: () => void;
}

export const DEFAULTS = {
  rotateMb: 100,
  rotateMinutes: 10,
  batchInputMb: 1024,
  pollSeconds: 10,
  sweepEvery: 12,
  lookbackDays: 1,
  reloadSeconds: 300,
  shutdownTimeoutSeconds: 30,
} as const;

/** Most bytes of stdin taken in one turn of the loop (a chunk, chunk-feed.ts; usually one pipe read). */
const STDIN_TURN_BYTES = CHUNK_BYTES;
/**
 * How long lines packed for the threads wait for more stdin before they go as a
 * smaller chunk. A pipe hands over 64 KiB at a time, and sent at every empty
 * read the chunks were that small: each cost its thread a message round trip,
 * and 2 threads ran no faster than 1 (276 MB of edge lines from zcat: 4.5-4.8 s
 * either way, 156% CPU). A producer that keeps up refills the pipe within
 * microseconds and wakes the loop at once; only a trickle waits this long.
 */
const STDIN_FLUSH_MS = 50;
/** Stdin bytes between two young-generation collections of the main thread (see young-gc.ts). */
const STDIN_COLLECT_BYTES = 4 * 1024 * 1024;
/**
 * Compressed input per pool task when a backlog allows it: large tasks make few
 * output files, but a graceful stop waits for the running ones (~5 s at 32 MiB).
 */
const TASK_INPUT_BYTES = 32 * 1024 * 1024;
const TASK_MAX_FILES = 256;

function defaultLog(level: string, msg: string): void {
  process.stderr.write(`${new Date().toISOString()} ${level} ${msg}\n`);
}

export class ContinuousProcessor {
  readonly metrics = new ProcessMetrics();
  private readonly log: NonNullable<ProcessOptions['log']>;
  private readonly stdinMode: boolean;
  private readonly inputLocation: string;
  private readonly rotateBytes: number;
  private readonly rotateMs: number;
  private readonly batchBytes: number;
  private readonly pollMs: number;
  private readonly reloadMs: number;
  private readonly lookbackDays: number;
  private readonly threads: number;
  private pool: TransformPool | null = null;
  private output!: ObjectStore;
  private checkpoint!: Checkpoint;
  private follower: InputFollower | null = null;
  private loader: ContinuousLoader | null = null;
  private kinesis: KinesisQueue | null = null;
  private metricsServer: MetricsServer | null = null;
  private settings!: TransformSettings;
  private prepared!: PreparedTransform;
  private batch: Batch | null = null;
  /** File mode: the previous batch, closed to input, waiting for its last tasks to commit. */
  private closing: Batch | null = null;
  private stopping = false;
  private reloadRequested = false;
  private nextReload = 0;
  private wakeUp: (() => void) | null = null;
  private woken = false;
  private saveChain: Promise<void> = Promise.resolve();
  private newestCommittedDate: string | null = null;
  // File mode
  private readonly pending: FoundFile[] = [];
  /** Keys queued, in the open batch, or committed since start: never queued twice. */
  private readonly queued = new Set<string>();
  /** Input keys whose task failed, with the number of failures (cleared once committed). */
  private readonly failedReads = new Map<string, number>();
  private nextPoll = 0;
  // Stdin mode
  private stdinEnded = false;
  private stdinCollectAt = STDIN_COLLECT_BYTES;
  /** When stdin last had bytes to read (see STDIN_FLUSH_MS). */
  private stdinReadAtMs = 0;
  private stdinReadBytes = 0;
  private readonly stdinLines = new StdinLines();
  /** The pool tasks transforming the open stdin batch's lines, and the packer of their chunks. */
  private stdinFeed: { batch: Batch; feed: ChunkFeed; packer: LineRunPacker } | null = null;
  private lockPath = '';

  constructor(private readonly opts: ProcessOptions) {
    const log = opts.log ?? defaultLog;
    // Every line redacted: messages quote the config URL, the warehouse URL and its errors.
    this.log = (level, msg) => log(level, redactText(msg));
    this.stdinMode = opts.input === undefined || opts.input === '-' || opts.input === '';
    this.inputLocation = this.stdinMode ? '-' : (opts.input as string);
    this.rotateBytes = Math.round((opts.rotateMb ?? DEFAULTS.rotateMb) * 1024 * 1024);
    this.rotateMs = (opts.rotateMinutes ?? DEFAULTS.rotateMinutes) * 60_000;
    this.batchBytes = (opts.batchInputMb ?? DEFAULTS.batchInputMb) * 1024 * 1024;
    this.pollMs = (opts.pollSeconds ?? DEFAULTS.pollSeconds) * 1000;
    this.reloadMs = (opts.reloadSeconds ?? DEFAULTS.reloadSeconds) * 1000;
    this.lookbackDays = opts.lookbackDays ?? DEFAULTS.lookbackDays;
    this.threads = opts.threads ?? defaultThreads();
    if (!Number.isInteger(this.threads) || this.threads < 1)
      throw new Error(`--threads must be a positive integer, got ${this.threads}`);
    for (const [name, v] of [
      ['rotate-mb', this.rotateBytes],
      ['rotate-minutes', this.rotateMs],
      ['batch-input-mb', this.batchBytes],
      ['poll-seconds', this.pollMs],
      ['reload-seconds', this.reloadMs],
    ] as const) {
      if (!(v > 0) || !Number.isFinite(v)) throw new Error(`--${name} must be a positive number`);
    }
    if (!Number.isInteger(this.lookbackDays) || this.lookbackDays < 0)
      throw new Error(`--lookback-days must be a non-negative integer, got ${this.lookbackDays}`);
    if (opts.loadEverySeconds !== undefined && !(opts.loadEverySeconds >= 0 && Number.isFinite(opts.loadEverySeconds)))
      throw new Error(`--load-every must be 0 or more seconds, got ${opts.loadEverySeconds}`);
    if (opts.startDate !== undefined && !/^\d{8}$/.test(opts.startDate))
      throw new Error(`--start-date must be YYYYMMDD, got ${opts.startDate}`);
  }

  /** Asks the processor to stop: it finishes the input in hand, commits, saves, and `run` resolves. */
  requestStop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.log('info', 'stopping: finishing the current input, committing and saving the checkpoint');
    const ms = (this.opts.shutdownTimeoutSeconds ?? DEFAULTS.shutdownTimeoutSeconds) * 1000;
    setTimeout(() => {
      this.log('error', `shutdown did not finish within ${ms / 1000} s; exiting without committing the open batch`);
      (this.opts.onShutdownTimeout ?? (() => process.exit(70)))();
    }, ms).unref();
    this.wake();
  }

  requestReload(): void {
    this.reloadRequested = true;
    this.wake();
  }

  /** Runs until stopped (or stdin ends). Resolves with the exit code. */
  async run(): Promise<number> {
    await mkdir(this.opts.stateDir, { recursive: true, mode: 0o700 });
    await this.lock();
    try {
      return await this.runLocked();
    } finally {
      await rm(this.lockPath, { force: true });
    }
  }

  private async runLocked(): Promise<number> {
    // A bad config at start is fatal; on reload it is only rejected.
    const configText = await readConfigText(this.opts.config);
    this.settings = {
      configText,
      configSource: redactUrl(this.opts.config),
      geoipCity: this.opts.geoipCity,
      geoipAsn: this.opts.geoipAsn,
      // Kinesis records carry the edge event's uuid, read from the row files' sidecars.
      ...(this.opts.kinesis ? { rowUuids: true } : {}),
    };
    this.prepared = await this.prepare(this.settings);
    this.nextReload = Date.now() + this.reloadMs;
    this.output = openStore(this.opts.output);

    for (const r of await salvageSpool(this.opts.stateDir, this.output, this.inputLocation, (m) => this.log('warn', m)))
      this.log('warn', `salvaged uncommitted ${r.mode} batch ${r.batch}: ${r.files.length} file(s)`);

    const today = utcDate(Date.now());
    this.checkpoint = await Checkpoint.load(this.opts.stateDir, this.inputLocation, this.opts.startDate ?? today);
    await this.reconcile();

    if (this.opts.rsurl) {
      const warehouse = await openWarehouse(this.opts.rsurl, {
        iamRole: this.opts.iamRole,
        poolSize: 2,
        log: (m) => this.log('info', m),
      });
      const appender = await WarehouseAppender.open(warehouse, {
        schema: this.opts.schema,
        createTables: this.opts.createTables ?? true,
        log: (m) => this.log('info', m),
      }).catch(async (err: unknown) => {
        await warehouse.close().catch(() => undefined);
        throw err;
      });
      const loadEverySeconds = this.opts.loadEverySeconds ?? defaultLoadEverySeconds(warehouse.kind);
      const loader = new ContinuousLoader(
        appender,
        this.output,
        this.loaderHooks(),
        { loadEveryMs: loadEverySeconds * 1000, retryMs: Math.max(1000, this.pollMs) },
        () => this.prepared.schemas,
      );
      this.loader = loader;
      this.metrics.loadWaitingSince = () => loader.oldestWaitingSince();
      this.metrics.loadPending = () => loader.pending();
      this.log(
        'info',
        `loading committed batches into ${warehouse.kind} ${redactUrl(this.opts.rsurl)} (schema ${appender.schema}, ` +
          `${loadEverySeconds > 0 ? `one transaction per ${loadEverySeconds} s` : 'as each batch commits'})`,
      );
      for (const key of this.checkpoint.data.unloaded) loader.enqueue(key);
    }
    if (this.opts.kinesis) {
      this.kinesis = await KinesisQueue.open({
        options: this.opts.kinesis,
        store: this.output,
        stateDir: this.opts.stateDir,
        schemas: () => this.prepared.schemas,
        log: this.log,
        retryMs: Math.max(1000, this.pollMs),
      });
    }
    if (this.opts.metricsPort !== undefined) {
      this.metricsServer = await startMetricsServer(this.metrics, {
        port: this.opts.metricsPort,
        token: this.opts.metricsToken,
        staleMs: Math.max(60_000, 3 * this.pollMs),
      });
      this.log('info', `metrics on ${this.metricsServer.url}/metrics`);
    }
    this.log(
      'info',
      `following ${this.stdinMode ? 'stdin' : this.inputLocation} -> ${this.output.url} (state ${this.opts.stateDir}, ${this.checkpoint.committedCount()} files committed, floor ${this.checkpoint.data.floor})`,
    );

    let code = 0;
    try {
      if (this.stdinMode) await this.stdinLoop();
      else await this.fileLoop();
    } catch (err) {
      // One line, as the command line reports failures; the stack only with SPADE_DEBUG=1.
      this.log('error', `processor failed: ${err instanceof Error ? err.message : String(err)}`);
      if (process.env.SPADE_DEBUG === '1' && err instanceof Error && err.stack) this.log('error', err.stack);
      code = 1;
    }
    // Shutdown: commit what is in hand, let a running append finish, save.
    if (this.batch !== null) {
      try {
        if (!(await this.commitBatch(this.batch))) code = 1;
      } catch (err) {
        this.log('error', (err as Error).message);
        code = 1;
      }
    }
    await this.loader?.stop();
    await this.kinesis?.stop();
    await this.save();
    await this.metricsServer?.close();
    this.log(
      'info',
      this.stdinMode
        ? `stopped (${this.stdinLines.lineNo} stdin lines read, ${this.stdinReadBytes} bytes)`
        : `stopped (${this.checkpoint.committedCount()} input files committed in the lookback window)`,
    );
    return code;
  }

  // ---- file input ---------------------------------------------------------

  private async fileLoop(): Promise<void> {
    this.follower = new InputFollower({ input: this.inputLocation, sweepEvery: this.opts.sweepEvery });
    this.pool = createTransformPool(this.threads);
    try {
      while (!this.stopping) {
        this.metrics.lastLoopMs = Date.now();
        await this.maybeReload();
        if (Date.now() >= this.nextPoll) await this.poll();
        // A closed batch takes no more input and commits once its last task is done,
        // while free threads already work for the next batch (no idle tail per batch).
        const closing = this.closing;
        if (closing !== null && closing.runningTasks === 0) {
          this.closing = null;
          await this.commitBatch(closing);
          continue;
        }
        const batch = this.batch;
        if (batch !== null && closing === null && this.batchDue()) {
          this.closing = batch;
          this.batch = null;
          continue;
        }
        const running = (batch?.runningTasks ?? 0) + (closing?.runningTasks ?? 0);
        const canTakeInput = batch === null || !this.batchDue();
        if (this.pending.length > 0 && running < this.threads && canTakeInput) {
          await this.dispatch(this.threads - running);
          continue;
        }
        const untilBatch = batch ? this.rotateMs - batch.ageMs() : Infinity;
        await this.sleep(Math.min(this.nextPoll - Date.now(), untilBatch, this.nextReload - Date.now()));
      }
      // Stopping: the tasks in flight finish; the closed batch commits here, the open one in runLocked.
      if (this.closing !== null) {
        const closing = this.closing;
        this.closing = null;
        await closing.settle();
        await this.commitBatch(closing);
      }
      await this.batch?.settle();
    } finally {
      await this.pool.close();
    }
  }

  /**
   * Hands pending files to the pool as one task per free thread. With a backlog
   * each task gets up to TASK_INPUT_BYTES of input; otherwise the files are
   * spread evenly over the free threads. A few files found while every thread
   * is free (one large file, typically) are read here and spread over all the
   * threads in chunks instead, so that one file uses the whole machine (see
   * filesPerTask).
   */
  private async dispatch(freeThreads: number): Promise<void> {
    const batch = (this.batch ??= await this.openBatch('files'));
    const store = (this.follower as InputFollower).store;
    const output = (): TransformTask['output'] => ({
      location: this.opts.output,
      prefix: batch.runtag,
      fileTag: batch.taskTag(),
      rotateBytes: this.rotateBytes,
    });
    const track = (group: FoundFile[], task: Promise<TaskResult>, threads: number): void =>
      batch.track(
        group.map((f) => f.key),
        task.then((res) => {
          for (const e of res.inputErrors)
            this.log(
              'warn',
              `${e.source} is damaged; kept its complete lines (${e.bytes} bytes, ${e.lines} lines read): ${e.error}`,
            );
          return res;
        }),
        () => this.wake(),
        (keys, reason) => this.taskFailed(keys, reason),
        threads,
      );
    const spread =
      freeThreads === this.threads &&
      !filesPerTask(this.pending.length, this.threads) &&
      !this.pending.some((f) => this.failedReads.has(f.key));
    if (spread) {
      const group = this.pending.splice(0);
      const inputs = urlInputs(group.map((f) => store.urlOf(f.key)));
      const pool = this.pool as TransformPool;
      track(
        group,
        spreadInputs(pool, inputs, () => ({ settings: this.settings, output: output() })),
        this.threads,
      );
      return;
    }
    const backlog = this.pending.reduce((n, f) => n + f.size, 0);
    const perTask = Math.max(1, Math.min(TASK_INPUT_BYTES, Math.ceil(backlog / freeThreads)));
    for (let t = 0; t < freeThreads && this.pending.length > 0; t++) {
      const group: FoundFile[] = [];
      let bytes = 0;
      while (this.pending.length > 0 && group.length < TASK_MAX_FILES && (group.length === 0 || bytes < perTask)) {
        // A file that failed before goes alone, so it cannot hold other files back again.
        const suspect = this.failedReads.has((this.pending[0] as FoundFile).key);
        if (suspect && group.length > 0) break;
        const f = this.pending.shift() as FoundFile;
        group.push(f);
        bytes += f.size;
        if (suspect) break;
      }
      const task = (this.pool as TransformPool).run({
        settings: this.settings,
        input: { kind: 'urls', urls: group.map((f) => store.urlOf(f.key)) },
        output: output(),
      });
      track(group, task, 1);
    }
  }

  /**
   * A task failed (an input could not be read, not mere gzip damage): the batch
   * goes on without it and its inputs are found again by the next full listing.
   * Files that failed are retried one per task, each failure logged and counted.
   */
  private taskFailed(keys: string[], reason: string): void {
    this.metrics.taskFailures++;
    for (const k of keys) {
      this.failedReads.set(k, (this.failedReads.get(k) ?? 0) + 1);
      this.queued.delete(k);
    }
    const tries = keys.length === 1 ? ` (failure ${this.failedReads.get(keys[0] as string)} for it)` : '';
    this.log('error', `transforming ${keys.length} input file(s) failed, they will be read again${tries}: ${reason}`);
    this.follower?.forceSweep();
    this.nextPoll = Math.min(this.nextPoll, Date.now() + this.pollMs);
    this.wake();
  }

  private async poll(): Promise<void> {
    this.nextPoll = Date.now() + this.pollMs;
    let found: FoundFile[];
    try {
      found = await (this.follower as InputFollower).poll(
        this.checkpoint.data.floor,
        (k) => this.queued.has(k) || this.checkpoint.isCommitted(k),
      );
    } catch (err) {
      this.log('warn', `listing ${this.inputLocation} failed (retrying next poll): ${(err as Error).message}`);
      return;
    }
    for (const f of found) {
      this.queued.add(f.key);
      this.pending.push(f);
      if (f.writtenSec > this.metrics.newestSeenSec) this.metrics.newestSeenSec = f.writtenSec;
      if (this.metrics.oldestSeenSec === 0 || f.writtenSec < this.metrics.oldestSeenSec)
        this.metrics.oldestSeenSec = f.writtenSec;
    }
    if (found.length > 0) this.pending.sort(compareFound);
    this.metrics.pendingFiles =
      this.pending.length + (this.batch?.inputs.length ?? 0) + (this.closing?.inputs.length ?? 0);
  }

  private batchDue(): boolean {
    const b = this.batch as Batch;
    return b.ageMs() >= this.rotateMs || b.inputBytes >= this.batchBytes;
  }

  /** Forgets a batch; its inputs (and `extra`) are found again by the next (full) listing. */
  private failBatch(batch: Batch | null, reason: string, extra: string[] = []): void {
    if (batch !== null && this.batch === batch) this.batch = null;
    this.metrics.batchesAborted++;
    const keys = [...(batch?.inputs ?? []), ...extra];
    this.log('error', `batch ${batch?.id ?? '?'} dropped (${keys.length} input(s) will be read again): ${reason}`);
    for (const k of keys) this.queued.delete(k);
    this.follower?.forceSweep();
    this.nextPoll = Date.now() + this.pollMs;
  }

  private async openBatch(mode: 'files' | 'stdin'): Promise<Batch> {
    return Batch.open({
      store: this.output,
      stateDir: this.opts.stateDir,
      mode,
      rotateBytes: this.rotateBytes,
      processorOptions: this.prepared.processorOptions,
      schemas: this.prepared.schemas,
      rowUuids: this.settings.rowUuids,
    });
  }

  /** Commits a batch (and forgets it); false when that failed (its inputs will be read again). */
  private async commitBatch(batch: Batch): Promise<boolean> {
    if (this.batch === batch) this.batch = null;
    if (batch.isEmpty()) {
      await batch.abort();
      return true;
    }
    let committed: { manifest: BatchManifest; key: string };
    // Recorded before the manifest exists, so a crash right after the commit cannot skip publishing it.
    const manifestKey = successKey(batch.runtag, batch.id);
    await this.kinesis?.intend(manifestKey);
    try {
      committed = await batch.commit(this.inputLocation);
    } catch (err) {
      await this.kinesis?.forget(manifestKey);
      // Stdin cannot be read again: its batch (spool and uploaded files) is left to the next start's salvage.
      if (this.stdinMode) throw this.abandonStdinBatch(batch, `commit failed: ${(err as Error).message}`);
      this.failBatch(batch, `commit failed: ${(err as Error).message}`);
      await batch.abort();
      return false;
    }
    const { manifest, key } = committed;
    this.checkpoint.addBatch(batch.id, batch.runtag, batch.inputs, this.loader ? key : null);
    this.afterCommit(manifest);
    await this.save();
    this.loader?.enqueue(key);
    this.kinesis?.committed(key);
    this.log(
      'info',
      `committed batch ${batch.id}: ${batch.inputs.length} input file(s), ${manifest.files.length} output file(s), ${formatCounts(manifest.counts)}`,
    );
    return true;
  }

  private afterCommit(manifest: BatchManifest): void {
    const m = this.metrics;
    m.batchesCommitted++;
    m.inputFilesCommitted += manifest.inputs.length;
    m.damagedInputs += manifest.inputErrors.length;
    m.addCounts(manifest.counts);
    for (const f of manifest.files) m.filesUploaded[f.kind]++;
    for (const key of manifest.inputs) {
      this.failedReads.delete(key);
      const sec = /\/(\d{9,11})\.[^/]*$/.exec(key);
      if (sec && Number(sec[1]) > m.newestCommittedSec) m.newestCommittedSec = Number(sec[1]);
      const date = datePrefixOf(key);
      if (date !== null && (this.newestCommittedDate === null || date > this.newestCommittedDate))
        this.newestCommittedDate = date;
    }
    if (this.stdinMode) m.newestCommittedSec = m.newestSeenSec;
    m.pendingFiles = this.pending.length;
    this.advanceFloor();
  }

  /** Tracks `lookbackDays` date prefixes before the newest committed one, never past a key still to do. */
  private advanceFloor(): void {
    if (this.newestCommittedDate === null) return;
    let floor = addDays(this.newestCommittedDate, -this.lookbackDays);
    // Never past a key still to do: pending, or taken by a batch not committed yet (its
    // tasks may fail, and the key must then be found again under its date prefix).
    const open = [this.batch, this.closing].flatMap((b) => (b === null ? [] : [...b.uncommittedKeys()]));
    for (const key of [...this.pending.map((f) => f.key), ...open]) {
      const d = datePrefixOf(key);
      if (d !== null && d < floor) floor = d;
    }
    this.checkpoint.advanceFloor(floor);
    for (const k of this.queued) {
      const d = datePrefixOf(k);
      if (d !== null && d < this.checkpoint.data.floor) this.queued.delete(k);
    }
  }

  /**
   * Adds batches whose manifest was written but not recorded in the checkpoint
   * (a kill between the two) and so keeps their inputs from being read again.
   */
  private async reconcile(): Promise<void> {
    const cp = this.checkpoint;
    const from = addDays(cp.data.lastBatchDate ?? cp.data.floor, -1);
    let added = 0;
    for (const date of dateRange(from, addDays(utcDate(Date.now()), 1))) {
      for await (const obj of this.output.list(`${date}/_success/`)) {
        const id = /([^/]+)\.json$/.exec(obj.key)?.[1];
        if (id === undefined || cp.knowsBatch(id)) continue;
        let manifest: BatchManifest;
        try {
          manifest = JSON.parse((await this.output.readBytes(obj.key)).toString('utf8')) as BatchManifest;
        } catch (err) {
          this.log('warn', `reconcile: cannot read ${this.output.urlOf(obj.key)}: ${(err as Error).message}`);
          continue;
        }
        if (manifest.kind !== MANIFEST_KIND || manifest.input !== this.inputLocation) continue;
        cp.addBatch(id, manifest.runtag, manifest.inputs ?? [], this.opts.rsurl ? obj.key : null);
        added++;
      }
    }
    if (added > 0) {
      this.log('warn', `reconcile: ${added} committed batch(es) were missing from the checkpoint; recorded now`);
      await this.save();
    }
  }

  // ---- stdin input --------------------------------------------------------

  /**
   * Stdin mode: each turn of the loop reads what stdin has ready, cuts it into
   * lines here (stdin-lines.ts: globs decoded on this thread) and spreads them
   * over the pool's threads in chunks (chunk-feed.ts), waiting while every
   * thread is busy (with one thread, transforms them here: transformStdinHere).
   * Stdin is read only when the loop asks (paused mode), so while the threads
   * are busy it stays in the pipe and holds the producer back, and each piece
   * read is done with soon, before V8 moves it to the old generation (which
   * a queue of pieces waiting for the threads made grow with the input).
   * Between turns a due batch is committed and a changed config takes effect.
   */
  private async stdinLoop(): Promise<void> {
    const stdin = this.opts.stdin ?? process.stdin;
    const onReadable = (): void => this.wake();
    const onEnd = (): void => {
      this.stdinEnded = true;
      this.wake();
    };
    const onError = (err: Error): void => {
      this.log('error', `reading stdin failed: ${err.message}`);
      onEnd();
    };
    stdin.on('readable', onReadable);
    stdin.on('end', onEnd);
    stdin.on('error', onError);
    // One thread transforms here (see transformStdinHere): no pool.
    this.pool = this.threads === 1 ? null : createTransformPool(this.threads);
    try {
      while (!this.stopping) {
        this.metrics.lastLoopMs = Date.now();
        await this.maybeReload();
        if (this.batch !== null && this.batchDue()) {
          await this.endStdinFeed();
          await this.commitBatch(this.batch);
          continue;
        }
        const pieces = readStdin(stdin);
        if (pieces.length > 0) {
          this.stdinReadAtMs = Date.now();
          await this.transformStdin(pieces);
          continue;
        }
        if (this.stdinEnded) break;
        // Nothing to read now: the lines packed so far wait briefly for more, then go to the threads.
        const waited = Date.now() - this.stdinReadAtMs;
        if ((this.stdinFeed?.packer.pendingBytes ?? 0) > 0 && waited < STDIN_FLUSH_MS) {
          await this.sleep(STDIN_FLUSH_MS - waited);
          continue;
        }
        if (await this.flushStdin()) continue;
        const untilBatch = this.batch ? this.rotateMs - this.batch.ageMs() : Infinity;
        await this.sleep(Math.min(untilBatch, this.nextReload - Date.now(), 60_000));
      }
      // Stopping, or stdin ended: what was read from the pipe is in memory only; it goes into the last batch.
      await this.transformStdin(readStdin(stdin), this.stdinEnded);
      if (!this.stdinEnded && this.stdinLines.pendingBytes > 0) {
        this.log('warn', `stopping in the middle of a stdin line: ${this.stdinLines.pendingBytes} bytes dropped`);
      }
      await this.endStdinFeed();
    } finally {
      stdin.off('readable', onReadable);
      stdin.off('end', onEnd);
      stdin.off('error', onError);
      stdin.pause();
      // Still open only after a failure: lines in hand may be lost, so the batch must not be committed.
      if (this.stdinFeed !== null) {
        const { batch, feed } = this.stdinFeed;
        feed.fail(new Error('the processor stopped on an error'));
        await this.endStdinFeed().catch(() => undefined);
        if (this.batch === batch) this.abandonStdinBatch(batch, 'the processor stopped on an error');
      }
      await this.pool?.close();
    }
  }

  /**
   * Transforms the complete lines of `pieces` (and, at the end of stdin, its
   * last line without LF) into the open batch, spread over the pool's threads.
   * Resolves once the threads took the last of them. Stdin cannot be read
   * again: when a thread or the output fails, the batch is left to the next
   * start's salvage and this throws.
   */
  private async transformStdin(pieces: Buffer[], ended = false): Promise<void> {
    if (pieces.length === 0 && !(ended && this.stdinLines.pendingBytes > 0)) return;
    const batch = (this.batch ??= await this.openBatch('stdin'));
    const packer = this.threads === 1 ? null : (this.stdinFeed ??= this.openStdinFeed(batch)).packer;
    const sink: StdinLineSink = {
      lines: (source, firstLineNo, lines, data) =>
        packer === null
          ? this.transformStdinHere(batch, source, firstLineNo, data)
          : packer.add(source, firstLineNo, lines, data),
      // Quarantined by this thread's writers, into the same batch.
      badLine: (lineNo, reason, text) => batch.processor.badLine('stdin', lineNo, reason, text),
      duplicateGlob: () => this.metrics.globsDuplicate++,
    };
    const linesBefore = this.stdinLines.lineNo;
    let bytes = 0;
    try {
      for (const piece of pieces) {
        await this.stdinLines.push(piece, sink);
        bytes += piece.length;
      }
      if (ended) await this.stdinLines.end(sink);
      if (batch.writers.needsDrain()) await batch.writers.drain();
    } catch (err) {
      throw await this.stdinFailed(batch, err);
    }
    batch.lines += this.stdinLines.lineNo - linesBefore;
    // The bytes read from stdin (the threads count those of their chunks, where globs are inflated).
    batch.inputBytes += bytes;
    batch.processor.counts.inputBytes += bytes;
    // The pieces read are dead now, and a thread that only cuts lines allocates too little for V8 to
    // collect them soon (one that transforms them does: collecting on top of that costs time).
    this.stdinReadBytes += bytes;
    if (this.threads > 1 && this.stdinReadBytes >= this.stdinCollectAt) {
      this.stdinCollectAt = this.stdinReadBytes + STDIN_COLLECT_BYTES;
      collectYoungGeneration();
    }
    this.metrics.newestSeenSec = Math.floor(Date.now() / 1000);
    if (this.metrics.oldestSeenSec === 0) this.metrics.oldestSeenSec = this.metrics.newestSeenSec;
  }

  /**
   * With one thread, stdin lines are transformed here, on the main thread,
   * rather than by a pool of one: measured on 128 MB of generated edge lines
   * on a loaded 2-core machine, 3 runs each, here 2.2-2.4 s (2.4-2.5 s of CPU),
   * peak RSS 131-134 MB; a pool of one 2.4-3.3 s (2.7-3.7 s of CPU), 206-221
   * MB (a second V8 heap, the chunk buffers, the cutting and copying on top of
   * the transform). The lines are those the threads would get (stdin-lines.ts)
   * and are decoded as their reader does (lines.ts): split at LF, one trailing CR
   * dropped (an LF never falls inside a UTF-8 character, so decoding line by
   * line or in pieces gives the same text; lines over the limit were taken out
   * already). So both ways make the same output. Decoded line by line, not as
   * one string split (whose slices keep it alive): 25 MB less peak RSS.
   */
  private async transformStdinHere(batch: Batch, source: string, firstLineNo: number, data: Buffer): Promise<void> {
    const lines: string[] = [];
    for (let at = 0; at < data.length;) {
      const lf = data.indexOf(0x0a, at);
      lines.push(data.toString('utf8', at, lf > at && data[lf - 1] === 0x0d ? lf - 1 : lf));
      at = lf + 1;
    }
    const waiting = batch.processor.processLines(lines, firstLineNo, source);
    if (waiting) await waiting;
    if (batch.writers.needsDrain()) await batch.writers.drain();
  }

  /** One chunks task per pool thread, writing into `batch` (and spooling under its spool dir, for salvage). */
  private openStdinFeed(batch: Batch): NonNullable<ContinuousProcessor['stdinFeed']> {
    const feed = new ChunkFeed(this.pool as TransformPool, () => ({
      settings: this.settings,
      output: {
        location: this.opts.output,
        prefix: batch.runtag,
        fileTag: batch.taskTag(),
        rotateBytes: this.rotateBytes,
        spoolDir: batch.spoolDir,
      },
    }));
    return { batch, feed, packer: new LineRunPacker(feed) };
  }

  /**
   * Ends the threads' tasks of the open stdin batch (before it commits, or
   * when the config changed): their files and counts join the batch. Throws,
   * leaving the batch to salvage, when one of them failed.
   */
  private async endStdinFeed(): Promise<void> {
    const open = this.stdinFeed;
    if (open === null) return;
    const { batch, feed, packer } = open;
    // A flush fails only once a task failed, which finish() reports.
    await packer.flush().catch((err: unknown) => feed.fail(err));
    let failure: string | null = null;
    batch.track(
      [],
      feed.finish().then((res) => ({ ...res, counts: { ...res.counts, inputBytes: 0 } })),
      () => undefined,
      (_keys, reason) => (failure = reason),
      this.threads,
    );
    await batch.settle();
    this.stdinFeed = null;
    if (failure !== null) throw this.abandonStdinBatch(batch, failure);
  }

  /**
   * Sends the lines packed so far to the threads, if any: they are not held
   * back for a fuller chunk once nothing more is ready to read, so a trickle
   * of input reaches the threads as it comes. False when there were none.
   */
  private async flushStdin(): Promise<boolean> {
    const open = this.stdinFeed;
    if (open === null || open.packer.pendingBytes === 0) return false;
    try {
      await open.packer.flush();
    } catch (err) {
      throw await this.stdinFailed(open.batch, err);
    }
    return true;
  }

  /**
   * A thread's failure or this thread's (the quarantine's output) while stdin
   * lines were in hand: they are lost either way, so the batch is given up.
   * Returns the error that stops the processor.
   */
  private async stdinFailed(batch: Batch, err: unknown): Promise<unknown> {
    this.stdinFeed?.feed.fail(err);
    const threadsFailed = await this.endStdinFeed().then(
      () => null,
      (e: unknown) => e,
    );
    return threadsFailed ?? this.abandonStdinBatch(batch, err);
  }

  /**
   * Gives up a stdin batch whose output failed: its lines cannot be read again,
   * so it is neither committed nor removed; the next start salvages its spool
   * and the files its threads uploaded. Returns the error that stops the processor.
   */
  private abandonStdinBatch(batch: Batch, reason: unknown): Error {
    if (this.batch === batch) this.batch = null;
    this.metrics.batchesAborted++;
    const why = reason instanceof Error ? reason.message : String(reason);
    return new Error(`output of stdin batch ${batch.id} failed (left for salvage at the next start): ${why}`, {
      cause: reason,
    });
  }

  // ---- shared ---------------------------------------------------------------

  private async maybeReload(): Promise<void> {
    if (!this.reloadRequested && Date.now() < this.nextReload) return;
    const why = this.reloadRequested ? 'SIGHUP' : 'timer';
    this.reloadRequested = false;
    this.nextReload = Date.now() + this.reloadMs;
    let prepared: PreparedTransform;
    let settings: TransformSettings;
    try {
      const text = await readConfigText(this.opts.config);
      if (text === this.settings.configText) {
        this.metrics.reloads.unchanged++;
        return;
      }
      settings = { ...this.settings, configText: text };
      prepared = await this.prepare(settings);
    } catch (err) {
      this.metrics.reloads.rejected++;
      this.log('error', `config reload (${why}) rejected, keeping the current config: ${(err as Error).message}`);
      return;
    }
    // Stdin's pool tasks were started with the old config: the next lines go to new ones.
    await this.endStdinFeed();
    this.settings = settings;
    this.prepared = prepared;
    this.batch?.switchProcessor(prepared.processorOptions, prepared.schemas);
    this.metrics.reloads.ok++;
    this.log('info', `config reloaded (${why}): ${prepared.schemas.length} schemas from ${this.opts.config}`);
  }

  /** This thread's transform, with the GeoIP databases the pool's threads share (one copy in the process). */
  private async prepare(settings: TransformSettings): Promise<PreparedTransform> {
    return prepareTransform(settings, await sharedGeoIpFiles(settings));
  }

  private loaderHooks(): ConstructorParameters<typeof ContinuousLoader>[2] {
    return {
      loaded: async (key, rows, already) => {
        this.checkpoint.markLoaded(key);
        this.metrics.batchesLoaded++;
        this.log('info', `${already ? 'already loaded' : `loaded ${rows} rows of`} ${this.output.urlOf(key)}`);
        await this.save();
      },
      failed: (keys, err, attempt, retryInMs) => {
        this.metrics.loadFailures++;
        const what =
          keys.length === 1
            ? this.output.urlOf(keys[0] as string)
            : `${keys.length} batches from ${this.output.urlOf(keys[0] as string)}`;
        this.log(
          'error',
          `loading ${what} failed (will retry in ${Math.round(retryInMs / 1000)} s, failure ${attempt} in a row; later batches wait): ${err.message}`,
        );
      },
    };
  }

  /** Saves run one after another (the main loop and the loader both save). */
  private save(): Promise<void> {
    const next = this.saveChain.then(() => this.checkpoint.save());
    this.saveChain = next.catch((err: unknown) =>
      this.log('error', `checkpoint save failed: ${(err as Error).message}`),
    );
    return next;
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping || this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    const wait = Math.max(10, Math.min(ms, 60_000));
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeUp = null;
        resolve();
      };
      const timer = setTimeout(done, wait);
      this.wakeUp = done;
    });
  }

  /** Ends the loop's sleep; one that comes while the loop is awake ends its next sleep at once (not lost). */
  private wake(): void {
    if (this.wakeUp !== null) this.wakeUp();
    else this.woken = true;
  }

  /** One processor per state dir: a lock file holding our pid; a dead owner's lock is taken over. */
  private async lock(): Promise<void> {
    this.lockPath = join(this.opts.stateDir, 'lock');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const h = await open(this.lockPath, 'wx');
        await h.writeFile(`${process.pid}\n`);
        await h.close();
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const pid = Number((await readFile(this.lockPath, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new Error(`state dir ${this.opts.stateDir} is in use by process ${pid} (lock ${this.lockPath})`);
      }
      await rm(this.lockPath, { force: true });
    }
    throw new Error(`cannot take the lock ${this.lockPath}`);
  }
}

/** What stdin has ready now, up to STDIN_TURN_BYTES (paused mode: nothing is read ahead beyond the stream's buffer). */
function readStdin(stdin: Readable): Buffer[] {
  const pieces: Buffer[] = [];
  let bytes = 0;
  while (bytes < STDIN_TURN_BYTES) {
    const piece = stdin.read() as Buffer | null;
    if (piece === null) break;
    pieces.push(piece);
    bytes += piece.length;
  }
  return pieces;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The command: runs the processor with SIGTERM/SIGINT (graceful stop) and
 * SIGHUP (config reload) handled; resolves with the exit code.
 */
export async function processCommand(opts: ProcessOptions): Promise<number> {
  const processor = new ContinuousProcessor(opts);
  const stop = (): void => processor.requestStop();
  const reload = (): void => processor.requestReload();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', reload);
  try {
    return await processor.run();
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    process.off('SIGHUP', reload);
  }
}
