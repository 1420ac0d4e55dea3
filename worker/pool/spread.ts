/**
 * One or a few inputs spread over every thread of the pool: the main thread
 * reads each input as a stream (gunzipped on libuv's thread pool), cuts the
 * decompressed bytes at line ends into chunks of about `chunkBytes`, and hands
 * each chunk to whichever transform thread asks for one next (chunk-feed.ts).
 * One task per thread, so each thread writes one output series whatever the
 * number of chunks. At most one cut chunk waits for a thread, and each thread
 * holds the one it works on: memory stays flat (threads + 1 chunks, plus the
 * piece being cut) however large the input.
 *
 * Line numbers and sources are the input's own: each chunk carries its
 * source and the number of its first line. Damage (truncated or corrupt gzip)
 * is seen here: the complete lines before it are transformed, the torn last
 * line is quarantined as `truncated_input`, and the input is reported as
 * damaged with the bytes and lines read. A failed read (a missing file, a
 * dropped connection) fails the whole job, as it fails a `urls` task.
 */
import type { Readable } from 'node:stream';
import { decodedChunks } from '../input/lines.js';
import { ChunkFeed, CHUNK_BYTES } from './chunk-feed.js';
import { openUrl } from './open-url.js';
import { collectYoungGeneration } from './young-gc.js';
import type { TransformPool } from './pool.js';
import type { DamagedInput, InputChunk, TaskResult, TransformTask } from './thread.js';

/**
 * The reader's buffers: local files are read, and gunzipped into, pieces of
 * this size instead of the transform threads' 1 MiB (lines.ts, open-url.ts).
 * The main thread allocates almost no JS objects, so V8 rarely collects there
 * and dead Buffers wait for its external-memory limit (~64 MB) to trigger a
 * full collection; smaller Buffers are cheaper to hold and to reuse, but each
 * piece costs a zlib callback on the main thread, which shares the cores with
 * the transform threads. Measured on the benchmark's single file (276 MB of
 * edge lines) with 2 threads on a quiet 2-core machine, 3 runs each: 64/32 KiB
 * 3.29-3.54 s, peak RSS 227-236 MB (zlib callbacks were 8% of the main
 * thread's samples); 128/128 KiB 3.05-3.30 s, 221-248 MB; 256/256 KiB
 * 2.90-2.94 s, 226-239 MB; 1/1 MiB 2.95-3.05 s but 280-298 MB.
 */
export const READER_READ_BYTES = 256 * 1024;
export const READER_GUNZIP_OUTPUT_BYTES = 256 * 1024;
/** Decoded bytes between two young-generation collections of the reader's thread (see young-gc.ts). */
const READER_COLLECT_BYTES = 4 * 1024 * 1024;

/** The transform threads' line limit (worker/input/lines.ts default). */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;
/** How much of an over-long or torn line is kept for its quarantine record (as lines.ts). */
const BAD_LINE_HEAD_BYTES = 1024 * 1024;
const LF = 10;

export interface SpreadInput {
  /** The input's URL or path as read (`stdin` for standard input); quarantine records name it. */
  source: string;
  open(): Promise<Readable>;
}

/** Local paths or s3:// URLs as spread inputs, each opened in the reader's pieces (READER_READ_BYTES). */
export function urlInputs(urls: readonly string[]): SpreadInput[] {
  return urls.map((url) => ({ source: url, open: () => openUrl(url, READER_READ_BYTES) }));
}

export interface SpreadOptions {
  chunkBytes?: number;
}

/**
 * Whether inputs go one file group per task (each thread gunzips its own
 * files) rather than through the chunk reader. With fewer files than a few per
 * thread, the largest group decides the wall time (1 file on 2 threads: one
 * thread idle; 3 files on 2: one thread does two), so the chunks, which split
 * to the line, are faster. With several per thread both keep every thread
 * busy, and files per task win on memory and on many cores: measured on the
 * benchmark's 8 files (138 MB) with 2 threads, a loaded machine, both ran in
 * the same time (3.7 / 5.0 s per task, 3.6 / 4.8 s in chunks) but the chunk
 * reader peaked ~30 MB higher (244 against 214 MB: the main thread's gunzip
 * buffers), and one reader inflates for all threads, a ceiling that per-file
 * gunzip on every thread does not have (see BENCHMARKS.md).
 */
