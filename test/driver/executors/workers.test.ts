/**
 * `--executor workers` end to end with real parts: s3rver edge and output
 * buckets, a throwaway PostgreSQL warehouse, real worker daemons in child
 * processes; the replay itself runs in this process through runReplay.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLocalExecutor } from '../../../driver/executors/local.js';
import type { Executor } from '../../../driver/executors/executor.js';
import { createWorkersExecutor, type WorkersExecutor } from '../../../driver/executors/workers.js';
import { createLogger } from '../../../driver/log.js';
import { createProgress } from '../../../driver/progress.js';
import { runReplay, type ReplayOptions, type ReplayResult } from '../../../driver/replay.js';
import { parseWindow } from '../../../driver/window.js';
import { DEMO_CONFIG, startReplayWorld, tableSnapshot, type ReplayWorld } from '../../helpers/replay-env.js';
import { plannedPartitions } from '../../helpers/run-record.js';
import { killWorker, startWorker, startWorkers, type TestWorker } from '../../helpers/workers.js';

const START = '2023-11-05 00:30:00';
const END = '2023-11-05 03:00:00';
const TABLES = ['login', 'video_play'];
const TOKEN = 'test-token-0123456789abcdef';
/** Tiny partitions: several per run, so several nodes share the work. */
const PARTITION_BYTES = 40_000;

function options(world: ReplayWorld, runtag: string): ReplayOptions {
  return {
    window: parseWindow(START, END),
    tables: TABLES,
    edge: 's3://edge',
    output: 's3://out',
    config: DEMO_CONFIG,
    schema: 'physical',
    rsurl: world.db,
    runtag,
    skipTransform: false,
    skipLoad: false,
    poolsize: 2,
    partitionBytes: PARTITION_BYTES,
    maxShrink: 1,
    allowShrink: true,
    plan: false,
    createTables: false,
  };
}

interface Run {
  result?: ReplayResult;
  error?: Error;
  log: string;
  /** onPartitionDone calls per partition */
  done: Map<string, number>;
}

async function replay(world: ReplayWorld, executor: Executor, runtag: string): Promise<Run> {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  const log = createLogger({ level: 'info', file: null, stream });
  const progress = createProgress({ log, tty: false, stream: process.stderr, intervalMs: 60_000 });
  const done = new Map<string, number>();
  const counting: Executor = {
    ...executor,
    run: (tasks, hooks) =>
      executor.run(tasks, {
        ...hooks,
        onPartitionDone: (r) => {
          done.set(r.partition, (done.get(r.partition) ?? 0) + 1);
          hooks.onPartitionDone(r);
        },
      }),
  };
  try {
    const result = await runReplay(options(world, runtag), { executor: counting, log, progress, print: () => {} });
    return { result, log: text, done };
  } catch (err) {
    return { error: err as Error, log: text, done };
  } finally {
    progress.stop();
    await executor.close();
  }
}

function workersExecutor(nodes: TestWorker[], extra: { token?: string; taskTimeoutMs?: number } = {}): WorkersExecutor {
  return createWorkersExecutor({
    workers: nodes.map((n) => n.addr),
    token: extra.token ?? TOKEN,
    taskTimeoutMs: extra.taskTimeoutMs ?? 30_000,
    pollMs: 500,
    maxNodeFailures: 3,
    maxAttempts: 3,
    unreachableGraceMs: 1000,
    requestTimeoutMs: 3000,
  });
}

async function snapshots(world: ReplayWorld): Promise<string[][]> {
  return Promise.all(TABLES.map((t) => tableSnapshot(world, t)));
}

async function clearTables(world: ReplayWorld): Promise<void> {
  for (const t of TABLES) await world.query(`DELETE FROM physical."${t}"`);
}

/** Partitions the run planned, and the success manifests it left. */
async function partitionsOf(world: ReplayWorld, runtag: string): Promise<{ planned: string[]; manifests: string[] }> {
  const planned = await plannedPartitions(world.out, runtag);
  const manifests: string[] = [];
  for await (const o of world.out.list(`${runtag}/_success/`)) manifests.push(o.key.replace(/^.*\/|\.json$/g, ''));
  return { planned: planned.map((p) => p.id).sort(), manifests: manifests.sort() };
}

function assertDoneOnce(run: Run, planned: string[]): void {
  assert.deepEqual([...run.done.keys()].sort(), planned);
  for (const [p, n] of run.done) assert.equal(n, 1, `partition ${p} reported done ${n} times`);
}

