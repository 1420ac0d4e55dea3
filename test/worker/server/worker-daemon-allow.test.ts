/**
 * A worker daemon reads and writes only where its `--allow-edge` /
 * `--allow-output` lists say (default: S3 only): a task outside them gets 403
 * naming the location, and nothing of it is read. Real daemons in child
 * processes; tasks posted as the driver posts them.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { PartitionTask } from '../../../worker/partition-task.js';
import { DEMO_CONFIG } from '../../helpers/replay-env.js';
import { startWorker, type TestWorker } from '../../helpers/workers.js';

const TOKEN = 'allow-test-token-0123456789';
const SECRET_LINE = 'TOP-SECRET-LINE-4711';

function task(edge: string, keys: string[], output: string): PartitionTask {
  return {
    runtag: 'r1',
    partition: { id: 'p00000', files: keys.map((key) => ({ key, size: 10 })), bytes: 10 * keys.length },
    edge,
    output,
    settings: { configText: readFileSync(DEMO_CONFIG, 'utf8'), configSource: DEMO_CONFIG },
  };
}

async function post(
  w: TestWorker,
  t: PartitionTask,
): Promise<{ status: number; body: { error?: string; taskId?: string } }> {
  const res = await fetch(`${w.url}/tasks`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(t),
  });
  return { status: res.status, body: (await res.json()) as { error?: string; taskId?: string } };
}

/** Every file's text under `dir` (none when it does not exist). */
function allText(dir: string): string {
  let out = '';
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return '';
  }
  for (const n of names) {
    const p = join(dir, n);
    out += statSync(p).isDirectory() ? allText(p) : readFileSync(p).toString('latin1');
  }
  return out;
}

function world(): { root: string; edge: string; out: string } {
  const root = mkdtempSync(join(tmpdir(), 'spade-allow-'));
  for (const d of ['edge', 'edge2', 'secret', 'out']) mkdirSync(join(root, d));
  writeFileSync(join(root, 'secret', 'lines.log'), `${SECRET_LINE}\n`);
  writeFileSync(join(root, 'edge2', 'lines.log'), `${SECRET_LINE}\n`);
  writeFileSync(join(root, 'edge', 'ok.log'), 'not an edge line\n');
  symlinkSync(join(root, 'secret', 'lines.log'), join(root, 'edge', 'link.log'));
  symlinkSync(join(root, 'secret'), join(root, 'edge', 'linkdir'));
  return { root, edge: join(root, 'edge'), out: join(root, 'out') };
}

test('a daemon with allow-lists refuses tasks outside them with 403 and reads nothing', async (t) => {
  const w = world();
  const node = await startWorker(t, { token: TOKEN, allowEdge: [w.edge], allowOutput: [w.out] });
  assert.match(node.log(), new RegExp(`edge from ${w.edge}; output to ${w.out}`));
  const refused: { name: string; task: PartitionTask; message: RegExp }[] = [
    { name: 'a system directory', task: task('/etc', ['passwd'], w.out), message: /edge location \/etc is outside/ },
    {
      name: 'a sibling whose name starts like the allowed one',
      task: task(join(w.root, 'edge2'), ['lines.log'], w.out),
      message: /edge location .*edge2 is outside/,
    },
    {
      name: '.. out of the allowed directory',
      task: task(join(w.edge, '..', 'secret'), ['lines.log'], w.out),
      message: /edge location .*secret is outside/,
    },
    {
      name: 'a symbolic link to a file outside',
      task: task(w.edge, ['ok.log', 'link.log'], w.out),
      message: /names link\.log, which resolves outside/,
    },
    {
      name: 'a symbolic link to a directory outside',
      task: task(join(w.edge, 'linkdir'), ['lines.log'], w.out),
      message: /edge location .*linkdir is outside/,
    },
    {
      name: 'output outside',
      task: task(w.edge, ['ok.log'], join(w.root, 'secret')),
      message: /output location .*secret is outside/,
    },
    {
      name: 'S3 output when only a directory is allowed',
      task: task(w.edge, ['ok.log'], 's3://out'),
      message: /output location s3:\/\/out is outside/,
    },
  ];
  for (const r of refused) {
    const res = await post(node, r.task);
    assert.equal(res.status, 403, `${r.name}: ${JSON.stringify(res.body)}`);
    assert.match(res.body.error ?? '', r.message, r.name);
    assert.match(res.body.error ?? '', /--allow-(edge|output)/, r.name);
  }
  // Nothing was started, read or written.
  assert.doesNotMatch(node.log(), /task .* partition p00000/);
  assert.equal(allText(w.out), '');
  assert.ok(!allText(join(w.root, 'secret')).includes('r1/'));

  // Inside the lists, the task runs.
  const ok = await post(node, task(w.edge, ['ok.log'], w.out));
  assert.equal(ok.status, 202, JSON.stringify(ok.body));
  const status = await fetch(`${node.url}/tasks/${ok.body.taskId}?wait=20000`, {
    headers: { Authorization: `Bearer ${TOKEN}` },
  });
  const s = (await status.json()) as { state: string; error?: string };
  assert.equal(s.state, 'done', s.error);
  assert.ok(allText(w.out).includes('p00000'), 'the success manifest was written');
  assert.ok(!allText(w.out).includes(SECRET_LINE));
});

