/**
 * What must never land silently wrong, end to end (the `spade` CLI as a child
 * process, s3rver, a throwaway PostgreSQL): a runtag resumed or loaded with
 * another config is refused, and a damaged edge file fails the run unless
 * `--accept-damaged-input`, and is always named in the report.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { constants as zlibConstants, gunzipSync, gzipSync } from 'node:zlib';
import type { RunRecord } from '../../driver/manifest.js';
import { DEMO_CONFIG, runSpade, startReplayWorld, tableSnapshot, type ReplayWorld } from '../helpers/replay-env.js';
import { startWorker } from '../helpers/workers.js';

const START = '2023-11-05 00:30:00';
const END = '2023-11-05 03:00:00';
const START_SEC = Date.UTC(2023, 10, 5, 7, 30, 0) / 1000;
const END_SEC = Date.UTC(2023, 10, 5, 11, 0, 0) / 1000;
const TABLES = ['login', 'video_play'];
const TOKEN = 'integrity-test-token-0123456789';

/** The demo config with two columns of `login` swapped: the same table, other values in its columns. */
function editedConfig(): string {
  const config = JSON.parse(readFileSync(DEMO_CONFIG, 'utf8')) as {
    EventName: string;
    Columns: { InboundName: string }[];
  }[];
  const login = config.find((t) => t.EventName === 'login')!;
  const a = login.Columns.find((c) => c.InboundName === 'login')!;
  const b = login.Columns.find((c) => c.InboundName === 'platform')!;
  [a.InboundName, b.InboundName] = [b.InboundName, a.InboundName];
  const path = join(mkdtempSync(join(tmpdir(), 'spade-config-')), 'edited.json');
  writeFileSync(path, JSON.stringify(config, null, 1));
  return path;
}

/** world.replay with another --config. */
function replayWithConfig(w: ReplayWorld, config: string, args: string[]): ReturnType<typeof runSpade> {
  return runSpade(
    ['replay', ...args, '--edge', 's3://edge', '--output', 's3://out', '--rsurl', w.rsurl].concat([
      '--config',
      config,
      '--log-file',
      '',
      '--threads',
      '2',
    ]),
    w.env,
  );
}

const snapshots = (w: ReplayWorld): Promise<string[][]> => Promise.all(TABLES.map((t) => tableSnapshot(w, t)));

/** Edge keys written inside the window (key seconds), largest first. */
async function windowKeys(w: ReplayWorld): Promise<string[]> {
  const found: { key: string; size: number }[] = [];
  for await (const o of w.edge.list('2023110')) {
    const sec = Number(/\/(\d{10})\.[^/]*$/.exec(o.key)?.[1]);
    if (sec >= START_SEC + 600 && sec <= END_SEC - 600) found.push({ key: o.key, size: o.size });
  }
  return found.sort((a, b) => b.size - a.size).map((f) => f.key);
}