export function filesPerTask(files: number, threads: number): boolean {
  return threads === 1 || files >= threads * FILES_PER_THREAD_FOR_TASKS;
}
/** See filesPerTask. */
const FILES_PER_THREAD_FOR_TASKS = 4;

/** Counts LF bytes in `buf` (memchr-speed indexOf, one call per line). */
function countLines(buf: Uint8Array): number {
  let n = 0;
  for (let i = buf.indexOf(LF); i !== -1; i = buf.indexOf(LF, i + 1)) n++;
  return n;
}

/**
 * Reads one input and sends its chunks; returns its damage, if any. Throws
 * when reading fails (not damage) or a task failed.
 */
async function sendInput(input: SpreadInput, feed: ChunkFeed): Promise<DamagedInput | null> {
  const { chunkBytes } = feed;
  const { source } = input;
  let raw: Readable;
  try {
    raw = await input.open();
  } catch (err) {
    throw new Error(`reading ${source} failed: ${(err as Error).message}`, { cause: err });
  }
  let lineNo = 1; // of the first line not sent yet
  let bytes = 0;
  let pieces: Buffer[] = [];
  let pendingBytes = 0;
  // The first this many pieces hold no LF (so a line longer than a chunk is scanned once, not once per piece).
  let piecesWithoutLf = 0;
  // An over-long line being skipped: its head and its length so far.
  let tooLong = null as { head: Buffer; bytes: number } | null;

  const { buffers } = feed;
  const sendLines = async (
    chunk: { data: ArrayBuffer; length: number },
    lines: number,
    bad?: InputChunk['bad'],
    last?: boolean,
  ): Promise<void> => {
    await feed.send({ source, ...chunk, firstLineNo: lineNo, bad, last });
    lineNo += lines + (bad ? 1 : 0);
  };
  // A fresh one each time: a moved buffer cannot be moved again.
  const noLines = (): { data: ArrayBuffer; length: number } => ({ data: new ArrayBuffer(0), length: 0 });

  /** Sends the complete lines of `pieces`, keeping the unterminated rest. */
  const cut = async (): Promise<void> => {
    for (let k = pieces.length - 1; k >= piecesWithoutLf; k--) {
      const lf = pieces[k]!.lastIndexOf(LF);
      if (lf === -1) continue;
      const chunk = buffers.fill(pieces.slice(0, k), pieces[k]!.subarray(0, lf + 1));
      const rest = pieces[k]!.subarray(lf + 1);
      pieces = rest.length > 0 ? [rest, ...pieces.slice(k + 1)] : pieces.slice(k + 1);
      piecesWithoutLf = pieces.length;
      pendingBytes -= chunk.length;
      await sendLines(chunk, countLines(new Uint8Array(chunk.data, 0, chunk.length)));
      return;
    }
    piecesWithoutLf = pieces.length;
    if (pendingBytes > MAX_LINE_BYTES) {
      // One line longer than the limit: keep its head only, skip the rest up to its LF.
      const head = Buffer.concat(pieces, pendingBytes).subarray(0, BAD_LINE_HEAD_BYTES);
      tooLong = { head: Buffer.from(head), bytes: pendingBytes };
      pieces = [];
      pendingBytes = 0;
      piecesWithoutLf = 0;
    }
  };

  const endTooLong = async (lineBytes: number): Promise<void> => {
    const { head } = tooLong!;
    tooLong = null;
    const text = head.toString('utf8');
    await sendLines(noLines(), 0, { reason: 'line_too_long', text, bytes: lineBytes });
  };

  let damage: string | null = null;
  try {
    let collectAt = READER_COLLECT_BYTES;
    for await (let piece of decodedChunks(raw, { outputBytes: READER_GUNZIP_OUTPUT_BYTES })) {
      bytes += piece.length;
      if (bytes >= collectAt) {
        collectAt = bytes + READER_COLLECT_BYTES;
        collectYoungGeneration();
      }
      if (tooLong !== null) {
        const lf = piece.indexOf(LF);
        if (lf === -1) {
          tooLong.bytes += piece.length;
          continue;
        }
        await endTooLong(tooLong.bytes + lf + 1);
        piece = piece.subarray(lf + 1);
      }
      pieces.push(piece);
      pendingBytes += piece.length;
      if (pendingBytes >= chunkBytes) await cut();
    }
  } catch (err) {
    if (feed.failure) throw feed.failure;
    // zlib's errors carry Z_* codes (truncated or corrupt gzip); anything else is a failed read.
    if (!String((err as { code?: unknown }).code ?? '').startsWith('Z_'))
      throw new Error(`reading ${source} failed: ${(err as Error).message}`, { cause: err });
    damage = `${source}: ${(err as Error).message} (after ${bytes} bytes, line ${lineNo - 1 + countLines(Buffer.concat(pieces))})`;
  }
  // The end: the complete lines, then the last line without LF (if any) with
  // them, or as torn by the damage, or as too long.
  if (tooLong !== null) {
    await endTooLong(tooLong.bytes);
    await sendLines(noLines(), 0, undefined, true);
  } else {
    const all = buffers.fill(pieces, null);
    pieces = [];
    const view = Buffer.from(all.data, 0, all.length);
    const lf = view.lastIndexOf(LF);
    const tail = view.subarray(lf + 1);
    if (damage !== null && tail.length > 0) {
      const text = tail.subarray(0, BAD_LINE_HEAD_BYTES).toString('utf8');
      const bad = { reason: 'truncated_input' as const, text, bytes: tail.length };
      await sendLines({ data: all.data, length: lf + 1 }, countLines(view), bad, true);
    } else {
      // A last line without LF of a clean input is a line like any other.
      await sendLines(all, countLines(view) + (tail.length > 0 ? 1 : 0), undefined, true);
    }
  }
  if (damage === null) return null;
  return { source, error: damage, bytes, lines: lineNo - 1 };
}

