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
 */
import { byKey, type ObjectStore } from '../worker/store/objectstore.js';
import { datePrefixes, type ReplayWindow } from './window.js';

export interface EdgeFile {
  key: string;
  size: number;
  /** When the file was written, by the clock named in `clock`. */
  writtenAt: Date;
  clock: 'key' | 'lastModified';
}

export interface ListOptions {
  /** Called with the running count of objects listed (every 1,000 and at the end of each date prefix). */
  onProgress?(n: number): void;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Date prefixes listed at the same time (a month-long replay has ~32). */
const LIST_CONCURRENCY = 8;
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
 * Directory markers (keys ending in `/`) are skipped.
 */
export async function listWindowFiles(
  store: ObjectStore,
  w: ReplayWindow,
  opts: ListOptions = {},
): Promise<EdgeFile[]> {
  const from = w.startUtc.getTime();
  const to = w.endUtc.getTime() + HOUR_MS;
  const prefixes = datePrefixes(w).map((day) => `${day}/`);
  const found: EdgeFile[] = [];
  let listed = 0;

  const listPrefix = async (prefix: string): Promise<void> => {
    for await (const obj of store.list(prefix)) {
      listed++;
      if (opts.onProgress && listed % PROGRESS_EVERY === 0) opts.onProgress(listed);
      if (obj.key.endsWith('/')) continue;
      const fromKey = keyWrittenAt(obj.key);
      const writtenAt = fromKey ?? obj.lastModified;
      const t = writtenAt.getTime();
      if (t >= from && t <= to) {
        found.push({ key: obj.key, size: obj.size, writtenAt, clock: fromKey ? 'key' : 'lastModified' });
      }
    }
    opts.onProgress?.(listed);
  };

  let next = 0;
  const lister = async (): Promise<void> => {
    while (next < prefixes.length) await listPrefix(prefixes[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(LIST_CONCURRENCY, prefixes.length) }, lister));

  // Each key lives under one date prefix, so there are no duplicates to remove.
  found.sort(byKey);
  return found;
}
