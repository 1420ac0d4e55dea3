/**
 * The commit protocol's files (SPEC section 5), all under the runtag prefix:
 * - `_run.json`: the run's own record (window, tables, plan files, transform digest), written before any task;
 * - `_plan/<n>.jsonl`: the partitions, one per line, written while the listing runs (plan.ts);
 * - `_success/<partition>.json`: written last by an attempt that finished; names exactly its files;
 * - `_load/<table>.manifest` (and, for very large tables, `_load/<table>.parts/<n>.manifest`): Redshift
 *   MANIFESTs of one table's files, built only from success manifests (commit.ts).
 * Output files of attempts that died are never named by any of these, so they are never loaded.
 */
import type { ObjectStore } from '../worker/store/objectstore.js';
import type { TransformDigest } from '../worker/transform/digest.js';
import type { Partition } from './partition.js';
import type { PlanIndex } from './plan.js';

export { successKey, type SuccessManifest } from '../worker/partition-task.js';
export { redshiftManifest } from '../worker/warehouse/redshift-manifest.js';

export interface RunRecord {
  runtag: string;
  window: { start: string; end: string };
  tables: string[];
  edge: string;
  configSource: string;
  /** The streamed plan's files (plan.ts); absent in records of older versions. */
  plan?: PlanIndex;
  /** Every partition inline: records of older versions only (read by plan.ts `readPlan`). */
  partitions?: Partition[];
  createdAt: string;
  /** What the rows are made with (driver/run-digest.ts); absent in records of older versions. */
  transform?: TransformDigest;
}

export const runRecordKey = (runtag: string): string => `${runtag}/_run.json`;
export const loadManifestKey = (runtag: string, table: string): string => `${runtag}/_load/${table}.manifest`;

export async function readJson<T>(store: ObjectStore, key: string): Promise<T | null> {
  if (!(await store.exists(key))) return null;
  const text = (await store.readBytes(key)).toString('utf8');
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`${store.urlOf(key)} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

export async function writeJson(store: ObjectStore, key: string, value: unknown): Promise<void> {
  await store.put(key, JSON.stringify(value, null, 1) + '\n');
}
