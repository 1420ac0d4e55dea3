/**
 * `--executor spark`: the partitions run as one Spark application, submitted
 * with `spark-submit` in client mode to a standalone master (`spark://…`), YARN
 * or `local[N]`. The job (spark_job.py next to this file) makes one Spark
 * partition per partition task and pipes each into `spade worker run-tasks` on
 * the executor's node, the worker entry point every executor uses.
 *
 * Client mode: the application's driver is the spark-submit process this
 * executor starts, so ending that process ends the application (Ctrl-C asks,
 * then SIGTERM to its process group). It runs in a process group of its own so
 * the terminal's Ctrl-C reaches only us, and we decide.
 *
 * One task per node: spark.executor.cores = spark.task.cpus = `cores`, so an
 * executor holds one partition at a time and spade uses every core through its
 * own thread pool. On a standalone cluster `cores` must be a worker node's cores
 * (SPARK_WORKER_CORES), or a worker would start several executors.
 *
 * Progress: success manifests are read from the output store as they appear,
 * as the EMR executor does; Spark's retries are read from its log.
 *
 * Layout: `<runtag>/_spark/<n>/config.json` in the output store (the task lines
 * name it instead of repeating the config), and the task lines in a local file
 * the client-mode driver reads: `<tmp>/spade-spark/<runtag>/<n>/tasks.jsonl`,
 * removed when the application has ended.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, rmdirSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import type { PartitionTask } from '../../worker/partition-task.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { encodeTaskLine } from '../../worker/emr-task.js';
import { openStore } from '../../worker/store/location.js';
import { formatBytes } from '../format.js';
import { collectSuccessManifests, nextNumberedDir, summarizeTasks, taskIterator, type Executor } from './executor.js';

/** The job file shipped in the package (source tree and dist/ alike: dist/driver/executors → driver/executors). */
export const SPARK_JOB_FILE = fileURLToPath(new URL('../../../driver/executors/spark_job.py', import.meta.url));

export const DEFAULT_SPADE_CMD = 'spade';
export const DEFAULT_MAX_FAILURES = 4;

export interface SparkExecutorOptions {
  /** spark://host:port, yarn, local[N] */
  master: string;
  /** The spark-submit binary; default $SPARK_HOME/bin/spark-submit, else `spark-submit` on PATH. */
  sparkSubmit?: string;
  /** How worker nodes run spade; default `spade` on their PATH. */
  spadeCmd?: string;
  /** Cores of one executor = spark.task.cpus: a worker node's cores for one task per node. */
  cores: number;
  /** Attempts per partition (spark.task.maxFailures); default 4. */
  maxFailures?: number;
  /** Extra `--conf key=value` settings, after ours (they win). */
  conf?: string[];
  /** Environment of spark-submit; default this process's. */
  env?: NodeJS.ProcessEnv;
  /** Directory for the local task files; default the OS temp dir. */
  tmpDir?: string;
  /** Poll interval of success manifests; default 2 s. */
  pollMs?: number;
  /** Aborting it (Ctrl-C, confirmed) ends the application; `run` then reports the unfinished partitions failed. */
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** Spark's own log lines (warnings, errors); default dropped. */
  sparkLog?: (line: string) => void;
}

export interface SparkExecutor extends Executor {
  /** Ends the running application (SIGTERM, then SIGKILL after 10 s). Idempotent. */
  kill(): void;
}

export function sparkSubmitPath(opts: Pick<SparkExecutorOptions, 'sparkSubmit' | 'env'>): string {
  if (opts.sparkSubmit) return opts.sparkSubmit;
  const home = (opts.env ?? process.env).SPARK_HOME;
  return home ? join(home, 'bin', 'spark-submit') : 'spark-submit';
}

export interface SubmitSpec {
  runtag: string;
  master: string;
  cores: number;
  maxFailures: number;
  conf: string[];
  jobFile: string;
  tasks: string;
  spadeCmd: string;
}

/** spark-submit's arguments (without the binary): shared with the EMR step. */
export function sparkSubmitArgs(s: SubmitSpec): string[] {
  const conf = [
    `spark.executor.cores=${s.cores}`,
    `spark.task.cpus=${s.cores}`,
    `spark.task.maxFailures=${s.maxFailures}`,
    // The job is one stage of independent tasks: no reason to wait for locality.
    'spark.locality.wait=0s',
    'spark.log.level=WARN',
    ...s.conf,
  ];
  return [
    '--master',
    s.master,
    '--deploy-mode',
    'client',
    '--name',
    `spade replay ${s.runtag}`,
    ...conf.flatMap((c) => ['--conf', c]),
    s.jobFile,
    s.tasks,
    s.spadeCmd,
  ];
}

