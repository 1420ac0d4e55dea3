/**
 * `spade replay` (what replay.sh runs): flags of the original replay script plus
 * ours, validated per SPEC section 4 into ReplayOptions. Every rule gives a
 * one-line message and exit code 1.
 */
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { createInterface } from 'node:readline';
import { createEmrExecutor } from '../executors/emr.js';
import { createLocalExecutor } from '../executors/local.js';
import { sparkExecutorFromArgv } from './spark-args.js';
import { createWorkersExecutor, type WorkersExecutor } from '../executors/workers.js';
import { releaseRuntagLocks } from '../lock/runtag-lock.js';
import { createLogger, type Logger, type LogLevel } from '../log.js';
import { createProgress } from '../progress.js';
import { DEFAULT_NULL_RISE, runReplay, type ReplayOptions } from '../replay.js';
import { parseWindow, WindowError } from '../window.js';
import { redactText } from '../../worker/redact.js';
import { defaultPgliteUrl } from '../../worker/warehouse/open.js';
import { isS3Url, localPath } from '../../worker/store/location.js';
import type { TransformSettings } from '../../worker/transform/setup.js';
import { ReportedError, UsageError } from './errors.js';
import { kinesisOptions, toKinesisOptions } from './kinesis-flags.js';
import { fromOriginalForm } from './original-form.js';

function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return Promise.resolve(true);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  return new Promise((resolve) =>
    rl.question(question, (answer) => {
      rl.close();
      resolve(/^y(es)?$/i.test(answer.trim()));
    }),
  );
}

