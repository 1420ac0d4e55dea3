/**
 * `npm run bench:transform [-- --mb N]`: generates a realistic corpus from the
 * real table_config.json (54 event types, GeoIP columns, 5% multi-event
 * payloads, 1% malformed lines), then measures in separate processes:
 * the decode-only floor (gunzip + outer JSON.parse + base64 + payload
 * JSON.parse), and the full transform with 1 and 2 threads: events/s, MB/s of
 * input, peak RSS, and the cores each run kept busy (its process's CPU time
 * over its wall time). Two cases: the corpus's files as they are (many files,
 * one per task), and the same lines as ONE gzip file (its files' gzip members
 * concatenated; spread over the threads in chunks, worker/pool/spread.ts),
 * plus the one-core gunzip speed of that file (the single-file ceiling: one
 * reader inflates it for every thread). `--rounds N` (default 3) repeats the
 * runs and reports medians; `--cases multi,single` picks the cases. The transform's output goes to `--out-dir` (default: /dev/shm when
 * there is one, else the temp dir) and is removed after each run.
 */
import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  createReadStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGunzip, gunzipSync } from 'node:zlib';
import { LocalStore } from '../worker/store/local.js';
import { arg, positiveNumber } from './bench/args.js';
import { parseTableConfig } from '../worker/transform/schema.js';
import { generateEdgeLogs } from './generate/edge-logs.js';
import { scratchDir } from '../test/helpers/scratch-dir.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixtures = process.env.SPADE_FIXTURES ?? resolve(root, '..', 'shared', 'fixtures');

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else if (e.name.endsWith('.gz')) out.push(p);
  }
  return out.sort();
}

/** The floor: what any transform must at least do per line. */
async function decodeFloor(files: string[]): Promise<{ events: number; bytes: number }> {
  let events = 0;
  let bytes = 0;
  for (const f of files) {
    let rest = '';
    for await (const chunk of createReadStream(f).pipe(createGunzip()) as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      const text = rest + chunk.toString('utf8');
      const lines = text.split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        try {
          const edge = JSON.parse(line) as { data: string };
          const payload: unknown = JSON.parse(Buffer.from(edge.data, 'base64').toString('utf8'));
          events += Array.isArray(payload) ? payload.length : 1;
        } catch {
          // malformed lines cost what they cost
        }
      }
    }
  }
  return { events, bytes };
}

/**
 * Where the transform's output goes. Not the disk by default: each run
 * removes its ~1,800 output files, and on an ext4 without a journal (as on
 * this project's VMs) creating files next to thousands deleted within the last
 * minutes makes the kernel test each of those inodes first (ext4
 * recently_deleted): perf put 5% of a 2-thread run's CPU there, more than its
 * input gunzip. That measures the previous run, not the transform.
 */
const defaultOutDir = scratchDir;

async function child(): Promise<void> {
  const mode = arg('child', '');
  const input = arg('input', '');
  const files = listFiles(input);
  const started = process.hrtime.bigint();
  const cpuAtStart = process.cpuUsage();
  let events: number;
  let bytes: number;
  let secs: number;
  let cpu: NodeJS.CpuUsage;
  if (mode === 'floor') {
    ({ events, bytes } = await decodeFloor(files));
    secs = Number(process.hrtime.bigint() - started) / 1e9;
    cpu = process.cpuUsage(cpuAtStart);
  } else if (mode === 'gunzip') {
    // As the single-file reader inflates (worker/pool/spread.ts), without the cutting.
    const { decodedChunks } = await import('../worker/input/lines.js');
    const { openUrl } = await import('../worker/pool/open-url.js');
    const { READER_GUNZIP_OUTPUT_BYTES, READER_READ_BYTES } = await import('../worker/pool/spread.js');
    events = 0;
    bytes = 0;
    for (const f of files) {
      const raw = await openUrl(f, READER_READ_BYTES);
      for await (const chunk of decodedChunks(raw, { outputBytes: READER_GUNZIP_OUTPUT_BYTES })) bytes += chunk.length;
    }
    secs = Number(process.hrtime.bigint() - started) / 1e9;
    cpu = process.cpuUsage(cpuAtStart);
  } else {
    const { transformCommand } = await import('../worker/cli/transform.js');
    const { eventTotals } = await import('../worker/transform/outcomes.js');
    const out = join(arg('out-dir', defaultOutDir()), `spade-bench-out-${process.pid}`);
    const summary = await transformCommand(
      {
        inputs: files,
        config: join(fixtures, 'spade', 'table_config.json'),
        out,
        threads: Number(arg('threads', '1')),
        geoipCity: join(fixtures, 'geoip', 'GeoIP2-City-Test.mmdb'),
        geoipAsn: join(fixtures, 'geoip', 'GeoLite2-ASN-Test.mmdb'),
      },
      process.stdin,
      () => undefined,
    );
    // Timed up to here: removing the benchmark's output afterwards is not part of the transform.
    secs = Number(process.hrtime.bigint() - started) / 1e9;
    cpu = process.cpuUsage(cpuAtStart);
    rmSync(out, { recursive: true, force: true });
    events = Object.values(eventTotals(summary.counts)).reduce((s, n) => s + n, 0);
    bytes = summary.counts.inputBytes;
  }
  const usage = process.resourceUsage();
  const rssMb = usage.maxRSS / 1024;
  // CPU time of every thread of the process (transform threads, zlib, V8's GC
  // and compiler threads) over the timed part, as for secs.
  const cpuSecs = (cpu.user + cpu.system) / 1e6;
  process.stdout.write(JSON.stringify({ mode, secs, events, bytes, rssMb, cpuSecs }) + '\n');
}

