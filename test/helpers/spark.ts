/**
 * A real Spark standalone cluster on loopback for tests: one master and N
 * workers, each a `spark-class` JVM child process from the pinned PySpark in
 * .venv-spark/ (scripts/spark/setup-venv.sh), on 127.0.0.1 with ports of their
 * own choosing, each worker with its own work dir, stopped when the test ends.
 * Without Java or PySpark the calling test is skipped with a message naming what
 * to install, except under CI=true, where it fails.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { repoRoot } from './fixtures.js';

export const SPARK_VENV = join(repoRoot(), '.venv-spark');
const START_TIMEOUT_MS = 120_000;

export interface SparkWorker {
  /** The worker's work dir: `app-ID/EXECUTOR/stderr` holds its executors' logs. */
  workDir: string;
  child: ChildProcess;
  log(): string;
  /** The executors' stderr files under the work dir, concatenated. */
  executorLogs(): string;
  /** SIGKILL to the worker JVM and every process under it (executor JVM, Python workers, spade). */
  killHard(): void;
}

export interface SparkCluster {
  /** spark://127.0.0.1:PORT */
  master: string;
  masterPort: number;
  sparkSubmit: string;
  /** Environment spark-submit needs (SPARK_HOME, PYSPARK_PYTHON, SPARK_LOCAL_IP). */
  env: Record<string, string>;
  workers: SparkWorker[];
  stop(): Promise<void>;
}

function sparkHome(): string | null {
  const lib = join(SPARK_VENV, 'lib');
  if (!existsSync(lib)) return null;
  for (const py of readdirSync(lib)) {
    const home = join(lib, py, 'site-packages', 'pyspark');
    if (existsSync(join(home, 'bin', 'spark-class'))) return home;
  }
  return null;
}

function javaMissing(): string | null {
  try {
    execFileSync('java', ['-version'], { stdio: 'ignore' });
    return null;
  } catch {
    return 'Java not found: install Java 17, e.g. `apt-get install openjdk-17-jre-headless`';
  }
}

/** The reason Spark tests cannot run here, or null. */
export function sparkMissing(): string | null {
  const java = javaMissing();
  if (java) return java;
  if (!sparkHome()) return `PySpark not found in ${SPARK_VENV}: run scripts/spark/setup-venv.sh`;
  return null;
}

/** Every descendant pid of `pid` (children first found, then theirs), from /proc. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

function killTree(pid: number, signal: NodeJS.Signals): void {
  for (const p of [pid, ...descendants(pid)]) {
    try {
      process.kill(p, signal);
    } catch {
      // already gone
    }
  }
}

function startJvm(
  home: string,
  klass: string,
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
  what: string,
): Promise<{ child: ChildProcess; log: () => string; match: RegExpExecArray }> {
  // Through a shell that ends the JVM when our end of its stdin closes: a test
  // process killed before its after-hooks run leaves no cluster behind.
  const child = spawn(
    'sh',
    [
      '-c',
      '"$0" "$@" <&- & pid=$!; cat >/dev/null; kill $pid 2>/dev/null; wait $pid',
      join(home, 'bin', 'spark-class'),
      klass,
      ...args,
    ],
    { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  const onData = (s: string): void => void (out += s);
  child.stdout!.setEncoding('utf8').on('data', onData);
  child.stderr!.setEncoding('utf8').on('data', onData);
  return new Promise((resolve, reject) => {
    const fail = (why: string): void => {
      clearTimeout(timer);
      killTree(child.pid!, 'SIGKILL');
      reject(new Error(`Spark ${what} did not start: ${why}\n${out.slice(-3000)}`));
    };
    const timer = setTimeout(() => fail(`not ready within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    const check = (): void => {
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        child.stderr!.off('data', check);
        resolve({ child, log: () => out, match: m });
      }
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.once('error', (err) => fail(err.message));
    child.once('exit', (code, signal) => fail(`exited (code ${code}, signal ${signal})`));
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => killTree(child.pid!, 'SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    killTree(child.pid!, 'SIGTERM');
  });
}

/**
 * Starts a master and `workers.length` workers (each `cores` cores, 1 GB),
 * `workers[i].env` added to worker i's environment (what its executors and spade
 * see), or skips the test (returns null) where Java or PySpark is missing.
 */
export async function startSparkCluster(
  t: TestContext,
  opts: { workers: { env?: Record<string, string> }[]; cores: number },
): Promise<SparkCluster | null> {
  const missing = sparkMissing();
  if (missing) {
    if (process.env.CI === 'true') throw new Error(missing);
    t.skip(missing);
    return null;
  }
  const home = sparkHome()!;
  const root = mkdtempSync(join(tmpdir(), 'spade-spark-'));
  const python = join(SPARK_VENV, 'bin', 'python');
  const env = {
    SPARK_HOME: home,
    PYSPARK_PYTHON: python,
    PYSPARK_DRIVER_PYTHON: python,
    SPARK_LOCAL_IP: '127.0.0.1',
    SPARK_LOCAL_DIRS: join(root, 'local'),
    SPARK_DAEMON_MEMORY: '256m',
    SPARK_NO_DAEMONIZE: '1',
  };
  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(children.reverse().map(stopChild));
    rmSync(root, { recursive: true, force: true });
  };
  t.after(stop);
  const master = await startJvm(
    home,
    'org.apache.spark.deploy.master.Master',
    ['--host', '127.0.0.1', '--port', '0', '--webui-port', '0'],
    env,
    /Starting Spark master at spark:\/\/127\.0\.0\.1:(\d+)/,
    'master',
  );
  children.push(master.child);
  const masterPort = Number(master.match[1]);
  const masterUrl = `spark://127.0.0.1:${masterPort}`;
  const workers: SparkWorker[] = [];
  for (const [i, w] of opts.workers.entries()) {
    const workDir = join(root, `worker${i}`);
    const started = await startJvm(
      home,
      'org.apache.spark.deploy.worker.Worker',
      [
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--webui-port',
        '0',
        '--cores',
        String(opts.cores),
        '--memory',
        '1g',
        '--work-dir',
        workDir,
        masterUrl,
      ],
      { ...env, ...w.env },
      /Successfully registered with master/,
      `worker ${i}`,
    );
    children.push(started.child);
    workers.push({
      workDir,
      child: started.child,
      log: started.log,
      executorLogs() {
        if (!existsSync(workDir)) return '';
        let text = '';
        for (const app of readdirSync(workDir)) {
          for (const ex of readdirSync(join(workDir, app))) {
            const f = join(workDir, app, ex, 'stderr');
            if (existsSync(f)) text += readFileSync(f, 'utf8');
          }
        }
        return text;
      },
      killHard() {
        killTree(started.child.pid!, 'SIGKILL');
      },
    });
  }
  return {
    master: masterUrl,
    masterPort,
    sparkSubmit: join(home, 'bin', 'spark-submit'),
    env: { ...env, SPARK_LOCAL_DIRS: join(root, 'driver') },
    workers,
    stop,
  };
}
