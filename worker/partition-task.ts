/**
 * The worker side of a replay, the same for every executor: given a partition
 * task (edge keys + settings + runtag + attempt id), transform its files with
 * the thread pool, then write the partition's success manifest, last.
 */
import { randomBytes } from 'node:crypto';
import type { WrittenFile } from './output/writers.js';
import type { TransformPool } from './pool/pool.js';
import { filesPerTask, spreadInputs, urlInputs } from './pool/spread.js';
import type { TaskResult, TransformTask } from './pool/thread.js';
import type { TransformDigest } from './transform/digest.js';
import { openStore } from './store/location.js';
import { emptyCounts, mergeCounts } from './transform/outcomes.js';
import type { TransformSettings } from './transform/setup.js';

/** The small serialisable contract between driver and worker. */
export interface PartitionTask {
  runtag: string;
  partition: { id: string; files: { key: string; size: number }[]; bytes: number };
  /** Edge store location (directory or s3://bucket/prefix); keys are relative to it. */
  edge: string;
  /** Output store location; files go under `<runtag>/`. */
  output: string;
  settings: TransformSettings;
  rotateBytes?: number;
  /** Set by whoever launches the attempt; generated when absent. */
  attempt?: string;
}

export interface PartitionResult {
  partition: string;
  attempt: string;
  files: WrittenFile[];
  counts: ReturnType<typeof emptyCounts>;
  /** Damaged edge files (key, bytes and lines read, error): transformed up to the damage only. */
  inputErrors: TaskResult['inputErrors'];
  /**
   * What this attempt's rows were made with, as its worker computed it. Absent
   * in manifests of older versions and of the continuous processor's batches.
   */
  transformDigest?: TransformDigest;
}

/** What a finished attempt writes, last: exactly its files, and its counts. */
export interface SuccessManifest extends PartitionResult {
  runtag: string;
  finishedAt: string;
}

/** Where an attempt that finished records its files: the only way files become loadable. */
export const successKey = (runtag: string, partition: string): string => `${runtag}/_success/${partition}.json`;

export function newAttemptId(): string {
  return `a${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

/** Splits files into at most `groups` groups of similar compressed size (largest first into the lightest). */
export function groupFiles<T extends { size: number }>(files: T[], groups: number): T[][] {
  const n = Math.max(1, Math.min(groups, files.length));
  const bins = Array.from({ length: n }, () => ({ bytes: 0, files: [] as T[] }));
  for (const f of [...files].sort((a, b) => b.size - a.size)) {
    let lightest = bins[0]!;
    for (const b of bins) if (b.bytes < lightest.bytes) lightest = b;
    lightest.files.push(f);
    lightest.bytes += f.size;
  }
  return bins.filter((b) => b.files.length > 0).map((b) => b.files);
}

export async function runPartition(task: PartitionTask, pool: TransformPool): Promise<PartitionResult> {
  const attempt = task.attempt ?? newAttemptId();
  const edge = openStore(task.edge);
  const output = openStore(task.output);
  const taskOutput = (tag: string): TransformTask['output'] => ({
    location: task.output,
    prefix: task.runtag,
    fileTag: `${task.partition.id}-${attempt}-${tag}`,
    rotateBytes: task.rotateBytes,
  });
  const urls = task.partition.files.map((f) => edge.urlOf(f.key));
  // Many files: enough groups to keep every thread busy, files of a group
  // processed in turn. A few (one large file): read here and spread over
  // every thread in chunks (see filesPerTask).
  const results = filesPerTask(urls.length, pool.threads)
    ? await Promise.all(
        groupFiles(task.partition.files, pool.threads).map((files, i) =>
          pool.run({
            settings: task.settings,
            input: { kind: 'urls', urls: files.map((f) => edge.urlOf(f.key)) },
            output: taskOutput(`g${i}`),
          }),
        ),
      )
    : [await spreadInputs(pool, urlInputs(urls), (i) => ({ settings: task.settings, output: taskOutput(`c${i}`) }))];
  // Every group ran with the same settings on this machine, so with one digest.
  const digests = new Set(results.map((r) => r.digest.digest));
  if (digests.size > 1)
    throw new Error(`partition ${task.partition.id}: its groups were transformed with different settings`);
  const keyOf = new Map(task.partition.files.map((f) => [edge.urlOf(f.key), f.key]));
  const result: PartitionResult = {
    partition: task.partition.id,
    attempt,
    files: results.flatMap((r) => r.files),
    counts: results.reduce((acc, r) => mergeCounts(acc, r.counts), emptyCounts()),
    inputErrors: results.flatMap((r) => r.inputErrors).map((e) => ({ ...e, key: keyOf.get(e.source) ?? e.source })),
    transformDigest: results[0]?.digest,
  };
  // Written last: its existence is what makes this attempt's files loadable.
  await output.put(
    successKey(task.runtag, task.partition.id),
    JSON.stringify(
      { runtag: task.runtag, ...result, finishedAt: new Date().toISOString() } satisfies SuccessManifest,
      null,
      1,
    ) + '\n',
  );
  return result;
}
