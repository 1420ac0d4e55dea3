import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createTableSql } from '../../../worker/warehouse/ddl.js';
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

test('continuous loading into PostgreSQL across SIGKILLs: row counts equal input counts, no duplicates', async (t) => {
  const pg = await startPostgres(t);
  if (!pg) return;
  const db = await pg.createDatabase('process_load');
  await pg.query(db, 'CREATE SCHEMA physical');
  for (const s of schemas) await pg.query(db, createTableSql(s, { dialect: 'postgres', schema: 'physical' }));
  const root = mkdtempSync(join(tmpdir(), 'spade-load-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
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
    rsurl: db.replace(`:${pg.password}@`, '@'),
  };
  const env = { PGPASSWORD: pg.password };
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
    await proc.waitFor(/loaded \d+ rows/);
    await sleep(Math.floor(rnd() * 600));
    proc.child.kill('SIGKILL');
    await proc.exited;
    await writing;
    proc = startProcessor(opts, env);
  }
  await writeSome(FILES - written);
  await proc.waitFor(/following/);
  await waitUntil(
    'every input committed and loaded',
    () => committedKeys(stateDir).length === FILES && readCheckpoint(stateDir)?.unloaded.length === 0,
    40_000,
  );
  assert.equal(await stopProcessor(proc), 0, proc.stderr());

  const got = await committedOutput(new LocalStore(outDir));
  assert.deepEqual(sortedEntries(got.rows), sortedEntries(truth.events), 'files: every event exactly once');
  const inDb = new Map<string, number>();
  for (const s of schemas) {
    const [row] = await pg.query<{ n: string }>(db, `SELECT count(*) AS n FROM physical."${s.event}"`);
    if (Number(row?.n) > 0) inDb.set(s.event, Number(row?.n));
  }
  assert.deepEqual(sortedEntries(inDb), sortedEntries(truth.events), 'warehouse: every event exactly once');
  const loaded = await pg.query<{ manifest: string }>(db, 'SELECT manifest FROM physical.spade_loaded_manifests');
  assert.equal(loaded.length, got.manifests.length, 'every committed manifest recorded once');
});
