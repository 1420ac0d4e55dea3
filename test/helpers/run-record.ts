/**
 * A run's planned partitions as the driver reads them: from the plan files its run
 * record names (driver/plan.ts), or inline in records of older versions.
 */
import type { RunRecord } from '../../driver/manifest.js';
import type { Partition } from '../../driver/partition.js';
import { readPlan } from '../../driver/plan.js';
import type { ObjectStore } from '../../worker/store/objectstore.js';

export async function readRunRecord(store: ObjectStore, runtag: string): Promise<RunRecord> {
  return JSON.parse((await store.readBytes(`${runtag}/_run.json`)).toString()) as RunRecord;
}

export async function plannedPartitions(store: ObjectStore, runtag: string): Promise<Partition[]> {
  const partitions: Partition[] = [];
  for await (const p of readPlan(store, await readRunRecord(store, runtag))) partitions.push(p);
  return partitions;
}
