/**
 * `spade process` on standard input spread over the pool's threads: the same
 * rows, counts and quarantine with one thread (transformed on the main
 * thread) and with three (chunks to the pool), and the same as `spade
 * transform` makes of the same lines; and a stdin batch killed (SIGKILL) while
 * its threads wrote is salvaged from their spool files at the next start.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, test } from 'node:test';
import { deflateRawSync, gunzipSync } from 'node:zlib';
import { transformCommand } from '../../../worker/cli/transform.js';
import type { WrittenFile } from '../../../worker/output/writers.js';
import { salvageGzip } from '../../../worker/output/salvage.js';
import type { BatchManifest } from '../../../worker/process/batch.js';
import { utcDate } from '../../../worker/process/checkpoint.js';
import { encodeGlobLine } from '../../../worker/process/globs.js';
import { LocalStore } from '../../../worker/store/local.js';
import { emptyCounts, mergeCounts, type OutcomeCounts } from '../../../worker/transform/outcomes.js';
import { repoRoot } from '../../helpers/fixtures.js';
import { DEMO_CONFIG, SPADE } from '../../helpers/replay-env.js';
import { startS3Proxy } from '../../helpers/s3proxy.js';
import { startS3Server } from '../../helpers/s3server.js';
import {
  committedOutput,
  killRunningProcessors,
  sortedEntries,
  startProcessor,
  tempDir,
  waitUntil,
} from './harness.js';

after(killRunningProcessors);

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64');
const edge = (uuid: string, data: string): string =>
  JSON.stringify({ receivedAt: '2026-01-01T10:00:00.250Z', clientIp: '1.2.3.4', uuid, data, recordversion: 3 });
const login = (i: number): unknown => ({
  event: 'login',
  properties: { time: 1767261600 + i, login: `user${i}`, user_id: i, platform: 'web' },
});

/** Edge line `i`: mostly tracked events, some multi-event, untracked, CRLF-ended, and malformed ones. */
function edgeLine(i: number): string {
  switch (i % 97) {
    case 5:
      return '{"clientIp": "1.2.3.4", "receivedAt": "broken';
    case 17:
      return edge(`bad-b64-${i}`, 'not*base64!');
    case 29:
      return '';
    case 41:
      return edge(`multi-${i}`, b64([login(i), { event: 'video_play', properties: { channel: `c${i}` } }]));
    case 53:
      return edge(`untracked-${i}`, b64({ event: 'no_such_event', properties: { n: i } }));
    case 67:
      return edge(`crlf-${i}`, b64(login(i))) + '\r';
    default:
      return edge(`u${i}`, b64(login(i)));
  }
}

/** The events of glob `g`: login events, and in every fifth glob one whose payload does not decode. */
function globEvents(g: number): unknown[] {
  return Array.from({ length: 20 }, (_, j) =>
    JSON.parse(g % 5 === 0 && j === 7 ? edge(`g${g}-bad`, 'not*base64!') : edge(`g${g}-${j}`, b64(login(g * 100 + j)))),
  );
}

const glob = (events: unknown[]): string => encodeGlobLine(events, (b) => deflateRawSync(b));

interface Corpus {
  /** Standard input: edge lines with globs among them, no LF after the last line. */
  text: string;
  /** The same lines with every glob line emptied (what `spade transform` sees of the edge lines). */
  blanked: string;
  blankedLines: number;
  /** The edge lines of the globs the processor must transform (not the duplicate, not the bad one). */
  globLines: string;
  /** Line number of the undecodable glob. */
  badGlobLineNo: number;
  /** `stdin-glob` line numbers of the glob events whose payload does not decode. */
  badGlobEventLineNos: number[];
}

function corpus(edgeLines: number): Corpus {
  const lines: string[] = [];
  const blanked: string[] = [];
  const globLines: string[] = [];
  const badGlobEventLineNos: number[] = [];
  let badGlobLineNo = 0;
  let g = 0;
  let firstGlob = '';
  for (let i = 0; i < edgeLines; i++) {
    if (i % 300 === 150) {
      const events = globEvents(g);
      const line = glob(events);
      firstGlob ||= line;
      if (g % 5 === 0) badGlobEventLineNos.push(lines.length + 1 + 7);
      lines.push(line);
      blanked.push('');
      globLines.push(...events.map((e) => JSON.stringify(e)));
      g++;
    }
    if (i === 3000) {
      lines.push(firstGlob); // the same first uuid within 5 minutes: skipped whole
      blanked.push('');
    }
    if (i === 4000) {
      badGlobLineNo = lines.length + 1;
      lines.push('AQAAAAAA'); // version 1, but not valid DEFLATE
      blanked.push('');
    }
    lines.push(edgeLine(i));
    blanked.push(edgeLine(i));
  }
  return {
    text: lines.join('\n'),
    blanked: blanked.join('\n'),
    blankedLines: blanked.filter((l, k) => l === '' && lines[k] !== '').length,
    globLines: globLines.join('\n') + '\n',
    badGlobLineNo,
    badGlobEventLineNos,
  };
}

