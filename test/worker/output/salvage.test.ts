import assert from 'node:assert/strict';
import { createReadStream, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { constants, gunzipSync, gzipSync } from 'node:zlib';
import { gunzipChunks } from '../../../worker/input/lines.js';
import { salvageGzip } from '../../../worker/output/salvage.js';
import { encodeRow } from '../../../worker/output/tsv.js';
import { OutputWriters } from '../../../worker/output/writers.js';
import { DirStore } from '../../helpers/dirstore.js';
import { fixturePath } from '../../helpers/fixtures.js';

function text(gz: Buffer): string {
  return gunzipSync(gz).toString('utf8');
}

/** What zlib itself can decode of a cut gzip file (no error on truncation): the reference for "before the cut". */
function decodablePrefix(cut: Buffer): Buffer {
  if (cut.length < 10) return Buffer.alloc(0);
  return gunzipSync(cut, { finishFlush: constants.Z_SYNC_FLUSH });
}

/** Rows awkward for a line splitter: escaped LFs, backslashes before the row end, long backslash runs. */
function awkwardRows(): string[][] {
  const rows: string[][] = [];
  let x = 7;
  for (let i = 0; i < 6000; i++) {
    x = (x * 48271) % 2147483647;
    rows.push([
      String(i),
      x.toString(36).repeat(1 + (x % 5)),
      i % 3 === 0 ? `multi\nline\n${i}` : 'plain',
      // A field ending in a backslash puts an escaped backslash right before a TAB or the row's LF.
      i % 4 === 0 ? `ends with backslash\\` : 'é😀',
      i % 5 === 0 ? `\\\n${'\\'.repeat(x % 4)}\n` : '',
    ]);
  }
  // Backslash runs longer than zlib's output chunks, so a run spans chunks: one before an escaped LF, one before a row end.
  rows.push(['long-odd', `${'\\'.repeat(40_000)}\nstill the same field`]);
  rows.push(['long-even', '\\'.repeat(40_000)]);
  rows.push(['last', 'row']);
  return rows;
}

describe('salvageGzip', () => {
  it('recovers the fixture exactly as the reference salvage did', async () => {
    const corrupted = readFileSync(fixturePath('spade/uploader-minute-watched.v0.corrupted.gz'));
    const expected = text(readFileSync(fixturePath('spade/uploader-minute-watched.v0.recovered.gz')));
    const expectedLines = expected.split('\n').length - 1;

    for (const format of ['tsv', 'jsonl'] as const) {
      const res = await salvageGzip(corrupted, { format });
      assert.equal(text(res.data), expected, `salvaged text (${format})`);
      assert.equal(res.lines, expectedLines);
      assert.equal(res.complete, false);
      assert.ok(res.droppedBytes > 0, 'the torn last line was dropped');
      assert.match(res.damage ?? '', /unexpected end of file/);
      assert.equal(res.corrupt, false);
    }
    // The same from a stream, as read from a store.
    const streamed = await salvageGzip(
      createReadStream(fixturePath('spade/uploader-minute-watched.v0.corrupted.gz'), { highWaterMark: 4096 }),
      { format: 'tsv' },
    );
    assert.equal(text(streamed.data), expected);
  });

  it('keeps exactly the complete rows before the cut of one of our files cut anywhere', async (t) => {
    const store = DirStore.temp(t);
    const w = new OutputWriters({ store, prefix: 'run', fileTag: 'tag1' });
    const rows = awkwardRows();
    for (const r of rows) w.writeRow('ev', 0, r);
    const [file] = await w.close();
    const whole = readFileSync(store.pathOf(file.key));
    const encoded = rows.map((r) => encodeRow(r));

    const cuts = [0, 1, 2, 9, 10, 11, 50, 1000, 4097, whole.length - 8, whole.length - 4, whole.length - 1];
    for (let k = 1; k < 12; k++) cuts.push(Math.floor((whole.length * k) / 12) + k);
    for (const cut of cuts) {
      const torn = whole.subarray(0, cut);
      const res = await salvageGzip(torn, { format: 'tsv' });
      const decodable = decodablePrefix(torn);
      // The longest run of whole rows inside what zlib can decode of the cut file.
      let n = 0;
      let bytes = 0;
      while (n < encoded.length && bytes + Buffer.byteLength(encoded[n]) <= decodable.length) {
        bytes += Buffer.byteLength(encoded[n]);
        n++;
      }
      assert.equal(res.lines, n, `rows kept when cut at ${cut} of ${whole.length}`);
      assert.equal(text(res.data), encoded.slice(0, n).join(''), `text kept when cut at ${cut}`);
      assert.equal(res.droppedBytes, decodable.length - bytes, `bytes dropped when cut at ${cut}`);
      assert.equal(res.complete, false, `cut at ${cut} is not complete`);
      assert.equal(res.corrupt, false, `cut at ${cut} is not corruption`);
    }
  });

  it('gives an intact file back whole, complete', async () => {
    const rows = awkwardRows();
    const body = rows.map((r) => encodeRow(r)).join('');
    const res = await salvageGzip(Readable.from([gzipSync(body)]), { format: 'tsv' });
    assert.equal(res.complete, true);
    assert.equal(res.damage, undefined);
    assert.equal(res.lines, rows.length);
    assert.equal(res.droppedBytes, 0);
    assert.equal(text(res.data), body);

    const empty = await salvageGzip(gzipSync(''));
    assert.deepEqual(
      { ...empty, data: text(empty.data) },
      { data: '', lines: 0, droppedBytes: 0, complete: true, corrupt: false },
    );
  });

  it('splits JSON lines at every LF in jsonl format, and reports a torn last line of an intact stream', async () => {
    const lines = ['{"a":"x\\\\"}', '{"b":"\\n"}', '{"c":1}'];
    const body = lines.join('\n') + '\n{"torn":';
    for (const format of ['jsonl', 'tsv'] as const) {
      const res = await salvageGzip(gzipSync(body), { format });
      assert.equal(text(res.data), lines.join('\n') + '\n');
      assert.equal(res.lines, 3);
      assert.equal(res.droppedBytes, Buffer.byteLength('{"torn":'));
      assert.equal(res.complete, false);
      assert.match(res.damage ?? '', /last line has no line end/);
    }
    // Where the formats differ: an LF after an odd backslash run only ends a line in jsonl.
    const tsvish = 'a\\\nb\n';
    assert.equal((await salvageGzip(gzipSync(tsvish), { format: 'tsv' })).lines, 1);
    assert.equal((await salvageGzip(gzipSync(tsvish), { format: 'jsonl' })).lines, 2);
  });

  it('reads concatenated members, keeps what precedes a cut member, flags corrupt data', async () => {
    const a = 'one\ntwo\n';
    const b = 'three\nfour\n';
    const both = await salvageGzip(Buffer.concat([gzipSync(a), gzipSync(b)]));
    assert.equal(text(both.data), a + b);
    assert.equal(both.complete, true);

    const cutMember = await salvageGzip(Buffer.concat([gzipSync(a), gzipSync(b).subarray(0, 12)]));
    assert.equal(text(cutMember.data), a);
    assert.deepEqual([cutMember.lines, cutMember.complete, cutMember.corrupt], [2, false, false]);

    // A second member with an impossible header (compression method 9): corrupt, not cut.
    const badHeader = Buffer.from([0x1f, 0x8b, 9, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4]);
    const res = await salvageGzip(Buffer.concat([gzipSync(a), badHeader]));
    assert.equal(res.complete, false);
    assert.equal(res.corrupt, true);
    assert.match(res.damage ?? '', /unknown compression method/);
    // zlib drops the output of the write that failed (documented limit), so all or none of `a` survives here.
    assert.ok(a.startsWith(text(res.data)));

    // Corruption in the middle of a big file: flagged corrupt (zlib may have decoded garbage before noticing).
    const body = awkwardRows()
      .map((r) => encodeRow(r))
      .join('');
    const gz = gzipSync(body, { level: 1 });
    const mid = Buffer.from(gz);
    for (let i = 0; i < 64; i++) mid[Math.floor(gz.length / 2) + i] ^= 0x5a;
    const broken = await salvageGzip(mid, { format: 'tsv' });
    const kept = text(broken.data);
    assert.equal(broken.complete, false);
    assert.equal(broken.corrupt, true);
    assert.ok(broken.damage);
    assert.ok(kept.length > 0 && kept.length < body.length, `kept ${kept.length} of ${body.length}`);
    assert.ok(kept.endsWith('\n'));
  });

  it('gunzipChunks gives a slow reader every byte decodable before the cut', async () => {
    const corrupted = readFileSync(fixturePath('spade/uploader-minute-watched.v0.corrupted.gz'));
    const expected = decodablePrefix(corrupted);
    async function* source(): AsyncGenerator<Buffer> {
      for (let off = 0; off < corrupted.length; off += 5000) yield corrupted.subarray(off, off + 5000);
    }
    const got: Buffer[] = [];
    await assert.rejects(
      async () => {
        for await (const chunk of gunzipChunks(source())) {
          got.push(chunk);
          // A reader much slower than zlib: many turns of the event loop per chunk.
          for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
        }
      },
      { code: 'Z_BUF_ERROR' },
    );
    assert.equal(Buffer.concat(got).length, expected.length);
    assert.ok(Buffer.concat(got).equals(expected));
  });

  it('rejects input that is not gzip, or that cannot be read', async () => {
    await assert.rejects(salvageGzip(Buffer.from('plain text\n')), /not a gzip file \(starts with 706c6169\)/);
    const failing = new Readable({
      read() {
        this.destroy(new Error('connection reset'));
      },
    });
    await assert.rejects(salvageGzip(failing), /reading the file to salvage failed: connection reset/);
  });
});
