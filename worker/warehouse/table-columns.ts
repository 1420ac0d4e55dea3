/**
 * The column check of a load: before any row is copied, the table in the
 * warehouse must have the config's columns, by name (in any order: COPY and
 * INSERT name the columns, see sql.ts `columnList`), with types that can hold every
 * value the transform writes. Used by the replay (all three warehouses) and by
 * the continuous processor's append, so that both refuse the same tables.
 *
 * Decisions:
 * - Types are compared by family (integer, floating point, character, boolean,
 *   timestamp), as ddl.ts maps the config's transformers. Within a family the
 *   table's type must be at least as wide as the config's: an `int` column for a
 *   config `bigint` would fail on large ids, a `real` column would round
 *   doubles, and a `varchar(32)` column for a config `varchar(64)` would fail the
 *   COPY (PostgreSQL, Redshift) on a long value. A wider type (`bigint` for
 *   `int`, `varchar(1000)` or PostgreSQL `text` for `varchar(64)`) is accepted.
 *   `timestamp with time zone` is a mismatch: the files hold zone-less
 *   wall-clock times, which such a column would shift by the session's zone.
 * - A table column that the config does not have is refused, nullable or not:
 *   a replay deletes the window and inserts the config's columns only, so the
 *   values of that column in the window would be replaced by NULL (or its
 *   default); usually it means a column was renamed or dropped in the config
 *   by mistake. The user decides: drop the column, or add it to the config.
 * - Names are compared exactly, except on Redshift, which folds identifiers
 *   (even quoted ones, by default) to lower case.
 */
import type { TableSchema } from '../transform/schema.js';
import { columnType } from './ddl.js';
import { displayName, quoteIdent } from './sql.js';

/** A column the config writes: its outbound name and its SQL type as ddl.ts writes it (`BIGINT`, `VARCHAR(64)`). */
export interface ExpectedColumn {
  name: string;
  type: string;
}

/** A column of the table, as information_schema.columns describes it. */
export interface WarehouseColumn {
  name: string;
  /** information_schema `data_type`, e.g. `character varying`, `bigint`. */
  dataType: string;
  /** `character_maximum_length`: the width of a varchar, null when unbounded (or not a character type). */
  maxLength: number | null;
}

/**
 * The config's columns of one table, in config order (the order of the fields
 * in the row files). Rows go to the highest version of an event (setup.ts), so
 * that is the version whose columns the files hold.
 */
export function expectedColumns(schemas: readonly TableSchema[], event: string): ExpectedColumn[] | undefined {
  let latest: TableSchema | undefined;
  for (const s of schemas) if (s.event === event && (!latest || s.version > latest.version)) latest = s;
  return latest?.columns.map((c) => ({ name: c.outboundName, type: columnType(c) }));
}

/**
 * Columns of a table, in order (empty: the table does not exist or is not
 * visible to this user). information_schema.columns exists on PostgreSQL,
 * PGlite and Redshift alike.
 */
export const TABLE_COLUMNS_SQL =
  'SELECT column_name, data_type, character_maximum_length FROM information_schema.columns ' +
  'WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position';

export type QueryRows = (sql: string, params: unknown[]) => Promise<Record<string, unknown>[]>;

export async function readTableColumns(
  query: QueryRows,
  schema: string,
  table: string,
  foldCase: boolean,
): Promise<WarehouseColumn[]> {
  const fold = (id: string): string => (foldCase ? id.toLowerCase() : id);
  const rows = await query(TABLE_COLUMNS_SQL, [fold(schema), fold(table)]);
  return rows.map((row) => ({
    name: String(row.column_name),
    dataType: String(row.data_type).toLowerCase(),
    maxLength:
      row.character_maximum_length === null || row.character_maximum_length === undefined
        ? null
        : Number(row.character_maximum_length),
  }));
}

type Family = 'integer' | 'floating point' | 'character' | 'boolean' | 'timestamp';

/** A type's family and width (integer/float bytes, varchar width; undefined = unbounded). */
interface TypeShape {
  family: Family | undefined;
  width?: number;
}

/** The config side: the SQL types ddl.ts `columnType` writes. */
function configShape(type: string): TypeShape {
  const varchar = /^VARCHAR\((\d+)\)$/.exec(type);
  if (varchar) return { family: 'character', width: Number(varchar[1]) };
  switch (type) {
    case 'INT':
      return { family: 'integer', width: 4 };
    case 'BIGINT':
      return { family: 'integer', width: 8 };
    case 'DOUBLE PRECISION':
      return { family: 'floating point', width: 8 };
    case 'BOOLEAN':
      return { family: 'boolean' };
    case 'TIMESTAMP':
      return { family: 'timestamp' };
  }
  return { family: undefined };
}

