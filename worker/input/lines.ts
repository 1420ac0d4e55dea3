/**
 * Lines from a (gzip or plain) byte stream, in batches, with bounded memory and
 * no crash on any input.
 *
 * Accounting: every line of the input is either delivered in a batch or
 * reported once via onBadLine, and line numbers are 1-based and contiguous
 * within a batch. Empty lines are delivered like any other line (the caller's
 * edge parser rejects them as `empty_line`), so batches never split on them.
 * A final line without a trailing LF is delivered when the input ends cleanly.
 *
 * Known limit: when zlib hits corrupt data (not mere truncation) it may drop
 * the output it produced during that same write (at most one 16 KiB output
 * buffer); lines inside it are neither delivered nor reported — only the
 * inputError tells. Truncated gzip (the usual crash damage) loses nothing.
 */
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

const MiB = 1024 * 1024;
const LF = 10;
const CR = 13;
/** How much of an over-long line is kept for the bad-line report. */
const TOO_LONG_HEAD_BYTES = MiB;

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError(`expected a byte stream, got a chunk of type ${typeof chunk}`);
}

/**
 * Bytes are written into zlib in pieces of this size (see gunzipChunks). Each
 * piece costs the transform thread one thread-pool round trip that it waits
 * for (0.5-1.5 ms, measured): on 8 files of the benchmark corpus, 16 KiB pieces
 * made one thread wait 1.15 s of a 10.6 s run, 64 KiB pieces 0.45 s of 6.8 s.
 * The price is the known limit below: corrupt data loses up to one piece's output.
 */
export const FEED_BYTES = 64 * 1024;

/**
 * Complete lines are decoded, and handed over, in pieces of about this many
 * bytes. Every line of a piece is a slice of the piece's string, so that string
 * lives until the piece's batch is processed. V8 puts strings above ~128 KiB
 * in its large-object space, where one that survives a young-generation
 * collection moves to the old generation at once: with whole decoded chunks
 * (up to 1 MiB), about 1 MiB was promoted per scavenge and full collections
 * ran about once a second. Small pieces die young.
 */
export const DECODE_BYTES = 64 * 1024;

/**
 * zlib's output buffer, by default: larger than one piece inflates to (edge logs
 * compress 5-9:1), so a piece is mostly one thread-pool round trip, not one per
 * chunkSize of output (see FEED_BYTES).
 */
export const GUNZIP_OUTPUT_BYTES = 1024 * 1024;

export interface GunzipOptions {
  /** zlib's output buffer (chunkSize); GUNZIP_OUTPUT_BYTES by default. */
  outputBytes?: number;
}

/**
 * The bytes of `raw`, gunzipped when they start with the gzip magic (1f 8b).
 * Concatenated gzip members (`gzip -c a >> f`) and trailing zero padding are
 * handled by zlib. On damage every byte decoded before it is yielded, then the
 * error is thrown (zlib's, code Z_*; or the source's own, as is). An async
 * generator rather than a stream on purpose: a stream destroyed by an error
 * drops the data still buffered in it, so a slow reader would lose the tail of
 * a truncated file.
 */
export async function* decodedChunks(raw: Readable, opts: GunzipOptions = {}): AsyncGenerator<Buffer> {
  const it = raw[Symbol.asyncIterator]() as AsyncIterator<unknown>;
  let head: Buffer = Buffer.alloc(0);
  try {
    while (head.length < 2) {
      const r = await it.next();
      if (r.done) {
        if (head.length > 0) yield head;
        return;
      }
      const b = toBuffer(r.value);
      head = head.length === 0 ? b : Buffer.concat([head, b]);
    }
    async function* all(): AsyncGenerator<Buffer> {
      yield head;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield toBuffer(r.value);
      }
    }
    if (head[0] !== 0x1f || head[1] !== 0x8b) {
      yield* all();
      return;
    }
    yield* gunzipChunks(all(), opts);
  } finally {
    // Stopping early (consumer gone, error): release the source.
    if (!raw.destroyed) raw.destroy();
  }
}

/**
 * The gunzipped bytes of `chunks` (concatenated gzip members included). On
 * damage it yields everything zlib decoded before it, then throws zlib's error
 * (code 'Z_BUF_ERROR' for a truncated stream, 'Z_DATA_ERROR' for corrupt
 * data); an error of `chunks` itself is rethrown as is. A reader as slow as it
 * likes loses nothing: no more input is written until the output of the
 * previous write was taken. Known limit (zlib): on corrupt data the output of
 * the failing write (at most FEED_BYTES of input) is lost; truncation loses nothing.
 */