interface Quarantined {
  source: string;
  lineNo: number;
  reason: string;
  text: string;
}

interface Output {
  /** Per table (`event/v<version>`), its rows sorted. */
  rows: Map<string, string[]>;
  nontracked: string[];
  /** Sorted by source, then line number. */
  quarantine: Quarantined[];
}

const gzLines = (data: Buffer): string[] => gunzipSync(data).toString('utf8').split('\n').filter(Boolean);

async function readOutput(store: LocalStore, files: WrittenFile[]): Promise<Output> {
  const out: Output = { rows: new Map(), nontracked: [], quarantine: [] };
  for (const f of files) {
    const lines = gzLines(await store.readBytes(f.key));
    if (f.kind === 'rows') {
      const table = `${f.event}/v${f.version}`;
      out.rows.set(table, [...(out.rows.get(table) ?? []), ...lines]);
    } else if (f.kind === 'nontracked') out.nontracked.push(...lines);
    else out.quarantine.push(...lines.map((l) => JSON.parse(l) as Quarantined));
  }
  for (const rows of out.rows.values()) rows.sort();
  out.nontracked.sort();
  out.quarantine.sort((a, b) => a.source.localeCompare(b.source) || a.lineNo - b.lineNo);
  return out;
}

function runProcess(
  args: string[],
  input: string | Buffer | Readable,
  opts: { env?: Record<string, string>; nodeArgs?: string[] } = {},
): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), SPADE, ...args], {
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
    child.stdin.on('error', () => undefined); // a processor that fails stops reading
    if (input instanceof Readable) input.pipe(child.stdin);
    else child.stdin.end(input);
  });
}

/** Spool files of stdin batches written by their pool tasks (`<batch>-t<n>`), with their complete lines. */
async function spooled(state: string): Promise<{ batch: string; name: string; lines: number }[]> {
  const spool = join(state, 'spool');
  const found = [];
  for (const name of existsSync(spool) ? readdirSync(spool) : []) {
    if (!name.endsWith('.json')) continue;
    const batch = name.slice(0, -'.json'.length);
    for (const file of existsSync(join(spool, batch)) ? readdirSync(join(spool, batch)) : []) {
      if (!/-t\d+-\d{5}\.tsv\.gz$/.test(file)) continue;
      let data: Buffer;
      try {
        data = readFileSync(join(spool, batch, file));
      } catch {
        continue; // uploaded and removed meanwhile
      }
      found.push({ batch, name: file, lines: data.length > 0 ? (await salvageGzip(data)).lines : 0 });
    }
  }
  return found;
}

