import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import {
  DECODE_BYTES,
  decodedChunks,
  readLineBatches,
  type BadLine,
  type ReadLinesResult,
} from '../../../worker/input/lines.js';
import { fixturePath } from '../../helpers/fixtures.js';
import { prng } from '../../../scripts/generate/edge-logs.js';

interface Collected {
  lines: string[];
  bad: BadLine[];
  batches: number;
  result: ReadLinesResult;
}

/** Reads everything, checking that line numbers are contiguous across batches and bad lines. */
async function collect(
  input: Readable,
  opts: { maxLineBytes?: number; batchBytes?: number } = {},
  decode = true,
): Promise<Collected> {
  const lines: string[] = [];
  const bad: BadLine[] = [];
  let batches = 0;
  let next = 1;
  const result = await readLineBatches(
    decode ? decodedChunks(input) : input,
    { source: 'test', ...opts },
    async (batch, first) => {
      assert.equal(first, next, 'batches are contiguous');
      assert.ok(batch.length > 0);
      next += batch.length;
      batches++;
      lines.push(...batch);
      await new Promise((resolve) => setImmediate(resolve)); // an asynchronous consumer
    },
    (b) => {
      assert.equal(b.lineNo, next, 'bad lines take their place in the numbering');
      next++;
      bad.push(b);
    },
  );
  assert.equal(result.lines, next - 1, 'every line accounted for exactly once');
  return { lines, bad, batches, result };
}

/** A stream of `data` in chunks of `size` bytes. */
function chunked(data: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) parts.push(data.subarray(i, i + size));
  return Readable.from(parts);
}

function sampleLines(count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(`line ${i} ${'x'.repeat(i % 97)} é✿ end`);
  return out;
}

test('plain text: LF, CRLF, empty lines, no final LF', async () => {
  const c = await collect(chunked(Buffer.from('a\r\nb\n\n\r\nc\rd\ne'), 3));
  assert.deepEqual(c.lines, ['a', 'b', '', '', 'c\rd', 'e']);
  assert.deepEqual(c.bad, []);
  assert.deepEqual(c.result, { lines: 6, bytes: 13 });

  const ends = await collect(Readable.from([Buffer.from('x\ny\n')]));
  assert.deepEqual(ends.lines, ['x', 'y']);
  assert.deepEqual((await collect(Readable.from([]))).result, { lines: 0, bytes: 0 });
  assert.deepEqual((await collect(Readable.from([Buffer.from([0x1f])]))).lines, ['\x1f']);
});

test('gzip, chunked in many ways, gives the same lines', async () => {
  const lines = sampleLines(5000);
  const text = Buffer.from(lines.join('\n') + '\n');
  const gz = gzipSync(text);
  for (const size of [1, 7, 4096, 65536, gz.length]) {
    if (size === 1) {
      const small = sampleLines(50);
      const c = await collect(chunked(gzipSync(small.join('\r\n') + '\r\n'), 1));
      assert.deepEqual(c.lines, small);
      continue;
    }
    const c = await collect(chunked(gz, size), { batchBytes: 10_000 });
    assert.deepEqual(c.lines, lines, `chunk size ${size}`);
    assert.equal(c.result.bytes, text.length);
    assert.equal(c.result.inputError, undefined);
    assert.ok(c.batches > 10);
  }
});

test('concatenated gzip members', async () => {
  const data = Buffer.concat([gzipSync('a\nb\nx'), gzipSync('y\nc\n'), gzipSync(''), gzipSync('d')]);
  const c = await collect(chunked(data, 5));
  assert.deepEqual(c.lines, ['a', 'b', 'xy', 'c', 'd']);
  assert.equal(c.result.inputError, undefined);
  // Trailing zero padding (e.g. after a crash) is ignored, as gzip(1) does.
  const padded = await collect(Readable.from([gzipSync('a\nb\n'), Buffer.alloc(4096)]));
  assert.deepEqual(padded.lines, ['a', 'b']);
  assert.equal(padded.result.inputError, undefined);
});

test('the corrupted uploader fixture gives exactly the recovered lines', async () => {
  const recovered = await collect(createReadStream(fixturePath('spade/uploader-minute-watched.v0.recovered.gz')));
  assert.equal(recovered.result.inputError, undefined);
  assert.equal(recovered.lines.length, 7504);

  const c = await collect(createReadStream(fixturePath('spade/uploader-minute-watched.v0.corrupted.gz')));
  assert.ok(c.result.inputError?.includes('test:'), c.result.inputError);
  assert.deepEqual(c.lines, recovered.lines);
  assert.equal(c.bad.length, 1);
  assert.equal(c.bad[0].reason, 'truncated_input');
  assert.equal(c.bad[0].lineNo, 7505);
  assert.equal(c.result.lines, 7505);
  assert.ok(c.bad[0].text.length > 0);
  // The torn line is a prefix of a row: it starts like the others.
  assert.ok(c.bad[0].text.startsWith('"2017-'), c.bad[0].text.slice(0, 40));
  assert.ok(!c.bad[0].text.includes('\n'));
  assert.equal(c.result.bytes, recovered.result.bytes + Buffer.byteLength(c.bad[0].text));
});