/** The warehouse side: information_schema `data_type` names (PostgreSQL and Redshift spell them alike). */
function warehouseShape(column: WarehouseColumn): TypeShape {
  switch (column.dataType) {
    case 'smallint':
      return { family: 'integer', width: 2 };
    case 'integer':
      return { family: 'integer', width: 4 };
    case 'bigint':
      return { family: 'integer', width: 8 };
    case 'real':
      return { family: 'floating point', width: 4 };
    case 'double precision':
      return { family: 'floating point', width: 8 };
    case 'character varying':
    case 'text':
      return { family: 'character', width: column.maxLength ?? undefined };
    case 'boolean':
      return { family: 'boolean' };
    case 'timestamp without time zone':
      return { family: 'timestamp' };
  }
  return { family: undefined };
}

/** True when every value the config writes fits the table's column. */
function holds(table: TypeShape, config: TypeShape): boolean {
  if (table.family === undefined || table.family !== config.family) return false;
  if (config.width === undefined || table.width === undefined) return true;
  return table.width >= config.width;
}

function describeWarehouseType(column: WarehouseColumn): string {
  return column.maxLength !== null ? `${column.dataType}(${column.maxLength})` : column.dataType;
}

export interface ColumnDifferences {
  /** In the config, not in the table. */
  missing: ExpectedColumn[];
  /** In the table, not in the config. */
  extra: WarehouseColumn[];
  /** In both, but the table's type cannot hold the config's values. */
  mismatched: { expected: ExpectedColumn; actual: WarehouseColumn }[];
}

export function compareColumns(
  expected: readonly ExpectedColumn[],
  actual: readonly WarehouseColumn[],
  foldCase: boolean,
): ColumnDifferences {
  const key = (name: string): string => (foldCase ? name.toLowerCase() : name);
  const inTable = new Map(actual.map((c) => [key(c.name), c]));
  const inConfig = new Set(expected.map((c) => key(c.name)));
  const differences: ColumnDifferences = { missing: [], extra: [], mismatched: [] };
  for (const column of expected) {
    const found = inTable.get(key(column.name));
    if (!found) differences.missing.push(column);
    else if (!holds(warehouseShape(found), configShape(column.type)))
      differences.mismatched.push({ expected: column, actual: found });
  }
  for (const column of actual) if (!inConfig.has(key(column.name))) differences.extra.push(column);
  return differences;
}

export function hasDifferences(d: ColumnDifferences): boolean {
  return d.missing.length + d.extra.length + d.mismatched.length > 0;
}

/** One line naming every difference, and what to do about it. */
export function describeDifferences(schema: string, table: string, d: ColumnDifferences): string {
  const parts: string[] = [];
  if (d.missing.length) {
    parts.push(`missing in the table: ${d.missing.map((c) => `${quoteIdent(c.name)} ${c.type}`).join(', ')}`);
  }
  if (d.extra.length) {
    parts.push(
      `not in the config: ${d.extra.map((c) => `${quoteIdent(c.name)} ${describeWarehouseType(c)}`).join(', ')}`,
    );
  }
  if (d.mismatched.length) {
    parts.push(
      `type mismatch: ${d.mismatched
        .map(
          (m) =>
            `${quoteIdent(m.expected.name)} is ${describeWarehouseType(m.actual)}, the config writes ${m.expected.type}`,
        )
        .join(', ')}`,
    );
  }
  return (
    `table ${displayName(schema, table)} does not match the config's columns (${parts.join('; ')}); ` +
    `the table was left as it was: ALTER it to match, or fix the config`
  );
}

export interface ColumnCheck {
  /** False when the table does not exist (or is not visible to this user). */
  exists: boolean;
  /** The table's columns, in table order. */
  actual: WarehouseColumn[];
  /** Why the table cannot be loaded; undefined when it can. */
  problem?: string;
}

/** Reads the table's columns and compares them with the config's: the one check every load runs. */
export async function checkTableColumns(
  query: QueryRows,
  target: { schema: string; table: string; columns: readonly ExpectedColumn[]; foldCase: boolean },
): Promise<ColumnCheck> {
  const actual = await readTableColumns(query, target.schema, target.table, target.foldCase);
  if (actual.length === 0) {
    return {
      exists: false,
      actual,
      problem: `table ${displayName(target.schema, target.table)} does not exist (create it with \`spade ddl\`)`,
    };
  }
  const differences = compareColumns(target.columns, actual, target.foldCase);
  if (!hasDifferences(differences)) return { exists: true, actual };
  return { exists: true, actual, problem: describeDifferences(target.schema, target.table, differences) };
}
