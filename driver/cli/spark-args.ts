/** `--executor spark` from the command line: every bad value is a UsageError. */
import { createSparkExecutor, type SparkExecutor } from '../executors/spark.js';
import type { Logger } from '../log.js';
import { UsageError } from './errors.js';
import type { ReplayArgv } from './replay.js';

function positiveInt(flag: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new UsageError(`--${flag} must be a positive integer, got ${value}`);
  return value;
}

export function sparkExecutorFromArgv(
  argv: ReplayArgv,
  localCores: number,
  signal: AbortSignal,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
): SparkExecutor {
  const master = argv.master ?? env.SPARK_MASTER;
  if (!master)
    throw new UsageError('--executor spark needs --master spark://HOST:7077, yarn or local[N] (or SPARK_MASTER)');
  const conf = (argv['spark-conf'] ?? []).map(String);
  for (const c of conf) {
    if (!/^[\w.-]+=/.test(c)) throw new UsageError(`--spark-conf takes KEY=VALUE, got '${c}'`);
  }
  return createSparkExecutor({
    master,
    sparkSubmit: argv['spark-submit'],
    spadeCmd: argv['spark-spade-cmd'],
    cores: positiveInt('spark-cores', argv['spark-cores'] ?? localCores),
    maxFailures: positiveInt('spark-max-failures', argv['spark-max-failures']),
    conf,
    signal,
    log: (m) => log.info(m),
    sparkLog: (m) => log.debug(`spark: ${m}`),
  });
}
