/**
 * The replay job, driver side: plan (window -> edge files -> partitions, kept in
 * the run record), execute (partition tasks through an executor), commit
 * (success manifests -> per-table load manifests), load (one transaction per
 * table, `poolsize` at a time) and report.
 */
import type { PartitionResult, PartitionTask } from '../worker/partition-task.js';
import type { DamagedInput } from '../worker/pool/thread.js';
import { redactUrl } from '../worker/redact.js';
import { openStore } from '../worker/store/location.js';
import type { ObjectStore } from '../worker/store/objectstore.js';
import type { WrittenFile } from '../worker/output/writers.js';
import {
  KinesisPublisher,
  noUuidsMessage,
  type KinesisPublishOptions,
  type TablePublishResult,
} from '../worker/output/kinesis-publish.js';
import { readConfigText } from '../worker/transform/config-source.js';
import { emptyCounts, formatCounts, type OutcomeCounts } from '../worker/transform/outcomes.js';
import { parseTableConfig, type TableSchema } from '../worker/transform/schema.js';
import type { TransformSettings } from '../worker/transform/setup.js';
import { UsageError } from './cli/errors.js';
import type { Executor, TaskSummary } from './executors/executor.js';
import { forEachLimited } from './concurrency.js';
import { formatBytes } from './format.js';
import { DEFAULT_LIST_CONCURRENCY } from './listing.js';
import { RuntagLock } from './lock/runtag-lock.js';
import type { Logger } from './log.js';
import { commitRun, mapOrdered, readLoadManifests } from './commit.js';
import { readJson, runRecordKey, successKey, writeJson, type RunRecord, type SuccessManifest } from './manifest.js';
import type { Partition } from './partition.js';
import { planTotals, planWindow, readPlan } from './plan.js';
import type { ReplayProgress } from './progress.js';
import { formatDamagedInputs, formatLoadReport } from './report.js';
import { checkRunDigest, driverTransformDigest } from './run-digest.js';
import { formatPublishReport, unpublishedFiles } from './publish-report.js';
import { createMissingTables } from '../worker/warehouse/create-tables.js';
import { expectedColumns } from '../worker/warehouse/table-columns.js';
import { type TableLoadResult } from '../worker/warehouse/warehouse.js';
import { openWarehouse } from '../worker/warehouse/open.js';
import { datePrefixes, type ReplayWindow } from './window.js';
import { reviewPage } from './review/html.js';
import { formatReview, type ReviewDetail } from './review/print.js';
import { flaggedTables, reviewHtmlKey, reviewJsonKey, runReview, writeRunReview } from './review/record.js';
import { kinesisWhere } from '../worker/output/kinesis-limits.js';

export interface ReplayOptions {
  window: ReplayWindow;
  /** Named tables, or every table (schema service or config). */
  tables: string[] | 'all';
  edge: string;
  output: string;
  config: string;
  schema: string;
  rsurl: string | null;
  runtag: string;
  skipTransform: boolean;
  skipLoad: boolean;
  poolsize: number;
  partitionBytes: number;
  /** Prefixes listed at the same time (`--list-concurrency`); default 8. */
  listConcurrency?: number;
  maxShrink: number;
  allowShrink: boolean;
  plan: boolean;
  geoipCity?: string;
  geoipAsn?: string;
  userIdMapping?: TransformSettings['userIdMapping'];
  blueprintUrl?: string;
  /** Create missing tables (PostgreSQL / PGlite) from the config's DDL. */
  createTables: boolean;
  rotateBytes?: number;
  iamRole?: string;
  /** Load although inputs were damaged (their complete lines before the damage); they are still reported. */
  acceptDamagedInput?: boolean;
  /** Publish each table's committed rows to Kinesis streams (after its load, or after the transform with skipLoad). */
  kinesis?: KinesisPublishOptions;
  /** Load and review every table, then roll every one back (the output stays for `--skip-transform`). */
  preview?: boolean;
  /** Flag a column whose NULL share rises by more than this (default 0.2). */
  nullRise?: number;
  /** Roll back a table the review flags, like a shrink-guard refusal. */
  failOnReview?: boolean;
  /** Printed review: flagged hours and columns only (default), or everything. */
  reviewDetail?: ReviewDetail;
  /** false (`--no-review-columns`): the review counts rows per hour only, no column statistics. */
  reviewColumns?: boolean;
}