test('several MB of stdin with 1 and 3 threads: the same rows, counts and quarantine, as spade transform makes them', async (t) => {
  const dir = tempDir(t, 'stdin-threads');
  const c = corpus(24_000);
  assert.ok(c.text.length > 5 * 1024 * 1024, `${c.text.length} bytes`); // a few 2 MiB chunks for 3 threads

  const process_ = async (threads: number): Promise<{ out: Output; counts: OutcomeCounts; files: WrittenFile[] }> => {
    const out = join(dir, `out-${threads}`);
    const args = ['process', '--follow', '--input', '-', '--output', out, '--state-dir', join(dir, `state-${threads}`)];
    const res = await runProcess([...args, '--config', DEMO_CONFIG, '--threads', String(threads)], c.text);
    assert.equal(res.code, 0, res.stderr);
    const store = new LocalStore(out);
    const { manifests } = await committedOutput(store);
    assert.ok(manifests.length >= 1, res.stderr);
    const files = manifests.flatMap((m) => m.manifest.files);
    const counts = manifests.reduce((acc, m) => mergeCounts(acc, m.manifest.counts), emptyCounts());
    return { out: await readOutput(store, files), counts, files };
  };
  const one = await process_(1);
  const three = await process_(3);

  // One thread and three: the same output, the same counts.
  assert.deepEqual([...three.out.rows.keys()].sort(), [...one.out.rows.keys()].sort());
  for (const [table, rows] of one.out.rows) assert.deepEqual(three.out.rows.get(table), rows, `rows of ${table}`);
  assert.deepEqual(three.out.nontracked, one.out.nontracked);
  assert.deepEqual(three.out.quarantine, one.out.quarantine);
  assert.deepEqual(three.counts, one.counts);
  assert.equal(one.counts.inputBytes, Buffer.byteLength(c.text));
  // The three threads shared the work: rows of login from more than one task's series.
  const series = new Set(
    three.files.filter((f) => f.event === 'login').map((f) => /-(t\d+)-\d{5}\.tsv\.gz$/.exec(f.key)?.[1]),
  );
  assert.ok(series.size >= 2 && !series.has(undefined), [...series].join(','));

  // spade transform of the edge lines (globs emptied) and of the globs' edge lines.
  const transform = async (text: string, name: string): Promise<{ out: Output; counts: OutcomeCounts }> => {
    const out = join(dir, name);
    const opts = { inputs: [], config: DEMO_CONFIG, out, threads: 2 };
    const res = await transformCommand(opts, Readable.from([Buffer.from(text)]), () => undefined);
    return { out: await readOutput(new LocalStore(out), res.files), counts: res.counts };
  };
  const edges = await transform(c.blanked, 'transform-edges');
  const globs = await transform(c.globLines, 'transform-globs');
  for (const [table, rows] of one.out.rows) {
    const expected = [...(edges.out.rows.get(table) ?? []), ...(globs.out.rows.get(table) ?? [])].sort();
    assert.deepEqual(rows, expected, `rows of ${table}`);
  }
  assert.deepEqual(one.out.nontracked, [...edges.out.nontracked, ...globs.out.nontracked].sort());
  assert.deepEqual(one.counts.events, mergeCounts(mergeCounts(emptyCounts(), edges.counts), globs.counts).events);
  // The emptied glob lines are quarantined as empty lines by the transform; the processor decodes
  // them, and quarantines the one that does not decode as bad_glob.
  const expectedMalformed = mergeCounts(mergeCounts(emptyCounts(), edges.counts), globs.counts).malformedByReason;
  expectedMalformed.empty_line! -= c.blankedLines;
  expectedMalformed.bad_glob = 1;
  assert.deepEqual(one.counts.malformedByReason, expectedMalformed);
  assert.equal(one.counts.lines, edges.counts.lines - c.blankedLines + globs.counts.lines + 1);

  // Quarantine: stdin lines numbered as in the input, glob events from their glob's line.
  const blankedAt = new Set(
    c.blanked.split('\n').flatMap((l, k) => (l === '' && c.text.split('\n')[k] !== '' ? [k + 1] : [])),
  );
  const stdinRecords = one.out.quarantine.filter((q) => q.source === 'stdin');
  assert.deepEqual(
    stdinRecords.map((q) => `${q.lineNo} ${q.reason}`),
    [
      ...edges.out.quarantine.filter((q) => !blankedAt.has(q.lineNo)).map((q) => `${q.lineNo} ${q.reason}`),
      `${c.badGlobLineNo} bad_glob`,
    ].sort((a, b) => parseInt(a) - parseInt(b)),
  );
  const lines = c.text.split('\n');
  for (const q of stdinRecords)
    if (q.reason !== 'bad_glob') assert.equal(q.text, lines[q.lineNo - 1]!.replace(/\r$/, ''), `line ${q.lineNo}`);
  assert.deepEqual(
    one.out.quarantine.filter((q) => q.source === 'stdin-glob').map((q) => q.lineNo),
    c.badGlobEventLineNos,
  );
});

