/**
 * `npm run bench:cluster [-- --mb N --threads N --partition-mb N --tables all|a,b]`:
 * the same replay (N MiB, default 1024, of generated gzip edge logs from
 * s3rver) three times, one corpus, one s3rver, one PostgreSQL:
 *   1. `--executor local --threads T`;
 *   2. `--executor workers`, 1 loopback `spade worker serve --threads T`;
 *   3. `--executor workers`, 2 loopback daemons with `--threads T/2` each
 *      (T = --threads, default the cores: on 2 cores 2 / 2 / 1+1, the same
 *      transform threads in every run);
 *   4. `--executor spark` on a loopback Spark standalone cluster (the tests'
 *      helper: pinned PySpark in .venv-spark/, one worker of T cores,
 *      `--spark-cores T`), skipped with a note where Java or PySpark is missing.
 * For the Spark run: its start-up (spark-submit launched -> first partition
 * started on the executor) apart from its per-partition dispatch (on the
 * executor: previous partition's end -> this one's start, plus this one's start
 * -> spade running, i.e. the Python task and the `spade worker run-tasks`
 * process start), from the job's own records in the executor's log; target:
 * dispatch under 5% of the partition time.
 * Prints MB/s of each and the scheduling overhead of the workers runs: the
 * time nodes sat idle between two tasks (the driver's `stats()` line, and each
 * daemon's own log for ms precision and the per-dispatch round trip) over
 * nodes × run wall time. Target: under 2%.
 *
 * The three runs transform only (`--skip-ace-upload`, distinct runtags): the
 * executor decides how partitions are run, not how tables are loaded (the load
 * is the driver's COPY, the same code whichever executor ran), so loading three
 * times would only dilute the comparison. Their outputs must hold the same rows
 * per table; the 2-node run's output is then loaded once (`--skip-transform`)
 * into PostgreSQL and counted, to show the workers' output is loadable.
 *
 * Corpus cache: the same directory as bench:replay (`--corpus DIR`, default
 * $TMPDIR/spade-bench-replay-corpus-<N>mb). `--keep` keeps the scratch dir
 * (replay and daemon logs).
 */
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { createTableSql } from '../worker/warehouse/ddl.js';
import { S3Store } from '../worker/store/s3.js';
import { parseTableConfig } from '../worker/transform/schema.js';
import { fixturesDir, repoRoot } from '../test/helpers/fixtures.js';
import { startCluster } from '../test/helpers/postgres.js';
import { startS3Server, type S3TestServer } from '../test/helpers/s3server.js';
import { arg, positiveNumber, say } from './bench/args.js';
import { countRows, latestSchemas, selectTables } from './bench/tables.js';
import { cleanup, cleanups, onSignal, wasInterrupted } from './bench/cleanup.js';
import { ensureCorpus, type Corpus } from './bench/corpus.js';
import { runMeasured, type Measured } from './bench/measure.js';
import {
  pacific,
  parsePhases,
  parseWorkersLine,
  rate,
  readRunOutput,
  rowDifferences,
  sumEvents,
  tail,
  type RunOutput,
  type WorkersLine,
} from './bench/replay-run.js';
import { sparkMissing, startSparkCluster, type SparkCluster } from '../test/helpers/spark.js';
import {
  parseDaemonTasks,
  scheduleOf,
  startBenchWorkers,
  type DaemonTask,
  type Schedule,
} from './bench/worker-nodes.js';

const MB = 1e6;
const DB_NAME = 'spade_bench_cluster';
const TOKEN_ENV = 'SPADE_BENCH_WORKER_TOKEN';
/** Dispatch overhead the issue asks for: idle between tasks under 2% of nodes × run time. */
const OVERHEAD_TARGET = 0.02;

const fixtures = fixturesDir();
const configPath = join(fixtures, 'spade', 'table_config.json');
const geoipCity = join(fixtures, 'geoip', 'GeoIP2-City-Test.mmdb');
const geoipAsn = join(fixtures, 'geoip', 'GeoLite2-ASN-Test.mmdb');

interface RunPlan {
  key: 'local' | 'w1' | 'w2' | 'spark';
  runtag: string;
  /** 0 for the local executor. */
  nodes: number;
  threadsEach: number;
  label: string;
}

interface RunResult {
  plan: RunPlan;
  replay: Measured;
  phases: Record<string, number>;
  workers: WorkersLine | null;
  daemons: Measured[];
  /** Per node, the tasks its log shows. */
  nodeTasks: DaemonTask[][];
  schedule: Schedule | null;
  spark: SparkFigures | null;
  output: RunOutput;
}

