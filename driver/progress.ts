/**
 * Replay progress: on a terminal a live block redrawn in place (partitions,
 * files, MB, events/s, ETA, per-table load state); otherwise a plain
 * timestamped log line every few seconds.
 */
import type { PartitionResult } from '../worker/partition-task.js';
import { eventTotals } from '../worker/transform/outcomes.js';
import { formatBytes, formatDuration, formatRate } from './format.js';
import type { Logger } from './log.js';

export interface ReplayProgress {
  phase(name: 'list' | 'transform' | 'load', seconds: number): void;
  /** The listing has begun; `listed` then reports the running count of keys listed. */
  startList?(): void;
  listed?(keys: number): void;
  endList?(): void;
  startTransform(partitions: number, alreadyDone: number, bytes: number): void;
  partitionDone(result: PartitionResult): void;
  startLoad(tables: string[]): void;
  tableState(table: string, state: string): void;
  /** Kinesis publishing has begun; `published()` counts the records acknowledged so far. */
  startPublish(published: () => number): void;
  /** Phase durations in seconds, for the final summary and benchmarks. */
  readonly phases: Record<string, number>;
  stop(): void;
}

export function createProgress(opts: {
  log: Logger;
  tty: boolean;
  stream?: NodeJS.WriteStream;
  /** Live counters of the executor (local threads), if it has them. */
  live?: () => { bytes: number; lines: number; files: number };
  intervalMs?: number;
}): ReplayProgress {
  const stream = opts.stream ?? process.stderr;
  const phases: Record<string, number> = {};
  let partitions = 0;
  let done = 0;
  let doneAtStart = 0;
  let totalBytes = 0;
  let doneBytes = 0;
  let events = 0;
  let started = 0;
  const tables = new Map<string, string>();
  let timer: NodeJS.Timeout | null = null;
  let drawnLines = 0;
  let publishedCount: (() => number) | null = null;
  let publishStarted = 0;
  let listing = false;
  let listStarted = 0;
  let keysListed = 0;

  const statusLines = (): string[] => {
    const secs = (Date.now() - started) / 1000;
    const live = opts.live?.() ?? { bytes: 0, lines: 0, files: 0 };
    const lines: string[] = [];
    if (listing) {
      const listSecs = (Date.now() - listStarted) / 1000;
      lines.push(`list: ${keysListed} key(s) listed, ${formatRate(keysListed / Math.max(listSecs, 0.001))} keys/s`);
    }
    if (partitions > 0 && tables.size === 0) {
      const fraction = totalBytes > 0 ? doneBytes / totalBytes : 0;
      const eta = fraction > 0 ? (secs / fraction) * (1 - fraction) : NaN;
      lines.push(
        `transform: partitions ${done}/${partitions}, files ${live.files}, ${formatBytes(live.bytes)} read, ` +
          `${formatRate(live.lines / Math.max(secs, 0.001))} lines/s, ${formatRate(events / Math.max(secs, 0.001))} events/s committed, ` +
          `ETA ${done >= partitions ? '0s' : formatDuration(eta)}`,
      );
    }
    if (tables.size > 0) {
      const byState = new Map<string, string[]>();
      for (const [t, s] of tables) byState.set(s, [...(byState.get(s) ?? []), t]);
      lines.push(
        'load: ' +
          [...byState]
            .map(([s, ts]) => `${s} ${ts.length}${s === 'loading' ? ` (${ts.slice(0, 4).join(', ')})` : ''}`)
            .join(', '),
      );
    }
    if (publishedCount) {
      const n = publishedCount();
      const rate = n / Math.max((Date.now() - publishStarted) / 1000, 0.001);
      lines.push(`kinesis: ${n} record(s) published, ${formatRate(rate)} records/s`);
    }
    return lines;
  };

  /** Moves the cursor to the top of the block and clears it. */
  const erase = (): string => (drawnLines > 0 ? `\x1b[${drawnLines}F\x1b[0J` : '');

  const draw = (): void => {
    if (opts.tty) {
      const lines = statusLines();
      let out = erase();
      for (const l of lines) out += `${l.slice(0, (stream.columns ?? 200) - 1)}\n`;
      stream.write(out);
      drawnLines = lines.length;
    } else {
      for (const l of statusLines()) opts.log.info(l);
    }
  };

  /** A log line while the block is shown: printed above it, block redrawn below. */
  const logAbove = (line: string): void => {
    stream.write(erase() + line + '\n');
    drawnLines = 0;
    draw();
  };

  const ensureTimer = (): void => {
    if (timer) return;
    if (opts.tty) opts.log.setConsoleSink(logAbove);
    timer = setInterval(draw, opts.intervalMs ?? (opts.tty ? 500 : 10_000));
    timer.unref();
  };

  return {
    phases,
    phase(name, seconds) {
      phases[name] = (phases[name] ?? 0) + seconds;
    },
    startList() {
      listing = true;
      listStarted = Date.now();
      ensureTimer();
    },
    listed(keys) {
      keysListed = keys;
    },
    endList() {
      if (!listing) return;
      if (timer) {
        clearInterval(timer);
        timer = null;
        draw(); // the listing's last figures stay on screen, above what comes next
      }
      listing = false;
      drawnLines = 0;
      opts.log.setConsoleSink(null);
    },
    startTransform(n, alreadyDone, bytes) {
      partitions = n;
      done = alreadyDone;
      doneAtStart = alreadyDone;
      totalBytes = bytes;
      started = Date.now();
      if (n > doneAtStart) ensureTimer();
    },
    partitionDone(r) {
      done++;
      events += Object.values(eventTotals(r.counts)).reduce((s, n) => s + n, 0);
      // Partitions are balanced by compressed bytes, so finished partitions measure progress.
      doneBytes = totalBytes * ((done - doneAtStart) / Math.max(1, partitions - doneAtStart));
    },
    startLoad(ts) {
      for (const t of ts) tables.set(t, 'waiting');
      started ||= Date.now();
      ensureTimer();
    },
    tableState(table, state) {
      tables.set(table, state);
    },
    startPublish(published) {
      publishedCount = published;
      publishStarted = Date.now();
      started ||= publishStarted;
      ensureTimer();
    },
    stop() {
      if (timer) {
        clearInterval(timer);
        timer = null;
        draw();
      }
      opts.log.setConsoleSink(null);
    },
  };
}
