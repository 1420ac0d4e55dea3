/**
 * A cached benchmark corpus sized in *compressed* MB: edge logs generated once
 * into a local directory (keys `YYYYMMDD/edge-asg/<secs>...log.gz`, as on the
 * edge bucket) and reused by later runs. Generation is the slow part of a 1 GB
 * benchmark, so the directory is kept; `.complete` marks a finished corpus.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { LocalStore } from '../../worker/store/local.js';
import { byKey } from '../../worker/store/objectstore.js';
import type { TableSchema } from '../../worker/transform/schema.js';
import { generateEdgeLogs, type GenerateOptions } from '../generate/edge-logs.js';

export interface CorpusFile {
  /** Key relative to the corpus root, i.e. the edge-bucket key. */
  key: string;
  path: string;
  bytes: number;
}

export interface Corpus {
  dir: string;
  /** Receive times of the events are in [startSec, endSec) (unix seconds). */
  startSec: number;
  endSec: number;
  events: number;
  files: CorpusFile[];
  bytes: number;
}

interface CorpusMeta {
  mb: number;
  startSec: number;
  endSec: number;
  events: number;
}

/** A weekday far from DST changes, so the replay window is a plain day. */
const START_SEC = Date.UTC(2023, 10, 8, 0, 0, 0) / 1000;
const DAY_SEC = 86_400;
const SEED = 7;
/** Events generated to measure gzip bytes per event before the real run. */
const CALIBRATION_EVENTS = 4000;
/** Target compressed size of one edge file. */
const FILE_MB = 16;

function generateOptions(schemas: TableSchema[], mb: number, events: number): GenerateOptions {
  const fileCount = Math.max(8, Math.round(mb / FILE_MB));
  return {
    schemas,
    startSec: START_SEC,
    endSec: START_SEC + DAY_SEC,
    events,
    fileSpanSec: Math.max(60, Math.floor(DAY_SEC / fileCount)),
    seed: SEED,
  };
}

export function listCorpusFiles(dir: string): CorpusFile[] {
  const out: CorpusFile[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.gz'))
        out.push({ key: relative(dir, p).split(sep).join('/'), path: p, bytes: statSync(p).size });
    }
  };
  walk(dir);
  return out.sort(byKey);
}

/** Gzip bytes per event of this generator and config, from a small sample. */
async function gzipBytesPerEvent(schemas: TableSchema[]): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'spade-bench-calibrate-'));
  try {
    // Two files, so the per-file gzip overhead is counted roughly as in the real corpus.
    const opts = { ...generateOptions(schemas, 32, CALIBRATION_EVENTS), fileSpanSec: DAY_SEC / 2 };
    const truth = await generateEdgeLogs(new LocalStore(dir), opts);
    return truth.files.reduce((s, f) => s + f.bytes, 0) / CALIBRATION_EVENTS;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The corpus of about `mb` MiB of gzip edge logs in `dir`, generated unless already there. */
export async function ensureCorpus(
  dir: string,
  mb: number,
  schemas: TableSchema[],
  say: (line: string) => void,
): Promise<Corpus> {
  const metaPath = join(dir, 'corpus.json');
  if (!existsSync(join(dir, '.complete')) || !existsSync(metaPath)) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const perEvent = await gzipBytesPerEvent(schemas);
    const events = Math.round((mb * 1024 * 1024) / perEvent);
    say(`generating ~${mb} MiB of gzip edge logs (${events} events, ~${perEvent.toFixed(0)} B/event) in ${dir} ...`);
    const started = Date.now();
    const opts = generateOptions(schemas, mb, events);
    await generateEdgeLogs(new LocalStore(dir), opts);
    const meta: CorpusMeta = { mb, startSec: opts.startSec, endSec: opts.endSec, events };
    writeFileSync(metaPath, JSON.stringify(meta) + '\n');
    writeFileSync(join(dir, '.complete'), '');
    say(`generated in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as CorpusMeta;
  const files = listCorpusFiles(dir);
  return {
    dir,
    startSec: meta.startSec,
    endSec: meta.endSec,
    events: meta.events,
    files,
    bytes: files.reduce((s, f) => s + f.bytes, 0),
  };
}
