/**
 * Teardown of a benchmark run: servers, child processes and scratch files are
 * registered as they start and removed once, in reverse order, at the end or
 * on Ctrl-C.
 */

/** What to stop and remove at the end, last registered first. */
export const cleanups: (() => unknown)[] = [];
let cleaning: Promise<void> | null = null;
let interrupted = false;

/** Runs the cleanups once; every caller waits for the same run. */
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        process.stderr.write(`cleanup: ${(err as Error).message}\n`);
      }
    }
  })();
  return cleaning;
}

/** SIGINT/SIGTERM handler: clean up, then exit 130. */
export function onSignal(): void {
  interrupted = true;
  // Stopping the servers under running work makes that work fail (a pg client with
  // a query in flight emits an unhandled 'error'): expected now, and not allowed to
  // end the process before the scratch files are removed.
  process.on('uncaughtException', () => undefined);
  process.on('unhandledRejection', () => undefined);
  void cleanup().finally(() => process.exit(130));
}

/** True once a signal started the teardown: a failure then is only the run being stopped. */
export function wasInterrupted(): boolean {
  return interrupted;
}
