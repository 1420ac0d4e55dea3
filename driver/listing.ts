/**
 * Which edge files a replay reads.
 *
 * Edge servers write `YYYYMMDD/<autoscale-group>/<unix-seconds>.<node>.<8 hex>.log.gz`,
 * the date and the seconds being the UTC time the file was written. A file holds
 * events received shortly before it was written, so the events of [START, END] are in
 * files written in [START, END+1h] (SPEC 4), found under the date prefixes of
 * START−1h .. END+1h (window.ts `datePrefixes`).
 *
 * Clock: the key's own unix seconds when the name carries them (sturdier: an object
 * copied or restored later gets a new LastModified but keeps its name), otherwise the
 * object's LastModified (what the original replay compared).
 *
 * Boundaries: both ends are inclusive, like the SPEC's "between" (and SQL BETWEEN):
 * a file written exactly at START or exactly at END+1h is read. Reading one file too
 * many costs a little time (its out-of-window rows are dropped by the load's
 * `WHERE time BETWEEN`); reading one too few loses rows.
 *
 * Listing is parallel: a month is ~32 date prefixes, and a busy day holds hundreds of
 * thousands of keys under a few dozen autoscale groups, so one prefix at a time
 * leaves S3 (1,000 keys per ListObjectsV2 page, one page per round trip) idle. Where
 * the store can list one level (`listLevel`, S3 and local directories), each date
 * prefix is split into its autoscale-group prefixes, and all of them are listed
 * `concurrency` at a time. Each listed prefix (a "listing unit") yields its keys in
 * key order, which the streamed plan (plan.ts) relies on.
 */
import { byKey, isStoredPrefix, type ObjectStore, type StoredObject } from '../worker/store/objectstore.js';
import { forEachLimited } from './concurrency.js';
import { datePrefixes, type ReplayWindow } from './window.js';

export interface EdgeFile {
  key: string;
  size: number;
  /** When the file was written, by the clock named in `clock`. */
  writtenAt: Date;
  clock: 'key' | 'lastModified';
}

export interface ListOptions {
  /** Called with the running count of objects listed (every 1,000 and at the end of each listing unit). */
  onProgress?(n: number): void;
  /** Prefixes listed at the same time (`--list-concurrency`); default 8. */
  concurrency?: number;
  /** Attempts per prefix before the listing fails, naming the prefix; default 5. */
  attempts?: number;
  /** First pause before a retry, doubled each time (with jitter); default 1 s. */
  retryDelayMs?: number;
  /** A listing error that will be retried. */
  onRetry?(prefix: string, attempt: number, error: string): void;
}

