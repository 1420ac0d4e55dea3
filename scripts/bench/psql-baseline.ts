/**
 * The load baseline: the same gzip TSV files the replay produced, loaded with
 * plain `psql \copy ... FROM PROGRAM 'gzip -dc FILE...'`, as fast as
 * PostgreSQL takes them without the replay's transaction around them. Two
 * shapes: one psql per file (what an operator would script), and one psql per
 * table over all its files (no per-file connection cost: closer to the server's own limit).
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { forEachLimited } from '../../driver/concurrency.js';
import { qualifiedName } from '../../worker/warehouse/sql.js';

export interface TsvFile {
  table: string;
  path: string;
  rows: number;
}

export interface PsqlResult {
  secs: number;
  /** Rows psql reported (`COPY n`). */
  rows: number;
  /** psql processes run. */
  runs: number;
}

/** psql of the newest installed PostgreSQL, else the one on PATH. */
export function findPsql(): string {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    for (const v of readdirSync(root).sort((a, b) => Number(b) - Number(a))) {
      const p = join(root, v, 'bin', 'psql');
      if (existsSync(p)) return p;
    }
  }
  return 'psql';
}

/** One `\\copy` of `files` (all of one table; `gzip -dc` concatenates them) in one psql: the rows copied. */
function copyFiles(
  psql: string,
  dbUrl: string,
  env: NodeJS.ProcessEnv,
  schema: string,
  files: TsvFile[],
): Promise<number> {
  // The paths go into a single-quoted shell command inside psql's own quoting: keep them plain.
  for (const f of files)
    if (!/^[\w./-]+$/.test(f.path)) throw new Error(`path ${f.path} cannot go into a \\copy command`);
  const table = files[0]!.table;
  const paths = files.map((f) => f.path).join(' ');
  const command =
    `\\copy ${qualifiedName(schema, table)} FROM PROGRAM 'gzip -dc ${paths}' ` +
    `WITH (FORMAT text, DELIMITER E'\\t', NULL '')`;
  return new Promise((resolve, reject) => {
    const child = spawn(psql, ['-X', '-v', 'ON_ERROR_STOP=1', '-d', dbUrl, '-c', command], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.once('error', (e) => reject(new Error(`cannot run ${psql}: ${e.message}`)));
    child.once('close', (code) => {
      const m = /^COPY (\d+)/m.exec(stdout);
      if (code === 0 && m) resolve(Number(m[1]));
      else
        reject(new Error(`psql \\copy of ${paths} into ${schema}.${table} failed (exit ${code}): ${stderr || stdout}`));
    });
  });
}

/**
 * Loads every file, `jobs` tables at a time (the shape of the replay's load
 * phase, `--poolsize` tables at once); per table either one psql per file, in
 * sequence, or one psql for all its files.
 */
export async function psqlCopyFiles(opts: {
  files: TsvFile[];
  /** Connection URL without the password (it travels in env PGPASSWORD). */
  dbUrl: string;
  env: NodeJS.ProcessEnv;
  schema: string;
  jobs: number;
  mode: 'per-file' | 'per-table';
}): Promise<PsqlResult> {
  const psql = findPsql();
  const byTable = new Map<string, TsvFile[]>();
  for (const f of opts.files) byTable.set(f.table, [...(byTable.get(f.table) ?? []), f]);
  let rows = 0;
  const started = process.hrtime.bigint();
  await forEachLimited([...byTable.keys()].sort(), opts.jobs, async (table) => {
    const files = byTable.get(table)!;
    for (const batch of opts.mode === 'per-table' ? [files] : files.map((f) => [f])) {
      // Not `rows += await …`: that reads `rows` before the await and loses the other tables' counts.
      const copied = await copyFiles(psql, opts.dbUrl, opts.env, opts.schema, batch);
      rows += copied;
    }
  });
  return {
    secs: Number(process.hrtime.bigint() - started) / 1e9,
    rows,
    runs: opts.mode === 'per-table' ? byTable.size : opts.files.length,
  };
}
