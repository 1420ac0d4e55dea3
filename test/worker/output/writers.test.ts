import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { isLosslessNumber, parse as parseLossless } from 'lossless-json';
import { decodeRow } from '../../../worker/output/tsv.js';
import {
  OutputWriters,
  SPOOL_DIR_PREFIX,
  sweepStaleSpoolDirs,
  type WrittenFile,
} from '../../../worker/output/writers.js';
import { S3Store } from '../../../worker/store/s3.js';
import { ExactInteger } from '../../../worker/transform/values.js';
import { DirStore } from '../../helpers/dirstore.js';
import { startS3Server } from '../../helpers/s3server.js';

function fileText(store: DirStore, key: string): string {
  return gunzipSync(readFileSync(store.pathOf(key))).toString('utf8');
}

/** Splits a TSV file into rows (each row's LF is unescaped; escaped LFs stay inside fields). */
function tsvRows(text: string): (string | null)[][] {
  const rows: (string | null)[][] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '\n') {
      rows.push(decodeRow(text.slice(start, i)));
      start = i + 1;
    }
  }
  assert.equal(start, text.length, 'file ends with a complete row');
  return rows;
}

function jsonLines(text: string): string[] {
  assert.ok(text.endsWith('\n'));
  return text.slice(0, -1).split('\n');
}

function checkSizes(store: DirStore, files: WrittenFile[]): void {
  for (const f of files) {
    assert.equal(f.bytes, statSync(store.pathOf(f.key)).size, `compressed size of ${f.key}`);
    assert.equal(f.uncompressedBytes, Buffer.byteLength(fileText(store, f.key)), `uncompressed size of ${f.key}`);
  }
}