test('a gzip cut at many points: complete lines delivered, torn line reported', async () => {
  const lines = sampleLines(3000);
  const gz = gzipSync(lines.join('\n') + '\n');
  for (const fraction of [0.05, 0.3, 0.61, 0.9, 0.999]) {
    const cut = gz.subarray(0, Math.floor(gz.length * fraction));
    const c = await collect(chunked(cut, 1000));
    assert.ok(c.result.inputError, `cut at ${fraction}`);
    // zlib can only emit what the cut bytes decode to; we must deliver all of it.
    let available: Buffer;
    try {
      available = gunzipSync(cut, { finishFlush: 2 /* Z_SYNC_FLUSH */ });
    } catch {
      assert.fail('sync gunzip of a cut stream');
    }
    const complete = available
      .subarray(0, available.lastIndexOf(10) + 1)
      .toString('utf8')
      .split('\n')
      .slice(0, -1);
    assert.deepEqual(c.lines, complete, `cut at ${fraction}`);
    assert.deepEqual(c.lines, lines.slice(0, c.lines.length));
    const torn = available.subarray(available.lastIndexOf(10) + 1).toString('utf8');
    if (torn === '') assert.deepEqual(c.bad, []);
    else {
      assert.deepEqual(c.bad, [{ lineNo: c.lines.length + 1, reason: 'truncated_input', text: torn }]);
      assert.ok(lines[c.lines.length].startsWith(torn));
    }
  }
});

test('corrupt gzip data and binary garbage never throw', async () => {
  const gz = gzipSync(sampleLines(2000).join('\n') + '\n');
  const flipped = Buffer.from(gz);
  flipped[Math.floor(gz.length / 2)] ^= 0xff;
  const c = await collect(chunked(flipped, 4096));
  assert.ok(c.result.inputError);

  const garbageGz = Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.from('not really gzip\nat all\n')]);
  const g = await collect(Readable.from([garbageGz]));
  assert.ok(g.result.inputError);
  assert.deepEqual(g.lines, []);

  // Random bytes (not starting with the gzip magic): one line per LF, all decoded.
  const rand = prng(7);
  const bin = Buffer.alloc(1_000_000);
  for (let i = 0; i < bin.length; i++) bin[i] = Math.floor(rand() * 256);
  bin[0] = 0x41;
  let lf = 0;
  for (const b of bin) if (b === 10) lf++;
  const lastIsLf = bin[bin.length - 1] === 10;
  const r = await collect(chunked(bin, 65536));
  assert.equal(r.result.inputError, undefined);
  assert.equal(r.result.bytes, bin.length);
  assert.equal(r.lines.length, lf + (lastIsLf ? 0 : 1));
  assert.ok(r.lines.some((l) => l.includes('\uFFFD')));
});

test('invalid UTF-8 becomes U+FFFD, split characters are joined', async () => {
  const c = await collect(
    Readable.from([Buffer.from([0x61, 0xff, 0x62, 0x0a, 0xc3, 0x0a, 0xc3]), Buffer.from([0xa9, 0x0a, 0xe2, 0x9c])]),
  );
  assert.deepEqual(c.lines, ['a\uFFFDb', '\uFFFD', 'é', '\uFFFD']);
  const bytes = Buffer.from('é✿😀\né✿😀\n');
  const one = await collect(chunked(bytes, 1));
  assert.deepEqual(one.lines, ['é✿😀', 'é✿😀']);
});

test('a large chunk is decoded and handed over in pieces of whole lines', async () => {
  // Varied lengths and multi-byte characters, so piece ends fall everywhere; one
  // line longer than a piece in the middle.
  const lines = sampleLines(20_000);
  lines[7000] = 'L✿'.repeat(DECODE_BYTES);
  const data = Buffer.from(lines.join('\n') + '\n');
  const got: string[] = [];
  const batchBytes: number[] = [];
  const result = await readLineBatches(
    Readable.from([data]),
    { source: 'test' },
    (batch) => {
      got.push(...batch);
      batchBytes.push(Buffer.byteLength(batch.join('\n')));
    },
    () => assert.fail('no bad lines'),
  );
  assert.deepEqual(got, lines);
  assert.equal(result.lines, lines.length);
  // Batches are the pieces: at most DECODE_BYTES each, except the long line's own.
  const oversized = batchBytes.filter((n) => n > DECODE_BYTES);
  assert.deepEqual(oversized, [Buffer.byteLength(lines[7000]!)]);
  const rest = data.length - oversized[0]!;
  assert.ok(batchBytes.length > rest / DECODE_BYTES, `${batchBytes.length} batches`);
});