const SAFE_TAG = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function replayOptions<T>(y: Argv<T>) {
  return kinesisOptions(y)
    .usage('$0 replay [options] START END [TABLE ... | --all-tables]')
    .positional('start', { type: 'string', describe: "window start, US Pacific, '%Y-%m-%d %H:%M:%S'" })
    .positional('end', { type: 'string', describe: 'window end, US Pacific, after START' })
    .positional('tables', { type: 'string', array: true, describe: 'tables (event names) to replay' })
    .option('all-tables', {
      type: 'boolean',
      default: false,
      describe: 'every table (schema service, else the config)',
    })
    .option('rsurl', { type: 'string', describe: 'warehouse URL: postgres://, a Redshift endpoint, or pglite://DIR' })
    .option('skip-transform', {
      type: 'boolean',
      default: false,
      describe: "load an earlier run's output (needs --runtag)",
    })
    .option('skip-ace-upload', { type: 'boolean', default: false, describe: 'transform only, do not load' })
    .option('runtag', { type: 'string', describe: 'output prefix of the run (default [namespace-]YYYYMMDDTHHMMSS)' })
    .option('namespace', { type: 'string', describe: 'prefix of the default runtag' })
    .option('poolsize', { type: 'number', default: 4, describe: 'tables loaded in parallel' })
    .option('log', { choices: ['debug', 'info', 'warn', 'error'] as const, default: 'info' as const })
    .option('log-file', { type: 'string', default: 'replay.log', describe: "append the run's log here ('' for none)" })
    .option('edge', { type: 'string', describe: 'edge logs: s3://bucket[/prefix] or a directory (env EDGE_BUCKET)' })
    .option('output', {
      type: 'string',
      describe: 'transformed output: s3://bucket[/prefix] or a directory (env COMPACTER_BUCKET)',
    })
    .option('config', { type: 'string', describe: 'table config: file, http(s):// or s3:// (env SPADE_CONFIG)' })
    .option('schema', { type: 'string', default: 'physical', describe: 'warehouse schema' })
    .option('executor', { choices: ['local', 'emr', 'workers', 'spark'] as const, default: 'local' as const })
    .option('master', {
      type: 'string',
      describe: 'Spark master: spark://host:7077, yarn, local[N] (--executor spark; env SPARK_MASTER)',
    })
    .option('spark-submit', {
      type: 'string',
      describe: 'spark-submit binary (default $SPARK_HOME/bin/spark-submit, else PATH)',
    })
    .option('spark-spade-cmd', {
      type: 'string',
      describe: 'how the Spark (or EMR) nodes run spade (default spade on their PATH; EMR: /usr/local/bin/spade)',
    })
    .option('spark-cores', {
      type: 'number',
      describe: "a Spark worker node's cores: one partition per node at a time (default: this machine's)",
    })
    .option('spark-max-failures', {
      type: 'number',
      default: 4,
      describe: 'attempts per partition (spark.task.maxFailures)',
    })
    .option('spark-conf', { type: 'string', array: true, describe: 'extra spark-submit --conf KEY=VALUE (repeatable)' })
    .option('workers', {
      type: 'string',
      describe: 'worker nodes running `spade worker serve`, host:port,... (--executor workers; env SPADE_WORKERS)',
    })
    .option('worker-token-env', {
      type: 'string',
      default: 'SPADE_WORKER_TOKEN',
      describe: "env var holding the worker nodes' token (never passed on the command line)",
    })
    .option('task-timeout', {
      type: 'number',
      default: 7200,
      describe: 'seconds after which a worker task is abandoned and its partition run elsewhere',
    })
    .option('emr-cluster', { type: 'string', describe: 'run on this existing EMR cluster (j-...)' })
    .option('emr-instance-type', { type: 'string', default: 'm5.2xlarge', describe: 'core node type of a new cluster' })
    .option('emr-instance-count', { type: 'number', default: 2, describe: 'core nodes of a new cluster' })
    .option('emr-master-instance-type', { type: 'string', describe: 'master node type (default m5.xlarge)' })
    .option('emr-release', { type: 'string', default: 'emr-7.5.0' })
    .option('emr-bootstrap', {
      type: 'string',
      describe: 's3:// URL of scripts/emr/bootstrap.sh as staged by package.sh',
    })
    .option('keep-cluster', { type: 'boolean', default: false, describe: 'keep a new cluster running after the step' })
    .option('emr-instance-profile', { type: 'string', default: 'EMR_EC2_DefaultRole' })
    .option('emr-service-role', { type: 'string', default: 'EMR_DefaultRole' })
    .option('emr-log-uri', { type: 'string' })
    .option('emr-subnet', { type: 'string' })
    .option('emr-key-name', { type: 'string' })
    .option('emr-task-memory-mb', { type: 'number', describe: 'YARN memory of one map task (default: 3/4 of a node)' })
    .option('emr-region', { type: 'string' })
    .option('threads', { type: 'number', describe: 'transform threads of the local executor (default: cores)' })
    .option('partition-mb', { type: 'number', default: 256, describe: 'compressed MB of edge logs per partition' })
    .option('list-concurrency', {
      type: 'number',
      default: 8,
      describe: 'edge prefixes (dates, autoscale groups) listed at the same time',
    })
    .option('max-shrink', {
      type: 'number',
      default: 0.1,
      describe: 'refuse a table whose window would lose more than this fraction of its rows',
    })
    .option('allow-shrink', {
      type: 'boolean',
      default: false,
      describe: 'load even when the shrink guard would refuse',
    })
    .option('accept-damaged-input', {
      type: 'boolean',
      default: false,
      describe: 'load although edge files were truncated or corrupt (their complete lines; still reported)',
    })
    .option('create-tables', { type: 'boolean', default: true, describe: 'create missing tables (PostgreSQL, PGlite)' })
    .option('iam-role', { type: 'string', describe: 'Redshift COPY IAM role ARN (env REDSHIFT_IAM_ROLE)' })
    .option('plan', { type: 'boolean', default: false, describe: 'print what would run, change nothing' })
    .option('preview', {
      type: 'boolean',
      default: false,
      describe: 'transform, load and review every table, then roll every one back (then: --skip-transform --runtag)',
    })
    .option('review', {
      choices: ['compact', 'full'] as const,
      default: 'compact' as const,
      describe: 'printed review: flagged hours and columns only, or all of them',
    })
    .option('null-rise', {
      type: 'number',
      default: DEFAULT_NULL_RISE,
      describe: 'flag a column whose NULL share rises by more than this (0.2 = 20 points)',
    })
    .option('review-columns', {
      type: 'boolean',
      default: true,
      describe:
        'review every column (NULL shares, min/max); --no-review-columns: rows per hour only, cheaper on wide tables',
    })
    .option('fail-on-review', {
      type: 'boolean',
      default: false,
      describe: 'roll back a table the review flags and exit non-zero (with --preview: exit 3)',
    });
}

