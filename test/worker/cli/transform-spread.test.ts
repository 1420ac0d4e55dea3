/**
 * One input spread over every thread (worker/pool/spread.ts): the same rows,
 * counts and quarantine records as one thread reading it, line numbers and
 * sources the input's own, damage reported as for a file read whole, and
 * memory bounded while a slow output store holds the threads back.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { createGzip, constants as zlibConstants, gunzipSync, gzipSync } from 'node:zlib';
import { transformCommand } from '../../../worker/cli/transform.js';
import { repoRoot } from '../../helpers/fixtures.js';
import { listFiles } from '../../helpers/list-files.js';
import { DEMO_CONFIG, runSpade, SPADE } from '../../helpers/replay-env.js';
import { startS3Proxy } from '../../helpers/s3proxy.js';
import { startS3Server } from '../../helpers/s3server.js';

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64');
const edge = (uuid: string, data: string): string =>
  JSON.stringify({ receivedAt: '2023-11-05T10:00:00.250Z', clientIp: '1.2.3.4', uuid, data, recordversion: 3 });

/** Line `i` of a test corpus: mostly tracked events, some multi-event, untracked, and every kind of malformed line. */
function corpusLine(i: number): string {
  const login = {
    event: 'login',
    properties: { time: 1699178400 + i, login: `user${i}`, user_id: i, platform: 'web' },
  };
  switch (i % 101) {
    case 7:
      return '{"clientIp": "1.2.3.4", "receivedAt": "broken';
    case 19:
      return edge(`bad-b64-${i}`, 'not*base64!');
    case 23:
      return edge(`not-json-${i}`, b64('{"event": "login", "prop'));
    case 31:
      return '';
    case 43:
      return edge(`multi-${i}`, b64([login, { event: 'video_play', properties: { channel: `c${i}` } }]));
    case 59:
      return edge(`untracked-${i}`, b64({ event: 'no_such_event', properties: { n: i } }));
    default:
      return edge(`u${i}`, b64(login));
  }
}

function corpus(lines: number): string {
  return Array.from({ length: lines }, (_, i) => corpusLine(i)).join('\n') + '\n';
}

const gzLines = (file: string): string[] => gunzipSync(readFileSync(file)).toString('utf8').split('\n').filter(Boolean);

interface Output {
  /** Per table directory (e.g. `login/v0`), its rows sorted. */
  rows: Map<string, string[]>;
  /** Quarantine records, sorted. */
  quarantine: { source: string; lineNo: number; reason: string; text: string }[];
  /** Output series (file tags) that wrote rows of login/v0. */
  loginSeries: Set<string>;
}

function readOutput(out: string): Output {
  const rows = new Map<string, string[]>();
  const quarantine: Output['quarantine'] = [];
  const loginSeries = new Set<string>();
  for (const f of listFiles(out)) {
    const rel = relative(out, f).split('/');
    const name = rel.pop()!;
    const dir = rel.join('/');
    if (dir === '_quarantine') quarantine.push(...gzLines(f).map((l) => JSON.parse(l) as Output['quarantine'][0]));
    else rows.set(dir, [...(rows.get(dir) ?? []), ...gzLines(f)]);
    if (dir === 'login/v0') loginSeries.add(name.replace(/-\d{5}\.tsv\.gz$/, ''));
  }
  for (const v of rows.values()) v.sort();
  quarantine.sort((a, b) => a.source.localeCompare(b.source) || a.lineNo - b.lineNo);
  return { rows, quarantine, loginSeries };
}

const countsLine = (stderr: string): string => /^lines \d+.*$/m.exec(stderr)?.[0] ?? `no counts in:\n${stderr}`;
/** The counts line's items (`decoded 38416`, `bad_json 396`, ...) sorted: threads meet malformed reasons in any order. */
const countItems = (line: string): string[] =>
  line
    .split(/[,|:]/)
    .map((s) => s.trim())
    .sort();
const sourceAndLine = (o: Output): string[] => o.quarantine.map((q) => `${q.source}:${q.lineNo}`);

