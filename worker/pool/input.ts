/**
 * Feeds one input (a byte stream of edge lines, gzip or plain) through an
 * EventProcessor into OutputWriters, with backpressure so memory stays flat.
 */
import type { Readable } from 'node:stream';
import { decodedChunks, readLineBatches } from '../input/lines.js';
import type { OutputWriters } from '../output/writers.js';
import type { EventProcessor } from '../transform/processor.js';

export interface InputProgress {
  /** Called after each batch with the decompressed bytes and lines of that batch. */
  (bytes: number, lines: number): void;
}

export async function transformStream(
  raw: Readable,
  source: string,
  processor: EventProcessor,
  writers: Pick<OutputWriters, 'needsDrain' | 'drain'>,
  opts: { progress?: InputProgress; firstLineNo?: number; alreadyDecoded?: boolean } = {},
): Promise<{ lines: number; bytes: number; inputError?: string; inputDamaged?: boolean }> {
  const { progress } = opts;
  // Line numbers of a chunk of a larger input continue the input's numbering.
  const lineOffset = (opts.firstLineNo ?? 1) - 1;
  const result = await readLineBatches(
    opts.alreadyDecoded ? raw : decodedChunks(raw),
    { source },
    async (lines, firstLineNo) => {
      const waiting = processor.processLines(lines, firstLineNo + lineOffset, source);
      if (waiting) await waiting;
      if (writers.needsDrain()) await writers.drain();
      if (progress) {
        let bytes = 0;
        for (const l of lines) bytes += l.length + 1;
        progress(bytes, lines.length);
      }
    },
    (bad) => processor.badLine(source, bad.lineNo + lineOffset, bad.reason, bad.text),
  );
  processor.counts.inputBytes += result.bytes;
  return result;
}
