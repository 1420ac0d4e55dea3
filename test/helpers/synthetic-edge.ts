/**
 * A generated edge bucket for plans of millions of keys: nothing is stored, keys are
 * made as they are listed, in key order, a page of 1,000 at a time with a turn of the
 * event loop between pages (as ListObjectsV2 pages arrive). Layout as on the edge:
 * `YYYYMMDD/<group>/<unix-seconds>.<8 hex>.log.gz`, `perUnit` keys per (day, group),
 * spread evenly over the day. `listLevel` names the groups of a day, like S3's
 * Delimiter listing, so the planner lists (day, group) units in parallel.
 *
 * Every key has an index (`indexOf`), so a test can check "every key exactly once"
 * with one bit per key instead of a set of strings.
 */
import type { Readable } from 'node:stream';
import type { ObjectStore, StoredObject, StoredPrefix } from '../../worker/store/objectstore.js';
import { parseWindow } from '../../driver/window.js';

const PAGE = 1000;
const DAY_MS = 86_400_000;

export interface SyntheticEdgeOptions {
  /** First day with files, e.g. '2023-06-02'. */
  firstDay: string;
  days: number;
  groups: number;
  perUnit: number;
}

export class SyntheticEdgeStore implements ObjectStore {
  readonly url = 'synthetic://edge';
  private readonly dayStarts: number[];
  private readonly dayNames: string[];
  /** ListObjectsV2 requests made (pages). */
  pages = 0;

  constructor(readonly opts: SyntheticEdgeOptions) {
    const first = Date.parse(`${opts.firstDay}T00:00:00Z`);
    this.dayStarts = Array.from({ length: opts.days }, (_, d) => first + d * DAY_MS);
    this.dayNames = this.dayStarts.map((ms) => new Date(ms).toISOString().slice(0, 10).replaceAll('-', ''));
  }

  get totalKeys(): number {
    return this.opts.days * this.opts.groups * this.opts.perUnit;
  }

  static group(g: number): string {
    return `edge-${String(g).padStart(3, '0')}`;
  }

  keyOf(day: number, group: number, i: number): string {
    const secs = Math.floor((this.dayStarts[day]! + Math.floor((i * DAY_MS) / this.opts.perUnit)) / 1000);
    return `${this.dayNames[day]}/${SyntheticEdgeStore.group(group)}/${secs}.${i.toString(16).padStart(8, '0')}.log.gz`;
  }

  /** Compressed size of key i of a unit: 1 KB .. ~5 MB, uneven. */
  sizeOf(i: number): number {
    return 1024 + ((i * 7919) % 4_999_000);
  }

  /** The index (0 .. totalKeys-1) of a key this store lists. */
  indexOf(key: string): number {
    const [dayName, group, base] = key.split('/') as [string, string, string];
    const day = this.dayNames.indexOf(dayName);
    const g = Number(group.slice('edge-'.length));
    const i = parseInt(base.split('.')[1]!, 16);
    if (day < 0 || !(g >= 0 && g < this.opts.groups) || !(i >= 0 && i < this.opts.perUnit)) {
      throw new Error(`not a key of this store: ${key}`);
    }
    return (day * this.opts.groups + g) * this.opts.perUnit + i;
  }

  async *listLevel(prefix: string): AsyncIterable<StoredObject | StoredPrefix> {
    this.pages++;
    await new Promise((resolve) => setImmediate(resolve));
    if (!this.dayNames.includes(prefix.slice(0, -1))) return;
    for (let g = 0; g < this.opts.groups; g++) yield { prefix: `${prefix}${SyntheticEdgeStore.group(g)}/` };
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    const [dayName, group] = prefix.split('/');
    const days = dayName ? [this.dayNames.indexOf(dayName)].filter((d) => d >= 0) : this.dayNames.map((_, d) => d);
    for (const day of days) {
      for (let g = 0; g < this.opts.groups; g++) {
        if (group && SyntheticEdgeStore.group(g) !== group) continue;
        for (let i = 0; i < this.opts.perUnit; i++) {
          if (i % PAGE === 0) {
            this.pages++;
            await new Promise((resolve) => setImmediate(resolve));
          }
          const key = this.keyOf(day, g, i);
          yield { key, size: this.sizeOf(i), lastModified: new Date(0) };
        }
      }
    }
  }

  read(): Promise<Readable> {
    throw new Error('synthetic edge store: listing only');
  }
  readBytes(): Promise<Buffer> {
    throw new Error('synthetic edge store: listing only');
  }
  put(): Promise<void> {
    throw new Error('synthetic edge store: listing only');
  }
  upload(): Promise<{ bytes: number }> {
    throw new Error('synthetic edge store: listing only');
  }
  async exists(): Promise<boolean> {
    return false;
  }
  delete(): Promise<void> {
    throw new Error('synthetic edge store: listing only');
  }
  urlOf(key: string): string {
    return `${this.url}/${key}`;
  }
}

const DAYS = 9;
const GROUPS = 8;

/** A synthetic bucket of at least `keys` keys, 9 days (2023-06-02 .. 2023-06-10 UTC) x 8 groups. */
export function syntheticEdge(keys: number): SyntheticEdgeStore {
  return new SyntheticEdgeStore({
    firstDay: '2023-06-02',
    days: DAYS,
    groups: GROUPS,
    perUnit: Math.ceil(keys / (DAYS * GROUPS)),
  });
}
/** A window whose files are exactly `syntheticEdge`'s: its date prefixes are 20230601 .. 20230611. */
export const SYNTHETIC_WINDOW = parseWindow('2023-06-01 00:00:00', '2023-06-11 00:00:00');