interface SparkFigures {
  /** spark-submit launched -> first partition started on an executor */
  startupSecs: number;
  /** last partition ended -> spark-submit exited (application shutdown) */
  shutdownSecs: number;
  /** per partition: gap after the previous one on the same executor (0 for the first) + start -> spade running */
  dispatchSecs: number[];
  /** per partition: start -> end on the executor */
  partitionSecs: number[];
}

/** The job's `spade-spark: partition ID start|running|end T pid P` records -> the Spark run's figures. */
function sparkFigures(executorLog: string, replayLog: string): SparkFigures | null {
  const stamp = (re: RegExp): number => {
    const m = re.exec(replayLog);
    return m ? Date.parse(m[1]!) / 1000 : NaN;
  };
  const submitted = stamp(/^(\S+) INFO {2}spark-submit: /m);
  const finished = stamp(/^(\S+) INFO {2}Spark application done/m);
  const tasks = new Map<string, { start: number; running: number; end: number }>();
  for (const m of executorLog.matchAll(/^spade-spark: partition (\S+) (start|running|end) ([\d.]+) pid (\d+)$/gm)) {
    const key = `${m[1]} ${m[4]}`;
    const t = tasks.get(key) ?? { start: NaN, running: NaN, end: NaN };
    t[m[2] as 'start' | 'running' | 'end'] = Number(m[3]);
    tasks.set(key, t);
  }
  const list = [...tasks.values()].filter((t) => t.end > 0).sort((a, b) => a.start - b.start);
  if (!list.length) return null;
  return {
    startupSecs: list[0]!.start - submitted,
    shutdownSecs: finished - list[list.length - 1]!.end,
    dispatchSecs: list.map((t, i) => (i === 0 ? 0 : Math.max(0, t.start - list[i - 1]!.end)) + (t.running - t.start)),
    partitionSecs: list.map((t) => t.end - t.start),
  };
}

const f1 = (n: number): string => n.toFixed(1);
const pct = (n: number): string => `${(n * 100).toFixed(2)}%`;
const mbOf = (kb: number): string => (kb / 1024).toFixed(0);

interface Context {
  spade: string;
  scratch: string;
  corpus: Corpus;
  tablesArgs: string[];
  partitionMb: number;
  s3: S3TestServer;
  out: S3Store;
  token: string;
  /** The loopback Spark cluster for the spark run; null: not available here. */
  spark: SparkCluster | null;
}

