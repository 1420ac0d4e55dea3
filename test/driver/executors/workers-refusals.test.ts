/**
 * How the workers executor treats a node that refuses: a connection refused
 * (nothing listens: the daemon is gone, and its task with it) fails the attempt
 * at once instead of waiting out the unreachable grace period; a 403 (the task's
 * locations are outside the node's --allow-edge/--allow-output) drops the node
 * at once with the daemon's message. Real daemons in child processes; the
 * tasks never reach S3 (the daemons hang or refuse them).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createWorkersExecutor } from '../../../driver/executors/workers.js';
import type { PartitionTask } from '../../../worker/partition-task.js';
import { freePort } from '../../helpers/ports.js';
import { DEMO_CONFIG } from '../../helpers/replay-env.js';
import { killWorker, startWorker } from '../../helpers/workers.js';

const TOKEN = 'refusals-token-0123456789abcdef';

function task(id: string, edge = 's3://edge', output = 's3://out'): PartitionTask {
  return {
    runtag: 'r1',
    partition: { id, files: [{ key: '20231105/a.log.gz', size: 10 }], bytes: 10 },
    edge,
    output,
    settings: { configText: readFileSync(DEMO_CONFIG, 'utf8'), configSource: DEMO_CONFIG },
  };
}

function executor(addrs: string[], log: string[]) {
  return createWorkersExecutor({
    workers: addrs,
    token: TOKEN,
    pollMs: 500,
    maxNodeFailures: 3,
    maxAttempts: 3,
    // Far longer than the test's own timeout: a refusal that waited for it would fail the test.
    unreachableGraceMs: 10 * 60_000,
    requestTimeoutMs: 3000,
    log: (m) => log.push(m),
  });
}

const hooks = { onPartitionDone: () => {}, onPartitionRetry: () => {} };

test(
  'a node whose daemon dies mid-task is failed at once by connection refusals, then dropped',
  { timeout: 90_000 },
  async (t) => {
    const node = await startWorker(t, { token: TOKEN, env: { SPADE_WORKER_TEST_HANG: '1' } });
    const log: string[] = [];
    const ex = executor([node.addr], log);
    const running = ex.run([task('p00000')], hooks);
    while (!(await node.health())?.busy) await new Promise((resolve) => setTimeout(resolve, 20));
    await killWorker(node);
    const { failed } = await running;
    assert.equal(failed.length, 1);
    assert.match(failed[0]!.error, /ECONNREFUSED/);
    const stats = ex.stats().nodes[0]!;
    assert.equal(stats.blacklisted, true);
    assert.equal(stats.failures, 3);
    assert.match(log.join('\n'), /dropped: 3 failures in a row, last: .*ECONNREFUSED/);
  },
);

test(
  'a port nothing listens on: the node fails at once, is dropped after its failures, the run finishes',
  { timeout: 90_000 },
  async () => {
    const log: string[] = [];
    const ex = executor([`127.0.0.1:${await freePort()}`], log);
    const { failed } = await ex.run([task('p00000'), task('p00001')], hooks);
    assert.equal(failed.length, 2);
    for (const f of failed) assert.match(f.error, /ECONNREFUSED/);
    const stats = ex.stats().nodes[0]!;
    assert.equal(stats.blacklisted, true);
    assert.equal(stats.failures, 3);
  },
);

test(
  'a node refusing the run’s locations (403) is dropped at once; with no node left the run fails with its message',
  { timeout: 90_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'spade-refusals-'));
    writeFileSync(join(dir, 'a.log'), 'x\n');
    // Nodes without allow-lists take S3 only: a local edge is refused by both.
    const [a, b] = await Promise.all([startWorker(t, { token: TOKEN }), startWorker(t, { token: TOKEN })]);
    const log: string[] = [];
    const ex = executor([a!.addr, b!.addr], log);
    const { failed } = await ex.run([task('p00000', dir), task('p00001', dir)], hooks);
    assert.equal(failed.length, 2);
    for (const f of failed) {
      assert.match(f.error, /no worker node left/);
      assert.match(f.error, new RegExp(`HTTP 403\\): task refused: edge location ${dir} is a local path`));
    }
    for (const n of ex.stats().nodes) {
      assert.equal(n.blacklisted, true);
      assert.equal(n.failures, 1, 'dropped at its first refusal');
    }
    assert.match(log.join('\n'), /dropped: node .* refused the task \(HTTP 403\)/);
    assert.equal(ex.stats().dispatched, 2, 'one refused dispatch per node, no retries');
  },
);
