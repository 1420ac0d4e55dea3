/**
 * A feed of line chunks to every thread of the pool: one `chunks` task per
 * thread (thread.ts), each asking for a chunk, transforming it and asking for
 * the next, so whichever thread is free gets the next chunk. The caller cuts
 * the chunks (spread.ts from input files, line-runs.ts from lines framed
 * elsewhere) and `send`s them one at a time; a send waits until a thread asks,
 * which is the backpressure: at most one cut chunk waits, and each thread
 * holds the one it works on, so memory stays flat (threads + 1 chunk buffers,
 * which go back and forth between the feed and the threads). `finish` ends the
 * tasks and merges their results.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { emptyCounts, mergeCounts } from '../transform/outcomes.js';
import type { TransformPool } from './pool.js';
import type { ChunkRequest, InputChunk, TaskResult, TransformTask } from './thread.js';

/**
 * Decompressed bytes per chunk. A chunk costs one copy and two messages, so
 * any size above a few hundred KiB makes that negligible; what a larger chunk
 * costs is memory (threads + 2 chunk buffers) and the tail of the run, when
 * the last chunk's thread works alone. On the benchmark's single file
 * (138 MB, 2 threads, a loaded machine) 1, 2 and 4 MiB ran alike within the
 * noise, and peak RSS rose from ~242 MB (1-2 MiB) to ~255 MB (4 MiB).
 */
export const CHUNK_BYTES = 2 * 1024 * 1024;

/**
 * The chunk buffers, each filled here, moved to a thread and moved back with
 * its next request (see ChunkRequest in thread.ts): threads + 1 of them are
 * ever allocated, plus one-off larger ones for lines longer than a chunk.
 */
export class ChunkBuffers {
  private readonly free: ArrayBuffer[] = [];

  constructor(private readonly capacity: number) {}

  take(size: number): ArrayBuffer {
    if (size > this.capacity) return new ArrayBuffer(size);
    return this.free.pop() ?? new ArrayBuffer(this.capacity);
  }

  give(buf: ArrayBuffer): void {
    if (buf.byteLength === this.capacity) this.free.push(buf);
  }

  /** Copies `pieces` (and `tail` of the next one) into a buffer: the buffer and the bytes' length. */
  fill(pieces: readonly Uint8Array[], tail: Uint8Array | null): { data: ArrayBuffer; length: number } {
    let length = tail ? tail.length : 0;
    for (const p of pieces) length += p.length;
    const data = this.take(length);
    const out = new Uint8Array(data);
    let off = 0;
    for (const p of pieces) {
      out.set(p, off);
      off += p.length;
    }
    if (tail) out.set(tail, off);
    return { data, length };
  }
}

export class ChunkFeed {
  private readonly asking: MessagePort[] = [];
  /** Senders waiting for a thread to ask. */
  private readonly waiting: (() => void)[] = [];
  private ended = false;
  private readonly tasks: Promise<TaskResult>[];
  private readonly ports: MessagePort[];
  readonly buffers: ChunkBuffers;
  /** The first failure of a task (or one the caller reported): every later send throws it. */
  failure: unknown = null;

  /**
   * Starts one `chunks` task per thread of `pool`, `taskFor(i)` giving each its
   * settings and output. Chunks are cut at about `chunkBytes`; a chunk buffer
   * holds that plus one piece of input (`pieceBytes`) before a one-off larger
   * one is needed.
   */
  constructor(
    pool: TransformPool,
    taskFor: (i: number) => Omit<TransformTask, 'input'>,
    readonly chunkBytes: number = CHUNK_BYTES,
    pieceBytes = 1024 * 1024,
  ) {
    this.buffers = new ChunkBuffers(chunkBytes + pieceBytes);
    const channels = Array.from({ length: pool.threads }, () => new MessageChannel());
    this.ports = channels.map((c) => c.port1);
    for (const port of this.ports) {
      port.on('message', (request: ChunkRequest) => {
        if (request.done) this.buffers.give(request.done);
        if (this.ended) port.postMessage(null);
        else {
          this.asking.push(port);
          this.notify();
        }
      });
    }
    this.tasks = channels.map((c, i) =>
      pool.run({ ...taskFor(i), input: { kind: 'chunks', port: c.port2 } }).catch((err: unknown) => {
        this.fail(err);
        throw err;
      }),
    );
    // Seen by finish(); until then a failure shows as `failure`, not as an unhandled rejection.
    for (const t of this.tasks) t.catch(() => undefined);
  }

  /** Stops the sends: the next (and any waiting) send throws `err`, unless a failure came first. */
  fail(err: unknown): void {
    this.failure ??= err;
    this.notify();
  }

  private notify(): void {
    for (const wake of this.waiting.splice(0)) wake();
  }

  /** Waits for a thread that asks, then moves the chunk to it. Throws once a task failed. */
  async send(chunk: InputChunk): Promise<void> {
    for (;;) {
      if (this.failure) throw this.failure;
      const port = this.asking.shift();
      if (port !== undefined) {
        port.postMessage(chunk, [chunk.data]);
        return;
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  /**
   * No more chunks: every thread that asks (now or later) is told so, and once
   * every task has finished their results are merged into one (damaged inputs
   * are the caller's to add: the reader is the one that saw the damage).
   * Throws the first task's failure, after every task has settled.
   */
  async finish(): Promise<TaskResult> {
    this.ended = true;
    for (const port of this.asking.splice(0)) port.postMessage(null);
    const settled = await Promise.allSettled(this.tasks);
    for (const port of this.ports) port.close();
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
    const results = settled.map((s) => (s as PromiseFulfilledResult<TaskResult>).value);
    if (new Set(results.map((r) => r.digest.digest)).size > 1)
      throw new Error('the threads transformed with different settings');
    return {
      counts: results.reduce((acc, r) => mergeCounts(acc, r.counts), emptyCounts()),
      files: results.flatMap((r) => r.files),
      inputErrors: [],
      digest: results[0]!.digest,
    };
  }
}
