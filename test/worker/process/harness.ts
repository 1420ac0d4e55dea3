/**
 * Test harness of the continuous processor: runs it as a child process
 * (test/helpers/process-main.ts), writes edge files as they "arrive", and
 * checks the committed output (files named by success manifests).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateEdgeLogs } from '../../../scripts/generate/edge-logs.js';
import { salvageGzip } from '../../../worker/output/salvage.js';
import type { ObjectStore } from '../../../worker/store/objectstore.js';
import type { BatchManifest } from '../../../worker/process/batch.js';
import type { CheckpointData } from '../../../worker/process/checkpoint.js';
import type { ProcessOptions } from '../../../worker/process/processor.js';
import type { TableSchema } from '../../../worker/transform/schema.js';

const MAIN = fileURLToPath(new URL('../../helpers/process-main.js', import.meta.url));

export interface RunningProcessor {
  child: ChildProcess;
  stderr(): string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();

/**
 * SIGKILLs every processor still running: registered with `after()` by each
 * test file, so a failed assertion never leaves one alive (its stderr pipe
 * would keep the test file from ending).
 */
export function killRunningProcessors(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

export function startProcessor(
  opts: Omit<ProcessOptions, 'stdin' | 'log' | 'onShutdownTimeout'>,
  env: Record<string, string> = {},
  stdin: 'pipe' | 'ignore' = 'ignore',
): RunningProcessor {
  const child = spawn(process.execPath, [MAIN, JSON.stringify(opts)], {
    env: { ...process.env, ...env },
    stdio: [stdin, 'ignore', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let err = '';
  const listeners = new Set<() => void>();
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    err += s;
    if (process.env.SPADE_TEST_VERBOSE) process.stderr.write(s);
    for (const l of listeners) l();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    stderr: () => err,
    exited,
    waitFor(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = err.match(pattern);
          if (m) {
            done();
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${pattern} in processor stderr within ${timeoutMs} ms:\n${err.slice(-3000)}`));
        }, timeoutMs);
        const onExit = (): void => {
          done();
          reject(new Error(`processor exited before ${pattern}:\n${err.slice(-3000)}`));
        };
        const done = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('exit', onExit);
        };
        listeners.add(check);
        child.once('exit', onExit);
        check();
      });
    },
  };
}

export async function stopProcessor(p: RunningProcessor, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return p.child.exitCode;
  p.child.kill(signal);
  const res = await p.exited;
  return res.code;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What the test wrote: input keys and events per table. */
export class Truth {
  readonly keys: string[] = [];
  readonly events = new Map<string, number>();

  add(key: string, events: Map<string, number[]>): void {
    this.keys.push(key);
    for (const [table, times] of events) this.events.set(table, (this.events.get(table) ?? 0) + times.length);
  }
}

/** Writes one edge file whose key carries `writtenSec` (one file = a 10 s span ending there). */
export async function writeEdgeFile(
  store: ObjectStore,
  schemas: TableSchema[],
  writtenSec: number,
  events: number,
  seed: number,
  truth: Truth,
): Promise<string> {
  const res = await generateEdgeLogs(store, {
    schemas,
    startSec: writtenSec - 10,
    endSec: writtenSec,
    events,
    fileSpanSec: 10,
    seed,
    keepTruth: true,
    gzipLevel: 1,
  });
  const key = (res.files[0] as { key: string }).key;
  truth.add(key, res.events);
  return key;
}

/** A temp directory removed when the test ends. */
export function tempDir(t: { after(fn: () => void): void }, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `spade-${name}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function readCheckpoint(stateDir: string): CheckpointData | null {
  const path = join(stateDir, 'checkpoint.json');
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as CheckpointData) : null;
}

export function committedKeys(stateDir: string): string[] {
  const cp = readCheckpoint(stateDir);
  return cp ? Object.values(cp.committed).flat() : [];
}

export async function waitUntil(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

export interface CommittedOutput {
  manifests: { key: string; manifest: BatchManifest }[];
  /** Rows per table over every rows file named by a manifest, counted in the files themselves. */
  rows: Map<string, number>;
  /** Input key -> number of manifests that name it. */
  inputs: Map<string, number>;
}

export async function committedOutput(store: ObjectStore): Promise<CommittedOutput> {
  const out: CommittedOutput = { manifests: [], rows: new Map(), inputs: new Map() };
  for await (const obj of store.list('')) {
    if (!/^\d{8}\/_success\/[^/]+\.json$/.test(obj.key)) continue;
    const manifest = JSON.parse((await store.readBytes(obj.key)).toString('utf8')) as BatchManifest;
    out.manifests.push({ key: obj.key, manifest });
    for (const k of manifest.inputs) out.inputs.set(k, (out.inputs.get(k) ?? 0) + 1);
    for (const f of manifest.files) {
      if (f.kind !== 'rows' || f.event === undefined) continue;
      const { lines } = await salvageGzip(await store.readBytes(f.key), { format: 'tsv' });
      out.rows.set(f.event, (out.rows.get(f.event) ?? 0) + lines);
    }
  }
  return out;
}

export function sortedEntries(m: Map<string, number>): [string, number][] {
  return [...m].sort(([a], [b]) => (a < b ? -1 : 1));
}
