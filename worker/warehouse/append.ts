/**
 * Continuous loading (PostgreSQL, embedded PGlite, Redshift): appends the files
 * of committed batches to their tables, exactly once. A load takes a group of
 * batches (in commit order) and runs ONE transaction for all of them, every
 * table included:
 *
 *   BEGIN; LOCK <schema>.spade_loaded_manifests; SELECT the group's manifests already
 *   recorded; column check of every table; per batch not recorded yet: COPY each
 *   table's files, INSERT its manifest record; COMMIT
 *
 * Why one transaction per group, not one per table: the record of a batch says
 * "all of this batch is in the warehouse", so it must commit together with every
 * table's rows of that batch. With a transaction per table, a failure (a dropped
 * column, a full disk) would leave a batch half loaded, its other tables ahead,
 * and the record would have to be kept per table; and on Redshift, where every
 * COMMIT is expensive and commits of the cluster run one after another, it
 * would multiply the commits by the number of tables. So a failure rolls back
 * the whole group, which is retried whole, in order: no table ever runs ahead
 * of another, and no batch is ever skipped.
 *
 * The record table is locked first: a second loader of the same batches (another
 * process, a restart racing a slow COMMIT) waits, then finds the records and
 * loads nothing. (PRIMARY KEY is not enforced on Redshift, so the lock, not the
 * key, keeps a batch from being recorded twice.)
 *
 * Data path per warehouse (the replay's load sessions, warehouse.ts LoadSession):
 * PostgreSQL streams each file into `COPY … FROM STDIN`, PGlite hands it over in
 * blobs, Redshift runs one COPY per table and batch from a MANIFEST naming the
 * batch's files of that table (written by the caller into the output store),
 * with the replay's COPY options and credentials (IAM role, else the AWS default
 * chain), masked in every message.
 */
import type { TableSchema } from '../transform/schema.js';
import { createMissingTables } from './create-tables.js';
import { databaseErrorText, sessionLockSql } from './replace-window.js';
import { DEFAULT_SCHEMA, displayName, qualifiedName, quoteIdent } from './sql.js';
import { checkTableColumns, expectedColumns } from './table-columns.js';
import type { CopyProgress, LoadSession, OpenFile, SessionSource, Warehouse, WarehouseKind } from './warehouse.js';

export const LOADED_MANIFESTS_TABLE = 'spade_loaded_manifests';

/** A failure whose message already says what failed (a COPY, a column check). */
class StepFailure extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
  }
}

export interface AppendFile {
  /** Table (event name) the rows belong to. */
  table: string;
  /** Key of the gzip TSV file, given to `openFile`. */
  key: string;
  /** s3:// URL of the file (Redshift MANIFEST entries). */
  url?: string;
  /** The columns of the file's fields, in order, as recorded when it was written (default: the config's). */
  columns?: readonly string[];
}

export interface AppendBatch {
  /** The batch's success manifest URL: what `spade_loaded_manifests` records. */
  manifest: string;
  files: AppendFile[];
  /** Redshift: s3:// URL of the MANIFEST naming the files of each of `copyUnits(files)`, by unit name. */
  manifestUrls?: ReadonlyMap<string, string>;
}

/** The files one COPY loads: one table's files of a batch whose fields are the same columns. */
export interface CopyUnit {
  /** The table, or `<table>.<n>` for the n-th further column list of the table (a config reload within the batch). */
  name: string;
  table: string;
  /** Recorded with the files; undefined: the config's columns. */
  columns: readonly string[] | undefined;
  files: AppendFile[];
}

/** A batch's files as COPYs: per table (sorted), per column list (in the order first met). */
export function copyUnits(files: readonly AppendFile[]): CopyUnit[] {
  const units = new Map<string, CopyUnit[]>();
  for (const f of files) {
    let ofTable = units.get(f.table);
    if (!ofTable) units.set(f.table, (ofTable = []));
    const same = (columns: readonly string[] | undefined): boolean =>
      columns === f.columns ||
      (columns !== undefined && f.columns !== undefined && columns.join('\t') === f.columns.join('\t'));
    let unit = ofTable.find((u) => same(u.columns));
    if (!unit) {
      const name = ofTable.length === 0 ? f.table : `${f.table}.${ofTable.length}`;
      ofTable.push((unit = { name, table: f.table, columns: f.columns, files: [] }));
    }
    unit.files.push(f);
  }
  return [...units.keys()].sort().flatMap((table) => units.get(table) as CopyUnit[]);
}