test('a stdin batch killed while its threads write is salvaged at the next start from their spool files', async (t) => {
  const dir = tempDir(t, 'stdin-kill');
  const out = join(dir, 'out');
  const state = join(dir, 'state');
  const opts = { input: '-', output: out, stateDir: state, config: DEMO_CONFIG, threads: 2, rotateMinutes: 60 };
  const first = startProcessor(opts, {}, 'pipe');
  await first.waitFor(/following stdin/);

  // Input until both threads have rows on disk (bounded: the batch is far from rotating).
  await feedUntil('rows of both threads in the spool', first.child.stdin!, 0, async () => {
    const files = (await spooled(state)).filter((f) => f.lines > 0);
    return new Set(files.map((f) => /-(t\d+)-/.exec(f.name)?.[1])).size >= 2;
  });
  first.child.kill('SIGKILL');
  await first.exited;
  const left = (await spooled(state)).filter((f) => f.lines > 0);
  const [batch] = new Set(left.map((f) => f.batch));
  assert.ok(batch !== undefined);

  // The next start salvages and commits them; its own stdin is empty.
  const second = startProcessor(opts, {}, 'pipe');
  second.child.stdin!.end();
  const { code } = await second.exited;
  assert.equal(code, 0, second.stderr());

  const got = await committedOutput(new LocalStore(out));
  const salvaged = got.manifests.filter((m) => m.manifest.partition === batch);
  assert.equal(salvaged.length, 1, 'the killed batch is committed once');
  const manifest = salvaged[0]!.manifest as BatchManifest;
  assert.equal(manifest.salvaged, true);
  const rowsOf = new Map(manifest.files.map((f) => [f.key, f.rows]));
  for (const f of left) {
    // A spool file is named `<12 hex>-<its key, '/' as '_'>` (writers.ts).
    const m = /^[0-9a-f]{12}-(\d{8})_(.+)_v(\d+)_(b[0-9a-z]+-t\d+-\d{5}\.tsv\.gz)$/.exec(f.name);
    assert.ok(m, f.name);
    const key = `${m[1]}/${m[2]}/v${m[3]}/${m[4]}`;
    assert.equal(rowsOf.get(key), f.lines, `rows of ${key}`);
  }
  const rows = [...got.rows.values()].reduce((a, b) => a + b, 0);
  assert.ok(rows >= left.reduce((n, f) => n + f.lines, 0), `${rows} rows committed`);
  // Nothing committed twice: every file is named by one manifest only.
  const keys = got.manifests.flatMap((m) => m.manifest.files.map((f) => f.key));
  assert.equal(new Set(keys).size, keys.length);
});

/** Writes blocks of edge lines (from line `from`) to `stdin` until `done`; returns the next line's index. */
async function feedUntil(
  what: string,
  stdin: NodeJS.WritableStream,
  from: number,
  done: () => Promise<boolean>,
): Promise<number> {
  let i = from;
  await waitUntil(what, async () => {
    let block = '';
    for (const end = i + 2000; i < end; i++) block += edgeLine(i) + '\n';
    if (!stdin.write(block)) await once(stdin, 'drain');
    return done();
  });
  return i;
}

test('a config reload between pieces of stdin: the threads take the new config, no line is lost', async (t) => {
  const dir = tempDir(t, 'stdin-reload');
  const config = join(dir, 'tables.json');
  const tables = JSON.parse(readFileSync(DEMO_CONFIG, 'utf8')) as { EventName: string }[];
  writeFileSync(config, JSON.stringify(tables));
  const out = join(dir, 'out');
  const state = join(dir, 'state');
  const proc = startProcessor(
    { input: '-', output: out, stateDir: state, config, threads: 2, rotateMinutes: 60 },
    {},
    'pipe',
  );
  await proc.waitFor(/following stdin/);
  const stdin = proc.child.stdin!;
  // Until the first tasks have written login rows: those lines were transformed with the old config.
  let sent = await feedUntil('rows of the first tasks in the spool', stdin, 0, async () =>
    (await spooled(state)).some((f) => f.lines > 0),
  );
  // The new config has no login table: login events are untracked from now on.
  writeFileSync(config, JSON.stringify(tables.filter((e) => e.EventName !== 'login')));
  proc.child.kill('SIGHUP');
  await proc.waitFor(/config reloaded \(SIGHUP\)/);
  let block = '';
  for (const end = sent + 2000; sent < end; sent++) block += edgeLine(sent) + '\n';
  stdin.end(block);
  const { code } = await proc.exited;
  assert.equal(code, 0, proc.stderr());

  const got = await committedOutput(new LocalStore(out));
  const counts = got.manifests.reduce((acc, m) => mergeCounts(acc, m.manifest.counts), emptyCounts());
  assert.equal(counts.lines, sent, 'every line counted once');
  assert.ok((got.rows.get('login') ?? 0) > 0, 'login rows of the old config');
  assert.ok((counts.events.login?.untracked ?? 0) > 0, 'login untracked under the new config');
  // The tasks of the old config ended at the reload; new ones wrote the rest.
  const tags = new Set(got.manifests.flatMap((m) => m.manifest.files.map((f) => /-t(\d+)-\d{5}\./.exec(f.key)?.[1])));
  assert.ok(tags.size >= 3, [...tags].join(','));
});

