#!/usr/bin/env node
/**
 * The `spade` command line: one entry point, one subcommand per job. Flag
 * parsing and validation only; each command's work lives with its owner.
 */
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { reportFatal, UsageError } from './errors.js';
import { kinesisOptions, toKinesisOptions } from './kinesis-flags.js';
import { locationFromEnv, replayCommand, replayOptions } from './replay.js';

function positiveInt(name: string, value: unknown): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, got ${String(value)}`);
  return n;
}

const geoipOptions = (y: Argv) =>
  y
    .option('geoip-city', {
      type: 'string',
      describe: 'MaxMind GeoIP2/GeoLite2 City .mmdb file (ipCity, ipCountry, ipRegion)',
    })
    .option('geoip-asn', { type: 'string', describe: 'MaxMind GeoLite2 ASN .mmdb file (ipAsn, ipAsnInteger)' })
    .option('user-id-url', {
      type: 'string',
      describe:
        'userIDWithMapping: HTTP JSON lookup of a login, {login} is replaced, e.g. http://users/lookup?login={login}',
    })
    .option('user-id-json-path', {
      type: 'string',
      default: 'id',
      describe: 'userIDWithMapping: dot path of the id in the answer',
    });

function userIdMapping(argv: { 'user-id-url'?: string; 'user-id-json-path'?: string }) {
  const url = argv['user-id-url'];
  if (!url) return undefined;
  if (!/^https?:\/\//.test(url) || !url.includes('{login}')) {
    throw new UsageError(`--user-id-url must be an http(s) URL containing {login}, got ${url}`);
  }
  return { urlTemplate: url, jsonPath: argv['user-id-json-path'] ?? 'id' };
}

/** A directory (not S3, not stdin): the embedded default warehouse is for runs whose input and output are local. */
function isLocalDirectory(location: string | undefined): boolean {
  return location !== undefined && location !== '' && location !== '-' && !location.startsWith('s3://');
}

async function main(): Promise<void> {
  const parser = yargs(hideBin(process.argv))
    .scriptName('spade')
    .usage('$0 <command> [options]')
    .command(
      'transform [inputs..]',
      'transform edge logs (files, s3:// objects or stdin) into gzip TSV files',
      (y) =>
        geoipOptions(y)
          .positional('inputs', { type: 'string', array: true, describe: 'local files or s3:// objects; none: stdin' })
          .option('config', {
            type: 'string',
            demandOption: true,
            describe: 'table config: file, http(s):// or s3:// URL',
          })
          .option('out', { type: 'string', demandOption: true, describe: 'output directory or s3://bucket/prefix' })
          .option('threads', { type: 'number', describe: 'transform threads (default: cores)' })
          .option('rotate-mb', {
            type: 'number',
            describe: 'uncompressed MB per output file before rotating',
            default: 256,
          })
          .option('tables', { type: 'string', array: true, describe: 'only these tables' })
          .option('accept-damaged-input', {
            type: 'boolean',
            default: false,
            describe: 'exit 0 although an input was truncated or corrupt (what could be read is kept, and listed)',
          }),
      async (argv) => {
        const { transformCommand } = await import('../../worker/cli/transform.js');
        const { defaultThreads } = await import('../../worker/pool/pool.js');
        const summary = await transformCommand({
          inputs: (argv.inputs as string[] | undefined) ?? [],
          config: argv.config,
          out: argv.out,
          threads: argv.threads === undefined ? defaultThreads() : positiveInt('threads', argv.threads),
          geoipCity: argv['geoip-city'],
          geoipAsn: argv['geoip-asn'],
          rotateMb: positiveInt('rotate-mb', argv['rotate-mb']),
          tables: argv.tables,
          userIdMapping: userIdMapping(argv),
          acceptDamagedInput: argv['accept-damaged-input'],
        });
        process.exitCode = summary.exitCode;
      },
    )
    .command(
      'parse',
      'read edge lines on stdin, print one JSON object per event',
      (y) => geoipOptions(y).option('config', { type: 'string', demandOption: true, describe: 'table config' }),
      async (argv) => {
        const { parseCommand } = await import('../../worker/cli/parse.js');
        await parseCommand(
          {
            config: argv.config,
            geoipCity: argv['geoip-city'],
            geoipAsn: argv['geoip-asn'],
            userIdMapping: userIdMapping(argv),
          },
          process.stdin,
          process.stdout,
        );
      },
    )
    .command(
      'parse-server',
      'serve a page and an HTTP API showing how edge lines and tracking requests parse',
      (y) =>
        geoipOptions(y)
          .option('config', {
            type: 'string',
            demandOption: true,
            describe: 'table config: file, http(s):// or s3:// URL',
          })
          .option('host', {
            type: 'string',
            default: '127.0.0.1',
            describe: 'address to listen on; anything but loopback requires a token',
          })
          .option('port', { type: 'number', default: 8888, describe: 'TCP port (0: any free port)' })
          .option('token', {
            type: 'string',
            describe: 'require Authorization: Bearer <token> or ?token= (default: env SPADE_PARSE_TOKEN)',
          }),
      async (argv) => {
        const port = Number(argv.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) {
          throw new UsageError(`--port must be an integer in 0..65535, got ${String(argv.port)}`);
        }
        const { parseServerCommand } = await import('../../worker/server/parse-server.js');
        await parseServerCommand({
          config: argv.config,
          geoipCity: argv['geoip-city'],
          geoipAsn: argv['geoip-asn'],
          host: argv.host,
          port,
          token: argv.token,
        });
      },
    )
    .command(
      'ddl [tables..]',
      'print CREATE TABLE statements for a table config',
      (y) =>
        y
          .positional('tables', { type: 'string', array: true, describe: 'only these tables (default: all)' })
          .option('config', { type: 'string', demandOption: true, describe: 'table config' })
          .option('dialect', { choices: ['redshift', 'postgres'] as const, default: 'redshift' as const })
          .option('schema', { type: 'string', default: 'physical', describe: 'warehouse schema' }),
      async (argv) => {
        const { ddlCommand } = await import('./ddl-command.js');
        process.stdout.write(
          await ddlCommand({
            config: argv.config,
            dialect: argv.dialect,
            schema: argv.schema,
            tables: argv.tables as string[] | undefined,
          }),
        );
      },
    )
    .command(
      'replay [start] [end] [tables..]',
      'replace a US Pacific time window of tables in the warehouse with reprocessed edge logs',
      (y) => replayOptions(geoipOptions(y)),
      async (argv) => {
        const { defaultThreads } = await import('../../worker/pool/pool.js');
        process.exitCode = await replayCommand({ ...argv, userIdMapping: userIdMapping(argv) }, defaultThreads());
      },
    )
    .command(
      'review',
      "print a replay run's review again, from its stored <runtag>/_review.json",
      (y) =>
        y
          .option('runtag', { type: 'string', demandOption: true, describe: 'the run to review' })
          .option('output', {
            type: 'string',
            describe: "the replay's output: s3://bucket[/prefix] or a directory (env COMPACTER_BUCKET)",
          })
          .option('review', {
            choices: ['compact', 'full'] as const,
            default: 'compact' as const,
            describe: 'flagged hours and columns only, or all of them',
          }),
      async (argv) => {
        const output = argv.output ?? locationFromEnv(process.env.COMPACTER_BUCKET);
        if (!output) throw new UsageError('--output (or env COMPACTER_BUCKET) is required');
        const { reviewCommand } = await import('./review.js');
        const lines = await reviewCommand({ runtag: argv.runtag, output, detail: argv.review });
        process.stdout.write(lines.join('\n') + '\n');
      },
    )
    .command(
      'worker',
      'commands the replay executors run on worker machines',
      (y) =>
        y
          .command(
            // emr-task: the name steps of earlier releases call it by, on clusters still running them.
            ['run-tasks', 'emr-task'],
            'run the partition tasks on stdin, one JSON line each (what --executor spark and emr run on a node)',
            (w) => w.option('threads', { type: 'number', describe: 'transform threads (default: cores)' }),
            async (argv) => {
              const { runEmrTask } = await import('../../worker/emr-task.js');
              process.exitCode = await runEmrTask(process.stdin, process.stdout, process.stderr, {
                threads: argv.threads === undefined ? undefined : positiveInt('threads', argv.threads),
              });
              // A failed partition ends the run even when the caller keeps stdin open (the Spark job does).
              if (process.exitCode !== 0) process.stdin.destroy();
            },
          )
          .command(
            'serve',
            'worker node daemon for --executor workers: runs posted partition tasks, one at a time',
            (w) =>
              w
                .option('host', {
                  type: 'string',
                  default: '127.0.0.1',
                  describe: 'address to listen on (0.0.0.0 on a worker node)',
                })
                .option('port', { type: 'number', default: 7070, describe: 'TCP port (0: any free port)' })
                .option('threads', { type: 'number', describe: 'transform threads (default: cores)' })
                .option('token-file', {
                  type: 'string',
                  describe: 'file holding the shared token (default: env SPADE_WORKER_TOKEN)',
                })
                .option('token', {
                  type: 'string',
                  describe: 'the shared token; visible in process listings: prefer SPADE_WORKER_TOKEN or --token-file',
                })
                .option('drain-seconds', {
                  type: 'number',
                  default: 600,
                  describe: 'on SIGTERM, longest wait for the running task',
                })
                .option('allow-edge', {
                  type: 'string',
                  array: true,
                  describe:
                    'directory or s3://bucket[/prefix] tasks may read edge logs from (repeatable; default: S3 only)',
                })
                .option('allow-output', {
                  type: 'string',
                  array: true,
                  describe:
                    'directory or s3://bucket[/prefix] tasks may write output to (repeatable; default: S3 only)',
                })
                .option('allow-user-id-url', {
                  type: 'string',
                  array: true,
                  describe:
                    "http(s) URL prefix a task's user-id lookup (--user-id-url of the run) may name (repeatable; default: none)",
                }),
            async (argv) => {
              const port = Number(argv.port);
              if (!Number.isInteger(port) || port < 0 || port > 65535) {
                throw new UsageError(`--port must be an integer in 0..65535, got ${String(argv.port)}`);
              }
              if (!(argv['drain-seconds'] >= 0)) {
                throw new UsageError(`--drain-seconds must be 0 or more, got ${String(argv['drain-seconds'])}`);
              }
              const { workerServeCommand } = await import('../../worker/server/worker-daemon.js');
              await workerServeCommand({
                host: argv.host,
                port,
                threads: argv.threads === undefined ? undefined : positiveInt('threads', argv.threads),
                token: argv.token,
                tokenFile: argv['token-file'],
                drainMs: argv['drain-seconds'] * 1000,
                allowEdge: argv['allow-edge'] as string[] | undefined,
                allowOutput: argv['allow-output'] as string[] | undefined,
                allowUserIdUrl: argv['allow-user-id-url'] as string[] | undefined,
              });
            },
          )
          .demandCommand(1, 'name a worker command: run-tasks, serve'),
      () => {},
    )
    .command(
      'process',
      'continuous processor: follow edge input (S3 prefix, directory or stdin) into committed output batches',
      (y) =>
        kinesisOptions(geoipOptions(y))
          .option('follow', { type: 'boolean', describe: 'run continuously (required, unless --check)' })
          .option('check', {
            type: 'boolean',
            default: false,
            describe: 'connect to the warehouse, check every table against the config, print what would load, exit',
          })
          .option('input', {
            type: 'string',
            // Takes the next word whatever it is: yargs otherwise reads a lone `-` as a stray positional.
            requiresArg: true,
            describe: 's3://bucket/prefix or directory to follow; "-": stdin (default: env EDGE_BUCKET, else stdin)',
          })
          .option('output', {
            type: 'string',
            describe: 'output s3://bucket/prefix or directory (default: env COMPACTER_BUCKET)',
          })
          .option('state-dir', {
            type: 'string',
            demandOption: true,
            describe: 'checkpoint and spool directory (persistent)',
          })
          .option('config', {
            type: 'string',
            describe: 'table config: file, http(s):// or s3:// URL (default: env BLUEPRINT_URL)',
          })
          .option('rotate-mb', { type: 'number', default: 100, describe: 'uncompressed MB per output file' })
          .option('rotate-minutes', {
            type: 'number',
            default: 10,
            describe: 'commit the open batch after this many minutes',
          })
          .option('batch-input-mb', {
            type: 'number',
            default: 1024,
            describe: 'commit the open batch after this much input',
          })
          .option('poll-seconds', { type: 'number', default: 10, describe: 'listing interval' })
          .option('lookback-days', {
            type: 'number',
            default: 1,
            describe: 'date prefixes tracked before the newest committed one',
          })
          .option('start-date', {
            type: 'string',
            describe: 'first date prefix YYYYMMDD on a fresh state dir (default: today UTC)',
          })
          .option('reload-seconds', {
            type: 'number',
            default: 300,
            describe: 're-read the config this often (and on SIGHUP)',
          })
          .option('shutdown-timeout', { type: 'number', default: 30, describe: 'seconds allowed for a graceful stop' })
          .option('metrics-port', { type: 'number', describe: 'serve /healthz and /metrics on 127.0.0.1:<port>' })
          .option('metrics-token', {
            type: 'string',
            describe: 'require a Bearer token (default: env SPADE_METRICS_TOKEN)',
          })
          .option('rsurl', {
            type: 'string',
            describe:
              'load each committed batch: postgres://, a Redshift endpoint (*.redshift.amazonaws.com, redshift://) or pglite://DIR (password in PGPASSWORD)',
          })
          .option('schema', { type: 'string', default: 'physical', describe: 'warehouse schema for --rsurl' })
          .option('iam-role', { type: 'string', describe: 'Redshift COPY IAM role ARN (env REDSHIFT_IAM_ROLE)' })
          .option('load-every', {
            type: 'number',
            describe:
              'seconds between two loads, each one transaction (default: Redshift 300, otherwise 0 = each batch)',
          })
          .option('create-tables', {
            type: 'boolean',
            default: true,
            describe: 'create missing tables (PostgreSQL, PGlite)',
          })
          .option('skip-ace-upload', {
            type: 'boolean',
            default: false,
            describe: 'load nothing (no embedded default warehouse for local input and output)',
          })
          .option('threads', { type: 'number', describe: 'transform threads (default: one per core)' }),
      async (argv) => {
        if (!argv.follow && !argv.check) {
          throw new UsageError('spade process needs --follow (only the continuous mode exists) or --check');
        }
        const input = argv.input ?? process.env.EDGE_BUCKET;
        const output = argv.output ?? process.env.COMPACTER_BUCKET;
        const config = argv.config ?? process.env.BLUEPRINT_URL;
        if (!output) throw new UsageError('--output (or env COMPACTER_BUCKET) is required');
        if (!config) throw new UsageError('--config (or env BLUEPRINT_URL) is required');
        const loadEvery = argv['load-every'];
        if (loadEvery !== undefined && !(loadEvery >= 0 && Number.isFinite(loadEvery))) {
          throw new UsageError(`--load-every must be 0 or more seconds, got ${String(loadEvery)}`);
        }
        if (argv['skip-ace-upload'] && argv.rsurl)
          throw new UsageError('--skip-ace-upload and --rsurl exclude each other');
        let rsurl = argv.rsurl;
        if (!rsurl && !argv['skip-ace-upload'] && isLocalDirectory(input) && isLocalDirectory(output)) {
          // As the replay: a run whose input and output are local directories loads an embedded PGlite.
          const { defaultPgliteUrl } = await import('../../worker/warehouse/open.js');
          rsurl = defaultPgliteUrl();
        }
        if (rsurl) {
          const { parseWarehouseUrl } = await import('../../worker/warehouse/open.js');
          try {
            parseWarehouseUrl(rsurl);
          } catch (err) {
            throw new UsageError(`--rsurl: ${(err as Error).message}`);
          }
        }
        const iamRole = argv['iam-role'] ?? (process.env.REDSHIFT_IAM_ROLE || undefined);
        if (argv.check) {
          if (!rsurl) throw new UsageError('--check needs a warehouse: pass --rsurl (input or output is not local)');
          const { checkLoading } = await import('../../worker/process/check.js');
          const { redactText } = await import('../../worker/redact.js');
          const res = await checkLoading({
            rsurl,
            config,
            output,
            stateDir: argv['state-dir'],
            schema: argv.schema,
            iamRole,
            loadEverySeconds: loadEvery,
            createTables: argv['create-tables'],
          });
          for (const line of res.lines) process.stdout.write(`${redactText(line)}\n`);
          for (const problem of res.problems) process.stderr.write(`spade: ${redactText(problem)}\n`);
          if (res.problems.length > 0) {
            process.stderr.write(`spade: ${res.problems.length} problem(s): loading would fail until they are fixed\n`);
            process.exitCode = 1;
          } else process.stdout.write('check passed: ready to load\n');
          return;
        }
        const { processCommand } = await import('../../worker/process/processor.js');
        process.exitCode = await processCommand({
          input,
          output,
          stateDir: argv['state-dir'],
          config,
          geoipCity: argv['geoip-city'],
          geoipAsn: argv['geoip-asn'],
          rotateMb: argv['rotate-mb'],
          rotateMinutes: argv['rotate-minutes'],
          batchInputMb: argv['batch-input-mb'],
          pollSeconds: argv['poll-seconds'],
          lookbackDays: argv['lookback-days'],
          startDate: argv['start-date'],
          reloadSeconds: argv['reload-seconds'],
          shutdownTimeoutSeconds: argv['shutdown-timeout'],
          metricsPort: argv['metrics-port'],
          metricsToken: argv['metrics-token'] ?? process.env.SPADE_METRICS_TOKEN,
          rsurl,
          schema: argv.schema,
          iamRole,
          loadEverySeconds: loadEvery,
          createTables: argv['create-tables'],
          threads: argv.threads,
          kinesis: toKinesisOptions(argv),
        });
      },
    )
    .demandCommand(1, 'name a command: transform, parse, parse-server, ddl, replay, review, process, worker')
    .strict()
    .help()
    .version(false)
    .fail((msg, err) => {
      if (err) throw err;
      throw new UsageError(`${msg} (see spade --help)`);
    });
  await parser.parseAsync();
}

main().catch(reportFatal);
