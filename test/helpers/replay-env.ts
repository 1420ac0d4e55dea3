/**
 * One replay test world: s3rver with an edge and an output bucket holding
 * generated edge logs, a throwaway PostgreSQL database with the tables created,
 * and a way to run the real `spade` CLI against them as a child process.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { generateEdgeLogs, type GeneratedTruth } from '../../scripts/generate/edge-logs.js';
import { createTableSql } from '../../worker/warehouse/ddl.js';
import { S3Store } from '../../worker/store/s3.js';
import { parseTableConfig, type TableSchema } from '../../worker/transform/schema.js';
import { repoRoot } from './fixtures.js';
import { startPostgres, type PgServer } from './postgres.js';
import { startS3Server, type S3TestServer } from './s3server.js';

export const DEMO_CONFIG = join(repoRoot(), 'scripts', 'demo', 'tables.json');
export const SPADE = join(repoRoot(), 'dist', 'driver', 'cli', 'spade.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI; `env` adds to the environment. */
export function runSpade(
  args: string[],
  env: Record<string, string> = {},
  input?: string | Buffer,
  nodeArgs: string[] = [],
): Promise<CliResult> {
  return runNodeScript(SPADE, args, env, input, nodeArgs);
}

/**
 * Runs a compiled script in a child node process, `input` on its stdin; `env` adds to
 * the environment, `nodeArgs` go to node before the script (e.g. `--import` peak-rss.js).
 */
export function runNodeScript(
  script: string,
  args: string[],
  env: Record<string, string> = {},
  input?: string | Buffer,
  nodeArgs: string[] = [],
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, script, ...args], {
      env: { ...process.env, ...env },
      stdio: 'pipe',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

export interface ReplayWorld {
  s3: S3TestServer;
  pg: PgServer;
  db: string;
  /** db URL without the password (the password travels in PGPASSWORD, never on a command line) */
  rsurl: string;
  schemas: TableSchema[];
  truth: GeneratedTruth;
  edge: S3Store;
  out: S3Store;
  env: Record<string, string>;
  query<T extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  replay(args: string[], extraEnv?: Record<string, string>): Promise<CliResult>;
}

export async function startReplayWorld(
  t: TestContext,
  opts: { startSec: number; endSec: number; events: number; dbName: string; seed?: number },
): Promise<ReplayWorld | null> {
  const pg = await startPostgres(t);
  if (!pg) return null;
  const s3 = await startS3Server(t, { buckets: ['edge', 'out'] });
  const db = await pg.createDatabase(opts.dbName);
  const schemas = parseTableConfig(readFileSync(DEMO_CONFIG, 'utf8'), DEMO_CONFIG);
  for (const s of schemas) {
    await pg.query(db, 'CREATE SCHEMA IF NOT EXISTS physical');
    await pg.query(db, createTableSql(s, { dialect: 'postgres', schema: 'physical' }));
  }
  const edge = new S3Store({ bucket: 'edge', prefix: '', client: s3.client });
  const out = new S3Store({ bucket: 'out', prefix: '', client: s3.client });
  const truth = await generateEdgeLogs(edge, {
    schemas,
    startSec: opts.startSec,
    endSec: opts.endSec,
    events: opts.events,
    fileSpanSec: 600,
    seed: opts.seed ?? 11,
    keepTruth: true,
  });
  const rsurl = db.replace(`:${pg.password}@`, '@');
  const env = { ...s3.env, PGPASSWORD: pg.password, CI: process.env.CI ?? '' };
  return {
    s3,
    pg,
    db,
    rsurl,
    schemas,
    truth,
    edge,
    out,
    env,
    query: (sql, params) => pg.query(db, sql, params),
    replay: (args, extraEnv = {}) =>
      runSpade(
        [
          'replay',
          ...args,
          '--edge',
          's3://edge',
          '--output',
          's3://out',
          '--rsurl',
          rsurl,
          '--config',
          DEMO_CONFIG,
          '--log-file',
          '',
          '--threads',
          '2',
        ],
        { ...env, ...extraEnv },
      ),
  };
}

/** Events of `table` whose receive time is within [startSec, endSec]. */
export function expectedCount(truth: GeneratedTruth, table: string, startSec: number, endSec: number): number {
  return (truth.events.get(table) ?? []).filter((t) => t >= startSec && t <= endSec).length;
}

/** A table's whole contents in a stable order, for before/after comparisons. */
export async function tableSnapshot(world: ReplayWorld, table: string): Promise<string[]> {
  const rows = await world.query<{ r: string }>(`SELECT t::text AS r FROM physical."${table}" t ORDER BY 1`);
  return rows.map((r) => r.r);
}
