/**
 * What a warehouse is to its users (the replay's window replace, the processor's
 * append): the interface three implementations share (PostgreSQL, embedded PGlite,
 * Redshift), what one table load asks for and reports, and what each implementation
 * gives the shared transactions (replace-window.ts) for one load.
 */
import type { Readable } from 'node:stream';
import type { ReviewOptions, TableReview } from './review-sql.js';
import type { ExpectedColumn } from './table-columns.js';

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
  /** Compute the review (review-sql.ts) inside the transaction. */
  review?: ReviewOptions;
  /** Do everything up to the review, then roll back (status `previewed`). */
  preview?: boolean;
}

export interface TableLoadResult {
  table: string;
  /**
   * `columns_refused`: the table's columns do not match the config's (table-columns.ts); nothing was done.
   * `previewed`: would have loaded, rolled back (`preview`). `review_refused`: flagged by the review, rolled back.
   */
  status: 'loaded' | 'previewed' | 'failed' | 'shrink_refused' | 'columns_refused' | 'review_refused';
  /** Rows in the window before the load. */
  before: number;
  deleted: number;
  inserted: number;
  /** Rows in the files whose `time` is outside the window (staged but not inserted). */
  droppedOutsideWindow: number;
  error?: string;
  seconds: number;
  /** When asked for (`TableLoad.review`) and the transaction got as far as the INSERT. */
  review?: TableReview;
}

/** Opens the (gzip) bytes of one file named in `TableLoad.files`. */
export type OpenFile = (key: string) => Promise<Readable>;

export interface Warehouse {
  readonly kind: WarehouseKind;
  /** Never rejects for a load problem: the result says `failed` and why. */
  replaceWindow(load: TableLoad, openFile: OpenFile): Promise<TableLoadResult>;
  /**
   * Runs `fn` on one connection held until it settles (the continuous processor's
   * append, append.ts, runs its own transaction there); `sessions.of` gives the load
   * session of one table's files on that connection. A connection `fn` rejected on
   * is never reused.
   */
  withSessions<T>(fn: (sessions: SessionSource) => Promise<T>): Promise<T>;
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
  /** The server has PostgreSQL's `jit` setting (PostgreSQL; PGlite has no JIT): the review turns it off for its queries. */
  readonly jitSetting?: boolean;
  /** The server has PostgreSQL's planner settings (PostgreSQL and PGlite, not Redshift): see review-sql.ts reviewSettings. */
  readonly plannerSettings?: boolean;
  /** Extra words about a failed COPY, looked up after ROLLBACK (Redshift: stl_load_errors). */
  explainCopyFailure?(): Promise<string | undefined>;
}

/** The files of one table, as a load session copies them (a part of TableLoad). */
export type CopySource = Pick<TableLoad, 'schema' | 'table' | 'files' | 'manifestUrl' | 'manifestUrls'>;

/** What `Warehouse.withSessions` hands out: sessions on its one connection, and the warehouse's redaction. */
export interface SessionSource {
  of(source: CopySource, openFile: OpenFile): LoadSession;
  redact(text: string): string;
}

export interface LoadContext {
  redact: (text: string) => string;
  log?: (msg: string) => void;
}