/**
 * Inputs read at once, at most: each has its own gunzip (on libuv's thread
 * pool, 4 threads by default), so several files are inflated in parallel
 * where one reader would be the ceiling (see BENCHMARKS.md); the main thread
 * only cuts and copies. Each reader holds at most one chunk being cut and
 * one waiting for a thread.
 */
const CONCURRENT_READERS = 4;

/**
 * Transforms `inputs` spread over every thread of the pool (one `chunks` task
 * per thread, `taskFor(i)` giving each its output), up to CONCURRENT_READERS
 * of them read at once. Returns the tasks' results merged into one, with the
 * damaged inputs.
 */
export async function spreadInputs(
  pool: TransformPool,
  inputs: SpreadInput[],
  taskFor: (i: number) => Omit<TransformTask, 'input'>,
  opts: SpreadOptions = {},
): Promise<TaskResult> {
  // Pieces of decoded input are at most 1 MiB (gunzip's output buffer, a file read).
  const feed = new ChunkFeed(pool, taskFor, opts.chunkBytes ?? CHUNK_BYTES, 1024 * 1024);
  const damage: (DamagedInput | null)[] = [];
  let readFailure: unknown = null;
  let next = 0;
  const reader = async (): Promise<void> => {
    while (next < inputs.length && readFailure === null) {
      const i = next++;
      try {
        damage[i] = await sendInput(inputs[i]!, feed);
      } catch (err) {
        readFailure ??= err;
        // The other readers stop at their next chunk.
        feed.fail(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(inputs.length, CONCURRENT_READERS) }, reader));
  const result = await feed.finish();
  if (readFailure) throw readFailure;
  return { ...result, inputErrors: damage.filter((d): d is DamagedInput => d !== null && d !== undefined) };
}
