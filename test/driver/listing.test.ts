import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keyWrittenAt, listWindowFiles } from '../../driver/listing.js';
import { parseWindow } from '../../driver/window.js';
import { MemStore } from '../helpers/memstore.js';

const secs = (iso: string) => Math.floor(Date.parse(iso) / 1000);
const dayOf = (iso: string) => iso.slice(0, 10).replaceAll('-', '');
const edgeKey = (iso: string, group = 'edge-a', node = 'node1') =>
  `${dayOf(iso)}/${group}/${secs(iso)}.${node}.0a1b2c3d.log.gz`;

test('keyWrittenAt reads the unix seconds of edge file names, leniently after them', () => {
  assert.equal(keyWrittenAt('20230601/g/1685577600.n.0a1b2c3d.log.gz')?.toISOString(), '2023-06-01T00:00:00.000Z');
  assert.equal(keyWrittenAt('20230601/g/1685577600.whatever')?.toISOString(), '2023-06-01T00:00:00.000Z');
  assert.equal(keyWrittenAt('20230601/g/1685577600')?.toISOString(), '2023-06-01T00:00:00.000Z');
  // Written late the evening before or early next day relative to the directory: still trusted.
  assert.ok(keyWrittenAt('20230601/g/1685660000.n.log.gz'));
  assert.equal(keyWrittenAt('20230601/g/node1.1685577600.log.gz'), null);
  assert.equal(keyWrittenAt('20230601/g/168557760.n.log.gz'), null); // 9 digits: 1975
  assert.equal(keyWrittenAt('20230601/g/16855776000.n.log.gz'), null); // 11 digits
  assert.equal(keyWrittenAt('20230601/g/1685577600x.n.log.gz'), null);
  assert.equal(keyWrittenAt('20230601/g/1700000000.n.log.gz'), null); // Nov 2023: disagrees with its directory
  assert.equal(keyWrittenAt('20230601/g/'), null);
});

test('key clock first, LastModified when the name has no usable time', async () => {
  const store = new MemStore();
  const w = parseWindow('2023-06-01 10:00:00', '2023-06-01 12:00:00'); // 17:00Z .. 19:00Z, files to 20:00Z
  const inside = new Date('2023-06-01T18:00:00Z');
  const outside = new Date('2023-06-01T05:00:00Z');
  // Name says inside, LastModified says outside (e.g. restored from a backup): the name wins.
  store.set(edgeKey('2023-06-01T18:00:00Z'), 'a', outside);
  // Name says outside, LastModified inside: the name wins, so it is not read.
  store.set(edgeKey('2023-06-01T05:00:00Z'), 'b', inside);
  // No usable name: LastModified decides.
  store.set('20230601/edge-a/strange-name.log.gz', 'cc', inside);
  store.set('20230601/edge-a/other-strange.log.gz', 'dd', outside);
  store.set('20230601/edge-a/', '', inside); // a directory marker
  store.set('20230602/edge-a/later.log.gz', 'e', outside); // other prefix, outside

  const files = await listWindowFiles(store, w);
  assert.deepEqual(files, [
    {
      key: edgeKey('2023-06-01T18:00:00Z'),
      size: 1,
      writtenAt: new Date('2023-06-01T18:00:00Z'),
      clock: 'key',
    },
    { key: '20230601/edge-a/strange-name.log.gz', size: 2, writtenAt: inside, clock: 'lastModified' },
  ]);
  // 16:00Z .. 20:00Z: only June 1 is listed.
  assert.deepEqual(store.listCalls, ['20230601/']);
});

test('window boundaries are inclusive: [START, END+1h]', async () => {
  const store = new MemStore();
  const w = parseWindow('2023-06-01 10:00:00', '2023-06-01 12:00:00');
  for (const iso of [
    '2023-06-01T16:59:59Z',
    '2023-06-01T17:00:00Z',
    '2023-06-01T19:00:00Z',
    '2023-06-01T20:00:00Z',
    '2023-06-01T20:00:01Z',
  ]) {
    store.set(edgeKey(iso), 'x');
  }
  // LastModified clock, with millisecond precision.
  store.set('20230601/g/a.log', 'x', new Date('2023-06-01T16:59:59.999Z'));
  store.set('20230601/g/b.log', 'x', new Date('2023-06-01T17:00:00.000Z'));
  store.set('20230601/g/c.log', 'x', new Date('2023-06-01T20:00:00.000Z'));
  store.set('20230601/g/d.log', 'x', new Date('2023-06-01T20:00:00.001Z'));

  const files = await listWindowFiles(store, w);
  assert.deepEqual(
    files.map((f) => `${f.clock} ${f.writtenAt.toISOString()}`),
    [
      'key 2023-06-01T17:00:00.000Z',
      'key 2023-06-01T19:00:00.000Z',
      'key 2023-06-01T20:00:00.000Z',
      'lastModified 2023-06-01T17:00:00.000Z',
      'lastModified 2023-06-01T20:00:00.000Z',
    ],
  );
});

test('3,000 keys across several date prefixes, sorted by key, with progress', async () => {
  const store = new MemStore();
  // 3,000 files, one every 2 minutes from 2023-05-30 20:00Z (~4.2 days), in two groups, added out of order.
  const base = Date.parse('2023-05-30T20:00:00Z');
  const all: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const iso = new Date(base + i * 120_000).toISOString();
    all.push(edgeKey(iso, i % 2 ? 'edge-b' : 'edge-a', `n${i % 7}`));
  }
  for (let i = all.length - 1; i >= 0; i--) store.set(all[(i * 7919) % all.length], 'x'.repeat(i % 13));

  // 2023-05-30 17:30 PDT (00:30Z May 31; -1h reaches back into May 30) .. 2023-06-02 12:00 PDT (19:00Z):
  // files written 00:30Z May 31 .. 20:00Z Jun 2.
  const w = parseWindow('2023-05-30 17:30:00', '2023-06-02 12:00:00');
  const progress: number[] = [];
  const files = await listWindowFiles(store, w, { onProgress: (n) => progress.push(n) });

  const from = Date.parse('2023-05-31T00:30:00Z');
  const to = Date.parse('2023-06-02T20:00:00Z');
  const expected = all
    .filter((k) => {
      const t = Number(k.split('/')[2].split('.')[0]) * 1000;
      return t >= from && t <= to;
    })
    .sort();
  assert.equal(files.length, (to - from) / 120_000 + 1);
  assert.deepEqual(
    files.map((f) => f.key),
    expected,
  );
  assert.ok(files.every((f) => f.clock === 'key'));
  assert.deepEqual(store.listCalls.sort(), ['20230530/', '20230531/', '20230601/', '20230602/']);
  // Everything under the four prefixes was listed: 20230530 from 20:00Z (120 files) .. 20230602 (720).
  assert.equal(progress.at(-1), 120 + 720 * 3);
  assert.ok(progress.includes(1000) && progress.includes(2000));
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i] >= progress[i - 1]);
});
