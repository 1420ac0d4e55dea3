/**
 * Continuous loading (PostgreSQL): appends the files of one committed batch to
 * their tables, exactly once. The batch's manifest is recorded in
 * `<schema>.spade_loaded_manifests` in the SAME transaction as the COPYs, so a
 * batch is either wholly loaded and recorded or not at all; a second attempt
 * (after a restart, or by another loader) finds the record and loads nothing.
 * The record's INSERT comes first: a concurrent loader of the same manifest
 * waits on its primary key and then sees the conflict.
 *
 * Before any COPY, every table of the batch goes through the same column check
 * as a replay (table-columns.ts); COPY names the config's columns. A table that
 * does not match fails the whole batch (it is one transaction), which is
 * retried like any failed append until the table or the config is fixed.
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { TableSchema } from '../transform/schema.js';
import { copyFromStdinSql, DEFAULT_SCHEMA, displayName, qualifiedName } from './sql.js';
import { checkTableColumns, expectedColumns } from './table-columns.js';
import { Redactor, redactUrl } from '../redact.js';

export const LOADED_MANIFESTS_TABLE = 'spade_loaded_manifests';

export interface AppendFile {
  /** Table (event name) the rows belong to. */
  table: string;
  /** Key of the gzip TSV file, given to `openFile`. */
  key: string;
}

export interface AppendResult {
  status: 'loaded' | 'already_loaded';
  rows: number;
}

export class AppendLoader {
  private readonly redactor = new Redactor();

  private constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
  ) {}

  /** Connects (a wrong URL fails here, redacted) and creates the manifest table if missing. */
  static async open(
    connectionString: string,
    opts: { schema?: string; log?: (msg: string) => void } = {},
  ): Promise<AppendLoader> {
    if (!/^postgres(ql)?:\/\//i.test(connectionString)) {
      throw new Error(`continuous loading supports postgres:// URLs only, got ${redactUrl(connectionString)}`);
    }
    const pool = new pg.Pool({ connectionString, max: 2 });
    const loader = new AppendLoader(pool, opts.schema ?? DEFAULT_SCHEMA);
    loader.redactor.addUrl(connectionString);
    pool.on('error', (err) => opts.log?.(loader.redact(`warehouse connection lost while idle: ${err.message}`)));
    try {
      await pool.query(
        `CREATE TABLE IF NOT EXISTS ${loader.manifestTable()} (manifest text PRIMARY KEY, loaded_at timestamptz NOT NULL DEFAULT now(), files integer, rows bigint)`,
      );
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw new Error(
        `cannot prepare ${loader.schema}.${LOADED_MANIFESTS_TABLE} at ${redactUrl(connectionString)}: ${loader.redact((err as Error).message)}`,
        { cause: err },
      );
    }
    return loader;
  }

  private manifestTable(): string {
    return qualifiedName(this.schema, LOADED_MANIFESTS_TABLE);
  }

  private redact(text: string): string {
    return this.redactor.apply(text);
  }

  /** True when `manifest` is recorded as loaded. */
  async isLoaded(manifest: string): Promise<boolean> {
    const res = await this.pool.query(`SELECT 1 FROM ${this.manifestTable()} WHERE manifest = $1`, [manifest]);
    return (res.rowCount ?? 0) > 0;
  }

  /**
   * Loads `files` and records `manifest`, in one transaction; does nothing when
   * `manifest` is already recorded. `schemas` is the table config in use: it
   * gives each table's columns, in the order of the fields in the files.
   * Rejects (after rolling back) on any failure, with the table and file in
   * the message.
   */
  async append(
    manifest: string,
    files: readonly AppendFile[],
    openFile: (key: string) => Promise<Readable>,
    schemas: readonly TableSchema[],
  ): Promise<AppendResult> {
    const client = await this.pool.connect();
    const onError = (): void => undefined; // reported through the running query
    client.on('error', onError);
    let broken = false;
    try {
      await client.query('BEGIN');
      const ins = await client.query(
        `INSERT INTO ${this.manifestTable()} (manifest, files) VALUES ($1, $2) ON CONFLICT (manifest) DO NOTHING RETURNING manifest`,
        [manifest, files.length],
      );
      if ((ins.rowCount ?? 0) === 0) {
        await client.query('ROLLBACK');
        return { status: 'already_loaded', rows: 0 };
      }
      const columnsOf = await this.checkTables(client, new Set(files.map((f) => f.table)), schemas);
      let rows = 0;
      for (const f of files) {
        try {
          const columns = columnsOf.get(f.table) as string[];
          const copy = client.query(copyFrom(copyFromStdinSql(qualifiedName(this.schema, f.table), columns)));
          await pipeline(await openFile(f.key), createGunzip(), copy);
          rows += copy.rowCount;
        } catch (err) {
          throw new Error(
            `COPY of ${f.key} into ${this.schema}.${f.table} failed: ${this.redact((err as Error).message)}`,
            {
              cause: err,
            },
          );
        }
      }
      await client.query(`UPDATE ${this.manifestTable()} SET rows = $2 WHERE manifest = $1`, [manifest, rows]);
      await client.query('COMMIT');
      return { status: 'loaded', rows };
    } catch (err) {
      broken = true;
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.removeListener('error', onError);
      // After a failure the connection may be mid-COPY: never reuse it.
      client.release(broken ? true : undefined);
    }
  }

  /** The column check of every table (all before any COPY); the column names to COPY, per table. */
  private async checkTables(
    client: pg.PoolClient,
    tables: ReadonlySet<string>,
    schemas: readonly TableSchema[],
  ): Promise<Map<string, string[]>> {
    const columnsOf = new Map<string, string[]>();
    const problems: string[] = [];
    for (const table of tables) {
      const columns = expectedColumns(schemas, table);
      if (!columns) {
        problems.push(`table ${displayName(this.schema, table)} is not in the config`);
        continue;
      }
      const check = await checkTableColumns(async (sql, params) => (await client.query(sql, params)).rows, {
        schema: this.schema,
        table,
        columns,
        foldCase: false,
      });
      if (check.problem !== undefined) problems.push(check.problem);
      columnsOf.set(
        table,
        columns.map((c) => c.name),
      );
    }
    if (problems.length) throw new Error(problems.join('; '));
    return columnsOf;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