export interface AppendBatchResult {
  manifest: string;
  status: 'loaded' | 'already_loaded';
  rows: number;
}

export interface AppenderOptions {
  schema?: string;
  /** Create missing tables from the config before loading (PostgreSQL, PGlite; never Redshift). */
  createTables?: boolean;
  log?: (msg: string) => void;
}

export class WarehouseAppender {
  readonly schema: string;

  private constructor(
    readonly warehouse: Warehouse,
    private readonly opts: AppenderOptions,
  ) {
    this.schema = opts.schema ?? DEFAULT_SCHEMA;
  }

  get kind(): WarehouseKind {
    return this.warehouse.kind;
  }

  /** Creates the record table if missing (a warehouse that refuses fails here, its message redacted). */
  static async open(warehouse: Warehouse, opts: AppenderOptions = {}): Promise<WarehouseAppender> {
    const appender = new WarehouseAppender(warehouse, opts);
    try {
      // Only when asked to create tables: CREATE SCHEMA needs a privilege a loader may lack.
      if (opts.createTables && warehouse.kind !== 'redshift') {
        await warehouse.execute(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(appender.schema)}`);
      }
      await warehouse.execute(loadedManifestsTableSql(warehouse.kind, appender.manifestTable()));
    } catch (err) {
      throw new Error(
        `cannot prepare ${displayName(appender.schema, LOADED_MANIFESTS_TABLE)}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    return appender;
  }

  manifestTable(): string {
    return qualifiedName(this.schema, LOADED_MANIFESTS_TABLE);
  }

  /** True when `manifest` is recorded as loaded. */
  async isLoaded(manifest: string): Promise<boolean> {
    const rows = await this.warehouse.query(`SELECT 1 AS present FROM ${this.manifestTable()} WHERE manifest = $1`, [
      manifest,
    ]);
    return rows.length > 0;
  }

  /**
   * Loads `batches` (in order) and records each, in one transaction; a batch
   * already recorded is left out. `schemas` is the table config in use: it gives
   * each table's columns (unless a file names its own). Rejects, after rolling
   * back, on any failure, naming the table and file.
   */
  async append(
    batches: readonly AppendBatch[],
    openFile: OpenFile,
    schemas: readonly TableSchema[],
  ): Promise<AppendBatchResult[]> {
    if (this.opts.createTables) {
      const tables = new Set(batches.flatMap((b) => b.files.map((f) => f.table)));
      await createMissingTables(this.warehouse, schemas, tables, this.schema, this.opts.log ?? (() => undefined));
    }
    return this.warehouse.withSessions((sessions) => this.inTransaction(sessions, batches, openFile, schemas));
  }

  private async inTransaction(
    sessions: SessionSource,
    batches: readonly AppendBatch[],
    openFile: OpenFile,
    schemas: readonly TableSchema[],
  ): Promise<AppendBatchResult[]> {
    // One connection: every session of this transaction shares it; this one runs the statements.
    const control = sessions.of({ schema: this.schema, table: LOADED_MANIFESTS_TABLE, files: [] }, openFile);
    let failedCopy: LoadSession | undefined;
    let step = 'BEGIN';
    try {
      await control.query('BEGIN');
      step = `locking ${displayName(this.schema, LOADED_MANIFESTS_TABLE)}`;
      const table = this.manifestTable();
      await control.query(sessionLockSql(control, table));
      step = 'reading the loaded manifests';
      const recorded = await this.recorded(
        control,
        batches.map((b) => b.manifest),
      );
      step = 'checking the tables';
      // Only the tables of batches still to load: a recorded batch needs nothing of its tables.
      const toLoad = batches.filter((b) => !recorded.has(b.manifest));
      const columnsOf = await this.checkTables(
        control,
        new Set(toLoad.flatMap((b) => b.files.map((f) => f.table))),
        schemas,
      );
      const results: AppendBatchResult[] = [];
      for (const batch of batches) {
        if (recorded.has(batch.manifest)) {
          results.push({ manifest: batch.manifest, status: 'already_loaded', rows: 0 });
          continue;
        }
        let rows = 0;
        for (const unit of copyUnits(batch.files)) {
          const session = sessions.of(
            {
              schema: this.schema,
              table: unit.table,
              files: unit.files.map((f) => ({ key: f.key, url: f.url ?? f.key })),
              manifestUrl: batch.manifestUrls?.get(unit.name),
            },
            openFile,
          );
          const progress: CopyProgress = {};
          const columns = unit.columns ?? columnsOf.get(unit.table) ?? [];
          try {
            rows += await session.copyFiles(qualifiedName(this.schema, unit.table), columns, progress);
          } catch (err) {
            failedCopy = session;
            const file = progress.file !== undefined ? ` of ${progress.file}` : '';
            throw new StepFailure(
              `${displayName(this.schema, unit.table)}: COPY${file} (batch ${batch.manifest}) failed: ${databaseErrorText(err)}`,
              err,
            );
          }
        }
        step = `recording ${batch.manifest}`;
        await control.query(`INSERT INTO ${table} (manifest, files, rows) VALUES ($1, $2, $3)`, [
          batch.manifest,
          batch.files.length,
          rows,
        ]);
        results.push({ manifest: batch.manifest, status: 'loaded', rows });
      }
      step = 'COMMIT';
      await control.query('COMMIT');
      return results;
    } catch (err) {
      let message = err instanceof StepFailure ? err.message : `${step} failed: ${databaseErrorText(err)}`;
      // After a failed COMMIT the server has rolled back by itself; a dead connection is not reused.
      await control.query('ROLLBACK').catch(() => undefined);
      if (failedCopy?.explainCopyFailure) {
        const more = await failedCopy.explainCopyFailure().catch(() => undefined);
        if (more) message += `; ${more}`;
      }
      throw new Error(sessions.redact(message), { cause: err });
    }
  }

  /** Which of `manifests` are recorded already (by an earlier load, before a restart). */
  private async recorded(session: LoadSession, manifests: readonly string[]): Promise<Set<string>> {
    if (manifests.length === 0) return new Set();
    // IN with one parameter each: Redshift has no array parameters.
    const list = manifests.map((_m, i) => `$${i + 1}`).join(', ');
    const res = await session.query(
      `SELECT manifest FROM ${this.manifestTable()} WHERE manifest IN (${list})`,
      manifests as unknown[],
    );
    return new Set(res.rows.map((row) => String(row.manifest)));
  }

  /** The replay's column check of every table (all before any COPY); the column names to COPY, per table. */
  private async checkTables(
    session: LoadSession,
    tables: ReadonlySet<string>,
    schemas: readonly TableSchema[],
  ): Promise<Map<string, string[]>> {
    const columnsOf = new Map<string, string[]>();
    const problems: string[] = [];
    for (const table of [...tables].sort()) {
      const columns = expectedColumns(schemas, table);
      if (!columns) {
        problems.push(`table ${displayName(this.schema, table)} is not in the config`);
        continue;
      }
      const check = await checkTableColumns(async (sql, params) => (await session.query(sql, params)).rows, {
        schema: this.schema,
        table,
        columns,
        foldCase: session.catalogLowerCase === true,
      });
      if (check.problem !== undefined) problems.push(check.problem);
      columnsOf.set(
        table,
        columns.map((c) => c.name),
      );
    }
    if (problems.length) throw new StepFailure(problems.join('; '));
    return columnsOf;
  }

  async close(): Promise<void> {
    await this.warehouse.close();
  }
}

/** The record table: PostgreSQL/PGlite enforce its key; Redshift (no `text`, key not enforced) relies on the lock. */
export function loadedManifestsTableSql(kind: WarehouseKind, table: string): string {
  if (kind === 'redshift') {
    return (
      `CREATE TABLE IF NOT EXISTS ${table} (manifest varchar(1024) NOT NULL PRIMARY KEY, ` +
      `loaded_at timestamp NOT NULL DEFAULT SYSDATE, files integer, rows bigint)`
    );
  }
  return `CREATE TABLE IF NOT EXISTS ${table} (manifest text PRIMARY KEY, loaded_at timestamptz NOT NULL DEFAULT now(), files integer, rows bigint)`;
}
