/**
 * `replay.sh --tmux`: the same command in a new detached tmux session named
 * after the runtag, on a tmux server private to the test (TMUX_TMPDIR).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { repoRoot } from '../../helpers/fixtures.js';
import { DEMO_CONFIG } from '../../helpers/replay-env.js';

const REPLAY_SH = join(repoRoot(), 'replay.sh');

function tmuxMissing(t: TestContext): boolean {
  if (spawnSync('tmux', ['-V']).status === 0) return false;
  const hint = 'tmux not found: install it, e.g. `apt-get install tmux`';
  if (process.env.CI === 'true') throw new Error(hint);
  t.skip(hint);
  return true;
}

function replaySh(args: string[], env: Record<string, string>): { code: number; stdout: string; stderr: string } {
  const res = spawnSync(REPLAY_SH, args, { env: { ...process.env, ...env }, encoding: 'utf8' });
  return { code: res.status ?? -1, stdout: res.stdout, stderr: res.stderr };
}

test('replay.sh --tmux starts the run in a detached session named after the runtag, once', async (t) => {
  if (tmuxMissing(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'spade-tmux-'));
  const env = { TMUX_TMPDIR: dir, TMUX: '' };
  const tmux = (...args: string[]): string =>
    execFileSync('tmux', args, { env: { ...process.env, ...env }, encoding: 'utf8' });
  t.after(() => {
    spawnSync('tmux', ['kill-server'], { env: { ...process.env, ...env } });
    rmSync(dir, { recursive: true, force: true });
  });
  const args = [
    '2023-11-05 10:00:00',
    '2023-11-05 11:00:00',
    'login',
    '--plan',
    '--edge',
    join(dir, 'edge'),
    '--output',
    join(dir, 'out'),
    '--config',
    DEMO_CONFIG,
    '--log-file',
    '',
  ];
  const res = replaySh(['--tmux', ...args, '--runtag', 'tmux.run1'], env);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /tmux session tmux_run1; attach with: tmux attach -t tmux_run1/);
  assert.match(tmux('ls', '-F', '#{session_name}'), /^tmux_run1$/m);
  // The run itself is the one without --tmux: its plan appears in the session's window.
  let pane = '';
  while (!/exited with code/.test(pane)) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    pane = tmux('capture-pane', '-p', '-J', '-t', 'tmux_run1');
  }
  assert.match(pane, /plan for runtag tmux\.run1 \(nothing will be changed\)/);
  assert.match(pane, /replay\.sh exited with code 0/);

  const again = replaySh(['--tmux', ...args, '--runtag', 'tmux.run1'], env);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /a tmux session named tmux_run1 exists already/);

  // Without --runtag, the runtag (and session) is [namespace-]YYYYMMDDTHHMMSS, as spade makes it.
  const dflt = replaySh(['--tmux', ...args, '--namespace', 'ns'], env);
  assert.equal(dflt.code, 0, dflt.stderr);
  assert.match(dflt.stdout, /tmux session ns-\d{8}T\d{6};/);
});

test('replay.sh --tmux without tmux says what to install', () => {
  const bin = mkdtempSync(join(tmpdir(), 'spade-notmux-'));
  for (const tool of ['bash', 'dirname', 'date', 'env']) {
    const found = execFileSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
    symlinkSync(found, join(bin, tool));
  }
  symlinkSync(process.execPath, join(bin, 'node'));
  try {
    const res = replaySh(['--tmux', '2023-11-05 10:00:00', '2023-11-05 11:00:00', 'login'], { PATH: bin });
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /replay\.sh --tmux: tmux is not installed \(e\.g\. apt-get install tmux\)/);
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
});