export type ReplayArgv = Awaited<ReturnType<ReturnType<typeof replayOptions>['parseAsync']>> & {
  start?: string;
  end?: string;
  tables?: string[];
  'geoip-city'?: string;
  'geoip-asn'?: string;
  userIdMapping?: TransformSettings['userIdMapping'];
};

/** A bare bucket name in the original's env vars means an S3 bucket. */
export function locationFromEnv(value: string | undefined): string | undefined {
  if (!value) return undefined;
  if (value.includes('://') || value.startsWith('/') || value.startsWith('.')) return value;
  return `s3://${value}`;
}

/**
 * A local directory as an absolute path, S3 locations as they are: partition tasks
 * run in other working directories (a Spark executor's, a worker daemon's).
 */
function absoluteLocation(location: string, flag: string): string {
  if (isS3Url(location)) return location;
  try {
    return localPath(location);
  } catch (err) {
    throw new UsageError(`--${flag}: ${(err as Error).message}`);
  }
}

function isLocal(location: string): boolean {
  return !location.startsWith('s3://');
}

function defaultRuntag(namespace: string | undefined): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').slice(0, 15);
  return namespace ? `${namespace}-${stamp}` : stamp;
}

export function toReplayOptions(argv: ReplayArgv, env: NodeJS.ProcessEnv = process.env): ReplayOptions {
  if (!argv.start || !argv.end)
    throw new UsageError('START and END are required: replay [options] START END [TABLE ... | --all-tables]');
  let window;
  try {
    window = parseWindow(argv.start, argv.end);
  } catch (err) {
    if (err instanceof WindowError) throw new UsageError(err.message);
    throw err;
  }
  const tables = argv.tables ?? [];
  if (tables.length === 0 && !argv['all-tables'])
    throw new UsageError('name the tables to replay, or pass --all-tables');
  if (tables.length > 0 && argv['all-tables']) throw new UsageError('name tables or pass --all-tables, not both');
  if (argv['skip-transform'] && argv['skip-ace-upload'])
    throw new UsageError('--skip-transform with --skip-ace-upload: nothing to do');
  if (argv['skip-transform'] && !argv.runtag)
    throw new UsageError('--skip-transform needs the --runtag of the run to load');
  if (argv.runtag !== undefined && !SAFE_TAG.test(argv.runtag)) {
    throw new UsageError(`--runtag must be letters, digits, '.', '_' or '-' (got '${argv.runtag}')`);
  }
  if (argv.namespace !== undefined && !SAFE_TAG.test(argv.namespace)) {
    throw new UsageError(`--namespace must be letters, digits, '.', '_' or '-' (got '${argv.namespace}')`);
  }
  if (!Number.isInteger(argv.poolsize) || argv.poolsize < 1)
    throw new UsageError(`--poolsize must be a positive integer, got ${argv.poolsize}`);
  if (argv.threads !== undefined && (!Number.isInteger(argv.threads) || argv.threads < 1)) {
    throw new UsageError(`--threads must be a positive integer, got ${argv.threads}`);
  }
  if (!(argv['partition-mb'] > 0)) throw new UsageError(`--partition-mb must be positive, got ${argv['partition-mb']}`);
  if (!(Number.isInteger(argv['list-concurrency']) && argv['list-concurrency'] >= 1 && argv['list-concurrency'] <= 256))
    throw new UsageError(`--list-concurrency must be an integer from 1 to 256, got ${argv['list-concurrency']}`);
  if (!(argv['max-shrink'] >= 0 && argv['max-shrink'] <= 1))
    throw new UsageError(`--max-shrink must be between 0 and 1, got ${argv['max-shrink']}`);
  if (!(argv['null-rise'] >= 0 && argv['null-rise'] <= 1))
    throw new UsageError(`--null-rise must be between 0 and 1, got ${argv['null-rise']}`);
  if (argv.preview && argv['skip-ace-upload'])
    throw new UsageError('--preview with --skip-ace-upload: nothing is loaded, so there is nothing to preview');
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,126}$/.test(argv.schema))
    throw new UsageError(`--schema must be a plain identifier, got '${argv.schema}'`);
  const edgeFlag = argv.edge ?? locationFromEnv(env.EDGE_BUCKET);
  if (!edgeFlag) throw new UsageError('no edge logs: pass --edge s3://bucket or a directory (or set EDGE_BUCKET)');
  const outputFlag = argv.output ?? locationFromEnv(env.COMPACTER_BUCKET);
  if (!outputFlag)
    throw new UsageError('no output location: pass --output s3://bucket or a directory (or set COMPACTER_BUCKET)');
  const edge = absoluteLocation(edgeFlag, 'edge');
  const output = absoluteLocation(outputFlag, 'output');
  const config = argv.config ?? env.SPADE_CONFIG;
  if (!config) throw new UsageError('no table config: pass --config FILE|URL (or set SPADE_CONFIG)');
  let rsurl = argv.rsurl ?? null;
  if (!rsurl && !argv['skip-ace-upload']) {
    // A local run (edge and output are directories) loads an embedded PGlite by default.
    if (!isLocal(edge) || !isLocal(output)) throw new UsageError('loading needs --rsurl (or pass --skip-ace-upload)');
    rsurl = defaultPgliteUrl(env);
  }
  return {
    window,
    tables: argv['all-tables'] ? 'all' : tables,
    edge,
    output,
    config,
    schema: argv.schema,
    rsurl,
    runtag: argv.runtag ?? defaultRuntag(argv.namespace),
    skipTransform: argv['skip-transform'],
    skipLoad: argv['skip-ace-upload'],
    poolsize: argv.poolsize,
    partitionBytes: Math.round(argv['partition-mb'] * 1024 * 1024),
    listConcurrency: argv['list-concurrency'],
    maxShrink: argv['max-shrink'],
    allowShrink: argv['allow-shrink'],
    plan: argv.plan,
    geoipCity: argv['geoip-city'] === undefined ? undefined : resolve(argv['geoip-city']),
    geoipAsn: argv['geoip-asn'] === undefined ? undefined : resolve(argv['geoip-asn']),
    userIdMapping: argv.userIdMapping,
    blueprintUrl: env.BLUEPRINT_URL || undefined,
    createTables: argv['create-tables'],
    iamRole: argv['iam-role'] ?? env.REDSHIFT_IAM_ROLE,
    acceptDamagedInput: argv['accept-damaged-input'],
    kinesis: toKinesisOptions(argv, argv['all-tables'] ? undefined : tables),
    preview: argv.preview,
    nullRise: argv['null-rise'],
    failOnReview: argv['fail-on-review'],
    reviewDetail: argv.review,
    reviewColumns: argv['review-columns'],
  };
}

