/**
 * Reading back what one `spade replay` child process did, for the benchmarks:
 * the phases and the workers line of its log, and the output its success
 * manifests name (plus the sizes of the run's own bookkeeping files, which is
 * what the scaling estimates extrapolate from).
 */
import { existsSync, readFileSync } from 'node:fs';
import { DateTime } from 'luxon';
import { runRecordKey, successKey, type SuccessManifest } from '../../driver/manifest.js';
import { PACIFIC_ZONE } from '../../driver/window.js';
import type { ObjectStore } from '../../worker/store/objectstore.js';
import { emptyCounts, eventTotals, mergeCounts, type OutcomeCounts } from '../../worker/transform/outcomes.js';

/** Pacific wall-clock text of a unix time, the replay's START/END format. */
export function pacific(sec: number): string {
  return DateTime.fromSeconds(sec, { zone: PACIFIC_ZONE }).toFormat('yyyy-MM-dd HH:mm:ss');
}

/** Events per second etc. in short form: 950, 12.3k, 4.95M. */
export const rate = (n: number): string =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0);

export function sumEvents(counts: OutcomeCounts): number {
  return Object.values(eventTotals(counts)).reduce((s, n) => s + n, 0);
}

/** The last `lines` lines of a file ('' when it does not exist). */
export function tail(path: string, lines: number): string {
  if (!existsSync(path)) return '';
  return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/** Phases from the replay's log line `runtag … finished with exit code 0; phases: list 0.1s, …`. */
export function parsePhases(logText: string): Record<string, number> | null {
  const lines = logText.trimEnd().split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /finished with exit code \d+; phases: (.*)$/.exec(lines[i]!);
    if (!m) continue;
    const phases: Record<string, number> = {};
    for (const part of m[1]!.split(', ')) {
      const p = /^(\w+) ([\d.]+)s$/.exec(part.trim());
      if (p) phases[p[1]!] = Number(p[2]);
    }
    return phases;
  }
  return null;
}

export interface WorkersLine {
  tasks: number;
  redispatched: number;
  /** Sum over nodes of the idle time between two consecutive tasks, seconds (0.1 s resolution). */
  idleSecs: number;
}

/** The `--executor workers` summary line: `workers: N task(s), M re-dispatched …; nodes idle between tasks Xs in total; …`. */
export function parseWorkersLine(logText: string): WorkersLine | null {
  const m = /workers: (\d+) task\(s\), (\d+) re-dispatched[^;]*; nodes idle between tasks ([\d.]+)s in total/.exec(
    logText,
  );
  return m ? { tasks: Number(m[1]), redispatched: Number(m[2]), idleSecs: Number(m[3]) } : null;
}

export interface RowsFile {
  key: string;
  table: string;
  rows: number;
  bytes: number;
  tsvBytes: number;
}

export interface RunOutput {
  counts: OutcomeCounts;
  /** Every `rows` file the success manifests name. */
  files: RowsFile[];
  /** Rows per table, summed over the files. */
  rowsByTable: Map<string, number>;
  manifests: number;
  /** Bytes of all success manifests, and the file entries they hold (every kind). */
  manifestBytes: number;
  manifestEntries: number;
  /** Size of `<runtag>/_run.json` (0 when missing). */
  runRecordBytes: number;
}

export async function readRunOutput(out: ObjectStore, runtag: string): Promise<RunOutput> {
  const counts = emptyCounts();
  const files: RowsFile[] = [];
  const rowsByTable = new Map<string, number>();
  let manifests = 0;
  let manifestBytes = 0;
  let manifestEntries = 0;
  // `<runtag>/_success/<partition>.json`: the directory part of any partition's key.
  const prefix = successKey(runtag, '').slice(0, -'.json'.length);
  for await (const obj of out.list(prefix)) {
    if (!obj.key.endsWith('.json')) continue;
    const bytes = await out.readBytes(obj.key);
    const m = JSON.parse(bytes.toString('utf8')) as SuccessManifest;
    manifests++;
    manifestBytes += bytes.length;
    manifestEntries += m.files.length;
    mergeCounts(counts, m.counts);
    for (const f of m.files) {
      if (f.kind !== 'rows' || !f.event) continue;
      files.push({ key: f.key, table: f.event, rows: f.rows, bytes: f.bytes, tsvBytes: f.uncompressedBytes });
      rowsByTable.set(f.event, (rowsByTable.get(f.event) ?? 0) + f.rows);
    }
  }
  let runRecordBytes = 0;
  for await (const obj of out.list(runRecordKey(runtag)))
    if (obj.key === runRecordKey(runtag)) runRecordBytes = obj.size;
  return { counts, files, rowsByTable, manifests, manifestBytes, manifestEntries, runRecordBytes };
}

/** Tables whose row totals differ between two runs, as `table a/b` texts. */
export function rowDifferences(a: Map<string, number>, b: Map<string, number>): string[] {
  const out: string[] = [];
  for (const t of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(t) ?? 0;
    const y = b.get(t) ?? 0;
    if (x !== y) out.push(`${t} ${x}/${y}`);
  }
  return out;
}
