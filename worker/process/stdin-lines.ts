/**
 * Standard input of the continuous processor cut into lines for the pool's
 * threads. Edge lines pass through as bytes, numbered in the order read (runs
 * of source `stdin`). Glob lines (globs.ts) are decoded here, skipped when a
 * duplicate, and their edge lines passed on as a run of their own (source
 * `stdin-glob`, numbered on from the glob's line number, as they always were).
 * Lines that cannot be passed on (a glob that does not decode, a line longer
 * than the threads' limit) are reported here, to be quarantined.
 *
 * Cheap next to the transform: a glob starts with `A`, which no edge line does
 * (globs.ts), so only such lines are decoded to text; the others are only
 * scanned for their LF. Lines are split and trimmed as the threads' reader
 * does (lines.ts): at LF, a trailing CR dropped, invalid UTF-8 as U+FFFD.
 */
import { MAX_LINE_BYTES } from '../pool/spread.js';
import { CHUNK_BYTES } from '../pool/chunk-feed.js';
import { decodeGlobLine, GlobDedup, GlobTooLargeError, isGlobLine } from './globs.js';

const LF = 0x0a;
const CR = 0x0d;
const GLOB_FIRST_BYTE = 0x41; // 'A'
/** How much of an over-long line is kept for its quarantine record (as lines.ts). */
const BAD_LINE_HEAD_BYTES = 1024 * 1024;

export type StdinSource = 'stdin' | 'stdin-glob';

/** Where the lines of standard input go. */
export interface StdinLineSink {
  /** `lines` complete lines (`data`, each ending in LF) numbered from `firstLineNo`; resolves when taken. */
  lines(source: StdinSource, firstLineNo: number, lines: number, data: Buffer): Promise<void>;
  /** A line of standard input that cannot be transformed: to be quarantined with `reason`. */
  badLine(lineNo: number, reason: string, text: string): void;
  /** A glob skipped as a duplicate of one seen within the dedup window. */
  duplicateGlob(): void;
}

export interface StdinLinesOptions {
  /** Longer lines are reported as `line_too_long` (the threads' limit by default). */
  maxLineBytes?: number;
  /** Edge lines are passed on in runs of at most about this many bytes (a chunk by default). */
  runBytes?: number;
  dedup?: GlobDedup;
}

export class StdinLines {
  /** Lines of standard input so far (the number of the last complete one). */
  lineNo = 0;
  /** The current line's bytes so far, before its LF. */
  private tail: Buffer[] = [];
  private tailBytes = 0;
  /** The current line once it passed the limit: its head and its length so far. */
  private tooLong: { head: Buffer; bytes: number } | null = null;
  private readonly maxLineBytes: number;
  private readonly runBytes: number;
  private readonly dedup: GlobDedup;

  constructor(opts: StdinLinesOptions = {}) {
    this.maxLineBytes = opts.maxLineBytes ?? MAX_LINE_BYTES;
    this.runBytes = opts.runBytes ?? CHUNK_BYTES;
    this.dedup = opts.dedup ?? new GlobDedup();
  }

  /** Bytes of a line begun and not yet ended by an LF. */
  get pendingBytes(): number {
    return this.tooLong?.bytes ?? this.tailBytes;
  }

  /** The complete lines of `piece` (the first one begun in earlier pieces) go to `sink`; its torn end waits. */
  async push(piece: Buffer, sink: StdinLineSink): Promise<void> {
    let pos = 0;
    if (this.pendingBytes > 0) {
      const lf = piece.indexOf(LF);
      if (lf === -1) {
        this.append(piece);
        return;
      }
      this.append(piece.subarray(0, lf));
      await this.endLine(sink);
      pos = lf + 1;
    }
    const lastLf = piece.lastIndexOf(LF);
    if (lastLf >= pos) {
      await this.lines(piece, pos, lastLf + 1, sink);
      pos = lastLf + 1;
    }
    this.append(piece.subarray(pos));
  }

