/**
 * Discovers new edge files under an S3 prefix or a local directory, as they
 * appear. Keys are `YYYYMMDD/<group>/<unix-seconds>.<node>.<hex>.log.gz`; they
 * arrive roughly in order but not strictly (groups interleave, uploads finish
 * out of order), so progress is not a single StartAfter mark:
 *
 * - a quick poll lists each tracked date prefix from after the greatest key
 *   seen in it (S3 `StartAfter`), which finds what was appended after it;
 * - every `sweepEvery`-th poll (and the first) lists the whole tracked
 *   prefixes, which finds late keys that sort before the mark.
 *
 * What is new is decided against the checkpoint's set of committed keys for
 * the lookback window plus the keys already queued or in progress, so
 * neither kind of listing can make a file processed twice. Date prefixes
 * tracked: from the checkpoint's floor to tomorrow (UTC; an edge clock a bit
 * ahead must not hide files).
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { isS3Url, openStore, parseS3Url } from '../store/location.js';
import { byKey, type ObjectStore } from '../store/objectstore.js';
import { createS3Client } from '../store/s3.js';
import { addDays, dateRange, utcDate } from './checkpoint.js';

export interface FoundFile {
  key: string;
  size: number;
  /** Write time from the key (unix seconds), or the listing's LastModified when the key has none. */
  writtenSec: number;
}

export interface FollowerOptions {
  /** `s3://bucket/prefix` or a directory. */
  input: string;
  /** Full listing every this many polls (default 12). */
  sweepEvery?: number;
  client?: S3Client;
  now?: () => number;
}

const KEY_SECONDS = /\/(\d{9,11})\.[^/]*$/;

export function keyWrittenSec(key: string): number | null {
  const m = KEY_SECONDS.exec(key);
  return m ? Number(m[1]) : null;
}

/** Processing order: write time from the key, then key. */
export function compareFound(a: FoundFile, b: FoundFile): number {
  return a.writtenSec - b.writtenSec || byKey(a, b);
}

export class InputFollower {
  readonly store: ObjectStore;
  private readonly s3: { client: S3Client; bucket: string; prefix: string } | null;
  private readonly sweepEvery: number;
  private readonly now: () => number;
  private polls = 0;
  /** Greatest key seen per date prefix. */
  private readonly marks = new Map<string, string>();

  constructor(opts: FollowerOptions) {
    this.store = openStore(opts.input);
    this.sweepEvery = Math.max(1, opts.sweepEvery ?? 12);
    this.now = opts.now ?? Date.now;
    if (isS3Url(opts.input)) {
      const { bucket, prefix } = parseS3Url(opts.input);
      this.s3 = { client: opts.client ?? createS3Client(), bucket, prefix };
    } else {
      this.s3 = null;
    }
  }

  /** The next poll lists everything again (after a failed batch, whose keys sort before the marks). */
  forceSweep(): void {
    this.polls = 0;
  }

  /**
   * Lists the date prefixes from `floor` to tomorrow and returns the files
   * for which `isKnown` is false, in processing order.
   */
  async poll(floor: string, isKnown: (key: string) => boolean): Promise<FoundFile[]> {
    const sweep = this.polls % this.sweepEvery === 0;
    this.polls++;
    const found: FoundFile[] = [];
    const to = addDays(utcDate(this.now()), 1);
    for (const date of dateRange(floor, to)) {
      const after = sweep ? undefined : this.marks.get(date);
      for await (const obj of this.list(`${date}/`, after)) {
        const mark = this.marks.get(date);
        if (mark === undefined || obj.key > mark) this.marks.set(date, obj.key);
        if (obj.key.endsWith('/') || isKnown(obj.key)) continue;
        found.push({
          key: obj.key,
          size: obj.size,
          writtenSec: keyWrittenSec(obj.key) ?? Math.floor(obj.lastModified.getTime() / 1000),
        });
      }
    }
    for (const d of this.marks.keys()) if (d < floor) this.marks.delete(d);
    return found.sort(compareFound);
  }

  /** Keys under `prefix` (relative to the input root) after `startAfter`, in key order. */
  private async *list(
    prefix: string,
    startAfter: string | undefined,
  ): AsyncGenerator<{ key: string; size: number; lastModified: Date }> {
    if (this.s3 === null) {
      for await (const obj of this.store.list(prefix)) if (startAfter === undefined || obj.key > startAfter) yield obj;
      return;
    }
    const { client, bucket, prefix: root } = this.s3;
    const base = root === '' ? '' : `${root}/`;
    let token: string | undefined;
    do {
      let res;
      try {
        res = await client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: base + prefix,
            StartAfter: token === undefined && startAfter !== undefined ? base + startAfter : undefined,
            ContinuationToken: token,
          }),
        );
      } catch (err) {
        throw new Error(`listing s3://${bucket}/${base}${prefix} failed: ${(err as Error).message}`, { cause: err });
      }
      for (const o of res.Contents ?? []) {
        if (o.Key === undefined) continue;
        yield { key: o.Key.slice(base.length), size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) };
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token !== undefined);
  }
}