test('a daemon without allow-lists takes S3 locations only', async (t) => {
  const w = world();
  const node = await startWorker(t, { token: TOKEN });
  const res = await post(node, task(join(w.root, 'secret'), ['lines.log'], 's3://out'));
  assert.equal(res.status, 403, JSON.stringify(res.body));
  assert.match(res.body.error ?? '', /edge location .*secret is a local path; this node allows edge any S3 bucket/);
  const out = await post(node, task('s3://edge', ['a.log'], w.out));
  assert.equal(out.status, 403, JSON.stringify(out.body));
  assert.match(out.body.error ?? '', /output location .*out is a local path/);
  assert.equal(allText(w.out), '');
});

test('S3 allow-lists compare bucket and prefix segments', async (t) => {
  const node = await startWorker(t, { token: TOKEN, allowEdge: ['s3://edge/logs'], allowOutput: ['s3://out'] });
  for (const [edge, status] of [
    ['s3://edge/logs2', 403],
    ['s3://edge', 403],
    ['s3://other/logs', 403],
  ] as const) {
    const res = await post(node, task(edge, ['a.log'], 's3://out/x'));
    assert.equal(res.status, status, `${edge}: ${JSON.stringify(res.body)}`);
  }
  // Inside: accepted (the run itself then fails, no S3 here; what matters is the 202).
  const res = await post(node, task('s3://edge/logs/2023', ['a.log'], 's3://out/x'));
  assert.equal(res.status, 202, JSON.stringify(res.body));
});

test("a task's user-id lookup URL must be under --allow-user-id-url", async (t) => {
  const w = world();
  const lookup = (urlTemplate: string): PartitionTask => ({
    ...task(w.edge, ['ok.log'], w.out),
    settings: { ...task(w.edge, [], w.out).settings, userIdMapping: { urlTemplate, jsonPath: 'id' } },
  });
  const closed = await startWorker(t, { token: TOKEN, allowEdge: [w.edge], allowOutput: [w.out] });
  assert.match(closed.log(), /user-id lookups: none/);
  const metadata = await post(closed, lookup('http://169.254.169.254/latest/meta-data/{login}'));
  assert.equal(metadata.status, 403, JSON.stringify(metadata.body));
  assert.match(
    metadata.body.error ?? '',
    /user-id lookup URL .* is not allowed; this node allows no user-id lookups \(--allow-user-id-url\)/,
  );

  const node = await startWorker(t, {
    token: TOKEN,
    allowEdge: [w.edge],
    allowOutput: [w.out],
    allowUserIdUrl: ['http://users.internal:8080/v1/users'],
  });
  for (const outside of [
    'http://users.internal:8080/v1/users2/{login}',
    'http://users.internal:8081/v1/users/{login}',
    'https://users.internal:8080/v1/users/{login}',
    'http://users.internal:8080/v1/users/../admin/{login}',
    'http://users.internal.evil.example:8080/v1/users/{login}',
  ]) {
    const res = await post(node, lookup(outside));
    assert.equal(res.status, 403, `${outside}: ${JSON.stringify(res.body)}`);
    assert.match(res.body.error ?? '', /allows user-id lookups under http:\/\/users\.internal:8080\/v1\/users\//);
  }
  assert.equal(allText(w.out), '');
  const inside = await post(node, lookup('http://users.internal:8080/v1/users/{login}?fields=id'));
  assert.equal(inside.status, 202, JSON.stringify(inside.body));
});
