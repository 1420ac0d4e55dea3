/**
 * One process at a time in a local directory (the embedded PGlite warehouse): two
 * PGlite instances on one directory lose or duplicate rows, or abort. The lock is
 * a file in the directory, created atomically (written under a temp name, then
 * hard-linked to its name, which fails if the name exists), so no reader ever
 * sees it half-written. Whoever finds it taken polls for a few seconds, then
 * refuses with the directory and the holder. A holder on this host whose process
 * is gone (killed, crashed) is taken over.
 */
import { linkSync, mkdirSync, readFileSync, rmdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { asHolder, describeHolder, isDeadOnThisHost, thisProcess, type LockHolder } from './holder.js';

export const DIR_LOCK_FILE = '.spade-lock.json';
/** How long a second process waits for the holder to let go before refusing. */
export const DEFAULT_DIR_LOCK_WAIT_MS = 5_000;
const POLL_MS = 200;
/** A takeover guard older than this was left by a process that died mid-takeover (which takes microseconds). */
const GUARD_STALE_MS = 10_000;

export interface DirLockOptions {
  /** Wait at most this long for the holder (default DEFAULT_DIR_LOCK_WAIT_MS). */
  waitMs?: number;
  /** Told when a dead holder's lock is taken over. */
  log?: (msg: string) => void;
  /** Names the directory in messages, e.g. 'PGlite database'. */
  what?: string;
}

type Found = { state: 'missing' } | { state: 'damaged' } | { state: 'held'; holder: LockHolder };

export class DirLock {
  private released = false;
  private readonly onExit = (): void => this.release();

  private constructor(
    readonly dir: string,
    private readonly path: string,
    private readonly holder: LockHolder,
  ) {
    // process.exit() (e.g. after Ctrl-C) skips every finally: remove the file on the way out.
    process.on('exit', this.onExit);
  }

  static async acquire(dir: string, opts: DirLockOptions = {}): Promise<DirLock> {
    const path = join(dir, DIR_LOCK_FILE);
    const what = opts.what ?? 'directory';
    const me = thisProcess();
    const deadline = Date.now() + (opts.waitMs ?? DEFAULT_DIR_LOCK_WAIT_MS);
    for (;;) {
      if (createExclusive(path, me)) return new DirLock(dir, path, me);
      const found = readLock(path);
      if (found.state === 'missing') continue; // released just now: try again at once
      if (found.state === 'damaged' || isDeadOnThisHost(found.holder)) {
        const whose =
          found.state === 'damaged' ? 'a damaged lock file' : `${describeHolder(found.holder)}, which has ended`;
        if (takeOver(path, found)) opts.log?.(`${what} ${dir}: took over the lock of ${whose}`);
        else await sleep(POLL_MS); // another process is taking it over: see who wins
        continue;
      }
      if (Date.now() >= deadline) {
        throw new Error(
          `${what} ${dir} is in use by ${describeHolder(found.holder)} (lock file ${path}); ` +
            `only one process at a time may open it: wait for that one to finish` +
            ` (if it is gone on another host, remove ${path})`,
        );
      }
      await sleep(POLL_MS);
    }
  }

  /** Removes the lock file if it is still this holder's. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    process.off('exit', this.onExit);
    const found = readLock(this.path);
    if (found.state === 'held' && sameHolder(found.holder, this.holder)) {
      try {
        unlinkSync(this.path);
      } catch {
        // already gone
      }
    }
  }
}

function sameHolder(a: LockHolder, b: LockHolder): boolean {
  return a.host === b.host && a.pid === b.pid && a.since === b.since;
}

/** Creates the lock file holding `holder`, complete, or returns false if it exists. */
function createExclusive(path: string, holder: LockHolder): boolean {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(tmp, JSON.stringify(holder) + '\n', { flag: 'wx' });
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new Error(`cannot create lock file ${path}: ${(err as Error).message}`, { cause: err });
  } finally {
    unlinkSync(tmp);
  }
}

function readLock(path: string): Found {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    throw new Error(`cannot read lock file ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const holder = asHolder(JSON.parse(text));
    return holder ? { state: 'held', holder } : { state: 'damaged' };
  } catch {
    return { state: 'damaged' };
  }
}

/**
 * Removes the lock file `found` (dead or damaged) unless it changed meanwhile.
 * Two processes may find the same dead holder at once: without the guard, the
 * second could remove the lock the first has just created. The guard directory
 * (mkdir is atomic) lets one of them re-check and remove at a time.
 */
function takeOver(path: string, found: Found): boolean {
  const guard = `${path}.takeover`;
  try {
    mkdirSync(guard);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    try {
      if (Date.now() - statSync(guard).mtimeMs > GUARD_STALE_MS) rmdirSync(guard);
    } catch {
      // removed by its owner meanwhile
    }
    return false;
  }
  try {
    const now = readLock(path);
    const unchanged =
      (found.state === 'damaged' && now.state === 'damaged') ||
      (found.state === 'held' && now.state === 'held' && sameHolder(found.holder, now.holder));
    if (!unchanged) return false;
    unlinkSync(path);
    return true;
  } finally {
    rmdirSync(guard);
  }
}
