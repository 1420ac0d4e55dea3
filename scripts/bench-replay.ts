/**
 * `npm run bench:replay [-- --mb N --tables all|a,b --threads N --poolsize N]`:
 * the replay end to end, local executor, on N MiB (default 1024) of generated
 * gzip edge logs (real table_config.json, GeoIP test DBs) served by s3rver,
 * loaded into a throwaway PostgreSQL cluster. Measures, in one run:
 * - the transform alone (`spade transform` code, same corpus, same threads, local disk);
 * - the replay CLI as a child process: wall time, phases (list, transform, load),
 *   peak RSS (`/usr/bin/time -v`) and an RSS profile over the run;
 * - the same TSV files loaded with `psql \copy` into a scratch schema, one psql
 *   per file, then one psql per table.
 * and prints a summary block for BENCHMARKS.md.
 *
 * The corpus is generated once into a cache directory (`--corpus DIR`, default
 * $TMPDIR/spade-bench-replay-corpus-<N>mb) and reused. Other flags:
 * `--skip-transform-only` (no transform-alone run), `--keep` (keep the scratch
 * dir: replay log, /usr/bin/time output, TSV copies).
 *
 * The review's cost (scripts/bench/review-cost.ts): after the replay, a
 * 50-column table with `--review-rows` (default 1000000) rows in the window is
 * loaded `--review-repeats` (default 2) times with the review and as often
 * without; `--review-only` measures just that (no corpus, no replay).
 */
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { pipeline } from 'node:stream/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { forEachLimited } from '../driver/concurrency.js';
import { successKey, type SuccessManifest } from '../driver/manifest.js';
import { createTableSql } from '../worker/warehouse/ddl.js';
import { qualifiedName } from '../worker/warehouse/sql.js';
import { createTransformPool } from '../worker/pool/pool.js';
import { S3Store } from '../worker/store/s3.js';
import { emptyCounts, mergeCounts, type OutcomeCounts } from '../worker/transform/outcomes.js';
import { parseTableConfig } from '../worker/transform/schema.js';
import type { TransformSettings } from '../worker/transform/setup.js';
import { fixturesDir, repoRoot } from '../test/helpers/fixtures.js';
import { startCluster } from '../test/helpers/postgres.js';
import { startS3Server, type S3TestServer } from '../test/helpers/s3server.js';
import { arg, positiveNumber, say } from './bench/args.js';
import { countRows, latestSchemas, selectTables } from './bench/tables.js';
import { cleanup, cleanups, onSignal, wasInterrupted } from './bench/cleanup.js';
import { ensureCorpus, listCorpusFiles, type Corpus } from './bench/corpus.js';
import { rssProfile, runMeasured, type Measured } from './bench/measure.js';
import { psqlCopyFiles, type PsqlResult, type TsvFile } from './bench/psql-baseline.js';
import { pacific, parsePhases, rate, sumEvents, tail } from './bench/replay-run.js';
import { measureReviewCost, reviewCostLines, type ReviewCost } from './bench/review-cost.js';
import type { RunReview } from '../driver/review/record.js';

const MB = 1e6;
const RUNTAG = 'bench';
const DB_NAME = 'spade_bench';
const BASELINE_SCHEMA = 'baseline';

const fixtures = fixturesDir();
const configPath = join(fixtures, 'spade', 'table_config.json');
const geoipCity = join(fixtures, 'geoip', 'GeoIP2-City-Test.mmdb');
const geoipAsn = join(fixtures, 'geoip', 'GeoLite2-ASN-Test.mmdb');

interface TransformOnly {
  secs: number;
  events: number;
  /** Decompressed edge bytes read. */
  bytes: number;
  rssMb: number;
  /** User + system CPU seconds, all threads. */
  cpuSecs: number;
}

/**
 * Child mode: the transform alone over the corpus files on local disk, one task
 * per file as `spade transform FILE...` runs them, at most two tasks per thread
 * in flight (transformCommand submits every file at once, which overflows the
 * pool's queue beyond threads + threads² files).
 */
