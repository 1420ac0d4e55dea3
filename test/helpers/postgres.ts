/**
 * A throwaway PostgreSQL cluster for tests: initdb in a temp dir, started on
 * 127.0.0.1 and a free port, password auth over TCP, stopped when the test ends.
 * On a machine without the server binaries the calling test is skipped with a
 * message naming what to install, except under CI=true, where it fails.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import pg from 'pg';
import { freePort } from './ports.js';

export interface PgServer {
  /** postgres://spade:<password>@127.0.0.1:<port>/<db> */
  url: string;
  port: number;
  password: string;
  /** The server's log file (failed statements are logged with their text). */
  logFile: string;
  /** Creates an empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(dbUrl: string, sql: string, params?: unknown[]): Promise<T[]>;
  stop(): void;
}

const INSTALL_HINT =
  'PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; install them, e.g. `apt-get install postgresql`';

function findBinDir(): string | null {
  const candidates = ['/usr/local/bin'];
  if (existsSync('/usr/lib/postgresql')) {
    for (const v of readdirSync('/usr/lib/postgresql').sort().reverse())
      candidates.push(`/usr/lib/postgresql/${v}/bin`);
  }
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir) candidates.push(dir);
  for (const dir of candidates) {
    if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')) && existsSync(join(dir, 'postgres')))
      return dir;
  }
  return null;
}

/** Runs a PostgreSQL tool as the `postgres` user when we are root (initdb refuses root). */
function runAsPostgres(bin: string, args: string[]): void {
  const isRoot = process.getuid?.() === 0;
  const res = isRoot
    ? spawnSync('su', ['postgres', '-s', '/bin/sh', '-c', [bin, ...args].map(shellQuote).join(' ')], {
        encoding: 'utf8',
      })
    : spawnSync(bin, args, { encoding: 'utf8' });
  if (res.status !== 0) {
    throw new Error(`${bin} ${args[0] ?? ''} failed (exit ${res.status}): ${res.stderr || res.stdout}`);
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Starts a cluster, or skips the test (returns null) where PostgreSQL is not installed. */
export async function startPostgres(t: TestContext): Promise<PgServer | null> {
  const binDir = findBinDir();
  if (!binDir) {
    if (process.env.CI === 'true') throw new Error(INSTALL_HINT);
    t.skip(INSTALL_HINT);
    return null;
  }
  const server = await startCluster(binDir);
  t.after(() => server.stop());
  return server;
}

export async function startCluster(binDir: string | null = findBinDir()): Promise<PgServer> {
  if (!binDir) throw new Error(INSTALL_HINT);
  const dir = mkdtempSync(join(tmpdir(), 'spade-pg-'));
  const dataDir = join(dir, 'data');
  const password = `pw${Math.random().toString(36).slice(2)}`;
  const pwFile = join(dir, 'pw');
  writeFileSync(pwFile, password);
  chmodSync(dir, 0o755);
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
    chownSync(pwFile, uid, gid);
  }
  runAsPostgres(join(binDir, 'initdb'), [
    '-D',
    dataDir,
    '-U',
    'spade',
    '--pwfile',
    pwFile,
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    '-E',
    'UTF8',
    '--locale=C',
    '--no-sync',
  ]);
  const port = await freePort();
  const opts = `-p ${port} -k ${dir} -h 127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50`;
  runAsPostgres(join(binDir, 'pg_ctl'), ['-D', dataDir, '-l', join(dir, 'log'), '-o', opts, '-w', '-t', '60', 'start']);
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    try {
      runAsPostgres(join(binDir, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  process.once('exit', stop);
  const base = `postgres://spade:${password}@127.0.0.1:${port}`;
  const query = async <T extends pg.QueryResultRow>(dbUrl: string, sql: string, params?: unknown[]): Promise<T[]> => {
    const client = new pg.Client({ connectionString: dbUrl });
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end();
    }
  };
  return {
    url: `${base}/postgres`,
    port,
    password,
    logFile: join(dir, 'log'),
    stop,
    query,
    async createDatabase(name: string): Promise<string> {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad test database name ${name}`);
      await query(`${base}/postgres`, `CREATE DATABASE ${name}`);
      return `${base}/${name}`;
    },
  };
}
