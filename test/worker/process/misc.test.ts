import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { deflateRawSync, gzipSync } from 'node:zlib';
import { DEMO_CONFIG } from '../../helpers/replay-env.js';
import { salvageGzip } from '../../../worker/output/salvage.js';
import { utcDate } from '../../../worker/process/checkpoint.js';
import { encodeGlobLine } from '../../../worker/process/globs.js';
import { ProcessMetrics } from '../../../worker/process/metrics.js';
import { LocalStore } from '../../../worker/store/local.js';
import { parseTableConfig } from '../../../worker/transform/schema.js';
import {
  committedKeys,
  committedOutput,
  killRunningProcessors,
  sortedEntries,
  startProcessor,
  stopProcessor,
  Truth,
  waitUntil,
  writeEdgeFile,
} from './harness.js';

after(killRunningProcessors);

const schemas = parseTableConfig(readFileSync(DEMO_CONFIG, 'utf8'), DEMO_CONFIG);

function dirs(t: TestContext): { root: string; edge: string; out: string; state: string } {
  const root = mkdtempSync(join(tmpdir(), 'spade-proc-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const d = { root, edge: join(root, 'edge'), out: join(root, 'out'), state: join(root, 'state') };
  mkdirSync(d.edge);
  return d;
}

test('a corrupt config on reload is rejected and the processor keeps running on the old one; metrics and health', async (t) => {
  const d = dirs(t);
  const config = join(d.root, 'tables.json');
  copyFileSync(DEMO_CONFIG, config);
  const base = Math.floor(Date.now() / 1000) - 600;
  const opts = {
    input: d.edge,
    output: d.out,
    stateDir: d.state,
    config,
    rotateMinutes: 0.01,
    pollSeconds: 0.2,
    reloadSeconds: 0.3,
    startDate: utcDate((base - 86_400) * 1000),
    metricsPort: 0,
    metricsToken: 'sekret-token',
  };
  const truth = new Truth();
  const edge = new LocalStore(d.edge);
  const proc = startProcessor(opts);
  const [, url] = await proc.waitFor(/metrics on (http:\/\/\S+)\/metrics/);
  await writeEdgeFile(edge, schemas, base, 500, 1, truth);
  await waitUntil('first file committed', () => committedKeys(d.state).length === 1);

  writeFileSync(config, '[{"EventName": "login", "Columns": [{"InboundName": "x", "Transformer": "nope"');
  proc.child.kill('SIGHUP');
  await proc.waitFor(/config reload \(SIGHUP\) rejected/);
  await writeEdgeFile(edge, schemas, base + 10, 500, 2, truth);
  await waitUntil('second file committed', () => committedKeys(d.state).length === 2);
  assert.equal(proc.child.exitCode, null, 'still running');

  const auth = { authorization: 'Bearer sekret-token' };
  assert.equal((await fetch(`${url}/healthz`)).status, 401);
  assert.equal((await fetch(`${url}/healthz`, { headers: auth })).status, 200);
  const metrics = await (await fetch(`${url}/metrics`, { headers: auth })).text();
  assert.match(metrics, /^spade_config_reloads_total\{result="rejected"\} [1-9]/m);
  assert.match(metrics, /^spade_input_files_committed_total 2$/m);
  assert.match(metrics, /^spade_events_total\{table="login",outcome="success"\} [1-9]/m);
  assert.match(metrics, /^spade_lag_seconds 0$/m);
  assert.match(metrics, /^spade_files_uploaded_total\{kind="rows"\} [1-9]/m);

  assert.equal(await stopProcessor(proc), 0, proc.stderr());
  const got = await committedOutput(new LocalStore(d.out));
  assert.deepEqual(sortedEntries(got.rows), sortedEntries(truth.events), 'both files transformed with the old config');
});

test('an input that cannot be read fails alone: the other files are committed, it is retried and counted', async (t) => {
  const d = dirs(t);
  const base = Math.floor(Date.now() / 1000) - 600;
  const edge = new LocalStore(d.edge);
  const truth = new Truth();
  // The oldest key, so it is dealt out first: reading it fails with EIO (not gzip damage).
  const poisonKey = `${utcDate(base * 1000)}/edge-asg/${base - 100}.poison.log.gz`;
  mkdirSync(join(d.edge, ...poisonKey.split('/').slice(0, -1)), { recursive: true });
  symlinkSync('/proc/self/mem', join(d.edge, ...poisonKey.split('/')));
  for (let i = 0; i < 6; i++) await writeEdgeFile(edge, schemas, base + i * 10, 300, 40 + i, truth);
  const proc = startProcessor({
    input: d.edge,
    output: d.out,
    stateDir: d.state,
    config: DEMO_CONFIG,
    rotateMinutes: 0.01,
    pollSeconds: 0.2,
    startDate: utcDate((base - 86_400) * 1000),
    metricsPort: 0,
  });
  const [, url] = await proc.waitFor(/metrics on (http:\/\/\S+)\/metrics/);
  await waitUntil('every readable file committed', () => committedKeys(d.state).length === 6);
  await proc.waitFor(/input file\(s\) failed, they will be read again \(failure 2 for it\)/);
  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.match(metrics, /^spade_task_failures_total [2-9]/m);
  assert.equal(await stopProcessor(proc), 0, proc.stderr());
  assert.ok(!committedKeys(d.state).includes(poisonKey), 'the unreadable file is never committed');
  const got = await committedOutput(new LocalStore(d.out));
  assert.deepEqual(sortedEntries(got.rows), sortedEntries(truth.events));
});

/** A gzip file cut before its trailer: `complete` lines survive, the last (unterminated) line is torn. */
function tornGzip(complete: string[], torn: string): Buffer {
  const whole = gzipSync(Buffer.from(complete.map((l) => l + '\n').join('') + torn));
  return whole.subarray(0, whole.length - 8);
}

function leaveTornSpool(state: string, batch: string, mode: 'files' | 'stdin', lines: string[]): void {
  const spool = join(state, 'spool');
  mkdirSync(join(spool, batch), { recursive: true });
  writeFileSync(
    join(spool, `${batch}.json`),
    JSON.stringify({ batch, runtag: '20260101', mode, openedAt: new Date().toISOString() }),
  );
  writeFileSync(
    join(spool, batch, `0123456789ab-20260101_login_v0_${batch}-00000.tsv.gz`),
    tornGzip(lines, '2026-01-01 00:00:09\ttorn'),
  );
}

test('start-up salvages a torn spool file of a file-input batch, outside what is loaded', async (t) => {
  const d = dirs(t);
  leaveTornSpool(d.state, 'bdead00001', 'files', ['r1\ta', 'r2\tb\\\nstill r2', 'r3\tc']);
  const proc = startProcessor({
    input: d.edge,
    output: d.out,
    stateDir: d.state,
    config: DEMO_CONFIG,
    pollSeconds: 0.2,
  });
  await proc.waitFor(/following/);
  assert.equal(await stopProcessor(proc), 0, proc.stderr());
  const out = new LocalStore(d.out);
  const keys: string[] = [];
  for await (const o of out.list('')) keys.push(o.key);
  assert.equal(keys.length, 1, keys.join(', '));
  assert.match(keys[0] as string, /^_salvaged\/bdead00001\//);
  const res = await salvageGzip(await out.readBytes(keys[0] as string));
  assert.equal(res.lines, 3);
  assert.equal(res.complete, true);
  assert.equal((await committedOutput(out)).manifests.length, 0, 'salvaged rows are never named by a manifest');
});

function edgeLine(uuid: string, event: string): string {
  const data = Buffer.from(JSON.stringify({ event, properties: { user_id: 7, login: 'x' } })).toString('base64');
  return JSON.stringify({
    receivedAt: '2026-01-01T10:00:00Z',
    clientIp: '1.2.3.4',
    uuid,
    data,
    recordversion: 3,
    edgeType: 'external',
  });
}

test('stdin: edge lines and base64 globs (duplicates skipped), salvage of a torn stdin batch is committed', async (t) => {
  const d = dirs(t);
  leaveTornSpool(d.state, 'bdead00002', 'stdin', ['s1\ta', 's2\tb']);
  const proc = startProcessor(
    { input: '-', output: d.out, stateDir: d.state, config: DEMO_CONFIG, rotateMinutes: 0.01 },
    {},
    'pipe',
  );
  const glob = encodeGlobLine(
    [0, 1, 2].map((i) => JSON.parse(edgeLine(`g-${i}`, 'login')) as unknown),
    (b) => deflateRawSync(b),
  );
  const input = [
    edgeLine('e-1', 'login'),
    glob,
    edgeLine('e-2', 'video_play'),
    glob, // the same first uuid within 5 minutes: a duplicate
    'AQAAAAAA', // version 1, but not valid DEFLATE: quarantined
    edgeLine('e-3', 'no_such_event'),
  ];
  proc.child.stdin?.end(input.join('\n') + '\n');
  const { code } = await proc.exited;
  assert.equal(code, 0, proc.stderr());

  const got = await committedOutput(new LocalStore(d.out));
  const salvaged = got.manifests.filter((m) => m.manifest.salvaged);
  assert.equal(salvaged.length, 1);
  assert.deepEqual(
    salvaged[0]?.manifest.files.map((f) => [f.key, f.rows]),
    [['20260101/login/v0/bdead00002-00000.tsv.gz', 2]],
  );
  // login: 2 salvaged + e-1 + 3 glob events; video_play: e-2.
  assert.deepEqual(sortedEntries(got.rows), [
    ['login', 6],
    ['video_play', 1],
  ]);
  const live = got.manifests.filter((m) => !m.manifest.salvaged).map((m) => m.manifest);
  const kinds = live.flatMap((m) => m.files.map((f) => f.kind)).sort();
  assert.ok(kinds.includes('nontracked') && kinds.includes('quarantine'), kinds.join(','));
  const malformed = live.reduce((n, m) => n + (m.counts.malformedByReason.bad_glob ?? 0), 0);
  assert.equal(malformed, 1);
});

test('the lag before the first commit counts back to the oldest input seen, then to the newest committed', () => {
  const m = new ProcessMetrics();
  assert.equal(m.lagSeconds(), 0);
  m.oldestSeenSec = 1_700_000_000;
  m.newestSeenSec = 1_700_000_600;
  assert.equal(m.lagSeconds(), 600);
  m.newestCommittedSec = 1_700_000_500;
  assert.equal(m.lagSeconds(), 100);
  assert.match(m.render(), /^spade_lag_seconds 100$/m);
});
