/**
 * Salvage of an output file torn by a hard kill: the complete lines of a gzip
 * file that may be cut short (or damaged), re-compressed as a valid gzip file.
 *
 * Decompression (`gunzipChunks`) must give every byte decoded before the
 * damage, which Node's streams do not guarantee: with pipeline(), zlib applies
 * Z_FINISH to the last chunk and drops its output with the error; and a stream
 * destroyed by an error drops whatever sat in its read buffer, so a reader
 * slower than zlib loses the tail (reading the fixture through a gunzip stream
 * with a slow reader lost ~580 KB). So the input is written one chunk at a
 * time, output is taken by a 'data' listener the moment zlib emits it, and
 * zlib is ended (with an empty final flush) only after every chunk was
 * processed.
 *
 * Where a line ends depends on the format:
 * - 'tsv' (our row files): at an LF not preceded by an odd number of
 *   backslashes, since an LF inside a field is written as backslash + LF. This
 *   rule is also right for JSON lines, where a raw LF never follows a backslash.
 * - 'jsonl': at every LF.
 *
 * Memory: the decompressed text is never held whole; only the torn tail of the
 * current line and the re-compressed output (the returned Buffer) are kept.
 */
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { FEED_BYTES, gunzipChunks } from '../input/lines.js';
import { DEFAULT_GZIP_LEVEL } from './writers.js';

export interface SalvageOptions {
  /** How line ends are recognised (see above). Default 'tsv'. */
  format?: 'tsv' | 'jsonl';
  /** zlib level of the re-compressed output; default that of the writers. */
  gzipLevel?: number;
}

export interface SalvageResult {
  /** gzip of the complete lines, each ending in its LF (a valid gzip file even with no lines). */
  data: Buffer;
  /** Complete lines kept. */
  lines: number;
  /** Decompressed bytes after the last complete line (the torn line), dropped. */
  droppedBytes: number;
  /** True when the gzip stream decoded to its end without error and its text ended with a complete line. */
  complete: boolean;
  /** Why the input was not complete: the decompression error, or that the last line was torn. */
  damage?: string;
  /**
   * True when zlib found corrupt data (not a mere cut): deflate notices
   * corruption only at an invalid code or at the final CRC check, so the kept
   * lines may include garbage decoded before that. A hard kill only cuts
   * files; a caller should not load a corrupt salvage without a look.
   */
  corrupt: boolean;
}

const LF = 0x0a;
const BACKSLASH = 0x5c;
const GZIP_MAGIC = [0x1f, 0x8b] as const;
/**
 * Compressed bytes per write into the gunzip: the output of one write is held
 * in memory at once (at most ~1000x this for pathological data, ~5x for ours).
 */

/**
 * Failures that are not damage of the file: the input stream failed, or it is
 * not gzip at all. These reject; salvage must not present them as a torn file.
 */
class NotSalvageable extends Error {}

/**
 * The complete lines of the gzip data in `input`, re-gzipped. Damage (a cut or
 * corrupt stream) is not an error: everything decoded before it is kept and
 * `complete` is false. Rejects when the input is not gzip at all, or when
 * reading the input stream fails (that is not damage of the file).
 */
