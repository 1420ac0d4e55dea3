/**
 * A small ObjectStore over a temp directory for tests that must not depend on
 * the real stores. Uploads go to a temp file under `.tmp/` and are renamed into
 * place when complete, like the real local store. Options make uploads read
 * slowly (to exercise backpressure), hang, or fail (to exercise error paths).
 */
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ObjectStore, StoredObject } from '../../worker/store/objectstore.js';

export interface DirStoreOptions {
  /** Wait this long before passing on each chunk read from an upload's body. */
  uploadChunkDelayMs?: number;
  /** Uploads of matching keys fail after reading some bytes. */
  failUpload?: (key: string) => boolean;
  /**
   * Uploads never read their body and never finish; each fails only when its
   * body is destroyed: a hung store, for testing cancellation.
   */
  blockUploads?: boolean;
}

const TMP_DIR = '.tmp';

export class DirStore implements ObjectStore {
  readonly url: string;
  /** Keys of every upload begun, in order (lets a test wait for uploads to be under way). */
  readonly uploadsStarted: string[] = [];
  private tmpSeq = 0;

  constructor(
    readonly root: string,
    private readonly opts: DirStoreOptions = {},
  ) {
    this.url = root;
  }

  /** A store over a fresh temp dir, removed when the test ends. */
  static temp(t: TestContext, opts: DirStoreOptions = {}): DirStore {
    const root = mkdtempSync(join(tmpdir(), 'spade-dirstore-'));
    t.after(() => rmSync(root, { recursive: true, force: true }));
    return new DirStore(root, opts);
  }

  pathOf(key: string): string {
    if (key.startsWith('/') || key.split('/').includes('..')) throw new Error(`bad key ${key}`);
    return join(this.root, ...key.split('/'));
  }

  urlOf(key: string): string {
    return this.pathOf(key);
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    const entries = await readdir(this.root, { recursive: true, withFileTypes: true });
    const found: StoredObject[] = [];
    for (const e of entries) {
      if (!e.isFile()) continue;
      const full = join(e.parentPath ?? e.path, e.name);
      const key = relative(this.root, full).split(sep).join('/');
      if (key.startsWith(`${TMP_DIR}/`) || !key.startsWith(prefix)) continue;
      const st = await stat(full);
      found.push({ key, size: st.size, lastModified: st.mtime });
    }
    found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    yield* found;
  }

  /** Every key in the store (temp files excluded), sorted. */
  async keys(prefix = ''): Promise<string[]> {
    const out: string[] = [];
    for await (const o of this.list(prefix)) out.push(o.key);
    return out;
  }

  async read(key: string): Promise<Readable> {
    const path = this.pathOf(key);
    await stat(path).catch(() => {
      throw new Error(`no object ${key} in ${this.url}`);
    });
    return createReadStream(path);
  }

  async readBytes(key: string): Promise<Buffer> {
    return readFile(this.pathOf(key)).catch(() => {
      throw new Error(`no object ${key} in ${this.url}`);
    });
  }

  async put(key: string, body: Buffer | string): Promise<void> {
    const tmp = await this.tmpPath();
    await writeFile(tmp, body);
    await this.moveIntoPlace(tmp, key);
  }

  async upload(key: string, body: Readable): Promise<{ bytes: number }> {
    this.uploadsStarted.push(key);
    if (this.opts.blockUploads) return hang(key, body);
    const path = this.pathOf(key);
    const tmp = await this.tmpPath();
    const delay = this.opts.uploadChunkDelayMs ?? 0;
    const fail = this.opts.failUpload?.(key) ?? false;
    let seen = 0;
    const gate = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        seen += chunk.length;
        if (fail && seen > 0) {
          cb(new Error(`injected upload failure for ${key}`));
          return;
        }
        if (delay > 0) sleep(delay).then(() => cb(null, chunk), cb);
        else cb(null, chunk);
      },
    });
    try {
      await pipeline(body, gate, createWriteStream(tmp));
      await this.moveIntoPlace(tmp, key);
      return { bytes: (await stat(path)).size };
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async exists(key: string): Promise<boolean> {
    return stat(this.pathOf(key)).then(
      () => true,
      () => false,
    );
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  private async tmpPath(): Promise<string> {
    const dir = join(this.root, TMP_DIR);
    await mkdir(dir, { recursive: true });
    return join(dir, `${process.pid}-${++this.tmpSeq}`);
  }

  private async moveIntoPlace(tmp: string, key: string): Promise<void> {
    const path = this.pathOf(key);
    await mkdir(dirname(path), { recursive: true });
    await rename(tmp, path);
  }
}

/** An upload that never reads `body`: it rejects when the body is destroyed, and never resolves. */
function hang(key: string, body: Readable): Promise<never> {
  return new Promise((_resolve, reject) => {
    const fail = (err?: Error) => reject(new Error(`upload of ${key} cancelled: ${err?.message ?? 'body closed'}`));
    if (body.destroyed) fail();
    body.once('error', fail);
    body.once('close', () => fail());
  });
}
