/**
 * Piscina thread entry: runs one transform task from start to end and returns
 * its counts and the files it wrote. A task reads either a group of input
 * files itself (`urls`), or the chunks of lines that the main thread cuts
 * (`chunks`, see chunk-feed.ts: inputs read there, spread.ts; or standard
 * input of the continuous processor, line-runs.ts): it asks for a
 * chunk, transforms it, asks for the next, until told the inputs are done, so
 * a free thread is the one that gets the next chunk. Each task writes its own
 * output files (fileTag), so a task knows nothing of other tasks and a retried
 * task never collides with another.
 */
import { Readable } from 'node:stream';
import { threadId, workerData, type MessagePort } from 'node:worker_threads';
import { OutputWriters, type WrittenFile } from '../output/writers.js';
import type { OutcomeCounts } from '../transform/outcomes.js';
import { EventProcessor } from '../transform/processor.js';
import type { TransformDigest } from '../transform/digest.js';
import type { SharedGeoIpFiles } from '../transform/geoip.js';
import { prepareTransform, type TransformSettings } from '../transform/setup.js';
import { transformStream, type InputProgress } from './input.js';
import { openUrl, storeFor } from './open-url.js';
import { PROGRESS_SLOTS, type ProgressSlot } from './progress.js';

export type TaskInput = { kind: 'urls'; urls: string[] } | { kind: 'chunks'; port: MessagePort };

/**
 * A piece of an input, sent by the main thread's reader in answer to a
 * thread's ChunkRequest on the task's port (`null`: no more input).
 */
export interface InputChunk {
  /** The input's URL or path as read (`stdin` for standard input). */
  source: string;
  /**
   * Its first `length` bytes: decompressed complete lines, each ending in LF
   * (the last line of the input may lack it). Moved, not copied, to the
   * thread, which moves it back with its next request (see ChunkRequest).
   */
  data: ArrayBuffer;
  length: number;
  /** The input's line number of the first line of `data`. */
  firstLineNo: number;
  /**
   * The line after `data` that the reader could not deliver whole: torn by
   * damage at the end of the input, or longer than the line limit. `text` is
   * its first MiB, `bytes` its full length as read.
   */
  bad?: { reason: 'truncated_input' | 'line_too_long'; text: string; bytes: number };
  /** This is the input's last chunk (for the progress count of finished inputs). */
  last?: boolean;
  /**
   * When `data` holds lines of more than one source or numbering (standard
   * input of the continuous processor: edge lines, and the edge lines of the
   * globs decoded between them): its runs of lines, in order, which then name
   * the sources and line numbers instead of `source` and `firstLineNo`
   * (those of the first run). `bad` follows the last run.
   */
  runs?: LineRun[];
}

/** Consecutive lines of a chunk from one source, numbered on from `firstLineNo`. */
export interface LineRun {
  source: string;
  firstLineNo: number;
  /** The run's length in the chunk's data: complete lines, each ending in LF. */
  bytes: number;
}

/**
 * A thread asks for the next chunk and gives back the buffer of the one it
 * finished, for the reader to fill again. Returned rather than left to this
 * thread's GC: a chunk outlives a few young-generation collections while it is
 * transformed, so its buffer is promoted and would be freed only by a full
 * collection; with 2 threads, dead 4 MiB buffers waiting for one added ~60 MB
 * to peak RSS (the same made the former stdin chunks double it).
 */
export interface ChunkRequest {
  done?: ArrayBuffer;
}

export interface TransformTask {
  settings: TransformSettings;
  /** The GeoIP databases of `settings`, read once for all threads (set by the pool, see shared-geoip.ts). */
  sharedGeoIp?: SharedGeoIpFiles;
  input: TaskInput;
  output: {
    location: string;
    prefix: string;
    fileTag: string;
    rotateBytes?: number;
    gzipLevel?: number;
    /**
     * Spool every file under this directory (OutputWriters' `spoolDir`) rather
     * than a private temp one: the continuous processor's stdin batches, whose
     * files a hard kill leaves for the next start to salvage.
     */
    spoolDir?: string;
  };
}

/** An input whose bytes ended early or broke (truncated or corrupt gzip): its complete lines before that were processed. */
export interface DamagedInput {
  /** The input's URL or path as read (`stdin` for standard input). */
  source: string;
  /** Its key in the edge store, in a replay partition's result. */
  key?: string;
  error: string;
  /** Decompressed bytes read before the damage. */
  bytes: number;
  /** Lines read before the damage (the torn last one included, quarantined as truncated_input). */
  lines: number;
}

