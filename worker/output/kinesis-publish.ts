/**
 * Publishing committed row files to Kinesis streams, one record per row (see
 * kinesis-record.ts for the record), used by the replay driver after a table's
 * load has committed and by `spade process` after a batch has committed. Only
 * files named by success manifests are ever given here, so a record never
 * describes a row that was not committed.
 *
 * Resume, at-least-once at file granularity: when every record of a file is
 * acknowledged by the stream, a checkpoint
 * `<runtag>/_kinesis/<stream>/<event>/v<version>/<file>.json` is written. A
 * file with a checkpoint is never published to that stream again (a re-run
 * with the same runtag skips it); a file whose publishing was interrupted is
 * published again whole, so its rows may reach the stream twice, with the same
 * `uuid`.
 *
 * Each record's uuid and partition key is the edge event's uuid, read from the
 * row file's uuid sidecar in lockstep with its rows (WrittenFile.uuids); a
 * file without one is refused (its run was transformed without uuids).
 *
 * A record over 1 MiB (Kinesis' limit), a row that cannot be decoded and a
 * row whose uuid is no valid partition key (1..256 characters) are not sent; each is written, with the reason, to
 * `<runtag>/_kinesis/<stream>/_quarantine/<event>/v<version>/<file>.jsonl`
 * (JSON lines `{"source","row","reason","bytes","record"}`) and counted.
 */
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { KinesisClient, PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import type { ObjectStore } from '../store/objectstore.js';
import type { TableSchema } from '../transform/schema.js';
// Types only from kinesis.ts: it loads the AWS SDK, which KinesisPublisher.open imports on first use
// (every CLI start imports this module, and most runs publish nothing).
import type { BatchStats, KinesisSender, SenderOptions } from './kinesis.js';
import {
  kinesisWhere,
  MAX_BATCH_BYTES,
  MAX_BATCH_RECORDS,
  MAX_RECORD_BYTES,
  type KinesisConnection,
} from './kinesis-limits.js';
import { RecordEncoder } from './kinesis-record.js';
import { decodeRow } from './tsv.js';

/** One stream and the tables it gets (null: every table published). */
export interface KinesisTarget {
  stream: string;
  tables: string[] | null;
}

export interface KinesisPublishOptions extends KinesisConnection {
  targets: KinesisTarget[];
  /** Batches in flight per stream. */
  concurrency: number;
  /** Backoff tuning (tests); see SenderOptions. */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

/** A committed row file of one table. */
export interface RowFile {
  key: string;
  version?: number;
  /** Its uuid sidecar (WrittenFile.uuids); a file without one cannot be published. */
  uuids?: string;
}

/**
 * Why files without a uuid sidecar cannot be published, and what to do: the
 * run was transformed without --kinesis-stream, and row files do not carry the
 * edge event's uuid, which every record must.
 */
export function noUuidsMessage(runtag: string, files: readonly string[]): string {
  const some = files.slice(0, 3).join(', ') + (files.length > 3 ? `, ... (${files.length} files)` : '');
  return (
    `runtag ${runtag} was transformed without uuids (no uuid sidecar for ${some}), so its rows cannot be ` +
    `published to Kinesis; re-run the transform under a new --runtag with --kinesis-stream`
  );
}

/** What publishing one table to one stream did. */
export interface TablePublishResult {
  stream: string;
  table: string;
  /** Files published by this call. */
  files: number;
  /** Files skipped because their checkpoint says they were published earlier. */
  alreadyPublished: number;
  /** Records acknowledged by the stream in this call. */
  published: number;
  quarantined: number;
  /** Entries sent more than once after partial failures or throttling. */
  retriedEntries: number;
  /** Rows not published because the load leaves them out (replay: `time` outside the window). */
  outsideWindow: number;
  /** Files not (completely) published, with why. */
  failed: { key: string; error: string }[];
}

export interface PublishCheckpoint {
  stream: string;
  /** The row file's key in the output store, and its URL. */
  key: string;
  file: string;
  /** Rows in the file; `records` of them were published. */
  rows: number;
  records: number;
  quarantined: number;
  publishedAt: string;
}

/** Kinesis stream names: 1..128 of [a-zA-Z0-9_.-]; checked up front so a name is also a safe key segment. */
export const STREAM_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** `<runtag>/_kinesis/<stream>/` + the file's key below the runtag, with `suffix` instead of `.tsv.gz`. */
function sideKey(runtag: string, stream: string, fileKey: string, suffix: string, sub = ''): string {
  const rel = fileKey.startsWith(`${runtag}/`) ? fileKey.slice(runtag.length + 1) : fileKey;
  return `${runtag}/_kinesis/${stream}/${sub}${rel.replace(/\.tsv\.gz$/, '')}${suffix}`;
}

export const checkpointKey = (runtag: string, stream: string, fileKey: string): string =>
  sideKey(runtag, stream, fileKey, '.json');
export const quarantineKey = (runtag: string, stream: string, fileKey: string): string =>
  sideKey(runtag, stream, fileKey, '.jsonl', '_quarantine/');

const BACKSLASH = 0x5c;

/**
 * The lines of a gzip file in the row format (tsv.ts writes an escaped LF as
 * `\` + LF, which does not end a line), a decompressed chunk at a time:
 * `take()` gives the next line without awaiting while the chunk lasts, so a
 * row file and its uuid sidecar are read in lockstep at the cost of one
 * reader, with memory bounded by a chunk each.
 */
class GzipLines {
  private lines: string[] = [];
  private next = 0;
  private carry = '';
  private ended = false;
  private readonly chunks: AsyncIterator<string>;

  private constructor(
    private readonly source: Readable,
    gunzip: AsyncIterable<string>,
  ) {
    this.chunks = gunzip[Symbol.asyncIterator]();
  }

  static async open(store: ObjectStore, key: string): Promise<GzipLines> {
    const gunzip = createGunzip();
    const source = await store.read(key);
    source.on('error', (err) => gunzip.destroy(err));
    source.pipe(gunzip);
    gunzip.setEncoding('utf8');
    return new GzipLines(source, gunzip as AsyncIterable<string>);
  }

  /** The next line, or undefined when the lines read so far are used up (then `fill()`). */
  take(): string | undefined {
    return this.next < this.lines.length ? this.lines[this.next++] : undefined;
  }

  /** Reads until at least one more line is there; false at the end of the file. */
  async fill(): Promise<boolean> {
    this.lines = [];
    this.next = 0;
    while (this.lines.length === 0) {
      if (this.ended) return false;
      const r = await this.chunks.next();
      if (r.done) {
        this.ended = true;
        if (this.carry !== '') this.lines.push(this.carry); // a last line without its LF
        this.carry = '';
        continue;
      }
      const text = this.carry + r.value;
      let lineStart = 0;
      for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) {
        let backslashes = 0;
        for (let j = i - 1; j >= lineStart && text.charCodeAt(j) === BACKSLASH; j--) backslashes++;
        if (backslashes % 2 === 1) continue;
        this.lines.push(text.slice(lineStart, i));
        lineStart = i + 1;
      }
      this.carry = text.slice(lineStart);
    }
    return true;
  }

  /** The next line, reading on when needed; undefined at the end of the file. */
  async read(): Promise<string | undefined> {
    const line = this.take();
    if (line !== undefined || !(await this.fill())) return line;
    return this.take();
  }

  /** Also when the reader stops early (a failed batch): the source is not left open. */
  close(): void {
    this.source.destroy();
  }
}

/** Kinesis partition keys are 1..256 Unicode characters. */
function validPartitionKey(uuid: string | null): uuid is string {
  return uuid !== null && uuid.length >= 1 && (uuid.length <= 256 || [...uuid].length <= 256);
}

interface FileOutcome {
  records: number;
  quarantined: number;
  retriedEntries: number;
  outsideWindow: number;
  alreadyPublished: boolean;
}

/** Publishes one committed row file to one stream, then writes its checkpoint. */
export async function publishFile(args: {
  store: ObjectStore;
  sender: KinesisSender;
  encoder: RecordEncoder;
  runtag: string;
  fileKey: string;
  /** The file's uuid sidecar (WrittenFile.uuids): the edge events' uuids, one line per row. */
  uuidsKey: string;
  /** Rows for which this is false are not published (counted as outside the window). */
  keep?: (fields: readonly (string | null)[]) => boolean;
}): Promise<FileOutcome> {
  const { store, sender, encoder, runtag, fileKey, uuidsKey, keep } = args;
  const stream = sender.stream;
  const cpKey = checkpointKey(runtag, stream, fileKey);
  if (await store.exists(cpKey)) {
    return { records: 0, quarantined: 0, retriedEntries: 0, outsideWindow: 0, alreadyPublished: true };
  }
  const quarantine: string[] = [];
  const batches: Promise<BatchStats>[] = [];
  let batch: PutRecordsRequestEntry[] = [];
  let batchBytes = 0;
  // The first batch failure stops reading the file (its checkpoint is never written).
  let failure: unknown = null;
  let records = 0;
  let outsideWindow = 0;
  let index = 0;
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    if (failure !== null) throw failure;
    const { done } = await sender.send(batch);
    done.catch((err: unknown) => (failure ??= err));
    batches.push(done);
    batch = [];
    batchBytes = 0;
  };
  const rows = await GzipLines.open(store, fileKey);
  let uuids: GzipLines | null = null;
  try {
    uuids = await GzipLines.open(store, uuidsKey);
    for (;;) {
      let line = rows.take();
      if (line === undefined) {
        if (!(await rows.fill())) break;
        line = rows.take()!;
      }
      const row = index++;
      const uuidLine = uuids.take() ?? (await uuids.read());
      if (uuidLine === undefined) {
        throw new Error(
          `${store.urlOf(uuidsKey)} ends at line ${row}, before row ${row + 1} of ${store.urlOf(fileKey)}`,
        );
      }
      let text: string;
      let uuid: string;
      try {
        const fields = decodeRow(line);
        if (keep && !keep(fields)) {
          outsideWindow++;
          continue;
        }
        const [id] = decodeRow(uuidLine);
        if (!validPartitionKey(id ?? null)) {
          throw new Error(`uuid ${JSON.stringify(id ?? '')} is not a valid partition key (1..256 characters)`);
        }
        uuid = id!;
        text = encoder.encode(fields, uuid);
      } catch (err) {
        quarantine.push(quarantineLine(store, fileKey, row, `bad row: ${(err as Error).message}`, line));
        continue;
      }
      const data = Buffer.from(text, 'utf8');
      const size = data.length + Buffer.byteLength(uuid, 'utf8');
      if (size > MAX_RECORD_BYTES) {
        quarantine.push(quarantineLine(store, fileKey, row, `record of ${size} bytes is over the 1 MiB limit`, text));
        continue;
      }
      if (batch.length === MAX_BATCH_RECORDS || batchBytes + size > MAX_BATCH_BYTES) await flush();
      batch.push({ Data: data, PartitionKey: uuid });
      batchBytes += size;
      records++;
    }
    if ((await uuids.read()) !== undefined) {
      throw new Error(`${store.urlOf(uuidsKey)} has more lines than the ${index} row(s) of ${store.urlOf(fileKey)}`);
    }
  } finally {
    rows.close();
    uuids?.close();
  }
  await flush();
  let retriedEntries = 0;
  for (const r of await Promise.allSettled(batches)) {
    if (r.status === 'rejected') throw r.reason;
    retriedEntries += r.value.retriedEntries;
  }
  if (quarantine.length) await store.put(quarantineKey(runtag, stream, fileKey), quarantine.join(''));
  const cp: PublishCheckpoint = {
    stream,
    key: fileKey,
    file: store.urlOf(fileKey),
    rows: index,
    records,
    quarantined: quarantine.length,
    publishedAt: new Date().toISOString(),
  };
  await store.put(cpKey, JSON.stringify(cp) + '\n');
  return { records, quarantined: quarantine.length, retriedEntries, outsideWindow, alreadyPublished: false };
}