/** `--executor workers`: a bad --workers list or a missing token is a UsageError. */
export function workersExecutorFromArgv(
  argv: ReplayArgv,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
): WorkersExecutor {
  const workers = (argv.workers ?? env.SPADE_WORKERS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (workers.length === 0) throw new UsageError('--executor workers needs --workers host:port,... (or SPADE_WORKERS)');
  const tokenEnv = argv['worker-token-env'];
  const token = env[tokenEnv];
  if (!token)
    throw new UsageError(`--executor workers: set ${tokenEnv} to the token the worker nodes were started with`);
  if (!(argv['task-timeout'] > 0)) throw new UsageError(`--task-timeout must be positive, got ${argv['task-timeout']}`);
  try {
    return createWorkersExecutor({
      workers,
      token,
      taskTimeoutMs: argv['task-timeout'] * 1000,
      log: (m) => log.warn(m),
    });
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err });
  }
}

export async function replayCommand(original: ReplayArgv, threads: number): Promise<number> {
  const argv = fromOriginalForm(original);
  const opts = toReplayOptions(argv);
  const log = createLogger({ level: argv.log as LogLevel, file: argv['log-file'] || null });
  log.info(`spade replay ${process.argv.slice(3).map(redactText).join(' ')}`);
  const abort = new AbortController();
  const executor =
    argv.executor === 'emr'
      ? createEmrExecutor({
          clusterId: argv['emr-cluster'],
          instanceType: argv['emr-instance-type'],
          instanceCount: argv['emr-instance-count'],
          masterInstanceType: argv['emr-master-instance-type'],
          releaseLabel: argv['emr-release'],
          bootstrapUri: argv['emr-bootstrap'],
          keepCluster: argv['keep-cluster'],
          jobFlowRole: argv['emr-instance-profile'],
          serviceRole: argv['emr-service-role'],
          logUri: argv['emr-log-uri'],
          subnetId: argv['emr-subnet'],
          ec2KeyName: argv['emr-key-name'],
          taskMemoryMb: argv['emr-task-memory-mb'],
          cores: argv['spark-cores'],
          spadeCommand: argv['spark-spade-cmd'],
          region: argv['emr-region'],
          signal: abort.signal,
          log: log.info,
        })
      : argv.executor === 'workers'
        ? workersExecutorFromArgv(argv, log)
        : argv.executor === 'spark'
          ? sparkExecutorFromArgv(argv, threads, abort.signal, log)
          : createLocalExecutor({ threads: argv.threads ?? threads });
  // Exiting skips every finally: release the runtag's lock first (bounded, for a
  // store that does not answer), then exit as the signal would have.
  let exiting = false;
  const exitReleasingLock = (code: number, repeatExitsAtOnce: boolean): void => {
    if (exiting) {
      if (repeatExitsAtOnce) process.exit(code); // a second Ctrl-C does not wait
      return;
    }
    exiting = true;
    setTimeout(() => process.exit(code), 5_000).unref();
    void releaseRuntagLocks().finally(() => process.exit(code));
  };
  // Ctrl-C during an EMR step or a Spark application: it keeps running on the cluster unless ended, so ask.
  const onInterrupt = (): void => {
    if ((argv.executor !== 'emr' && argv.executor !== 'spark') || abort.signal.aborted) {
      exitReleasingLock(130, true);
      return;
    }
    const what = argv.executor === 'emr' ? 'cancel the EMR step' : 'kill the Spark application';
    void confirm(`${what}? [y/N] `).then((yes) =>
      yes ? abort.abort() : log.info(`${argv.executor === 'emr' ? 'step' : 'application'} left running`),
    );
  };
  // SIGTERM (systemd, kill) and SIGHUP (a closed terminal or tmux session) end the run too.
  const onTerminate = (signal: NodeJS.Signals): void => exitReleasingLock(signal === 'SIGHUP' ? 129 : 143, false);
  process.on('SIGINT', onInterrupt).on('SIGTERM', onTerminate).on('SIGHUP', onTerminate);
  const progress = createProgress({
    log,
    tty: Boolean(process.stderr.isTTY),
    live: () => executor.progress?.() ?? { bytes: 0, lines: 0, files: 0 },
  });
  try {
    const result = await runReplay(opts, {
      executor,
      log,
      progress,
      print: (l) => process.stdout.write(redactText(l) + '\n'),
    });
    progress.stop();
    const p = progress.phases;
    if (!opts.plan) {
      log.info(
        `runtag ${result.runtag} finished with exit code ${result.exitCode}; phases: ` +
          Object.entries(p)
            .map(([k, v]) => `${k} ${v.toFixed(1)}s`)
            .join(', '),
      );
    }
    if (executor.name === 'workers') {
      const st = (executor as WorkersExecutor).stats();
      log.info(
        `workers: ${st.dispatched} task(s), ${st.redispatched} re-dispatched after a failure; ` +
          `nodes idle between tasks ${(st.idleBetweenTasksMs / 1000).toFixed(1)}s in total; ` +
          st.nodes.map((n) => `${n.node} ${n.tasksDone} done${n.blacklisted ? ' (dropped)' : ''}`).join(', '),
      );
    }
    return result.exitCode;
  } catch (err) {
    progress.stop();
    log.error((err as Error).message);
    if (process.env.SPADE_DEBUG === '1') throw err;
    throw new ReportedError((err as Error).message);
  } finally {
    process.off('SIGINT', onInterrupt).off('SIGTERM', onTerminate).off('SIGHUP', onTerminate);
    await executor.close();
  }
}
