/**
 * `spade process` on a damaged (truncated) gzip input: its complete lines are
 * committed, the file is named in a log line and counted in
 * `spade_damaged_inputs_total`.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DEMO_CONFIG } from '../../helpers/replay-env.js';
import { utcDate } from '../../../worker/process/checkpoint.js';
import { LocalStore } from '../../../worker/store/local.js';
import { parseTableConfig } from '../../../worker/transform/schema.js';
import {
  committedKeys,
  killRunningProcessors,
  startProcessor,
  stopProcessor,
  Truth,
  waitUntil,
  writeEdgeFile,
} from './harness.js';

after(killRunningProcessors);

const schemas = parseTableConfig(readFileSync(DEMO_CONFIG, 'utf8'), DEMO_CONFIG);

test('a truncated gzip input is committed up to the damage, logged by name and counted', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'spade-proc-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const edgeDir = join(root, 'edge');
  mkdirSync(edgeDir);
  const edge = new LocalStore(edgeDir);
  const base = Math.floor(Date.now() / 1000) - 600;
  const truth = new Truth();
  const keys: string[] = [];
  for (let i = 0; i < 3; i++) keys.push(await writeEdgeFile(edge, schemas, base + i * 10, 300, 70 + i, truth));
  const damagedKey = keys[1]!;
  const whole = await edge.readBytes(damagedKey);
  await edge.put(damagedKey, whole.subarray(0, Math.floor(whole.length / 2)));

  const proc = startProcessor({
    input: edgeDir,
    output: join(root, 'out'),
    stateDir: join(root, 'state'),
    config: DEMO_CONFIG,
    rotateMinutes: 0.01,
    pollSeconds: 0.2,
    startDate: utcDate((base - 86_400) * 1000),
    metricsPort: 0,
  });
  const [, url] = await proc.waitFor(/metrics on (http:\/\/\S+)\/metrics/);
  await waitUntil('every file committed', () => committedKeys(join(root, 'state')).length === 3);
  const [line] = await proc.waitFor(/\S+ is damaged; kept its complete lines.*/);
  assert.ok(line.includes(damagedKey), line);
  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.match(metrics, /^spade_damaged_inputs_total 1$/m);
  assert.match(line, /\(\d+ bytes, \d+ lines read\): .*unexpected end of file/);
  assert.equal(await stopProcessor(proc), 0, proc.stderr());
});
