/**
 * The warehouse side of a replay: replace one table's time window in one
 * transaction (SPEC section 4). Three implementations share this interface and the
 * transaction below: PostgreSQL (COPY FROM STDIN), embedded PGlite (a local
 * directory) and Redshift (COPY from an S3 manifest).
 */
import type { Readable } from 'node:stream';
import {
  countWindowSql,
  createTempSql,
  deleteWindowSql,
  displayName,
  dropTableSql,
  insertWindowSql,
  lockTableSql,
  qualifiedName,
  quoteIdent,
  tempTableName,
  validateWindow,
} from './sql.js';
import { checkTableColumns, type ExpectedColumn } from './table-columns.js';
import { redactUrl } from '../../worker/redact.js';

export type WarehouseKind = 'postgres' | 'pglite' | 'redshift';

export interface TableLoad {
  /** Warehouse schema, usually `physical` (DEFAULT_SCHEMA). */
  schema: string;
  /** Event name = table name. */
  table: string;
  /**
   * The config's columns of the table, in the order of the fields in the files
   * (table-columns.ts `expectedColumns`). The table must have these columns (any
   * order, compatible types) or the load is refused; COPY and INSERT name them.
   */
  columns: readonly ExpectedColumn[];
  /** Pacific wall-clock 'YYYY-MM-DD HH:MM:SS', compared with the table's `time` column (inclusive). */
  window: { start: string; end: string };
  /** Gzip TSV files of this table (common.md format), as named by success manifests. */
  files: { key: string; url: string }[];
  /** s3:// URL of a Redshift MANIFEST naming exactly `files` (Redshift only). */
  manifestUrl?: string;
  /**
   * A very large table's MANIFEST in parts (driver/commit.ts), together naming exactly
   * `files`: one COPY each, in the same transaction. Without it, `manifestUrl` alone.
   */
  manifestUrls?: string[];
  /** Largest accepted fraction of rows lost from the window, e.g. 0.1. */
  maxShrink: number;
  allowShrink: boolean;
}

export interface TableLoadResult {
  table: string;
  /** `columns_refused`: the table's columns do not match the config's (table-columns.ts); nothing was done. */
  status: 'loaded' | 'failed' | 'shrink_refused' | 'columns_refused';
  /** Rows in the window before the load. */
  before: number;
  deleted: number;
  inserted: number;
  /** Rows in the files whose `time` is outside the window (staged but not inserted). */
  droppedOutsideWindow: number;
  error?: string;
  seconds: number;
}

/** Opens the (gzip) bytes of one file named in `TableLoad.files`. */
export type OpenFile = (key: string) => Promise<Readable>;

