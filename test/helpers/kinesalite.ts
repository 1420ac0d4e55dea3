/**
 * A throwaway Kinesis API for tests: kinesalite in a child process on 127.0.0.1
 * and a free port, stopped when the test ends. Streams are created and read back
 * through the real SDK (over HTTP/1.1, as the publisher talks to it).
 * Without the kinesalite package the calling test is skipped with a message
 * naming what to install, except under CI=true, where it fails.
 */
import {
  CreateStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  type KinesisClient,
} from '@aws-sdk/client-kinesis';
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createKinesisClient } from '../../worker/output/kinesis.js';
import { stopChild, waitReady } from './child-server.js';
import { freePort } from './ports.js';

export interface KinesisTestServer {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  client: KinesisClient;
  /** Env vars (dummy credentials, region) a child process needs to reach this server. */
  env: Record<string, string>;
  createStream(name: string, shards: number): Promise<void>;
  /** Every record of every shard, from the start of the stream, in shard order. */
  readAll(stream: string): Promise<StreamRecord[]>;
}

export interface StreamRecord {
  shard: string;
  partitionKey: string;
  /** The record's data as text. */
  data: string;
}

const INSTALL_HINT = 'kinesalite not found; install it with `npm install --save-dev kinesalite` (npm ci does)';
const START_TIMEOUT_MS = 20_000;
const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'kinesalite', AWS_SECRET_ACCESS_KEY: 'kinesalite', AWS_REGION: 'us-east-1' };

function kinesaliteInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('kinesalite');
    return true;
  } catch {
    return false;
  }
}

/** Starts kinesalite, or skips the test (returns null) where it is not installed. */
export async function startKinesis(t: TestContext): Promise<KinesisTestServer | null> {
  if (!kinesaliteInstalled()) {
    if (process.env.CI === 'true') throw new Error(INSTALL_HINT);
    t.skip(INSTALL_HINT);
    return null;
  }
  const script = fileURLToPath(new URL('./kinesalite-main.js', import.meta.url));
  let child: ChildProcess | undefined;
  let port = 0;
  // freePort() can race with another process taking the port: retry with a new one.
  for (let attempt = 1; child === undefined; attempt++) {
    port = await freePort();
    const candidate = spawn(process.execPath, [script, JSON.stringify({ port })], { stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      await waitReady(candidate, 'kinesalite', START_TIMEOUT_MS);
      child = candidate;
    } catch (err) {
      await stopChild(candidate);
      if (attempt === 3) throw err;
    }
  }
  const server = child;
  const endpoint = `http://127.0.0.1:${port}`;
  const client = createKinesisClient({
    endpoint,
    region: CREDENTIALS.AWS_REGION,
    credentials: { accessKeyId: CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: CREDENTIALS.AWS_SECRET_ACCESS_KEY },
  });
  t.after(async () => {
    client.destroy();
    await stopChild(server);
  });
  return {
    endpoint,
    client,
    env: { ...CREDENTIALS },
    async createStream(name, shards) {
      await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
    },
    async readAll(stream) {
      const shards = (await client.send(new ListShardsCommand({ StreamName: stream }))).Shards ?? [];
      const out: StreamRecord[] = [];
      for (const shard of shards) {
        let iterator = (
          await client.send(
            new GetShardIteratorCommand({
              StreamName: stream,
              ShardId: shard.ShardId,
              ShardIteratorType: 'TRIM_HORIZON',
            }),
          )
        ).ShardIterator;
        while (iterator) {
          const res = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }));
          for (const r of res.Records ?? []) {
            out.push({
              shard: shard.ShardId!,
              partitionKey: r.PartitionKey!,
              data: Buffer.from(r.Data!).toString('utf8'),
            });
          }
          // An open shard always has a next iterator: stop at the first empty page.
          iterator = (res.Records ?? []).length === 0 ? undefined : res.NextShardIterator;
        }
      }
      return out;
    },
  };
}
