/**
 * The transform thread pool (piscina). The unit of work is large: a group of
 * edge files, or a stream of multi-megabyte chunks of inputs read on the main
 * thread (spread.ts), never one event.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { createProgressBuffer, readProgress, type ProgressTotals } from './progress.js';
import { sharedGeoIpFiles } from './shared-geoip.js';
import type { TaskResult, TransformTask } from './thread.js';

export interface TransformPool {
  readonly threads: number;
  run(task: TransformTask): Promise<TaskResult>;
  progress(): ProgressTotals;
  close(): Promise<void>;
}

/** Young-generation heap of each transform thread, in MB (see createTransformPool). */
const YOUNG_GENERATION_MB = 24;

export function defaultThreads(): number {
  return Math.max(1, availableParallelism());
}

export function createTransformPool(threads: number = defaultThreads()): TransformPool {
  const progress = createProgressBuffer();
  const piscina = new Piscina({
    filename: new URL('./thread.js', import.meta.url).href,
    minThreads: threads,
    maxThreads: threads,
    // No queue limit: queued tasks are descriptions, not data (chunks are sent
    // only to a running task that asks for one, see spread.ts).
    idleTimeout: 60_000,
    // V8's young generation per thread (its default is larger) is most of a thread's
    // resident memory. At 24 MB, 2 threads on the benchmark corpus peaked at
    // ~268 MB instead of ~300 MB, for a few percent more scavenging (within run noise).
    resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
    workerData: { progress },
  });
  return {
    threads,
    async run(task) {
      // A chunks task's port moves to its thread.
      const transferList = task.input.kind === 'chunks' ? [task.input.port] : undefined;
      // The GeoIP databases go along in shared memory: one copy for every thread.
      const sharedGeoIp = await sharedGeoIpFiles(task.settings);
      return piscina.run(sharedGeoIp ? { ...task, sharedGeoIp } : task, { transferList }) as Promise<TaskResult>;
    },
    progress: () => readProgress(progress),
    close: () => piscina.close(),
  };
}
