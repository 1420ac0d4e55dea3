/**
 * One run per runtag at a time: two runs writing the same runtag would interleave
 * their run records, success manifests and load manifests. The lock is an object
 * `<runtag>/_lock.json` in the output store holding the holder (host, pid, start
 * time) and a heartbeat the holder refreshes every HEARTBEAT_MS. A second run
 * refuses, naming the runtag and the holder. A lock is stale, and taken over,
 * when its heartbeat is older than STALE_MS, or at once when its holder ran on
 * this host and its process is gone.
 *
 * Creating the object: a local directory creates it atomically (LocalStore
 * putIfAbsent); S3 honours `If-None-Match: *`. Servers that ignore that header
 * (s3rver, some S3 look-alikes) let two runs both "create" it, the last write
 * winning, so after creating, a run waits `settleMs` and reads the lock back: only
 * the run whose token is there goes on. What remains: a write delayed by more than
 * `settleMs` could land after the other run's read-back, and two runs taking over
 * the same stale lock at once could each delete what the other just wrote. Both
 * are caught later: every heartbeat first reads the lock, and a run that finds
 * another holder's token there stops before it loads anything (`assertHeld`).
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { isS3Url } from '../../worker/store/location.js';
import { ObjectNotFoundError, type ObjectStore } from '../../worker/store/objectstore.js';
import type { Logger } from '../log.js';
import { asHolder, describeHolder, isDeadOnThisHost, thisProcess, type LockHolder } from '../../worker/lock/holder.js';

export const runtagLockKey = (runtag: string): string => `${runtag}/_lock.json`;

/** How often a holder refreshes its heartbeat. */
export const HEARTBEAT_MS = 30_000;
/**
 * No heartbeat for this long and the holder is taken to be gone. Ten missed
 * heartbeats: a live holder slowed by a busy machine, a slow store or clocks a
 * minute or two apart between hosts is never taken over, while a crashed run's
 * runtag is free again within minutes (at once on the host it ran on).
 */
export const STALE_MS = 5 * 60_000;
/** Wait before reading a new S3 lock back (see above). */
export const S3_SETTLE_MS = 2_000;
const ATTEMPTS = 3;

interface LockBody extends LockHolder {
  runtag: string;
  /** ISO time of the holder's last refresh. */
  heartbeat: string;
  /** Tells this holder's lock from another's, even of the same process. */
  token: string;
}

type Found =
  { state: 'missing' } | { state: 'damaged'; text: string } | { state: 'held'; body: LockBody; text: string };

export interface RuntagLockOptions {
  log?: Pick<Logger, 'info' | 'warn' | 'error'>;
  heartbeatMs?: number;
  staleMs?: number;
  /** Default S3_SETTLE_MS on S3, 0 on a local directory (whose create is atomic). */
  settleMs?: number;
}

/** Every lock this process holds, so that Ctrl-C can release them before exiting. */
const held = new Set<RuntagLock>();

/** Releases every runtag lock this process holds (on Ctrl-C, before process.exit). */
export async function releaseRuntagLocks(): Promise<void> {
  await Promise.all([...held].map((lock) => lock.release()));
}

export class RuntagLock {
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> = Promise.resolve();
  private lostTo: string | null = null;
  private released = false;

  private constructor(
    private readonly store: ObjectStore,
    private readonly body: LockBody,
    private readonly log: RuntagLockOptions['log'],
    heartbeatMs: number,
  ) {
    held.add(this);
    this.timer = setInterval(() => {
      this.beating = this.beat().catch((err: unknown) =>
        this.log?.warn(`runtag ${body.runtag}: cannot refresh its lock: ${(err as Error).message}`),
      );
    }, heartbeatMs);
    this.timer.unref();
  }