/** Exit code of a `--preview --fail-on-review` run that flagged a table (0: nothing flagged, 1: a failure). */
export const PREVIEW_FLAGGED_EXIT = 3;
export const DEFAULT_NULL_RISE = 0.2;

export interface ReplayResult {
  exitCode: number;
  runtag: string;
  counts: OutcomeCounts;
  loads: TableLoadResult[];
  lines: string[];
  /** Edge files that were truncated or corrupt, transformed up to the damage. */
  damagedInputs: DamagedInput[];
  /** Per (stream, table), when publishing to Kinesis. */
  published?: TablePublishResult[];
}

export interface ReplayDeps {
  executor: Executor;
  log: Logger;
  progress: ReplayProgress;
  /** Printed output (plan, reports): stdout by default. */
  print: (line: string) => void;
}

async function resolveTables(opts: ReplayOptions, schemas: TableSchema[], log: Logger): Promise<string[]> {
  const known = new Set(schemas.map((s) => s.event));
  if (opts.tables !== 'all') {
    const unknown = opts.tables.filter((t) => !known.has(t));
    if (unknown.length) throw new UsageError(`table(s) not in config ${opts.config}: ${unknown.join(', ')}`);
    return [...new Set(opts.tables)].sort();
  }
  if (!opts.blueprintUrl) return [...known].sort();
  let list: unknown;
  try {
    const res = await fetch(opts.blueprintUrl, { signal: AbortSignal.timeout(30_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    list = await res.json();
  } catch (err) {
    throw new Error(
      `cannot read the table list from the schema service ${opts.blueprintUrl}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (!Array.isArray(list)) throw new Error(`schema service ${opts.blueprintUrl} did not answer a JSON array`);
  const names = list
    .map((o) => (o as { EventName?: unknown }).EventName)
    .filter((n): n is string => typeof n === 'string');
  const missing = names.filter((n) => !known.has(n));
  if (missing.length) log.warn(`schema service lists tables missing from the config, skipped: ${missing.join(', ')}`);
  return [...new Set(names.filter((n) => known.has(n)))].sort();
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * A replay under the lock of its runtag (lock/runtag-lock.ts), so that two runs
 * never write one runtag at once; `--plan` changes nothing and takes no lock.
 */
export async function runReplay(opts: ReplayOptions, deps: ReplayDeps): Promise<ReplayResult> {
  if (opts.plan) return replayHoldingLock(opts, deps, null);
  const lock = await RuntagLock.acquire(openStore(opts.output), opts.runtag, { log: deps.log });
  try {
    return await replayHoldingLock(opts, deps, lock);
  } finally {
    await lock.release();
  }
}

async function replayHoldingLock(
  opts: ReplayOptions,
  deps: ReplayDeps,
  lock: RuntagLock | null,
): Promise<ReplayResult> {
  const { log, print } = deps;
  const lines: string[] = [];
  const say = (line: string): void => {
    lines.push(line);
    print(line);
  };
  const configText = await readConfigText(opts.config);
  const schemas = parseTableConfig(configText, opts.config);
  const tables = await resolveTables(opts, schemas, log);
  if (tables.length === 0) throw new UsageError('no tables to replay');
  const edge = openStore(opts.edge);
  const output = openStore(opts.output);
  const w = opts.window;
  log.info(
    `replay ${w.start} .. ${w.end} (US Pacific) runtag ${opts.runtag}; tables: ${tables.length <= 8 ? tables.join(', ') : `${tables.length} tables`}`,
  );

  // ---- plan: the run record makes a re-run resume instead of redo ----
  let record = await readJson<RunRecord>(output, runRecordKey(opts.runtag));
  const settings: TransformSettings = {
    configText,
    configSource: redactUrl(opts.config), // a label in messages: the text travels, not the URL
    geoipCity: opts.geoipCity,
    geoipAsn: opts.geoipAsn,
    userIdMapping: opts.userIdMapping,
    tables: record?.tables ?? tables,
    // With every table wanted the pre-filter could only cost time.
    prefilter: opts.tables !== 'all',
    // Kinesis records carry the edge event's uuid, which only the row files' uuid sidecars keep.
    ...(opts.kinesis ? { rowUuids: true } : {}),
  };
  // From the settings the tasks carry, so the record describes what the workers are given.
  const digest = await driverTransformDigest(settings, schemas, log);
  if (record) {
    if (record.window.start !== w.start || record.window.end !== w.end) {
      throw new UsageError(
        `runtag ${opts.runtag} already holds a run for ${record.window.start} .. ${record.window.end}; ` +
          `use that window or another --runtag`,
      );
    }
    if (!opts.skipTransform && !sameList(record.tables, tables)) {
      throw new UsageError(
        `runtag ${opts.runtag} already holds a run for tables ${record.tables.join(', ')}; use another --runtag`,
      );
    }
    const missingTables = tables.filter((t) => !record!.tables.includes(t));
    if (missingTables.length) {
      throw new UsageError(`runtag ${opts.runtag} did not transform table(s) ${missingTables.join(', ')}`);
    }
    checkRunDigest(record, digest, opts.runtag);
    log.info(`run record found: ${planTotals(record).partitions} partition(s) planned at ${record.createdAt}`);
  } else if (opts.skipTransform) {
    throw new UsageError(
      `--skip-transform: no run ${opts.runtag} under ${output.url} (missing ${runRecordKey(opts.runtag)})`,
    );
  }

  const taskOf = (p: Partition, edgeUrl: string): PartitionTask => ({
    runtag: opts.runtag,
    partition: p,
    edge: edgeUrl,
    output: opts.output,
    settings: { ...settings, expectDigest: digest },
    rotateBytes: opts.rotateBytes,
  });

  // A missing stream fails the run now (before the listing), not after hours of transform and load.
  if (opts.kinesis && !opts.plan) (await KinesisPublisher.open(opts.kinesis)).close();

  if (!record) {
    const started = Date.now();
    log.info(`listing ${edge.url} date prefixes ${datePrefixes(w).join(', ')}`);
    // `--plan` writes nothing: the partitions are only counted (and the first kept for the executor's description).
    deps.progress.startList?.();
    const planned = await planWindow(edge, opts.plan ? null : output, opts.runtag, w, {
      targetBytes: opts.partitionBytes,
      concurrency: opts.listConcurrency ?? DEFAULT_LIST_CONCURRENCY,
      onProgress: (n) => deps.progress.listed?.(n),
      onRetry: (prefix, attempt, error) => log.warn(`listing ${prefix} attempt ${attempt} failed, retrying: ${error}`),
    });
    deps.progress.endList?.();
    const counted = planned.totals;
    deps.progress.phase('list', (Date.now() - started) / 1000);
    log.info(
      `${counted.files} edge file(s), ${formatBytes(counted.bytes)}, in ${counted.partitions} partition(s)` +
        (planned.index
          ? ` (plan: ${planned.index.planFiles.length} file(s) under ${output.url}/${opts.runtag}/_plan/)`
          : ''),
    );
    if (opts.plan) {
      return printPlan(opts, deps, say, lines, edge, output, tables, {
        partitions: counted.partitions,
        files: counted.files,
        bytes: counted.bytes,
        first: planned.first ? taskOf(planned.first, opts.edge) : undefined,
      });
    }
    record = {
      runtag: opts.runtag,
      window: { start: w.start, end: w.end },
      tables,
      edge: opts.edge,
      configSource: redactUrl(opts.config),
      plan: planned.index!,
      createdAt: new Date().toISOString(),
      transform: digest,
    };
  }
  const run = record;
  const totals = planTotals(run);
  /** The run's tasks, read from the plan as they are needed. */
  async function* planTasks(skip?: ReadonlySet<string>): AsyncGenerator<PartitionTask> {
    for await (const p of readPlan(output, run)) if (!skip?.has(p.id)) yield taskOf(p, run.edge);
  }

  if (opts.plan) {
    let first: PartitionTask | undefined;
    for await (const t of planTasks()) {
      first = t;
      break;
    }
    return printPlan(opts, deps, say, lines, edge, output, tables, { ...totals, first });
  }

  // ---- execute ----
  if (!(await output.exists(runRecordKey(opts.runtag)))) await writeJson(output, runRecordKey(opts.runtag), run);
  let done = await finishedPartitions(output, opts.runtag);
  // Partitions transformed earlier without uuids: refused before transforming the rest.
  if (opts.kinesis && done.size > 0) {
    const without: string[] = [];
    const doneOnly = async function* (): AsyncGenerator<Partition> {
      for await (const p of readPlan(output, run)) if (done.has(p.id)) yield p;
    };
    const read = (p: Partition): Promise<SuccessManifest | null> =>
      readJson<SuccessManifest>(output, successKey(opts.runtag, p.id));
    for await (const m of mapOrdered(doneOnly(), 16, read)) {
      if (m) without.push(...filesWithoutUuids(opts.kinesis, m, output));
    }
    if (without.length) throw new UsageError(noUuidsMessage(opts.runtag, without.sort()));
  }
  if (!opts.skipTransform) {
    if (done.size > 0) log.info(`${done.size} partition(s) already done, resuming`);
    let todoBytes = totals.bytes;
    if (done.size > 0) {
      todoBytes = 0;
      for await (const t of planTasks(done)) todoBytes += t.partition.bytes;
    }
    deps.progress.startTransform(totals.partitions, done.size, todoBytes);
    const started = Date.now();
    const { failed } = await deps.executor.run(planTasks(done), {
      onPartitionDone: (r: PartitionResult) => {
        deps.progress.partitionDone(r);
        log.debug(`partition ${r.partition} attempt ${r.attempt} done: ${r.files.length} file(s)`);
      },
      onPartitionRetry: (p, attempt, error) => log.warn(`partition ${p} attempt ${attempt} failed, retrying: ${error}`),
    });
    deps.progress.phase('transform', (Date.now() - started) / 1000);
    for (const f of failed) log.error(`partition ${f.partition} failed: ${f.error}`);
    done = await finishedPartitions(output, opts.runtag);
  }
  const missing: string[] = [];
  let missingCount = 0;
  for await (const p of readPlan(output, run)) {
    if (done.has(p.id)) continue;
    if (missingCount++ < 5) missing.push(p.id);
  }
  if (missingCount) {
    throw new Error(
      `${missingCount} partition(s) have no success manifest (${missing.join(', ')}${missingCount > 5 ? ', ...' : ''}); ` +
        `nothing was loaded. Re-run with --runtag ${opts.runtag} to finish them`,
    );
  }
  done = new Set(); // not needed any more: the commit reads the plan again

  // ---- commit: per-table load manifests from success manifests only (streamed, commit.ts) ----
  lock?.assertHeld();
  const without: string[] = [];
  const committed = await commitRun({
    output,
    runtag: opts.runtag,
    tables: run.tables,
    partitions: readPlan(output, run),
    digest,
    keepFiles: opts.kinesis !== undefined,
    onManifest: opts.kinesis ? (m) => without.push(...filesWithoutUuids(opts.kinesis!, m, output)) : undefined,
    // Before anything is loaded: publishing needs every published table's uuids.
    beforeFinish: () => {
      if (without.length) throw new UsageError(noUuidsMessage(opts.runtag, without.sort()));
    },
  });
  const { counts, damagedInputs } = committed;
  const filesByTable = committed.filesByTable ?? new Map<string, WrittenFile[]>();
  for (const e of damagedInputs)
    log.warn(`damaged input ${e.key ?? e.source}: ${e.error} (its complete lines were processed)`);
  say(`transform: ${formatCounts(counts)}`);

  const result = (exitCode: number, loads: TableLoadResult[]): ReplayResult => ({
    exitCode,
    runtag: opts.runtag,
    counts,
    loads,
    lines,
    damagedInputs,
  });
  if (damagedInputs.length > 0 && !opts.acceptDamagedInput) {
    // The output stays committed (nothing is lost), but a window missing the
    // damaged files' tails is not loaded unless someone decides it should be.
    deps.progress.stop();
    for (const l of formatDamagedInputs(damagedInputs)) say(l);
    say(
      `nothing was loaded: to load what could be read, re-run with --skip-transform --runtag ${opts.runtag} ` +
        `--accept-damaged-input; or replace the damaged files and run again with a new --runtag`,
    );
    return result(1, []);
  }
  const publishTable = (publisher: KinesisPublisher, table: string): Promise<TablePublishResult[]> => {
    deps.progress.tableState(table, 'publishing');
    return publisher.publishTable({
      store: output,
      runtag: opts.runtag,
      replay: true,
      schemas,
      table,
      files: filesByTable.get(table) ?? [],
      window: { start: w.start, end: w.end },
    });
  };
  if (opts.skipLoad) {
    for (const l of formatDamagedInputs(damagedInputs)) say(l);
    say(`output is under ${output.url}/${opts.runtag}/; load it later with --skip-transform --runtag ${opts.runtag}`);
    if (!opts.kinesis) return result(0, []);
    const publisher = await KinesisPublisher.open(opts.kinesis);
    let published: TablePublishResult[];
    try {
      deps.progress.startPublish(() => publisher.published);
      published = (await forEachTable(tables, opts.poolsize, (t) => publishTable(publisher, t))).flat();
    } finally {
      publisher.close();
    }
    deps.progress.stop();
    const exitCode = reportPublishing(published, opts.runtag, say, log) ? 1 : 0;
    return { ...result(exitCode, []), published };
  }

  // ---- load ----
  if (!opts.rsurl) throw new UsageError('loading needs a warehouse: pass --rsurl (or --skip-ace-upload)');
  lock?.assertHeld();
  const warehouse = await openWarehouse(opts.rsurl, { iamRole: opts.iamRole, poolSize: opts.poolsize, log: log.info });
  const loads: TableLoadResult[] = [];
  const started = Date.now();
  let publisher: KinesisPublisher | null = null;
  // Publishing starts as each table's load commits, and runs alongside the other loads.
  const publishing: Promise<TablePublishResult[]>[] = [];
  let published: TablePublishResult[] | undefined;
  try {
    if (opts.kinesis) {
      const p = (publisher = await KinesisPublisher.open(opts.kinesis));
      deps.progress.startPublish(() => p.published);
    }
    // A preview changes nothing, not even by creating tables: a missing table fails its load and says so.
    if (opts.createTables && !opts.preview)
      await createMissingTables(warehouse, schemas, tables, opts.schema, log.info);
    deps.progress.startLoad(tables);
    await forEachLimited(tables, opts.poolsize, async (table) => {
      deps.progress.tableState(table, 'loading');
      const manifestKeys = committed.manifests.get(table)?.keys ?? [];
      // One table's files in memory at a time, read back from its load manifests.
      const files = await readLoadManifests(output, manifestKeys);
      const result = await warehouse.replaceWindow(
        {
          schema: opts.schema,
          table,
          // Every table is in the config (resolveTables); no columns would fail the load with a message.
          columns: expectedColumns(schemas, table) ?? [],
          window: { start: w.start, end: w.end },
          files,
          manifestUrl: output.urlOf(manifestKeys[0] ?? `${opts.runtag}/_load/${table}.manifest`),
          manifestUrls: manifestKeys.map((k) => output.urlOf(k)),
          maxShrink: opts.maxShrink,
          allowShrink: opts.allowShrink,
          review: {
            nullRise: opts.nullRise ?? DEFAULT_NULL_RISE,
            failOnReview: opts.failOnReview === true,
            columns: opts.reviewColumns !== false,
          },
          preview: opts.preview === true,
        },
        (key) => output.read(key),
      );
      loads.push(result);
      deps.progress.tableState(table, result.status);
      if (result.status !== 'loaded' && result.status !== 'previewed')
        log.error(`${table}: ${result.status}: ${result.error ?? ''}`);
      // Only a committed load is published: consumers never see rows that were rolled back.
      else if (publisher) {
        publishing.push(
          publishTable(publisher, table).finally(() => deps.progress.tableState(table, 'loaded+published')),
        );
      }
    });
    if (publisher) published = (await Promise.all(publishing)).flat();
  } finally {
    await warehouse.close();
    publisher?.close();
  }
  deps.progress.phase('load', (Date.now() - started) / 1000);
  loads.sort((a, b) => a.table.localeCompare(b.table));
  deps.progress.stop(); // the live block ends before the report is printed below it
  for (const l of formatLoadReport(loads)) say(l);
  const review = runReview(
    {
      runtag: opts.runtag,
      window: { start: w.start, end: w.end },
      preview: opts.preview === true,
      nullRise: opts.nullRise ?? DEFAULT_NULL_RISE,
      maxShrink: opts.maxShrink,
      allowShrink: opts.allowShrink,
      failOnReview: opts.failOnReview === true,
      ...(opts.reviewColumns === false ? { columnsReviewed: false } : {}),
    },
    loads,
  );
  for (const l of formatReview(review, opts.reviewDetail ?? 'compact')) say(l);
  for (const l of formatDamagedInputs(damagedInputs)) say(l);
  const bad = loads.filter((l) => l.status !== 'loaded' && l.status !== 'previewed');
  if (opts.preview) {
    say(
      `preview: every table was rolled back, the warehouse is as it was; to load this run: ` +
        `--skip-transform --runtag ${opts.runtag}`,
    );
  } else if (bad.length) say(`${bad.length} of ${loads.length} table(s) not loaded; they were left as they were`);
  const publishFailed = published ? reportPublishing(published, opts.runtag, say, log) : false;
  try {
    await writeRunReview(output, review, reviewPage(review));
    say(`review: ${output.urlOf(reviewHtmlKey(opts.runtag))} (data: ${output.urlOf(reviewJsonKey(opts.runtag))})`);
  } catch (err) {
    // The loads are done (or rolled back) either way; a review that cannot be stored is reported, not fatal.
    log.error(`cannot store the review under ${output.url}/${opts.runtag}/: ${(err as Error).message}`);
  }
  return {
    ...result(replayExitCode(opts, bad, flaggedTables(review).length > 0) || (publishFailed ? 1 : 0), loads),
    published,
  };
}

/**
 * 1 when a table was not loaded (failed, refused); a `--preview --fail-on-review`
 * run says with 3 that the review flagged something (its tables are refused for
 * that, not broken), unless a table also failed.
 */
function replayExitCode(opts: ReplayOptions, bad: readonly TableLoadResult[], flagged: boolean): number {
  if (opts.preview && opts.failOnReview) {
    const broken = bad.filter((l) => l.status !== 'review_refused' && !(l.status === 'shrink_refused' && l.review));
    if (broken.length > 0) return 1;
    return flagged ? PREVIEW_FLAGGED_EXIT : 0;
  }
  return bad.length > 0 ? 1 : 0;
}

/**
 * The row files of a success manifest that go to a stream but have no uuid sidecar
 * (their partition was transformed without --kinesis-stream): their rows could not
 * be published with their events' uuids.
 */
function filesWithoutUuids(kinesis: KinesisPublishOptions, m: SuccessManifest, output: ObjectStore): string[] {
  const published = (table: string): boolean =>
    kinesis.targets.some((t) => t.tables === null || t.tables.includes(table));
  const without: string[] = [];
  for (const f of m.files) {
    if (f.kind === 'rows' && f.uuids === undefined && published(f.event ?? '')) without.push(output.urlOf(f.key));
  }
  return without;
}

/** What `--plan` prints: what would be done, from the plan's totals (nothing is written). */
function printPlan(
  opts: ReplayOptions,
  deps: ReplayDeps,
  say: (line: string) => void,
  lines: string[],
  edge: ObjectStore,
  output: ObjectStore,
  tables: string[],
  plan: TaskSummary & { files: number },
): ReplayResult {
  const w = opts.window;
  say(`plan for runtag ${opts.runtag} (nothing will be changed)`);
  say(`  window: ${w.start} .. ${w.end} US Pacific (${w.startUtc.toISOString()} .. ${w.endUtc.toISOString()})`);
  say(`  edge: ${edge.url}, date prefixes ${datePrefixes(w).join(' ')}`);
  say(`  input: ${plan.files} file(s), ${formatBytes(plan.bytes)}`);
  say(`  output: ${output.url}/${opts.runtag}/`);
  say(`  tables (${tables.length}): ${tables.join(', ')}`);
  if (!opts.skipTransform) for (const l of deps.executor.describe(plan)) say(`  ${l}`);
  else say('  transform: skipped (--skip-transform), loading the earlier output');
  if (opts.kinesis) say(`  kinesis: ${describeKinesis(opts.kinesis)}`);
  if (opts.skipLoad) say('  load: skipped (--skip-ace-upload)');
  else if (opts.preview) say('  preview: every table is loaded, reviewed and rolled back (--preview)');
  else
    say(
      `  load: ${opts.rsurl ? redactUrl(opts.rsurl) : '?'} schema ${opts.schema}, ${opts.poolsize} table(s) at a time, ` +
        `delete+insert of the window per table, shrink guard ${opts.allowShrink ? 'off' : `${opts.maxShrink}`}`,
    );
  return { exitCode: 0, runtag: opts.runtag, counts: emptyCounts(), loads: [], lines, damagedInputs: [] };
}

function describeKinesis(k: KinesisPublishOptions): string {
  const where = kinesisWhere(k);
  const streams = k.targets.map((t) => `${t.stream} (${t.tables ? t.tables.join(', ') : 'all tables'})`);
  return `publish to ${streams.join(', ')} at ${where}, ${k.concurrency} batch(es) in flight per stream, files already published skipped`;
}

/** Prints the publish report and what was not published; true when something was not. */
function reportPublishing(
  published: TablePublishResult[],
  runtag: string,
  say: (line: string) => void,
  log: Logger,
): boolean {
  for (const l of formatPublishReport(published)) say(l);
  const missing = unpublishedFiles(published);
  for (const m of missing) log.error(m);
  if (missing.length === 0) return false;
  const tables = [...new Set(published.filter((p) => p.failed.length).map((p) => `${p.table} -> ${p.stream}`))];
  say(
    `${missing.length} file(s) not published (${tables.join(', ')}); the warehouse load is not undone. ` +
      `Re-run with --runtag ${runtag} to publish only the files not yet published`,
  );
  return true;
}

/** Runs `fn` for each table, `limit` at a time, results in table order. */
async function forEachTable<T>(tables: string[], limit: number, fn: (table: string) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(tables.length);
  await forEachLimited(
    tables.map((t, i) => ({ t, i })),
    limit,
    async ({ t, i }) => {
      out[i] = await fn(t);
    },
  );
  return out;
}

/** The partitions that have a success manifest, from one listing of `<runtag>/_success/`. */
async function finishedPartitions(output: ObjectStore, runtag: string): Promise<Set<string>> {
  const prefix = `${runtag}/_success/`;
  const done = new Set<string>();
  for await (const o of output.list(prefix)) {
    const id = o.key.slice(prefix.length).replace(/\.json$/, '');
    if (o.key === successKey(runtag, id)) done.add(id);
  }
  return done;
}