describe('OutputWriters', () => {
  it('rotates by size into consecutive seq files holding every row in order', async (t) => {
    const store = DirStore.temp(t);
    const w = new OutputWriters({ store, prefix: 'run1', fileTag: 'p00003-a7f3c2-t1', rotateBytes: 4096 });
    const expected: string[][] = [];
    for (let i = 0; i < 2000; i++) {
      const row = [String(i), `name\t${i}`, 'é😀'.repeat(i % 5), `line\n${i % 7}`];
      expected.push(row);
      w.writeRow('minute-watched', 2, row);
    }
    w.writeRow('other_event', 0, ['x', null, '']);
    const files = await w.close();

    const ev = files.filter((f) => f.event === 'minute-watched');
    assert.ok(ev.length >= 5, `expected several files, got ${ev.length}`);
    ev.forEach((f, seq) => {
      assert.equal(f.key, `run1/minute-watched/v2/p00003-a7f3c2-t1-${String(seq).padStart(5, '0')}.tsv.gz`);
      assert.equal(f.kind, 'rows');
      assert.equal(f.version, 2);
      if (seq < ev.length - 1) assert.ok(f.uncompressedBytes >= 4096, `${f.key} rotated early`);
      // Rotation happens at the first row boundary past the limit (ASCII-ish rows here: within one row).
      assert.ok(f.uncompressedBytes < 4096 + 200, `${f.key} overshoots: ${f.uncompressedBytes}`);
    });
    const got = ev.flatMap((f) => {
      const rows = tsvRows(fileText(store, f.key));
      assert.equal(rows.length, f.rows, `row count of ${f.key}`);
      return rows;
    });
    assert.deepEqual(
      got,
      expected.map((r) => r.map((v) => (v === '' ? null : v))),
    );

    const other = files.filter((f) => f.event === 'other_event');
    assert.deepEqual(
      other.map((f) => [f.key, f.rows]),
      [['run1/other_event/v0/p00003-a7f3c2-t1-00000.tsv.gz', 1]],
    );
    assert.deepEqual(tsvRows(fileText(store, other[0].key)), [['x', null, null]]);
    checkSizes(store, files);
    assert.deepEqual(await store.keys(), files.map((f) => f.key).sort());
  });

  it('with rowUuids, writes next to each row file a uuid sidecar holding its rows’ uuids, rotating in lockstep', async (t) => {
    const store = DirStore.temp(t);
    const w = new OutputWriters({
      store,
      prefix: 'run1',
      fileTag: 'p00003-a7f3c2-t1',
      rotateBytes: 4096,
      rowUuids: true,
    });
    const expected: string[] = [];
    for (let i = 0; i < 1500; i++) {
      // Some rows larger than a chunk (their own write, then a rotation), some uuids that need escaping.
      const row = [String(i), i % 400 === 7 ? 'y'.repeat(70_000) : `name ${i}`];
      const uuid = i % 100 === 3 ? `odd\tuuid\n${i}` : `8a1f0c2e-0000-4000-8000-${String(i).padStart(12, '0')}`;
      expected.push(uuid);
      w.writeRow('minute-watched', 2, row, undefined, uuid);
    }
    const files = await w.close();
    assert.ok(files.length >= 5, `expected several files, got ${files.length}`);
    const got = files.flatMap((f) => {
      assert.equal(f.uuids, `${f.key}.uuids.gz`);
      const uuids = tsvRows(fileText(store, f.uuids!));
      assert.equal(uuids.length, f.rows, `uuids in ${f.uuids}`);
      assert.equal(tsvRows(fileText(store, f.key)).length, f.rows, `rows in ${f.key}`);
      return uuids.map((u) => u[0]);
    });
    assert.deepEqual(got, expected);
    // The sidecars are in the store but not reported as files of their own (so never loaded).
    assert.deepEqual(await store.keys(), files.flatMap((f) => [f.key, f.uuids!]).sort());
    assert.ok(files.every((f) => f.kind === 'rows' && f.key.endsWith('.tsv.gz')));
  });

  it('creates no file for destinations without rows, and none at all when nothing is written', async (t) => {
    const store = DirStore.temp(t);
    const w = new OutputWriters({ store, prefix: 'run', fileTag: 'tag1' });
    w.tableWriter('never_written', 3); // resolved but unused
    assert.deepEqual(await w.close(), []);
    assert.deepEqual(await store.keys(), []);
  });

  it('writes keys without a leading slash when the prefix is empty, and via tableWriter handles', async (t) => {
    const store = DirStore.temp(t);
    const w = new OutputWriters({ store, prefix: '', fileTag: 'tag1' });
    const table = w.tableWriter('ev', 1);
    table.writeRow(['a']);
    w.writeRow('ev', 1, ['b']);
    w.writeNonTracked('unknown', {});
    w.writeQuarantine({ source: 's', lineNo: 1, reason: 'r', text: 't' });
    const files = await w.close();
    assert.deepEqual(
      files.map((f) => [f.key, f.kind, f.rows]),
      [
        ['_nontracked/tag1-00000.json.gz', 'nontracked', 1],
        ['_quarantine/tag1-00000.json.gz', 'quarantine', 1],
        ['ev/v1/tag1-00000.tsv.gz', 'rows', 2],
      ],
    );
    assert.equal(fileText(store, 'ev/v1/tag1-00000.tsv.gz'), 'a\nb\n');
  });

  it('writes non-tracked events and quarantined lines as JSON lines; big integers keep their digits', async (t) => {
    const store = DirStore.temp(t);
    const w = new OutputWriters({ store, prefix: 'run/', fileTag: 'tag1' });
    w.writeNonTracked('mystery', {
      big: new ExactInteger('9007199254740993'),
      neg: new ExactInteger('-12345678901234567890'),
      nested: { list: [1, new ExactInteger('9007199254740993'), 'x'] },
      digitsAsText: '9007199254740993',
      tricky: 'tab\tnewline\n"quote" \\ \u0000 \u2028 😀',
      lone: 'a\uD800b',
      nothing: null,
    });
    w.writeNonTracked('second', { n: 1.5 });
    w.writeQuarantine({
      source: '20240101/asg/1700000000.n1.deadbeef.log.gz',
      lineNo: 42,
      reason: 'bad base64',
      text: 'x\ny\tz',
    });
    const files = await w.close();
    assert.deepEqual(
      files.map((f) => f.key),
      ['run/_nontracked/tag1-00000.json.gz', 'run/_quarantine/tag1-00000.json.gz'],
    );
    checkSizes(store, files);

    const lines = jsonLines(fileText(store, 'run/_nontracked/tag1-00000.json.gz'));
    assert.equal(lines.length, 2);
    assert.match(lines[0], /"big":9007199254740993,/);
    assert.match(lines[0], /"neg":-12345678901234567890,/);
    assert.match(lines[0], /"list":\[1,9007199254740993,"x"\]/);
    const lossless = parseLossless(lines[0]) as { properties: Record<string, unknown> };
    assert.ok(isLosslessNumber(lossless.properties.big));
    assert.equal(String(lossless.properties.big), '9007199254740993');
    const first = JSON.parse(lines[0]) as { event: string; properties: Record<string, unknown> };
    assert.equal(first.event, 'mystery');
    assert.equal(first.properties.digitsAsText, '9007199254740993');
    assert.equal(first.properties.tricky, 'tab\tnewline\n"quote" \\ \u0000 \u2028 😀');
    assert.equal(first.properties.nothing, null);
    assert.deepEqual(JSON.parse(lines[1]), { event: 'second', properties: { n: 1.5 } });

    const q = jsonLines(fileText(store, 'run/_quarantine/tag1-00000.json.gz'));
    assert.deepEqual(
      q.map((l) => JSON.parse(l) as unknown),
      [{ source: '20240101/asg/1700000000.n1.deadbeef.log.gz', lineNo: 42, reason: 'bad base64', text: 'x\ny\tz' }],
    );
  });

  it('applies backpressure with a slow store: needsDrain() turns true, drain() bounds the buffers', async (t) => {
    const store = DirStore.temp(t, { uploadChunkDelayMs: 1 });
    const maxPendingBytes = 512 * 1024;
    const w = new OutputWriters({
      store,
      prefix: 'run',
      fileTag: 'slow',
      maxPendingBytes,
      rotateBytes: 8 * 1024 * 1024,
    });
    let drains = 0;
    let maxPending = 0;
    let x = 1;
    for (let i = 0; i < 200_000; i++) {
      x = (x * 48271) % 2147483647; // pseudo-random payload so gzip output is not tiny
      w.writeRow(i % 2 === 0 ? 'ev_a' : 'ev_b', 0, [
        String(i),
        x.toString(36),
        (x * 7).toString(16),
        'v'.repeat(x % 40),
      ]);
      if (w.needsDrain()) {
        drains++;
        maxPending = Math.max(maxPending, w.pendingBytes());
        await w.drain();
      }
    }
    const files = await w.close();
    assert.ok(drains > 0, 'needsDrain() never became true');
    // Without draining ~6 MB would pile up; with it the buffers stay near the bound.
    assert.ok(maxPending < 2 * maxPendingBytes, `pending reached ${maxPending}`);
    let rows = 0;
    for (const f of files) {
      const n = tsvRows(fileText(store, f.key)).length;
      assert.equal(n, f.rows);
      rows += n;
    }
    assert.equal(rows, 200_000);
  });

  it('reports a failed upload from drain() and close(), naming the key', async (t) => {
    const store = DirStore.temp(t, { failUpload: (key) => key.includes('/bad/') });
    const w = new OutputWriters({ store, prefix: 'run', fileTag: 'tag1', rotateBytes: 1000 });
    // ~9 KB per table: several rotations, so uploads start before close().
    for (let i = 0; i < 1000; i++) {
      w.writeRow('good', 0, [`row ${i}`]);
      w.writeRow('bad', 0, [`row ${i}`]);
    }
    await assert.rejects(async () => {
      for (let spins = 0; !w.needsDrain(); spins++) {
        assert.ok(spins < 100_000, 'the injected failure never surfaced');
        await new Promise((r) => setImmediate(r));
      }
      await w.drain();
      // Several files of 'bad' upload at once: any of them may fail first.
    }, /run\/bad\/v0\/tag1-\d{5}\.tsv\.gz/);
    await assert.rejects(w.close(), /run\/bad\/v0\/tag1-\d{5}\.tsv\.gz.* failed: injected upload failure/);
    assert.ok((await store.keys()).every((k) => !k.includes('/bad/')));
  });

  it('keeps every row exact while a busy table’s buffer is reused and grows, with rows larger than a chunk', async (t) => {
    const store = DirStore.temp(t);
    const w = new OutputWriters({ store, prefix: 'run', fileTag: 'grow' });
    const expected: string[][] = [];
    let x = 7;
    for (let i = 0; i < 30_000; i++) {
      x = (x * 48271) % 2147483647;
      // Multi-byte text, and now and then a row of 160 KiB (more than a first chunk, even
      // doubled: the one at i = 10 comes early) or 300 KiB (more than the largest chunk).
      const big =
        i === 10 || i % 5000 === 4999 ? 'ü'.repeat(80 * 1024) : i % 7000 === 6999 ? 'x'.repeat(300 * 1024) : '';
      const row = [String(i), x.toString(36), `é😀 ${i}\t${x % 97}`, big];
      expected.push(row);
      w.writeRow('busy', 0, row);
      if (i % 100 === 0) w.writeRow('quiet', 0, [String(i)]);
    }
    const files = await w.close();
    checkSizes(store, files);
    const busy = files.filter((f) => f.event === 'busy');
    assert.ok(busy.reduce((n, f) => n + f.uncompressedBytes, 0) > 2 * 1024 * 1024, 'enough rows to grow buffers');
    assert.deepEqual(
      busy.flatMap((f) => tsvRows(fileText(store, f.key))),
      expected.map((r) => r.map((v) => (v === '' ? null : v))),
    );
    assert.deepEqual(
      files.filter((f) => f.event === 'quiet').flatMap((f) => tsvRows(fileText(store, f.key))),
      Array.from({ length: 300 }, (_, k) => [String(k * 100)]),
    );
  });

  it('abort() leaves no partial files and refuses further writes', async (t) => {
    const store = DirStore.temp(t, { uploadChunkDelayMs: 5 });
    const w = new OutputWriters({ store, prefix: 'run', fileTag: 'tag1' });
    for (let i = 0; i < 50_000; i++) w.writeRow('ev', 0, [String(i), 'some text to compress ' + i]);
    await w.abort();
    assert.deepEqual(await store.keys(), []);
    assert.throws(() => w.writeRow('ev', 0, ['x']), /after close\(\) or abort\(\)/);
    assert.throws(() => w.writeRow('new_ev', 0, ['x']), /after close\(\) or abort\(\)/);
  });

  it('rejects bad names early', (t) => {
    const store = DirStore.temp(t);
    assert.throws(() => new OutputWriters({ store, prefix: '/abs', fileTag: 't' }), /prefix/);
    assert.throws(() => new OutputWriters({ store, prefix: 'p', fileTag: 'a/b' }), /fileTag/);
    const w = new OutputWriters({ store, prefix: 'p', fileTag: 't' });
    assert.throws(() => w.writeRow('../etc', 0, ['x']), /bad event name/);
    assert.throws(() => w.writeRow('ev', -1, ['x']), /bad schema version -1 for event ev/);
  });

  describe('spooling (S3 stores)', () => {
    function tempSpoolDir(t: TestContext): string {
      const dir = mkdtempSync(join(tmpdir(), 'spade-spool-test-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      return dir;
    }

    /** Waits (without a clock) until a spooled temp file exists: proof the writer spools. */
    async function untilSpooling(dir: string): Promise<void> {
      for (let spins = 0; !existsSync(dir) || readdirSync(dir).length === 0; spins++) {
        assert.ok(spins < 100_000, `nothing was ever spooled into ${dir}`);
        await new Promise((r) => setImmediate(r));
      }
    }

    it('uploads every file of 54 tables to S3 through the spool and leaves the spool empty', async (t) => {
      const s3 = await startS3Server(t, { buckets: ['out'] });
      const store = new S3Store({ bucket: 'out', prefix: 'runs', client: s3.client });
      const spoolDir = tempSpoolDir(t);
      const w = new OutputWriters({ store, prefix: 'r1', fileTag: 'p00001-abc-t1', rotateBytes: 16 * 1024, spoolDir });
      const events = Array.from({ length: 54 }, (_, i) => `event_${String(i).padStart(2, '0')}`);
      const rowsPerEvent = 800;
      for (let i = 0; i < rowsPerEvent; i++) {
        for (let e = 0; e < events.length; e++) {
          w.writeRow(events[e], e % 3, [String(i), `${events[e]} row ${i}`, 'tab\there', 'x'.repeat(i % 50)]);
        }
        if (w.needsDrain()) await w.drain();
      }
      w.writeNonTracked('who', { n: 1 });
      await untilSpooling(spoolDir);

      const files = await w.close();
      assert.deepEqual(readdirSync(spoolDir), [], 'spool dir empty after close()');

      const listed: string[] = [];
      for await (const o of store.list('r1/')) listed.push(o.key);
      assert.deepEqual(listed.sort(), files.map((f) => f.key).sort(), 'every file arrived, and only those');
      const rowsByEvent = new Map<string, number>();
      for (const f of files) {
        const body = await store.readBytes(f.key);
        assert.equal(body.length, f.bytes, `compressed size of ${f.key}`);
        const text = gunzipSync(body).toString('utf8');
        assert.equal(Buffer.byteLength(text), f.uncompressedBytes, `uncompressed size of ${f.key}`);
        if (f.kind !== 'rows') continue;
        const rows = tsvRows(text);
        assert.equal(rows.length, f.rows, `row count of ${f.key}`);
        rowsByEvent.set(f.event ?? '', (rowsByEvent.get(f.event ?? '') ?? 0) + rows.length);
      }
      for (const ev of events) assert.equal(rowsByEvent.get(ev), rowsPerEvent, `rows of ${ev}`);
      const perEvent = files.filter((f) => f.event === 'event_00').length;
      assert.ok(perEvent >= 3, `expected rotation, got ${perEvent} files for event_00`);
      assert.deepEqual(
        files.filter((f) => f.kind === 'nontracked').map((f) => f.key),
        ['r1/_nontracked/p00001-abc-t1-00000.json.gz'],
      );
    });

    it('uploads a spooled file bigger than one part as a multipart upload', async (t) => {
      const s3 = await startS3Server(t, { buckets: ['out'] });
      const store = new S3Store({ bucket: 'out', prefix: '', client: s3.client });
      const spoolDir = tempSpoolDir(t);
      const w = new OutputWriters({ store, prefix: 'r1', fileTag: 'tag1', spoolDir });
      const big = w.tableWriter('big_table', 0);
      const rows: string[] = [];
      // Incompressible enough to exceed the 8 MiB part size once gzipped.
      for (let i = 0; i < 100; i++) {
        rows.push(randomBytes(96 * 1024).toString('base64'));
        big.writeRow([String(i), rows[i]]);
      }
      const files = await w.close();
      assert.equal(files.length, 1);
      assert.ok(files[0].bytes > 8 * 1024 * 1024, `only ${files[0].bytes} bytes: not multipart`);
      const body = await store.readBytes(files[0].key);
      assert.equal(body.length, files[0].bytes);
      assert.deepEqual(
        tsvRows(gunzipSync(body).toString('utf8')),
        rows.map((r, i) => [String(i), r]),
      );
      assert.deepEqual(readdirSync(spoolDir), []);
    });

    /** This process's default spool dirs (tests in this file run one at a time). */
    function ownDefaultSpoolDirs(): string[] {
      return readdirSync(tmpdir())
        .filter((n) => n.startsWith(`${SPOOL_DIR_PREFIX}${process.pid}-`))
        .map((n) => join(tmpdir(), n));
    }

    it('spools by default when the store URL is s3://, in a temp dir of its own removed at the end', async (t) => {
      const dirStore = DirStore.temp(t);
      // The local double under an s3:// name: the writer must treat it as remote.
      const store = Object.assign(Object.create(dirStore) as DirStore, { url: 's3://bucket/prefix' });
      assert.deepEqual(ownDefaultSpoolDirs(), []);
      const w = new OutputWriters({ store, prefix: 'run', fileTag: 'tag1' });
      for (let i = 0; i < 20_000; i++) w.writeRow('ev', 0, [String(i), `value ${i}`]);
      for (let spins = 0; ownDefaultSpoolDirs().length === 0; spins++) {
        assert.ok(spins < 100_000, 'no default spool dir appeared');
        await new Promise((r) => setImmediate(r));
      }
      const [spoolDir] = ownDefaultSpoolDirs();
      await untilSpooling(spoolDir);
      const files = await w.close();
      assert.deepEqual(ownDefaultSpoolDirs(), [], 'the default spool dir is removed by close()');
      assert.deepEqual(await dirStore.keys(), ['run/ev/v0/tag1-00000.tsv.gz']);
      assert.equal(tsvRows(fileText(dirStore, files[0].key)).length, 20_000);

      const aborted = new OutputWriters({ store, prefix: 'run', fileTag: 'tag2' });
      for (let i = 0; i < 20_000; i++) aborted.writeRow('ev', 0, [String(i), `value ${i}`]);
      for (let spins = 0; ownDefaultSpoolDirs().length === 0; spins++) {
        assert.ok(spins < 100_000, 'no default spool dir appeared');
        await new Promise((r) => setImmediate(r));
      }
      await aborted.abort();
      assert.deepEqual(ownDefaultSpoolDirs(), [], 'the default spool dir is removed by abort()');
    });

    it('sweeps default spool dirs of dead processes only', async (t) => {
      const root = mkdtempSync(join(tmpdir(), 'spade-sweep-test-'));
      t.after(() => rmSync(root, { recursive: true, force: true }));
      // A pid that surely belonged to a process which has exited.
      const child = spawn(process.execPath, ['-e', '']);
      const deadPid = child.pid;
      assert.ok(deadPid !== undefined);
      await once(child, 'exit');
      const names = [
        `${SPOOL_DIR_PREFIX}${deadPid}-0a1b2c3d`,
        `${SPOOL_DIR_PREFIX}${deadPid}`,
        `${SPOOL_DIR_PREFIX}${process.pid}-0a1b2c3d`,
        `${SPOOL_DIR_PREFIX}${process.ppid}-0a1b2c3d`,
        `${SPOOL_DIR_PREFIX}not-a-pid`,
      ];
      for (const n of names) {
        mkdirSync(join(root, n));
        writeFileSync(join(root, n, 'torn.tsv.gz'), 'x');
      }
      const removed = await sweepStaleSpoolDirs(root);
      assert.deepEqual(removed.sort(), names.slice(0, 2).sort());
      assert.deepEqual(readdirSync(root).sort(), names.slice(2).sort());
    });

    it('abort() cancels spooled and running uploads and removes the temp files', async (t) => {
      // Uploads hang: two files are uploading, others wait for a slot or are still being spooled.
      const store = DirStore.temp(t, { blockUploads: true });
      const spoolDir = tempSpoolDir(t);
      const w = new OutputWriters({ store, prefix: 'run', fileTag: 'tag1', rotateBytes: 16 * 1024, spoolDir });
      for (let i = 0; i < 20_000; i++) w.writeRow(`ev_${i % 7}`, 0, [String(i), 'some text to compress ' + i]);
      await untilSpooling(spoolDir);
      for (let spins = 0; store.uploadsStarted.length < 2; spins++) {
        assert.ok(spins < 100_000, 'uploads never started');
        await new Promise((r) => setImmediate(r));
      }
      await w.abort();
      assert.deepEqual(readdirSync(spoolDir), []);
      assert.deepEqual(await store.keys(), []);
      assert.equal(store.uploadsStarted.length, 2, 'no more than maxConcurrentUploads at once, none after abort');
    });

    it('reports a failed upload of a spooled file, naming the key, and removes the temp files', async (t) => {
      const store = DirStore.temp(t, { failUpload: (key) => key.includes('/bad/') });
      const spoolDir = tempSpoolDir(t);
      const w = new OutputWriters({ store, prefix: 'run', fileTag: 'tag1', rotateBytes: 1000, spoolDir });
      for (let i = 0; i < 1000; i++) {
        w.writeRow('good', 0, [`row ${i}`]);
        w.writeRow('bad', 0, [`row ${i}`]);
      }
      await assert.rejects(w.close(), /upload of run\/bad\/v0\/tag1-\d{5}\.tsv\.gz .* failed: injected upload failure/);
      assert.deepEqual(readdirSync(spoolDir), []);
      assert.ok((await store.keys()).every((k) => !k.includes('/bad/')));
    });

    it('bounds the number of spooled files waiting for a slow store', async (t) => {
      const store = DirStore.temp(t, { uploadChunkDelayMs: 2 });
      const spoolDir = tempSpoolDir(t);
      const w = new OutputWriters({
        store,
        prefix: 'run',
        fileTag: 'tag1',
        rotateBytes: 4096,
        spoolDir,
        maxConcurrentUploads: 1,
      });
      let maxSpooled = 0;
      let drains = 0;
      for (let i = 0; i < 20_000; i++) {
        w.writeRow('ev', 0, [String(i), `payload ${i * 7919}`]);
        // Like an input reader between batches: let I/O run (files are spooled and queued meanwhile).
        if (i % 200 === 0) await new Promise((r) => setImmediate(r));
        if (w.needsDrain()) {
          drains++;
          maxSpooled = Math.max(maxSpooled, readdirSync(spoolDir).length);
          await w.drain();
        }
      }
      const files = await w.close();
      assert.ok(drains > 0, 'needsDrain() never became true');
      // 1 uploading + a few waiting + 1 being written, plus files finished since the last check.
      assert.ok(maxSpooled <= 8, `${maxSpooled} files were spooled at once`);
      assert.equal(
        files.reduce((n, f) => n + f.rows, 0),
        20_000,
      );
      assert.deepEqual(readdirSync(spoolDir), []);
    });
  });
});
