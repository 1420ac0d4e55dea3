/**
 * Child-process entry point of the s3rver test server (see s3server.ts): runs
 * s3rver out of the test process so its synchronous filesystem work and its
 * legacy-OpenSSL needs (DES continuation tokens, hence
 * NODE_OPTIONS=--openssl-legacy-provider) stay out of the tests.
 *
 * argv[2]: JSON `{ port, directory, buckets }`. Prints `ready <port>` once
 * listening; exits (removing the directory) on SIGTERM or when its stdin
 * closes, so it never outlives its parent.
 */
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';

interface S3rverOptions {
  port: number;
  address: string;
  directory: string;
  silent: boolean;
  configureBuckets: { name: string }[];
}
interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}
type S3rverClass = new (options: S3rverOptions) => S3rverInstance;

// s3rver is CommonJS without type declarations.
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;

const config = JSON.parse(process.argv[2] ?? '{}') as { port: number; directory: string; buckets: string[] };
const server = new S3rver({
  port: config.port,
  address: '127.0.0.1',
  directory: config.directory,
  silent: true,
  configureBuckets: config.buckets.map((name) => ({ name })),
});
const address = await server.run();
process.stdout.write(`ready ${address.port}\n`);

// Also removes the data directory, in case the parent died without cleaning up.
function exit(): never {
  rmSync(config.directory, { recursive: true, force: true });
  process.exit(0);
}
process.stdin.on('end', exit);
process.stdin.on('error', exit);
process.stdin.resume();
process.on('SIGTERM', exit);
