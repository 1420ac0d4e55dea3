/**
 * Real worker daemons for tests: each a child process (test/helpers/worker-main.ts,
 * the same code `spade worker serve` runs) on 127.0.0.1 and a port of its own
 * choosing, stopped when the test ends. Like a real node they allow S3 edge and
 * output locations only and no user-id lookups, unless `allowEdge`/`allowOutput`/
 * `allowUserIdUrl` list others.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

export interface TestWorker {
  /** host:port, as `--workers` takes it */
  addr: string;
  url: string;
  child: ChildProcess;
  /** Everything the daemon wrote to stderr so far. */
  log(): string;
  /** GET /healthz; null when it does not answer. */
  health(): Promise<{ ok: boolean; busy: boolean } | null>;
}

const START_TIMEOUT_MS = 20_000;

export async function startWorker(
  t: TestContext,
  opts: {
    token: string;
    env?: Record<string, string>;
    threads?: number;
    drainMs?: number;
    /** `--allow-edge` / `--allow-output` of the daemon. */
    allowEdge?: string[];
    allowOutput?: string[];
    /** `--allow-user-id-url` of the daemon. */
    allowUserIdUrl?: string[];
  },
): Promise<TestWorker> {
  const script = fileURLToPath(new URL('./worker-main.js', import.meta.url));
  const child = spawn(
    process.execPath,
    [
      script,
      JSON.stringify({
        host: '127.0.0.1',
        port: 0,
        threads: opts.threads ?? 1,
        drainMs: opts.drainMs ?? 5000,
        allowEdge: opts.allowEdge,
        allowOutput: opts.allowOutput,
        allowUserIdUrl: opts.allowUserIdUrl,
      }),
    ],
    { env: { ...process.env, ...opts.env, SPADE_WORKER_TOKEN: opts.token }, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  child.stdout!.resume();
  t.after(() => stop(child));
  const url = await new Promise<string>((resolve, reject) => {
    const fail = (why: string): void => {
      clearTimeout(timer);
      reject(new Error(`worker daemon did not start: ${why}\n${stderr}`));
    };
    const timer = setTimeout(() => fail(`no listening message within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    child.stderr!.on('data', () => {
      const m = /listening on (http:\/\/[^\s/]+)\//.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('error', (err) => fail(err.message));
    child.once('exit', (code, signal) => fail(`exited (code ${code}, signal ${signal})`));
  });
  return {
    addr: url.replace('http://', ''),
    url,
    child,
    log: () => stderr,
    async health() {
      try {
        const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
        return (await res.json()) as { ok: boolean; busy: boolean };
      } catch {
        return null;
      }
    },
  };
}

export function startWorkers(
  t: TestContext,
  n: number,
  opts: { token: string; env?: Record<string, string>; threads?: number },
): Promise<TestWorker[]> {
  return Promise.all(Array.from({ length: n }, () => startWorker(t, opts)));
}

/** SIGKILL, and resolves once the process is gone. */
export function killWorker(w: TestWorker): Promise<void> {
  return stop(w.child, 'SIGKILL');
}

function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 8000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.stdin?.end();
    child.kill(signal);
  });
}