/** One line of a damaged-input listing: `<name>: <bytes> bytes, <lines> lines read; <error>`. */
export function describeDamagedInput(d: DamagedInput, name: string = d.source): string {
  // The reader's message starts with the source already.
  const error = d.error.startsWith(`${d.source}: `) ? d.error.slice(d.source.length + 2) : d.error;
  // Manifests of older versions carry no counts.
  return `${name}: ${d.bytes ?? '?'} bytes, ${d.lines ?? '?'} lines read; ${error}`;
}

export interface TaskResult {
  counts: OutcomeCounts;
  files: WrittenFile[];
  /** Damaged inputs, each still transformed up to the damage. */
  inputErrors: DamagedInput[];
  /** What the rows were made with (see transform/digest.ts). */
  digest: TransformDigest;
}

const progressView: Float64Array | null =
  workerData && (workerData as { progress?: SharedArrayBuffer }).progress
    ? new Float64Array((workerData as { progress: SharedArrayBuffer }).progress)
    : null;

function report(slot: ProgressSlot, n: number): void {
  if (progressView) progressView[(threadId % 256) * PROGRESS_SLOTS + slot] += n;
}

export default async function runTask(task: TransformTask): Promise<TaskResult> {
  const prepared = await prepareTransform(task.settings, task.sharedGeoIp);
  const writers = new OutputWriters({
    store: storeFor(task.output.location),
    prefix: task.output.prefix,
    fileTag: task.output.fileTag,
    rotateBytes: task.output.rotateBytes,
    gzipLevel: task.output.gzipLevel,
    spoolDir: task.output.spoolDir,
    rowUuids: task.settings.rowUuids,
  });
  const processor = new EventProcessor(prepared.processorOptions, writers);
  const inputErrors: TaskResult['inputErrors'] = [];
  const progress = (bytes: number, lines: number): void => {
    report(0, bytes);
    report(1, lines);
  };
  try {
    if (task.input.kind === 'urls') {
      for (const url of task.input.urls) {
        const res = await transformStream(await openUrl(url), url, processor, writers, { progress });
        // A read failure is not the end of the file: fail the task so it is retried whole.
        if (res.inputError && !res.inputDamaged) throw new Error(`reading ${url} failed: ${res.inputError}`);
        if (res.inputError)
          inputErrors.push({ source: url, error: res.inputError, bytes: res.bytes, lines: res.lines });
        report(2, 1);
      }
    } else {
      // The reader reports damaged inputs itself: it is the one that saw the damage.
      await transformChunks(task.input.port, processor, writers, progress);
    }
    const files = await writers.close();
    return { counts: processor.counts, files, inputErrors, digest: prepared.digest };
  } catch (err) {
    await writers.abort().catch(() => undefined);
    throw err;
  }
}

/** Asks for chunks on `port` and transforms each, until the reader answers `null`. */
async function transformChunks(
  port: MessagePort,
  processor: EventProcessor,
  writers: OutputWriters,
  progress: InputProgress,
): Promise<void> {
  const next = (done?: ArrayBuffer): Promise<InputChunk | null> =>
    new Promise((resolve) => {
      port.once('message', resolve);
      const request: ChunkRequest = { done };
      port.postMessage(request, done ? [done] : []);
    });
  try {
    for (let chunk = await next(); chunk !== null; chunk = await next(chunk.data)) {
      const { bad } = chunk;
      const runs = chunk.runs ?? [{ source: chunk.source, firstLineNo: chunk.firstLineNo, bytes: chunk.length }];
      let offset = 0;
      let after = { source: chunk.source, lineNo: chunk.firstLineNo };
      for (const { source, firstLineNo, bytes } of runs) {
        const lines = Readable.from([Buffer.from(chunk.data, offset, bytes)]);
        offset += bytes;
        const res = await transformStream(lines, source, processor, writers, {
          progress,
          firstLineNo,
          alreadyDecoded: true,
        });
        after = { source, lineNo: firstLineNo + res.lines };
      }
      if (bad) {
        processor.badLine(after.source, after.lineNo, bad.reason, bad.text);
        processor.counts.inputBytes += bad.bytes;
        progress(bad.bytes, 1);
      }
      if (chunk.last) report(2, 1);
    }
  } finally {
    port.close();
  }
}
