/**
 * The transform's output side: rotating gzip files in an object store.
 *
 * Per destination (one (event, version) table, the non-tracked events, the
 * quarantine) each row is UTF-8 encoded into a buffer as it arrives (64 KiB,
 * growing to 256 KiB for busy tables: see FileSeries); a full buffer is
 * compressed in one go, synchronously on this thread
 * (chunked-gzip.ts: line-by-line compression is ~30x slower, and encoding at
 * once instead of keeping row strings until the chunk is full avoids heavy GC
 * with dozens of tables open). Each file's compressed bytes are streamed into
 * `store.upload(key, stream)` (or the spool, below) from its first chunk on,
 * so a destination that gets few rows is uploaded in one go at close(), and a
 * file appears in the store only once complete (the store writes atomically).
 * A file is finished at the first row at which its uncompressed size reaches
 * `rotateBytes`; the next rows go to seq + 1. Destinations that get no rows
 * produce no file.
 *
 * Spooling (the default for S3 stores): a streamed multipart upload keeps whole
 * parts (8 MiB, times the SDK's queue) in memory for as long as its file is
 * open, and a task has dozens of files open at once, so memory would grow with
 * the number of tables into the hundreds of MB. Instead each file's gzip
 * output goes to a temp file under `spoolDir`; a finished file (rotated or
 * closed) is uploaded from there, at most `maxConcurrentUploads` at a time,
 * and its temp file removed. Memory per open file is then its row buffer
 * (64 KiB; busy ones larger, within CHUNK_GROWTH_BUDGET per writer) and the
 * last 32 KiB of its input (the deflate dictionary). A local store already
 * streams into a temp file and renames it, so it gets the bytes directly.
 *
 * Backpressure: `needsDrain()` turns true when the compressed bytes the store
 * has not read yet exceed `maxPendingBytes`; `drain()` waits until they are
 * below half of it. A caller that checks `needsDrain()` between input lines
 * keeps memory flat however slow the store is. When spooling, `needsDrain()`
 * is also true while more than a few finished files wait to be uploaded,
 * which bounds the disk used by a slow store the same way.
 *
 * Errors from the store or zlib never throw out of the write methods (the hot
 * path stays a plain call); they make `needsDrain()` true and are thrown by
 * `drain()` and `close()`, with the key of the file that failed.
 *
 * gzip level: 1 by default. Measured on 47 MB of TSV shaped like our tables
 * (Node 20, one core): level 1 compresses ~100 MB/s to 21% of the size,
 * level 3 ~75 MB/s to 19%, level 6 (zlib's default) ~32 MB/s to 17%. The
 * transform is CPU-bound and the files are read once by COPY, so speed wins.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { byKey, type ObjectStore } from '../store/objectstore.js';
import { ExactInteger } from '../transform/values.js';
import { ChunkedGzip } from './chunked-gzip.js';
import { encodeField, encodeRowText } from './tsv.js';

/** Ends every row and JSON line (written as a byte: see appendLine). */
const LF = 0x0a;

export interface WrittenFile {
  key: string;
  kind: 'rows' | 'nontracked' | 'quarantine';
  /** For kind 'rows'. */
  event?: string;
  /** For kind 'rows'. */
  version?: number;
  /** Rows (or JSON lines) in the file. */
  rows: number;
  /** Compressed size, as reported by the store. */
  bytes: number;
  uncompressedBytes: number;
  /**
   * For kind 'rows', when the writer was asked for `rowUuids`: the key of the
   * file's uuid sidecar (`<key>.uuids.gz`), one line per row of this file in
   * the same order, the edge event's uuid as a TSV field (tsv.ts escaping).
   * Not a row file: it is never loaded, only read by the Kinesis publisher.
   */
  uuids?: string;
}

/** The uuid sidecar of a row file: the row file's key plus this. */
export const UUIDS_SUFFIX = '.uuids.gz';

