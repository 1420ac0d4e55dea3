/** `--executor local`: partitions run on this machine's transform thread pool. */
import { formatBytes } from '../format.js';
import { createTransformPool, type TransformPool } from '../../worker/pool/pool.js';
import { newAttemptId, runPartition } from '../../worker/partition-task.js';
import { forEachLimited } from '../concurrency.js';
import { summarizeTasks, type Executor } from './executor.js';

export const LOCAL_ATTEMPTS = 3;

export function createLocalExecutor(opts: { threads: number; concurrentPartitions?: number }): Executor {
  let pool: TransformPool | null = null;
  return {
    name: 'local',
    describe(tasks) {
      const { partitions, bytes } = summarizeTasks(tasks);
      return [
        `executor local: ${opts.threads} transform thread(s) on this machine`,
        `${partitions} partition(s) to run, ${formatBytes(bytes)} compressed input`,
      ];
    },
    async run(tasks, hooks) {
      pool ??= createTransformPool(opts.threads);
      const active = pool;
      const failed: { partition: string; error: string }[] = [];
      // Two partitions at a time keep every thread busy while the first one's
      // last, slowest group finishes, and commit partitions early.
      await forEachLimited(tasks, opts.concurrentPartitions ?? 2, async (task) => {
        for (let attempt = 1; ; attempt++) {
          try {
            hooks.onPartitionDone(await runPartition({ ...task, attempt: newAttemptId() }, active));
            return;
          } catch (err) {
            const message = (err as Error).message;
            if (attempt >= LOCAL_ATTEMPTS) {
              failed.push({ partition: task.partition.id, error: message });
              return;
            }
            hooks.onPartitionRetry(task.partition.id, attempt, message);
          }
        }
      });
      return { failed };
    },
    progress: () => pool?.progress() ?? { bytes: 0, lines: 0, files: 0 },
    async close() {
      await pool?.close();
      pool = null;
    },
  };
}