export interface Warehouse {
  readonly kind: WarehouseKind;
  /** Never rejects for a load problem: the result says `failed` and why. */
  replaceWindow(load: TableLoad, openFile: OpenFile): Promise<TableLoadResult>;
  tableExists(schema: string, table: string): Promise<boolean>;
  /** DDL and other statements without results (several may be separated by `;`). */
  execute(sql: string): Promise<void>;
  query<T>(sql: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface WarehouseOptions {
  /** Redshift: role for COPY (else env REDSHIFT_IAM_ROLE, else credentials of the AWS default chain). */
  iamRole?: string;
  /** Redshift: where COPY credentials come from when there is no IAM role (default: the AWS default chain). */
  awsCredentials?: () => Promise<AwsCredentials>;
  /** PostgreSQL/Redshift connections, i.e. tables loaded at once (default 4). */
  poolSize?: number;
  /** PGlite: most bytes handed to one COPY (default 16 MiB); files are streamed in pieces of this size. */
  pgliteBlobBytes?: number;
  /** PGlite: how long to wait for another process that has the directory open (default 5 s). */
  pgliteLockWaitMs?: number;
  log?: (msg: string) => void;
}

export const DEFAULT_POOL_SIZE = 4;

/** What kind of warehouse a URL names, and what to open: a connection string or a directory. */
export function parseWarehouseUrl(url: string): { kind: WarehouseKind; target: string } {
  const pglite = /^pglite:(?:\/\/)?(.+)$/i.exec(url);
  if (pglite) return { kind: 'pglite', target: pglite[1] as string };
  if (/^redshift:\/\//i.test(url)) return { kind: 'redshift', target: `postgres://${url.slice('redshift://'.length)}` };
  if (/^postgres(ql)?:\/\//i.test(url)) {
    let host: string;
    try {
      host = new URL(url).hostname.toLowerCase();
    } catch {
      throw new Error(`warehouse URL ${redactUrl(url)} cannot be parsed`);
    }
    const redshift = host.endsWith('.redshift.amazonaws.com') || host.endsWith('.redshift-serverless.amazonaws.com');
    return { kind: redshift ? 'redshift' : 'postgres', target: url };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new Error(
      `unsupported warehouse URL ${redactUrl(url)}: use postgres://, redshift://, pglite://<dir> or a directory`,
    );
  }
  if (url.length === 0) throw new Error('empty warehouse URL');
  return { kind: 'pglite', target: url };
}

/**
 * Opens a warehouse. Each implementation is imported on demand, so PostgreSQL users
 * never load the PGlite WebAssembly and the other way round.
 */
export async function openWarehouse(url: string, opts: WarehouseOptions = {}): Promise<Warehouse> {
  const { kind, target } = parseWarehouseUrl(url);
  switch (kind) {
    case 'postgres': {
      const { PostgresWarehouse } = await import('./postgres.js');
      return PostgresWarehouse.open(target, opts);
    }
    case 'redshift': {
      const { RedshiftWarehouse } = await import('./redshift.js');
      return RedshiftWarehouse.open(target, opts);
    }
    case 'pglite': {
      const { PgliteWarehouse } = await import('./pglite.js');
      return PgliteWarehouse.open(target, opts);
    }
  }
}

// ---------------------------------------------------------------------------
// The replace transaction, shared by the three implementations.

export interface StatementResult {
  rows: Record<string, unknown>[];
  rowCount: number;
}

/** Which file a COPY is working on, for error messages. */
export interface CopyProgress {
  file?: string;
}

/** What one implementation provides for one load, on one connection it holds for the whole transaction. */
export interface LoadSession {
  query(sql: string, params?: unknown[]): Promise<StatementResult>;
  /** PostgreSQL drops the temp table at COMMIT; Redshift has no ON COMMIT and drops it before COMMIT. */
  readonly tempDroppedOnCommit: boolean;
  /** Copies every file of the load into `temp` (a quoted name), naming `columns`; returns the rows copied. */
  copyFiles(temp: string, columns: readonly string[], progress: CopyProgress): Promise<number>;
  /**
   * Redshift folds even quoted identifiers to lower case (unless
   * enable_case_sensitive_identifier is on), so its catalog must be searched in lower case.
   */
  readonly catalogLowerCase?: boolean;
  /** The statement locking the target table against other loads (default: PostgreSQL's `lockTableSql`). */
  lockTableSql?(target: string): string;
  /** Extra words about a failed COPY, looked up after ROLLBACK (Redshift: stl_load_errors). */
  explainCopyFailure?(): Promise<string | undefined>;
}

export interface LoadContext {
  redact: (text: string) => string;
  log?: (msg: string) => void;
}

/** Message of a database (pg or PGlite) error with its detail and location, e.g. `COPY t, line 2, column n`. */
export function databaseErrorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const fields = err as Error & { detail?: unknown; where?: unknown; code?: unknown };
  let text = err.message || err.name;
  // zlib's own words ("incorrect header check") do not say that the file is not valid gzip.
  if (typeof fields.code === 'string' && fields.code.startsWith('Z_')) text = `gzip: ${text}`;
  if (typeof fields.detail === 'string' && fields.detail) text += ` (${fields.detail})`;
  if (typeof fields.where === 'string' && fields.where) text += ` [${fields.where}]`;
  return text;
}

let tempSerial = 0;

/** The result of a load that has done nothing (yet): `failed`, every count zero. */
export function emptyLoadResult(table: string): TableLoadResult {
  return { table, status: 'failed', before: 0, deleted: 0, inserted: 0, droppedOutsideWindow: 0, seconds: 0 };
}

function toCount(value: unknown): number {
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

/**
 * BEGIN; lock the table; count the window; DELETE it; stage the files in a temp table; INSERT the
 * staged rows inside the window; refuse a shrink beyond `maxShrink` unless allowed;
 * COMMIT. Any error rolls back, so the table is either replaced or untouched.
 */
export async function replaceWindowInTransaction(
  session: LoadSession,
  load: TableLoad,
  ctx: LoadContext,
): Promise<TableLoadResult> {
  const started = Date.now();
  const name = displayName(load.schema, load.table);
  const result = emptyLoadResult(load.table);
  const finish = (status: TableLoadResult['status'], error?: string): TableLoadResult => {
    result.status = status;
    if (error !== undefined) result.error = ctx.redact(error);
    result.seconds = (Date.now() - started) / 1000;
    const counts = `before ${result.before}, deleted ${result.deleted}, inserted ${result.inserted}, dropped outside window ${result.droppedOutsideWindow}`;
    ctx.log?.(
      ctx.redact(
        status === 'loaded'
          ? `${name}: loaded ${load.files.length} file(s): ${counts} (${result.seconds.toFixed(1)} s)`
          : `${status === 'failed' ? 'load failed' : 'load refused'}: ${result.error ?? ''}`,
      ),
    );
    return result;
  };

  let target: string;
  let temp: string;
  try {
    validateWindow(load.window);
    if (!(load.maxShrink >= 0 && load.maxShrink <= 1)) throw new Error(`maxShrink ${load.maxShrink} is not in [0, 1]`);
    target = qualifiedName(load.schema, load.table);
    temp = quoteIdent(tempTableName(load.table, ++tempSerial));
  } catch (err) {
    return finish('failed', `${name}: ${(err as Error).message}`);
  }
  const window = [load.window.start, load.window.end];

  let step = 'checking the table';
  const progress: CopyProgress = {};
  let inTransaction = false;
  try {
    const checkColumns = (): ReturnType<typeof checkTableColumns> =>
      checkTableColumns(async (sql, params) => (await session.query(sql, params)).rows, {
        schema: load.schema,
        table: load.table,
        columns: load.columns,
        foldCase: session.catalogLowerCase === true,
      });
    const check = await checkColumns();
    if (!check.exists) return finish('failed', check.problem);
    if (!check.actual.some((column) => column.name === 'time')) {
      return finish('failed', `table ${name} has no "time" column, so its window cannot be replaced`);
    }
    if (check.problem !== undefined) return finish('columns_refused', check.problem);
    const columnNames = load.columns.map((column) => column.name);

    step = 'BEGIN';
    await session.query('BEGIN');
    inTransaction = true;
    // Before counting: a concurrent load of this table waits here until this one commits.
    step = 'locking the table';
    await session.query(session.lockTableSql ? session.lockTableSql(target) : lockTableSql(target));
    // The table may have been altered between the check above and the lock (which
    // ALTER TABLE now waits for): check again, so the rows go by what is locked.
    step = 'checking the table again';
    const recheck = await checkColumns();
    if (!recheck.exists || recheck.problem !== undefined) {
      step = 'ROLLBACK';
      inTransaction = false;
      await session.query('ROLLBACK');
      return finish(recheck.exists ? 'columns_refused' : 'failed', recheck.problem);
    }
    step = 'counting the window';
    result.before = toCount((await session.query(countWindowSql(target), window)).rows[0]?.n);
    step = 'deleting the window';
    result.deleted = (await session.query(deleteWindowSql(target), window)).rowCount;
    step = 'creating the staging table';
    await session.query(createTempSql(temp, target, session.tempDroppedOnCommit));
    step = 'copying';
    const copied = await session.copyFiles(temp, columnNames, progress);
    step = 'inserting the window';
    result.inserted = (await session.query(insertWindowSql(target, temp, columnNames), window)).rowCount;
    result.droppedOutsideWindow = copied - result.inserted;

    if (!load.allowShrink && result.before > 0 && result.inserted < (1 - load.maxShrink) * result.before) {
      step = 'ROLLBACK';
      inTransaction = false;
      await session.query('ROLLBACK');
      const lost = (((result.before - result.inserted) / result.before) * 100).toFixed(1);
      return finish(
        'shrink_refused',
        `${name}: the load would shrink the window ${load.window.start} .. ${load.window.end} from ${result.before} ` +
          `to ${result.inserted} rows (${lost}% fewer; at most ${Number((load.maxShrink * 100).toFixed(2))}% allowed); the table is ` +
          `unchanged; rerun with --allow-shrink to accept`,
      );
    }
    if (!session.tempDroppedOnCommit) {
      step = 'dropping the staging table';
      await session.query(dropTableSql(temp));
    }
    step = 'COMMIT';
    inTransaction = false;
    await session.query('COMMIT');
    return finish('loaded');
  } catch (err) {
    let message = `${name}: ${step}`;
    if (progress.file !== undefined) message += ` file ${progress.file}`;
    message += ` failed: ${databaseErrorText(err)}`;
    if (inTransaction || step === 'COMMIT') {
      try {
        await session.query('ROLLBACK');
      } catch {
        // The connection is gone (or the COMMIT failed); the server rolls back by itself.
      }
    }
    if (step === 'copying' && session.explainCopyFailure) {
      try {
        const more = await session.explainCopyFailure();
        if (more) message += `; ${more}`;
      } catch {
        // best effort only
      }
    }
    return finish('failed', message);
  }
}
