/**
 * Splitting a replay's edge files into partitions (one worker task each), balanced by
 * compressed bytes.
 *
 * Method: longest-processing-time-first (LPT).
 * 1. A file larger than `targetBytes` gets a partition of its own (a file is never split).
 * 2. The other files go into n = max(ceil(bytes / targetBytes), ceil(files / maxFiles))
 *    partitions: largest file first (ties: smaller key first), each into the currently
 *    lightest partition that still has room for a file (ties: fewer files, then lower index).
 * 3. Each partition's files are sorted by key, partitions are ordered by their first
 *    key, and ids `p00000`, `p00001`, ... follow that order.
 *
 * Why LPT rather than "sort by key, fill up to the target": filling leaves the last
 * partition with whatever remains (possibly a few bytes), and one straggler partition
 * decides when a replay ends. With LPT, when the heaviest partition got its last file it
 * was the lightest one, so (without maxFiles in play) heaviest − lightest ≤ the size of
 * one file ≤ targetBytes; with many files much smaller than the target the partitions
 * are nearly equal. A partition can exceed `targetBytes` by at most one file (the
 * average is ≤ target). The result depends only on the set of (key, size) pairs, not on
 * input order: the placement order is a total order on (size, key).
 */

import { byKey } from '../worker/store/objectstore.js';

export interface PartitionFile {
  key: string;
  size: number;
}

export interface Partition {
  /** `p` + the partition's index, zero-padded to 5 digits. */
  id: string;
  files: PartitionFile[];
  /** Sum of the files' compressed sizes. */
  bytes: number;
}

export interface PartitionOptions {
  /** Compressed bytes per partition to aim for, e.g. 256 MiB. */
  targetBytes: number;
  /** At most this many files in one partition (a file bigger than the target is alone anyway). */
  maxFiles?: number;
}

interface Bin {
  index: number;
  files: PartitionFile[];
  bytes: number;
}

/** Plan the partitions of a replay; deterministic for the same set of files. */
export function planPartitions(files: readonly PartitionFile[], opts: PartitionOptions): Partition[] {
  const { targetBytes } = opts;
  const maxFiles = opts.maxFiles ?? Number.POSITIVE_INFINITY;
  if (!(targetBytes > 0)) throw new RangeError(`targetBytes must be positive, got ${targetBytes}`);
  if (!(maxFiles >= 1)) throw new RangeError(`maxFiles must be at least 1, got ${maxFiles}`);

  const sorted = files.map((f) => ({ key: f.key, size: f.size })).sort(byKey);
  for (let i = 0; i < sorted.length; i++) {
    const f = sorted[i];
    if (!Number.isFinite(f.size) || f.size < 0) throw new RangeError(`file ${f.key} has an invalid size ${f.size}`);
    // Reading a file twice would load its rows twice.
    if (i > 0 && sorted[i - 1].key === f.key) throw new Error(`edge file ${f.key} is listed twice`);
  }

  const bins: Bin[] = [];
  const rest: PartitionFile[] = [];
  for (const f of sorted) {
    if (f.size > targetBytes) bins.push({ index: -1, files: [f], bytes: f.size });
    else rest.push(f);
  }

  if (rest.length > 0) {
    const total = rest.reduce((sum, f) => sum + f.size, 0);
    const n = Math.max(1, Math.ceil(total / targetBytes), Math.ceil(rest.length / maxFiles));
    const heap = new LightestFirst();
    for (let i = 0; i < n; i++) {
      const bin: Bin = { index: i, files: [], bytes: 0 };
      bins.push(bin);
      heap.push(bin);
    }
    rest.sort((a, b) => b.size - a.size || byKey(a, b));
    for (const f of rest) {
      // n * maxFiles >= rest.length, so a bin with room always remains.
      const bin = heap.pop();
      bin.files.push(f);
      bin.bytes += f.size;
      if (bin.files.length < maxFiles) heap.push(bin);
    }
  }

  const used = bins.filter((b) => b.files.length > 0);
  for (const b of used) b.files.sort(byKey);
  used.sort((a, b) => byKey(a.files[0], b.files[0]));
  return used.map((b, i) => ({ id: `p${String(i).padStart(5, '0')}`, files: b.files, bytes: b.bytes }));
}

/** Binary min-heap of bins by (bytes, file count, index): equal-byte bins (empty files) share files out. */
class LightestFirst {
  private readonly items: Bin[] = [];

  private static lighter(a: Bin, b: Bin): boolean {
    if (a.bytes !== b.bytes) return a.bytes < b.bytes;
    if (a.files.length !== b.files.length) return a.files.length < b.files.length;
    return a.index < b.index;
  }

  push(bin: Bin): void {
    const items = this.items;
    let i = items.push(bin) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!LightestFirst.lighter(items[i], items[parent])) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }

  pop(): Bin {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined) throw new Error('no partition has room left');
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && LightestFirst.lighter(items[l], items[m])) m = l;
        if (r < items.length && LightestFirst.lighter(items[r], items[m])) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m], items[i]];
        i = m;
      }
    }
    return top;
  }
}
