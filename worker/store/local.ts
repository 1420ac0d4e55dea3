/**
 * ObjectStore over a local directory: keys are relative file paths under the
 * root. Used for tests, demos and single-machine runs; behaves like the S3 store
 * (key order, atomic writes, "not found" errors) so the engine cannot tell them apart.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, type Dirent } from 'node:fs';
import { link, mkdir, open, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  assertValidKey,
  isStoredPrefix,
  ObjectNotFoundError,
  type ObjectStore,
  type StoredObject,
  type StoredPrefix,
} from './objectstore.js';

/** In-progress writes live next to their target under this name prefix; listings skip them. */
export const TEMP_PREFIX = '.tmp-';

export class LocalStore implements ObjectStore {
  readonly url: string;
  private readonly root: string;

  constructor(rootDir: string) {
    this.root = resolve(rootDir);
    this.url = this.root;
  }

  urlOf(key: string): string {
    return this.pathOf(key);
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    assertValidPrefix(prefix);
    // Start at the deepest directory the prefix fully names; the rest of the
    // prefix (e.g. `2023031` of `runs/2023031`) filters entry names.
    const startKey = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    for await (const entry of this.walk(startKey, prefix)) if (!isStoredPrefix(entry)) yield entry;
  }

  /** One directory: its files, and its sub-directories as prefixes, in S3's key order. */
  async *listLevel(prefix: string): AsyncIterable<StoredObject | StoredPrefix> {
    assertValidPrefix(prefix);
    if (prefix !== '' && !prefix.endsWith('/'))
      throw new Error(`listLevel prefix ${JSON.stringify(prefix)} must end in "/"`);
    for await (const entry of this.walk(prefix, prefix, false)) yield entry;
  }

  async read(key: string): Promise<Readable> {
    const path = this.pathOf(key);
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      throw this.wrapError('read', path, err);
    }
    try {
      const st = await handle.stat();
      // A directory opens fine on Linux but is not an object.
      if (!st.isFile()) throw new ObjectNotFoundError(path);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return handle.createReadStream();
  }

  async readBytes(key: string): Promise<Buffer> {
    const path = this.pathOf(key);
    try {
      return await readFile(path);
    } catch (err) {
      throw this.wrapError('read', path, err);
    }
  }

  async put(key: string, body: Buffer | string): Promise<void> {
    const path = this.pathOf(key);
    await this.writeAtomically(path, async (tmp) => {
      const handle = await open(tmp, 'wx');
      try {
        await handle.writeFile(body);
      } finally {
        await handle.close();
      }
    });
  }

  async upload(key: string, body: Readable): Promise<{ bytes: number }> {
    const path = this.pathOf(key);
    let bytes = 0;
    // The body may fail while the directory is being created, before pipeline()
    // listens: hold on to that error instead of letting it go uncaught.
    let earlyError: unknown = null;
    const onEarlyError = (err: unknown) => (earlyError ??= err);
    body.on('error', onEarlyError);
    await this.writeAtomically(path, async (tmp) => {
      body.off('error', onEarlyError);
      if (earlyError !== null) throw earlyError;
      await pipeline(body, createWriteStream(tmp, { flags: 'wx' }));
      bytes = (await stat(tmp)).size;
    }).finally(() => body.off('error', onEarlyError));
    return { bytes };
  }

