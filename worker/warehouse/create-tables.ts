/**
 * Creating the tables a load needs (PostgreSQL, PGlite): the replay's `--create-tables`
 * and the continuous processor's. Never on Redshift, where tables are made by their
 * owners with `spade ddl` (sort and distribution keys are a decision, not a default).
 */
import type { TableSchema } from '../transform/schema.js';
import { createTableSql } from './ddl.js';
import { quoteIdent } from './sql.js';
import type { Warehouse } from './warehouse.js';

/** Creates each of `tables` that does not exist from the config's newest version of it. */
export async function createMissingTables(
  warehouse: Warehouse,
  schemas: readonly TableSchema[],
  tables: Iterable<string>,
  schema: string,
  log: (msg: string) => void,
): Promise<void> {
  if (warehouse.kind === 'redshift') return;
  for (const table of tables) {
    if (await warehouse.tableExists(schema, table)) continue;
    const def = schemas.filter((s) => s.event === table).sort((a, b) => b.version - a.version)[0];
    if (def === undefined) continue; // not in the config: the load's column check says so
    log(`creating missing table ${schema}.${table}`);
    await warehouse.execute(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    await warehouse.execute(createTableSql(def, { dialect: 'postgres', schema }));
  }
}
