/**
 * `spade process --check`: a dry start of the loading side, like the replay's
 * `--plan`. Connects to the warehouse, runs the replay's column check
 * (table-columns.ts) on every table of the config, says how it would load and
 * what is waiting in the state directory, and changes nothing (a missing
 * PGlite directory is created by opening it, nothing else).
 */
import { parseTableConfig } from '../transform/schema.js';
import { readConfigText } from '../transform/config-source.js';
import { redactUrl } from '../redact.js';
import { LOADED_MANIFESTS_TABLE } from '../warehouse/append.js';
import { openWarehouse } from '../warehouse/open.js';
import type { RedshiftWarehouse } from '../warehouse/redshift.js';
import { DEFAULT_SCHEMA, displayName, qualifiedName } from '../warehouse/sql.js';
import { checkTableColumns, expectedColumns } from '../warehouse/table-columns.js';
import { Checkpoint } from './checkpoint.js';
import { defaultLoadEverySeconds } from './loader.js';

export interface LoadCheckOptions {
  rsurl: string;
  config: string;
  output: string;
  stateDir: string;
  schema?: string;
  iamRole?: string;
  loadEverySeconds?: number;
  createTables?: boolean;
}

export interface LoadCheckResult {
  /** What was found, one line each, for the terminal. */
  lines: string[];
  /** Why loading would fail; empty when it would not. */
  problems: string[];
}

export async function checkLoading(opts: LoadCheckOptions): Promise<LoadCheckResult> {
  const schema = opts.schema ?? DEFAULT_SCHEMA;
  const configText = await readConfigText(opts.config);
  const schemas = parseTableConfig(configText, redactUrl(opts.config));
  const tables = [...new Set(schemas.map((s) => s.event))].sort();
  const warehouse = await openWarehouse(opts.rsurl, { iamRole: opts.iamRole, poolSize: 1 });
  const lines: string[] = [];
  const problems: string[] = [];
  try {
    const redshift = warehouse.kind === 'redshift';
    const createTables = (opts.createTables ?? true) && !redshift;
    const every = opts.loadEverySeconds ?? defaultLoadEverySeconds(warehouse.kind);
    lines.push(`warehouse: ${warehouse.kind} ${redactUrl(opts.rsurl)}, schema ${schema} (connected)`);
    lines.push(
      `loads: committed batches of ${redactUrl(opts.output)}, in commit order, ` +
        `${every > 0 ? `grouped into one transaction per ${every} s` : 'one transaction as each batch commits'} ` +
        `(all tables of a group together), recorded in ${displayName(schema, LOADED_MANIFESTS_TABLE)}`,
    );
    if (redshift) {
      try {
        const auth = await (warehouse as RedshiftWarehouse).copyAuth();
        lines.push(
          `Redshift COPY: per batch and table a MANIFEST under <date>/_load/<batch>/, ` +
            ('iamRole' in auth ? `IAM role ${auth.iamRole}` : 'credentials of the AWS default chain (found, masked)'),
        );
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    const foldCase = redshift;
    let ok = 0;
    for (const table of tables) {
      const check = await checkTableColumns(async (sql, params) => warehouse.query(sql, params), {
        schema,
        table,
        columns: expectedColumns(schemas, table) ?? [],
        foldCase,
      });
      if (!check.exists && createTables) {
        lines.push(`table ${displayName(schema, table)}: missing, created from the config at its first load`);
      } else if (check.problem !== undefined) {
        problems.push(check.problem);
      } else ok++;
    }
    lines.push(`tables: ${ok} of ${tables.length} match the config's columns`);
    const recorded = await warehouse
      .query<{ n: unknown }>(`SELECT count(*) AS n FROM ${qualifiedName(schema, LOADED_MANIFESTS_TABLE)}`)
      .then((rows) => `${Number(rows[0]?.n ?? 0)} batch(es) recorded as loaded`)
      .catch(() => 'not created yet (created at start)');
    lines.push(`${displayName(schema, LOADED_MANIFESTS_TABLE)}: ${recorded}`);
    const unloaded = await Checkpoint.peekUnloaded(opts.stateDir);
    lines.push(
      unloaded === null
        ? `state ${opts.stateDir}: no checkpoint yet, nothing committed to load`
        : `state ${opts.stateDir}: ${unloaded} committed batch(es) waiting for their load`,
    );
  } finally {
    await warehouse.close();
  }
  return { lines, problems };
}
