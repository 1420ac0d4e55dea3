/**
 * An executor carries partition tasks to workers and reports each partition
 * that finished (its success manifest is then in the output store).
 */
import type { PartitionResult, PartitionTask } from '../../worker/partition-task.js';

export interface ExecutorHooks {
  onPartitionDone(result: PartitionResult): void;
  onPartitionRetry(partition: string, attempt: number, error: string): void;
}

export interface Executor {
  readonly name: string;
  /** What `--plan` prints: what would be launched, without launching anything. */
  describe(tasks: PartitionTask[]): string[];
  /** Runs every task; resolves with the partitions that failed after retries. */
  run(tasks: PartitionTask[], hooks: ExecutorHooks): Promise<{ failed: { partition: string; error: string }[] }>;
  /** Live transform progress where the executor can see it (local threads). */
  progress?(): { bytes: number; lines: number; files: number };
  close(): Promise<void>;
}

/** Runs `fn` over items with at most `limit` in flight. */
export async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  });
  await Promise.all(lanes);
}
