/**
 * SQL text shared by the three warehouses: identifier quoting, validation of the
 * values that end up in statements, and the statements of the replace transaction
 * (SPEC section 4). Values that the protocol can bind ($1, $2) are bound; the few
 * that cannot (COPY options, names) are validated strictly before being inlined.
 */

/** Default warehouse schema of Spade tables. */
export const DEFAULT_SCHEMA = 'physical';

/** `"name"` with embedded `"` doubled; NUL cannot be part of an identifier. */
export function quoteIdent(name: string): string {
  if (name.length === 0) throw new Error('empty SQL identifier');
  if (name.includes('\0')) throw new Error(`SQL identifier ${JSON.stringify(name)} contains NUL`);
  return `"${name.replace(/"/g, '""')}"`;
}

/** `"schema"."table"`. */
export function qualifiedName(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

/** Human form for messages: schema.table without quotes. */
export function displayName(schema: string, table: string): string {
  return `${schema}.${table}`;
}

/**
 * A string literal for the few places where no parameter can be bound (COPY
 * options). Only plain printable text is accepted, so neither quote doubling nor
 * the server's backslash handling (Redshift treats `\` in literals specially) can
 * change what the literal means. The value itself is never echoed in the error
 * because it may be a secret.
 */
export function plainLiteral(value: string, what: string): string {
  if (!/^[\x20-\x7e]*$/.test(value) || value.includes("'") || value.includes('\\')) {
    throw new Error(`${what} contains a quote, backslash or non-printable character`);
  }
  return `'${value}'`;
}

const WALL_CLOCK = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$/;

/** Checks a replay window: Pacific wall-clock `YYYY-MM-DD HH:MM:SS[.ffffff]`, start <= end. */
export function validateWindow(window: { start: string; end: string }): void {
  for (const [name, value] of [
    ['start', window.start],
    ['end', window.end],
  ] as const) {
    if (!WALL_CLOCK.test(value)) {
      throw new Error(`window ${name} ${JSON.stringify(value)} is not 'YYYY-MM-DD HH:MM:SS'`);
    }
  }
  // Same fixed-width format, so text order is time order.
  if (window.start > window.end) throw new Error(`window start ${window.start} is after end ${window.end}`);
}

/** Name of a load's temp table: unique per load so concurrent loads on one session never clash. */
export function tempTableName(table: string, serial: number): string {
  const safe = table.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 32);
  const random = Math.floor(Math.random() * 0x1000000)
    .toString(16)
    .padStart(6, '0');
  return `spade_load_${safe}_${serial}_${random}`;
}

export const TABLE_EXISTS_SQL =
  'SELECT 1 AS present FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2';

const TIME = quoteIdent('time');

/**
 * Serialises loads of one table: taken first in the load's transaction, before the
 * window is counted, so a second load waits for the first to commit and then sees
 * (and replaces) its rows instead of adding its own next to them. SHARE ROW
 * EXCLUSIVE conflicts with itself and with the ROW EXCLUSIVE lock every
 * INSERT/DELETE/COPY takes (so an append in flight is waited for too), but not
 * with readers. LOCK takes no snapshot, so the count after it sees what the
 * previous holder committed.
 */
export function lockTableSql(target: string): string {
  return `LOCK TABLE ${target} IN SHARE ROW EXCLUSIVE MODE`;
}

/** Redshift's LOCK has no modes (`LOCK [ TABLE ] name`): ACCESS EXCLUSIVE, which blocks readers too until COMMIT. */
export function redshiftLockTableSql(target: string): string {
  return `LOCK ${target}`;
}

/** Rows of the window; parameters: [start, end]. */
export function countWindowSql(target: string): string {
  return `SELECT count(*) AS n FROM ${target} WHERE ${TIME} BETWEEN $1 AND $2`;
}

/** Deletes the window; parameters: [start, end]. TRUNCATE would commit at once on Redshift. */
export function deleteWindowSql(target: string): string {
  return `DELETE FROM ${target} WHERE ${TIME} BETWEEN $1 AND $2`;
}

/**
 * The staging table. PostgreSQL drops it at COMMIT by itself; Redshift has no
 * ON COMMIT clause, so the Redshift loader drops it explicitly before COMMIT.
 */
export function createTempSql(temp: string, target: string, onCommitDrop: boolean): string {
  return `CREATE TEMP TABLE ${temp} (LIKE ${target})${onCommitDrop ? ' ON COMMIT DROP' : ''}`;
}

