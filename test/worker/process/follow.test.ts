import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { DEMO_CONFIG } from '../../helpers/replay-env.js';
import { startS3Server } from '../../helpers/s3server.js';
import { prng } from '../../../scripts/generate/edge-logs.js';
import { utcDate } from '../../../worker/process/checkpoint.js';
import { LocalStore } from '../../../worker/store/local.js';
import { S3Store } from '../../../worker/store/s3.js';
import { parseTableConfig } from '../../../worker/transform/schema.js';
import {
  committedKeys,
  committedOutput,
  killRunningProcessors,
  type RunningProcessor,
  sleep,
  sortedEntries,
  startProcessor,
  stopProcessor,
  tempDir,
  Truth,
  waitUntil,
  writeEdgeFile,
} from './harness.js';

after(killRunningProcessors);

const schemas = parseTableConfig(readFileSync(DEMO_CONFIG, 'utf8'), DEMO_CONFIG);

/** Keys arrive roughly in time order; every third pair is swapped so late keys sort before ones already seen. */
function arrivalOrder(n: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i + 1 < n; i += 3) [order[i], order[i + 1]] = [order[i + 1] as number, order[i] as number];
  return order;
}

test('follows an S3 prefix while files arrive; SIGKILLs at random points lose and repeat nothing', async (t) => {
  const s3 = await startS3Server(t, { buckets: ['edge', 'out'] });
  const edge = new S3Store({ bucket: 'edge', prefix: 'logs', client: s3.client });
  const out = new S3Store({ bucket: 'out', prefix: 'spade', client: s3.client });
  const stateDir = tempDir(t, 'follow-state');
  const base = Math.floor(Date.now() / 1000) - 3600;
  const opts = {
    input: 's3://edge/logs',
    output: 's3://out/spade',
    stateDir,
    config: DEMO_CONFIG,
    rotateMinutes: 0.01,
    rotateMb: 0.05,
    pollSeconds: 0.2,
    sweepEvery: 3,
    startDate: utcDate((base - 86_400) * 1000),
    shutdownTimeoutSeconds: 20,
  };
  const truth = new Truth();
  const FILES = 24;
  const writing = (async () => {
    for (const i of arrivalOrder(FILES)) {
      await writeEdgeFile(edge, schemas, base + i * 10, 300, i + 1, truth);
      await sleep(120);
    }
  })();

  const rnd = prng(7);
  let proc: RunningProcessor = startProcessor(opts, s3.env);
  for (let kill = 0; kill < 3; kill++) {
    await proc.waitFor(/following/);
    await sleep(400 + Math.floor(rnd() * 1200));
    proc.child.kill('SIGKILL');
    await proc.exited;
    proc = startProcessor(opts, s3.env);
  }
  await writing;
  await proc.waitFor(/following/);
  await waitUntil('every input committed', () => committedKeys(stateDir).length === FILES, 40_000);
  assert.equal(await stopProcessor(proc), 0, proc.stderr());

  const got = await committedOutput(out);
  assert.deepEqual([...got.inputs.keys()].sort(), [...truth.keys].sort(), 'every input is covered by a manifest');
  for (const [key, n] of got.inputs) assert.equal(n, 1, `${key} is named by ${n} manifests`);
  assert.deepEqual(sortedEntries(got.rows), sortedEntries(truth.events), 'every event is in the output exactly once');
});

test('SIGTERM during heavy input exits 0 and loses nothing; a restart continues from the checkpoint', async (t) => {
  const edgeDir = tempDir(t, 'heavy-edge');
  const outDir = tempDir(t, 'heavy-out');
  const stateDir = tempDir(t, 'heavy-state');
  const edge = new LocalStore(edgeDir);
  const out = new LocalStore(outDir);
  const base = Math.floor(Date.now() / 1000) - 7200;
  const truth = new Truth();
  const FILES = 60;
  const writeFiles = async (from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i++) await writeEdgeFile(edge, schemas, base + i * 10, 2000, 100 + i, truth);
  };
  await writeFiles(0, FILES / 2);
  const opts = {
    input: edgeDir,
    output: outDir,
    stateDir,
    config: DEMO_CONFIG,
    rotateMinutes: 0.02,
    pollSeconds: 0.2,
    startDate: utcDate((base - 86_400) * 1000),
  };
  const first = startProcessor(opts);
  await first.waitFor(/committed batch/);
  // More input keeps arriving; the stop comes in the middle of it.
  await writeFiles(FILES / 2, FILES);
  const code = await stopProcessor(first, 'SIGTERM');
  assert.equal(code, 0, first.stderr());
  assert.match(first.stderr(), /stopped/);
  const afterStop = committedKeys(stateDir);
  assert.ok(afterStop.length > 0, 'some inputs committed before the stop');
  const partial = await committedOutput(out);
  assert.deepEqual([...partial.inputs.keys()].sort(), [...afterStop].sort(), 'checkpoint = what manifests cover');

  const second = startProcessor(opts);
  await second.waitFor(/following/);
  await waitUntil('every input committed', () => committedKeys(stateDir).length === FILES, 40_000);
  assert.equal(await stopProcessor(second), 0, second.stderr());
  const got = await committedOutput(out);
  for (const [key, n] of got.inputs) assert.equal(n, 1, `${key} is named by ${n} manifests`);
  assert.equal(got.inputs.size, FILES);
  assert.deepEqual(sortedEntries(got.rows), sortedEntries(truth.events));
});
