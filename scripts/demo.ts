/**
 * `npm run demo`: a day of synthetic edge logs for several tables in a local
 * directory, replayed with the real CLI into an embedded PGlite warehouse; then
 * the per-table report and a sample query. Needs no services.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { LocalStore } from '../worker/store/local.js';
import { parseTableConfig } from '../worker/transform/schema.js';
import { generateEdgeLogs } from './generate/edge-logs.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = join(root, 'demo-data');
const configPath = join(root, 'scripts', 'demo', 'tables.json');

async function main(): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  const schemas = parseTableConfig(readFileSync(configPath, 'utf8'), configPath);
  // 2023-03-12 is the day US Pacific springs forward: the window's UTC span is 23 hours.
  const startSec = Date.UTC(2023, 2, 12, 6, 0, 0) / 1000; // 2023-03-11 22:00 PST
  const endSec = Date.UTC(2023, 2, 13, 9, 0, 0) / 1000; // 2023-03-13 02:00 PDT
  process.stdout.write(`generating edge logs for ${schemas.map((s) => s.event).join(', ')} into ${dir}/edge ...\n`);
  const truth = await generateEdgeLogs(new LocalStore(join(dir, 'edge')), {
    schemas,
    startSec,
    endSec,
    events: 120_000,
    fileSpanSec: 900,
    seed: 2023,
  });
  process.stdout.write(
    `${truth.files.length} files, ${truth.lines} lines (${truth.malformedLines} deliberately malformed)\n\n`,
  );

  const args = [
    join(root, 'dist', 'driver', 'cli', 'spade.js'),
    'replay',
    '2023-03-12 00:00:00',
    '2023-03-12 23:59:59',
    '--all-tables',
    '--config',
    configPath,
    '--edge',
    join(dir, 'edge'),
    '--output',
    join(dir, 'output'),
    '--rsurl',
    `pglite://${join(dir, 'warehouse')}`,
    '--runtag',
    'demo',
    '--log-file',
    join(dir, 'replay.log'),
  ];
  process.stdout.write(
    `$ spade ${args
      .slice(1)
      .map((a) => (a.includes(' ') ? `'${a}'` : a))
      .join(' ')}\n`,
  );
  const run = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (run.status !== 0) {
    process.stderr.write(`demo: the replay exited with code ${run.status}\n`);
    process.exit(run.status ?? 1);
  }

  const db = new PGlite(join(dir, 'warehouse'));
  const sql = `SELECT count(*)::int AS rows, min(time)::text AS first, max(time)::text AS last FROM physical."minute_watched"`;
  process.stdout.write(`\nsample query: ${sql}\n`);
  const res = await db.query<{ rows: number; first: string; last: string }>(sql);
  console.table(res.rows);
  const sample = await db.query(
    `SELECT time::text, channel, minutes_logged, player FROM physical."minute_watched" ORDER BY time LIMIT 3`,
  );
  console.table(sample.rows);
  await db.close();
  process.stdout.write(`\nwarehouse: ${join(dir, 'warehouse')} (PGlite), run log: ${join(dir, 'replay.log')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
