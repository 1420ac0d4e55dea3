/**
 * Local --edge/--output given relative to the working directory are recorded and
 * sent to workers as absolute paths: a Spark executor or worker daemon runs the
 * partition tasks in a working directory of its own.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEMO_CONFIG, SPADE } from '../../helpers/replay-env.js';

test('relative local --edge and --output become absolute in the run record', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'spade-paths-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'edge'));
  const run = spawnSync(
    process.execPath,
    [
      SPADE,
      'replay',
      '2023-03-12 00:00:00',
      '2023-03-12 01:00:00',
      'login',
      '--edge',
      'edge',
      '--output',
      './out',
      '--config',
      DEMO_CONFIG,
      '--skip-ace-upload',
      '--runtag',
      'rel',
      '--log-file',
      '',
    ],
    { cwd: dir, encoding: 'utf8' },
  );
  assert.equal(run.status, 0, run.stderr);
  const record = JSON.parse(readFileSync(join(dir, 'out', 'rel', '_run.json'), 'utf8')) as { edge: string };
  assert.equal(record.edge, join(dir, 'edge'));
});
