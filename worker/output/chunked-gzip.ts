/**
 * One gzip file built from chunks compressed synchronously on the calling
 * thread, the way pigz builds its output: each chunk is deflated on its own
 * (level as given, the previous 32 KiB as preset dictionary, so the ratio is
 * that of one long stream) and ended with a sync flush, which leaves the
 * deflate stream on a byte boundary without ending it. Header + the chunks'
 * deflate blocks + a final empty block + CRC-32/length trailer is then one
 * ordinary gzip member, read by gzip, zlib, PostgreSQL tools and Redshift alike.
 *
 * Why not a zlib stream per file: a transform thread keeps dozens of files open,
 * and zlib streams compress on libuv's thread pool, so one transform thread used
 * more than one core (and threads competed for the pool); each open stream also
 * holds ~300 KiB of zlib state. Here a transform thread is exactly one core of
 * work, the state is transient, and the cost is the same compression time.
 * A torn file (hard kill mid-write) still decodes up to its last whole chunk.
 */
import { constants, crc32, deflateRawSync } from 'node:zlib';

/** Gzip header: deflate, no flags, no mtime, no extra flags, OS "unknown". */
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);
/** A final (BFINAL=1), empty block with fixed Huffman codes: ends the deflate stream. */
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);
/** Deflate's window: back-references reach at most this far. */
const WINDOW = 32 * 1024;

export class ChunkedGzip {
  private crc = 0;
  private length = 0;
  /** The last WINDOW bytes compressed so far (a copy: callers reuse their buffers). */
  private dictionary: Buffer | null = null;
  private started = false;

  constructor(private readonly level: number) {
    if (!Number.isInteger(level) || level < 0 || level > 9) throw new Error(`gzip level must be 0..9, got ${level}`);
  }

  /** The compressed bytes for `chunk`, preceded by the gzip header on the first call. */
  compress(chunk: Buffer): Buffer {
    const opts: { level: number; finishFlush: number; dictionary?: Buffer } = {
      level: this.level,
      finishFlush: constants.Z_SYNC_FLUSH,
    };
    if (this.dictionary !== null) opts.dictionary = this.dictionary;
    const deflated = deflateRawSync(chunk, opts);
    this.crc = crc32(chunk, this.crc);
    this.length = (this.length + chunk.length) >>> 0; // ISIZE is the length modulo 2^32
    this.remember(chunk);
    if (this.started) return deflated;
    this.started = true;
    return Buffer.concat([HEADER, deflated]);
  }

  /** The bytes that end the file (with the header when nothing was compressed: an empty gzip file). */
  finish(): Buffer {
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.crc >>> 0, 0);
    trailer.writeUInt32LE(this.length, 4);
    return Buffer.concat(this.started ? [FINAL_BLOCK, trailer] : [HEADER, FINAL_BLOCK, trailer]);
  }

  private remember(chunk: Buffer): void {
    if (chunk.length >= WINDOW) {
      this.dictionary = Buffer.from(chunk.subarray(chunk.length - WINDOW));
    } else {
      const prev = this.dictionary ?? Buffer.alloc(0);
      const joined = Buffer.concat([prev, chunk]);
      this.dictionary = Buffer.from(joined.subarray(Math.max(0, joined.length - WINDOW)));
    }
  }
}
