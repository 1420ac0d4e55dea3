/**
 * The load baseline: the same gzip TSV files the replay produced, loaded with
 * plain `psql \copy ... FROM PROGRAM 'gzip -dc FILE'` (one psql per file), as
 * fast as PostgreSQL takes them without the replay's transaction around them.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { forEachLimited } from '../../driver/executors/executor.js';

export interface TsvFile {
  table: string;
  path: string;
  rows: number;
}

export interface PsqlResult {
  secs: number;
  /** Rows psql reported (`COPY n`). */
  rows: number;
  files: number;
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

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function copyOneFile(
  psql: string,
  dbUrl: string,
  env: NodeJS.ProcessEnv,
  schema: string,
  file: TsvFile,
): Promise<number> {
  if (/['\\]/.test(file.path)) throw new Error(`path ${file.path} cannot go into a \\copy command`);
  const command =
    `\\copy ${quoteIdent(schema)}.${quoteIdent(file.table)} FROM PROGRAM 'gzip -dc ${file.path}' ` +
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
      if (code !== 0 || !m)
        reject(
          new Error(
            `psql \\copy of ${file.path} into ${schema}.${file.table} failed (exit ${code}): ${stderr || stdout}`,
          ),
        );
      else resolve(Number(m[1]));
    });
  });
}

/**
 * Loads every file; the files of one table in sequence and `jobs` tables at a
 * time, the shape of the replay's load phase (`--poolsize` tables at once).
 */
export async function psqlCopyFiles(opts: {
  files: TsvFile[];
  /** Connection URL without the password (it travels in env PGPASSWORD). */
  dbUrl: string;
  env: NodeJS.ProcessEnv;
  schema: string;
  jobs: number;
}): Promise<PsqlResult> {
  const psql = findPsql();
  const byTable = new Map<string, TsvFile[]>();
  for (const f of opts.files) byTable.set(f.table, [...(byTable.get(f.table) ?? []), f]);
  let rows = 0;
  const started = process.hrtime.bigint();
  await forEachLimited([...byTable.keys()].sort(), opts.jobs, async (table) => {
    for (const f of byTable.get(table)!) rows += await copyOneFile(psql, opts.dbUrl, opts.env, opts.schema, f);
  });
  return { secs: Number(process.hrtime.bigint() - started) / 1e9, rows, files: opts.files.length };
}