export interface OutputWritersOptions {
  store: ObjectStore;
  /** The run prefix (runtag), may be ''. Keys never start with '/'. */
  prefix: string;
  /** Unique per task attempt, e.g. 'p00003-a7f3c2-t1', so attempts never overwrite each other. */
  fileTag: string;
  /** Uncompressed bytes per file before rotating to the next seq. Default 256 MiB. */
  rotateBytes?: number;
  /** zlib level, default 1 (see the measurements above). */
  gzipLevel?: number;
  /** Bound on compressed bytes not yet taken by the store before needsDrain() is true. Default 8 MiB. */
  maxPendingBytes?: number;
  /**
   * Write each file to a temp file and upload it once finished, instead of
   * streaming it into the store (see the top of this file). Default: true when
   * `spoolDir` is given or the store is on S3 (`store.url` starts with `s3://`).
   */
  spool?: boolean;
  /**
   * Directory for spooled files, created if missing, left in place. Default: a
   * fresh `${os.tmpdir()}/spade-spool-<pid>-<random>`, removed by close() and
   * abort(); such directories of dead processes are removed on first use.
   */
  spoolDir?: string;
  /** When spooling: files uploaded at the same time. Default 2. */
  maxConcurrentUploads?: number;
  /**
   * Write a uuid sidecar next to each row file (see WrittenFile.uuids): rows
   * must then be written with their event's uuid. Only runs that publish to
   * Kinesis ask for it; others write no sidecar and pay nothing.
   */
  rowUuids?: boolean;
}

export interface QuarantineRecord {
  /** Where the line came from, e.g. the edge log key. */
  source: string;
  lineNo: number;
  reason: string;
  /** The edge line's uuid, when its edge fields parsed but its payload did not. */
  uuid?: string;
  text: string;
}

/** A handle on one (event, version) table's rows; resolve it once per schema and skip the lookup per row. */
export interface TableRowWriter {
  /** `uuid`: the event's uuid, required when the writer writes uuid sidecars. */
  writeRow(fields: readonly (string | null)[], uuid?: string): void;
}

export const DEFAULT_ROTATE_BYTES = 256 * 1024 * 1024;
export const DEFAULT_GZIP_LEVEL = 1;
export const DEFAULT_MAX_PENDING_BYTES = 8 * 1024 * 1024;
export const DEFAULT_MAX_CONCURRENT_UPLOADS = 2;
/** When spooling, needsDrain() is true while more finished files than this wait to be uploaded. */
const MAX_SPOOLED_WAITING = 4;
/** UTF-8 bytes buffered per destination before they are compressed as one chunk, at first. */
const CHUNK_BYTES = 64 * 1024;
/**
 * A destination that fills its buffer gets one twice as large, up to this:
 * each chunk pays a fresh zlib state and hashing the 32 KiB dictionary
 * (cachegrind, 3 corpus files in one task: 64 KiB chunks 10.00 G instructions,
 * always 256 KiB 9.70 G, growing as here 9.83 G; the output size is the same).
 */
const MAX_CHUNK_BYTES = 256 * 1024;
/** What all of a writer's buffers may grow beyond CHUNK_BYTES each, together (bounds memory with many busy tables). */
const CHUNK_GROWTH_BUDGET = 8 * 1024 * 1024;

const EVENT_NAME = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,126}$/;
const FILE_TAG = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** What JSON accepts as a number: an ExactInteger's text must match before it is written unquoted. */
const JSON_NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

interface FileMeta {
  kind: WrittenFile['kind'];
  event?: string;
  version?: number;
  /** A row file's uuid sidecar: reported on its row file's entry, not as a file of its own. */
  sidecar?: true;
}

/** One file being written: its compressed bytes stream into the store's upload (or the spool). */
interface Part {
  readonly key: string;
  /** Compresses this file's chunks on the writer's thread (see chunked-gzip.ts). */
  readonly deflater: ChunkedGzip;
  /** The file's gzip bytes, as the store (or the spool) reads them. */
  readonly body: PassThrough;
  rows: number;
  uncompressedBytes: number;
  ended: boolean;
  /** When spooling: the temp file's read stream while its upload runs (so abort can stop it). */
  spoolBody: Readable | null;
}

