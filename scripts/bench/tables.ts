/**
 * The tables a replay benchmark covers (`--tables all|a,b`), the schemas the
 * replay creates for them, and their row counts in PostgreSQL afterwards.
 */
import { qualifiedName } from '../../worker/warehouse/sql.js';
import type { PgServer } from '../../test/helpers/postgres.js';
import type { TableSchema } from '../../worker/transform/schema.js';

/** The `--tables` selection, sorted and checked against the config; 'all' is every table of it. */
export function selectTables(schemas: TableSchema[], tablesArg: string, configPath: string): string[] {
  const known = [...new Set(schemas.map((s) => s.event))].sort();
  if (tablesArg === 'all') return known;
  const tables = [
    ...new Set(
      tablesArg
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean),
    ),
  ].sort();
  const unknown = tables.filter((t) => !known.includes(t));
  if (unknown.length) throw new Error(`--tables: not in ${configPath}: ${unknown.join(', ')}`);
  return tables;
}

/** The newest version of each table's schema: what the replay creates. */
export function latestSchemas(schemas: TableSchema[], tables: string[]): TableSchema[] {
  return tables.map((t) => schemas.filter((s) => s.event === t).sort((a, b) => b.version - a.version)[0]!);
}

/** Rows in `schema`.`table` summed over `tables`. */
export async function countRows(pg: PgServer, db: string, schema: string, tables: string[]): Promise<number> {
  let total = 0;
  for (const t of tables) {
    const r = await pg.query<{ n: string }>(db, `SELECT count(*) AS n FROM ${qualifiedName(schema, t)}`);
    total += Number(r[0]!.n);
  }
  return total;
}