  /** Standard input ended: its last line, when it has no LF. */
  async end(sink: StdinLineSink): Promise<void> {
    if (this.pendingBytes > 0) await this.endLine(sink);
  }

  /** Adds bytes of the current line, keeping only its head once it is longer than the limit. */
  private append(part: Buffer): void {
    if (part.length === 0) return;
    if (this.tooLong !== null) {
      this.tooLong.bytes += part.length;
      return;
    }
    this.tail.push(part);
    this.tailBytes += part.length;
    if (this.tailBytes > this.maxLineBytes) {
      const head = Buffer.from(Buffer.concat(this.tail, this.tailBytes).subarray(0, BAD_LINE_HEAD_BYTES));
      this.tooLong = { head, bytes: this.tailBytes };
      this.tail = [];
      this.tailBytes = 0;
    }
  }

  /** The current line is complete (its LF was seen, or the input ended). */
  private async endLine(sink: StdinLineSink): Promise<void> {
    if (this.tooLong !== null) {
      const { head } = this.tooLong;
      this.tooLong = null;
      sink.badLine(++this.lineNo, 'line_too_long', head.toString('utf8'));
      return;
    }
    const line = Buffer.concat([...this.tail, Buffer.of(LF)], this.tailBytes + 1);
    this.tail = [];
    this.tailBytes = 0;
    await this.lines(line, 0, line.length, sink);
  }

  /** The lines of `buf` from `start` to `end`, each ending in LF there. */
  private async lines(buf: Buffer, start: number, end: number, sink: StdinLineSink): Promise<void> {
    // The edge lines not passed on yet: from runStart, numbered from runFirstLineNo.
    let runStart = start;
    let runFirstLineNo = this.lineNo + 1;
    const passRun = async (to: number): Promise<void> => {
      const lines = this.lineNo - runFirstLineNo + 1;
      if (lines > 0) await sink.lines('stdin', runFirstLineNo, lines, buf.subarray(runStart, to));
    };
    for (let at = start; at < end;) {
      const lf = buf.indexOf(LF, at);
      let textEnd = lf;
      if (textEnd > at && buf[textEnd - 1] === CR) textEnd--;
      const tooLong = lf - at > this.maxLineBytes;
      const glob = !tooLong && buf[at] === GLOB_FIRST_BYTE ? buf.toString('utf8', at, textEnd) : null;
      if (tooLong || (glob !== null && isGlobLine(glob))) {
        await passRun(at);
        this.lineNo++;
        if (glob !== null) await this.glob(glob, sink);
        else sink.badLine(this.lineNo, 'line_too_long', buf.toString('utf8', at, at + BAD_LINE_HEAD_BYTES));
        runStart = lf + 1;
        runFirstLineNo = this.lineNo + 1;
      } else {
        this.lineNo++;
        if (lf + 1 - runStart >= this.runBytes) {
          await passRun(lf + 1);
          runStart = lf + 1;
          runFirstLineNo = this.lineNo + 1;
        }
      }
      at = lf + 1;
    }
    await passRun(end);
  }

  /** A glob line (line `this.lineNo`): decoded, deduplicated, its edge lines passed on. */
  private async glob(line: string, sink: StdinLineSink): Promise<void> {
    const lineNo = this.lineNo;
    let glob;
    try {
      glob = decodeGlobLine(line);
    } catch (err) {
      const reason = err instanceof GlobTooLargeError ? 'glob_too_large' : 'bad_glob';
      sink.badLine(lineNo, reason, `${(err as Error).message}: ${line.slice(0, 1000)}`);
      return;
    }
    if (glob.firstUuid !== null && this.dedup.isDuplicate(glob.firstUuid)) {
      sink.duplicateGlob();
      return;
    }
    if (glob.lines.length === 0) return;
    // JSON.stringify escapes every LF and CR, and every lone surrogate: the lines come back as they are.
    const data = Buffer.from(glob.lines.join('\n') + '\n', 'utf8');
    await sink.lines('stdin-glob', lineNo, glob.lines.length, data);
  }
}
