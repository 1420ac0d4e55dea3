/**
 * The Kinesis flags shared by `spade replay` and `spade process`, validated
 * into KinesisPublishOptions (one-line UsageErrors, exit code 1).
 *
 * `--kinesis-tables` limits which tables go to the streams: given once it
 * applies to every `--kinesis-stream`; given as many times as there are
 * streams, the n-th applies to the n-th stream.
 */
import type { Argv } from 'yargs';
import { DEFAULT_KINESIS_CONCURRENCY } from '../../worker/output/kinesis-limits.js';
import { STREAM_NAME, type KinesisPublishOptions } from '../../worker/output/kinesis-publish.js';
import { UsageError } from './errors.js';

export function kinesisOptions<T>(y: Argv<T>) {
  return y
    .option('kinesis-stream', {
      type: 'string',
      array: true,
      describe: 'publish the committed rows to this Kinesis stream (repeatable)',
    })
    .option('kinesis-tables', {
      type: 'string',
      array: true,
      describe: 't1,t2: only these tables go to the stream(s) (once for all, or once per stream)',
    })
    .option('kinesis-region', { type: 'string', describe: 'region of the streams (default: AWS_REGION)' })
    .option('kinesis-endpoint', { type: 'string', describe: 'Kinesis endpoint URL (tests, other partitions)' })
    .option('kinesis-concurrency', {
      type: 'number',
      default: DEFAULT_KINESIS_CONCURRENCY,
      describe: 'PutRecords batches in flight per stream',
    });
}

export interface KinesisArgv {
  'kinesis-stream'?: string[];
  'kinesis-tables'?: string[];
  'kinesis-region'?: string;
  'kinesis-endpoint'?: string;
  'kinesis-concurrency': number;
}

/** Undefined when no stream is named; `knownTables` (if given) must hold every table named by --kinesis-tables. */
export function toKinesisOptions(
  argv: KinesisArgv,
  knownTables?: readonly string[],
): KinesisPublishOptions | undefined {
  const streams = argv['kinesis-stream'] ?? [];
  const tableLists = argv['kinesis-tables'] ?? [];
  if (streams.length === 0) {
    if (tableLists.length || argv['kinesis-region'] || argv['kinesis-endpoint'])
      throw new UsageError('--kinesis-tables, --kinesis-region and --kinesis-endpoint need --kinesis-stream');
    return undefined;
  }
  for (const s of streams) {
    if (!STREAM_NAME.test(s))
      throw new UsageError(`--kinesis-stream must be 1-128 letters, digits, '_', '.' or '-' (got '${s}')`);
  }
  if (new Set(streams).size !== streams.length) throw new UsageError('--kinesis-stream names a stream twice');
  if (tableLists.length > 1 && tableLists.length !== streams.length) {
    throw new UsageError(
      `--kinesis-tables given ${tableLists.length} times for ${streams.length} stream(s): give it once, or once per --kinesis-stream`,
    );
  }
  const lists = tableLists.map((l) => {
    const tables = l
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
    if (tables.length === 0) throw new UsageError(`--kinesis-tables '${l}' names no table`);
    const unknown = knownTables ? tables.filter((t) => !knownTables.includes(t)) : [];
    if (unknown.length) throw new UsageError(`--kinesis-tables: not replayed here: ${unknown.join(', ')}`);
    return tables;
  });
  const concurrency = argv['kinesis-concurrency'];
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new UsageError(`--kinesis-concurrency must be a positive integer, got ${concurrency}`);
  const endpoint = argv['kinesis-endpoint'];
  if (endpoint !== undefined && !/^https?:\/\/[^/]+/.test(endpoint))
    throw new UsageError(`--kinesis-endpoint must be an http(s):// URL, got '${endpoint}'`);
  return {
    targets: streams.map((stream, i) => ({ stream, tables: lists.length === 0 ? null : (lists[i] ?? lists[0]!) })),
    region: argv['kinesis-region'],
    endpoint,
    concurrency,
  };
}