  /** Written under a temp name, then hard-linked to `key`: link fails if the name exists, and never shows a partial file. */
  async putIfAbsent(key: string, body: Buffer | string): Promise<boolean> {
    const path = this.pathOf(key);
    const dir = dirname(path);
    const tmp = join(dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      await mkdir(dir, { recursive: true });
      const handle = await open(tmp, 'wx');
      try {
        await handle.writeFile(body);
      } finally {
        await handle.close();
      }
      try {
        await link(tmp, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw err;
      }
      return true;
    } catch (err) {
      throw this.wrapError('write', path, err);
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }

  async exists(key: string): Promise<boolean> {
    const path = this.pathOf(key);
    try {
      return (await stat(path)).isFile();
    } catch (err) {
      if (isMissing(err)) return false;
      throw this.wrapError('stat', path, err);
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    try {
      await unlink(path);
    } catch (err) {
      // Deleting a missing object succeeds, as on S3.
      if (isMissing(err)) return;
      throw this.wrapError('delete', path, err);
    }
  }

  private pathOf(key: string): string {
    assertValidKey(key);
    if (basename(key).startsWith(TEMP_PREFIX)) {
      throw new Error(`invalid object key ${JSON.stringify(key)}: names starting with "${TEMP_PREFIX}" are reserved`);
    }
    return join(this.root, ...key.split('/'));
  }

  /**
   * Writes via a temp file in the target's directory, then renames it over the
   * target: rename within one directory is atomic, so a reader sees the old file
   * or the whole new one. No fsync: this store is for tests and single-machine
   * runs, where surviving power loss is not a goal.
   */
  private async writeAtomically(path: string, write: (tmp: string) => Promise<void>): Promise<void> {
    const dir = dirname(path);
    const tmp = join(dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      await mkdir(dir, { recursive: true });
      await write(tmp);
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw this.wrapError('write', path, err);
    }
  }

  /**
   * Depth-first walk from directory `dirKey` ('' or ending in '/'), yielding
   * files whose key starts with `prefix`. Entries are visited in UTF-8 byte order
   * of `name` (+ '/' for directories), which makes the overall order the byte
   * order of full keys, the order S3 lists in: e.g. file `a-b` ('-' < '/') comes
   * before everything in directory `a`.
   */
  private async *walk(dirKey: string, prefix: string, deep = true): AsyncGenerator<StoredObject | StoredPrefix> {
    const dirPath = dirKey === '' ? this.root : join(this.root, ...dirKey.slice(0, -1).split('/'));
    let dirents: Dirent[];
    try {
      dirents = await readdir(dirPath, { withFileTypes: true });
    } catch (err) {
      // A prefix with no directory behind it lists nothing, like an empty S3 prefix.
      if (isMissing(err)) return;
      throw this.wrapError('list', dirPath, err);
    }
    const entries: { sortKey: Buffer; name: string; isDir: boolean }[] = [];
    for (const d of dirents) {
      let isDir = d.isDirectory();
      let isFile = d.isFile();
      if (d.isSymbolicLink()) {
        const st = await stat(join(dirPath, d.name)).catch(() => null);
        isDir = st?.isDirectory() ?? false;
        isFile = st?.isFile() ?? false;
      }
      if (isFile && d.name.startsWith(TEMP_PREFIX)) continue;
      if (!isDir && !isFile) continue;
      const key = dirKey + d.name + (isDir ? '/' : '');
      // Keep entries inside the prefix, and directories the prefix reaches into.
      if (!key.startsWith(prefix) && !(isDir && prefix.startsWith(key))) continue;
      entries.push({ sortKey: Buffer.from(key), name: d.name, isDir });
    }
    entries.sort((a, b) => Buffer.compare(a.sortKey, b.sortKey));
    for (const e of entries) {
      if (e.isDir) {
        // Not deep (listLevel): the sub-directory is named, not entered.
        if (deep) yield* this.walk(`${dirKey}${e.name}/`, prefix);
        else yield { prefix: `${dirKey}${e.name}/` };
        continue;
      }
      const st = await stat(join(dirPath, e.name)).catch((err: unknown) => {
        if (isMissing(err)) return null; // deleted since readdir
        throw this.wrapError('list', join(dirPath, e.name), err);
      });
      if (st === null || !st.isFile()) continue;
      yield { key: dirKey + e.name, size: st.size, lastModified: st.mtime };
    }
  }

  private wrapError(op: string, path: string, err: unknown): Error {
    if (err instanceof ObjectNotFoundError) return err;
    if (op === 'read' && isMissing(err)) return new ObjectNotFoundError(path, { cause: err });
    if (op === 'read' && (err as NodeJS.ErrnoException).code === 'EISDIR') return new ObjectNotFoundError(path);
    const msg = err instanceof Error ? err.message : String(err);
    return new Error(`local store ${op} ${path} failed: ${msg}`, { cause: err });
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** A list prefix may end mid-name, but must not climb out of the root. */
function assertValidPrefix(prefix: string): void {
  if (prefix.startsWith('/') || prefix.includes('\0') || prefix.split('/').includes('..')) {
    throw new Error(`invalid list prefix ${JSON.stringify(prefix)}: must be relative, without ".." or NUL`);
  }
}