export async function* gunzipChunks(chunks: AsyncIterable<Buffer>, opts: GunzipOptions = {}): AsyncGenerator<Buffer> {
  const gunzip = createGunzip({ chunkSize: opts.outputBytes ?? GUNZIP_OUTPUT_BYTES });
  let out: Buffer[] = [];
  let failure: Error | null = null;
  // Flowing mode: each output buffer arrives here as zlib produces it, never parked in the stream's buffer.
  gunzip.on('data', (c: Buffer) => out.push(c));
  const finished = new Promise<void>((resolve) => {
    gunzip.once('end', resolve);
    gunzip.once('error', (err: Error) => {
      failure = err;
      resolve();
    });
  });
  const take = (): Buffer[] => {
    const taken = out;
    out = [];
    return taken;
  };
  // The write in flight: zlib inflates the next piece (on libuv's thread pool)
  // while the consumer works through the output of the previous one.
  let inFlight: Promise<unknown> | null = null;
  try {
    feed: for await (const chunk of chunks) {
      for (let off = 0; off < chunk.length; off += FEED_BYTES) {
        let ready: Buffer[] = [];
        if (inFlight !== null) {
          await inFlight;
          ready = take();
          if (failure) {
            yield* ready;
            break feed;
          }
        }
        // The callback runs once this piece was processed (or zlib failed); its output was emitted before.
        const written = new Promise<void>((resolve) =>
          gunzip.write(chunk.subarray(off, off + FEED_BYTES), () => resolve()),
        );
        inFlight = Promise.race([written, finished]);
        yield* ready;
      }
    }
    if (inFlight !== null) await inFlight;
    // Only this empty final flush sees Z_FINISH; on a truncated stream it fails without losing output.
    if (!failure) gunzip.end();
    await finished;
    yield* take();
    if (failure) throw failure;
  } finally {
    if (!gunzip.destroyed) gunzip.destroy();
  }
}

export interface ReadLinesOptions {
  /** Name of the input (file/key) for messages. */
  source: string;
  /** Longer lines are reported as `line_too_long` (default 64 MiB). */
  maxLineBytes?: number;
  /**
   * Bytes of line text at which a batch is handed over (default 1 MiB); a batch
   * also ends with each decoded piece of an input chunk (DECODE_BYTES).
   */
  batchBytes?: number;
}

export interface BadLine {
  lineNo: number;
  reason: 'line_too_long' | 'truncated_input';
  /** The line's text, at most its first 1 MiB. */
  text: string;
}

export interface ReadLinesResult {
  /** Lines seen: delivered + reported bad. */
  lines: number;
  /** Bytes read (after decompression). */
  bytes: number;
  /** Set when the stream failed (corrupt/truncated gzip, read error); lines before it were delivered. */
  inputError?: string;
  /**
   * True when the input's bytes were damaged (zlib: truncated or corrupt gzip);
   * false when reading failed (a missing file, a dropped connection), which a
   * caller should retry rather than accept as the end of the input.
   */
  inputDamaged?: boolean;
}

/**
 * Splits `input` on LF (a trailing CR is stripped), decodes UTF-8 (invalid
 * bytes become U+FFFD) and hands complete lines to onBatch, awaiting it (that
 * is the backpressure). Resolves, never rejects, for bad data or a failing
 * stream (see `inputError`); rejects only if a callback throws.
 */