/** Where streamed listing results go; a returned promise is awaited (backpressure). */
export interface ListingSink {
  /** A file of the window, from listing unit `unit`, in key order within the unit. */
  file(unit: string, file: EdgeFile): void | Promise<void>;
  /** Every file of `unit` has been passed to `file`. */
  unitDone(unit: string): void | Promise<void>;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
export const DEFAULT_LIST_CONCURRENCY = 8;
const DEFAULT_ATTEMPTS = 5;
const DEFAULT_RETRY_DELAY_MS = 1000;
const MAX_RETRY_DELAY_MS = 20_000;
const PROGRESS_EVERY = 1000;

// A unix time in seconds from 2001-09-09 (1e9) up to 2286 (< 1e10): exactly 10 digits.
const UNIX_SECONDS = /^\d{10}$/;
const DATE_DIR = /^(\d{4})(\d{2})(\d{2})$/;

/**
 * The write time a key's file name carries, or null. The first dot-separated part of
 * the base name must be a plausible unix time in seconds; what follows it is not
 * checked. When the key starts with a `YYYYMMDD/` directory, the seconds must fall
 * within a day of that date (the two are the same clock; a name that disagrees with
 * its own directory is not trusted and LastModified is used instead).
 */
export function keyWrittenAt(key: string): Date | null {
  const base = key.slice(key.lastIndexOf('/') + 1);
  const dot = base.indexOf('.');
  const first = dot === -1 ? base : base.slice(0, dot);
  if (!UNIX_SECONDS.test(first)) return null;
  const ms = Number(first) * 1000;
  const slash = key.indexOf('/');
  const dir = slash === -1 ? null : DATE_DIR.exec(key.slice(0, slash));
  if (dir) {
    const dayStart = Date.UTC(Number(dir[1]), Number(dir[2]) - 1, Number(dir[3]));
    if (ms < dayStart - DAY_MS || ms >= dayStart + 2 * DAY_MS) return null;
  }
  return new Date(ms);
}

/**
 * The edge files of a replay window, sorted by key. Lists each date prefix
 * (`YYYYMMDD/`) of the window and keeps the files written in [START, END+1h].
 * Directory markers (keys ending in `/`) are skipped. Holds every file: for
 * windows of any size the replay streams instead (`streamWindowFiles`).
 */
export async function listWindowFiles(
  store: ObjectStore,
  w: ReplayWindow,
  opts: ListOptions = {},
): Promise<EdgeFile[]> {
  const found: EdgeFile[] = [];
  await streamWindowFiles(store, w, { file: (_unit, f) => void found.push(f), unitDone: () => {} }, opts);
  // Each key lives under one listing unit, so there are no duplicates to remove.
  found.sort(byKey);
  return found;
}

/**
 * Streams the edge files of a replay window into `sink`, listing the window's date
 * prefixes (and their autoscale-group prefixes, where the store can list one level)
 * `concurrency` at a time. A prefix whose listing fails is listed again from after
 * its last key, with growing pauses; after `attempts` failures the error names it.
 */
export async function streamWindowFiles(
  store: ObjectStore,
  w: ReplayWindow,
  sink: ListingSink,
  opts: ListOptions = {},
): Promise<void> {
  const from = w.startUtc.getTime();
  const to = w.endUtc.getTime() + HOUR_MS;
  const concurrency = Math.max(1, opts.concurrency ?? DEFAULT_LIST_CONCURRENCY);
  let listed = 0;

  /** One object of a listing: counted, and passed on when it is a file of the window. */
  const take = async (unit: string, obj: StoredObject): Promise<void> => {
    listed++;
    if (opts.onProgress && listed % PROGRESS_EVERY === 0) opts.onProgress(listed);
    if (obj.key.endsWith('/')) return;
    const fromKey = keyWrittenAt(obj.key);
    const writtenAt = fromKey ?? obj.lastModified;
    const t = writtenAt.getTime();
    if (t < from || t > to) return;
    const pending = sink.file(unit, {
      key: obj.key,
      size: obj.size,
      writtenAt,
      clock: fromKey ? 'key' : 'lastModified',
    });
    if (pending) await pending;
  };

  const dates = datePrefixes(w).map((day) => `${day}/`);
  const listLevel = store.listLevel?.bind(store);
  // Without a one-level listing, each date prefix is one unit (listed whole).
  let units = dates;
  if (listLevel) {
    // Files directly under a date prefix form that prefix's own unit; its
    // sub-prefixes (autoscale groups) are listed as units of their own.
    const subunits: string[][] = dates.map(() => []);
    await forEachLimited([...dates.keys()], concurrency, async (i) => {
      const date = dates[i]!;
      for await (const entry of retrying(`${store.url}/${date}`, () => listLevel(date), opts)) {
        if (isStoredPrefix(entry)) subunits[i]!.push(entry.prefix);
        else await take(date, entry);
      }
      opts.onProgress?.(listed);
      await sink.unitDone(date);
    });
    units = subunits.flat();
  }
  await forEachLimited(units, concurrency, async (unit) => {
    for await (const obj of retrying(`${store.url}/${unit}`, () => store.list(unit), opts)) await take(unit, obj);
    opts.onProgress?.(listed);
    await sink.unitDone(unit);
  });
}

/**
 * The entries of one prefix's listing, listed again after a failure from after
 * the last entry already yielded (a listing is in key order), so none is lost or
 * yielded twice.
 */
async function* retrying<T extends { key: string } | { prefix: string }>(
  /** The prefix's full URL, for messages. */
  prefix: string,
  list: () => AsyncIterable<T>,
  opts: ListOptions,
): AsyncGenerator<T> {
  const attempts = Math.max(1, opts.attempts ?? DEFAULT_ATTEMPTS);
  const nameOf = (e: T): string => ('key' in e ? e.key : e.prefix);
  let last: string | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      for await (const entry of list()) {
        const name = nameOf(entry);
        if (last !== undefined && name <= last) continue;
        last = name;
        yield entry;
      }
      return;
    } catch (err) {
      const message = (err as Error).message;
      if (attempt >= attempts) {
        throw new Error(`listing prefix ${prefix} failed after ${attempt} attempt(s): ${message}`, { cause: err });
      }
      opts.onRetry?.(prefix, attempt, message);
      const base = Math.min(MAX_RETRY_DELAY_MS, (opts.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS) * 2 ** (attempt - 1));
      // Jitter: prefixes throttled together (S3 SlowDown) do not all come back at once.
      await new Promise((resolve) => setTimeout(resolve, base / 2 + Math.random() * (base / 2)));
    }
  }
}
