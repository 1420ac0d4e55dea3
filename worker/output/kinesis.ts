/**
 * Sending records to one Kinesis stream with PutRecords, within the API's limits:
 * a request carries at most 500 records and 5 MiB (data plus partition keys), a
 * record at most 1 MiB (oversize records never reach the sender: see
 * kinesis-publish.ts, which quarantines them).
 *
 * PutRecords is not atomic: entries fail one by one (ErrorCode
 * `ProvisionedThroughputExceededException` or `InternalFailure`) while the
 * others are stored. Only the failed entries are sent again, after an
 * exponential backoff with full jitter. Throttling (of entries or of the whole
 * request) also pauses every batch of the stream for that delay, so the sender
 * slows down to what the shards take instead of failing the run; it is retried
 * without limit. Other failures are retried `maxAttempts` times, then the batch
 * rejects with the stream and the error.
 *
 * `concurrency` batches are in flight at once per stream (a shared slot count:
 * every table published to the stream competes for the same slots).
 */
import {
  DescribeStreamSummaryCommand,
  KinesisClient,
  PutRecordsCommand,
  type PutRecordsRequestEntry,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { kinesisRegion, type KinesisConnection } from './kinesis-limits.js';

// This module loads the SDK: import it only where records are sent (kinesis-publish.ts loads it on first use).
export * from './kinesis-limits.js';

/**
 * A client on HTTP/1.1 (the SDK's Kinesis client defaults to HTTP/2, which only
 * SubscribeToShard needs and kinesalite does not speak), with the default
 * credential chain. Non-AWS endpoints get checksums only where required (the
 * current SDK's defaults add checksum headers such servers reject).
 */
export function createKinesisClient(conn: KinesisConnection, env: NodeJS.ProcessEnv = process.env): KinesisClient {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new KinesisClient({
    region: kinesisRegion(conn, env),
    maxAttempts: 3,
    ...(conn.credentials ? { credentials: conn.credentials } : {}),
    requestHandler: new NodeHttpHandler({ connectionTimeout: 10_000, requestTimeout: 60_000 }),
    ...(conn.endpoint
      ? {
          endpoint: conn.endpoint,
          requestChecksumCalculation: 'WHEN_REQUIRED' as const,
          responseChecksumValidation: 'WHEN_REQUIRED' as const,
        }
      : {}),
  });
}

export interface SenderOptions {
  /** Batches in flight at once. */
  concurrency: number;
  /** First backoff delay (ms); doubles per attempt up to maxDelayMs, full jitter. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Attempts for failures other than throttling. */
  maxAttempts?: number;
  /** Called with the number of records each time entries are acknowledged. */
  onPublished?: (records: number) => void;
}

/** What one sent batch cost: retried entries, and those retries caused by throttling. */
export interface BatchStats {
  records: number;
  retriedEntries: number;
  throttledEntries: number;
}

/** The Kinesis error codes that mean "too fast", per entry or for a request. */
const THROTTLING = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'LimitExceededException',
  'KMSThrottlingException',
]);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class KinesisSender {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  /** While throttled, no batch of this stream is sent before this time. */
  private pausedUntil = 0;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxAttempts: number;

  constructor(
    private readonly client: KinesisClient,
    readonly stream: string,
    private readonly opts: SenderOptions,
  ) {
    if (!Number.isSafeInteger(opts.concurrency) || opts.concurrency < 1)
      throw new Error(`Kinesis concurrency must be a positive integer, got ${opts.concurrency}`);
    this.baseDelayMs = opts.baseDelayMs ?? 100;
    this.maxDelayMs = opts.maxDelayMs ?? 10_000;
    this.maxAttempts = opts.maxAttempts ?? 10;
  }

  /**
   * Resolves once a slot is free (at most `concurrency` batches in flight); the
   * batch then runs in the background and `done` settles when every entry is
   * stored or the batch has failed. Awaiting `send` is the backpressure.
   */
  async send(entries: PutRecordsRequestEntry[]): Promise<{ done: Promise<BatchStats> }> {
    await this.acquire();
    const done = this.putAll(entries).finally(() => this.release());
    // The caller may not look at `done` before a later await; never an unhandled rejection meanwhile.
    done.catch(() => {});
    return { done };
  }

  private acquire(): Promise<void> {
    if (this.running < this.opts.concurrency) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }

  private delay(attempt: number): number {
    const cap = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(attempt, 20));
    return Math.round(Math.random() * cap);
  }

  private async waitWhilePaused(): Promise<void> {
    for (let wait = this.pausedUntil - Date.now(); wait > 0; wait = this.pausedUntil - Date.now()) await sleep(wait);
  }

  private throttled(attempt: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + this.delay(attempt));
  }

  /** Sends until every entry is stored: only the failed entries of a partial failure go again. */
  private async putAll(entries: PutRecordsRequestEntry[]): Promise<BatchStats> {
    const stats: BatchStats = { records: entries.length, retriedEntries: 0, throttledEntries: 0 };
    let pending = entries;
    let otherFailures = 0;
    for (let attempt = 0; pending.length > 0; attempt++) {
      await this.waitWhilePaused();
      let failed: PutRecordsRequestEntry[] = [];
      let lastError = '';
      let throttled = false;
      try {
        const res = await this.client.send(new PutRecordsCommand({ StreamName: this.stream, Records: pending }));
        const results = res.Records ?? [];
        if ((res.FailedRecordCount ?? 0) === 0 && results.length === pending.length) {
          this.opts.onPublished?.(pending.length);
          return stats;
        }
        for (let i = 0; i < pending.length; i++) {
          const r = results[i];
          if (r?.ErrorCode) {
            failed.push(pending[i]!);
            if (THROTTLING.has(r.ErrorCode)) throttled = true;
            lastError = `${r.ErrorCode}: ${r.ErrorMessage ?? ''}`;
          } else if (r === undefined) {
            failed.push(pending[i]!);
            lastError = 'no result for the entry';
          }
        }
        this.opts.onPublished?.(pending.length - failed.length);
      } catch (err) {
        const e = err as {
          name?: string;
          message?: string;
          $retryable?: unknown;
          $metadata?: { httpStatusCode?: number };
        };
        const status = e.$metadata?.httpStatusCode;
        const transient = status === undefined || status >= 500 || e.$retryable !== undefined;
        throttled = THROTTLING.has(e.name ?? '');
        if (!throttled && !transient) {
          throw new Error(
            `Kinesis stream ${this.stream}: PutRecords failed: ${e.name ?? 'Error'}: ${e.message ?? ''}`,
            {
              cause: err,
            },
          );
        }
        failed = pending;
        lastError = `${e.name ?? 'Error'}: ${e.message ?? ''}`;
      }
      stats.retriedEntries += failed.length;
      if (throttled) {
        stats.throttledEntries += failed.length;
        this.throttled(attempt);
      } else if (++otherFailures >= this.maxAttempts) {
        throw new Error(
          `Kinesis stream ${this.stream}: ${failed.length} record(s) still failing after ${this.maxAttempts} attempts: ${lastError}`,
        );
      } else {
        await sleep(this.delay(attempt));
      }
      pending = failed;
    }
    return stats;
  }
}

/** Fails, naming the stream, when it does not exist (or cannot be described). */
export async function describeStream(client: KinesisClient, stream: string): Promise<void> {
  await client.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
}