async function main(): Promise<void> {
  if (process.argv.includes('--child')) return child();
  const mb = positiveNumber('mb', 256);
  const corpus = resolve(arg('corpus', join(tmpdir(), `spade-bench-corpus-${mb}mb`)));
  const configPath = join(fixtures, 'spade', 'table_config.json');
  if (!existsSync(configPath)) throw new Error(`fixtures not found at ${fixtures} (set SPADE_FIXTURES)`);
  if (!existsSync(join(corpus, '.complete'))) {
    rmSync(corpus, { recursive: true, force: true });
    mkdirSync(corpus, { recursive: true });
    const schemas = parseTableConfig(readFileSync(configPath, 'utf8'), configPath);
    // About 1.9 KB of edge line per event with this config's 20-40 columns.
    const events = Math.round((mb * 1024 * 1024) / 1900);
    process.stdout.write(`generating ~${mb} MB of edge lines (${events} events) in ${corpus} ...\n`);
    const startSec = Date.UTC(2023, 10, 5, 0, 0, 0) / 1000;
    await generateEdgeLogs(new LocalStore(corpus), {
      schemas,
      startSec,
      endSec: startSec + 86_400,
      events,
      fileSpanSec: Math.max(60, Math.floor(86_400 / Math.max(8, Math.round(mb / 32)))),
      seed: 7,
    });
    execFileSync('touch', [join(corpus, '.complete')]);
  }
  const files = listFiles(corpus);
  const gz = files.reduce((s, f) => s + statSync(f).size, 0);
  process.stdout.write(`corpus: ${files.length} files, ${(gz / 1e6).toFixed(0)} MB gzip\n`);
  // The single-file case: the corpus's lines as one file (gzip members concatenated, as
  // `cat *.gz` makes), the corpus repeated until the file holds --single-mb MB of edge lines.
  const singleMb = positiveNumber('single-mb', 200);
  const single = `${corpus}-single-${singleMb}mb`;
  if (!existsSync(join(single, '.complete'))) {
    rmSync(single, { recursive: true, force: true });
    mkdirSync(single, { recursive: true });
    let lineBytes = 0;
    while (lineBytes < singleMb * 1e6) {
      for (const f of files) {
        const gzBytes = readFileSync(f);
        appendFileSync(join(single, 'all.log.gz'), gzBytes);
        lineBytes += gunzipSync(gzBytes).length;
      }
    }
    execFileSync('touch', [join(single, '.complete')]);
  }
  process.stdout.write(
    `single file: ${(statSync(join(single, 'all.log.gz')).size / 1e6).toFixed(0)} MB gzip (${single})\n`,
  );
  const script = fileURLToPath(import.meta.url);
  const outDir = arg('out-dir', defaultOutDir());
  process.stdout.write(`transform output under ${outDir}\n`);
  const cases = arg('cases', 'multi,single').split(',');
  type Run = { secs: number; events: number; bytes: number; rssMb: number; cpuSecs: number };
  const run = (mode: string, threads: number, input: string): Run => {
    const out = execFileSync(
      process.execPath,
      [script, '--child', mode, '--threads', String(threads), '--input', input, '--out-dir', outDir],
      {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      },
    );
    return JSON.parse(out.trim().split('\n').pop()!) as Run;
  };
  // This VM's speed drifts by 10-20% over minutes: each round measures the floor and the
  // transforms back to back, and the medians over the rounds are reported.
  const rounds = positiveNumber('rounds', 3);
  const line = (label: string, r: Run): string =>
    `${label.padEnd(30)} ${(r.events / r.secs / 1000).toFixed(1).padStart(8)} k events/s ${(r.bytes / 1e6 / r.secs).toFixed(1).padStart(7)} MB/s input ` +
    `${r.secs.toFixed(1).padStart(6)} s  peak RSS ${r.rssMb.toFixed(0)} MB  ${(r.cpuSecs / r.secs).toFixed(2)} cores busy`;
  const median = (xs: number[]): number => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
  };
  /** Per case: events/s, peak RSS and cores busy of each run, by thread count. */
  const runs = new Map<string, Run[]>();
  const record = (key: string, label: string, r: Run): Run => {
    runs.set(key, [...(runs.get(key) ?? []), r]);
    process.stdout.write(line(`  ${label}`, r) + '\n');
    return r;
  };
  const floors: number[] = [];
  const gunzipMbps: number[] = [];
  for (let r = 1; r <= rounds; r++) {
    process.stdout.write(`round ${r}/${rounds}\n`);
    const floor = run('floor', 1, corpus);
    process.stdout.write(line('  decode floor (1 thr)', floor) + '\n');
    floors.push(floor.events / floor.secs);
    if (cases.includes('multi')) {
      record('multi-1', `${files.length} files, 1 thread`, run('transform', 1, corpus));
      record('multi-2', `${files.length} files, 2 threads`, run('transform', 2, corpus));
    }
    if (cases.includes('single')) {
      const g = run('gunzip', 1, single);
      gunzipMbps.push(g.bytes / 1e6 / g.secs);
      process.stdout.write(
        `  ${'gunzip of 1 file (1 core)'.padEnd(30)} ${(g.bytes / 1e6 / g.secs).toFixed(1).padStart(7)} MB/s of edge lines ` +
          `${g.secs.toFixed(1).padStart(6)} s  (the single-file reader without the cutting)\n`,
      );
      record('single-1', '1 file, 1 thread', run('transform', 1, single));
      record('single-2', '1 file, 2 threads', run('transform', 2, single));
    }
  }
  const eps = (key: string): number[] => (runs.get(key) ?? []).map((x) => x.events / x.secs);
  const k = (xs: number[]): string => `${(median(xs) / 1000).toFixed(1)} k events/s`;
  const cpus = availableParallelism();
  process.stdout.write(`\nmedians over ${rounds} round(s); decode floor ${k(floors)} (1 thread)\n`);
  for (const c of cases) {
    const one = runs.get(`${c}-1`) ?? [];
    const two = runs.get(`${c}-2`) ?? [];
    if (one.length === 0) continue;
    const scaling = one.map((o, i) => two[i]!.events / two[i]!.secs / (o.events / o.secs));
    const coresOne = median(one.map((x) => x.cpuSecs / x.secs));
    const title =
      c === 'multi'
        ? `${files.length} files (one per task)`
        : '1 file (1 thread: read by that thread; 2 threads: read by the main thread, spread in chunks)';
    process.stdout.write(
      `${title}:\n` +
        `  transform 1 thread ${k(eps(`${c}-1`))}, 2 threads ${k(eps(`${c}-2`))}\n` +
        `  transform/floor per thread: ${median(eps(`${c}-1`).map((e, i) => e / floors[i]!)).toFixed(2)} (target >= 0.5)\n` +
        `  2 threads / 1 thread: ${median(scaling).toFixed(2)} (target >= ${c === 'multi' ? '1.8' : '1.6'}; rounds ${scaling.map((x) => x.toFixed(2)).join(' ')})\n` +
        `  peak RSS: 1 thread ${Math.max(...one.map((x) => x.rssMb)).toFixed(0)} MB, 2 threads ${Math.max(...two.map((x) => x.rssMb)).toFixed(0)} MB (largest over the rounds${c === 'single' ? '; target at 2 threads < 250 MB' : ''})\n` +
        // One transform thread keeps c > 1 cores busy (zlib, GC and compiler threads):
        // with N cores, 2 threads can be at most min(2c, N) / c times faster than one.
        `  cores busy: 1 thread ${coresOne.toFixed(2)}, 2 threads ${median(two.map((x) => x.cpuSecs / x.secs)).toFixed(2)} of ${cpus}` +
        ` (2 threads can be at most ${(Math.min(2 * coresOne, cpus) / coresOne).toFixed(2)}x one thread here)\n`,
    );
  }
  if (gunzipMbps.length > 0) {
    // One reader inflates the single file for every thread: past this, more threads add nothing.
    const bytesPerEvent = median((runs.get('single-1') ?? []).map((x) => x.bytes / x.events));
    process.stdout.write(
      `gunzip on one core: ${median(gunzipMbps).toFixed(0)} MB/s of edge lines, a ceiling of ` +
        `${((median(gunzipMbps) * 1e6) / bytesPerEvent / 1000).toFixed(0)} k events/s for one input spread over any number of threads\n`,
    );
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
