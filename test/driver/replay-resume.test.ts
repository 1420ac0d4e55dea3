/**
 * Resuming end to end (the `spade` CLI, s3rver, a throwaway PostgreSQL): a run
 * record of an earlier version, with every partition inline and no plan files,
 * still resumes: the missing partition is redone, the others are not, and the
 * load gives the rows a fresh run gives.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { plannedPartitions, readRunRecord } from '../helpers/run-record.js';
import { startReplayWorld, tableSnapshot } from '../helpers/replay-env.js';

const START = '2023-11-05 00:30:00';
const END = '2023-11-05 03:00:00';
const TABLES = ['login', 'video_play'];

test('a run record of an earlier version (partitions inline) resumes and loads what a fresh run loads', async (t) => {
  const w = await startReplayWorld(t, {
    startSec: Date.UTC(2023, 10, 5, 5, 0, 0) / 1000,
    endSec: Date.UTC(2023, 10, 5, 13, 0, 0) / 1000,
    events: 2000,
    dbName: 'replay_resume',
  });
  if (!w) return;
  const snapshots = (): Promise<string[][]> => Promise.all(TABLES.map((table) => tableSnapshot(w, table)));
  const args = [START, END, ...TABLES, '--partition-mb', '0.05'];

  const transformed = await w.replay([...args, '--runtag', 'old', '--skip-ace-upload']);
  assert.equal(transformed.code, 0, transformed.stderr);
  // Rewritten as an earlier version wrote it: the partitions inside the record, no _plan/ files.
  const record = await readRunRecord(w.out, 'old');
  const partitions = await plannedPartitions(w.out, 'old');
  assert.ok(partitions.length >= 3, `several partitions expected, got ${partitions.length}`);
  assert.ok(record.plan, 'this version writes plan files');
  await w.out.put('old/_run.json', JSON.stringify({ ...record, plan: undefined, partitions }, null, 1));
  for await (const o of w.out.list('old/_plan/')) await w.out.delete(o.key);
  // A crash before one partition finished.
  const redo = partitions[1]!.id;
  await w.out.delete(`old/_success/${redo}.json`);
  const kept = (await w.out.readBytes(`old/_success/${partitions[0]!.id}.json`)).toString();

  const resumed = await w.replay([...args, '--runtag', 'old']);
  assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
  assert.match(resumed.stderr, new RegExp(`${partitions.length - 1} partition\\(s\\) already done, resuming`));
  assert.ok(await w.out.exists(`old/_success/${redo}.json`), 'the missing partition was redone');
  assert.equal((await w.out.readBytes(`old/_success/${partitions[0]!.id}.json`)).toString(), kept);
  assert.match(resumed.stdout, /login\s+loaded/);
  const afterResume = await snapshots();

  const fresh = await w.replay([...args, '--runtag', 'fresh']);
  assert.equal(fresh.code, 0, fresh.stdout + fresh.stderr);
  assert.deepEqual(await snapshots(), afterResume);
  assert.ok(afterResume[0]!.length > 0);
});