test('SIGTERM with stdin over 2 threads commits exactly the lines read, in order', async (t) => {
  const dir = tempDir(t, 'stdin-sigterm');
  const out = join(dir, 'out');
  const state = join(dir, 'state');
  const proc = startProcessor(
    { input: '-', output: out, stateDir: state, config: DEMO_CONFIG, threads: 2, rotateMinutes: 60 },
    {},
    'pipe',
  );
  await proc.waitFor(/following stdin/);
  // Until the threads have written rows: stdin stays open, lines keep arriving, then SIGTERM.
  const sent = await feedUntil('rows of the threads in the spool', proc.child.stdin!, 0, async () =>
    (await spooled(state)).some((f) => f.lines > 0),
  );
  proc.child.kill('SIGTERM');
  const { code } = await proc.exited;
  assert.equal(code, 0, proc.stderr());

  const store = new LocalStore(out);
  const { manifests } = await committedOutput(store);
  assert.equal(manifests.length, 1, proc.stderr());
  const counts = manifests.reduce((acc, m) => mergeCounts(acc, m.manifest.counts), emptyCounts());
  // Every line read is committed: the lines the processor says it read, all of them counted.
  const read = Number(/stopped \((\d+) stdin lines read/.exec(proc.stderr())?.[1]);
  assert.ok(read > 0 && read <= sent, `${read} lines read of ${sent} sent`);
  assert.equal(counts.lines, read, 'lines committed');
  const got = await readOutput(
    store,
    manifests.flatMap((m) => m.manifest.files),
  );
  // What spade transform makes of the first `read` lines: no line read was lost or repeated.
  const text = Array.from({ length: read }, (_, i) => edgeLine(i)).join('\n') + '\n';
  const expectedDir = join(dir, 'expected');
  const res = await transformCommand(
    { inputs: [], config: DEMO_CONFIG, out: expectedDir, threads: 2 },
    Readable.from([Buffer.from(text)]),
    () => undefined,
  );
  const expected = await readOutput(new LocalStore(expectedDir), res.files);
  assert.deepEqual([...got.rows.keys()].sort(), [...expected.rows.keys()].sort());
  for (const [table, rows] of expected.rows) assert.deepEqual(got.rows.get(table), rows, `rows of ${table}`);
  assert.deepEqual(got.nontracked, expected.nontracked);
  assert.deepEqual(
    got.quarantine.map((q) => [q.lineNo, q.reason]),
    expected.quarantine.map((q) => [q.lineNo, q.reason]),
  );
  assert.deepEqual(counts.events, res.counts.events);
});

test('an output that fails stops the processor loudly, the stdin batch left to salvage (1 and 2 threads)', async (t) => {
  for (const threads of [1, 2]) {
    const dir = tempDir(t, 'stdin-fail');
    const out = join(dir, 'out');
    const state = join(dir, 'state');
    // A file where the login table's directory must go: the upload of every login file fails.
    for (const day of [utcDate(Date.now()), utcDate(Date.now() + 86_400_000)]) {
      mkdirSync(join(out, day), { recursive: true });
      writeFileSync(join(out, day, 'login'), 'in the way');
    }
    const lines = Array.from({ length: 20_000 }, (_, i) => edgeLine(i)).join('\n') + '\n';
    const args = [
      'process',
      '--follow',
      '--input',
      '-',
      '--output',
      out,
      '--state-dir',
      state,
      '--config',
      DEMO_CONFIG,
    ];
    const res = await runProcess([...args, '--threads', String(threads), '--rotate-mb', '0.05'], lines);
    assert.equal(res.code, 1, res.stderr);
    const failed = /output of stdin batch (b[0-9a-z]+) failed \(left for salvage at the next start\): .*login/;
    const m = failed.exec(res.stderr);
    assert.ok(m, res.stderr);
    assert.doesNotMatch(res.stderr, /Unhandled/);
    assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
    assert.ok(existsSync(join(state, 'spool', `${m[1]}.json`)), 'the batch is left for salvage');
    assert.equal((await committedOutput(new LocalStore(out))).manifests.length, 0, 'nothing committed');
  }
});

test('a stdin batch whose commit fails is left to salvage, and the next start commits its rows', async (t) => {
  const dir = tempDir(t, 'stdin-commit-fail');
  const lines = Array.from({ length: 5_000 }, (_, i) => edgeLine(i)).join('\n') + '\n';
  const run = async (out: string, state: string, input: string): Promise<{ code: number; stderr: string }> =>
    runProcess(
      ['process', '--follow', '--input', '-', '--output', out, '--state-dir', state, '--config', DEMO_CONFIG],
      input,
    );
  const clean = await run(join(dir, 'clean-out'), join(dir, 'clean-state'), lines);
  assert.equal(clean.code, 0, clean.stderr);
  const expected = await committedOutput(new LocalStore(join(dir, 'clean-out')));
  assert.ok((expected.rows.get('login') ?? 0) > 0);

  const out = join(dir, 'out');
  const state = join(dir, 'state');
  // A file where the success manifests' directory must go: the rows upload, the manifest does not.
  const obstacles = [utcDate(Date.now()), utcDate(Date.now() + 86_400_000)].map((day) => join(out, day, '_success'));
  for (const file of obstacles) {
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, 'in the way');
  }
  const failed = await run(out, state, lines);
  assert.equal(failed.code, 1, failed.stderr);
  const m = /output of stdin batch (b[0-9a-z]+) failed \(left for salvage at the next start\): commit failed/.exec(
    failed.stderr,
  );
  assert.ok(m, failed.stderr);
  assert.ok(existsSync(join(state, 'spool', `${m[1]}.json`)), 'the batch is left for salvage');

  for (const file of obstacles) rmSync(file);
  const restarted = await run(out, state, '');
  assert.equal(restarted.code, 0, restarted.stderr);
  const got = await committedOutput(new LocalStore(out));
  assert.deepEqual(
    got.manifests.map((x) => [x.manifest.partition, x.manifest.salvaged]),
    [[m[1], true]],
  );
  assert.deepEqual(sortedEntries(got.rows), sortedEntries(expected.rows), 'every row of the failed batch committed');
});

