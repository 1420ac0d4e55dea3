import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createGunzip, gunzipSync } from 'node:zlib';
import { ChunkedGzip } from '../../../worker/output/chunked-gzip.js';

function pseudoRandomText(bytes: number, seed: number): Buffer {
  // Table-like text (repeats, so the dictionary matters) with some noise.
  let x = seed;
  const words = ['video', 'play', '\t', 'en-US', '1699145100', '\n', 'chrome', 'ios', '42', 'ü', '日本'];
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    x = (x * 1103515245 + 12345) >>> 0;
    const w = words[x % words.length]! + (x % 7 === 0 ? String(x) : '');
    parts.push(w);
    n += Buffer.byteLength(w);
  }
  return Buffer.from(parts.join('')).subarray(0, bytes);
}

function compressInChunks(data: Buffer, sizes: number[], level = 1): Buffer {
  const gz = new ChunkedGzip(level);
  const out: Buffer[] = [];
  let off = 0;
  for (let i = 0; off < data.length; i++) {
    const size = sizes[i % sizes.length]!;
    out.push(gz.compress(data.subarray(off, off + size)));
    off += size;
  }
  out.push(gz.finish());
  return Buffer.concat(out);
}

describe('ChunkedGzip', () => {
  it('gives one gzip member that zlib and gzip(1) decode to the exact input', () => {
    const data = pseudoRandomText(700_000, 3);
    for (const sizes of [[65_536], [1, 100, 40_000, 7], [200_000]]) {
      for (const level of [0, 1, 6]) {
        const file = compressInChunks(data, sizes, level);
        assert.ok(gunzipSync(file).equals(data), `sizes ${sizes.join(',')} level ${level}`);
      }
    }
    const dir = mkdtempSync(join(tmpdir(), 'chunked-gzip-'));
    try {
      const path = join(dir, 'x.gz');
      writeFileSync(path, compressInChunks(data, [65_536]));
      execFileSync('gzip', ['-t', path]); // throws on a bad CRC, length or structure
      assert.ok(execFileSync('gzip', ['-dc', path], { maxBuffer: 1 << 24 }).equals(data));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('compresses about as well as one zlib stream (the previous 32 KiB is the dictionary)', () => {
    const data = pseudoRandomText(1_000_000, 9);
    const chunked = compressInChunks(data, [65_536]).length;
    const withoutDictionary = [...Array(Math.ceil(data.length / 65_536)).keys()]
      .map((i) => compressInChunks(data.subarray(i * 65_536, (i + 1) * 65_536), [65_536]).length)
      .reduce((a, b) => a + b, 0);
    assert.ok(chunked < withoutDictionary, `${chunked} < ${withoutDictionary}`);
  });

  it('writes a valid empty file when nothing was compressed', () => {
    const empty = new ChunkedGzip(1).finish();
    assert.equal(gunzipSync(empty).length, 0);
  });

  it('leaves a torn file readable up to its last whole chunk', async () => {
    const data = pseudoRandomText(300_000, 5);
    const gz = new ChunkedGzip(1);
    const pieces = [0, 1, 2].map((i) => gz.compress(data.subarray(i * 65_536, (i + 1) * 65_536)));
    // A hard kill: the file ends after the third chunk, no final block, no trailer.
    const torn = Buffer.concat(pieces);
    const got: Buffer[] = [];
    const gunzip = createGunzip();
    gunzip.on('data', (c: Buffer) => got.push(c));
    const failed = new Promise<Error>((resolve) => gunzip.once('error', resolve));
    gunzip.end(torn);
    const err = await failed;
    assert.equal((err as NodeJS.ErrnoException).code, 'Z_BUF_ERROR');
    assert.ok(Buffer.concat(got).equals(data.subarray(0, 3 * 65_536)));
  });

  it('refuses a level outside 0..9', () => {
    assert.throws(() => new ChunkedGzip(10), /gzip level must be 0\.\.9, got 10/);
  });
});
