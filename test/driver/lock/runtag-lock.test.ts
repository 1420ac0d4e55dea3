/**
 * The lock of a runtag in the output store: a local directory and s3rver (which
 * ignores `If-None-Match`, so the read-back after a create is what decides there),
 * and the real CLI refusing a runtag another run holds.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { RuntagLock, runtagLockKey } from '../../../driver/lock/runtag-lock.js';
import { LocalStore } from '../../../worker/store/local.js';
import type { ObjectStore } from '../../../worker/store/objectstore.js';
import { S3Store } from '../../../worker/store/s3.js';
import { DEMO_CONFIG, SPADE, startReplayWorld } from '../../helpers/replay-env.js';
import { startS3Server } from '../../helpers/s3server.js';

/** A lock record as another run would have written it. */
function foreignLock(runtag: string, fields: { host?: string; pid?: number; heartbeatAgoMs?: number } = {}): string {
  const heartbeat = new Date(Date.now() - (fields.heartbeatAgoMs ?? 0)).toISOString();
  return JSON.stringify({
    runtag,
    host: fields.host ?? 'other-host.example',
    pid: fields.pid ?? 4242,
    since: '2026-01-02T03:04:05.000Z',
    heartbeat,
    token: 'someone-else',
  });
}

/** The pid of a process that has just exited: dead on this host. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

async function lockBody(store: ObjectStore, runtag: string): Promise<Record<string, unknown> | null> {
  if (!(await store.exists(runtagLockKey(runtag)))) return null;
  return JSON.parse((await store.readBytes(runtagLockKey(runtag))).toString('utf8')) as Record<string, unknown>;
}

async function behavesAsALock(store: ObjectStore): Promise<void> {
  const first = await RuntagLock.acquire(store, 'r1');
  const written = await lockBody(store, 'r1');
  assert.equal(written?.host, hostname());
  assert.equal(written?.pid, process.pid);

  await assert.rejects(RuntagLock.acquire(store, 'r1'), (err: Error) => {
    assert.match(err.message, /^runtag r1 is in use by another run: pid \d+ on host /);
    assert.ok(err.message.includes(`pid ${process.pid} on host ${hostname()}`), err.message);
    assert.ok(err.message.includes(store.urlOf(runtagLockKey('r1'))), err.message);
    return true;
  });
  // Another runtag is not affected.
  const other = await RuntagLock.acquire(store, 'r2');
  await other.release();

  // The heartbeat moves forward; a lock taken over behind the holder's back is noticed.
  const before = String(written?.heartbeat);
  await new Promise((resolve) => setTimeout(resolve, 5));
  await first.beat();
  assert.ok(String((await lockBody(store, 'r1'))?.heartbeat) > before);
  first.assertHeld();
  await store.put(runtagLockKey('r1'), foreignLock('r1'));
  await first.beat();
  assert.throws(() => first.assertHeld(), /runtag r1: this run lost its lock to pid 4242 on host other-host\.example/);
  // Release leaves another run's lock alone.
  await first.release();
  assert.equal((await lockBody(store, 'r1'))?.token, 'someone-else');
  await store.delete(runtagLockKey('r1'));

  // Released: the runtag is free again.
  const again = await RuntagLock.acquire(store, 'r1');
  await again.release();
  assert.equal(await lockBody(store, 'r1'), null);

  // Fresh heartbeat from another host: refused. Five minutes without one: taken over.
  await store.put(runtagLockKey('r3'), foreignLock('r3', { heartbeatAgoMs: 60_000 }));
  await assert.rejects(
    RuntagLock.acquire(store, 'r3'),
    /runtag r3 is in use by another run: pid 4242 on host other-host\.example since 2026-01-02T03:04:05\.000Z, last heartbeat 60 s ago/,
  );
  await store.put(runtagLockKey('r3'), foreignLock('r3', { heartbeatAgoMs: 6 * 60_000 }));
  const warnings: string[] = [];
  const log = { info: () => undefined, warn: (m: string) => warnings.push(m), error: () => undefined };
  const takenOver = await RuntagLock.acquire(store, 'r3', { log });
  assert.equal((await lockBody(store, 'r3'))?.pid, process.pid);
  assert.match(warnings.join('\n'), /runtag r3: taking over its stale lock .*has not refreshed it for 6 minute\(s\)/);
  await takenOver.release();

  // A holder on this host whose process has ended: taken over at once.
  await store.put(runtagLockKey('r4'), foreignLock('r4', { host: hostname(), pid: await deadPid() }));
  const fromDead = await RuntagLock.acquire(store, 'r4', { log });
  assert.match(warnings.join('\n'), /runtag r4: taking over its stale lock .* has ended/);
  await fromDead.release();

  // Two takers at the same moment: exactly one wins (locally the atomic create decides;
  // s3rver ignores If-None-Match and lets both writes through, and the read-back decides).
  const results = await Promise.allSettled([RuntagLock.acquire(store, 'race'), RuntagLock.acquire(store, 'race')]);
  const won = results.filter((r) => r.status === 'fulfilled');
  assert.equal(
    won.length,
    1,
    JSON.stringify(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'held'))),
  );
  const lost = results.find((r) => r.status === 'rejected');
  assert.match(String(lost?.reason), /runtag race is in use by another run/);
  await (won[0] as PromiseFulfilledResult<RuntagLock>).value.release();
}

test('runtag lock in a local directory', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spade-runtag-lock-'));
  try {
    const store = new LocalStore(dir);
    assert.equal(await store.putIfAbsent('a/b.json', 'first'), true);
    assert.equal(await store.putIfAbsent('a/b.json', 'second'), false);
    assert.equal((await store.readBytes('a/b.json')).toString(), 'first');
    await behavesAsALock(store);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('runtag lock on S3 (s3rver)', async (t) => {
  const s3 = await startS3Server(t, { buckets: ['out'] });
  const store = new S3Store({ bucket: 'out', prefix: 'runs', client: s3.client });
  await behavesAsALock(store);
});

test('the replay CLI refuses a runtag another run holds, takes over a stale lock, and releases on Ctrl-C, SIGTERM and SIGHUP', async (t) => {
  const world = await startReplayWorld(t, {
    startSec: Date.UTC(2023, 10, 6, 7, 0, 0) / 1000,
    endSec: Date.UTC(2023, 10, 6, 10, 0, 0) / 1000,
    events: 300,
    dbName: 'runtag_lock',
  });
  if (!world) return;
  const args = ['2023-11-06 00:00:00', '2023-11-06 01:00:00', 'login'];

  // This test process holds runtag `held`, as a run in progress would.
  const holder = await RuntagLock.acquire(world.out, 'held');
  try {
    const refused = await world.replay([...args, '--runtag', 'held']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /runtag held is in use by another run: pid \d+ on host /);
    assert.ok(refused.stderr.includes(`pid ${process.pid} on host ${hostname()}`), refused.stderr);
    // It wrote nothing under the runtag: no run record next to the holder's.
    assert.equal(await world.out.exists('held/_run.json'), false);

    // --plan changes nothing and takes no lock.
    const plan = await world.replay([...args, '--runtag', 'held', '--plan']);
    assert.equal(plan.code, 0, plan.stderr);
  } finally {
    await holder.release();
  }

  // A run that stopped without releasing (another host, no heartbeat for an hour): taken over.
  await world.out.put(runtagLockKey('stale'), foreignLock('stale', { heartbeatAgoMs: 3_600_000 }));
  const resumed = await world.replay([...args, '--runtag', 'stale']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(
    resumed.stderr,
    /runtag stale: taking over its stale lock s3:\/\/out\/stale\/_lock\.json: pid 4242 on host other-host\.example/,
  );
  // Released at the end of the run.
  assert.equal(await world.out.exists(runtagLockKey('stale')), false);
  const [row] = await world.query<{ n: number }>('SELECT count(*)::int AS n FROM physical.login');
  assert.ok(row!.n > 0);

  // Ctrl-C releases the lock. The run is held in its load for certain: this test holds
  // the table locked, so the run waits (holding its runtag) until it is interrupted.
  const blocker = new pg.Client({ connectionString: world.db });
  blocker.on('error', () => undefined); // the server stops when the test ends
  await blocker.connect();
  await blocker.query('BEGIN');
  await blocker.query('LOCK TABLE physical.login IN ACCESS EXCLUSIVE MODE');
  // Ctrl-C (SIGINT), SIGTERM (kill, systemd) and SIGHUP (a closed tmux session) alike.
  // The backends of interrupted runs keep waiting for the table until the blocker ends,
  // so this run's wait is one more waiter than before it started.
  let earlierWaiters = 0;
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    const runtag = `interrupted-${signal}`;
    const child = spawn(
      process.execPath,
      [SPADE, 'replay', ...args, '--runtag', runtag, '--edge', 's3://edge', '--output', 's3://out'].concat([
        '--rsurl',
        world.rsurl,
        '--config',
        DEMO_CONFIG,
        '--log-file',
        '',
        '--threads',
        '2',
      ]),
      { env: { ...process.env, ...world.env }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    for (;;) {
      const waiting = await world.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'runtag_lock' AND wait_event_type = 'Lock'",
      );
      if (waiting[0]!.n > earlierWaiters || child.exitCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(await world.out.exists(runtagLockKey(runtag)), true, stderr);
    child.kill(signal);
    assert.equal(await exit, code, stderr);
    assert.equal(await world.out.exists(runtagLockKey(runtag)), false, `${signal} released the lock`);
    earlierWaiters++;
  }
  await blocker.query('ROLLBACK');
  await blocker.end();
});