test('one file of several MB with 1 and 4 threads, and from stdin: the same rows, counts and quarantine', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spade-spread-'));
  const text = corpus(40_000); // ~10 MB: chunks of 2 MiB, several per thread
  const input = join(dir, 'edge.log.gz');
  writeFileSync(input, gzipSync(text));
  const run = async (name: string, threads: number, stdin?: Buffer): Promise<{ counts: string; out: Output }> => {
    const out = join(dir, name);
    const args = ['transform', ...(stdin ? [] : [input]), '--config', DEMO_CONFIG, '--out', out];
    const res = await runSpade([...args, '--threads', String(threads)], {}, stdin);
    assert.equal(res.code, 0, res.stderr);
    return { counts: countsLine(res.stderr), out: readOutput(out) };
  };
  const one = await run('one', 1);
  const four = await run('four', 4);
  const stdin = await run('stdin', 4, readFileSync(input));

  const malformed = Array.from({ length: 40_000 }, (_, i) => [7, 19, 23, 31].includes(i % 101)).filter(Boolean).length;
  assert.match(
    one.counts,
    new RegExp(`^lines 40000, decoded ${40_000 - malformed}, filtered 0, malformed ${malformed} `),
  );
  assert.ok(one.out.rows.get('login/v0')!.length > 35_000);
  for (const other of [four, stdin]) {
    assert.deepEqual(countItems(other.counts), countItems(one.counts));
    assert.deepEqual([...other.out.rows.keys()].sort(), [...one.out.rows.keys()].sort());
    for (const [table, rows] of one.out.rows) assert.deepEqual(other.out.rows.get(table), rows, `rows of ${table}`);
  }
  assert.deepEqual(sourceAndLine(four.out), sourceAndLine(one.out));
  // Standard input is named `stdin`, its line numbers those of the same lines in the file.
  assert.ok(stdin.out.quarantine.every((q) => q.source === 'stdin'));
  const lines = text.split('\n');
  for (const q of stdin.out.quarantine) assert.equal(q.text, lines[q.lineNo - 1], `text of line ${q.lineNo}`);
  assert.deepEqual(
    stdin.out.quarantine.map((q) => `${q.lineNo} ${q.reason}`),
    one.out.quarantine.map((q) => `${q.lineNo} ${q.reason}`),
  );
  // The one file kept more than one thread busy: each thread writes its own series.
  assert.ok(four.out.loginSeries.size >= 2, `login rows from ${four.out.loginSeries.size} series`);
  assert.ok(stdin.out.loginSeries.size >= 2, `login rows from ${stdin.out.loginSeries.size} series`);
  assert.equal(one.out.loginSeries.size, 1);
});