test('a 5 MB line among short ones', async () => {
  const big = 'B'.repeat(5 * 1024 * 1024);
  const data = Buffer.from(`first\n${big}\r\nlast\n`);
  for (const size of [65536, 16 * 1024 * 1024]) {
    const c = await collect(chunked(data, size), {}, false);
    assert.equal(c.lines.length, 3);
    assert.equal(c.lines[0], 'first');
    assert.equal(c.lines[1], big);
    assert.equal(c.lines[2], 'last');
  }
  const gz = await collect(Readable.from([gzipSync(data)]));
  assert.equal(gz.lines[1].length, big.length);
});

test('lines over maxLineBytes are reported, not buffered', async () => {
  const max = 100;
  const long = (n: number, ch: string) => ch.repeat(n);
  const input = [
    'ok1',
    long(150, 'a'),
    'ok2',
    long(100, 'b'),
    long(101, 'c'),
    long(1000, 'd'),
    '',
    'ok3',
    long(500, 'e'),
  ];
  const data = Buffer.from(input.join('\n'));
  for (const size of [64, 4096, data.length]) {
    const c = await collect(chunked(data, size), { maxLineBytes: max }, false);
    assert.deepEqual(c.lines, ['ok1', 'ok2', long(100, 'b'), '', 'ok3'], `chunk ${size}`);
    assert.deepEqual(
      c.bad.map((b) => [b.lineNo, b.reason, b.text]),
      [
        [2, 'line_too_long', long(150, 'a')],
        [5, 'line_too_long', long(101, 'c')],
        [6, 'line_too_long', long(1000, 'd')],
        [9, 'line_too_long', long(500, 'e')],
      ],
      `chunk ${size}`,
    );
    assert.equal(c.result.lines, input.length);
  }

  // The report keeps only the first 1 MiB of a huge line.
  const huge = Buffer.from('h'.repeat(3 * 1024 * 1024) + '\nafter\n');
  const h = await collect(chunked(huge, 65536), { maxLineBytes: 1024 * 1024 }, false);
  assert.deepEqual(h.lines, ['after']);
  assert.equal(h.bad.length, 1);
  assert.equal(h.bad[0].text.length, 1024 * 1024);
  const h2 = await collect(Readable.from([huge]), { maxLineBytes: 2 * 1024 * 1024 }, false);
  assert.equal(h2.bad[0].text.length, 1024 * 1024);
});

test('a failing source: lines before the failure delivered, torn line reported', async () => {
  async function* source(): AsyncGenerator<Buffer> {
    yield Buffer.from('one\ntwo\nthr');
    yield Buffer.from('ee\nfo');
    throw new Error('connection reset');
  }
  const c = await collect(Readable.from(source()), {}, false);
  assert.deepEqual(c.lines, ['one', 'two', 'three']);
  assert.deepEqual(c.bad, [{ lineNo: 4, reason: 'truncated_input', text: 'fo' }]);
  assert.match(c.result.inputError ?? '', /connection reset/);

  const viaDecoded = await collect(Readable.from(source()));
  assert.deepEqual(viaDecoded.lines, ['one', 'two', 'three']);
  assert.match(viaDecoded.result.inputError ?? '', /connection reset/);
});

test('a throwing callback rejects (programming error) and releases the input', async () => {
  const raw = Readable.from([Buffer.from('a\nb\n')]);
  const input = decodedChunks(raw);
  await assert.rejects(
    readLineBatches(
      input,
      { source: 't' },
      () => {
        throw new Error('boom');
      },
      () => undefined,
    ),
    /boom/,
  );
  assert.ok(raw.destroyed);
});

test('a slow reader of a truncated gzip gets every line decodable before the cut', async () => {
  const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i} ${'x'.repeat(i % 97)}`);
  const gz = gzipSync(lines.join('\n') + '\n');
  const cut = gz.subarray(0, Math.floor(gz.length * 0.7));
  const read = async (delayMs: number): Promise<{ delivered: number; bad: number }> => {
    let delivered = 0;
    let bad = 0;
    await readLineBatches(
      decodedChunks(Readable.from([cut])),
      { source: 'cut', batchBytes: 4096 },
      async (batch) => {
        delivered += batch.length;
        if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      },
      () => void bad++,
    );
    return { delivered, bad };
  };
  const fast = await read(0);
  const slow = await read(2);
  assert.ok(fast.delivered > 10_000, `delivered ${fast.delivered}`);
  assert.deepEqual(slow, fast);
});

test('the fixture gzip decodes identically to zlib', async () => {
  const raw = readFileSync(fixturePath('spade/uploader-minute-watched.v0.recovered.gz'));
  const expected = gunzipSync(raw).toString('utf8').split('\n').slice(0, -1);
  const c = await collect(chunked(raw, 8192), { batchBytes: 50_000 });
  assert.deepEqual(c.lines, expected);
});
