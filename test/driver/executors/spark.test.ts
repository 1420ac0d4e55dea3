/**
 * `--executor spark` end to end on a real Spark standalone cluster started here
 * on loopback (a master and two workers, pinned PySpark from .venv-spark/),
 * s3rver edge and output buckets, a throwaway PostgreSQL warehouse, and the real
 * CLI (replay.sh and `spade replay`) as child processes. Each worker node sees
 * the buckets through a proxy of its own (test/helpers/s3proxy.ts), so a test
 * can make an edge key unreadable or stop a node right before its commit.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { SuccessManifest } from '../../../driver/manifest.js';
import type { Partition } from '../../../driver/partition.js';
import { repoRoot } from '../../helpers/fixtures.js';
import {
  DEMO_CONFIG,
  SPADE,
  startReplayWorld,
  tableSnapshot,
  type CliResult,
  type ReplayWorld,
} from '../../helpers/replay-env.js';
import { plannedPartitions } from '../../helpers/run-record.js';
import { startS3Proxy } from '../../helpers/s3proxy.js';
import { startSparkCluster, type SparkCluster, type SparkWorker } from '../../helpers/spark.js';

const START = '2023-11-05 00:30:00';
const END = '2023-11-05 03:00:00';
const TABLES = ['login', 'video_play'];
/** Tiny partitions (MB): several per run, so both workers get some. */
const PARTITION_MB = '0.04';
const CORES = 2;

function sparkFlags(cluster: SparkCluster): string[] {
  return [
    '--spark-submit',
    cluster.sparkSubmit,
    '--spark-spade-cmd',
    `${process.execPath} ${SPADE}`,
    '--spark-cores',
    String(CORES),
    '--spark-conf',
    'spark.executor.memory=512m',
    '--spark-conf',
    'spark.driver.memory=512m',
    '--partition-mb',
    PARTITION_MB,
  ];
}

/** replay.sh itself, as a user runs it. */
function replaySh(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(repoRoot(), 'replay.sh'), args, { env: { ...process.env, ...env }, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end();
  });
}

async function snapshots(world: ReplayWorld): Promise<string[][]> {
  return Promise.all(TABLES.map((t) => tableSnapshot(world, t)));
}

async function clearTables(world: ReplayWorld): Promise<void> {
  for (const t of TABLES) await world.query(`DELETE FROM physical."${t}"`);
}

async function runRecord(world: ReplayWorld, runtag: string): Promise<{ partitions: Partition[] }> {
  return { partitions: await plannedPartitions(world.out, runtag) };
}

async function successManifests(world: ReplayWorld, runtag: string): Promise<Map<string, SuccessManifest>> {
  const out = new Map<string, SuccessManifest>();
  for await (const o of world.out.list(`${runtag}/_success/`)) {
    const m = JSON.parse((await world.out.readBytes(o.key)).toString()) as SuccessManifest;
    out.set(m.partition, m);
  }
  return out;
}

interface TaskSpan {
  partition: string;
  start: number;
  end: number;
}