async function transformChild(): Promise<void> {
  const files = listCorpusFiles(arg('input', '')).map((f) => f.path);
  const tables = arg('tables', 'all');
  const out = arg('out', '');
  const pool = createTransformPool(Number(arg('threads', '1')));
  const settings: TransformSettings = {
    configText: readFileSync(configPath, 'utf8'),
    configSource: configPath,
    geoipCity,
    geoipAsn,
    tables: tables === 'all' ? undefined : tables.split(','),
  };
  const counts = emptyCounts();
  const started = process.hrtime.bigint();
  try {
    await forEachLimited(
      files.map((path, i) => [path, i] as const),
      pool.threads * 2,
      async ([path, i]) => {
        const r = await pool.run({
          settings,
          input: { kind: 'urls', urls: [path] },
          output: { location: out, prefix: '', fileTag: `bench-${String(i).padStart(5, '0')}` },
        });
        mergeCounts(counts, r.counts);
      },
    );
  } finally {
    await pool.close();
  }
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  const result: TransformOnly = {
    secs,
    events: sumEvents(counts),
    bytes: counts.inputBytes,
    rssMb: process.resourceUsage().maxRSS / 1024,
    cpuSecs: (process.resourceUsage().userCPUTime + process.resourceUsage().systemCPUTime) / 1e6,
  };
  say(JSON.stringify(result));
}

/** Every `rows` file named by the run's success manifests, and the merged counts. */
async function readRunOutput(out: S3Store): Promise<{
  counts: OutcomeCounts;
  files: { key: string; table: string; rows: number; bytes: number; tsvBytes: number }[];
}> {
  const counts = emptyCounts();
  const files: { key: string; table: string; rows: number; bytes: number; tsvBytes: number }[] = [];
  // `<runtag>/_success/<partition>.json`: the directory part of any partition's key.
  const prefix = successKey(RUNTAG, '').slice(0, -'.json'.length);
  for await (const obj of out.list(prefix)) {
    if (!obj.key.endsWith('.json')) continue;
    const m = JSON.parse((await out.readBytes(obj.key)).toString('utf8')) as SuccessManifest;
    mergeCounts(counts, m.counts);
    for (const f of m.files) {
      if (f.kind === 'rows' && f.event)
        files.push({ key: f.key, table: f.event, rows: f.rows, bytes: f.bytes, tsvBytes: f.uncompressedBytes });
    }
  }
  return { counts, files };
}

const f1 = (n: number): string => n.toFixed(1);

