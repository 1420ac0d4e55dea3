/**
 * Credentials in warehouse URLs never show: the real CLI as a child process,
 * for every form of password (userinfo, raw `@`, percent-encoded, query
 * parameters, a mix), in `replay` (command-line echo, connection error,
 * `--plan`, replay.log, the stored run record) and in `spade process`.
 * Nothing listens on the warehouse port, so every connection fails.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort } from '../../helpers/ports.js';
import { DEMO_CONFIG, runSpade } from '../../helpers/replay-env.js';

const START = '2023-11-05 10:00:00';
const END = '2023-11-05 11:00:00';

/** Each URL, with what must never appear (the secrets, and their parts around a raw `@`). */
function forms(port: number): { name: string; url: string; hidden: string[] }[] {
  const host = `127.0.0.1:${port}`;
  return [
    { name: 'userinfo password', url: `postgres://u:S3cretUi@${host}/db`, hidden: ['S3cretUi'] },
    { name: 'raw @ in the password', url: `postgres://u:S3cr@tRawPw@${host}/db`, hidden: ['S3cr@', 'tRawPw'] },
    {
      name: 'percent-encoded password',
      url: `postgres://u:S3cr%40tEnc@${host}/db`,
      hidden: ['S3cr%40tEnc', 'S3cr@tEnc', 'tEnc'],
    },
    { name: 'password parameter', url: `postgres://${host}/db?user=u&password=S3cretQp`, hidden: ['S3cretQp'] },
    {
      name: 'sslpassword parameter',
      url: `postgres://u@${host}/db?sslmode=disable&sslpassword=S3cretSslPw`,
      hidden: ['S3cretSslPw'],
    },
    {
      name: 'mixed',
      url: `postgres://u:S3cr@tMix@${host}/db?password=S3cretMixQ&application_name=spade`,
      hidden: ['S3cr@', 'tMix', 'S3cretMixQ'],
    },
  ];
}

function assertHidden(where: string, text: string, hidden: string[]): void {
  for (const s of hidden) assert.ok(!text.includes(s), `${s} shows in ${where}:\n${text}`);
}

/** Every file under `dir`, concatenated (stored records, logs). */
function allFiles(dir: string): string {
  let out = '';
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    out += statSync(p).isDirectory() ? allFiles(p) : readFileSync(p, 'utf8');
  }
  return out;
}

test('replay: no password form shows in the echo, the connection error, --plan, replay.log or the run record', async (t) => {
  const port = await freePort();
  for (const form of forms(port)) {
    await t.test(form.name, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'spade-secrets-'));
      mkdirSync(join(dir, 'edge'));
      const logFile = join(dir, 'replay.log');
      const base = ['replay', START, END, 'login', '--edge', join(dir, 'edge'), '--output', join(dir, 'out')];
      const common = ['--config', DEMO_CONFIG, '--rsurl', form.url, '--log-file', logFile];

      const plan = await runSpade([...base, ...common, '--plan']);
      assert.equal(plan.code, 0, plan.stderr);
      assert.match(plan.stdout, /load: postgres:\/\/\S*\*\*\*/);
      assertHidden('--plan stdout', plan.stdout, form.hidden);
      assertHidden('--plan stderr', plan.stderr, form.hidden);

      const run = await runSpade([...base, ...common, '--runtag', 'r1']);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.match(run.stderr, /cannot connect to postgres:\/\/\S*\*\*\*.*ECONNREFUSED/);
      assertHidden('stdout', run.stdout, form.hidden);
      assertHidden('stderr', run.stderr, form.hidden);
      const log = readFileSync(logFile, 'utf8');
      assert.match(log, /spade replay .*--rsurl postgres:\/\/\S*\*\*\*/);
      assertHidden('replay.log', log, form.hidden);
      assertHidden('the output (run record)', allFiles(join(dir, 'out')), form.hidden);
    });
  }
});

test('spade process: no password form shows when the warehouse cannot be reached', async (t) => {
  const port = await freePort();
  for (const form of forms(port)) {
    await t.test(form.name, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'spade-secrets-process-'));
      const res = await runSpade(
        [
          'process',
          '--follow',
          '--input=-',
          '--output',
          join(dir, 'out'),
          '--state-dir',
          join(dir, 'state'),
          '--config',
          DEMO_CONFIG,
          '--rsurl',
          form.url,
        ],
        {},
        '',
      );
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /postgres:\/\/\S*\*\*\*.*ECONNREFUSED/);
      assertHidden('stdout', res.stdout, form.hidden);
      assertHidden('stderr', res.stderr, form.hidden);
      assertHidden('the state dir', allFiles(join(dir, 'state')), form.hidden);
    });
  }
});
