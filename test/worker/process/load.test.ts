import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createTableSql } from '../../../worker/warehouse/ddl.js';
import { openWarehouse } from '../../../worker/warehouse/open.js';
import { startPostgres } from '../../helpers/postgres.js';
import { DEMO_CONFIG } from '../../helpers/replay-env.js';
import { prng } from '../../../scripts/generate/edge-logs.js';
import { utcDate } from '../../../worker/process/checkpoint.js';
import { LocalStore } from '../../../worker/store/local.js';
import { parseTableConfig } from '../../../worker/transform/schema.js';
import {
  committedKeys,
  committedOutput,
  killRunningProcessors,
  readCheckpoint,
  sleep,
  sortedEntries,
  startProcessor,
  stopProcessor,
  Truth,
  waitUntil,
  writeEdgeFile,
} from './harness.js';

after(killRunningProcessors);

const schemas = parseTableConfig(readFileSync(DEMO_CONFIG, 'utf8'), DEMO_CONFIG);

/** Drops a column of a table; returns how to add it back (with its type, at the end of the table). */
async function dropColumn(
  pg: NonNullable<Awaited<ReturnType<typeof startPostgres>>>,
  db: string,
  table: string,
  column: string,
): Promise<() => Promise<void>> {
  const [found] = await pg.query<{ type: string }>(
    db,
    `SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2`,
    [`physical."${table}"`, column],
  );
  assert.ok(found, `${table}.${column} exists`);
  await pg.query(db, `ALTER TABLE physical."${table}" DROP COLUMN "${column}"`);
  return async () => {
    await pg.query(db, `ALTER TABLE physical."${table}" ADD COLUMN "${column}" ${found.type}`);
  };
}

/**
 * Files keep arriving while the processor loads; it is SIGKILLed twice (each
 * time after a load committed, at a random moment after), then restarted.
 * Every event must be in the tables exactly once, and every committed batch
 * recorded once in spade_loaded_manifests.
 */
async function loadAcrossKills(
  root: string,
  rsurl: string,
  env: Record<string, string>,
  /** Rows per table (tables without rows may be left out) and the recorded manifests, read after the last stop. */
  warehouseContents: () => Promise<{ rows: Map<string, number>; manifests: string[] }>,
  /** Checks made while the last processor runs. */
  whileRunning: () => Promise<void> = async () => undefined,
): Promise<void> {
  const edgeDir = join(root, 'edge');
  const outDir = join(root, 'out');
  const stateDir = join(root, 'state');
  const edge = new LocalStore(edgeDir);
  const base = Math.floor(Date.now() / 1000) - 5000;
  const opts = {
    input: edgeDir,
    output: outDir,
    stateDir,
    config: DEMO_CONFIG,
    rotateMinutes: 0.01,
    pollSeconds: 0.2,
    startDate: utcDate((base - 86_400) * 1000),
    rsurl,
  };
  const truth = new Truth();
  const FILES = 16;
  let written = 0;
  // Files keep arriving while each processor runs, so every one of them has something to load.
  const writeSome = async (n: number): Promise<void> => {
    for (let i = 0; i < n && written < FILES; i++, written++) {
      await writeEdgeFile(edge, schemas, base + written * 10, 300, 500 + written, truth);
      await sleep(150);
    }
  };
  const rnd = prng(3);
  let proc = startProcessor(opts, env);
  for (let kill = 0; kill < 2; kill++) {
    const writing = writeSome(5);
    // Generous: PGlite's first start (WebAssembly, creating the tables) is slow on a busy machine.
    await proc.waitFor(/loaded \d+ rows/, 60_000);
    await sleep(Math.floor(rnd() * 600));
    proc.child.kill('SIGKILL');
    await proc.exited;
    await writing;
    proc = startProcessor(opts, env);
  }
  await writeSome(FILES - written);
  await proc.waitFor(/following/);
  await whileRunning();
  await waitUntil(
    'every input committed and loaded',
    () => committedKeys(stateDir).length === FILES && readCheckpoint(stateDir)?.unloaded.length === 0,
    40_000,
  );
  assert.equal(await stopProcessor(proc), 0, proc.stderr());

  const got = await committedOutput(new LocalStore(outDir));
  assert.deepEqual(sortedEntries(got.rows), sortedEntries(truth.events), 'files: every event exactly once');
  const inDb = await warehouseContents();
  assert.deepEqual(sortedEntries(inDb.rows), sortedEntries(truth.events), 'warehouse: every event exactly once');
  assert.deepEqual(
    [...inDb.manifests].sort(),
    got.manifests.map((m) => new LocalStore(outDir).urlOf(m.key)).sort(),
    'every committed manifest recorded once',
  );
}

