/**
 * `npm run bench:plan [-- --keys 10000000 --tables 20 --list-concurrency 8]`: the
 * driver's side of a replay of millions of edge files, no transform.
 *
 * 1. plan: a synthetic edge bucket of `--keys` keys (test/helpers/synthetic-edge.ts:
 *    9 days x 8 autoscale groups, ListObjectsV2-like pages of 1,000 with a turn of the
 *    event loop between pages, 1 KB .. 5 MB files) listed in parallel and partitioned
 *    as the keys arrive (driver/plan.ts, 256 MB partitions), the plan written to a
 *    local output directory, the run record with it.
 * 2. success manifests, a stand-in for the workers (not the driver's work, timed
 *    apart): one per partition, naming one row file per table (`--tables`).
 * 3. commit: what a replay does after the transform: the run record and plan read back,
 *    the `_success/` listing, every success manifest read in plan order, digests
 *    checked, per-table load manifests written in parts (driver/commit.ts).
 * Printed: wall time per phase, keys/s of plan + commit (target >= 100k keys/s),
 * peak RSS of this process (target < 1 GB) and the RSS after each phase.
 * Output goes to a scratch directory (RAM-backed /dev/shm when present: its files
 * do not count in this process's RSS), removed at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { commitRun } from '../driver/commit.js';
import { readJson, runRecordKey, successKey, writeJson, type RunRecord } from '../driver/manifest.js';
import type { Partition } from '../driver/partition.js';
import { planWindow, readPlan } from '../driver/plan.js';
import { formatBytes } from '../driver/format.js';
import { LocalStore } from '../worker/store/local.js';
import type { TransformDigest } from '../worker/transform/digest.js';
import { emptyCounts } from '../worker/transform/outcomes.js';
import { SYNTHETIC_WINDOW, syntheticEdge } from '../test/helpers/synthetic-edge.js';
import { scratchDir } from '../test/helpers/scratch-dir.js';
import { positiveNumber, say } from './bench/args.js';

const keys = positiveNumber('keys', 1_000_000);
const tableCount = positiveNumber('tables', 20);
const listConcurrency = positiveNumber('list-concurrency', 8);
const RUNTAG = 'bench';
const DIGEST: TransformDigest = {
  format: 1,
  config: 'sha256:bench',
  geoipCity: null,
  geoipAsn: null,
  userIdMapping: null,
  digest: 'sha256:bench',
};

const mb = (kb: number): string => `${(kb / 1024).toFixed(0)} MB`;
const rssNowKb = (): number => Math.round(process.memoryUsage().rss / 1024);
const rssAfter: string[] = [];
const time = async <T>(name: string, f: () => Promise<T>): Promise<[T, number]> => {
  const started = process.hrtime.bigint();
  const out = await f();
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  rssAfter.push(`${name} ${mb(rssNowKb())}`);
  return [out, secs];
};

const dir = mkdtempSync(join(scratchDir(), 'spade-bench-plan-'));
try {
  const edge = syntheticEdge(keys);
  const out = new LocalStore(dir);
  const tables = Array.from({ length: tableCount }, (_, t) => `table_${String(t).padStart(3, '0')}`);
  say(
    `bench:plan: ${edge.totalKeys} keys (9 days x 8 groups), ${tableCount} tables, list concurrency ${listConcurrency}`,
  );
  say(`scratch: ${dir}`);

  const [planned, planSecs] = await time('plan', async () => {
    const p = await planWindow(edge, out, RUNTAG, SYNTHETIC_WINDOW, {
      targetBytes: 256 * 1024 * 1024,
      concurrency: listConcurrency,
    });
    const record: RunRecord = {
      runtag: RUNTAG,
      window: { start: SYNTHETIC_WINDOW.start, end: SYNTHETIC_WINDOW.end },
      tables,
      edge: edge.url,
      configSource: 'bench',
      plan: p.index!,
      createdAt: new Date().toISOString(),
      transform: DIGEST,
    };
    await writeJson(out, runRecordKey(RUNTAG), record);
    return p;
  });
  say(
    `plan: ${planned.totals.files} files, ${formatBytes(planned.totals.bytes)}, ${planned.totals.partitions} partitions ` +
      `in ${planned.index!.planFiles.length} plan files, ${planSecs.toFixed(1)} s`,
  );

  const [, workerSecs] = await time('success-manifests', async () => {
    for await (const p of readPlan(out, (await readJson<RunRecord>(out, runRecordKey(RUNTAG)))!)) {
      await writeJson(out, successKey(RUNTAG, p.id), {
        runtag: RUNTAG,
        partition: p.id,
        attempt: 'a1',
        files: tables.map((t) => ({
          kind: 'rows',
          event: t,
          key: `${RUNTAG}/${p.id}/a1/${t}.tsv.gz`,
          bytes: 1,
          rows: 1,
        })),
        counts: emptyCounts(),
        inputErrors: [],
        transformDigest: DIGEST,
        finishedAt: new Date().toISOString(),
      });
    }
  });
  say(`success manifests (stand-in for the workers, not timed as driver work): ${workerSecs.toFixed(1)} s`);

  const [committed, commitSecs] = await time('commit', async () => {
    const record = (await readJson<RunRecord>(out, runRecordKey(RUNTAG)))!;
    // What the replay does before committing: which partitions finished (one listing), then one pass.
    let done = 0;
    for await (const o of out.list(`${RUNTAG}/_success/`)) if (o.key.endsWith('.json')) done++;
    if (done !== record.plan!.partitions)
      throw new Error(`${done} success manifests for ${record.plan!.partitions} partitions`);
    async function* partitions(): AsyncGenerator<Partition> {
      yield* readPlan(out, record);
    }
    return commitRun({ output: out, runtag: RUNTAG, tables, partitions: partitions(), digest: DIGEST });
  });
  let entries = 0;
  let parts = 0;
  for (const m of committed.manifests.values()) {
    entries += m.files;
    parts += m.keys.length;
  }
  say(
    `commit: ${entries} load manifest entries in ${parts} manifest(s) over ${tableCount} tables, ${commitSecs.toFixed(1)} s`,
  );

  const driverSecs = planSecs + commitSecs;
  const peakKb = process.resourceUsage().maxRSS;
  say('');
  say(`| keys | plan s | commit s | plan+commit s | keys/s | peak RSS |`);
  say(`| ---: | ---: | ---: | ---: | ---: | ---: |`);
  say(
    `| ${edge.totalKeys} | ${planSecs.toFixed(1)} | ${commitSecs.toFixed(1)} | ${driverSecs.toFixed(1)} | ` +
      `${Math.round(edge.totalKeys / driverSecs)} | ${mb(peakKb)} |`,
  );
  say(`RSS after each phase: ${rssAfter.join(', ')}`);
  say(
    `targets: peak RSS < 1 GB: ${peakKb < 1024 * 1024 ? 'met' : 'NOT met'}; >= 100k keys/s: ` +
      `${edge.totalKeys / driverSecs >= 100_000 ? 'met' : 'NOT met'}`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
