/**
 * Child-process entry point of the Kinesis test server (see kinesalite.ts):
 * kinesalite (an implementation of the Kinesis API over an in-memory store) on
 * 127.0.0.1. Streams become ACTIVE at once.
 *
 * argv[2]: JSON `{ port }`. Prints `ready <port>` once listening; exits on
 * SIGTERM or when its stdin closes, so it never outlives its parent.
 */
import { createRequire } from 'node:module';
import type { Server } from 'node:http';

type Kinesalite = (options: Record<string, unknown>) => Server;

// kinesalite is CommonJS without type declarations.
const kinesalite = createRequire(import.meta.url)('kinesalite') as Kinesalite;

const config = JSON.parse(process.argv[2] ?? '{}') as { port: number };
const server = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100 });
server.listen(config.port, '127.0.0.1', () => process.stdout.write(`ready ${config.port}\n`));

function exit(): never {
  process.exit(0);
}
process.stdin.on('end', exit);
process.stdin.on('error', exit);
process.stdin.resume();
process.on('SIGTERM', exit);
