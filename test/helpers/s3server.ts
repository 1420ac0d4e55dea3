/**
 * A throwaway S3 server for tests: s3rver in a child process on 127.0.0.1 and a
 * free port, storing into a temp directory, stopped and removed when the test ends.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stopChild, waitReady } from './child-server.js';
import { freePort } from './ports.js';
import { scratchDir } from './scratch-dir.js';

export interface S3TestServer {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  port: number;
  /** Client for this server: dummy credentials, path style, checksums only when required. */
  client: S3Client;
  /** Env vars a child process needs to reach this server through `createS3Client()`. */
  env: Record<string, string>;
  createBucket(name: string): Promise<void>;
  /**
   * Writes objects straight into s3rver's on-disk store, bypassing HTTP: s3rver
   * takes ~2 ms of CPU per PUT, so this is how a test gets thousands of objects
   * quickly. The bucket must exist. Reads and listings then go through HTTP as usual.
   */
  seedObjects(bucket: string, objects: Iterable<readonly [key: string, body: Buffer | string]>): void;
}

/** s3rver accepts exactly these credentials. */
const ACCESS_KEY = 'S3RVER';
const SECRET_KEY = 'S3RVER';
const REGION = 'us-east-1';
const START_TIMEOUT_MS = 20_000;

export async function startS3Server(t: TestContext, opts: { buckets?: string[] } = {}): Promise<S3TestServer> {
  // s3rver keeps three files per object: RAM-backed when possible (scratchDir).
  const directory = mkdtempSync(join(scratchDir(), 'spade-s3rver-'));
  const script = fileURLToPath(new URL('./s3rver-main.js', import.meta.url));
  let child: ChildProcess | undefined;
  let port = 0;
  // freePort() can race with another process taking the port: retry with a new one.
  for (let attempt = 1; child === undefined; attempt++) {
    port = await freePort();
    const candidate = spawn(
      process.execPath,
      [script, JSON.stringify({ port, directory, buckets: opts.buckets ?? [] })],
      { env: { ...process.env, NODE_OPTIONS: '--openssl-legacy-provider' }, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    try {
      await waitReady(candidate, 's3rver', START_TIMEOUT_MS);
      child = candidate;
    } catch (err) {
      await stopChild(candidate);
      if (attempt === 3) {
        rmSync(directory, { recursive: true, force: true });
        throw err;
      }
    }
  }
  const server = child;
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: REGION,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  t.after(async () => {
    client.destroy();
    await stopChild(server);
    rmSync(directory, { recursive: true, force: true });
  });
  return {
    endpoint,
    port,
    client,
    env: {
      SPADE_S3_ENDPOINT: endpoint,
      AWS_ACCESS_KEY_ID: ACCESS_KEY,
      AWS_SECRET_ACCESS_KEY: SECRET_KEY,
      AWS_REGION: REGION,
    },
    async createBucket(name: string) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    seedObjects(bucket, objects) {
      for (const [key, body] of objects) seedObject(directory, bucket, key, body);
    },
  };
}

/** s3rver's FilesystemStore layout: `<bucket>/<key>._S3rver_object` plus md5 and metadata files. */
function seedObject(directory: string, bucket: string, key: string, body: Buffer | string): void {
  const base = join(directory, bucket, ...key.split('/'));
  mkdirSync(dirname(base), { recursive: true });
  writeFileSync(`${base}._S3rver_object`, body);
  writeFileSync(`${base}._S3rver_object.md5`, createHash('md5').update(body).digest('hex'));
  writeFileSync(`${base}._S3rver_metadata.json`, '{}');
}
