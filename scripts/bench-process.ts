/**
 * `npm run bench:process [-- --minutes 10 --threads N --mb 1024 --backlog-files 48]`:
 * the continuous processor (`spade process --follow`) on a local edge
 * directory into which input keeps arriving faster than it can be processed.
 *
 * - The corpus (N MiB of gzip edge logs from the real table_config.json, GeoIP
 *   test DBs; cached, shared with bench:replay) is first transformed by the
 *   transform benchmark's own code (`bench-transform.js --child transform`) with
 *   the same threads: the reference rate.
 * - Then the processor runs as a child process for `--minutes`. A feeder
 *   hard-links corpus files into today's date prefix under fresh keys (no disk
 *   used) so that at least `--backlog-files` arrived files are never committed
 *   yet: the processor never runs dry. Every 2 s the bench reads its
 *   Prometheus endpoint (events committed, lag) and RSS is sampled from /proc.
 * - At the end it is stopped with SIGTERM (graceful stop) and the figures are
 *   printed: sustained events/s (committed events over the run) against the
 *   reference, peak RSS (/usr/bin/time -v) with the per-quarter maxima (flat
 *   memory), the lag at the end and its peak, the backlog that was kept.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { utcDate } from '../worker/process/checkpoint.js';
import { parseTableConfig } from '../worker/transform/schema.js';
import { fixturesDir, repoRoot } from '../test/helpers/fixtures.js';
import { freePort } from '../test/helpers/ports.js';
import { arg, positiveNumber, say } from './bench/args.js';
import { cleanup, cleanups, onSignal } from './bench/cleanup.js';
import { ensureCorpus, type CorpusFile } from './bench/corpus.js';
import { rssProfile, runMeasured } from './bench/measure.js';

const execFileP = promisify(execFile);

interface Scrape {
  secs: number;
  events: number;
  filesCommitted: number;
  lagSeconds: number;
}

/** Sums every sample of `name` in a Prometheus text page. */
function metricSum(page: string, name: string): number {
  let sum = 0;
  for (const line of page.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function scrape(url: string, token: string, started: number): Promise<Scrape | null> {
  try {
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) return null;
    const page = await res.text();
    return {
      secs: (Date.now() - started) / 1000,
      events: metricSum(page, 'spade_events_total'),
      filesCommitted: metricSum(page, 'spade_input_files_committed_total'),
      lagSeconds: metricSum(page, 'spade_lag_seconds'),
    };
  } catch {
    return null; // not up yet, or stopping
  }
}

/**
 * The transform benchmark's rate on the same corpus and threads (its own child
 * mode), writing its output beside the processor's (in the temp dir), not on
 * the tmpfs that bench:transform itself prefers: same storage, same costs.
 */
async function referenceRate(corpusDir: string, threads: number): Promise<{ eps: number; secs: number }> {
  const script = join(repoRoot(), 'dist', 'scripts', 'bench-transform.js');
  const { stdout } = await execFileP(
    process.execPath,
    [script, '--child', 'transform', '--threads', String(threads), '--input', corpusDir, '--out-dir', tmpdir()],
    { maxBuffer: 1 << 20 },
  );
  const r = JSON.parse(stdout.trim().split('\n').pop()!) as { secs: number; events: number };
  return { eps: r.events / r.secs, secs: r.secs };
}

async function main(): Promise<void> {
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const minutes = positiveNumber('minutes', 10, false);
  const threads = positiveNumber('threads', availableParallelism());
  const mb = positiveNumber('mb', 1024);
  const backlogFiles = positiveNumber('backlog-files', 48);
  const configPath = join(fixturesDir(), 'spade', 'table_config.json');
  const schemas = parseTableConfig(readFileSync(configPath, 'utf8'), configPath);
  const corpusDir = resolve(arg('corpus', join(tmpdir(), `spade-bench-replay-corpus-${mb}mb`)));
  const corpus = await ensureCorpus(corpusDir, mb, schemas, say);
  const perFileEvents = corpus.events / corpus.files.length;
  say(
    `machine: ${cpus()[0]?.model ?? '?'} x${availableParallelism()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
      `Linux ${release()}, Node ${process.version}; load average at start ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );
  say(`corpus: ${corpus.files.length} files, ${(corpus.bytes / 1e6).toFixed(0)} MB gzip, ${corpus.events} events`);

  say(`reference: bench:transform's transform, ${threads} thread(s), same corpus ...`);
  const reference = await referenceRate(corpus.dir, threads);
  say(`  ${(reference.eps / 1000).toFixed(1)} k events/s (${reference.secs.toFixed(1)} s)`);

  const scratch = mkdtempSync(join(tmpdir(), 'spade-bench-process-'));
  cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
  const inputDir = join(scratch, 'edge');
  const outputDir = join(scratch, 'out');
  const stateDir = join(scratch, 'state');
  mkdirSync(inputDir);
  const today = utcDate(Date.now());
  const port = await freePort();
  const token = randomBytes(16).toString('hex');
  const metricsUrl = `http://127.0.0.1:${port}/metrics`;

  // The feeder: corpus files under new keys `<today>/edge-asg/<sec>.bench<n>.log.gz`.
  mkdirSync(join(inputDir, today, 'edge-asg'), { recursive: true });
  let linked = 0;
  let linkedEvents = 0;
  // Keys carry the arrival time (as an edge's do), so the processor's lag metric is in real seconds.
  const feed = (count: number): void => {
    const sec = Math.floor(Date.now() / 1000);
    for (let i = 0; i < count; i++) {
      const f = corpus.files[linked % corpus.files.length] as CorpusFile;
      linkSync(f.path, join(inputDir, today, 'edge-asg', `${sec}.bench${linked}.log.gz`));
      linked++;
      linkedEvents += perFileEvents;
    }
  };
  feed(backlogFiles);

  const spade = join(repoRoot(), 'dist', 'driver', 'cli', 'spade.js');
  const args = [
    spade,
    'process',
    '--follow',
    '--input',
    inputDir,
    '--output',
    outputDir,
    '--state-dir',
    stateDir,
    '--config',
    configPath,
    '--geoip-city',
    join(fixturesDir(), 'geoip', 'GeoIP2-City-Test.mmdb'),
    '--geoip-asn',
    join(fixturesDir(), 'geoip', 'GeoLite2-ASN-Test.mmdb'),
    '--threads',
    String(threads),
    '--poll-seconds',
    '2',
    '--start-date',
    today,
    '--metrics-port',
    String(port),
    // The transform is measured: no load into the embedded default warehouse.
    '--skip-ace-upload',
  ];
  const stop = new AbortController();
  cleanups.push(() => stop.abort());
  say(
    `processor: ${threads} thread(s), ${minutes} min, default batches (10 min / 1024 MB of input), ` +
      `backlog kept >= ${backlogFiles} files ...`,
  );
  const started = Date.now();
  const run = runMeasured(process.execPath, args, {
    env: { ...process.env, SPADE_METRICS_TOKEN: token },
    stdoutFile: join(scratch, 'process.out'),
    stderrFile: join(scratch, 'process.err'),
    timeFile: join(scratch, 'time.txt'),
    signal: stop.signal,
    stopCommandOnly: true,
    sampleMs: 1000,
  });
  const scrapes: Scrape[] = [];
  let minBacklog = Infinity;
  const poller = setInterval(() => {
    void scrape(metricsUrl, token, started).then((s) => {
      if (s === null) return;
      scrapes.push(s);
      const backlog = linked - s.filesCommitted;
      minBacklog = Math.min(minBacklog, backlog);
      if (backlog < 2 * backlogFiles) feed(2 * backlogFiles - backlog);
      const last = scrapes.length % 30 === 0;
      if (last) {
        say(
          `  ${s.secs.toFixed(0)} s: ${(s.events / 1e6).toFixed(2)} M events committed, backlog ${backlog} files, lag ${s.lagSeconds} s`,
        );
      }
    });
  }, 2000);
  const timer = setTimeout(() => stop.abort(), minutes * 60_000);
  const measured = await run;
  clearInterval(poller);
  clearTimeout(timer);
  const window = minutes * 60;
  const stderr = readFileSync(join(scratch, 'process.err'), 'utf8');
  if (measured.code !== 0) {
    throw new Error(`processor exited with ${measured.code}:\n${stderr.split('\n').slice(-20).join('\n')}`);
  }
  // Events committed by the end of the window (before the graceful stop's last commit), and in steady state.
  const inWindow = scrapes.filter((s) => s.secs <= window + 1);
  const atEnd = inWindow[inWindow.length - 1];
  const firstCommit = inWindow.find((s) => s.events > 0);
  if (atEnd === undefined || firstCommit === undefined || atEnd === firstCommit) {
    throw new Error(`too few commits to measure (run longer):\n${stderr.split('\n').slice(-20).join('\n')}`);
  }
  const sustained = atEnd.events / atEnd.secs;
  // Steady state: from the first commit to the last one in the window (commits are seen within 2 s).
  const lastCommit = inWindow.find((s) => s.events === atEnd.events) as Scrape;
  const commits = new Set(inWindow.map((s) => s.events)).size - (inWindow[0]!.events === 0 ? 1 : 0);
  const steady =
    lastCommit.secs > firstCommit.secs
      ? (lastCommit.events - firstCommit.events) / (lastCommit.secs - firstCommit.secs)
      : NaN;
  const quarters = rssProfile(measured, 4).map((kb) => (kb / 1024).toFixed(0));
  const maxLag = Math.max(...inWindow.map((s) => s.lagSeconds));
  say('');
  say('--- bench:process ---');
  say(
    `machine load average at end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  say(`reference (transform, ${threads} thr): ${(reference.eps / 1000).toFixed(1)} k events/s`);
  say(
    `processor over ${atEnd.secs.toFixed(0)} s: ${(atEnd.events / 1e6).toFixed(2)} M events committed = ` +
      `${(sustained / 1000).toFixed(1)} k events/s (${(sustained / reference.eps).toFixed(2)} of the reference, target >= 0.9); ` +
      `between the first and last of ${commits} commits ${(steady / 1000).toFixed(1)} k events/s (${(steady / reference.eps).toFixed(2)})`,
  );
  say(
    `input arrived: ${linked} files (~${(linkedEvents / 1e6).toFixed(2)} M events); backlog of uncommitted files never below ${minBacklog}`,
  );
  say(`lag at end ${atEnd.lagSeconds} s, peak ${maxLag} s (input arrives faster than it is processed, so it grows)`);
  say(
    `peak RSS ${(measured.maxRssKb / 1024).toFixed(0)} MB (${measured.rssSource}); max RSS per quarter of the run: ${quarters.join(' / ')} MB; ` +
      `CPU ${measured.cpuSecs.toFixed(0)} s in ${measured.secs.toFixed(0)} s`,
  );
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