/**
 * Bound on the peak RSS of `spade process --threads 2` reading 150 MB of edge
 * lines on stdin while the output store is slow: stdin is read only as the
 * threads take its lines, so memory does not grow with the input. Measured on
 * a loaded 2-core machine: 247-266 MB. The input is not held in this process:
 * a child's peak RSS counts its parent's at the fork, so a test holding 150 MB
 * would measure itself too.
 */
const PEAK_RSS_BOUND_MB = 300;

test('memory stays bounded with a slow output store: 150 MB on stdin over 2 threads', async (t) => {
  const s3 = await startS3Server(t, { buckets: ['out'] });
  const proxy = await startS3Proxy(t, s3.endpoint);
  proxy.writeDelayMs = 20;
  const dir = tempDir(t, 'stdin-memory');
  const lines = 640_000; // ~150 MB of edge lines
  const file = join(dir, 'edge.log');
  await pipeline(
    (function* () {
      for (let i = 0; i < lines; i += 1000) {
        let s = '';
        for (let j = i; j < i + 1000; j++) s += edgeLine(j) + '\n';
        yield s;
      }
    })(),
    createWriteStream(file),
  );
  // Read from disk as fast as the pipe takes it: a producer faster than the threads.
  const input = createReadStream(file);
  const peakRss = join(repoRoot(), 'dist', 'test', 'helpers', 'peak-rss.js');
  const args = ['process', '--follow', '--input', '-', '--output', 's3://out/p', '--state-dir', join(dir, 'state')];
  const res = await runProcess([...args, '--config', DEMO_CONFIG, '--threads', '2', '--rotate-mb', '4'], input, {
    env: { ...s3.env, SPADE_S3_ENDPOINT: proxy.endpoint },
    nodeArgs: ['--import', peakRss],
  });
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stderr, /committed batch b[0-9a-z]+: 0 input file\(s\), \d+ output file\(s\), lines 640000, /);
  const peakMb = Number(/peak-rss-kb (\d+)/.exec(res.stderr)![1]) / 1024;
  t.diagnostic(`peak RSS ${peakMb.toFixed(0)} MB`);
  assert.ok(peakMb < PEAK_RSS_BOUND_MB, `peak RSS ${peakMb.toFixed(0)} MB, bound ${PEAK_RSS_BOUND_MB} MB`);
});
