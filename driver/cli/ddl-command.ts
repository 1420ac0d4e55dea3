/** `spade ddl`: CREATE TABLE statements for a table config. */
import { readConfigText } from '../../worker/transform/config-source.js';
import { parseTableConfig } from '../../worker/transform/schema.js';
import { UsageError } from './errors.js';
import { createTableSql } from '../../worker/warehouse/ddl.js';

export async function ddlCommand(opts: {
  config: string;
  dialect: 'redshift' | 'postgres';
  schema: string;
  tables?: string[];
}): Promise<string> {
  const schemas = parseTableConfig(await readConfigText(opts.config), opts.config);
  const wanted = opts.tables?.length ? new Set(opts.tables) : null;
  if (wanted) {
    const missing = [...wanted].filter((t) => !schemas.some((s) => s.event === t));
    if (missing.length) throw new UsageError(`table(s) not in config ${opts.config}: ${missing.join(', ')}`);
  }
  return schemas
    .filter((s) => !wanted || wanted.has(s.event))
    .map((s) => createTableSql(s, { dialect: opts.dialect, schema: opts.schema }) + '\n')
    .join('\n');
}