/** The job's own start/end record of every partition attempt an executor of this worker ran. */
function spans(worker: SparkWorker): TaskSpan[] {
  const open = new Map<string, number>();
  const out: TaskSpan[] = [];
  for (const m of worker.executorLogs().matchAll(/^spade-spark: partition (\S+) (start|end) ([\d.]+) pid (\d+)$/gm)) {
    const key = `${m[1]} ${m[4]}`;
    if (m[2] === 'start') open.set(key, Number(m[3]));
    else {
      out.push({ partition: m[1]!, start: open.get(key)!, end: Number(m[3]) });
      open.delete(key);
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

/** Partition attempts started on the cluster's workers so far. */
function startedAttempts(cluster: SparkCluster): number {
  return cluster.workers.reduce(
    (n, w) => n + (w.executorLogs().match(/^spade-spark: partition \S+ start /gm) ?? []).length,
    0,
  );
}

test('replay with --executor spark on a standalone cluster', async (t0) => {
  const world = await startReplayWorld(t0, {
    startSec: Date.UTC(2023, 10, 5, 7, 0, 0) / 1000,
    endSec: Date.UTC(2023, 10, 5, 11, 30, 0) / 1000,
    events: 3000,
    dbName: 'spark_e2e',
  });
  if (!world) return;
  const proxies = [await startS3Proxy(t0, world.s3.endpoint), await startS3Proxy(t0, world.s3.endpoint)];
  const cluster = await startSparkCluster(t0, {
    cores: CORES,
    workers: proxies.map((p) => ({ env: { ...world.env, SPADE_S3_ENDPOINT: p.endpoint } })),
  });
  if (!cluster) return;
  const env = { ...world.env, ...cluster.env };
  let local: string[][] = [];

  await t0.test('the same rows as the local executor, one partition at a time per worker', async () => {
    const base = await world.replay([START, END, ...TABLES, '--runtag', 'local1', '--partition-mb', PARTITION_MB]);
    assert.equal(base.code, 0, base.stderr);
    local = await snapshots(world);
    assert.ok(
      local.every((rows) => rows.length > 0),
      'the window holds rows',
    );

    await clearTables(world);
    const run = await world.replay(
      [
        START,
        END,
        ...TABLES,
        '--runtag',
        'spark1',
        '--executor',
        'spark',
        '--master',
        cluster.master,
        ...sparkFlags(cluster),
      ],
      env,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await snapshots(world), local);
    const planned = (await runRecord(world, 'spark1')).partitions.map((p) => p.id).sort();
    assert.ok(planned.length >= 4, `several partitions (got ${planned.length})`);
    assert.deepEqual([...(await successManifests(world, 'spark1')).keys()].sort(), planned);
    assert.match(run.stderr, /Spark application done/);

    // The job's records on each worker: every partition ran, both workers took
    // some, and no two overlapped on one worker.
    const perWorker = cluster.workers.map(spans);
    assert.deepEqual(
      perWorker
        .flat()
        .map((s) => s.partition)
        .sort(),
      planned,
    );
    for (const [i, list] of perWorker.entries()) {
      assert.ok(list.length > 0, `worker ${i} ran partitions`);
      for (let k = 1; k < list.length; k++) {
        assert.ok(
          list[k]!.start >= list[k - 1]!.end,
          `worker ${i}: partition ${list[k]!.partition} started before ${list[k - 1]!.partition} ended`,
        );
      }
    }
  });

  await t0.test("the original's positional form through replay.sh: MASTER_IP REDSHIFT_TARGET START END", async () => {
    await clearTables(world);
    const args = [
      `127.0.0.1:${cluster.masterPort}`,
      world.rsurl,
      START,
      END,
      ...TABLES,
      '--runtag',
      'positional1',
      '--edge',
      's3://edge',
      '--output',
      's3://out',
      '--config',
      DEMO_CONFIG,
      '--log-file',
      '',
      ...sparkFlags(cluster),
    ];
    const plan = await replaySh([...args, '--plan'], env);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /executor spark: one application on spark:\/\/127\.0\.0\.1:\d+/);
    const submit = /spark-submit: (.*)/.exec(plan.stdout)?.[1] ?? '';
    assert.ok(submit.startsWith(`${cluster.sparkSubmit} --master spark://127.0.0.1:${cluster.masterPort} `), submit);
    assert.match(submit, / --conf spark\.task\.cpus=2 /);
    assert.match(submit, /spark_job\.py '\S+\/positional1\/<n>\/tasks\.jsonl' '.*spade\.js'$/);
    assert.deepEqual(await snapshots(world), [[], []], '--plan changed nothing');

    const run = await replaySh(args, env);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await snapshots(world), local);
  });

  await t0.test(
    'a partition that fails every attempt: non-zero exit, nothing loaded, the partition named',
    async () => {
      await clearTables(world);
      // An edge key the worker nodes may not read (the driver lists it as usual).
      const edgeKeys: string[] = [];
      for await (const o of world.edge.list('')) edgeKeys.push(o.key);
      const denied = edgeKeys.sort()[Math.floor(edgeKeys.length / 2)]!;
      for (const p of proxies) p.unreadable.add(`/edge/${denied}`);
      try {
        const run = await world.replay(
          [
            START,
            END,
            ...TABLES,
            '--runtag',
            'fail1',
            '--executor',
            'spark',
            '--master',
            cluster.master,
            ...sparkFlags(cluster),
            '--spark-max-failures',
            '2',
          ],
          env,
        );
        assert.notEqual(run.code, 0, run.stderr);
        const failing = (await runRecord(world, 'fail1')).partitions.find((p) => p.files.some((f) => f.key === denied));
        assert.ok(failing, `a partition reads ${denied}`);
        assert.match(
          run.stderr,
          new RegExp(
            `partition ${failing.id} failed: failed 2 attempt\\(s\\) on Spark: spade worker run-tasks exited 1: .*${denied.replace(/[.]/g, '\\.')}`,
          ),
        );
        assert.match(run.stderr, /nothing was loaded/);
        assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
        assert.deepEqual(await snapshots(world), [[], []], 'nothing loaded');
      } finally {
        for (const p of proxies) p.unreadable.clear();
      }
    },
  );

  await t0.test('Ctrl-C (stdin not a terminal: no question) kills the application; nothing loaded', async () => {
    await clearTables(world);
    const before = startedAttempts(cluster);
    const child = spawn(
      process.execPath,
      [
        SPADE,
        'replay',
        START,
        END,
        ...TABLES,
        '--runtag',
        'ctrlc1',
        '--executor',
        'spark',
        '--master',
        cluster.master,
        ...sparkFlags(cluster),
        '--edge',
        's3://edge',
        '--output',
        's3://out',
        '--rsurl',
        world.rsurl,
        '--config',
        DEMO_CONFIG,
        '--log-file',
        '',
      ],
      { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
    // Interrupt once a partition of this application has started on a worker.
    while (startedAttempts(cluster) === before) await new Promise((resolve) => setTimeout(resolve, 200));
    child.kill('SIGINT');
    const code = await exited;
    assert.notEqual(code, 0, stderr);
    assert.match(stderr, /killing the Spark application/);
    assert.match(stderr, /the Spark application was killed \(interrupted\)/);
    assert.match(stderr, /nothing was loaded/);
    assert.deepEqual(await snapshots(world), [[], []]);
    // No spark-submit of this application (this runtag on this cluster) is left.
    const left = readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
          return cmd.includes('spade replay ctrlc1') && cmd.includes(cluster.master);
        } catch {
          return false;
        }
      });
    assert.deepEqual(left, [], 'spark-submit of the interrupted run is gone');
  });

  await t0.test('a worker killed with SIGKILL mid-partition: Spark re-runs it on the other, rows exact', async () => {
    await clearTables(world);
    const victim = cluster.workers[1]!;
    proxies[1]!.holdSuccess = true;
    const running = world.replay(
      [
        START,
        END,
        ...TABLES,
        '--runtag',
        'kill1',
        '--executor',
        'spark',
        '--master',
        cluster.master,
        ...sparkFlags(cluster),
      ],
      env,
    );
    // Worker 1's partition has written its files and waits on its success manifest.
    const held = await Promise.race([
      proxies[1]!.firstHeld(),
      running.then((r) => assert.fail(`the run ended before worker 1 committed a partition: ${r.stderr}`)),
    ]);
    const dead = JSON.parse(held.body) as SuccessManifest;
    victim.killHard();
    const run = await running;
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await snapshots(world), local);
    const manifests = await successManifests(world, 'kill1');
    const planned = (await runRecord(world, 'kill1')).partitions.map((p) => p.id).sort();
    assert.deepEqual([...manifests.keys()].sort(), planned);
    const rerun = manifests.get(dead.partition)!;
    assert.notEqual(rerun.attempt, dead.attempt, 'the partition was committed by another attempt');
    // The dead attempt's files are in the bucket, and none of them was named for loading.
    const deadKeys = dead.files.map((f) => f.key);
    assert.ok(deadKeys.length > 0);
    for (const key of deadKeys) assert.ok(await world.out.exists(key), `${key} was written`);
    let loadManifests = '';
    for await (const o of world.out.list('kill1/_load/'))
      loadManifests += (await world.out.readBytes(o.key)).toString();
    for (const key of deadKeys) assert.ok(!loadManifests.includes(key), `${key} is not in a load manifest`);
    assert.match(run.stderr, /Spark lost executor \S+ on 127\.0\.0\.1 \(worker lost/);
  });
});
