/**
 * Plans and commits of millions of edge files in a bounded driver: each case runs
 * in a child process whose heap is capped at 512 MB (test/helpers/plan-scale-main.ts),
 * where holding every key (~0.4 KB each before plans streamed) cannot fit.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { scratchDir } from '../helpers/scratch-dir.js';

const MAIN = fileURLToPath(new URL('../helpers/plan-scale-main.js', import.meta.url));
const PEAK_RSS = new URL('../helpers/peak-rss.js', import.meta.url).href;

async function child(mode: string, args: object): Promise<Record<string, number | string>> {
  const { stdout, stderr } = await promisify(execFile)(
    process.execPath,
    ['--max-old-space-size=512', '--import', PEAK_RSS, MAIN, mode, JSON.stringify(args)],
    { maxBuffer: 1 << 20 },
  ).catch((err: Error & { stderr?: string }) => {
    throw new Error(`${mode} child failed: ${err.message}\n${err.stderr ?? ''}`);
  });
  const peak = /peak-rss-kb (\d+)/.exec(stderr);
  const result = JSON.parse(stdout) as Record<string, number | string>;
  return { ...result, peakRssMb: peak ? Math.round(Number(peak[1]) / 1024) : -1 };
}

test('a plan of 2M keys streams within a 512 MB heap, covers every key once, and a resume reads the same plan', async (t) => {
  const dir = mkdtempSync(join(scratchDir(), 'spade-plan-scale-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const args = { dir, runtag: 'big', keys: 2_000_000 };

  // The child checks that the partitions cover every listed key exactly once (else it exits non-zero).
  const planned = await child('plan', args);
  t.diagnostic(`plan: ${JSON.stringify(planned)}`);
  assert.ok(Number(planned.keys) >= 2_000_000);
  assert.equal(planned.files, planned.keys);
  assert.ok(Number(planned.partitions) > 1000);
  // The run record names plan files instead of holding every key.
  assert.ok(Number(planned.planFiles) > 1);
  assert.ok(Number(planned.recordBytes) < 1024 * 1024, `run record of ${planned.recordBytes} bytes`);

  const resumed = await child('resume', args);
  t.diagnostic(`resume: ${JSON.stringify(resumed)}`);
  assert.equal(resumed.partitions, planned.partitions);
  assert.equal(resumed.files, planned.keys);
  assert.equal(resumed.bytes, planned.bytes);
  // The same partitions, with the same ids and files in the same order.
  assert.equal(resumed.hash, planned.hash);
});

test('200k row files of 50 tables: the load manifests name exactly the success manifests files, within a 512 MB heap', async (t) => {
  const dir = mkdtempSync(join(scratchDir(), 'spade-manifest-scale-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Parts of 64 KiB (~380 files): every table's manifest is split, so the parts are checked too.
  const result = await child('manifests', {
    dir,
    runtag: 'big',
    keys: 0,
    files: 200_000,
    tables: 50,
    partBytes: 64 * 1024,
  });
  t.diagnostic(`manifests: ${JSON.stringify(result)}`);
  assert.equal(result.named, 200_000);
  assert.ok(Number(result.parts) > 50 * 5, `${result.parts} manifest parts`);
});
