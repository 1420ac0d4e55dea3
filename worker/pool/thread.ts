/**
 * Piscina thread entry: runs one transform task (a group of input files or a
 * moved chunk of stdin) from start to end and returns its counts and the
 * files it wrote. Each task writes its own output files (fileTag), so a task
 * knows nothing of other tasks and a retried task never collides with another.
 */
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { threadId, workerData } from 'node:worker_threads';
import { OutputWriters, type WrittenFile } from '../output/writers.js';
import { openStore, parseS3Url } from '../store/location.js';
import type { ObjectStore } from '../store/objectstore.js';
import type { OutcomeCounts } from '../transform/outcomes.js';
import { EventProcessor } from '../transform/processor.js';
import type { TransformDigest } from '../transform/digest.js';
import { prepareTransform, type TransformSettings } from '../transform/setup.js';
import { transformStream } from './input.js';
import { PROGRESS_SLOTS, type ProgressSlot } from './progress.js';

export type TaskInput =
  { kind: 'urls'; urls: string[] } | { kind: 'chunk'; data: ArrayBuffer; source: string; firstLineNo: number };

export interface TransformTask {
  settings: TransformSettings;
  input: TaskInput;
  output: { location: string; prefix: string; fileTag: string; rotateBytes?: number; gzipLevel?: number };
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

const stores = new Map<string, ObjectStore>();
function storeFor(location: string): ObjectStore {
  let store = stores.get(location);
  if (store === undefined) {
    store = openStore(location);
    stores.set(location, store);
  }
  return store;
}

/** Opens a local path or an s3:// object URL as a byte stream. */
async function openUrl(url: string): Promise<Readable> {
  if (url.startsWith('s3://')) {
    const { bucket, prefix } = parseS3Url(url);
    return storeFor(`s3://${bucket}`).read(prefix);
  }
  // Opened before streaming so a missing file fails the task instead of reading as empty.
  const handle = await open(url.startsWith('file://') ? new URL(url) : url);
  return handle.createReadStream({ highWaterMark: 1 << 20 });
}

const progressView: Float64Array | null =
  workerData && (workerData as { progress?: SharedArrayBuffer }).progress
    ? new Float64Array((workerData as { progress: SharedArrayBuffer }).progress)
    : null;

function report(slot: ProgressSlot, n: number): void {
  if (progressView) progressView[(threadId % 256) * PROGRESS_SLOTS + slot] += n;
}

export default async function runTask(task: TransformTask): Promise<TaskResult> {
  const prepared = await prepareTransform(task.settings);
  const writers = new OutputWriters({
    store: storeFor(task.output.location),
    prefix: task.output.prefix,
    fileTag: task.output.fileTag,
    rotateBytes: task.output.rotateBytes,
    gzipLevel: task.output.gzipLevel,
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
      const { data, source, firstLineNo } = task.input;
      const chunk = Readable.from([Buffer.from(data)]);
      const res = await transformStream(chunk, source, processor, writers, {
        progress,
        firstLineNo,
        alreadyDecoded: true,
      });
      if (res.inputError) inputErrors.push({ source, error: res.inputError, bytes: res.bytes, lines: res.lines });
    }
    const files = await writers.close();
    return { counts: processor.counts, files, inputErrors, digest: prepared.digest };
  } catch (err) {
    await writers.abort().catch(() => undefined);
    throw err;
  }
}
