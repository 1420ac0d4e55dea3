/**
 * `spade process` reading standard input, as the real CLI in a child process:
 * `--input -` as the README writes it, and a glob bomb (a few hundred KB of
 * DEFLATE inflating to hundreds of MB) that is quarantined as `glob_too_large`
 * while the process's peak memory stays bounded and the other lines go through.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { createDeflateRaw, deflateRawSync, gunzipSync } from 'node:zlib';
import { GLOB_MAX_INFLATED_BYTES, encodeGlobLine } from '../../../worker/process/globs.js';
import { LocalStore } from '../../../worker/store/local.js';
import { DEMO_CONFIG, SPADE } from '../../helpers/replay-env.js';
import { repoRoot } from '../../helpers/fixtures.js';
import { committedOutput, sortedEntries } from './harness.js';

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

const PEAK_RSS = join(repoRoot(), 'dist', 'test', 'helpers', 'peak-rss.js');
/** Inflated size of the bomb: far beyond the cap, yet a string V8 could still hold (the old code tried). */
const BOMB_INFLATED_BYTES = 400 * 1024 * 1024;
/**
 * The bound on the processor's peak RSS while it refuses the bomb: the 64 MiB
 * inflate cap plus the process itself (153 MB for the whole run when measured).
 * Inflating the bomb whole, as before the cap, peaked at 1.3 GB.
 */
const PEAK_RSS_BOUND_MB = 320;

function runCli(args: string[], input: string, nodeArgs: string[] = []): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, SPADE, ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
    child.stdin.end(input);
  });
}

function dirs(): { out: string; state: string } {
  const d = mkdtempSync(join(tmpdir(), 'spade-stdin-cli-'));
  return { out: join(d, 'out'), state: join(d, 'state') };
}

/** A glob line whose DEFLATE inflates to `bytes` spaces after a `[`: built in pieces, never held inflated. */
async function globBomb(bytes: number): Promise<string> {
  const deflate = createDeflateRaw({ level: 9 });
  const chunks: Buffer[] = [];
  deflate.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise((resolve) => deflate.on('end', resolve));
  deflate.write('[');
  const piece = Buffer.alloc(16 * 1024 * 1024, 0x20);
  for (let n = 0; n < bytes; n += piece.length) {
    if (!deflate.write(piece)) await new Promise((resolve) => deflate.once('drain', resolve));
  }
  deflate.end();
  await done;
  return Buffer.concat([Buffer.from([1]), ...chunks]).toString('base64');
}

test('spade process --input - (a separate word) reads standard input', async () => {
  const d = dirs();
  const res = await runCli(
    ['process', '--follow', '--input', '-', '--output', d.out, '--state-dir', d.state, '--config', DEMO_CONFIG],
    edgeLine('in-1', 'login') + '\n',
  );
  assert.equal(res.code, 0, res.stderr);
  const got = await committedOutput(new LocalStore(d.out));
  assert.deepEqual(sortedEntries(got.rows), [['login', 1]]);
});

test('a glob bomb on stdin is quarantined as glob_too_large with bounded memory; the other lines are processed', async (t) => {
  const d = dirs();
  const bomb = await globBomb(BOMB_INFLATED_BYTES);
  assert.ok(bomb.length < 1024 * 1024, `bomb line ${bomb.length} bytes`);
  assert.ok(BOMB_INFLATED_BYTES > GLOB_MAX_INFLATED_BYTES);
  const glob = encodeGlobLine([JSON.parse(edgeLine('g-1', 'login')) as unknown], (b) => deflateRawSync(b));
  const input = [edgeLine('e-1', 'login'), bomb, glob, edgeLine('e-2', 'video_play')].join('\n') + '\n';
  const res = await runCli(
    ['process', '--follow', '--input=-', '--output', d.out, '--state-dir', d.state, '--config', DEMO_CONFIG],
    input,
    ['--import', pathToFileURL(PEAK_RSS).href],
  );
  assert.equal(res.code, 0, res.stderr);

  const got = await committedOutput(new LocalStore(d.out));
  assert.deepEqual(sortedEntries(got.rows), [
    ['login', 2],
    ['video_play', 1],
  ]);
  const counts = got.manifests.map((m) => m.manifest.counts);
  assert.equal(
    counts.reduce((n, c) => n + (c.malformedByReason.glob_too_large ?? 0), 0),
    1,
  );
  assert.equal(
    counts.reduce((n, c) => n + c.malformedLines, 0),
    1,
  );
  // The quarantine names the line and the reason.
  const quarantine = got.manifests.flatMap((m) => m.manifest.files).filter((f) => f.kind === 'quarantine');
  const records = quarantine.flatMap((f) =>
    gunzipSync(readFileSync(join(d.out, f.key)))
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { reason: string; lineNo: number }),
  );
  assert.deepEqual(
    records.filter((r) => r.reason === 'glob_too_large').map((r) => r.lineNo),
    [2],
  );

  const peak = /peak-rss-kb (\d+)/.exec(res.stderr);
  assert.ok(peak, res.stderr);
  const peakMb = Number(peak[1]) / 1024;
  t.diagnostic(`peak RSS of the processor: ${peakMb.toFixed(0)} MB`);
  assert.ok(peakMb < PEAK_RSS_BOUND_MB, `peak RSS ${peakMb.toFixed(0)} MB, bound ${PEAK_RSS_BOUND_MB} MB`);
});