/** `--review-only`: the review's cost alone, in a throwaway PostgreSQL cluster. */
async function reviewOnly(rows: number, repeats: number): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'spade-bench-review-'));
  cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
  try {
    const loadAtStart = loadavg()[0]!.toFixed(1);
    const pg = await startCluster();
    cleanups.push(() => pg.stop());
    const db = await pg.createDatabase(DB_NAME);
    const cost = await measureReviewCost({ pg, db, dir: join(scratch, 'wide'), rows, repeats, say });
    say('');
    say(`### bench:replay --review-only, ${new Date().toISOString().slice(0, 10)}`);
    say('');
    say('```');
    say(`command: npm run bench:replay -- ${process.argv.slice(2).join(' ')}`);
    say(
      `machine: ${availableParallelism()} CPUs (${cpus()[0]?.model.trim() ?? '?'}), load average at start / end: ` +
        `${loadAtStart} / ${loadavg()[0]!.toFixed(1)}`,
    );
    for (const l of reviewCostLines(cost)) say(l);
    say('```');
  } finally {
    await cleanup();
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--child')) return transformChild();
  const reviewRows = positiveNumber('review-rows', 1_000_000);
  const reviewRepeats = positiveNumber('review-repeats', 2);
  if (process.argv.includes('--review-only')) return reviewOnly(reviewRows, reviewRepeats);
  // The SDK's notice about future Node versions is noise in a benchmark's output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const mb = positiveNumber('mb', 1024);
  const threads = positiveNumber('threads', availableParallelism());
  const poolsize = positiveNumber('poolsize', 4);
  const tablesArg = arg('tables', 'all');
  const skipTransformOnly = process.argv.includes('--skip-transform-only');
  const keep = process.argv.includes('--keep');
  const corpusDir = resolve(arg('corpus', join(tmpdir(), `spade-bench-replay-corpus-${mb}mb`)));
  if (!existsSync(configPath)) throw new Error(`fixtures not found at ${fixtures} (set SPADE_FIXTURES)`);
  const spade = join(repoRoot(), 'dist', 'driver', 'cli', 'spade.js');
  if (!existsSync(spade)) throw new Error(`${spade} not built: run npx tsc -p . first`);

  const schemas = parseTableConfig(readFileSync(configPath, 'utf8'), configPath);
  const tables = selectTables(schemas, tablesArg, configPath);

  const loadAtStart = loadavg()[0]!.toFixed(1);
  const corpus: Corpus = await ensureCorpus(corpusDir, mb, schemas, say);
  say(
    `corpus: ${corpus.files.length} files, ${f1(corpus.bytes / MB)} MB gzip, ${corpus.events} events, in ${corpus.dir}`,
  );

  const scratch = mkdtempSync(join(tmpdir(), 'spade-bench-replay-'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  cleanups.push(() =>
    keep ? say(`kept scratch files in ${scratch}`) : rmSync(scratch, { recursive: true, force: true }),
  );
  try {
    // ---- 1. transform only, before the servers start, on a quiet machine ----
    let transformOnly: TransformOnly | null = null;
    if (!skipTransformOnly) {
      say(`transform only: ${threads} thread(s) ...`);
      const outDir = join(scratch, 'transform-only');
      const stopChild = new AbortController();
      cleanups.push(() => stopChild.abort());
      const { stdout: text } = await promisify(execFile)(
        process.execPath,
        [
          fileURLToPath(import.meta.url),
          '--child',
          '--input',
          corpus.dir,
          '--threads',
          String(threads),
          '--tables',
          tablesArg,
          '--out',
          outDir,
        ],
        { encoding: 'utf8', maxBuffer: 1 << 20, signal: stopChild.signal },
      );
      transformOnly = JSON.parse(text.trim().split('\n').pop()!) as TransformOnly;
      rmSync(outDir, { recursive: true, force: true });
    }

    // ---- 2. s3rver with the corpus, PostgreSQL with the tables ----
    // startS3Server wants a test context only to register its cleanup.
    const context = { after: (fn: () => unknown) => void cleanups.push(fn), skip: () => undefined };
    const s3: S3TestServer = await startS3Server(context as unknown as TestContext, { buckets: ['edge', 'out'] });
    const seedStarted = Date.now();
    s3.seedObjects(
      'edge',
      (function* () {
        for (const f of corpus.files) yield [f.key, readFileSync(f.path)] as const;
      })(),
    );
    say(`seeded s3rver with the corpus in ${f1((Date.now() - seedStarted) / 1000)} s`);
    const pg = await startCluster();
    cleanups.push(() => pg.stop());
    const db = await pg.createDatabase(DB_NAME);
    const pgVersion = (await pg.query<{ v: string }>(db, "SELECT current_setting('server_version') AS v"))[0]?.v ?? '?';
    for (const schema of ['physical', BASELINE_SCHEMA]) {
      await pg.query(db, `CREATE SCHEMA ${schema}`);
      for (const s of latestSchemas(schemas, tables))
        await pg.query(db, createTableSql(s, { dialect: 'postgres', schema }));
    }
    const rsurl = db.replace(`:${pg.password}@`, '@');
    const env = { ...process.env, ...s3.env, PGPASSWORD: pg.password };

    // ---- 3. the replay, end to end ----
    const start = pacific(corpus.startSec - 3600);
    const end = pacific(corpus.endSec + 3600);
    const logFile = join(scratch, 'replay.log');
    const replayArgs = [
      spade,
      'replay',
      start,
      end,
      ...(tablesArg === 'all' ? ['--all-tables'] : tables),
      '--edge',
      's3://edge',
      '--output',
      's3://out',
      '--rsurl',
      rsurl,
      '--config',
      configPath,
      '--geoip-city',
      geoipCity,
      '--geoip-asn',
      geoipAsn,
      '--threads',
      String(threads),
      '--poolsize',
      String(poolsize),
      '--runtag',
      RUNTAG,
      '--log-file',
      logFile,
    ];
    say(
      `replay ${start} .. ${end}, ${tablesArg === 'all' ? `all ${tables.length} tables` : tables.join(',')}, ${threads} thread(s), poolsize ${poolsize} ...`,
    );
    const stopReplay = new AbortController();
    cleanups.push(() => stopReplay.abort());
    const replay: Measured = await runMeasured(process.execPath, replayArgs, {
      env,
      signal: stopReplay.signal,
      stdoutFile: join(scratch, 'replay.stdout'),
      stderrFile: join(scratch, 'replay.stderr'),
      timeFile: join(scratch, 'replay.time'),
    });
    const phases = parsePhases(existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
    if (replay.code !== 0 || !phases) {
      throw new Error(
        `replay exited with code ${replay.code}${phases ? '' : ' and no phases line'}; stderr tail:\n` +
          `${tail(join(scratch, 'replay.stderr'), 30)}\nstdout tail:\n${tail(join(scratch, 'replay.stdout'), 30)}`,
      );
    }

    // ---- 4. what it produced; the same TSV files on local disk ----
    const out = new S3Store({ bucket: 'out', prefix: '', client: s3.client });
    const output = await readRunOutput(out);
    const tsvDir = join(scratch, 'tsv');
    mkdirSync(tsvDir);
    const local: TsvFile[] = output.files.map((f, i) => ({
      table: f.table,
      rows: f.rows,
      path: join(tsvDir, `${i}.tsv.gz`),
    }));
    await forEachLimited(
      output.files.map((f, i) => [f, local[i]!] as const),
      8,
      async ([f, l]) => pipeline(await out.read(f.key), createWriteStream(l.path)),
    );
    const loadedRows = await countRows(pg, db, 'physical', tables);

    // ---- 5. psql \copy baselines: per file, then (tables emptied) per table ----
    const psqlRuns: { mode: 'per-file' | 'per-table'; result: PsqlResult; rowsInTables: number }[] = [];
    for (const mode of ['per-file', 'per-table'] as const) {
      say(
        `psql \\copy baseline, one psql ${mode === 'per-file' ? 'per file' : 'per table'}, ${poolsize} table(s) at a time ...`,
      );
      for (const t of tables) await pg.query(db, `TRUNCATE ${qualifiedName(BASELINE_SCHEMA, t)}`);
      const result = await psqlCopyFiles({
        files: local,
        dbUrl: rsurl,
        env,
        schema: BASELINE_SCHEMA,
        jobs: poolsize,
        mode,
      });
      psqlRuns.push({ mode, result, rowsInTables: await countRows(pg, db, BASELINE_SCHEMA, tables) });
    }

    // ---- 6. the review: its share in this replay's loads, then on a 50-column, 1M-row table ----
    const stored = JSON.parse((await out.readBytes(`${RUNTAG}/_review.json`)).toString('utf8')) as RunReview;
    const reviewSecs = stored.tables.reduce((s, t) => s + (t.review?.seconds ?? 0), 0);
    const tableLoadSecs = stored.tables.reduce((s, t) => s + t.loadSeconds, 0);
    const reviewCost: ReviewCost = await measureReviewCost({
      pg,
      db,
      dir: join(scratch, 'wide'),
      rows: reviewRows,
      repeats: reviewRepeats,
      say,
    });

    // ---- 7. report ----
    const tsvBytes = output.files.reduce((s, f) => s + f.tsvBytes, 0);
    const tsvGzBytes = output.files.reduce((s, f) => s + f.bytes, 0);
    const fileRows = output.files.reduce((s, f) => s + f.rows, 0);
    const events = sumEvents(output.counts);
    const edgeBytes = output.counts.inputBytes;
    const load = phases.load ?? NaN;
    const phaseSum = Object.values(phases).reduce((s, n) => s + n, 0);
    const e2eGz = corpus.bytes / MB / replay.secs;
    const loadTsv = tsvBytes / MB / load;
    const psqlTsv = tsvBytes / MB / psqlRuns[0]!.result.secs;
    const profile = rssProfile(replay, 4).map((kb) => (kb / 1024).toFixed(0));
    const cpu = cpus()[0]?.model.trim() ?? '?';
    const checks: string[] = [];
    if (loadedRows !== fileRows) checks.push(`physical tables hold ${loadedRows} rows, the files ${fileRows}`);
    for (const r of psqlRuns) {
      if (r.rowsInTables !== fileRows || r.result.rows !== fileRows)
        checks.push(
          `psql ${r.mode}: baseline holds ${r.rowsInTables} rows (psql said ${r.result.rows}), the files ${fileRows}`,
        );
    }

    const cmd = `npm run bench:replay -- ${process.argv.slice(2).join(' ')}`.trimEnd();
    const block = [
      `### bench:replay, ${new Date().toISOString().slice(0, 10)}`,
      '',
      '```',
      `command: ${cmd}`,
      `machine: ${availableParallelism()} CPUs (${cpu}), ${f1(totalmem() / 2 ** 30)} GiB RAM, Linux ${release()}, node ${process.version}, PostgreSQL ${pgVersion}`,
      `load average at start / end: ${loadAtStart} / ${loadavg()[0]!.toFixed(1)} (other work on the machine skews every figure)`,
      `corpus:  ${corpus.files.length} edge files, ${f1(corpus.bytes / MB)} MB gzip (${f1(edgeBytes / MB)} MB edge lines), ${events} events; ` +
        `tables: ${tablesArg === 'all' ? `all (${tables.length})` : tables.join(',')}; --threads ${threads} --poolsize ${poolsize}; s3rver + local PostgreSQL (fsync off)`,
      '',
      `replay end to end (local executor, child process, wall clock):`,
      `  ${f1(replay.secs)} s, ${f1(e2eGz)} MB/s gzip input, ${f1(edgeBytes / MB / replay.secs)} MB/s edge lines, ${rate(events / replay.secs)} events/s, CPU ${f1(replay.cpuSecs)} s`,
      `  phases: ${Object.entries(phases)
        .map(([k, v]) => `${k} ${f1(v)} s`)
        .join(', ')}; other ${f1(replay.secs - phaseSum)} s (startup, commit, report)`,
      `  peak RSS ${(replay.maxRssKb / 1024).toFixed(0)} MB (${replay.rssSource}); RSS max per quarter of the run: ${profile.join(' / ')} MB`,
      ...(transformOnly
        ? [
            `transform only (same corpus and threads, local disk in and out):`,
            `  ${f1(transformOnly.secs)} s, ${f1(corpus.bytes / MB / transformOnly.secs)} MB/s gzip input, ${f1(transformOnly.bytes / MB / transformOnly.secs)} MB/s edge lines, ` +
              `${rate(transformOnly.events / transformOnly.secs)} events/s, CPU ${f1(transformOnly.cpuSecs)} s, peak RSS ${transformOnly.rssMb.toFixed(0)} MB`,
            `  end to end / transform only: ${(transformOnly.secs / replay.secs).toFixed(2)} (target >= 0.7); by CPU seconds: ${(transformOnly.cpuSecs / replay.cpuSecs).toFixed(2)}`,
          ]
        : []),
      `load: ${fileRows} rows in ${output.files.length} gzip TSV files, ${f1(tsvBytes / MB)} MB TSV (${f1(tsvGzBytes / MB)} MB gzip)`,
      `  replay load phase:  ${f1(load)} s, ${f1(loadTsv)} MB/s TSV, ${rate(fileRows / load)} rows/s ` +
        `(from s3rver; count + delete + COPY into a temp table + INSERT per table, one transaction each)`,
      ...psqlRuns.map(
        ({ mode, result }) =>
          `  psql \\copy ${mode}: ${f1(result.secs)} s, ${f1(tsvBytes / MB / result.secs)} MB/s TSV, ${rate(result.rows / result.secs)} rows/s ` +
          `(${result.runs} psql runs)`,
      ),
      `  (psql: local files, FROM PROGRAM 'gzip -dc', ${poolsize} tables at a time; per-file runs a table's files in sequence)`,
      `  load phase / psql per-file: ${(loadTsv / psqlTsv).toFixed(2)} (target >= 0.7); ` +
        `/ psql per-table: ${(loadTsv / (tsvBytes / MB / psqlRuns[1]!.result.secs)).toFixed(2)}`,
      `review in this replay: ${f1(reviewSecs)} s of the tables' ${f1(tableLoadSecs)} s of load transactions ` +
        `(${((reviewSecs / tableLoadSecs) * 100).toFixed(1)}%, summed over tables)`,
      ...reviewCostLines(reviewCost),
      `memory: peak RSS ${(replay.maxRssKb / 1024).toFixed(0)} MB at ${f1(corpus.bytes / MB)} MB input; flat in input size means the same at another --mb`,
      ...(checks.length
        ? [`CHECK FAILED: ${checks.join('; ')}`]
        : [`check: physical and baseline tables each hold the ${fileRows} rows of the files`]),
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
  // Interrupted: the failure is only the replay being stopped; onSignal exits.
  if (wasInterrupted()) return;
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
