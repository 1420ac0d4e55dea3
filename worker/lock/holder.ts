/**
 * Who holds a lock (host, pid, since when), and whether that holder can be seen
 * to be gone. Shared by the runtag lock (in the output store) and the PGlite
 * directory lock.
 */
import { hostname } from 'node:os';

export interface LockHolder {
  host: string;
  pid: number;
  /** ISO time the holder took the lock. */
  since: string;
}

/** This process as a holder, from now. */
export function thisProcess(): LockHolder {
  return { host: hostname(), pid: process.pid, since: new Date().toISOString() };
}

/** For messages: `pid 123 on host build-7 since 2026-12-04T13:45:00.000Z`. */
export function describeHolder(holder: LockHolder): string {
  return `pid ${holder.pid} on host ${holder.host} since ${holder.since}`;
}

/** True when `pid` names a live process on this host (one we may not signal counts as live). */
export function pidIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * True when the holder ran on this host and its process is gone. A holder on
 * another host cannot be checked from here. A pid reused by an unrelated process
 * after the holder died makes the holder look alive: the lock then blocks until
 * that process ends or the lock is removed by hand (the messages say where it is).
 */
export function isDeadOnThisHost(holder: LockHolder): boolean {
  return holder.host === hostname() && !pidIsAlive(holder.pid);
}

/** A parsed holder, or null when `value` is not one (a damaged lock file). */
export function asHolder(value: unknown): LockHolder | null {
  const v = value as Partial<LockHolder> | null;
  if (typeof v !== 'object' || v === null) return null;
  if (typeof v.host !== 'string' || typeof v.pid !== 'number' || typeof v.since !== 'string') return null;
  return { host: v.host, pid: v.pid, since: v.since };
}