export async function salvageGzip(input: Buffer | Readable, opts: SalvageOptions = {}): Promise<SalvageResult> {
  const tsv = (opts.format ?? 'tsv') === 'tsv';
  const source = Buffer.isBuffer(input) ? Readable.from(pieces(input)) : input;
  const head = { bytes: 0 };
  const decoded = gunzipChunks(gzipOnly(source, head));

  const gzip = createGzip({ level: opts.gzipLevel ?? DEFAULT_GZIP_LEVEL });
  const out: Buffer[] = [];
  gzip.on('data', (c: Buffer) => out.push(c));
  const gzipDone = new Promise<void>((resolve, reject) => {
    gzip.once('end', resolve);
    gzip.once('error', reject);
  });
  const write = async (bytes: Buffer): Promise<void> => {
    if (bytes.length > 0 && !gzip.write(bytes)) await new Promise((resolve) => gzip.once('drain', resolve));
  };

  let lines = 0;
  // Bytes after the last line end seen so far, and (tsv) the backslashes right before the end of the data.
  let tail: Buffer[] = [];
  let tailBytes = 0;
  let trailingBackslashes = 0;
  let damage: string | undefined;
  let corrupt = false;
  try {
    for await (const buf of decoded) {
      let lastEnd = -1;
      for (let lf = buf.indexOf(LF); lf >= 0; lf = buf.indexOf(LF, lf + 1)) {
        if (tsv) {
          let j = lf - 1;
          while (j >= 0 && buf[j] === BACKSLASH) j--;
          let run = lf - 1 - j;
          if (j < 0) run += trailingBackslashes; // the run began in an earlier chunk
          if (run % 2 === 1) continue; // an escaped LF inside a field
        }
        lines++;
        lastEnd = lf;
      }
      if (tsv) {
        let j = buf.length - 1;
        while (j >= 0 && buf[j] === BACKSLASH) j--;
        trailingBackslashes = j < 0 ? trailingBackslashes + buf.length : buf.length - 1 - j;
      }
      if (lastEnd < 0) {
        tail.push(buf);
        tailBytes += buf.length;
        continue;
      }
      for (const t of tail) await write(t);
      await write(buf.subarray(0, lastEnd + 1));
      tail = lastEnd + 1 < buf.length ? [buf.subarray(lastEnd + 1)] : [];
      tailBytes = buf.length - lastEnd - 1;
    }
  } catch (err) {
    if (err instanceof NotSalvageable) {
      gzip.destroy();
      throw err;
    }
    damage = err instanceof Error ? err.message : String(err);
    // zlib says Z_BUF_ERROR ("unexpected end of file") for a cut stream, Z_DATA_ERROR for corrupt data.
    corrupt = (err as { code?: unknown }).code !== 'Z_BUF_ERROR';
  }
  gzip.end();
  await gzipDone;

  if (damage === undefined && head.bytes < GZIP_MAGIC.length) {
    damage = head.bytes === 0 ? 'empty file' : 'cut inside the gzip header';
  }
  if (damage === undefined && tailBytes > 0) damage = `last line has no line end (${tailBytes} bytes)`;
  const result: SalvageResult = {
    data: Buffer.concat(out),
    lines,
    droppedBytes: tailBytes,
    complete: damage === undefined,
    corrupt,
  };
  if (damage !== undefined) result.damage = damage;
  return result;
}

function* pieces(buf: Buffer): Generator<Buffer> {
  for (let off = 0; off < buf.length; off += FEED_BYTES) yield buf.subarray(off, off + FEED_BYTES);
}

/**
 * Passes `source` through after checking it starts like gzip: a file that is
 * not gzip at all is a mistake to report, not damage to salvage. A stream
 * shorter than the magic number is swallowed: it is a file cut inside its
 * header, with nothing to keep.
 */
async function* gzipOnly(source: Readable, head: { bytes: number }): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]() as AsyncIterator<unknown>;
  let first = Buffer.alloc(0);
  const next = async (): Promise<IteratorResult<unknown>> => {
    try {
      return await it.next();
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new NotSalvageable(`reading the file to salvage failed: ${msg}`, { cause: err });
    }
  };
  try {
    for (;;) {
      const r = await next();
      if (r.done) break;
      const b = toBuffer(r.value);
      if (first.length >= GZIP_MAGIC.length) {
        yield b;
        continue;
      }
      first = Buffer.concat([first, b]);
      head.bytes = first.length;
      if (first.length < GZIP_MAGIC.length) continue;
      if (first[0] !== GZIP_MAGIC[0] || first[1] !== GZIP_MAGIC[1]) {
        throw new NotSalvageable(`not a gzip file (starts with ${first.subarray(0, 4).toString('hex')})`);
      }
      yield first;
    }
  } finally {
    if (!source.destroyed) source.destroy();
  }
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  throw new TypeError(`expected a byte stream, got a chunk of type ${typeof chunk}`);
}
