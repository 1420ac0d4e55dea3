/**
 * Embedded PGlite warehouse (a local directory). PGlite has one connection and
 * cannot `COPY FROM STDIN`; it reads COPY data from the virtual device `/dev/blob`
 * (query option `blob`). Each file is gunzipped as a stream and handed over in
 * blobs of at most ~`blobBytes`, cut at row ends, so memory stays bounded.
 */
import { mkdirSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { PGlite } from '@electric-sql/pglite';
import { Redactor } from '../redact.js';
import { DirLock } from '../lock/dir-lock.js';
import { copyFromBlobSql, TABLE_EXISTS_SQL } from './sql.js';
import {
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
import { replaceWindowInTransaction } from './replace-window.js';

export const DEFAULT_BLOB_BYTES = 16 * 1024 * 1024;

const LF = 0x0a;
const BACKSLASH = 0x5c;

/**
 * Index just past the last row end in `buf`, or -1. In our TSV format an embedded
 * newline is written as backslash+LF, so an LF ends a row iff it is preceded by an
 * even number of consecutive backslashes (`\\` is an escaped backslash). `buf` must
 * start at a row start, so a backslash run never continues from before it.
 */
export function lastRowEnd(buf: Buffer): number {
  let lf = buf.lastIndexOf(LF);
  while (lf >= 0) {
    let i = lf - 1;
    while (i >= 0 && buf[i] === BACKSLASH) i--;
    if ((lf - 1 - i) % 2 === 0) return lf + 1;
    // lastIndexOf with a negative offset counts from the end, so stop at 0.
    lf = lf > 0 ? buf.lastIndexOf(LF, lf - 1) : -1;
  }
  return -1;
}

/**
 * Collects decompressed pieces and hands out blobs of whole rows once at least
 * `limit` bytes are pending. A single row longer than `limit` just makes a bigger blob.
 */
export class RowBlobCutter {
  private pending: Buffer[] = [];
  private size = 0;

  constructor(private readonly limit: number) {
    if (!(limit > 0)) throw new Error(`blob size ${limit} must be positive`);
  }

  push(piece: Buffer): Buffer | null {
    this.pending.push(piece);
    this.size += piece.length;
    if (this.size < this.limit) return null;
    const all = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending, this.size);
    const cut = lastRowEnd(all);
    if (cut <= 0) {
      this.pending = [all];
      return null;
    }
    const rest = all.subarray(cut);
    this.pending = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    return all.subarray(0, cut);
  }

  /** Whatever is left at the end of the file (a last row may lack its LF). */
  end(): Buffer | null {
    const all = Buffer.concat(this.pending, this.size);
    this.pending = [];
    this.size = 0;
    return all.length > 0 ? all : null;
  }
}

/** PGlite's error location `COPY t, line N, …` counts lines of one blob; shift it to the file's line. */
function shiftCopyLine(err: unknown, linesBefore: number): unknown {
  if (linesBefore === 0 || !(err instanceof Error)) return err;
  const withWhere = err as Error & { where?: unknown };
  if (typeof withWhere.where === 'string') {
    withWhere.where = withWhere.where.replace(/\bline (\d+)/, (_m, n: string) => `line ${Number(n) + linesBefore}`);
  }
  return err;
}

export class PgliteWarehouse implements Warehouse {
  readonly kind: WarehouseKind = 'pglite';
  private readonly redactor = new Redactor();
  /** Every operation runs after the previous one: one connection, and a load is a transaction on it. */
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly db: PGlite,
    private readonly lock: DirLock,
    private readonly blobBytes: number,
    private readonly log: ((msg: string) => void) | undefined,
  ) {}

  /** Waits a few seconds for another process that has `dir` open, then refuses naming it (DirLock). */
  static async open(dir: string, opts: WarehouseOptions = {}): Promise<PgliteWarehouse> {
    mkdirSync(dir, { recursive: true });
    const lock = await DirLock.acquire(dir, { waitMs: opts.pgliteLockWaitMs, log: opts.log, what: 'PGlite database' });
    let db: PGlite;
    try {
      db = new PGlite(dir);
      await db.waitReady;
    } catch (err) {
      lock.release();
      throw new Error(`cannot open PGlite database in ${dir}: ${(err as Error).message}`, { cause: err });
    }
    return new PgliteWarehouse(db, lock, opts.pgliteBlobBytes ?? DEFAULT_BLOB_BYTES, opts.log);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  replaceWindow(load: TableLoad, openFile: OpenFile): Promise<TableLoadResult> {
    return this.serial(() =>
      replaceWindowInTransaction(this.session(load, openFile), load, {
        redact: (text) => this.redactor.apply(text),
        log: this.log,
      }),
    );
  }

  /** PGlite has one connection: `fn` runs after every operation before it, and before any after it. */
  withSessions<T>(fn: (sessions: SessionSource) => Promise<T>): Promise<T> {
    const redact = (text: string): string => this.redactor.apply(text);
    return this.serial(() => fn({ of: (source, openFile) => this.session(source, openFile), redact }));
  }

  private session(load: CopySource, openFile: OpenFile): LoadSession {
    return {
      tempDroppedOnCommit: true,
      plannerSettings: true,
      query: (sql, params) => this.run(sql, params),
      copyFiles: async (temp: string, columns: readonly string[], progress: CopyProgress): Promise<number> => {
        let copied = 0;
        for (const file of load.files) {
          progress.file = file.key;
          copied += await this.copyFile(temp, columns, await openFile(file.key));
        }
        progress.file = undefined;
        return copied;
      },
    };
  }

  /** One file: gunzip as a stream, COPY each blob of whole rows as soon as it is cut. */
  private async copyFile(temp: string, columns: readonly string[], source: Readable): Promise<number> {
    const sql = copyFromBlobSql(temp, columns);
    const cutter = new RowBlobCutter(this.blobBytes);
    const gunzip = createGunzip();
    source.on('error', (err: Error) => gunzip.destroy(err));
    source.pipe(gunzip);
    let rows = 0;
    const copyBlob = async (blob: Buffer): Promise<void> => {
      try {
        const res = await this.db.query(sql, [], { blob: new Blob([blob]) });
        rows += res.rowCount ?? res.affectedRows ?? 0;
      } catch (err) {
        throw shiftCopyLine(err, rows);
      }
    };
    try {
      // The async iterator pulls from gunzip only while no COPY is running: bounded memory.
      for await (const piece of gunzip as AsyncIterable<Buffer>) {
        const blob = cutter.push(piece);
        if (blob) await copyBlob(blob);
      }
      const last = cutter.end();
      if (last) await copyBlob(last);
    } finally {
      source.destroy();
      gunzip.destroy();
    }
    return rows;
  }

  private async run(sql: string, params?: unknown[]): Promise<StatementResult> {
    const res = await this.db.query<Record<string, unknown>>(sql, params);
    return { rows: res.rows, rowCount: res.rowCount ?? res.affectedRows ?? 0 };
  }

  tableExists(schema: string, table: string): Promise<boolean> {
    return this.serial(async () => (await this.run(TABLE_EXISTS_SQL, [schema, table])).rows.length > 0);
  }

  execute(sql: string): Promise<void> {
    return this.serial(async () => {
      await this.db.exec(sql);
    });
  }

  query<T>(sql: string, params?: unknown[]): Promise<T[]> {
    return this.serial(async () => (await this.db.query<T>(sql, params)).rows);
  }

  close(): Promise<void> {
    return this.serial(async () => {
      try {
        await this.db.close();
      } finally {
        this.lock.release();
      }
    });
  }
}
