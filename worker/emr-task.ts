/**
 * `spade worker run-tasks` (alias `emr-task`, the name steps of earlier releases
 * call): the worker entry point of `--executor spark` and `--executor emr`.
 * The PySpark job (driver/executors/spark_job.py) pipes one partition task line
 * per Spark task into it on stdin. Each line runs through `runPartition` exactly
 * as the local executor runs it, with a fresh attempt id, so Spark's retries and
 * speculative copies write under keys of their own and only the attempt whose
 * success manifest lands last is ever loaded (SPEC section 5).
 *
 * Output: status lines on stderr (`reporter:status:`/`reporter:counter:`, the
 * form Hadoop streaming understood; the Spark job relays them to the executor's
 * log), one summary line per partition on stdout, and the exit code: non-zero
 * makes Spark retry the task. The file keeps its first name (emr-task.ts).
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { newAttemptId, runPartition, type PartitionTask } from './partition-task.js';
import { createTransformPool, type TransformPool } from './pool/pool.js';
import { readConfigText } from './transform/config-source.js';
import type { TransformSettings } from './transform/setup.js';

/**
 * One line of `<runtag>/_emr/<n>/tasks.jsonl`: a PartitionTask whose config text
 * is either inline (`settings.configText`) or, as the driver writes it, stored
 * once next to the manifest and named by `configUrl`: a config is often large
 * and would otherwise be repeated on every line. `attempt` is never set: each run
 * of a line makes its own.
 */
export interface EmrTaskLine extends Omit<PartitionTask, 'settings' | 'attempt'> {
  settings: Omit<TransformSettings, 'configText'> & { configText?: string };
  configUrl?: string;
}

export function encodeTaskLine(task: PartitionTask, configUrl: string | null): string {
  const line: EmrTaskLine = {
    runtag: task.runtag,
    partition: task.partition,
    edge: task.edge,
    output: task.output,
    rotateBytes: task.rotateBytes,
    settings: configUrl ? { ...task.settings, configText: undefined } : task.settings,
    configUrl: configUrl ?? undefined,
  };
  return JSON.stringify(line);
}

/** Hadoop hands non-text input formats' values as `<key>\t<value>` unless told to drop the key. */
const OFFSET_PREFIX = /^\d+\t/;

export function decodeTaskLine(raw: string, where: string): EmrTaskLine {
  const text = raw.replace(OFFSET_PREFIX, '').trim();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${where}: not a JSON partition task: ${(err as Error).message}`, { cause: err });
  }
  const t = value as Partial<EmrTaskLine> | null;
  if (
    !t ||
    typeof t !== 'object' ||
    typeof t.runtag !== 'string' ||
    typeof t.edge !== 'string' ||
    typeof t.output !== 'string' ||
    !t.partition ||
    typeof t.partition.id !== 'string' ||
    !Array.isArray(t.partition.files) ||
    !t.settings ||
    (typeof t.settings.configText !== 'string' && typeof t.configUrl !== 'string')
  ) {
    throw new Error(`${where}: not a partition task (needs runtag, edge, output, partition, settings and config)`);
  }
  return t as EmrTaskLine;
}

export interface EmrTaskOptions {
  /** Transform threads; default: every core (one task runs per node). */
  threads?: number;
  /** Use this pool instead of creating one (tests); it is left open. */
  pool?: TransformPool;
  /** How often a status line is written while a partition runs. */
  statusEveryMs?: number;
}

/**
 * Runs every task line of `stdin`; resolves with the process exit code (0: all
 * partitions done; 1: one failed, the rest of the split is not attempted since
 * YARN reruns the whole split anyway).
 */
export async function runEmrTask(
  stdin: Readable,
  stdout: Writable,
  stderr: Writable,
  opts: EmrTaskOptions = {},
): Promise<number> {
  const say = (line: string): void => void stderr.write(line + '\n');
  const configs = new Map<string, Promise<string>>();
  let pool: TransformPool | null = opts.pool ?? null;
  let lineNo = 0;
  try {
    for await (const raw of createInterface({ input: stdin, crlfDelay: Infinity })) {
      lineNo++;
      if (raw.trim() === '') continue;
      const line = decodeTaskLine(raw, `stdin line ${lineNo}`);
      let configText = line.settings.configText;
      if (configText === undefined) {
        const url = line.configUrl!;
        let text = configs.get(url);
        if (!text) configs.set(url, (text = readConfigText(url)));
        configText = await text;
      }
      const task: PartitionTask = {
        runtag: line.runtag,
        partition: line.partition,
        edge: line.edge,
        output: line.output,
        rotateBytes: line.rotateBytes,
        settings: { ...line.settings, configText },
        attempt: newAttemptId(),
      };
      pool ??= createTransformPool(opts.threads);
      const id = task.partition.id;
      say(`reporter:status:partition ${id} attempt ${task.attempt}: ${task.partition.files.length} file(s)`);
      const active = pool;
      const before = active.progress().lines;
      const timer = setInterval(() => {
        const p = active.progress();
        say(`reporter:status:partition ${id}: ${p.lines - before} line(s), ${p.files} file(s) read`);
      }, opts.statusEveryMs ?? 30_000);
      timer.unref();
      try {
        const result = await runPartition(task, active);
        say(`reporter:counter:spade,lines,${result.counts.lines}`);
        say(`reporter:counter:spade,partitions,1`);
        say(`reporter:status:partition ${id} done: ${result.files.length} file(s)`);
        stdout.write(`${id}\t${result.attempt}\t${result.files.length}\t${result.counts.lines}\n`);
      } finally {
        clearInterval(timer);
      }
    }
    return 0;
  } catch (err) {
    say(`reporter:counter:spade,failures,1`);
    say(`spade worker run-tasks: ${(err as Error).stack ?? String(err)}`);
    return 1;
  } finally {
    if (pool && !opts.pool) await pool.close();
  }
}