export function dropTableSql(table: string): string {
  return `DROP TABLE ${table}`;
}

/** `"a", "b"`: the columns a load names, in the order of the fields in the row files. */
export function columnList(columns: readonly string[]): string {
  if (columns.length === 0) throw new Error('no columns to load');
  return columns.map(quoteIdent).join(', ');
}

/**
 * Moves the staged rows that fall inside the window; parameters: [start, end].
 * The columns are named, so rows move by name whatever the table's column order.
 */
export function insertWindowSql(target: string, temp: string, columns: readonly string[]): string {
  const list = columnList(columns);
  return `INSERT INTO ${target} (${list}) SELECT ${list} FROM ${temp} WHERE ${TIME} BETWEEN $1 AND $2`;
}

/**
 * PostgreSQL text COPY of our TSV format (common.md): TAB-separated, backslash
 * escapes, empty = NULL. `columns` names the columns of the fields, in file
 * order, so the table's own column order does not matter.
 */
export function copyFromStdinSql(table: string, columns: readonly string[]): string {
  return `COPY ${table} (${columnList(columns)}) FROM STDIN WITH (FORMAT text, DELIMITER E'\\t', NULL '')`;
}

/** PGlite reads the data of a COPY from the virtual device `/dev/blob` (query option `blob`). */
export function copyFromBlobSql(temp: string, columns: readonly string[]): string {
  return `COPY ${temp} (${columnList(columns)}) FROM '/dev/blob' WITH (FORMAT text, DELIMITER E'\\t', NULL '')`;
}

/** How Redshift authenticates to S3 for a COPY. */
export type RedshiftAuth =
  { iamRole: string } | { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

/**
 * Redshift COPY of the files named by a MANIFEST into the staging table, naming
 * the columns in file order (Redshift accepts a column list).
 * `ESCAPE` decodes backslash+char exactly as written by the TSV writer; `NULL AS '\0'`
 * keeps literal `\N` text from loading as NULL; EMPTYASNULL makes empty fields NULL.
 */
export function redshiftCopySql(
  temp: string,
  columns: readonly string[],
  manifestUrl: string,
  auth: RedshiftAuth,
): string {
  if (!/^s3:\/\/[^/]+\/.+/.test(manifestUrl)) {
    throw new Error(`manifest URL ${JSON.stringify(manifestUrl)} is not an s3://bucket/key URL`);
  }
  let authClause: string;
  if ('iamRole' in auth) {
    // `default` (the cluster's default role) or one ARN, or a comma-separated chain of them.
    const arn = /^arn:[\w-]+:iam::\d{12}:role\/[\w+=.@/-]+$/;
    if (auth.iamRole !== 'default' && !auth.iamRole.split(',').every((role) => arn.test(role))) {
      throw new Error(
        `IAM role ${JSON.stringify(auth.iamRole)} is not 'default' or an IAM role ARN (arn:aws:iam::<account>:role/<name>)`,
      );
    }
    authClause = auth.iamRole === 'default' ? 'IAM_ROLE default' : `IAM_ROLE ${plainLiteral(auth.iamRole, 'IAM role')}`;
  } else {
    const parts = [`aws_access_key_id=${auth.accessKeyId}`, `aws_secret_access_key=${auth.secretAccessKey}`];
    if (auth.sessionToken) parts.push(`token=${auth.sessionToken}`);
    for (const [value, what] of [
      [auth.accessKeyId, 'AWS access key id'],
      [auth.secretAccessKey, 'AWS secret access key'],
      [auth.sessionToken ?? '', 'AWS session token'],
    ] as const) {
      // `;` would end a key=value pair of the credentials string.
      if (value.includes(';')) throw new Error(`${what} contains ';'`);
      plainLiteral(value, what);
    }
    authClause = `CREDENTIALS ${plainLiteral(parts.join(';'), 'AWS credentials')}`;
  }
  return (
    `COPY ${temp} (${columnList(columns)}) FROM ${plainLiteral(manifestUrl, 'manifest URL')} ${authClause} ` +
    `MANIFEST GZIP DELIMITER '\\t' ESCAPE EMPTYASNULL NULL AS '\\0' TIMEFORMAT 'auto' COMPUPDATE OFF STATUPDATE OFF`
  );
}

/** Rows loaded by the last COPY of this Redshift session. */
export const REDSHIFT_LAST_COPY_COUNT_SQL = 'SELECT pg_last_copy_count() AS n';
