/**
 * Start-up and shutdown of a test server run as a child process (s3rver,
 * kinesalite): it prints `ready ...` on stdout once it listens.
 */
import type { ChildProcess } from 'node:child_process';

/** Resolves when the child prints `ready` (it is listening by then); rejects naming `what` if it exits or is silent. */
export function waitReady(child: ChildProcess, what: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`${what} did not start: ${why}${stderr ? `\n${stderr}` : ''}`));
    };
    const timer = setTimeout(() => fail(`no ready message within ${timeoutMs} ms`), timeoutMs);
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
      if (stdout.includes('ready ')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('error', (err) => fail(err.message));
    child.once('exit', (code, signal) => fail(`exited (code ${code}, signal ${signal})`));
  });
}

/** SIGTERM (SIGKILL after 5 s); resolves when the child has exited. */
export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.stdin?.end();
    child.kill('SIGTERM');
  });
}
