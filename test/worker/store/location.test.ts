import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { LazyS3Store } from '../../../worker/store/lazy-s3.js';
import { LocalStore } from '../../../worker/store/local.js';
import { openStore, parseS3Url, readUrl } from '../../../worker/store/location.js';
import { ObjectNotFoundError } from '../../../worker/store/objectstore.js';
import { startS3Server } from '../../helpers/s3server.js';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'spade-location-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('parseS3Url splits bucket and prefix, normalising slashes', () => {
  assert.deepEqual(parseS3Url('s3://bucket'), { bucket: 'bucket', prefix: '' });
  assert.deepEqual(parseS3Url('s3://bucket/'), { bucket: 'bucket', prefix: '' });
  assert.deepEqual(parseS3Url('s3://bucket/a/b/'), { bucket: 'bucket', prefix: 'a/b' });
  assert.deepEqual(parseS3Url('S3://my.bucket-1/a/b.gz'), { bucket: 'my.bucket-1', prefix: 'a/b.gz' });
  assert.throws(() => parseS3Url('s3://'), /invalid bucket name in S3 URL: s3:\/\//);
  assert.throws(() => parseS3Url('s3:///key'), /invalid bucket name/);
  assert.throws(() => parseS3Url('https://bucket/x'), /not an S3 URL/);
});

test('openStore picks S3 or local stores by location', (t) => {
  const dir = tempDir(t);
  const s3 = openStore('s3://edge-logs/spade/raw/');
  assert.ok(s3 instanceof LazyS3Store);
  assert.equal(s3.url, 's3://edge-logs/spade/raw');
  assert.equal(s3.urlOf('2023/x.gz'), 's3://edge-logs/spade/raw/2023/x.gz');
  assert.equal(openStore('s3://edge-logs').urlOf('x.gz'), 's3://edge-logs/x.gz');

  const local = openStore(dir);
  assert.ok(local instanceof LocalStore);
  assert.equal(local.url, dir);
  assert.equal(openStore(pathToFileURL(dir).href).url, dir);
  assert.equal(openStore('relative/dir').url, resolve('relative/dir'));

  assert.throws(() => openStore(''), /empty store location/);
  assert.throws(() => openStore('gs://bucket/x'), /unsupported location gs:\/\/bucket\/x/);
});

test('readUrl reads local paths and file URLs; missing files name the path', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'config.json');
  writeFileSync(file, '{"a":1}');
  assert.equal((await readUrl(file)).toString(), '{"a":1}');
  assert.equal((await readUrl(pathToFileURL(file).href)).toString(), '{"a":1}');
  await assert.rejects(readUrl(join(dir, 'nope.json')), (err: Error) => {
    assert.ok(err instanceof ObjectNotFoundError);
    assert.equal(err.message, `object not found: ${join(dir, 'nope.json')}`);
    return true;
  });
});

test('readUrl and openStore reach S3 objects', async (t) => {
  const s3 = await startS3Server(t, { buckets: ['cfg'] });
  const store = openStore('s3://cfg/prefix/', { client: s3.client });
  await store.put('tables/config.json', '{"tables":[]}');
  assert.equal(
    (await readUrl('s3://cfg/prefix/tables/config.json', { client: s3.client })).toString(),
    '{"tables":[]}',
  );
  await assert.rejects(readUrl('s3://cfg/prefix/missing.json', { client: s3.client }), {
    message: 'object not found: s3://cfg/prefix/missing.json',
  });
  await assert.rejects(readUrl('s3://cfg', { client: s3.client }), /names no object/);
  await assert.rejects(readUrl('s3://cfg/dir/', { client: s3.client }), /names no object/);
  const listed: string[] = [];
  for await (const o of store.list('tables/')) listed.push(o.key);
  assert.deepEqual(listed, ['tables/config.json']);
  assert.equal(await store.exists('tables/config.json'), true);
  await store.delete('tables/config.json');
  assert.equal(await store.exists('tables/config.json'), false);
});

test('the AWS SDK is loaded only when an S3 store is first used', () => {
  // A child process: this test process has loaded the SDK already. The SDK is
  // CommonJS, so whatever of it was loaded is in require.cache.
  const location = new URL('../../../worker/store/location.js', import.meta.url).href;
  const script = `
    import { createRequire } from 'node:module';
    const { openStore } = await import(${JSON.stringify(location)});
    const sdkLoaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('@aws-sdk'));
    const store = openStore('s3://bucket/prefix');
    const before = [sdkLoaded(), store.urlOf('a/b.gz')];
    await store.exists('a/b.gz').catch(() => undefined);
    console.log(JSON.stringify([...before, sdkLoaded()]));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    // Nowhere to connect: the request fails fast, the SDK is loaded all the same.
    env: {
      ...process.env,
      SPADE_S3_ENDPOINT: 'http://127.0.0.1:9',
      AWS_ACCESS_KEY_ID: 'x',
      AWS_SECRET_ACCESS_KEY: 'x',
    },
    encoding: 'utf8',
  });
  assert.deepEqual(JSON.parse(out), [false, 's3://bucket/prefix/a/b.gz', true]);
});
