/**
 * Packs runs of complete lines, each run with its source and first line
 * number, into chunks for a ChunkFeed. For lines already framed on the main
 * thread (the continuous processor's standard input), where consecutive lines
 * need not share a source or a numbering (edge lines, then the edge lines of
 * a glob decoded there). A run that continues the previous one (same source,
 * next line number) is merged into it, so a chunk of plain lines is one run.
 */
import type { ChunkFeed } from './chunk-feed.js';
import type { LineRun } from './thread.js';

export class LineRunPacker {
  private pieces: Uint8Array[] = [];
  private runs: LineRun[] = [];
  private bytes = 0;
  /** The line number that continues the last run. */
  private nextLineNo = 0;

  constructor(private readonly feed: ChunkFeed) {}

  /** Bytes packed and not sent yet. */
  get pendingBytes(): number {
    return this.bytes;
  }

  /**
   * Adds `data`: `lines` complete lines, each ending in LF, numbered from
   * `firstLineNo`. Sends the chunk once it is full, waiting while no thread
   * asks for one (that wait is the caller's backpressure). `data` is copied
   * only when its chunk is sent: it must not change until the next `flush`.
   */
  async add(source: string, firstLineNo: number, lines: number, data: Uint8Array): Promise<void> {
    if (data.length === 0) return;
    if (this.bytes > 0 && this.bytes + data.length > this.feed.chunkBytes) await this.flush();
    const last = this.runs.at(-1);
    if (last !== undefined && last.source === source && this.nextLineNo === firstLineNo) last.bytes += data.length;
    else this.runs.push({ source, firstLineNo, bytes: data.length });
    this.nextLineNo = firstLineNo + lines;
    this.pieces.push(data);
    this.bytes += data.length;
    if (this.bytes >= this.feed.chunkBytes) await this.flush();
  }

  /** Sends the lines packed so far, if any, as one chunk. Throws once a task of the feed failed. */
  async flush(): Promise<void> {
    if (this.bytes === 0) return;
    const chunk = this.feed.buffers.fill(this.pieces, null);
    const runs = this.runs;
    this.pieces = [];
    this.runs = [];
    this.bytes = 0;
    const [first] = runs as [LineRun];
    await this.feed.send({
      source: first.source,
      firstLineNo: first.firstLineNo,
      ...chunk,
      ...(runs.length > 1 ? { runs } : {}),
    });
  }
}