export async function readLineBatches(
  input: Readable | AsyncIterable<Buffer>,
  opts: ReadLinesOptions,
  onBatch: (lines: string[], firstLineNo: number) => void | Promise<void>,
  onBadLine: (bad: BadLine) => void,
): Promise<ReadLinesResult> {
  const maxLineBytes = opts.maxLineBytes ?? 64 * MiB;
  const batchBytes = opts.batchBytes ?? MiB;

  let lineNo = 0; // number of the last line delivered or reported
  let bytes = 0;
  let batch: string[] = [];
  let batchLen = 0;
  // The current incomplete line: pieces and their total length, or, once it
  // exceeded maxLineBytes, only its head (tooLongHead !== null).
  let pending: Buffer[] = [];
  let pendingLen = 0;
  let tooLongHead: Buffer | null = null;

  async function flush(): Promise<void> {
    if (batch.length === 0) return;
    const lines = batch;
    const first = lineNo - lines.length + 1;
    batch = [];
    batchLen = 0;
    await onBatch(lines, first);
  }

  function pushLine(line: string): Promise<void> | undefined {
    if (line.length > 0 && line.charCodeAt(line.length - 1) === CR) line = line.slice(0, -1);
    batch.push(line);
    lineNo++;
    batchLen += line.length + 1;
    return batchLen >= batchBytes ? flush() : undefined;
  }

  async function reportBad(reason: BadLine['reason'], text: Buffer): Promise<void> {
    await flush(); // batches hold contiguous line numbers
    lineNo++;
    onBadLine({ lineNo, reason, text: text.toString('utf8') });
  }

  /** Adds bytes of the current (still unterminated) line, switching to head-only past the limit. */
  function appendPending(part: Buffer): void {
    if (part.length === 0) return;
    if (tooLongHead !== null) {
      if (tooLongHead.length < TOO_LONG_HEAD_BYTES) {
        tooLongHead = Buffer.concat([tooLongHead, part.subarray(0, TOO_LONG_HEAD_BYTES - tooLongHead.length)]);
      }
      return;
    }
    pending.push(part);
    pendingLen += part.length;
    if (pendingLen > maxLineBytes) {
      const joined = Buffer.concat(pending, Math.min(pendingLen, TOO_LONG_HEAD_BYTES));
      // Copy so the (possibly large) source chunks can be collected.
      tooLongHead = Buffer.from(joined);
      pending = [];
      pendingLen = 0;
    }
  }

  /** Ends the current line at an LF (its final part is `tail`). */
  async function endPendingLine(tail: Buffer): Promise<void> {
    appendPending(tail);
    if (tooLongHead !== null) {
      const head = tooLongHead;
      tooLongHead = null;
      await reportBad('line_too_long', head);
      return;
    }
    const line = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingLen);
    pending = [];
    pendingLen = 0;
    await pushLine(line.toString('utf8'));
  }

  /** Complete lines in `seg` (LF-separated, no final LF), all of which may be too long. */
  async function slowLines(seg: Buffer): Promise<void> {
    let start = 0;
    for (;;) {
      const nl = seg.indexOf(LF, start);
      const end = nl < 0 ? seg.length : nl;
      if (end - start > maxLineBytes) {
        await reportBad('line_too_long', seg.subarray(start, Math.min(end, start + TOO_LONG_HEAD_BYTES)));
      } else await pushLine(seg.toString('utf8', start, end));
      if (nl < 0) return;
      start = nl + 1;
    }
  }

  /**
   * Complete lines in `seg` (LF-separated, no final LF), none too long: one
   * UTF-8 decode per piece of about DECODE_BYTES that ends at an LF (so no
   * multi-byte character is split), and each piece's lines handed over as a
   * batch of their own (see DECODE_BYTES).
   */
  async function fastLines(seg: Buffer): Promise<void> {
    let start = 0;
    while (start <= seg.length) {
      let end = seg.length;
      if (end - start > DECODE_BYTES) {
        // The last LF within the piece; a line longer than a piece makes a piece of its own.
        const nl = seg.lastIndexOf(LF, start + DECODE_BYTES);
        end = nl >= start ? nl : seg.indexOf(LF, start + DECODE_BYTES);
        if (end < 0) end = seg.length;
      }
      const lines = seg.toString('utf8', start, end).split('\n');
      for (let i = 0; i < lines.length; i++) {
        const p = pushLine(lines[i]!);
        if (p !== undefined) await p;
      }
      await flush();
      start = end + 1;
    }
  }

  async function onChunk(chunk: Buffer): Promise<void> {
    let pos = 0;
    if (pendingLen > 0 || tooLongHead !== null) {
      const nl = chunk.indexOf(LF);
      if (nl < 0) {
        appendPending(chunk);
        return;
      }
      await endPendingLine(chunk.subarray(0, nl));
      pos = nl + 1;
    }
    const lastNl = chunk.lastIndexOf(LF);
    if (lastNl >= pos) {
      const seg = chunk.subarray(pos, lastNl);
      if (seg.length <= maxLineBytes) {
        await fastLines(seg);
      } else {
        await slowLines(seg);
      }
      pos = lastNl + 1;
    }
    if (pos < chunk.length) appendPending(chunk.subarray(pos));
  }

  let inputError: string | undefined;
  let inputDamaged = false;
  const it = input[Symbol.asyncIterator]() as AsyncIterator<unknown>;
  let finished = false;
  try {
    for (;;) {
      let r: IteratorResult<unknown>;
      try {
        r = await it.next();
      } catch (err) {
        inputError = `${opts.source}: ${(err as Error).message ?? String(err)} (after ${bytes} bytes, line ${lineNo})`;
        // zlib's errors carry Z_* codes (Z_BUF_ERROR for a truncated stream, Z_DATA_ERROR...).
        inputDamaged = String((err as { code?: unknown }).code ?? '').startsWith('Z_');
        break;
      }
      if (r.done) break;
      const chunk = toBuffer(r.value);
      bytes += chunk.length;
      await onChunk(chunk);
      // Hand over the chunk's lines before waiting for the next chunk: gunzip
      // inflates the next piece on the thread pool meanwhile (gunzipChunks), and
      // that overlap is lost if lines pile up until batchBytes first.
      await flush();
    }
    // The last line has no LF. An over-long one is reported as such even if
    // the input also broke off inside it (one report per line).
    if (tooLongHead !== null) {
      const head = tooLongHead;
      tooLongHead = null;
      await reportBad('line_too_long', head);
    } else if (pendingLen > 0) {
      const text = Buffer.concat(pending, pendingLen);
      pending = [];
      pendingLen = 0;
      if (inputError !== undefined) await reportBad('truncated_input', text.subarray(0, TOO_LONG_HEAD_BYTES));
      else await pushLine(text.toString('utf8'));
    }
    await flush();
    finished = true;
  } finally {
    if (!finished) {
      if (input instanceof Readable) {
        if (!input.destroyed) input.destroy();
      } else {
        await it.return?.();
      }
    }
  }
  return inputError === undefined ? { lines: lineNo, bytes } : { lines: lineNo, bytes, inputError, inputDamaged };
}