/** Default spool directories are `${os.tmpdir()}/${SPOOL_DIR_PREFIX}<pid>-<random>`, one per writer. */
export const SPOOL_DIR_PREFIX = 'spade-spool-';
const DEFAULT_SPOOL_DIR = new RegExp(`^${SPOOL_DIR_PREFIX}(\\d+)(?:-[0-9a-f]+)?$`);
let staleSweepStarted = false;

/**
 * Removes the default spool directories of processes that no longer exist: a
 * hard kill leaves its temp files behind, and on a long-lived machine they would
 * fill the disk. A pid that is alive (or not ours to signal) is left alone.
 * Runs by itself once per thread when a default spool directory is first
 * used; exported for start-up code and tests. Best effort, never rejects.
 */
export async function sweepStaleSpoolDirs(root: string = tmpdir()): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = DEFAULT_SPOOL_DIR.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processExists(pid)) continue;
    try {
      await rm(join(root, name), { recursive: true, force: true });
      removed.push(name);
    } catch {
      // Someone else's (permissions) or already gone: not ours to worry about.
    }
  }
  return removed;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Spooled uploads: a file's gzip output goes to a temp file, which is uploaded
 * when a slot is free after the file is finished, and then removed (whatever
 * happened). Slots bound the memory of concurrent multipart uploads.
 */
class Spool {
  private running = 0;
  private readonly queue: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private cancelled: Error | null = null;
  private dirMade = false;
  private readonly dir: string;
  /** True for the default directory: it is this writer's alone, and removed by dispose(). */
  private readonly ownsDir: boolean;

