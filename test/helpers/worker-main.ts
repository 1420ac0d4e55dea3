/**
 * Child-process entry point of a test worker daemon: what `spade worker serve`
 * runs, without going through the CLI. argv[2]: JSON `{ host, port, threads, drainMs, allowEdge, allowOutput,
 * allowUserIdUrl }`;
 * the token comes from env SPADE_WORKER_TOKEN (as on a real node). Prints
 * `worker daemon listening on <url>` on stderr; exits when its stdin closes, so
 * it never outlives the test process.
 */
import { workerServeCommand } from '../../worker/server/worker-daemon.js';

const config = JSON.parse(process.argv[2] ?? '{}') as {
  host?: string;
  port?: number;
  threads?: number;
  drainMs?: number;
  allowEdge?: string[];
  allowOutput?: string[];
  allowUserIdUrl?: string[];
};
process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
process.stdin.on('error', () => process.kill(process.pid, 'SIGTERM'));
process.stdin.resume();
await workerServeCommand(config);
process.exit(0);
