/**
 * An executor carries partition tasks to workers and reports each partition
 * that finished (its success manifest is then in the output store).
 */
import type { PartitionResult, PartitionTask } from '../../worker/partition-task.js';
import type { ObjectStore } from '../../worker/store/objectstore.js';
import { successKey } from '../manifest.js';

export interface ExecutorHooks {
  onPartitionDone(result: PartitionResult): void;
  onPartitionRetry(partition: string, attempt: number, error: string): void;
}

/**
 * The tasks of a run: an array, or (a replay) an async iterable reading the streamed
 * plan, so that no executor needs every partition's keys in memory at once.
 */
export type TaskSource = readonly PartitionTask[] | AsyncIterable<PartitionTask>;

/** What `describe` needs of the tasks: their number and bytes, and one of them. */
export interface TaskSummary {
  partitions: number;
  bytes: number;
  first?: PartitionTask;
}

export interface Executor {
  readonly name: string;
  /** What `--plan` prints: what would be launched, without launching anything. */
  describe(tasks: readonly PartitionTask[] | TaskSummary): string[];
  /** Runs every task; resolves with the partitions that failed after retries. */
  run(tasks: TaskSource, hooks: ExecutorHooks): Promise<{ failed: { partition: string; error: string }[] }>;
  /** Live transform progress where the executor can see it (local threads). */
  progress?(): { bytes: number; lines: number; files: number };
  close(): Promise<void>;
}

export function summarizeTasks(tasks: readonly PartitionTask[] | TaskSummary): TaskSummary {
  if (!Array.isArray(tasks)) return tasks as TaskSummary;
  const list = tasks as readonly PartitionTask[];
  return { partitions: list.length, bytes: list.reduce((s, t) => s + t.partition.bytes, 0), first: list[0] };
}

/** One iterator over a task source: arrays and async iterables alike. */
export function taskIterator<T>(items: readonly T[] | AsyncIterable<T>): AsyncIterator<T> {
  if (Array.isArray(items)) {
    const list = items as readonly T[];
    let i = 0;
    return {
      next: async () => (i < list.length ? { done: false, value: list[i++] as T } : { done: true, value: undefined }),
    };
  }
  return (items as AsyncIterable<T>)[Symbol.asyncIterator]();
}

/**
 * The next free number of a numbered directory under `prefix` (e.g. `<runtag>/_emr/`):
 * a resumed run launches a new step or application for the partitions still missing,
 * and keeps what the earlier ones wrote.
 */
export async function nextNumberedDir(store: ObjectStore, prefix: string): Promise<number> {
  let max = 0;
  for await (const o of store.list(prefix)) {
    const m = /^(\d+)\//.exec(o.key.slice(prefix.length));
    if (m) max = Math.max(max, Number(m[1]));
  }
  return max + 1;
}

/**
 * Reports each partition of `pending` whose success manifest has appeared under
 * `<runtag>/_success/`, and removes it from `pending`: how the executors that hand
 * the partitions to a cluster (EMR, Spark) learn which ones finished.
 */
export async function collectSuccessManifests(
  store: ObjectStore,
  runtag: string,
  pending: Map<string, unknown>,
  onDone: (result: PartitionResult) => void,
): Promise<void> {
  const prefix = `${runtag}/_success/`;
  for await (const o of store.list(prefix)) {
    const id = o.key.slice(prefix.length).replace(/\.json$/, '');
    if (!pending.has(id) || o.key !== successKey(runtag, id)) continue;
    const result = JSON.parse((await store.readBytes(o.key)).toString('utf8')) as PartitionResult;
    pending.delete(id);
    onDone(result);
  }
}