test('continuous loading into PostgreSQL across SIGKILLs: row counts equal input counts, no duplicates', async (t) => {
  const pg = await startPostgres(t);
  if (!pg) return;
  const db = await pg.createDatabase('process_load');
  await pg.query(db, 'CREATE SCHEMA physical');
  for (const s of schemas) await pg.query(db, createTableSql(s, { dialect: 'postgres', schema: 'physical' }));
  const root = mkdtempSync(join(tmpdir(), 'spade-load-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  await loadAcrossKills(root, db.replace(`:${pg.password}@`, '@'), { PGPASSWORD: pg.password }, async () => {
    const rows = new Map<string, number>();
    for (const s of schemas) {
      const [row] = await pg.query<{ n: string }>(db, `SELECT count(*) AS n FROM physical."${s.event}"`);
      if (Number(row?.n) > 0) rows.set(s.event, Number(row?.n));
    }
    const loaded = await pg.query<{ manifest: string }>(db, 'SELECT manifest FROM physical.spade_loaded_manifests');
    return { rows, manifests: loaded.map((r) => r.manifest) };
  });
});

test('continuous loading into the embedded PGlite across SIGKILLs: tables created, every event once', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'spade-load-pglite-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'warehouse');
  // No tables beforehand: the processor creates them from the config (--create-tables, the default).
  await loadAcrossKills(
    root,
    `pglite://${dir}`,
    {},
    async () => {
      const warehouse = await openWarehouse(`pglite://${dir}`);
      try {
        const rows = new Map<string, number>();
        for (const s of schemas) {
          if (!(await warehouse.tableExists('physical', s.event))) continue;
          const [row] = await warehouse.query<{ n: number }>(`SELECT count(*)::int AS n FROM physical."${s.event}"`);
          if (Number(row?.n) > 0) rows.set(s.event, Number(row?.n));
        }
        const loaded = await warehouse.query<{ manifest: string }>(
          'SELECT manifest FROM physical.spade_loaded_manifests',
        );
        return { rows, manifests: loaded.map((r) => r.manifest) };
      } finally {
        await warehouse.close();
      }
    },
    async () => {
      // The running processor holds the directory's one-process lock, as a replay would.
      await assert.rejects(
        openWarehouse(`pglite://${dir}`, { pgliteLockWaitMs: 100 }),
        /PGlite database .* is in use by /,
      );
    },
  );
});

