/**
 * `npm run bench:transform [-- --mb N]`: generates a realistic corpus from the
 * real table_config.json (54 event types, GeoIP columns, 5% multi-event
 * payloads, 1% malformed lines), then measures in separate processes:
 * the decode-only floor (gunzip + outer JSON.parse + base64 + payload
 * JSON.parse), and the full transform with 1 and 2 threads: events/s, MB/s of
 * input, peak RSS.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';
import { LocalStore } from '../worker/store/local.js';
import { parseTableConfig } from '../worker/transform/schema.js';
import { generateEdgeLogs } from './generate/edge-logs.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixtures = process.env.SPADE_FIXTURES ?? resolve(root, '..', 'shared', 'fixtures');

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}

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

async function child(): Promise<void> {
  const mode = arg('child', '');
  const input = arg('input', '');
  const files = listFiles(input);
  const started = process.hrtime.bigint();
  let events: number;
  let bytes: number;
  if (mode === 'floor') {
    ({ events, bytes } = await decodeFloor(files));
  } else {
    const { transformCommand } = await import('../worker/cli/transform.js');
    const { eventTotals } = await import('../worker/transform/outcomes.js');
    const out = join(tmpdir(), `spade-bench-out-${process.pid}`);
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
    rmSync(out, { recursive: true, force: true });
    events = Object.values(eventTotals(summary.counts)).reduce((s, n) => s + n, 0);
    bytes = summary.counts.inputBytes;
  }
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  const rssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify({ mode, secs, events, bytes, rssMb }) + '\n');
}

async function main(): Promise<void> {
  if (process.argv.includes('--child')) return child();
  const mb = Number(arg('mb', '256'));
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
  const script = fileURLToPath(import.meta.url);
  const run = (mode: string, threads: number): { secs: number; events: number; bytes: number; rssMb: number } => {
    const out = execFileSync(
      process.execPath,
      [script, '--child', mode, '--threads', String(threads), '--input', corpus],
      {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      },
    );
    return JSON.parse(out.trim().split('\n').pop()!) as { secs: number; events: number; bytes: number; rssMb: number };
  };
  const rows: string[] = [];
  const report = (label: string, r: { secs: number; events: number; bytes: number; rssMb: number }): number => {
    const eps = r.events / r.secs;
    rows.push(
      `${label.padEnd(22)} ${(eps / 1000).toFixed(1).padStart(8)} k events/s ${(r.bytes / 1e6 / r.secs).toFixed(1).padStart(7)} MB/s input ` +
        `${r.secs.toFixed(1).padStart(6)} s  peak RSS ${r.rssMb.toFixed(0)} MB`,
    );
    process.stdout.write(rows[rows.length - 1] + '\n');
    return eps;
  };
  const floor = report('decode floor (1 thr)', run('floor', 1));
  const one = report('transform 1 thread', run('transform', 1));
  const two = report('transform 2 threads', run('transform', 2));
  process.stdout.write(
    `\ntransform/floor per thread: ${(one / floor).toFixed(2)} (target >= 0.5); 2 threads / 1 thread: ${(two / one).toFixed(2)} (target >= 1.8)\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
