/**
 * CREATE TABLE statements for event tables, in Redshift or PostgreSQL.
 *
 * Column types follow the original Spade (scoop_protocol / rs_ingester type map):
 * int → INT, bigint → BIGINT, float → DOUBLE PRECISION (Redshift's FLOAT is
 * FLOAT8), varchar(n) → VARCHAR(n) (no width: VARCHAR(256), Redshift's default,
 * made explicit so PostgreSQL gets the same width), bool → BOOLEAN,
 * f@timestamp@* → TIMESTAMP, ipCity → VARCHAR(64), ipCountry → VARCHAR(2),
 * ipRegion → VARCHAR(64), ipAsn → VARCHAR(128), ipAsnInteger → INT,
 * userIDWithMapping and stringToIntegerMD5 → BIGINT.
 *
 * `sortkey` / `distkey` stay Redshift column attributes (SORTKEY, DISTKEY); for
 * PostgreSQL they are dropped and nothing is added. Identifiers are always
 * double-quoted, `"` doubled.
 */
import { DEFAULT_VARCHAR_BYTES, IP_COLUMN_BYTES, TIMESTAMP_LAYOUT_PREFIX } from '../transform/columns.js';
import type { ColumnSchema, TableSchema } from '../transform/schema.js';
import { qualifiedName, quoteIdent } from './sql.js';

export type SqlDialect = 'redshift' | 'postgres';

export interface CreateTableOptions {
  dialect: SqlDialect;
  /** Schema (namespace) the table is created in. */
  schema: string;
  /** `CREATE TABLE IF NOT EXISTS`. Default false. */
  ifNotExists?: boolean;
}

/** The SQL type of a column. */
export function columnType(column: ColumnSchema): string {
  const t = column.transformer;
  switch (t) {
    case 'int':
    case 'ipAsnInteger':
      return 'INT';
    case 'bigint':
    case 'userIDWithMapping':
    case 'stringToIntegerMD5':
      return 'BIGINT';
    case 'float':
      return 'DOUBLE PRECISION';
    case 'varchar':
      return `VARCHAR(${column.varcharWidth ?? column.declaredWidth ?? DEFAULT_VARCHAR_BYTES})`;
    case 'bool':
      return 'BOOLEAN';
  }
  const ipBytes = IP_COLUMN_BYTES[t];
  if (ipBytes !== undefined) return `VARCHAR(${ipBytes})`;
  if (t.startsWith(TIMESTAMP_LAYOUT_PREFIX)) return 'TIMESTAMP';
  throw new Error(`column ${quoteIdent(column.outboundName)}: no SQL type for transformer ${JSON.stringify(t)}`);
}

/** One CREATE TABLE statement (no trailing newline), columns in config order. */
export function createTableSql(table: TableSchema, opts: CreateTableOptions): string {
  const lines = table.columns.map((column) => {
    let line = `  ${quoteIdent(column.outboundName)} ${columnType(column)}`;
    if (opts.dialect === 'redshift') {
      if (column.distkey) line += ' DISTKEY';
      if (column.sortkey) line += ' SORTKEY';
    }
    return line;
  });
  const name = qualifiedName(opts.schema, table.event);
  return `CREATE TABLE ${opts.ifNotExists ? 'IF NOT EXISTS ' : ''}${name} (\n${lines.join(',\n')}\n);`;
}