test('a load that fails (a dropped column) is retried, reported, and no batch is skipped; rows arrive once', async (t) => {
  const pg = await startPostgres(t);
  if (!pg) return;
  const db = await pg.createDatabase('process_load_retry');
  await pg.query(db, 'CREATE SCHEMA physical');
  for (const s of schemas) await pg.query(db, createTableSql(s, { dialect: 'postgres', schema: 'physical' }));
  // Every generated file has rows of the first table; one of its columns goes missing.
  const table = (schemas[0] as (typeof schemas)[number]).event;
  const dropped = (schemas[0] as (typeof schemas)[number]).columns.at(
    -1,
  ) as (typeof schemas)[number]['columns'][number];
  const restore = await dropColumn(pg, db, table, dropped.outboundName);

  const root = mkdtempSync(join(tmpdir(), 'spade-load-retry-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const edge = new LocalStore(join(root, 'edge'));
  const outDir = join(root, 'out');
  const stateDir = join(root, 'state');
  const base = Math.floor(Date.now() / 1000) - 5000;
  const opts = {
    input: join(root, 'edge'),
    output: outDir,
    stateDir,
    config: DEMO_CONFIG,
    rotateMinutes: 0.01,
    pollSeconds: 0.2,
    startDate: utcDate((base - 86_400) * 1000),
    rsurl: db.replace(`:${pg.password}@`, '@'),
    metricsPort: 0,
  };
  const truth = new Truth();
  const proc = startProcessor(opts, { PGPASSWORD: pg.password });
  const metricsUrl = (await proc.waitFor(/metrics on (http:\/\/\S+\/metrics)/))[1] as string;
  const metric = async (name: string): Promise<number> => {
    const text = await (await fetch(metricsUrl)).text();
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    assert.ok(m, `${name} in ${text}`);
    return Number(m[1]);
  };

  await writeEdgeFile(edge, schemas, base, 300, 900, truth);
  const first = await proc.waitFor(
    /loading (\S+) failed \(will retry in \d+ s, failure 1 in a row; later batches wait\): (.*)/,
  );
  assert.match(
    first[2] as string,
    new RegExp(
      `table physical\\.${table} does not match the config's columns \\(missing in the table: "${dropped.outboundName}"`,
    ),
  );
  const lag1 = await metric('spade_load_lag_seconds');
  // A second batch commits behind the failing one: it waits, it does not go first.
  await writeEdgeFile(edge, schemas, base + 10, 300, 901, truth);
  await waitUntil('two batches committed', () => committedKeys(stateDir).length === 2);
  await proc.waitFor(/failure 2 in a row/);
  assert.ok((await metric('spade_load_failures_total')) >= 2);
  assert.ok((await metric('spade_load_lag_seconds')) >= Math.max(1, lag1), 'the load lag keeps growing');
  assert.equal(await metric('spade_load_pending_batches'), 2);
  assert.deepEqual(await pg.query(db, 'SELECT manifest FROM physical.spade_loaded_manifests'), []);

  await restore();
  await waitUntil('both batches loaded', () => readCheckpoint(stateDir)?.unloaded.length === 0, 40_000);
  assert.equal(await metric('spade_load_lag_seconds'), 0);
  assert.equal(await stopProcessor(proc), 0, proc.stderr());

  const got = await committedOutput(new LocalStore(outDir));
  assert.equal(got.manifests.length, 2);
  const inDb = new Map<string, number>();
  for (const s of schemas) {
    const [row] = await pg.query<{ n: string }>(db, `SELECT count(*) AS n FROM physical."${s.event}"`);
    if (Number(row?.n) > 0) inDb.set(s.event, Number(row?.n));
  }
  assert.deepEqual(sortedEntries(inDb), sortedEntries(truth.events), 'warehouse: every event exactly once');
  const loaded = await pg.query<{ manifest: string }>(db, 'SELECT manifest FROM physical.spade_loaded_manifests');
  assert.deepEqual(
    loaded.map((r) => r.manifest).sort(),
    got.manifests.map((m) => new LocalStore(outDir).urlOf(m.key)).sort(),
  );
});

test('a config reload between a batch and its load: the files load with the columns they were written with', async (t) => {
  const pg = await startPostgres(t);
  if (!pg) return;
  const db = await pg.createDatabase('process_load_reload');
  await pg.query(db, 'CREATE SCHEMA physical');
  for (const s of schemas) await pg.query(db, createTableSql(s, { dialect: 'postgres', schema: 'physical' }));
  const first = schemas[0] as (typeof schemas)[number];
  const last = first.columns.at(-1) as (typeof schemas)[number]['columns'][number];
  // The load fails until the column is back, so that the reload comes before it.
  const restore = await dropColumn(pg, db, first.event, last.outboundName);

  const root = mkdtempSync(join(tmpdir(), 'spade-load-reload-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const config = join(root, 'tables.json');
  const original = JSON.parse(readFileSync(DEMO_CONFIG, 'utf8')) as { EventName: string; Columns: unknown[] }[];
  writeFileSync(config, JSON.stringify(original));
  const edge = new LocalStore(join(root, 'edge'));
  const outDir = join(root, 'out');
  const stateDir = join(root, 'state');
  const base = Math.floor(Date.now() / 1000) - 5000;
  const truth = new Truth();
  const proc = startProcessor(
    {
      input: join(root, 'edge'),
      output: outDir,
      stateDir,
      config,
      rotateMinutes: 0.01,
      pollSeconds: 0.2,
      startDate: utcDate((base - 86_400) * 1000),
      rsurl: db.replace(`:${pg.password}@`, '@'),
    },
    { PGPASSWORD: pg.password },
  );
  await writeEdgeFile(edge, schemas, base, 300, 700, truth);
  await proc.waitFor(/failure 1 in a row/);

  // Version 1 of the first table: the same columns in the opposite order (the table fits both).
  const reloaded = original.map((e) =>
    e.EventName === first.event ? { ...e, Version: 1, Columns: [...e.Columns].reverse() } : e,
  );
  writeFileSync(config, JSON.stringify(reloaded));
  proc.child.kill('SIGHUP');
  await proc.waitFor(/config reloaded \(SIGHUP\)/);
  await restore();
  await waitUntil('the batch loaded', () => readCheckpoint(stateDir)?.unloaded.length === 0, 40_000);
  assert.equal(await stopProcessor(proc), 0, proc.stderr());

  const got = await committedOutput(new LocalStore(outDir));
  const manifestFiles = got.manifests.flatMap((m) => m.manifest.files).filter((f) => f.event === first.event);
  assert.ok(manifestFiles.length > 0);
  for (const f of manifestFiles)
    assert.deepEqual(
      f.columns,
      first.columns.map((c) => c.outboundName),
      f.key,
    );
  const inDb = new Map<string, number>();
  for (const s of schemas) {
    const [row] = await pg.query<{ n: string }>(db, `SELECT count(*) AS n FROM physical."${s.event}"`);
    if (Number(row?.n) > 0) inDb.set(s.event, Number(row?.n));
  }
  assert.deepEqual(sortedEntries(inDb), sortedEntries(truth.events), 'warehouse: every event exactly once');
  // Each value in its own column: the first column (time) of every row is a time.
  const [row] = await pg.query<{ n: string }>(
    db,
    `SELECT count(*) AS n FROM physical."${first.event}" WHERE "time" IS NULL`,
  );
  assert.equal(Number(row?.n), 0);
});
