/**
 * The original replay script's invocation:
 *
 *   replay.sh MASTER_IP REDSHIFT_TARGET START END [TABLE ... | --all-tables]
 *
 * recognised when the first positional is not a date, and rewritten into
 * `--executor spark --master spark://MASTER_IP:7077 --rsurl REDSHIFT_TARGET`.
 * MASTER_IP may carry a port (host:port) or be a whole master URL (spark://…,
 * yarn, local[N]); a REDSHIFT_TARGET without a scheme is a Redshift endpoint.
 */
import { UsageError } from './errors.js';
import type { ReplayArgv } from './replay.js';

export const SPARK_MASTER_PORT = 7077;

/** START and END always begin with a year; the original's MASTER_IP never does. */
const DATE_START = /^\d{4}-/;
const HOST_PORT = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?$/;

export function masterFromOriginal(masterIp: string): string {
  if (masterIp.includes('://') || masterIp === 'yarn' || /^local(\[[\d*]+\])?$/.test(masterIp)) return masterIp;
  if (!HOST_PORT.test(masterIp)) {
    throw new UsageError(`MASTER_IP '${masterIp}' is neither a host, host:port, nor a Spark master URL`);
  }
  return masterIp.includes(':') ? `spark://${masterIp}` : `spark://${masterIp}:${SPARK_MASTER_PORT}`;
}

export function rsurlFromOriginal(target: string): string {
  if (target.includes('://') || target.startsWith('/') || target.startsWith('.')) return target;
  return `redshift://${target}`;
}

export function isOriginalForm(argv: Pick<ReplayArgv, 'start'>): boolean {
  return argv.start !== undefined && !DATE_START.test(argv.start);
}

export function fromOriginalForm(argv: ReplayArgv): ReplayArgv {
  if (!isOriginalForm(argv)) return argv;
  const [start, end, ...tables] = argv.tables ?? [];
  if (argv.master !== undefined) throw new UsageError('MASTER_IP given twice: as the first positional and --master');
  if (argv.rsurl !== undefined) {
    throw new UsageError('REDSHIFT_TARGET given twice: as the second positional and --rsurl');
  }
  if (argv.executor !== 'local' && argv.executor !== 'spark') {
    throw new UsageError(
      `the original form (MASTER_IP REDSHIFT_TARGET START END) runs on Spark, not --executor ${argv.executor}`,
    );
  }
  if (argv.end === undefined || start === undefined || end === undefined) {
    throw new UsageError('the original form needs MASTER_IP REDSHIFT_TARGET START END [TABLE ... | --all-tables]');
  }
  return {
    ...argv,
    executor: 'spark',
    master: masterFromOriginal(argv.start!),
    rsurl: rsurlFromOriginal(argv.end),
    start,
    end,
    tables,
  };
}
