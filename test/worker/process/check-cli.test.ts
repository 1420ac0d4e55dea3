/**
 * `spade process --check` as the real CLI: connects, runs the replay's column
 * check on every table of the config, prints what it would load, exits 0 or 1;
 * and with local input and output and no --rsurl it checks the embedded PGlite
 * default, as the replay would load it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createTableSql } from '../../../worker/warehouse/ddl.js';
import { parseTableConfig } from '../../../worker/transform/schema.js';
import { startPostgres } from '../../helpers/postgres.js';
import { DEMO_CONFIG, runSpade } from '../../helpers/replay-env.js';

const schemas = parseTableConfig(readFileSync(DEMO_CONFIG, 'utf8'), DEMO_CONFIG);
const tableCount = new Set(schemas.map((s) => s.event)).size;

test('spade process --check against PostgreSQL: every table checked, exit 0, then 1 naming a dropped column', async (t) => {
  const pg = await startPostgres(t);
  if (!pg) return;
  const db = await pg.createDatabase('process_check');
  await pg.query(db, 'CREATE SCHEMA physical');
  for (const s of schemas) await pg.query(db, createTableSql(s, { dialect: 'postgres', schema: 'physical' }));
  const dir = mkdtempSync(join(tmpdir(), 'spade-check-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const args = [
    'process',
    '--check',
    '--input',
    's3://edge',
    '--output',
    join(dir, 'out'),
    '--state-dir',
    join(dir, 'state'),
    '--config',
    DEMO_CONFIG,
    '--rsurl',
    db.replace(`:${pg.password}@`, '@'),
  ];
  const env = { PGPASSWORD: pg.password };
  const ok = await runSpade(args, env);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(
    ok.stdout,
    /^warehouse: postgres postgres:\/\/spade@127\.0\.0\.1:\d+\/process_check, schema physical \(connected\)$/m,
  );
  assert.match(ok.stdout, /one transaction as each batch commits/);
  assert.match(ok.stdout, new RegExp(`^tables: ${tableCount} of ${tableCount} match the config's columns$`, 'm'));
  assert.match(ok.stdout, /no checkpoint yet/);
  assert.match(ok.stdout, /^check passed: ready to load$/m);

  const table = (schemas[0] as (typeof schemas)[number]).event;
  const column = (schemas[0] as (typeof schemas)[number]).columns.at(-1)?.outboundName as string;
  await pg.query(db, `ALTER TABLE physical."${table}" DROP COLUMN "${column}"`);
  const bad = await runSpade([...args, '--load-every', '60'], env);
  assert.equal(bad.code, 1, bad.stdout);
  assert.match(bad.stdout, /grouped into one transaction per 60 s/);
  assert.match(
    bad.stderr,
    new RegExp(`table physical\\.${table} does not match the config's columns \\(missing in the table: "${column}"`),
  );
  assert.match(bad.stderr, /1 problem\(s\): loading would fail until they are fixed/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
  for (const text of [ok.stdout, ok.stderr, bad.stdout, bad.stderr]) assert.ok(!text.includes(pg.password));
});

test('spade process --check with local input and output and no --rsurl: the embedded PGlite default', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'spade-check-pglite-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const args = [
    'process',
    '--check',
    '--input',
    join(dir, 'edge'),
    '--output',
    join(dir, 'out'),
    '--state-dir',
    join(dir, 'state'),
    '--config',
    DEMO_CONFIG,
  ];
  const env = { SPADE_PGLITE_DIR: join(dir, 'warehouse') };
  const res = await runSpade(args, env);
  assert.equal(res.code, 0, res.stderr);
  assert.ok(res.stdout.includes(`warehouse: pglite pglite://${join(dir, 'warehouse')}, schema physical`), res.stdout);
  assert.match(res.stdout, /missing, created from the config at its first load/);

  // Without creating tables, every one of them is a problem.
  const strict = await runSpade([...args, '--no-create-tables'], env);
  assert.equal(strict.code, 1, strict.stdout);
  assert.match(strict.stderr, /table physical\.\S+ does not exist \(create it with `spade ddl`\)/);
  assert.match(strict.stderr, new RegExp(`${tableCount} problem\\(s\\)`));

  // An S3 output has no embedded default.
  const remote = await runSpade([
    'process',
    '--check',
    '--output',
    's3://out',
    '--state-dir',
    join(dir, 'state'),
    '--config',
    DEMO_CONFIG,
  ]);
  assert.equal(remote.code, 1, remote.stderr);
  assert.match(remote.stderr, /--check needs a warehouse: pass --rsurl/);
});