test('replay integrity: transform digest and damaged inputs', async (t0) => {
  const world = await startReplayWorld(t0, {
    startSec: Date.UTC(2023, 10, 5, 5, 0, 0) / 1000,
    endSec: Date.UTC(2023, 10, 5, 13, 0, 0) / 1000,
    events: 3000,
    dbName: 'replay_integrity',
  });
  if (!world) return;
  const w = world;
  const edited = editedConfig();

  await t0.test('a resume after a config edit is refused, saying what differs; nothing is loaded', async () => {
    const before = await snapshots(w);
    const transformOnly = [START, END, ...TABLES, '--runtag', 'cfg1', '--partition-mb', '0.05'];
    const first = await w.replay([...transformOnly, '--skip-ace-upload']);
    assert.equal(first.code, 0, first.stderr);
    // A crash before the last partition finished: its success manifest is missing.
    const manifests: string[] = [];
    for await (const o of w.out.list('cfg1/_success/')) manifests.push(o.key);
    assert.ok(manifests.length >= 2, `several partitions expected, got ${manifests.length}`);
    await w.out.delete(manifests[0]!);

    const resumed = await replayWithConfig(w, edited, transformOnly);
    assert.equal(resumed.code, 1, resumed.stdout + resumed.stderr);
    assert.match(resumed.stderr, /runtag cfg1 was transformed with other settings: config differs \(run: sha256:/);
    assert.match(resumed.stderr, /new --runtag/);
    assert.doesNotMatch(resumed.stderr, /GeoIP|user-id|format/);
    assert.doesNotMatch(resumed.stderr, /\n\s+at /);
    assert.deepEqual(await snapshots(w), before);
    assert.ok(!(await w.out.exists(manifests[0]!)), 'the missing partition was not redone');
  });

  await t0.test('--skip-transform with another config is refused; with the run config it loads', async () => {
    const before = await snapshots(w);
    const done = await w.replay([START, END, ...TABLES, '--runtag', 'cfg2', '--skip-ace-upload']);
    assert.equal(done.code, 0, done.stderr);
    const refused = await replayWithConfig(w, edited, [START, END, ...TABLES, '--runtag', 'cfg2', '--skip-transform']);
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /runtag cfg2 was transformed with other settings: config differs/);
    assert.match(refused.stderr, /new --runtag/);
    assert.deepEqual(await snapshots(w), before);
    const loaded = await w.replay([START, END, ...TABLES, '--runtag', 'cfg2', '--skip-transform']);
    assert.equal(loaded.code, 0, loaded.stderr);
    assert.match(loaded.stdout, /login\s+loaded/);
  });

  await t0.test('a run record without a digest (an older version) is refused with a clear message', async () => {
    const record = JSON.parse((await w.out.readBytes('cfg2/_run.json')).toString()) as RunRecord;
    delete record.transform;
    await w.out.put('old1/_run.json', JSON.stringify({ ...record, runtag: 'old1' }));
    const res = await w.replay([START, END, ...TABLES, '--runtag', 'old1', '--skip-transform']);
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.match(res.stderr, /runtag old1 was recorded by an older spade-replay without a transform digest/);
    assert.match(res.stderr, /new --runtag/);
  });

  await t0.test(
    'a truncated edge file: exit 1 and named with what was read, nothing loaded; ' +
      '--accept-damaged-input loads exactly its complete lines and still names it',
    async () => {
      const before = await snapshots(w);
      const key = (await windowKeys(w))[0]!;
      const whole = await w.edge.readBytes(key);
      const cut = whole.subarray(0, Math.floor(whole.length * 0.5));
      await w.edge.put(key, cut);
      const readable = gunzipSync(cut, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
      const readableLines = readable.toString('utf8').split('\n').length; // the torn last line included

      const res = await w.replay([START, END, ...TABLES, '--runtag', 'dmg1']);
      assert.equal(res.code, 1, res.stdout + res.stderr);
      assert.match(res.stdout, /damaged input\(s\): 1;/);
      assert.ok(
        res.stdout.includes(`  ${key}: ${readable.length} bytes, ${readableLines} lines read; unexpected end of file`),
        res.stdout,
      );
      assert.match(res.stdout, /re-run with --skip-transform --runtag dmg1 --accept-damaged-input/);
      assert.deepEqual(await snapshots(w), before, 'nothing loaded');

      const accepted = await w.replay([
        START,
        END,
        ...TABLES,
        '--runtag',
        'dmg1',
        '--skip-transform',
        '--accept-damaged-input',
      ]);
      assert.equal(accepted.code, 0, accepted.stdout + accepted.stderr);
      assert.match(accepted.stdout, /login\s+loaded/);
      assert.ok(accepted.stdout.includes(`  ${key}: ${readable.length} bytes, ${readableLines} lines read; `));
      const loaded = await snapshots(w);

      // The same window from a clean file of exactly those complete lines gives the same tables.
      const complete = readable.subarray(0, readable.lastIndexOf(10) + 1);
      await w.edge.put(key, gzipSync(complete));
      const clean = await w.replay([START, END, ...TABLES, '--runtag', 'dmg2']);
      assert.equal(clean.code, 0, clean.stdout + clean.stderr);
      assert.doesNotMatch(clean.stdout, /damaged input/);
      assert.deepEqual(await snapshots(w), loaded);
      await w.edge.put(key, whole);
    },
  );

  await t0.test('a gzip file corrupt in the middle, transformed on a worker daemon: exit 1, named', async (t) => {
    const before = await snapshots(w);
    const key = (await windowKeys(w))[1]!;
    const whole = await w.edge.readBytes(key);
    const broken = Buffer.from(whole);
    const mid = Math.floor(broken.length / 2);
    for (let i = mid; i < mid + 64; i++) broken[i] = broken[i]! ^ 0x5a;
    await w.edge.put(key, broken);
    const node = await startWorker(t, { token: TOKEN, env: w.env });
    const res = await w.replay([START, END, ...TABLES, '--runtag', 'dmg3', '--executor', 'workers'], {
      SPADE_WORKERS: node.addr,
      SPADE_WORKER_TOKEN: TOKEN,
    });
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.match(res.stdout, /damaged input\(s\): 1;/);
    assert.ok(new RegExp(`\\n {2}${key.replace(/\./g, '\\.')}: \\d+ bytes, \\d+ lines read; \\S`).test(res.stdout));
    assert.deepEqual(await snapshots(w), before, 'nothing loaded');
    await w.edge.put(key, whole);
  });
});
