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
 * A record over 1 MiB (Kinesis' limit) and a row that cannot be decoded are
 * not sent; each is written, with the reason, to
 * `<runtag>/_kinesis/<stream>/_quarantine/<event>/v<version>/<file>.jsonl`
 * (JSON lines `{"source","row","reason","bytes","record"}`) and counted.
 */
import { createGunzip } from 'node:zlib';
import { DescribeStreamSummaryCommand, type KinesisClient, type PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import type { ObjectStore } from '../store/objectstore.js';
import type { TableSchema } from '../transform/schema.js';
import {
  createKinesisClient,
  KinesisSender,
  MAX_BATCH_BYTES,
  MAX_BATCH_RECORDS,
  MAX_RECORD_BYTES,
  type BatchStats,
  type KinesisConnection,
  type SenderOptions,
} from './kinesis.js';
import { RecordEncoder, rowUuid } from './kinesis-record.js';
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

/** The rows of a gzip row file: split at LFs that are not escaped (tsv.ts writes an escaped LF as `\` + LF). */
async function* rowsOf(store: ObjectStore, key: string): AsyncGenerator<string> {
  const gunzip = createGunzip();
  const source = await store.read(key);
  source.on('error', (err) => gunzip.destroy(err));
  source.pipe(gunzip);
  gunzip.setEncoding('utf8');
  let carry = '';
  try {
    for await (const chunk of gunzip as AsyncIterable<string>) {
      const text = carry + chunk;
      let rowStart = 0;
      for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) {
        let backslashes = 0;
        for (let j = i - 1; j >= rowStart && text.charCodeAt(j) === BACKSLASH; j--) backslashes++;
        if (backslashes % 2 === 1) continue;
        yield text.slice(rowStart, i);
        rowStart = i + 1;
      }
      carry = text.slice(rowStart);
    }
  } finally {
    // Also when the consumer stops early (a failed batch): the source is not left open.
    source.destroy();
  }
  if (carry !== '') yield carry; // a last row without its LF
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
  /** Rows for which this is false are not published (counted as outside the window). */
  keep?: (fields: readonly (string | null)[]) => boolean;
}): Promise<FileOutcome> {
  const { store, sender, encoder, runtag, fileKey, keep } = args;
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
  for await (const line of rowsOf(store, fileKey)) {
    const row = index++;
    const uuid = rowUuid(fileKey, row);
    let text: string;
    try {
      const fields = decodeRow(line);
      if (keep && !keep(fields)) {
        outsideWindow++;
        continue;
      }
      text = encoder.encode(fields, uuid);
    } catch (err) {
      quarantine.push(quarantineLine(store, fileKey, row, `bad row: ${(err as Error).message}`, line));
      continue;
    }
    const data = Buffer.from(text, 'utf8');
    const size = data.length + uuid.length;
    if (size > MAX_RECORD_BYTES) {
      quarantine.push(quarantineLine(store, fileKey, row, `record of ${size} bytes is over the 1 MiB limit`, text));
      continue;
    }
    if (batch.length === MAX_BATCH_RECORDS || batchBytes + size > MAX_BATCH_BYTES) await flush();
    batch.push({ Data: data, PartitionKey: uuid });
    batchBytes += size;
    records++;
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
  private readonly senders = new Map<string, KinesisSender>();

  private constructor(
    private readonly client: KinesisClient,
    readonly targets: KinesisTarget[],
    senderOpts: SenderOptions,
  ) {
    for (const t of targets) {
      this.senders.set(
        t.stream,
        new KinesisSender(client, t.stream, { ...senderOpts, onPublished: (n) => (this.published += n) }),
      );
    }
  }

  /** Connects and checks that every stream exists, so a typo fails before any work is done. */
  static async open(opts: KinesisPublishOptions): Promise<KinesisPublisher> {
    const client = createKinesisClient(opts);
    const where =
      opts.endpoint ??
      `region ${opts.region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1'}`;
    try {
      for (const t of opts.targets) {
        try {
          await client.send(new DescribeStreamSummaryCommand({ StreamName: t.stream }));
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
    return new KinesisPublisher(client, opts.targets, {
      concurrency: opts.concurrency,
      baseDelayMs: opts.baseDelayMs,
      maxDelayMs: opts.maxDelayMs,
    });
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
            const out = await publishFile({
              store,
              sender,
              encoder: new RecordEncoder(schema, runtag, replay),
              runtag,
              fileKey: f.key,
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
