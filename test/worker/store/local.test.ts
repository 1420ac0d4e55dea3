import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { test, type TestContext } from 'node:test';
import { LocalStore } from '../../../worker/store/local.js';
import { ObjectNotFoundError, type StoredObject } from '../../../worker/store/objectstore.js';

function tempStore(t: TestContext): { store: LocalStore; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'spade-local-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { store: new LocalStore(dir), dir };
}

async function collect(it: AsyncIterable<StoredObject>): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const o of it) out.push(o);
  return out;
}

async function keys(store: LocalStore, prefix: string): Promise<string[]> {
  return (await collect(store.list(prefix))).map((o) => o.key);
}

test('put, read, readBytes, exists and delete round-trip', async (t) => {
  const { store, dir } = tempStore(t);
  assert.equal(store.url, dir);
  assert.equal(store.urlOf('a/b.txt'), join(dir, 'a', 'b.txt'));

  await store.put('a/b.txt', 'hello');
  await store.put('bin', Buffer.from([0, 1, 2, 255]));
  assert.equal(await store.exists('a/b.txt'), true);
  assert.equal(await text(await store.read('a/b.txt')), 'hello');
  assert.deepEqual(await store.readBytes('bin'), Buffer.from([0, 1, 2, 255]));

  await store.put('a/b.txt', 'replaced');
  assert.equal((await store.readBytes('a/b.txt')).toString(), 'replaced');

  await store.delete('a/b.txt');
  assert.equal(await store.exists('a/b.txt'), false);
  await store.delete('a/b.txt'); // deleting a missing object is not an error
  assert.equal(await store.exists('a'), false, 'a directory is not an object');
});

test('a missing key rejects with an error naming its path', async (t) => {
  const { store, dir } = tempStore(t);
  const path = join(dir, 'no', 'such.gz');
  await assert.rejects(store.read('no/such.gz'), (err: Error) => {
    assert.ok(err instanceof ObjectNotFoundError);
    assert.equal(err.message, `object not found: ${path}`);
    return true;
  });
  await assert.rejects(store.readBytes('no/such.gz'), { message: `object not found: ${path}` });
  mkdirSync(join(dir, 'adir'));
  await assert.rejects(store.read('adir'), ObjectNotFoundError);
  await assert.rejects(store.readBytes('adir'), ObjectNotFoundError);
});

test('upload streams to the key and reports the byte count', async (t) => {
  const { store } = tempStore(t);
  const chunks = Array.from({ length: 100 }, (_, i) => Buffer.alloc(10_000, i));
  const result = await store.upload('up/data.bin', Readable.from(chunks));
  assert.deepEqual(result, { bytes: 1_000_000 });
  assert.deepEqual(await store.readBytes('up/data.bin'), Buffer.concat(chunks));
  const [listed] = await collect(store.list('up/'));
  assert.equal(listed?.size, 1_000_000);
  assert.ok(listed.lastModified instanceof Date && listed.lastModified.getTime() > 0);
});

test('an in-progress upload is invisible until complete; a failed one leaves nothing', async (t) => {
  const { store, dir } = tempStore(t);
  await store.put('out/part', 'old');
  const body = new PassThrough();
  const done = store.upload('out/part', body);
  body.write('new half');
  // Wait until the temp file exists, so the checks below race a real partial write.
  while (!readdirSync(join(dir, 'out')).some((n) => n.startsWith('.tmp-'))) await new Promise((r) => setTimeout(r, 5));

  assert.deepEqual(await keys(store, ''), ['out/part']);
  assert.equal((await store.readBytes('out/part')).toString(), 'old');
  body.end(' and the rest');
  assert.deepEqual(await done, { bytes: 21 });
  assert.equal((await store.readBytes('out/part')).toString(), 'new half and the rest');
  assert.deepEqual(readdirSync(join(dir, 'out')), ['part']);

  const failing = new PassThrough();
  const failed = store.upload('out/broken', failing);
  failing.write('partial');
  failing.destroy(new Error('source broke'));
  await assert.rejects(failed, /local store write .*broken failed: source broke/);
  assert.equal(await store.exists('out/broken'), false);
  assert.deepEqual(readdirSync(join(dir, 'out')), ['part']);
});

test('list yields keys in byte order across directories, filtered by any prefix', async (t) => {
  const { store, dir } = tempStore(t);
  const all = [
    '20230311/x.gz',
    '20230312/a.gz',
    '20230312/b/c.gz',
    '20230313-extra',
    '20230313/z.gz',
    '2023032/y.gz',
    'a-b',
    'a/x',
    'a/z',
    'a/é',
    'a/\uFF01',
    'a/\u{1F600}',
    'top',
  ];
  for (const k of [...all].reverse()) await store.put(k, k);
  // Leftovers of writes in progress or crashed are not objects.
  writeFileSync(join(dir, '20230312', '.tmp-123-abc'), 'partial');

  assert.deepEqual(await keys(store, ''), all);
  assert.deepEqual(await keys(store, '2023031'), all.slice(0, 5));
  assert.deepEqual(await keys(store, '20230312/'), ['20230312/a.gz', '20230312/b/c.gz']);
  assert.deepEqual(await keys(store, '20230313'), ['20230313-extra', '20230313/z.gz']);
  assert.deepEqual(await keys(store, 'a/'), all.slice(7, 12));
  assert.deepEqual(await keys(store, 'top'), ['top']);
  assert.deepEqual(await keys(store, 'nothing/here/'), []);
  assert.deepEqual(await keys(store, 'top/'), []);

  const [first] = await collect(store.list('20230311/'));
  assert.deepEqual({ key: first?.key, size: first?.size }, { key: '20230311/x.gz', size: 13 });
});

test('list of a missing root is empty', async (t) => {
  const { dir } = tempStore(t);
  assert.deepEqual(await keys(new LocalStore(join(dir, 'not-yet')), ''), []);
});

test('keys that could escape the root or be mistaken for temp files are rejected', async (t) => {
  const { store } = tempStore(t);
  for (const bad of ['../etc/passwd', 'a/../../x', '/abs', 'a//b', './a', 'a/', '', 'nul\0byte', 'd/.tmp-1']) {
    await assert.rejects(store.put(bad, 'x'), (err: Error) => {
      assert.match(err.message, /invalid object key/);
      assert.ok(err.message.includes(JSON.stringify(bad)), err.message);
      return true;
    });
    await assert.rejects(store.read(bad), /invalid object key/);
  }
  await assert.rejects(collect(store.list('../')), /invalid list prefix/);
  await assert.rejects(collect(store.list('/x')), /invalid list prefix/);
});

test('listLevel: the files directly under a directory and its sub-directories as prefixes, in S3 key order', async (t) => {
  const { store } = tempStore(t);
  for (const key of ['20230601/a-b.log', '20230601/a/x.log', '20230601/b/c/y.log', '20230601/z.log', '20230602/q.log'])
    await store.put(key, 'x');
  const entries: string[] = [];
  for await (const e of store.listLevel('20230601/')) entries.push('prefix' in e ? `dir ${e.prefix}` : `file ${e.key}`);
  // '-' sorts before '/', as S3 compares full keys.
  assert.deepEqual(entries, ['file 20230601/a-b.log', 'dir 20230601/a/', 'dir 20230601/b/', 'file 20230601/z.log']);
  const none: unknown[] = [];
  for await (const e of store.listLevel('20230609/')) none.push(e);
  assert.deepEqual(none, []);
});
