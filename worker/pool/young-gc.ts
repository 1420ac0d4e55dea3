/**
 * A young-generation collection on demand, for the main thread's chunk reader
 * (spread.ts). That thread allocates almost no JS objects, so V8 seldom runs
 * a collection there, and the Buffers the reader is done with (file reads,
 * gunzip output: all the input's bytes pass through them) stay allocated
 * until V8's external-memory limit (~64 MB) forces a full one. A minor
 * collection after every few MB of input frees them while they are still
 * young. Measured on the benchmark's single file (276 MB, 2 threads): peak
 * RSS 247-253 MB without, 223-225 MB with a collection every 4 MiB.
 *
 * `gc` is V8's own extension: exposed by `node --expose-gc`, or else by
 * turning that flag on now (it applies to contexts created afterwards, such
 * as the one made here to fetch it; jest's leak detector does the same).
 * Where neither works, collecting is left to V8.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (opts: { type: 'minor' | 'major' }) => void;

let gc: Gc | null | undefined;

function exposedGc(): Gc | null {
  const existing = (globalThis as { gc?: unknown }).gc;
  if (typeof existing === 'function') return existing as Gc;
  try {
    setFlagsFromString('--expose-gc');
    const fetched = runInNewContext('gc') as unknown;
    return typeof fetched === 'function' ? (fetched as Gc) : null;
  } catch {
    return null;
  }
}

export function collectYoungGeneration(): void {
  if (gc === undefined) gc = exposedGc();
  gc?.({ type: 'minor' });
}