/** The command as a shell would take it, for `--plan` and the log. */
export function shellCommand(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./[\]-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** What spark-submit's log says about one failed task attempt, e.g. a lost executor. */
const LOST_TASK = /Lost task (\d+)\.(\d+) in stage [\d.]+ \(TID \d+\)(?: \([^)]*\))?: (.*)$/;
const LOST_EXECUTOR = /ERROR TaskSchedulerImpl: Lost executor (\S+) on ([^:\s]+): (.*)$/;
const PARTITION_FAILED = /^spade-spark: partition (\S+) failed: (.*)$/;
const JOB_FAILED = /^spade-spark: job failed: (.*)$/;
/** The job's exception for a partition attempt that failed (spark_job.py FAILED_MARK), inside Spark's traceback. */
const TASK_ERROR = /SPADE_PARTITION_FAILED (\{.*\})\s*$/;

export function createSparkExecutor(opts: SparkExecutorOptions): SparkExecutor {
  const log = opts.log ?? (() => {});
  const maxFailures = opts.maxFailures ?? DEFAULT_MAX_FAILURES;
  const spadeCmd = opts.spadeCmd ?? DEFAULT_SPADE_CMD;
  const submit = sparkSubmitPath(opts);
  const tasksFile = (runtag: string, n: number | string): string =>
    join(opts.tmpDir ?? tmpdir(), 'spade-spark', runtag, String(n), 'tasks.jsonl');
  const argsFor = (runtag: string, n: number | string): string[] =>
    sparkSubmitArgs({
      runtag,
      master: opts.master,
      cores: opts.cores,
      maxFailures,
      conf: opts.conf ?? [],
      jobFile: SPARK_JOB_FILE,
      tasks: tasksFile(runtag, n),
      spadeCmd,
    });
  let child: ChildProcess | null = null;
  let killTimer: NodeJS.Timeout | null = null;

  const signalGroup = (sig: NodeJS.Signals): void => {
    if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, sig);
    } catch {
      // already gone
    }
  };
  // A detached spark-submit would outlive us: end it when this process exits or is told to end.
  const onExit = (): void => signalGroup('SIGKILL');
  const onTerm = (sig: NodeJS.Signals): void => {
    signalGroup('SIGTERM');
    process.off('SIGTERM', onTerm).off('SIGHUP', onTerm);
    process.kill(process.pid, sig); // and die of it, as without this handler
  };

  const executor: SparkExecutor = {
    name: 'spark',
    describe(tasks) {
      const { partitions, bytes, first } = summarizeTasks(tasks);
      const lines = [
        `executor spark: one application on ${opts.master} (client mode), ${maxFailures} attempt(s) per partition`,
        `one partition at a time per executor: spark.executor.cores = spark.task.cpus = ${opts.cores} ` +
          `(a worker node's cores, --spark-cores); nodes run \`${spadeCmd} worker run-tasks\``,
        `${partitions} partition(s), ${formatBytes(bytes)} compressed input`,
      ];
      const runtag = first?.runtag ?? '<runtag>';
      lines.push(`spark-submit: ${shellCommand([submit, ...argsFor(runtag, '<n>')])}`);
      return lines;
    },

    async run(tasks, hooks) {
      const source = taskIterator(tasks);
      const head = await source.next();
      if (head.done) return { failed: [] };
      const first = head.value;
      const runtag = first.runtag;
      const store = openStore(first.output);
      const n = await nextNumberedDir(store, `${runtag}/_spark/`);
      const configKey = `${runtag}/_spark/${n}/config.json`;
      await store.put(configKey, first.settings.configText);
      const configUrl = store.urlOf(configKey);
      const file = tasksFile(runtag, n);
      mkdirSync(join(file, '..'), { recursive: true });
      // One line per task, streamed from the plan: Spark's task i runs line i, so the
      // partition ids (not the tasks) are kept to name the partition of a lost task.
      const ids: string[] = [];
      const out = createWriteStream(file);
      for (let r: IteratorResult<PartitionTask> = head; !r.done; r = await source.next()) {
        const t = r.value;
        ids.push(t.partition.id);
        const line = encodeTaskLine(t, t.settings.configText === first.settings.configText ? configUrl : null) + '\n';
        if (!out.write(line)) await once(out, 'drain');
      }
      out.end();
      await once(out, 'finish');
      const args = argsFor(runtag, n);
      log(`spark-submit: ${shellCommand([submit, ...args])}`);

      const pending = new Map(ids.map((id) => [id, true]));
      const collect = (): Promise<void> =>
        collectSuccessManifests(store, runtag, pending, (result) => hooks.onPartitionDone(result));

      const proc = spawn(submit, args, {
        env: opts.env ?? process.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      child = proc;
      process.on('exit', onExit).on('SIGTERM', onTerm).on('SIGHUP', onTerm);
      const tail: string[] = [];
      let partitionFailure: { partition: string; error: string } | null = null;
      let jobFailure = '';
      let lastTaskError: { partition: string; error: string } | null = null;
      // A failed Python task's reason comes lines after its "Lost task": held until then.
      let lost: { partition: string; attempt: number; reason: string } | null = null;
      const flushLost = (error?: string): void => {
        if (lost) hooks.onPartitionRetry(lost.partition, lost.attempt, error ?? lost.reason);
        lost = null;
      };
      const onLine = (line: string): void => {
        tail.push(line);
        if (tail.length > 40) tail.shift();
        let m: RegExpExecArray | null;
        if ((m = PARTITION_FAILED.exec(line))) {
          partitionFailure = { partition: m[1]!, error: m[2]! };
          log(line);
        } else if ((m = JOB_FAILED.exec(line))) {
          jobFailure = m[1]!;
          log(line);
        } else if ((m = LOST_TASK.exec(line))) {
          flushLost();
          const partition = ids[Number(m[1])];
          // TaskKilled: a sibling of a task that failed for good, cancelled with the job.
          if (partition && !m[3]!.startsWith('TaskKilled')) {
            lost = { partition, attempt: Number(m[2]) + 1, reason: m[3]! };
            if (!/PythonException/.test(m[3]!)) flushLost();
          }
        } else if ((m = LOST_EXECUTOR.exec(line))) {
          // Spark re-runs its tasks elsewhere without a per-task warning: not counted as an attempt.
          log(`Spark lost executor ${m[1]} on ${m[2]} (${m[3]}): its running partition is re-run on another`);
        } else if ((m = TASK_ERROR.exec(line))) {
          try {
            lastTaskError = JSON.parse(m[1]!) as { partition: string; error: string };
            flushLost(lastTaskError.error);
          } catch {
            // not our JSON after all: the reason stays Spark's
          }
        }
        if (!PARTITION_FAILED.test(line) && !JOB_FAILED.test(line) && line.trim()) opts.sparkLog?.(line);
      };
      // spark-submit writes the Python driver's output (our result lines) to stdout, its own log to stderr.
      createInterface({ input: proc.stdout! }).on('line', onLine);
      createInterface({ input: proc.stderr! }).on('line', onLine);
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
        proc.once('error', (error) => resolve({ code: null, signal: null, error }));
        proc.once('close', (code, signal) => resolve({ code, signal }));
      });

      const onAbort = (): void => executor.kill();
      if (opts.signal?.aborted) onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      let end: Awaited<typeof exited>;
      try {
        for (;;) {
          const tick = await Promise.race([
            exited,
            new Promise<null>((resolve) => setTimeout(resolve, opts.pollMs ?? 2000, null)),
          ]);
          await collect();
          if (tick) {
            end = tick;
            break;
          }
        }
      } finally {
        flushLost();
        opts.signal?.removeEventListener('abort', onAbort);
        process.off('exit', onExit).off('SIGTERM', onTerm).off('SIGHUP', onTerm);
        if (killTimer) clearTimeout(killTimer);
        killTimer = null;
        child = null;
        rmSync(join(file, '..'), { recursive: true, force: true });
        try {
          rmdirSync(join(file, '..', '..')); // the runtag's directory, once empty
        } catch {
          // another run of this runtag still has its file there
        }
      }

      const how = end.error
        ? `could not start ${submit}: ${end.error.message} (install Spark or pass --spark-submit / SPARK_HOME)`
        : end.signal
          ? `spark-submit ended by ${end.signal}`
          : `spark-submit exited with code ${end.code}`;
      if (end.code === 0) log(`Spark application done: ${ids.length - pending.size} partition(s)`);
      else log(`Spark application failed: ${how}`);
      // The job names the partition that failed for good; else the last task error Spark logged is it.
      const failure = (partitionFailure ?? (end.code === 0 ? null : lastTaskError)) as {
        partition: string;
        error: string;
      } | null;
      const reason = opts.signal?.aborted
        ? 'the Spark application was killed (interrupted)'
        : (failure ? `the application ended after partition ${failure.partition} failed` : '') ||
          jobFailure ||
          tail
            .filter((l) => /ERROR|Exception|Error:/.test(l))
            .slice(-3)
            .join(' | ') ||
          how;
      return {
        failed: [...pending.keys()].map((partition) => ({
          partition,
          error:
            failure?.partition === partition
              ? `failed ${maxFailures} attempt(s) on Spark: ${failure.error}`
              : end.code === 0
                ? 'the Spark application completed without a success manifest for this partition'
                : `${how}: ${reason}`,
        })),
      };
    },

    kill() {
      if (!child || killTimer) return;
      log('killing the Spark application (ending spark-submit, its driver)');
      signalGroup('SIGTERM');
      killTimer = setTimeout(() => signalGroup('SIGKILL'), 10_000);
      killTimer.unref();
    },

    async close() {
      executor.kill();
    },
  };
  return executor;
}