function quarantineLine(store: ObjectStore, key: string, row: number, reason: string, record: string): string {
  return JSON.stringify({ source: store.urlOf(key), row, reason, bytes: Buffer.byteLength(record), record }) + '\n';
}

/**
 * The streams of a run: one client, one sender per stream (its own in-flight
 * slots and throttling pause), and which tables go where.
 */
export class KinesisPublisher {
  /** Records acknowledged so far, all streams (for progress displays). */
  published = 0;

  private constructor(
    private readonly client: KinesisClient,
    readonly targets: KinesisTarget[],
    private readonly senders: Map<string, KinesisSender>,
  ) {}

  /** Loads the SDK, connects and checks that every stream exists, so a typo fails before any work is done. */
  static async open(opts: KinesisPublishOptions): Promise<KinesisPublisher> {
    const { createKinesisClient, describeStream, KinesisSender } = await import('./kinesis.js');
    const client = createKinesisClient(opts);
    const where = kinesisWhere(opts);
    try {
      for (const t of opts.targets) {
        try {
          await describeStream(client, t.stream);
        } catch (err) {
          const e = err as { name?: string; message?: string };
          throw new Error(`Kinesis stream ${t.stream} (${where}): ${e.name ?? 'Error'}: ${e.message ?? ''}`, {
            cause: err,
          });
        }
      }
    } catch (err) {
      client.destroy();
      throw err;
    }
    const senders = new Map<string, KinesisSender>();
    const publisher = new KinesisPublisher(client, opts.targets, senders);
    const senderOpts: SenderOptions = {
      concurrency: opts.concurrency,
      baseDelayMs: opts.baseDelayMs,
      maxDelayMs: opts.maxDelayMs,
      onPublished: (n) => (publisher.published += n),
    };
    for (const t of opts.targets) senders.set(t.stream, new KinesisSender(client, t.stream, senderOpts));
    return publisher;
  }

