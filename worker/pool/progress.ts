/**
 * Live progress shared by the transform threads without messages: each thread
 * adds to its own slots of a SharedArrayBuffer, the main thread sums them.
 */
export const PROGRESS_SLOTS = 4;
export const MAX_THREAD_SLOTS = 256;
/** 0: decompressed bytes, 1: lines, 2: input files finished */
export type ProgressSlot = 0 | 1 | 2;

export interface ProgressTotals {
  bytes: number;
  lines: number;
  files: number;
}

export function createProgressBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(MAX_THREAD_SLOTS * PROGRESS_SLOTS * Float64Array.BYTES_PER_ELEMENT);
}

export function readProgress(buf: SharedArrayBuffer): ProgressTotals {
  const view = new Float64Array(buf);
  const totals = { bytes: 0, lines: 0, files: 0 };
  for (let t = 0; t < MAX_THREAD_SLOTS; t++) {
    totals.bytes += view[t * PROGRESS_SLOTS] ?? 0;
    totals.lines += view[t * PROGRESS_SLOTS + 1] ?? 0;
    totals.files += view[t * PROGRESS_SLOTS + 2] ?? 0;
  }
  return totals;
}
