/**
 * Where tests and benchmarks put many short-lived files: RAM-backed /dev/shm when
 * present, else the temp dir. On this project's disk-backed temp dirs creating a
 * file can cost ~1 ms (more right after many were deleted: ext4 then checks each
 * recently freed inode), on /dev/shm a few µs.
 */
import { accessSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';

export function scratchDir(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}