  constructor(
    private readonly store: ObjectStore,
    dir: string | undefined,
    private readonly maxConcurrent: number,
  ) {
    this.ownsDir = dir === undefined;
    // One directory per writer, so removing it never races with another writer of this process.
    this.dir = dir ?? join(tmpdir(), `${SPOOL_DIR_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  }

  /**
   * Compresses `part` into a temp file (the pipeline is attached before this
   * returns, so gzip output never piles up in memory), then uploads it.
   */
  send(part: Part): Promise<{ bytes: number }> {
    if (!this.dirMade) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.dirMade = true;
      if (this.ownsDir && !staleSweepStarted) {
        staleSweepStarted = true;
        void sweepStaleSpoolDirs();
      }
    }
    // Random, so writers in other threads of this process never collide; then the key's tail. The
    // name is `<12 hex>-<key, chars outside [A-Za-z0-9._-] as '_', last 100 chars>`, which
    // worker/process/salvage-spool.ts parses to find the key of a file left by a hard kill.
    const tmp = join(
      this.dir,
      `${randomBytes(6).toString('hex')}-${part.key.replace(/[^A-Za-z0-9._-]/g, '_').slice(-100)}`,
    );
    const spooled = pipeline(part.body, createWriteStream(tmp, { flags: 'wx' })).catch((err: unknown) => {
      const msg = err instanceof Error ? err.message : String(err);
      throw new Error(`spooling to ${tmp} failed: ${msg}`, { cause: err });
    });
    return this.uploadWhenSpooled(part, tmp, spooled).finally(() => rm(tmp, { force: true }));
  }

  private async uploadWhenSpooled(part: Part, tmp: string, spooled: Promise<void>): Promise<{ bytes: number }> {
    await spooled;
    await this.acquire();
    try {
      const body = createReadStream(tmp);
      part.spoolBody = body;
      return await this.store.upload(part.key, body);
    } finally {
      part.spoolBody = null;
      this.release();
    }
  }

  /** Removes the default directory once every upload has settled (their temp files are gone by then). */
  async dispose(): Promise<void> {
    if (this.ownsDir && this.dirMade) await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }

  /** Files still waiting for a slot fail with `reason`; running uploads are stopped by the caller. */
  cancel(reason: Error): void {
    this.cancelled ??= reason;
    for (const w of this.queue.splice(0)) w.reject(reason);
  }

  private acquire(): Promise<void> {
    if (this.cancelled) return Promise.reject(this.cancelled);
    if (this.running < this.maxConcurrent) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => this.queue.push({ resolve, reject }));
  }

  private release(): void {
    const next = this.queue.shift();
    // The slot passes straight to the next file, so `running` stays the same.
    if (next) next.resolve();
    else this.running--;
  }
}

/** Owns the open files and their uploads, the results, the first failure and the backpressure state. */
class Uploads {
  readonly live = new Set<Part>();
  readonly written: WrittenFile[] = [];
  /** Uploaded uuid sidecars: key -> rows. */
  readonly sidecars = new Map<string, number>();
  failure: Error | null = null;
  overLimit = false;
  private readonly settled: Promise<void>[] = [];
  private waiters: (() => void)[] = [];

  constructor(
    private readonly store: ObjectStore,
    private readonly gzipLevel: number,
    private readonly maxPendingBytes: number,
    /** Null: each file's bytes stream straight into `store.upload`. */
    private readonly spool: Spool | null,
  ) {}

  start(key: string, meta: FileMeta): Part {
    const body = new PassThrough();
    const part: Part = {
      key,
      deflater: new ChunkedGzip(this.gzipLevel),
      body,
      rows: 0,
      uncompressedBytes: 0,
      ended: false,
      spoolBody: null,
    };
    body.on('error', (err: Error) =>
      this.fail(new Error(`output stream of ${key} failed: ${err.message}`, { cause: err })),
    );
    body.on('drain', this.wake);
    let upload: Promise<{ bytes: number }>;
    try {
      upload = this.spool ? this.spool.send(part) : this.store.upload(key, body);
    } catch (err) {
      upload = Promise.reject(err);
    }
    this.live.add(part);
    this.settled.push(
      upload
        .then(
          (res) => {
            if (meta.sidecar) {
              this.sidecars.set(key, part.rows);
              return;
            }
            this.written.push({
              key,
              ...meta,
              rows: part.rows,
              bytes: res.bytes,
              uncompressedBytes: part.uncompressedBytes,
            });
          },
          (err: unknown) => {
            const msg = err instanceof Error ? err.message : String(err);
            this.fail(new Error(`upload of ${key} to ${this.store.url} failed: ${msg}`, { cause: err }));
          },
        )
        .finally(() => {
          this.live.delete(part);
          this.wake();
        }),
    );
    return part;
  }

  /** Compresses `bytes` into the file (synchronously, on this thread). */
  write(part: Part, bytes: Buffer): void {
    let compressed: Buffer;
    try {
      compressed = part.deflater.compress(bytes);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      this.fail(new Error(`compressing ${part.key} failed: ${msg}`, { cause: err }));
      return;
    }
    part.body.write(compressed);
  }

  end(part: Part): void {
    part.ended = true;
    part.body.end(part.deflater.finish());
  }

  /** Compressed bytes of files not yet uploaded that the store has not read yet. */
  pendingBytes(): number {
    let n = 0;
    for (const p of this.live) n += p.body.writableLength + p.body.readableLength;
    return n;
  }

  /** When spooling: files finished by the writer whose upload has not started (still spooling, or queued). */
  spooledWaiting(): number {
    if (this.spool === null) return 0;
    let n = 0;
    for (const p of this.live) if (p.ended && p.spoolBody === null) n++;
    return n;
  }

  /** Called after each chunk written into a file: the only moment pending bytes grow. */
  afterWrite(): void {
    this.overLimit = this.pendingBytes() > this.maxPendingBytes || this.spooledWaiting() > MAX_SPOOLED_WAITING;
  }

  async drain(): Promise<void> {
    const lowWater = this.maxPendingBytes / 2;
    for (;;) {
      if (this.failure) throw this.failure;
      const calm = this.pendingBytes() <= lowWater && this.spooledWaiting() <= MAX_SPOOLED_WAITING;
      if (calm || !this.somethingToWaitFor()) break;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    this.overLimit = false;
  }

  /**
   * True when an event is sure to come: a 'drain' from a stream whose write
   * returned false, or the end of an upload whose stream is ended (spooled
   * files waiting for a slot are ended). (Bytes in streams that promise
   * neither are below each body stream's highWaterMark: its last write
   * returned true.)
   */
  private somethingToWaitFor(): boolean {
    for (const p of this.live) if (p.ended || p.body.writableNeedDrain) return true;
    return false;
  }

  fail(err: Error): void {
    if (!this.failure) this.failure = err;
    this.wake();
  }

  readonly wake = (): void => {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  };

  /** Destroys every unfinished stream (the store discards those uploads; spooled temp files are removed). */
  destroyAll(reason: string): void {
    this.spool?.cancel(new Error(`${reason}: upload not started`));
    for (const p of this.live) {
      const err = new Error(`${reason}: ${p.key} not written`);
      p.body.destroy(err);
      p.spoolBody?.destroy(err);
    }
  }

  /** Resolves when every upload started so far has succeeded or failed, and the spool is cleaned up. */
  async settleAll(): Promise<void> {
    // Uploads cannot start while we wait (writes are refused once closing), but loop in case.
    let seen = 0;
    while (seen < this.settled.length) {
      const batch = this.settled.slice(seen);
      seen = this.settled.length;
      await Promise.all(batch);
    }
    await this.spool?.dispose();
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * The files of one destination. Each row is UTF-8 encoded straight into a
 * buffer (so no row strings outlive the call, which keeps the GC quiet with
 * dozens of tables open); a full buffer is one write into the current file's
 * gzip stream, and is then reused, or replaced by one twice as large while the
 * writer's growth budget lasts. The exact byte count per row makes rotation exact.
 */
class FileSeries implements TableRowWriter {
  closed = false;
  private buf: Buffer = EMPTY;
  private off = 0;
  private pendingRows = 0;
  /** Uncompressed bytes already handed to the current file. */
  private fileBytes = 0;
  private part: Part | null = null;
  private seq = 0;

  constructor(
    private readonly uploads: Uploads,
    private readonly rotateBytes: number,
    /** Key up to the seq number, e.g. `run/ev/v2/p00003-a7f3c2-t1-`. */
    private readonly keyStem: string,
    private readonly suffix: string,
    private readonly meta: FileMeta,
    /** Bytes the writer's buffers may still grow by, shared by its series. */
    private readonly growth: { spare: number },
    /**
     * The row files' uuid sidecar series: never rotates by itself (its
     * rotateBytes is infinite), it ends its file whenever this series does, so
     * both have the same seq and the same rows.
     */
    readonly uuids: FileSeries | null = null,
  ) {}

  writeRow(fields: readonly (string | null)[], uuid?: string): void {
    this.appendRow(encodeRowText(fields), uuid);
  }

  /**
   * A row and, with a sidecar, its uuid (first: appending the row may rotate
   * both files, and the uuid must go into the file that gets the row).
   */
  appendRow(text: string, uuid: string | undefined): void {
    if (this.uuids !== null) {
      if (uuid === undefined) throw new Error(`OutputWriters: a row of ${this.keyStem}* was written without its uuid`);
      // encodeField returns the uuid itself when it needs no escaping (always, for real uuids).
      this.uuids.appendLine(encodeField(uuid));
    }
    this.appendLine(text);
  }

  /**
   * Hot path: one line, given without its LF, which is written here as a byte:
   * `text + '\n'` would be a cons string that the UTF-8 encoder first flattens,
   * i.e. one more copy of every row.
   */
  appendLine(text: string): void {
    if (this.closed) throw new Error(`OutputWriters: write to ${this.keyStem}* after close() or abort()`);
    const room = this.buf.length - this.off;
    // A UTF-16 code unit is at most 3 UTF-8 bytes: only count bytes when it might not fit.
    if (text.length * 3 + 1 > room) {
      const size = Buffer.byteLength(text, 'utf8') + 1;
      if (size > room) {
        this.flush();
        this.buf = this.nextBuffer();
        if (size > this.buf.length) {
          // A row bigger than a chunk goes in as its own write.
          this.writeChunk(Buffer.from(text + '\n', 'utf8'), 1);
          if (this.fileBytes >= this.rotateBytes) this.endPart();
          return;
        }
      }
    }
    // Whole rows only, so the UTF-8 encoder never sees half of a surrogate pair.
    this.off += this.buf.write(text, this.off, 'utf8');
    this.buf[this.off++] = LF;
    this.pendingRows++;
    if (this.fileBytes + this.off >= this.rotateBytes) {
      this.flush();
      this.endPart();
    }
  }

  /**
   * The (empty) buffer for the next rows, when a row did not fit: a first one,
   * or one twice as large while the writer's budget allows, or else the
   * current one again (compression copied what it needed).
   */
  private nextBuffer(): Buffer {
    const size = this.buf.length;
    if (size === 0) return Buffer.allocUnsafe(CHUNK_BYTES);
    if (size < MAX_CHUNK_BYTES && this.growth.spare >= size) {
      this.growth.spare -= size;
      return Buffer.allocUnsafe(size * 2);
    }
    return this.buf;
  }

  /** Compresses the buffered rows into the current file in one go. */
  flush(): void {
    if (this.off === 0) return;
    const chunk = this.buf.subarray(0, this.off);
    const rows = this.pendingRows;
    // Compression is synchronous and copies: the same buffer takes the next rows.
    this.off = 0;
    this.pendingRows = 0;
    this.writeChunk(chunk, rows);
  }

  /** Flushes and ends the current file. */
  finish(): void {
    this.flush();
    this.endPart();
  }

  discard(): void {
    if (this.buf.length > CHUNK_BYTES) this.growth.spare += this.buf.length - CHUNK_BYTES;
    this.buf = EMPTY;
    this.off = 0;
    this.pendingRows = 0;
  }

  private writeChunk(bytes: Buffer, rows: number): void {
    // A failed attempt's output is never used; stop feeding it (drain()/close() report the failure).
    if (this.uploads.failure) return;
    let part = this.part;
    if (part === null) {
      part = this.uploads.start(`${this.keyStem}${String(this.seq).padStart(5, '0')}${this.suffix}`, this.meta);
      this.part = part;
    }
    part.rows += rows;
    part.uncompressedBytes += bytes.length;
    this.fileBytes = part.uncompressedBytes;
    this.uploads.write(part, bytes);
    this.uploads.afterWrite();
  }

  private endPart(): void {
    if (this.part === null) return;
    this.uploads.end(this.part);
    this.part = null;
    this.fileBytes = 0;
    this.seq++;
    this.uuids?.finish();
  }
}

/**
 * Writes one task attempt's output: TSV rows per (event, version), non-tracked
 * events and quarantined lines, as rotating gzip files in an object store.
 * Keys (no leading '/' when prefix is ''):
 * - rows: `${prefix}/${event}/v${version}/${fileTag}-${seq}.tsv.gz`
 * - non-tracked: `${prefix}/_nontracked/${fileTag}-${seq}.json.gz`
 * - quarantine: `${prefix}/_quarantine/${fileTag}-${seq}.json.gz`
 * with seq = 00000, 00001, ... per destination.
 */
export class OutputWriters {
  private readonly uploads: Uploads;
  private readonly keyRoot: string;
  private readonly fileTag: string;
  private readonly rotateBytes: number;
  private readonly rowUuids: boolean;
  private readonly tables = new Map<string, Map<number, FileSeries>>();
  private readonly allSeries: FileSeries[] = [];
  /** How much all row buffers together may still grow (FileSeries.nextBuffer). */
  private readonly chunkGrowth = { spare: CHUNK_GROWTH_BUDGET };
  private nonTracked: FileSeries | null = null;
  private quarantine: FileSeries | null = null;
  // The last table written: consecutive rows of one table skip the map lookups.
  private lastSeries: FileSeries | null = null;
  private lastEvent = '';
  private lastVersion = -1;
  private state: 'open' | 'closed' | 'aborted' = 'open';
  /** Random per writer, so no real property value can be mistaken for a big-integer placeholder. */
  private readonly exactMark = `xint${randomBytes(12).toString('hex')}x`;
  private readonly exactPattern = new RegExp(`"${this.exactMark}([-+.0-9eE]+)${this.exactMark}"`, 'g');

  constructor(opts: OutputWritersOptions) {
    const { store, prefix, fileTag } = opts;
    const rotateBytes = opts.rotateBytes ?? DEFAULT_ROTATE_BYTES;
    const gzipLevel = opts.gzipLevel ?? DEFAULT_GZIP_LEVEL;
    const maxPendingBytes = opts.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
    if (prefix.startsWith('/'))
      throw new Error(`OutputWriters: prefix must not start with '/': ${JSON.stringify(prefix)}`);
    if (!FILE_TAG.test(fileTag)) throw new Error(`OutputWriters: bad fileTag ${JSON.stringify(fileTag)}`);
    if (!Number.isSafeInteger(rotateBytes) || rotateBytes < 1)
      throw new Error(`OutputWriters: rotateBytes must be a positive integer, got ${rotateBytes}`);
    if (!Number.isInteger(gzipLevel) || gzipLevel < 0 || gzipLevel > 9)
      throw new Error(`OutputWriters: gzipLevel must be 0..9, got ${gzipLevel}`);
    if (!(maxPendingBytes > 0)) throw new Error(`OutputWriters: maxPendingBytes must be > 0, got ${maxPendingBytes}`);
    const maxUploads = opts.maxConcurrentUploads ?? DEFAULT_MAX_CONCURRENT_UPLOADS;
    if (!Number.isSafeInteger(maxUploads) || maxUploads < 1)
      throw new Error(`OutputWriters: maxConcurrentUploads must be a positive integer, got ${maxUploads}`);
    const spool = opts.spool ?? (opts.spoolDir !== undefined || store.url.startsWith('s3://'));
    const root = prefix.replace(/\/+$/, '');
    this.keyRoot = root === '' ? '' : `${root}/`;
    this.fileTag = fileTag;
    this.rotateBytes = rotateBytes;
    this.rowUuids = opts.rowUuids ?? false;
    this.uploads = new Uploads(
      store,
      gzipLevel,
      maxPendingBytes,
      spool ? new Spool(store, opts.spoolDir, maxUploads) : null,
    );
  }

  /** Resolves the destination of one table once; `writeRow` on the handle is the cheapest way to write rows. */
  tableWriter(event: string, version: number): TableRowWriter {
    return this.seriesFor(event, version);
  }

  /** Hot path: appends one row to the (event, version) table's output; `uuid` is required with `rowUuids`. */
  writeRow(
    event: string,
    version: number,
    fields: readonly (string | null)[],
    plainColumns?: readonly boolean[],
    uuid?: string,
  ): void {
    let series = this.lastSeries;
    if (series === null || event !== this.lastEvent || version !== this.lastVersion) {
      series = this.seriesFor(event, version);
      this.lastSeries = series;
      this.lastEvent = event;
      this.lastVersion = version;
    }
    series.appendRow(encodeRowText(fields, plainColumns), uuid);
  }

  /**
   * Appends `{"event":…,"properties":…}` as one JSON line. ExactInteger values
   * (and bigints) are written as JSON numbers with all their digits, as they
   * were in the input, not as the quoted text their toJSON gives.
   */
  writeNonTracked(event: string, properties: unknown): void {
    let line: string;
    try {
      line = this.jsonWithExactNumbers({ event, properties });
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new Error(`cannot serialise the properties of non-tracked event ${JSON.stringify(event)}: ${msg}`, {
        cause: err,
      });
    }
    if (this.nonTracked === null) this.nonTracked = this.newSeries('_nontracked/', '.json.gz', { kind: 'nontracked' });
    this.nonTracked.appendLine(line);
  }

  /** Appends `{"source","lineNo","reason","text"}` as one JSON line. */
  writeQuarantine(rec: QuarantineRecord): void {
    const line = JSON.stringify({
      source: rec.source,
      lineNo: rec.lineNo,
      reason: rec.reason,
      ...(rec.uuid === undefined ? {} : { uuid: rec.uuid }),
      text: rec.text,
    });
    if (this.quarantine === null) this.quarantine = this.newSeries('_quarantine/', '.json.gz', { kind: 'quarantine' });
    this.quarantine.appendLine(line);
  }

  /** True when the caller should `await drain()` before writing more (or when a write failed). */
  needsDrain(): boolean {
    return this.uploads.overLimit || this.uploads.failure !== null;
  }

  /** Waits until buffered output is below half the bound; rejects with the first store/zlib failure. */
  drain(): Promise<void> {
    return this.uploads.drain();
  }

  /** Compressed bytes not yet taken by the store right now (for metrics and tests). */
  pendingBytes(): number {
    return this.uploads.pendingBytes();
  }

  /**
   * Flushes everything, finishes every file and waits for every upload.
   * Resolves with the files written, sorted by key; rejects with the first
   * failure (files already uploaded by then are left, unreported: only files
   * named by a success manifest are ever loaded).
   */
  async close(): Promise<WrittenFile[]> {
    if (this.state !== 'open') throw new Error(`OutputWriters.close(): already ${this.state}`);
    this.state = 'closed';
    for (const s of this.allSeries) s.closed = true;
    if (this.uploads.failure === null) {
      for (const s of this.allSeries) s.finish();
    } else {
      this.uploads.destroyAll('output failed');
    }
    await this.uploads.settleAll();
    if (this.uploads.failure) throw this.uploads.failure;
    if (this.rowUuids) this.attachSidecars();
    return [...this.uploads.written].sort(byKey);
  }

  /** Names each row file's uuid sidecar on its entry, after checking they hold the same number of rows. */
  private attachSidecars(): void {
    const { written, sidecars } = this.uploads;
    for (const f of written) {
      if (f.kind !== 'rows') continue;
      const key = f.key + UUIDS_SUFFIX;
      const rows = sidecars.get(key);
      // Cannot happen (both files end together); a sidecar that does not match its rows must never be used.
      if (rows !== f.rows) throw new Error(`OutputWriters: ${key} holds ${rows ?? 'no'} uuid(s) for ${f.rows} row(s)`);
      f.uuids = key;
    }
  }

  /** Drops buffered rows and cancels unfinished uploads (no partial file is left). Never rejects. */
  async abort(): Promise<void> {
    if (this.state === 'open') this.state = 'aborted';
    for (const s of this.allSeries) {
      s.closed = true;
      s.discard();
    }
    this.uploads.destroyAll('output aborted');
    await this.uploads.settleAll();
  }

  private seriesFor(event: string, version: number): FileSeries {
    let versions = this.tables.get(event);
    let series = versions?.get(version);
    if (series) return series;
    if (!EVENT_NAME.test(event)) throw new Error(`OutputWriters: bad event name ${JSON.stringify(event)}`);
    if (!Number.isSafeInteger(version) || version < 0)
      throw new Error(`OutputWriters: bad schema version ${version} for event ${event}`);
    const dir = `${event}/v${version}/`;
    const uuids = this.rowUuids
      ? this.newSeries(dir, `.tsv.gz${UUIDS_SUFFIX}`, { kind: 'rows', event, version, sidecar: true }, null, Infinity)
      : null;
    series = this.newSeries(dir, '.tsv.gz', { kind: 'rows', event, version }, uuids);
    if (!versions) {
      versions = new Map();
      this.tables.set(event, versions);
    }
    versions.set(version, series);
    return series;
  }

  private newSeries(
    dir: string,
    suffix: string,
    meta: FileMeta,
    uuids: FileSeries | null = null,
    rotateBytes = this.rotateBytes,
  ): FileSeries {
    if (this.state !== 'open') throw new Error(`OutputWriters: write to ${dir} after close() or abort()`);
    const series = new FileSeries(
      this.uploads,
      rotateBytes,
      `${this.keyRoot}${dir}${this.fileTag}-`,
      suffix,
      meta,
      this.chunkGrowth,
      uuids,
    );
    this.allSeries.push(series);
    return series;
  }

  private jsonWithExactNumbers(value: unknown): string {
    let sawExact = false;
    const mark = this.exactMark;
    const text = JSON.stringify(value, function (this: unknown, key: string, v: unknown): unknown {
      if (typeof v === 'string') {
        // JSON.stringify has already applied toJSON; the holder still has the original value.
        const raw = (this as Record<string, unknown>)[key];
        if (raw instanceof ExactInteger && JSON_NUMBER.test(raw.text)) {
          sawExact = true;
          return mark + raw.text + mark;
        }
      } else if (typeof v === 'bigint') {
        sawExact = true;
        return mark + v.toString() + mark;
      }
      return v;
    });
    return sawExact ? text.replace(this.exactPattern, '$1') : text;
  }
}
