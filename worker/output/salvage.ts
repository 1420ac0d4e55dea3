/**
 * Salvage of an output file torn by a hard kill: the complete lines of a gzip
 * file that may be cut short (or damaged), re-compressed as a valid gzip file.
 *
 * Decompression goes through `decodedStream` of `../input/lines.js`, which
 * feeds zlib chunk by chunk so that a truncated stream yields every byte
 * decoded before the damage (with pipeline(), Node's zlib can drop the last
 * chunk's output together with the error).
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
import { decodedStream } from '../input/lines.js';
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
}

const LF = 0x0a;
const BACKSLASH = 0x5c;
const GZIP_MAGIC = [0x1f, 0x8b] as const;
/** Size of the pieces a Buffer input is fed in: the gunzip sees them one write at a time. */
const FEED_BYTES = 64 * 1024;

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
  const decoded = decodedStream(Readable.from(gzipOnly(source, head)));

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
  try {
    for await (const chunk of decoded) {
      const buf = chunk as Buffer;
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
  }
  gzip.end();
  await gzipDone;

  if (damage === undefined && head.bytes < GZIP_MAGIC.length) {
    damage = head.bytes === 0 ? 'empty file' : 'cut inside the gzip header';
  }
  if (damage === undefined && tailBytes > 0) damage = `last line has no line end (${tailBytes} bytes)`;
  const result: SalvageResult = { data: Buffer.concat(out), lines, droppedBytes: tailBytes, complete: !damage };
  if (damage !== undefined) result.damage = damage;
  return result;
}

function* pieces(buf: Buffer): Generator<Buffer> {
  for (let off = 0; off < buf.length; off += FEED_BYTES) yield buf.subarray(off, off + FEED_BYTES);
}

/**
 * Passes `source` through after checking it starts like gzip (decodedStream
 * would pass anything else through as text). A stream shorter than the magic
 * number is swallowed: it is a file cut inside its header, with nothing to keep.
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
