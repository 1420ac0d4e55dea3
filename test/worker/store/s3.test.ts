import { GetObjectCommand } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { test } from 'node:test';
import { ObjectNotFoundError, type StoredObject } from '../../../worker/store/objectstore.js';
import { createS3Client, S3Store } from '../../../worker/store/s3.js';
import { startS3Server } from '../../helpers/s3server.js';

async function collect(it: AsyncIterable<StoredObject>): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const o of it) out.push(o);
  return out;
}

test('S3 store against s3rver', async (t) => {
  const s3 = await startS3Server(t, { buckets: ['data'] });

  await t.test('put, read, readBytes, exists and delete under a prefix', async () => {
    const store = new S3Store({ bucket: 'data', prefix: '/runs/r1/', client: s3.client });
    assert.equal(store.url, 's3://data/runs/r1');
    assert.equal(store.urlOf('a/b.txt'), 's3://data/runs/r1/a/b.txt');

    await store.put('a/b.txt', 'hello');
    await store.put('bin', Buffer.from([0, 1, 2, 255]));
    assert.equal(await store.exists('a/b.txt'), true);
    assert.equal(await text(await store.read('a/b.txt')), 'hello');
    assert.deepEqual(await store.readBytes('bin'), Buffer.from([0, 1, 2, 255]));
    // The key really lives under the prefix.
    const raw = await s3.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'runs/r1/a/b.txt' }));
    assert.equal(await raw.Body?.transformToString(), 'hello');

    await store.delete('a/b.txt');
    assert.equal(await store.exists('a/b.txt'), false);
    await store.delete('a/b.txt');
    await assert.rejects(store.put('../x', 'no'), /invalid object key/);
  });

  await t.test('a missing key rejects with an error naming its URL', async () => {
    const store = new S3Store({ bucket: 'data', prefix: 'p', client: s3.client });
    await assert.rejects(store.read('no/such.gz'), (err: Error) => {
      assert.ok(err instanceof ObjectNotFoundError);
      assert.equal(err.message, 'object not found: s3://data/p/no/such.gz');
      return true;
    });
    await assert.rejects(store.readBytes('no/such.gz'), { message: 'object not found: s3://data/p/no/such.gz' });

    const noBucket = new S3Store({ bucket: 'missing-bucket', prefix: '', client: s3.client });
    await assert.rejects(noBucket.put('k', 'v'), (err: Error) => {
      assert.match(err.message, /^S3 PutObject s3:\/\/missing-bucket\/k failed: NoSuchBucket/);
      assert.doesNotMatch(err.message, /S3RVER/, 'no credentials in messages');
      return true;
    });
  });

  await t.test('upload of a 20 MB stream (multipart) reads back byte-identical', async () => {
    const store = new S3Store({ bucket: 'data', prefix: 'big', client: s3.client });
    const chunks = Array.from({ length: 20 }, () => randomBytes(1_000_000));
    const expected = createHash('sha256');
    for (const c of chunks) expected.update(c);

    const result = await store.upload('blob.bin', Readable.from(chunks));
    assert.deepEqual(result, { bytes: 20_000_000 });

    const actual = createHash('sha256');
    let size = 0;
    for await (const chunk of await store.read('blob.bin')) {
      actual.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    assert.equal(size, 20_000_000);
    assert.equal(actual.digest('hex'), expected.digest('hex'));
    const listed = await collect(store.list(''));
    assert.deepEqual(
      listed.map((o) => [o.key, o.size]),
      [['blob.bin', 20_000_000]],
    );
  });

  await t.test('small and empty uploads; a failing source leaves no object', async () => {
    const store = new S3Store({ bucket: 'data', prefix: 'small', client: s3.client });
    assert.deepEqual(await store.upload('one', Readable.from([Buffer.from('abc')])), { bytes: 3 });
    assert.equal((await store.readBytes('one')).toString(), 'abc');
    assert.deepEqual(await store.upload('empty', Readable.from([])), { bytes: 0 });
    assert.equal((await store.readBytes('empty')).length, 0);

    const body = new PassThrough();
    const failed = store.upload('broken', body);
    body.write(Buffer.alloc(1000));
    body.destroy(new Error('source broke'));
    await assert.rejects(failed, /^Error: S3 Upload s3:\/\/data\/small\/broken failed: .*source broke/);
    assert.equal(await store.exists('broken'), false);
  });

  await t.test('list pages through 2,500 keys in order, with prefix filters', async (st) => {
    const store = new S3Store({ bucket: 'data', prefix: 'many', client: s3.client });
    const keys = Array.from({ length: 2500 }, (_, i) => `2023031${i % 2}/${String(i).padStart(5, '0')}.gz`);
    s3.seedObjects(
      'data',
      [...keys, '20230320/other.gz', '20230321/more.gz'].map((k) => [`many/${k}`, k] as const),
    );
    const sorted = [...keys].sort();

    let listRequests = 0;
    s3.client.middlewareStack.add(
      (next, context) => (args) => {
        if (context.commandName === 'ListObjectsV2Command') listRequests++;
        return next(args);
      },
      { step: 'initialize', name: 'countListRequests' },
    );
    st.after(() => s3.client.middlewareStack.remove('countListRequests'));
    const all = await collect(store.list(''));
    assert.equal(listRequests, 3, 'three pages of at most 1,000 keys');
    assert.equal(all.length, 2502);
    assert.deepEqual(
      all.map((o) => o.key),
      [...sorted, '20230320/other.gz', '20230321/more.gz'],
    );
    assert.equal(all[0]?.size, all[0]?.key.length);
    assert.ok(all[0]?.lastModified instanceof Date);

    const odd = (await collect(store.list('20230311/'))).map((o) => o.key);
    assert.equal(odd.length, 1250);
    assert.deepEqual(odd, sorted.slice(1250));
    // A prefix may end mid-name.
    assert.deepEqual(
      (await collect(store.list('2023032'))).map((o) => o.key),
      ['20230320/other.gz', '20230321/more.gz'],
    );
    assert.deepEqual(await collect(store.list('2024')), []);
    assert.equal((await store.readBytes('20230320/other.gz')).toString(), '20230320/other.gz');
  });

  await t.test('createS3Client reaches a custom endpoint from the environment', async (st) => {
    const saved = { ...process.env };
    st.after(() => {
      for (const k of Object.keys(s3.env)) delete process.env[k];
      Object.assign(process.env, saved);
    });
    Object.assign(process.env, s3.env);
    const client = createS3Client();
    try {
      const store = new S3Store({ bucket: 'data', prefix: '', client });
      await store.put('env/check', 'via env');
      assert.equal((await store.readBytes('env/check')).toString(), 'via env');
    } finally {
      client.destroy();
    }
  });
});