test('replay with --executor workers', async (t0) => {
  const world = await startReplayWorld(t0, {
    startSec: Date.UTC(2023, 10, 5, 7, 0, 0) / 1000,
    endSec: Date.UTC(2023, 10, 5, 11, 30, 0) / 1000,
    events: 3000,
    dbName: 'workers_e2e',
  });
  if (!world) return;
  // This process's own S3 client (output store, manifests) talks to s3rver too.
  Object.assign(process.env, world.env);
  const nodes = await startWorkers(t0, 3, { token: TOKEN, env: world.env });
  let local: string[][] = [];

  await t0.test('a full replay on three nodes gives exactly the rows of the local executor', async () => {
    const base = await replay(world, createLocalExecutor({ threads: 2 }), 'local1');
    assert.equal(base.error, undefined, base.log);
    assert.equal(base.result!.exitCode, 0, base.log);
    local = await snapshots(world);
    assert.ok(
      local.every((rows) => rows.length > 0),
      'the window holds rows',
    );

    await clearTables(world);
    const executor = workersExecutor(nodes);
    const run = await replay(world, executor, 'workers1');
    assert.equal(run.error, undefined, run.log);
    assert.equal(run.result!.exitCode, 0, run.log);
    assert.deepEqual(await snapshots(world), local);
    const { planned, manifests } = await partitionsOf(world, 'workers1');
    assert.ok(planned.length >= 4, `several partitions expected, got ${planned.length}`);
    assert.deepEqual(manifests, planned);
    assertDoneOnce(run, planned);
    const stats = executor.stats();
    assert.equal(stats.dispatched, planned.length);
    assert.equal(stats.redispatched, 0);
    assert.ok(stats.nodes.filter((n) => n.tasksDone > 0).length >= 2, 'the work was shared');
    assert.ok(stats.idleBetweenTasksMs >= 0);
  });

  await t0.test('a node killed with SIGKILL mid-partition: its partition runs elsewhere, same rows', async () => {
    // This node takes 1.5 s before each task starts: the kill surely lands while one is running.
    const victim = await startWorker(t0, { token: TOKEN, env: { ...world.env, SPADE_WORKER_TEST_DELAY_MS: '1500' } });
    await clearTables(world);
    const executor = workersExecutor([nodes[0]!, nodes[1]!, victim]);
    const running = replay(world, executor, 'kill1');
    for (;;) {
      const h = await victim.health();
      if (h?.busy) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await killWorker(victim);
    const run = await running;
    assert.equal(run.error, undefined, run.log);
    assert.equal(run.result!.exitCode, 0, run.log);
    assert.deepEqual(await snapshots(world), local);
    const { planned, manifests } = await partitionsOf(world, 'kill1');
    assert.deepEqual(manifests, planned);
    assertDoneOnce(run, planned);
    const stats = executor.stats();
    assert.ok(stats.redispatched >= 1, 'the killed node’s partition was dispatched again');
    assert.ok(stats.nodes.find((n) => n.node === victim.addr)!.failures >= 1);
    // The daemon is gone: its port refuses connections, a failure at once (no grace period).
    assert.match(run.log, /retrying: .*refused the connection \(ECONNREFUSED\)/);
  });

  await t0.test('a node that hangs is timed out and its partition re-run elsewhere', async () => {
    const hung = await startWorker(t0, { token: TOKEN, env: { ...world.env, SPADE_WORKER_TEST_HANG: '1' } });
    await clearTables(world);
    const executor = workersExecutor([hung, nodes[1]!, nodes[2]!], { taskTimeoutMs: 6000 });
    const run = await replay(world, executor, 'hang1');
    assert.equal(run.error, undefined, run.log);
    assert.equal(run.result!.exitCode, 0, run.log);
    assert.deepEqual(await snapshots(world), local);
    const { planned, manifests } = await partitionsOf(world, 'hang1');
    assert.deepEqual(manifests, planned);
    assertDoneOnce(run, planned);
    const stats = executor.stats();
    const hungStats = stats.nodes.find((n) => n.node === hung.addr)!;
    assert.equal(hungStats.tasksDone, 0);
    assert.ok(hungStats.failures >= 1);
    assert.ok(stats.redispatched >= 1);
    assert.match(run.log, /timed out after \d+s/);
    assert.match(hung.log(), /cancelled by the driver/);
  });

  await t0.test('a wrong token is refused (401) and the run says so', async () => {
    const node = nodes[0]!;
    const health = await fetch(`${node.url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { ok: true, busy: false });
    const refused = await fetch(`${node.url}/tasks`, {
      method: 'POST',
      headers: { Authorization: 'Bearer wrong', 'Content-Type': 'application/json' },
      body: '{}',
    });
    assert.equal(refused.status, 401);
    const bad = await fetch(`${node.url}/tasks`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
      body: '{"runtag": 5',
    });
    assert.equal(bad.status, 400);
    assert.equal((await node.health())?.ok, true, 'a bad request does not hurt the daemon');

    const executor = workersExecutor([nodes[0]!, nodes[1]!], { token: 'not-the-token-0123456789' });
    const run = await replay(world, executor, 'token1');
    assert.match(run.error?.message ?? '', /no success manifest/);
    assert.match(run.log, /refused the worker token \(HTTP 401\)/);
    assert.match(run.log, /no worker node left/);
    assert.ok(!run.log.includes(TOKEN) && !node.log().includes(TOKEN), 'the token is never logged');
    assert.equal(executor.stats().nodes.filter((n) => n.blacklisted).length, 2);
  });

  await t0.test('SIGTERM stops an idle daemon with exit code 0', async () => {
    const node = nodes[2]!;
    const exited = new Promise<number | null>((resolve) => node.child.once('exit', (code) => resolve(code)));
    node.child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.match(node.log(), /SIGTERM, draining/);
  });
});