/** One transform-only replay with the plan's executor; worker daemons started for it and stopped after. */
async function runOne(plan: RunPlan, ctx: Context): Promise<RunResult> {
  const logFile = join(ctx.scratch, `replay-${plan.key}.log`);
  const daemonEnv = { ...process.env, ...ctx.s3.env, SPADE_WORKER_TOKEN: ctx.token };
  const workers =
    plan.nodes > 0
      ? await startBenchWorkers({
          count: plan.nodes,
          threads: plan.threadsEach,
          spade: ctx.spade,
          env: daemonEnv,
          scratch: ctx.scratch,
          name: plan.key,
        })
      : [];
  const stopWorkers = (): Promise<Measured[]> => Promise.all(workers.map((w) => w.stop()));
  cleanups.push(stopWorkers);
  const spark = plan.key === 'spark' ? ctx.spark : null;
  const executorArgs = spark
    ? [
        '--executor',
        'spark',
        '--master',
        spark.master,
        '--spark-submit',
        spark.sparkSubmit,
        '--spark-spade-cmd',
        `${process.execPath} ${ctx.spade}`,
        '--spark-cores',
        String(plan.threadsEach),
        '--spark-conf',
        'spark.executor.memory=512m',
        '--spark-conf',
        'spark.driver.memory=512m',
      ]
    : plan.nodes > 0
      ? ['--executor', 'workers', '--workers', workers.map((w) => w.addr).join(','), '--worker-token-env', TOKEN_ENV]
      : ['--executor', 'local', '--threads', String(plan.threadsEach)];
  const args = [
    ctx.spade,
    'replay',
    pacific(ctx.corpus.startSec - 3600),
    pacific(ctx.corpus.endSec + 3600),
    ...ctx.tablesArgs,
    '--edge',
    's3://edge',
    '--output',
    's3://out',
    '--config',
    configPath,
    '--geoip-city',
    geoipCity,
    '--geoip-asn',
    geoipAsn,
    '--skip-ace-upload',
    '--partition-mb',
    String(ctx.partitionMb),
    '--runtag',
    plan.runtag,
    '--log-file',
    logFile,
    ...executorArgs,
  ];
  say(`${plan.label} ...`);
  const stopReplay = new AbortController();
  cleanups.push(() => stopReplay.abort());
  const replay = await runMeasured(process.execPath, args, {
    env: { ...process.env, ...ctx.s3.env, ...spark?.env, [TOKEN_ENV]: ctx.token },
    signal: stopReplay.signal,
    stdoutFile: join(ctx.scratch, `replay-${plan.key}.stdout`),
    stderrFile: join(ctx.scratch, `replay-${plan.key}.stderr`),
    timeFile: join(ctx.scratch, `replay-${plan.key}.time`),
  });
  const daemons = await stopWorkers();
  const logText = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
  const phases = parsePhases(logText);
  const workersLine = parseWorkersLine(logText);
  if (replay.code !== 0 || !phases || (plan.nodes > 0 && !workersLine)) {
    throw new Error(
      `${plan.label}: replay exited with code ${replay.code}` +
        `${phases ? '' : ', no phases line'}${plan.nodes > 0 && !workersLine ? ', no workers line' : ''}; ` +
        // Without a terminal the log lines go to stderr too: its tail holds both them and any crash.
        `stderr tail:\n${tail(join(ctx.scratch, `replay-${plan.key}.stderr`), 20)}` +
        workers.map((w) => `\ndaemon ${w.addr} log tail:\n${tail(w.logFile, 10)}`).join(''),
    );
  }
  const nodeTasks = workers.map((w) => parseDaemonTasks(readFileSync(w.logFile, 'utf8')));
  return {
    plan,
    replay,
    phases,
    workers: workersLine,
    daemons,
    nodeTasks,
    schedule: plan.nodes > 0 ? scheduleOf(nodeTasks) : null,
    spark: spark ? sparkFigures(spark.workers.map((w) => w.executorLogs()).join(''), logText) : null,
    output: await readRunOutput(ctx.out, plan.runtag),
  };
}

