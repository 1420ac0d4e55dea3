import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../driver/log.js';
import { createProgress } from '../../driver/progress.js';

test('the listing shows keys listed and keys/s, and its last figures stay when it ends', () => {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const log = createLogger({ level: 'info', stream });
  // Not a terminal: a log line at each redraw (the interval is far beyond this test).
  const progress = createProgress({
    log,
    tty: false,
    stream: stream as unknown as NodeJS.WriteStream,
    intervalMs: 3_600_000,
  });
  progress.startList?.();
  progress.listed?.(12_000);
  progress.listed?.(25_000);
  progress.endList?.();
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0]!, /INFO {2}list: 25000 key\(s\) listed, [\d.]+[kM]? keys\/s$/);
  // Once the listing ended, the transform's progress does not repeat it.
  progress.startTransform(1, 0, 100);
  progress.stop();
  assert.doesNotMatch(lines.slice(1).join('\n'), /list:/);
});
