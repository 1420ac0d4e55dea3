/**
 * Parallel listing against a real S3 API (s3rver): the same files as listing one
 * prefix at a time, and a prefix whose listing fails (503 SlowDown through a proxy)
 * is retried, then reported by name.
 */
import { S3Client } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keyWrittenAt, listWindowFiles } from '../../driver/listing.js';
import { parseWindow } from '../../driver/window.js';
import { S3Store } from '../../worker/store/s3.js';
import { startS3Proxy } from '../helpers/s3proxy.js';
import { startS3Server } from '../helpers/s3server.js';

const secs = (ms: number): number => Math.floor(ms / 1000);
const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10).replaceAll('-', '');

// 2023-05-31 17:30 PDT .. 2023-06-02 12:00 PDT: files written 2023-06-01T00:30Z .. 2023-06-02T20:00Z,
// date prefixes 20230531 .. 20230602.
const W = parseWindow('2023-05-31 17:30:00', '2023-06-02 12:00:00');

/** Edge files every 5 minutes from 2023-05-31T18:00Z for 3 days, in 3 groups, and a few directly under a date. */
function edgeObjects(): [string, string][] {
  const out: [string, string][] = [];
  const base = Date.parse('2023-05-31T18:00:00Z');
  for (let i = 0; i < 3 * 288; i++) {
    const ms = base + i * 300_000;
    out.push([`${dayOf(ms)}/edge-${'abc'[i % 3]}/${secs(ms)}.n${i % 5}.0a1b2c3d.log.gz`, 'x'.repeat(i % 17)]);
  }
  out.push([`20230601/${secs(Date.parse('2023-06-01T12:00:00Z'))}.loose.log.gz`, 'loose']);
  out.push(['20230601/edge-a/', '']); // a directory marker
  // A busy group: 2,500 files, three ListObjectsV2 pages.
  const busy = Date.parse('2023-06-01T06:00:00Z');
  for (let i = 0; i < 2500; i++) out.push([`20230601/edge-z/${secs(busy + i * 1000)}.n1.0a1b2c3d.log.gz`, 'z']);
  return out;
}

function clientFor(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    forcePathStyle: true,
    // The listing's own retries are under test, not the SDK's.
    maxAttempts: 1,
  });
}

test('parallel listing (dates and autoscale groups) finds what sequential listing finds; failures are retried, then named', async (t) => {
  const s3 = await startS3Server(t, { buckets: ['edge'] });
  const objects = edgeObjects();
  s3.seedObjects('edge', objects);
  const proxy = await startS3Proxy(t, s3.endpoint);
  const client = clientFor(proxy.endpoint);
  t.after(() => client.destroy());
  const store = new S3Store({ bucket: 'edge', prefix: '', client });

  // Sequential: one date prefix at a time, no group level (what listing did before), filtered by hand.
  const from = W.startUtc.getTime();
  const to = W.endUtc.getTime() + 3_600_000;
  const expected = objects
    .map(([key]) => key)
    .filter((k) => !k.endsWith('/') && k >= '20230531/' && k < '20230603/')
    .filter((k) => {
      const at = keyWrittenAt(k)!.getTime();
      return at >= from && at <= to;
    })
    .sort();
  assert.ok(expected.length > 3000);
  const sequential = await listWindowFiles({ ...storeWithoutLevel(store) }, W, { concurrency: 1 });
  assert.deepEqual(
    sequential.map((f) => f.key),
    expected,
  );

  await t.test('in parallel: the same files', async () => {
    const progress: number[] = [];
    const parallel = await listWindowFiles(store, W, { concurrency: 8, onProgress: (n) => progress.push(n) });
    assert.deepEqual(parallel, sequential);
    // Everything listed under the three date prefixes is counted (the loose file and the marker too).
    assert.equal(progress.at(-1), objects.filter(([k]) => k < '20230603/').length);
  });

  await t.test('a prefix answering 503 SlowDown twice is listed again, nothing lost or doubled', async () => {
    proxy.failLists.set('20230601/edge-b/', 2);
    proxy.failedLists.length = 0;
    const retries: string[] = [];
    const files = await listWindowFiles(store, W, {
      concurrency: 8,
      retryDelayMs: 1,
      onRetry: (prefix, attempt, error) => retries.push(`${prefix} ${attempt} ${error}`),
    });
    assert.deepEqual(files, sequential);
    assert.deepEqual(proxy.failedLists, ['20230601/edge-b/', '20230601/edge-b/']);
    assert.equal(retries.length, 2);
    assert.match(retries[0]!, /^s3:\/\/edge\/20230601\/edge-b\/ 1 .*SlowDown|reduce your request rate/);
  });

  await t.test('a listing failing part way is resumed after its last key, nothing lost or doubled', async () => {
    proxy.failLists.set('20230601/edge-z/#continued', 2);
    proxy.failedLists.length = 0;
    let retried = 0;
    const files = await listWindowFiles(store, W, { concurrency: 8, retryDelayMs: 1, onRetry: () => retried++ });
    assert.deepEqual(files, sequential);
    assert.deepEqual(proxy.failedLists, ['20230601/edge-z/#continued', '20230601/edge-z/#continued']);
    assert.equal(retried, 2);
  });

  await t.test('a prefix that keeps failing fails the listing, naming the prefix', async () => {
    proxy.failLists.set('20230602/edge-c/', Infinity);
    await assert.rejects(listWindowFiles(store, W, { concurrency: 8, attempts: 3, retryDelayMs: 1 }), (err: Error) => {
      assert.match(err.message, /^listing prefix s3:\/\/edge\/20230602\/edge-c\/ failed after 3 attempt\(s\): /);
      assert.match(err.message, /SlowDown|reduce your request rate/);
      return true;
    });
    proxy.failLists.clear();
  });
});

/** The store without its one-level listing: each date prefix is listed whole. */
function storeWithoutLevel(
  store: S3Store,
): Pick<S3Store, 'url' | 'list' | 'read' | 'readBytes' | 'put' | 'upload' | 'exists' | 'delete' | 'urlOf'> {
  return {
    url: store.url,
    list: (p) => store.list(p),
    read: (k) => store.read(k),
    readBytes: (k) => store.readBytes(k),
    put: (k, b) => store.put(k, b),
    upload: (k, b) => store.upload(k, b),
    exists: (k) => store.exists(k),
    delete: (k) => store.delete(k),
    urlOf: (k) => store.urlOf(k),
  };
}
