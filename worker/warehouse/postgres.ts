/**
 * PostgreSQL warehouse: a pool of connections, one per table being loaded, so the
 * driver can load `poolSize` tables at once. Files are streamed: object bytes →
 * gunzip → `COPY … FROM STDIN`, one COPY per file, nothing held whole in memory.
 */
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { Redactor, redactUrl } from '../redact.js';
import { copyFromStdinSql, TABLE_EXISTS_SQL } from './sql.js';
import {
  DEFAULT_POOL_SIZE,
  type CopyProgress,
  type CopySource,
  type LoadSession,
  type OpenFile,
  type SessionSource,
  type StatementResult,
  type TableLoad,
  type TableLoadResult,
  type Warehouse,
  type WarehouseKind,
  type WarehouseOptions,
} from './warehouse.js';
import { emptyLoadResult, replaceWindowInTransaction } from './replace-window.js';

export class PostgresWarehouse implements Warehouse {
  readonly kind: WarehouseKind = 'postgres';
  protected readonly redactor = new Redactor();
  protected readonly log: ((msg: string) => void) | undefined;

  protected constructor(
    protected readonly pool: pg.Pool,
    connectionString: string,
    opts: WarehouseOptions,
  ) {
    this.redactor.addUrl(connectionString);
    this.log = opts.log;
    // An idle pooled connection that dies (server restart, terminated backend) must not crash the process.
    pool.on('error', (err) => this.log?.(this.redact(`warehouse connection lost while idle: ${err.message}`)));
  }

  /** Connects once: a wrong URL or password fails here. */
  static async open(connectionString: string, opts: WarehouseOptions = {}): Promise<PostgresWarehouse> {
    return PostgresWarehouse.connect(
      (pool) => new PostgresWarehouse(pool, connectionString, opts),
      connectionString,
      opts,
    );
  }

  /**
   * Builds a warehouse (this class or a subclass) over a new pool and connects
   * once, so that a wrong URL or password fails here, with the URL redacted.
   */
  protected static async connect<W extends PostgresWarehouse>(
    create: (pool: pg.Pool) => W,
    connectionString: string,
    opts: WarehouseOptions,
  ): Promise<W> {
    const max = opts.poolSize ?? DEFAULT_POOL_SIZE;
    if (!Number.isInteger(max) || max < 1) throw new Error(`pool size ${max} is not a positive integer`);
    const warehouse = create(new pg.Pool({ connectionString, max }));
    await warehouse.checkConnection(connectionString);
    return warehouse;
  }

  private async checkConnection(connectionString: string): Promise<void> {
    try {
      await this.pool.query('SELECT 1');
    } catch (err) {
      await this.pool.end().catch(() => undefined);
      const redacted = this.redactedError(err); // the same error, its message and stack redacted in place
      throw new Error(`cannot connect to ${redactUrl(connectionString)}: ${redacted.message}`, { cause: err });
    }
  }

  redact(text: string): string {
    return this.redactor.apply(text);
  }

  async replaceWindow(load: TableLoad, openFile: OpenFile): Promise<TableLoadResult> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      return {
        ...emptyLoadResult(load.table),
        error: this.redact(`${load.schema}.${load.table}: cannot connect: ${(err as Error).message}`),
      };
    }
    // While checked out, the pool does not listen for this client's errors; a connection
    // killed mid-COPY reports through the running query, this only keeps the event handled.
    const onClientError = (): void => undefined;
    client.on('error', onClientError);
    let result: TableLoadResult | undefined;
    try {
      result = await replaceWindowInTransaction(this.session(client, load, openFile), load, {
        redact: (text) => this.redact(text),
        log: this.log,
      });
      return result;
    } finally {
      // After a failure the connection may be dead or mid-protocol: never reuse it.
      client.release(result?.status !== 'failed' ? undefined : true);
      client.removeListener('error', onClientError);
    }
  }

  async withSessions<T>(fn: (sessions: SessionSource) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.redactedError(err);
    }
    const onClientError = (): void => undefined; // reported through the running query
    client.on('error', onClientError);
    let broken = false;
    try {
      return await fn({
        of: (source, openFile) => this.session(client, source, openFile),
        redact: (t) => this.redact(t),
      });
    } catch (err) {
      broken = true;
      throw this.redactedError(err);
    } finally {
      client.removeListener('error', onClientError);
      // After a failure the connection may be mid-COPY: never reuse it.
      client.release(broken ? true : undefined);
    }
  }

  /** The connection-level operations of one load. */
  protected session(client: pg.PoolClient, load: CopySource, openFile: OpenFile): LoadSession {
    return {
      tempDroppedOnCommit: true,
      jitSetting: true,
      plannerSettings: true,
      query: (sql, params) => runQuery(client, sql, params),
      copyFiles: async (temp: string, columns: readonly string[], progress: CopyProgress): Promise<number> => {
        let copied = 0;
        for (const file of load.files) {
          progress.file = file.key;
          const source = await openFile(file.key);
          const copy = client.query(copyFrom(copyFromStdinSql(temp, columns)));
          await pipeline(source, createGunzip(), copy);
          copied += copy.rowCount;
        }
        progress.file = undefined;
        return copied;
      },
    };
  }

  async tableExists(schema: string, table: string): Promise<boolean> {
    return (await this.query(TABLE_EXISTS_SQL, [schema, table])).length > 0;
  }

  async execute(sql: string): Promise<void> {
    try {
      await this.pool.query(sql);
    } catch (err) {
      throw this.redactedError(err);
    }
  }

  async query<T>(sql: string, params?: unknown[]): Promise<T[]> {
    try {
      return (await this.pool.query(sql, params)).rows as T[];
    } catch (err) {
      throw this.redactedError(err);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** `err` itself (when an Error) with secrets removed from its message and stack. */
  protected redactedError(err: unknown): Error {
    const error = err instanceof Error ? err : new Error(String(err));
    error.message = this.redact(error.message);
    if (error.stack) error.stack = this.redact(error.stack);
    return error;
  }
}

async function runQuery(client: pg.PoolClient, sql: string, params?: unknown[]): Promise<StatementResult> {
  const res = await client.query(sql, params);
  return { rows: res.rows as Record<string, unknown>[], rowCount: res.rowCount ?? 0 };
}