  /** Takes the lock of `runtag` in `store`, or throws a message naming the runtag and its holder. */
  static async acquire(store: ObjectStore, runtag: string, opts: RuntagLockOptions = {}): Promise<RuntagLock> {
    const key = runtagLockKey(runtag);
    const staleMs = opts.staleMs ?? STALE_MS;
    const settleMs = opts.settleMs ?? (isS3Url(store.url) ? S3_SETTLE_MS : 0);
    const me = thisProcess();
    const body: LockBody = { runtag, ...me, heartbeat: me.since, token: randomBytes(8).toString('hex') };
    const text = JSON.stringify(body, null, 1) + '\n';
    let found = await readLock(store, key);
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      if (found.state !== 'missing') {
        const why = staleReason(found, staleMs);
        if (why === null) break;
        opts.log?.warn(`runtag ${runtag}: taking over its stale lock ${store.urlOf(key)}: ${why}`);
        // Re-read just before deleting: a lock someone else has just taken over is left alone.
        const again = await readLock(store, key);
        if (again.state === 'missing' || again.text !== found.text) {
          found = again;
          continue;
        }
        await store.delete(key);
      }
      if (await createIfAbsent(store, key, text)) {
        if (settleMs > 0) await sleep(settleMs);
        found = await readLock(store, key);
        if (found.state === 'held' && found.body.token === body.token)
          return new RuntagLock(store, body, opts.log, opts.heartbeatMs ?? HEARTBEAT_MS);
      } else {
        found = await readLock(store, key);
      }
    }
    if (found.state === 'held' && staleReason(found, staleMs) === null) {
      const ago = Math.max(0, Math.round((Date.now() - Date.parse(found.body.heartbeat)) / 1000));
      throw new Error(
        `runtag ${runtag} is in use by another run: ${describeHolder(found.body)}, last heartbeat ${ago} s ago ` +
          `(lock ${store.urlOf(key)}). Wait for that run to end or use another --runtag; a lock whose run has ` +
          `stopped is taken over after ${Math.round(staleMs / 60_000)} minutes without a heartbeat ` +
          `(at once on the host it ran on)`,
      );
    }
    throw new Error(
      `runtag ${runtag}: another run is taking its lock ${store.urlOf(key)} at the same moment; try again`,
    );
  }

  get runtag(): string {
    return this.body.runtag;
  }

  /** Throws when a heartbeat found that another run has taken the lock: this run must not write on. */
  assertHeld(): void {
    if (this.lostTo !== null) {
      throw new Error(
        `runtag ${this.body.runtag}: this run lost its lock to ${this.lostTo} (its heartbeat was taken for stale); ` +
          `stopped before loading. Check that run, then re-run with --runtag ${this.body.runtag}`,
      );
    }
  }

  /** Refreshes the heartbeat, after checking the lock is still this run's (public for tests). */
  async beat(): Promise<void> {
    if (this.released || this.lostTo !== null) return;
    const key = runtagLockKey(this.body.runtag);
    const found = await readLock(this.store, key);
    if (found.state !== 'held' || found.body.token !== this.body.token) {
      this.lostTo = found.state === 'held' ? describeHolder(found.body) : 'nobody (the lock object was removed)';
      clearInterval(this.timer);
      this.log?.error(`runtag ${this.body.runtag}: another run has its lock now: ${this.lostTo}`);
      return;
    }
    this.body.heartbeat = new Date().toISOString();
    await this.store.put(key, JSON.stringify(this.body, null, 1) + '\n');
  }

  /** Stops the heartbeat and removes the lock if it is still this run's. Never throws; idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    held.delete(this);
    await this.beating;
    const key = runtagLockKey(this.body.runtag);
    try {
      const found = await readLock(this.store, key);
      if (found.state === 'held' && found.body.token === this.body.token) await this.store.delete(key);
    } catch (err) {
      this.log?.warn(
        `runtag ${this.body.runtag}: cannot remove its lock ${this.store.urlOf(key)} (${(err as Error).message}); ` +
          `the next run on this runtag takes it over once it is stale`,
      );
    }
  }
}

/** Why a found lock may be taken over, or null while its holder counts as alive. */
function staleReason(found: Exclude<Found, { state: 'missing' }>, staleMs: number): string | null {
  if (found.state === 'damaged') return 'it is damaged (not a lock record)';
  const holder = found.body;
  if (isDeadOnThisHost(holder)) return `${describeHolder(holder)} has ended`;
  const age = Date.now() - Date.parse(holder.heartbeat);
  if (age > staleMs) return `${describeHolder(holder)} has not refreshed it for ${Math.round(age / 60_000)} minute(s)`;
  return null;
}

async function readLock(store: ObjectStore, key: string): Promise<Found> {
  if (!(await store.exists(key))) return { state: 'missing' };
  let text: string;
  try {
    text = (await store.readBytes(key)).toString('utf8');
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return { state: 'missing' }; // released meanwhile
    throw err;
  }
  try {
    const value = JSON.parse(text) as Partial<LockBody>;
    const holder = asHolder(value);
    if (
      holder &&
      typeof value.runtag === 'string' &&
      typeof value.token === 'string' &&
      typeof value.heartbeat === 'string' &&
      !Number.isNaN(Date.parse(value.heartbeat))
    ) {
      return {
        state: 'held',
        body: { ...holder, runtag: value.runtag, heartbeat: value.heartbeat, token: value.token },
        text,
      };
    }
  } catch {
    // not JSON
  }
  return { state: 'damaged', text };
}

/** The store's atomic create where it has one; else check-then-put, which the read-back after it covers. */
async function createIfAbsent(store: ObjectStore, key: string, text: string): Promise<boolean> {
  if (store.putIfAbsent) return store.putIfAbsent(key, text);
  if (await store.exists(key)) return false;
  await store.put(key, text);
  return true;
}
