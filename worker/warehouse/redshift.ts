/**
 * Redshift warehouse: the PostgreSQL wire protocol (pg), but the data never passes
 * through us: COPY reads the files named by an S3 MANIFEST itself. Credentials for
 * that COPY (an IAM role, or keys of the AWS default chain) go into the statement
 * text, so every error and log line is redacted before it leaves this module.
 */
import type pg from 'pg';
import { PostgresWarehouse } from './postgres.js';
import { REDSHIFT_LAST_COPY_COUNT_SQL, redshiftCopySql, redshiftLockTableSql, type RedshiftAuth } from './sql.js';
import type {
  AwsCredentials,
  CopyProgress,
  LoadSession,
  OpenFile,
  StatementResult,
  TableLoad,
  WarehouseKind,
  WarehouseOptions,
} from './warehouse.js';

/** The AWS default credential chain, through the S3 client already in use (no extra dependency). */
async function defaultChainCredentials(): Promise<AwsCredentials> {
  const { S3Client } = await import('@aws-sdk/client-s3');
  const client = new S3Client({});
  try {
    const { accessKeyId, secretAccessKey, sessionToken } = await client.config.credentials();
    return { accessKeyId, secretAccessKey, sessionToken };
  } finally {
    client.destroy();
  }
}

export class RedshiftWarehouse extends PostgresWarehouse {
  override readonly kind: WarehouseKind = 'redshift';
  private readonly iamRole: string | undefined;
  private readonly credentials: () => Promise<AwsCredentials>;

  private constructor(pool: pg.Pool, connectionString: string, opts: WarehouseOptions) {
    super(pool, connectionString, opts);
    this.iamRole = opts.iamRole ?? (process.env.REDSHIFT_IAM_ROLE || undefined);
    this.credentials = opts.awsCredentials ?? defaultChainCredentials;
  }

  static override async open(connectionString: string, opts: WarehouseOptions = {}): Promise<RedshiftWarehouse> {
    return PostgresWarehouse.connect(
      (pool) => new RedshiftWarehouse(pool, connectionString, opts),
      connectionString,
      opts,
    );
  }

  /** How COPY authenticates; keys obtained here are registered for redaction before any use. */
  async copyAuth(): Promise<RedshiftAuth> {
    if (this.iamRole) return { iamRole: this.iamRole };
    let creds: AwsCredentials;
    try {
      creds = await this.credentials();
    } catch (err) {
      throw new Error(
        `no REDSHIFT_IAM_ROLE and no AWS credentials for the Redshift COPY: ${this.redact((err as Error).message)}`,
        { cause: err },
      );
    }
    this.redactor.add(creds.accessKeyId);
    this.redactor.add(creds.secretAccessKey);
    this.redactor.add(creds.sessionToken);
    return creds;
  }

  /** Quoted names are folded to lower case by Redshift (by default), and so are they in its catalog. */
  override async tableExists(schema: string, table: string): Promise<boolean> {
    return super.tableExists(schema.toLowerCase(), table.toLowerCase());
  }

  protected override session(client: pg.PoolClient, load: TableLoad, _openFile: OpenFile): LoadSession {
    const query = async (sql: string, params?: unknown[]): Promise<StatementResult> => {
      const res = await client.query(sql, params);
      return { rows: res.rows as Record<string, unknown>[], rowCount: res.rowCount ?? 0 };
    };
    return {
      // Redshift has no ON COMMIT DROP: the staging table is dropped before COMMIT.
      tempDroppedOnCommit: false,
      catalogLowerCase: true,
      query,
      lockTableSql: redshiftLockTableSql,
      copyFiles: async (temp: string, columns: readonly string[], progress: CopyProgress): Promise<number> => {
        if (load.files.length === 0) return 0;
        if (!load.manifestUrl) throw new Error('Redshift loads need the manifest URL naming the files');
        progress.file = load.manifestUrl;
        const sql = redshiftCopySql(temp, columns, load.manifestUrl, await this.copyAuth());
        this.log?.(
          this.redact(`${load.schema}.${load.table}: COPY ${load.files.length} file(s) from ${load.manifestUrl}`),
        );
        await query(sql);
        const copied = Number((await query(REDSHIFT_LAST_COPY_COUNT_SQL)).rows[0]?.n ?? 0);
        progress.file = undefined;
        return copied;
      },
      // Redshift only says "Check 'stl_load_errors'"; name the file, line and column from there.
      explainCopyFailure: async (): Promise<string | undefined> => {
        const rows = (await query(STL_LOAD_ERRORS_SQL)).rows;
        const row = rows[0];
        if (!row) return undefined;
        const url = String(row.filename ?? '').trim();
        const file = load.files.find((f) => f.url === url)?.key ?? url;
        return (
          `file ${file} line ${String(row.line_number)}, column ${String(row.colname ?? '').trim()}: ` +
          `${String(row.err_reason ?? '').trim()} (value ${JSON.stringify(String(row.raw_field_value ?? '').trim())})`
        );
      },
    };
  }
}

/** The first load error of this session's last COPY (readable after ROLLBACK). */
export const STL_LOAD_ERRORS_SQL =
  'SELECT filename, line_number, colname, err_reason, raw_field_value FROM stl_load_errors ' +
  'WHERE query = pg_last_copy_id() ORDER BY line_number LIMIT 1';
