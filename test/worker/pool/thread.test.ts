/**
 * The thread task run in-process: a damaged input (truncated gzip) is
 * transformed up to the damage and reported; an input that cannot be read at
 * all fails the task, so the partition is retried instead of losing the file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import runTask, { type TransformTask } from '../../../worker/pool/thread.js';
import { DEMO_CONFIG } from '../../helpers/replay-env.js';

function task(dir: string, urls: string[]): TransformTask {
  return {
    settings: { configText: readFileSync(DEMO_CONFIG, 'utf8'), configSource: DEMO_CONFIG },
    input: { kind: 'urls', urls },
    output: { location: join(dir, 'out'), prefix: 'run', fileTag: 't0' },
  };
}

const line = (i: number): string =>
  JSON.stringify({
    receivedAt: '2023-11-05T10:00:00Z',
    clientIp: '1.2.3.4',
    uuid: `u${i}`,
    data: Buffer.from(JSON.stringify({ event: 'login', properties: { login: `user${i}` } })).toString('base64'),
  });

test('a truncated gzip input is transformed up to the damage and reported', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spade-thread-'));
  const lines = Array.from({ length: 2000 }, (_, i) => line(i)).join('\n') + '\n';
  const gz = gzipSync(lines);
  const file = join(dir, 'cut.log.gz');
  writeFileSync(file, gz.subarray(0, Math.floor(gz.length / 2)));
  const result = await runTask(task(dir, [file]));
  assert.equal(result.inputErrors.length, 1);
  assert.ok(result.counts.lines > 0 && result.counts.lines < 2000, `lines ${result.counts.lines}`);
  assert.equal(result.counts.decodedLines + result.counts.malformedLines, result.counts.lines);
  assert.equal(result.counts.events.login?.skipped_column, result.counts.decodedLines);
  assert.ok(result.files.some((f) => f.kind === 'rows' && f.event === 'login'));
});

test('an input that cannot be read fails the task, naming it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spade-thread-'));
  await assert.rejects(runTask(task(dir, [join(dir, 'missing.log.gz')])), /missing\.log\.gz/);
});
