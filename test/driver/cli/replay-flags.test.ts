/**
 * Every flag rule of SPEC section 4: a one-line message naming the problem,
 * exit code 1, never a stack trace. Nothing is started or changed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEMO_CONFIG, runSpade } from '../../helpers/replay-env.js';

const dir = mkdtempSync(join(tmpdir(), 'spade-flags-'));
const base = ['--edge', join(dir, 'edge'), '--output', join(dir, 'out'), '--config', DEMO_CONFIG, '--log-file', ''];
const noEnv = { EDGE_BUCKET: '', COMPACTER_BUCKET: '', BLUEPRINT_URL: '', SPADE_CONFIG: '' };

const cases: { name: string; args: string[]; env?: Record<string, string>; message: RegExp }[] = [
  {
    name: 'bad START format',
    args: ['2023-11-05', '2023-11-06 00:00:00', 'login', ...base],
    message: /START "2023-11-05" is not a valid time: expected %Y-%m-%d %H:%M:%S/,
  },
  {
    name: 'END not after START',
    args: ['2023-11-05 10:00:00', '2023-11-05 09:00:00', 'login', ...base],
    message: /END.*after START|must be after/i,
  },
  {
    name: 'END equal to START',
    args: ['2023-11-05 10:00:00', '2023-11-05 10:00:00', 'login', ...base],
    message: /after/i,
  },
  {
    name: 'nonexistent spring-forward time',
    args: ['2023-03-12 02:30:00', '2023-03-12 05:00:00', 'login', ...base],
    message: /does not exist/,
  },
  {
    name: 'ambiguous fall-back time',
    args: ['2023-11-05 01:30:00', '2023-11-05 05:00:00', 'login', ...base],
    message: /ambiguous/,
  },
  {
    name: '--null-rise out of range',
    args: ['2023-11-05 10:00:00', '2023-11-05 11:00:00', 'login', '--null-rise', '1.5', ...base],
    message: /^spade: --null-rise must be between 0 and 1, got 1\.5\n$/,
  },
  {
    name: '--preview without a load',
    args: ['2023-11-05 10:00:00', '2023-11-05 11:00:00', 'login', '--preview', '--skip-ace-upload', ...base],
    message: /^spade: --preview with --skip-ace-upload: nothing is loaded, so there is nothing to preview\n$/,
  },
  {
    name: 'unknown --review detail',
    args: ['2023-11-05 10:00:00', '2023-11-05 11:00:00', 'login', '--review', 'all', ...base],
    message: /review/,
  },
  {
    name: 'neither tables nor --all-tables',
    args: ['2023-11-05 10:00:00', '2023-11-05 11:00:00', ...base],
    message: /--all-tables/,
  },
  {
    name: 'tables and --all-tables',
    args: ['2023-11-05 10:00:00', '2023-11-05 11:00:00', 'login', '--all-tables', ...base],
    message: /not both/,
  },
  {
    name: 'both skip flags',
    args: [
      '2023-11-05 10:00:00',
      '2023-11-05 11:00:00',
      'login',
      '--skip-transform',
      '--skip-ace-upload',
      '--runtag',
      'x',
      ...base,
    ],
    message: /nothing to do/,
  },
  {
    name: '--skip-transform without --runtag',
    args: ['2023-11-05 10:00:00', '2023-11-05 11:00:00', 'login', '--skip-transform', ...base],
    message: /--runtag/,
  },
  {
    name: 'loading from S3 output without --rsurl',
    args: [
      '2023-11-05 10:00:00',
      '2023-11-05 11:00:00',
      'login',
      '--edge',
      's3://e',
      '--output',
      's3://o',
      '--config',
      DEMO_CONFIG,
      '--log-file',
      '',
    ],
    message: /--rsurl/,
  },
  {
    name: 'bad --poolsize',
    args: ['2023-11-05 10:00:00', '2023-11-05 11:00:00', 'login', '--poolsize', '0', ...base],
    message: /--poolsize/,
  },
  {
    name: 'bad --runtag',
    args: ['2023-11-05 10:00:00', '2023-11-05 11:00:00', 'login', '--runtag', '../x', ...base],
    message: /--runtag/,
  },
  {
    name: 'bad --schema',
    args: ['2023-11-05 10:00:00', '2023-11-05 11:00:00', 'login', '--schema', 'a;drop', ...base],
    message: /--schema/,
  },
  {
    name: 'unknown table',
    args: ['2023-11-05 10:00:00', '2023-11-05 11:00:00', 'no_such_table', ...base],
    message: /no_such_table/,
  },
  {
    name: 'no edge location',
    args: ['2023-11-05 10:00:00', '2023-11-05 11:00:00', 'login', '--config', DEMO_CONFIG, '--log-file', ''],
    message: /EDGE_BUCKET/,
  },
  {
    name: 'unknown flag',
    args: ['2023-11-05 10:00:00', '2023-11-05 11:00:00', 'login', '--bogus', ...base],
    message: /bogus/,
  },
  {
    name: 'missing config file',
    args: [
      '2023-11-05 10:00:00',
      '2023-11-05 11:00:00',
      'login',
      ...base.slice(0, 4),
      '--config',
      join(dir, 'nope.json'),
      '--log-file',
      '',
    ],
    message: /nope\.json/,
  },
  {
    name: 'a bad Kinesis stream name',
    args: ['2023-11-05 10:00:00', '2023-11-05 11:00:00', 'login', '--kinesis-stream', 'a/b', ...base],
    message: /--kinesis-stream must be 1-128 letters/,
  },
  {
    name: '--kinesis-tables without a stream',
    args: ['2023-11-05 10:00:00', '2023-11-05 11:00:00', 'login', '--kinesis-tables', 'login', ...base],
    message: /need --kinesis-stream/,
  },
  {
    name: '--kinesis-tables given neither once nor once per stream',
    args: [
      '2023-11-05 10:00:00',
      '2023-11-05 11:00:00',
      'login',
      'video_play',
      ...['--kinesis-stream', 'a', '--kinesis-stream', 'b', '--kinesis-stream', 'c'],
      ...['--kinesis-tables', 'login', '--kinesis-tables', 'video_play'],
      ...base,
    ],
    message: /given 2 times for 3 stream/,
  },
  {
    name: '--kinesis-tables naming a table not replayed',
    args: [
      '2023-11-05 10:00:00',
      '2023-11-05 11:00:00',
      'login',
      '--kinesis-stream',
      'a',
      '--kinesis-tables',
      'chat_message',
      ...base,
    ],
    message: /not replayed here: chat_message/,
  },
  {
    name: '--kinesis-concurrency 0',
    args: [
      '2023-11-05 10:00:00',
      '2023-11-05 11:00:00',
      'login',
      '--kinesis-stream',
      'a',
      '--kinesis-concurrency',
      '0',
      ...base,
    ],
    message: /--kinesis-concurrency must be a positive integer/,
  },
  {
    name: '--list-concurrency 0',
    args: ['2023-11-05 10:00:00', '2023-11-05 11:00:00', 'login', '--list-concurrency', '0', ...base],
    message: /--list-concurrency must be an integer from 1 to 256, got 0/,
  },
];

for (const c of cases) {
  test(`replay flag error: ${c.name}`, async () => {
    const res = await runSpade(['replay', ...c.args], { ...noEnv, ...c.env });
    assert.equal(res.code, 1, `exit code; stderr: ${res.stderr}`);
    assert.match(res.stderr, c.message);
    assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
  });
}

test('--plan prints what would run and changes nothing', async () => {
  const res = await runSpade(
    ['replay', '2023-11-05 10:00:00', '2023-11-05 11:00:00', 'login', '--plan', ...base],
    noEnv,
  );
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /nothing will be changed/);
  assert.match(res.stdout, /executor local/);
});