/** The lines of one run in the report block. */
function describeRun(r: RunResult, corpus: Corpus, local: RunResult): string[] {
  const wall = r.replay.secs;
  const transform = r.phases.transform ?? NaN;
  const edgeBytes = r.output.counts.inputBytes;
  const events = sumEvents(r.output.counts);
  const daemonCpu = r.daemons.reduce((s, d) => s + d.cpuSecs, 0);
  const lines = [
    `${r.plan.label}:`,
    `  ${f1(wall)} s wall, ${f1(corpus.bytes / MB / wall)} MB/s gzip input, ${f1(edgeBytes / MB / wall)} MB/s edge lines, ` +
      `${rate(events / wall)} events/s` +
      (r === local ? '' : `; ${(local.replay.secs / wall).toFixed(2)}x the local executor's throughput`),
    `  phases: ${Object.entries(r.phases)
      .map(([k, v]) => `${k} ${f1(v)} s`)
      .join(', ')} (transform phase ${f1(corpus.bytes / MB / transform)} MB/s gzip)`,
    r.daemons.length
      ? `  CPU ${f1(r.replay.cpuSecs + daemonCpu)} s (driver ${f1(r.replay.cpuSecs)} + nodes ${r.daemons.map((d) => f1(d.cpuSecs)).join(' + ')}); ` +
        `peak RSS driver ${mbOf(r.replay.maxRssKb)} MB, nodes ${r.daemons.map((d) => mbOf(d.maxRssKb)).join(' / ')} MB`
      : `  CPU ${f1(r.replay.cpuSecs)} s; peak RSS ${mbOf(r.replay.maxRssKb)} MB`,
  ];
  const sp = r.spark;
  if (sp) {
    const n = sp.partitionSecs.length;
    const dispatch = sp.dispatchSecs.reduce((a, b) => a + b, 0);
    const partition = sp.partitionSecs.reduce((a, b) => a + b, 0);
    const ratio = dispatch / partition;
    lines.push(
      `  vs local: ${f1(wall - local.replay.secs)} s more wall; Spark start-up (spark-submit -> first partition started) ` +
        `${f1(sp.startupSecs)} s, shutdown (last partition end -> application done) ${f1(sp.shutdownSecs)} s`,
      `  per-partition dispatch (previous end -> start on the executor, + start -> spade running): mean ` +
        `${(dispatch / n).toFixed(2)} s, max ${Math.max(...sp.dispatchSecs).toFixed(2)} s over ${n} partition(s); ` +
        `= ${pct(ratio)} of the mean partition time ${f1(partition / n)} s; target < 5%: ${ratio < 0.05 ? 'met' : 'MISSED'}`,
    );
  }
  const s = r.schedule;
  if (s && r.workers) {
    const nodes = r.plan.nodes;
    // The node logs have ms timestamps; the driver's line rounds to 0.1 s. Same quantity, same clock here.
    const idleMs = s.gapsMs.reduce((a, b) => a + b, 0);
    const overhead = idleMs / 1000 / (nodes * wall);
    const meanGap = s.gapsMs.length ? idleMs / s.gapsMs.length : NaN;
    const maxGap = s.gapsMs.length ? Math.max(...s.gapsMs) : NaN;
    const span = (s.lastEndMs - s.firstStartMs) / 1000;
    const idleNodes = r.nodeTasks.filter((t) => t.length === 0).length;
    lines.push(
      `  scheduling: ${r.workers.tasks} task(s), ${r.workers.redispatched} re-dispatched, ` +
        `per node ${r.nodeTasks.map((t) => t.length).join(' / ')}`,
      `    idle between tasks ${(idleMs / 1000).toFixed(3)} s (node logs; driver stats() ${f1(r.workers.idleSecs)} s) ` +
        `= ${pct(overhead)} of nodes x wall (${nodes} x ${f1(wall)} s); target < ${pct(OVERHEAD_TARGET)}: ` +
        (overhead < OVERHEAD_TARGET ? 'met' : 'MISSED'),
      `    per-dispatch round trip (task end -> next task start on the node): ` +
        (s.gapsMs.length
          ? `mean ${meanGap.toFixed(1)} ms, max ${maxGap} ms over ${s.gapsMs.length} gap(s)`
          : 'no gaps (one task per node)'),
      `    node busy ${f1(s.busyMs / 1000)} s = ${pct(s.busyMs / 1000 / (nodes * transform))} of nodes x transform phase; ` +
        `transform phase outside first task start .. last task end: ${f1(transform - span)} s (first POST, last poll)`,
      ...(idleNodes
        ? [
            `    ${idleNodes} node(s) ran no task: ${r.output.manifests} partition(s) for ${nodes} nodes (a smaller --partition-mb gives more)`,
          ]
        : []),
    );
  }
  return lines;
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const mb = positiveNumber('mb', 1024, true);
  const threads = positiveNumber('threads', availableParallelism(), true);
  const partitionMb = positiveNumber('partition-mb', 256, false);
  const poolsize = positiveNumber('poolsize', 4, true);
  const tablesArg = arg('tables', 'all');
  const keep = process.argv.includes('--keep');
  const corpusDir = resolve(arg('corpus', join(tmpdir(), `spade-bench-replay-corpus-${mb}mb`)));
  if (!existsSync(configPath)) throw new Error(`fixtures not found at ${fixtures} (set SPADE_FIXTURES)`);
  const spade = join(repoRoot(), 'dist', 'driver', 'cli', 'spade.js');
  if (!existsSync(spade)) throw new Error(`${spade} not built: run npx tsc -p . first`);

  const schemas = parseTableConfig(readFileSync(configPath, 'utf8'), configPath);
  const tables = selectTables(schemas, tablesArg, configPath);
  const tablesArgs = tablesArg === 'all' ? ['--all-tables'] : tables;
  const halfThreads = Math.max(1, Math.floor(threads / 2));

  const loadAtStart = loadavg()[0]!.toFixed(1);
  const corpus = await ensureCorpus(corpusDir, mb, schemas, say);
  say(
    `corpus: ${corpus.files.length} files, ${f1(corpus.bytes / MB)} MB gzip, ${corpus.events} events, in ${corpus.dir}`,
  );

  const scratch = mkdtempSync(join(tmpdir(), 'spade-bench-cluster-'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  cleanups.push(() =>
    keep ? say(`kept scratch files in ${scratch}`) : rmSync(scratch, { recursive: true, force: true }),
  );
  try {
    // ---- one s3rver with the corpus, one PostgreSQL with the tables ----
    const context = { after: (fn: () => unknown) => void cleanups.push(fn), skip: () => undefined };
    const s3 = await startS3Server(context as unknown as TestContext, { buckets: ['edge', 'out'] });
    s3.seedObjects(
      'edge',
      (function* () {
        for (const f of corpus.files) yield [f.key, readFileSync(f.path)] as const;
      })(),
    );
    const pg = await startCluster();
    cleanups.push(() => pg.stop());
    const db = await pg.createDatabase(DB_NAME);
    const pgVersion = (await pg.query<{ v: string }>(db, "SELECT current_setting('server_version') AS v"))[0]?.v ?? '?';
    await pg.query(db, 'CREATE SCHEMA physical');
    for (const s of latestSchemas(schemas, tables))
      await pg.query(db, createTableSql(s, { dialect: 'postgres', schema: 'physical' }));
    const out = new S3Store({ bucket: 'out', prefix: '', client: s3.client });
    // One Spark worker with all the transform threads, as the 1-node workers run has.
    const missing = sparkMissing();
    if (missing) say(`spark run skipped: ${missing}`);
    const spark = missing
      ? null
      : await startSparkCluster(context as unknown as TestContext, { workers: [{ env: s3.env }], cores: threads });
    const ctx: Context = {
      spade,
      scratch,
      corpus,
      tablesArgs,
      partitionMb,
      s3,
      out,
      token: randomBytes(24).toString('hex'),
      spark,
    };

    // ---- the three transform runs, same corpus, same transform threads ----
    const stamp = Date.now().toString(36);
    const plans: RunPlan[] = [
      {
        key: 'local',
        runtag: `bench-cluster-local-${stamp}`,
        nodes: 0,
        threadsEach: threads,
        label: `local executor, --threads ${threads}`,
      },
      {
        key: 'w1',
        runtag: `bench-cluster-w1-${stamp}`,
        nodes: 1,
        threadsEach: threads,
        label: `workers executor, 1 loopback node, worker serve --threads ${threads}`,
      },
      {
        key: 'w2',
        runtag: `bench-cluster-w2-${stamp}`,
        nodes: 2,
        threadsEach: halfThreads,
        label: `workers executor, 2 loopback nodes, worker serve --threads ${halfThreads} each`,
      },
      ...(spark
        ? [
            {
              key: 'spark' as const,
              runtag: `bench-cluster-spark-${stamp}`,
              nodes: 0,
              threadsEach: threads,
              label: `spark executor, loopback standalone cluster, 1 worker of ${threads} cores, --spark-cores ${threads}`,
            },
          ]
        : []),
    ];
    const results: RunResult[] = [];
    for (const plan of plans) results.push(await runOne(plan, ctx));
    const [local, , w2] = results as [RunResult, RunResult, RunResult];

    // ---- load the 2-node run's output once ----
    say(`loading the 2-node run's output (--skip-transform --runtag ${w2.plan.runtag}) ...`);
    const loadLog = join(scratch, 'replay-load.log');
    const rsurl = db.replace(`:${pg.password}@`, '@');
    const stopLoad = new AbortController();
    cleanups.push(() => stopLoad.abort());
    const load = await runMeasured(
      process.execPath,
      [
        spade,
        'replay',
        pacific(corpus.startSec - 3600),
        pacific(corpus.endSec + 3600),
        ...tablesArgs,
        '--edge',
        's3://edge',
        '--output',
        's3://out',
        '--config',
        configPath,
        '--rsurl',
        rsurl,
        '--skip-transform',
        '--runtag',
        w2.plan.runtag,
        '--poolsize',
        String(poolsize),
        '--log-file',
        loadLog,
      ],
      {
        env: { ...process.env, ...s3.env, PGPASSWORD: pg.password },
        signal: stopLoad.signal,
        stdoutFile: join(scratch, 'replay-load.stdout'),
        stderrFile: join(scratch, 'replay-load.stderr'),
        timeFile: join(scratch, 'replay-load.time'),
      },
    );
    const loadPhases = parsePhases(existsSync(loadLog) ? readFileSync(loadLog, 'utf8') : '');
    if (load.code !== 0 || !loadPhases) {
      throw new Error(
        `load of ${w2.plan.runtag} exited with code ${load.code}; ` +
          `stderr tail:\n${tail(join(scratch, 'replay-load.stderr'), 20)}`,
      );
    }
    const loadedRows = await countRows(pg, db, 'physical', tables);

    // ---- checks ----
    const checks: string[] = [];
    const w2Rows = w2.output.files.reduce((s, f) => s + f.rows, 0);
    for (const r of results) {
      const diff = rowDifferences(local.output.rowsByTable, r.output.rowsByTable);
      if (diff.length)
        checks.push(
          `${r.plan.key} rows per table differ from local (local/${r.plan.key}): ${diff.slice(0, 5).join(', ')}`,
        );
      if (sumEvents(r.output.counts) !== sumEvents(local.output.counts))
        checks.push(`${r.plan.key}: ${sumEvents(r.output.counts)} events, local ${sumEvents(local.output.counts)}`);
      if (r.output.manifests !== local.output.manifests)
        checks.push(`${r.plan.key}: ${r.output.manifests} success manifests, local ${local.output.manifests}`);
      if (r.workers && r.workers.redispatched > 0)
        checks.push(`${r.plan.key}: ${r.workers.redispatched} re-dispatch(es)`);
    }
    if (loadedRows !== w2Rows) checks.push(`physical tables hold ${loadedRows} rows, the 2-node run's files ${w2Rows}`);

    // ---- report ----
    const cpu = cpus()[0]?.model.trim() ?? '?';
    const cmd = `npm run bench:cluster -- ${process.argv.slice(2).join(' ')}`.trimEnd();
    const events = sumEvents(local.output.counts);
    const o = w2.output;
    const block = [
      `### bench:cluster, ${new Date().toISOString().slice(0, 10)}`,
      '',
      '```',
      `command: ${cmd}`,
      `machine: ${availableParallelism()} CPUs (${cpu}), ${f1(totalmem() / 2 ** 30)} GiB RAM, Linux ${release()}, node ${process.version}, PostgreSQL ${pgVersion}`,
      `load average at start / end: ${loadAtStart} / ${loadavg()[0]!.toFixed(1)} (other work on the machine skews every figure)`,
      `corpus: ${corpus.files.length} edge files, ${f1(corpus.bytes / MB)} MB gzip (${f1(local.output.counts.inputBytes / MB)} MB edge lines), ${events} events; ` +
        `tables: ${tablesArg === 'all' ? `all (${tables.length})` : tables.join(',')}; --partition-mb ${partitionMb} -> ${local.output.manifests} partition(s)`,
      `setup: one s3rver (edge + output), transform only (--skip-ace-upload), distinct runtags; ` +
        `${threads} transform thread(s) in every run: local --threads ${threads}; 1 node --threads ${threads}; 2 nodes --threads ${halfThreads} each`,
      `  loopback nodes = \`spade worker serve\` processes on 127.0.0.1, sharing the ${availableParallelism()} CPUs with the driver and s3rver`,
      '',
      ...results.flatMap((r) => describeRun(r, corpus, local)),
      '',
      `overhead = idle between tasks / (nodes x run wall time); idle between tasks = on each node, end of a task to start of its next`,
      `  (the dispatch round trip: long-poll answer, driver bookkeeping, POST). Not in it: a node's wait for its first task, the`,
      `  tail after its last (partition count vs nodes), threads idle inside a partition (its last file group) - see "node busy".`,
      `load (once, 2-node run's output, --skip-transform, --poolsize ${poolsize}): ${f1(loadPhases.load ?? NaN)} s load phase, ` +
        `${w2Rows} rows in ${o.files.length} gzip TSV files, ${f1(o.files.reduce((s, f) => s + f.tsvBytes, 0) / MB)} MB TSV, ` +
        `${f1(o.files.reduce((s, f) => s + f.bytes, 0) / MB)} MB gzip`,
      `bookkeeping (2-node run): run record ${o.runRecordBytes} B for ${o.manifests} partition(s) / ${corpus.files.length} file(s) ` +
        `(${(o.runRecordBytes / corpus.files.length).toFixed(0)} B per edge file); ${o.manifests} success manifest(s), ${o.manifestBytes} B, ` +
        `${o.manifestEntries} file entries (${(o.manifestBytes / Math.max(1, o.manifestEntries)).toFixed(0)} B per entry, ` +
        `${(o.manifestEntries / Math.max(1, o.manifests)).toFixed(0)} per partition)`,
      ...(checks.length
        ? [`CHECK FAILED: ${checks.join('; ')}`]
        : [
            `check: the ${results.length} runs wrote the same rows per table (${local.output.files.reduce((s, f) => s + f.rows, 0)} rows), ` +
              `no re-dispatch; PostgreSQL holds the 2-node run's ${w2Rows} rows after its load`,
          ]),
      '```',
    ];
    say('');
    for (const l of block) say(l);
    if (checks.length) process.exitCode = 1;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await cleanup();
  }
}

main().catch(async (err: unknown) => {
  await cleanup();
  if (wasInterrupted()) return;
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