test('small chunks: a truncated gzip, lines longer than a chunk and than the limit, no final LF: as one thread reads them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spade-spread-'));
  const long = edge('long', b64({ event: 'login', properties: { login: 'x'.repeat(300_000) } }));
  const body = corpus(3000).split('\n');
  body.splice(1500, 0, long);
  const clean = join(dir, 'clean.log');
  // Beyond the line limit (64 MiB): quarantined as line_too_long with its first MiB.
  const tooLong = 'y'.repeat(65 * 1024 * 1024);
  writeFileSync(clean, [...body.slice(0, 2000), tooLong, ...body.slice(2000)].join('\n').trimEnd()); // no final LF
  const gz = gzipSync(body.join('\n'));
  const cut = join(dir, 'cut.log.gz');
  writeFileSync(cut, gz.subarray(0, Math.floor(gz.length * 0.7)));
  const readable = gunzipSync(readFileSync(cut), { finishFlush: zlibConstants.Z_SYNC_FLUSH });

  const transform = (inputs: string[], threads: number, out: string): ReturnType<typeof transformCommand> =>
    transformCommand(
      { inputs, config: DEMO_CONFIG, out: join(dir, out), threads, chunkBytes: 16 * 1024, acceptDamagedInput: true },
      undefined,
      () => undefined,
    );
  // Reference: one thread reads each file whole (one file per task).
  const ref = [await transform([clean], 1, 'ref-clean'), await transform([cut], 1, 'ref-cut')];
  const spread = await transform([clean, cut], 3, 'spread');

  const refOut = [readOutput(join(dir, 'ref-clean')), readOutput(join(dir, 'ref-cut'))];
  const out = readOutput(join(dir, 'spread'));
  assert.equal(spread.counts.lines, ref[0]!.counts.lines + ref[1]!.counts.lines);
  assert.equal(spread.counts.malformedLines, ref[0]!.counts.malformedLines + ref[1]!.counts.malformedLines);
  assert.equal(spread.counts.inputBytes, ref[0]!.counts.inputBytes + ref[1]!.counts.inputBytes);
  const bySourceAndLine = (a: Output['quarantine'][0], b: Output['quarantine'][0]): number =>
    a.source.localeCompare(b.source) || a.lineNo - b.lineNo;
  assert.deepEqual(out.quarantine, [...refOut[0]!.quarantine, ...refOut[1]!.quarantine].sort(bySourceAndLine));
  assert.equal(out.quarantine.at(-1)!.reason, 'truncated_input');
  assert.ok(out.quarantine.some((q) => q.reason === 'line_too_long' && q.lineNo === 2001));
  for (const [table, rows] of out.rows) {
    const expected = [...(refOut[0]!.rows.get(table) ?? []), ...(refOut[1]!.rows.get(table) ?? [])].sort();
    assert.deepEqual(rows, expected, `rows of ${table}`);
  }
  assert.ok(out.loginSeries.size >= 2, `login rows from ${out.loginSeries.size} series`);
  // The damage is reported with what was read, as for the file read whole.
  assert.equal(spread.inputErrors.length, 1);
  const [damage] = spread.inputErrors;
  assert.equal(damage!.source, cut);
  assert.equal(damage!.bytes, readable.length);
  assert.equal(damage!.lines, ref[1]!.inputErrors[0]!.lines);
  assert.equal(damage!.lines, readable.toString('utf8').split('\n').length);
});

/**
 * Bound on the peak RSS of `spade transform --threads 2` on 100 MB of edge
 * lines on stdin while the output store is slow. Measured on a loaded 2-core
 * machine: 217-236 MB with chunks of 2 MiB whose buffers go back to the reader;
 * 375 MB before (16 MiB chunks, two per thread in flight, each freed only by
 * a full collection of the thread that read it).
 */
const PEAK_RSS_BOUND_MB = 300;

test('memory stays bounded with a slow output store: 100 MB on stdin over 2 threads', async (t) => {
  const s3 = await startS3Server(t, { buckets: ['out'] });
  const proxy = await startS3Proxy(t, s3.endpoint);
  proxy.writeDelayMs = 20;
  const dir = mkdtempSync(join(tmpdir(), 'spade-spread-'));
  const input = join(dir, 'big.log.gz');
  const lines = 400_000; // ~100 MB of edge lines
  await pipeline(
    (function* () {
      for (let i = 0; i < lines; i += 1000) {
        let s = '';
        for (let j = i; j < i + 1000; j++) s += corpusLine(j) + '\n';
        yield s;
      }
    })(),
    createGzip({ level: 1 }),
    createWriteStream(input),
  );
  const peakRss = join(repoRoot(), 'dist', 'test', 'helpers', 'peak-rss.js');
  const args = ['transform', '--config', DEMO_CONFIG, '--out', 's3://out/t', '--threads', '2', '--rotate-mb', '4'];
  const res = await new Promise<{ code: number; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', peakRss, SPADE, ...args], {
      env: { ...process.env, ...s3.env, SPADE_S3_ENDPOINT: proxy.endpoint },
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
    child.stdin.end(readFileSync(input));
  });
  assert.equal(res.code, 0, res.stderr);
  assert.match(countsLine(res.stderr), /^lines 400000, /);
  const peakMb = Number(/peak-rss-kb (\d+)/.exec(res.stderr)![1]) / 1024;
  t.diagnostic(`peak RSS ${peakMb.toFixed(0)} MB`);
  assert.ok(peakMb < PEAK_RSS_BOUND_MB, `peak RSS ${peakMb.toFixed(0)} MB, bound ${PEAK_RSS_BOUND_MB} MB`);
});