  /** The streams that get `table`. */
  streamsFor(table: string): string[] {
    return this.targets.filter((t) => t.tables === null || t.tables.includes(table)).map((t) => t.stream);
  }

  /**
   * Publishes a table's committed files to each of its streams (streams in
   * parallel, files one after another per stream). A failing file is reported
   * and the next one tried; it never throws for a file.
   */
  async publishTable(args: {
    store: ObjectStore;
    runtag: string;
    replay: boolean;
    schemas: readonly TableSchema[];
    table: string;
    files: readonly RowFile[];
    /** A replay's window (US Pacific wall-clock, inclusive): only rows the load keeps are published. */
    window?: { start: string; end: string };
  }): Promise<TablePublishResult[]> {
    const { store, runtag, replay, schemas, table, files, window } = args;
    return Promise.all(
      this.streamsFor(table).map(async (stream) => {
        const sender = this.senders.get(stream)!;
        const result: TablePublishResult = {
          stream,
          table,
          files: 0,
          alreadyPublished: 0,
          published: 0,
          quarantined: 0,
          retriedEntries: 0,
          outsideWindow: 0,
          failed: [],
        };
        for (const f of files) {
          try {
            const version = f.version ?? versionOfKey(f.key);
            const schema = schemas.find((s) => s.event === table && s.version === version);
            if (!schema) throw new Error(`no schema for table ${table} version ${version} in the config`);
            if (f.uuids === undefined) throw new Error(noUuidsMessage(runtag, [store.urlOf(f.key)]));
            const out = await publishFile({
              store,
              sender,
              encoder: new RecordEncoder(schema, runtag, replay),
              runtag,
              fileKey: f.key,
              uuidsKey: f.uuids,
              keep: window ? insideWindow(schema, window) : undefined,
            });
            if (out.alreadyPublished) {
              result.alreadyPublished++;
              continue;
            }
            result.files++;
            result.published += out.records;
            result.quarantined += out.quarantined;
            result.retriedEntries += out.retriedEntries;
            result.outsideWindow += out.outsideWindow;
          } catch (err) {
            result.failed.push({ key: store.urlOf(f.key), error: (err as Error).message });
          }
        }
        return result;
      }),
    );
  }

  close(): void {
    this.client.destroy();
  }
}

/**
 * The load's `WHERE time BETWEEN start AND end` on the row file's text: the
 * `time` column is wall-clock `YYYY-MM-DD HH:MM:SS[.fff]`, whose text order is
 * its time order (a fraction makes the text longer, hence later), and NULL is
 * never between.
 */
function insideWindow(
  schema: TableSchema,
  window: { start: string; end: string },
): (fields: readonly (string | null)[]) => boolean {
  const i = schema.columns.findIndex((c) => c.outboundName === 'time');
  if (i < 0) throw new Error(`table ${schema.event} v${schema.version} has no time column to window on`);
  return (fields) => {
    const t = fields[i];
    return t != null && t >= window.start && t <= window.end;
  };
}

/** `.../<event>/v<version>/<file>` -> version. */
function versionOfKey(key: string): number {
  const m = /\/v(\d+)\/[^/]+$/.exec(key);
  if (!m) throw new Error(`cannot tell the schema version of ${key}`);
  return Number(m[1]);
}
