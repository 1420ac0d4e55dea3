import type { Readable } from 'node:stream';

/** One object (or file) found by a listing. Keys are relative to the store's root. */
export interface StoredObject {
  key: string;
  size: number;
  lastModified: Date;
}

/** A sub-prefix found by a one-level listing (`ObjectStore.listLevel`), ending in '/'. */
export interface StoredPrefix {
  prefix: string;
}

export function isStoredPrefix(entry: StoredObject | StoredPrefix): entry is StoredPrefix {
  return 'prefix' in entry;
}

/**
 * What the engine needs from a place that holds files: an S3 bucket/prefix or a
 * local directory. Keys use '/' separators and never start with '/'.
 */
export interface ObjectStore {
  /** Human/URL form of the root, e.g. `s3://bucket/prefix` or `/abs/dir` (never with credentials). */
  readonly url: string;
  /** Every object whose key starts with `prefix`, in key order, pages fetched lazily. */
  list(prefix: string): AsyncIterable<StoredObject>;
  /**
   * One level below `prefix` (which ends in '/'), in key order: the objects directly
   * under it and its sub-prefixes (S3's `Delimiter: '/'`), so that the sub-prefixes
   * can be listed in parallel. Optional: test stores may leave it out.
   */
  listLevel?(prefix: string): AsyncIterable<StoredObject | StoredPrefix>;
  /** Stream an object's bytes. Rejects with an error naming the key if it is missing. */
  read(key: string): Promise<Readable>;
  readBytes(key: string): Promise<Buffer>;
  /** Small write, atomic: readers see the old object or the whole new one. */
  put(key: string, body: Buffer | string): Promise<void>;
  /** Streamed write (multipart upload on S3, temp file + rename locally); atomic like put. */
  upload(key: string, body: Readable): Promise<{ bytes: number }>;
  /**
   * Small write only if no object `key` exists: true if written, false if one was
   * there. Atomic on a local directory and on S3 (`If-None-Match: *`); servers that
   * ignore that header (s3rver) overwrite instead, so callers that need mutual
   * exclusion read back what they wrote (see driver/lock/runtag-lock.ts).
   * Optional: test stores may leave it out.
   */
  putIfAbsent?(key: string, body: Buffer | string): Promise<boolean>;
  exists(key: string): Promise<boolean>;
  delete(key: string): Promise<void>;
  /** Full URL of a key, e.g. `s3://bucket/prefix/key` (for manifests) or an absolute path. */
  urlOf(key: string): string;
}

/**
 * Rejection of `read`/`readBytes` when a key names no object. Callers that treat
 * "missing" as a normal answer (manifests, markers) test `instanceof` instead of
 * parsing messages. `url` is the key's full URL or path.
 */
export class ObjectNotFoundError extends Error {
  override readonly name = 'ObjectNotFoundError';
  constructor(
    readonly url: string,
    options?: { cause?: unknown },
  ) {
    super(`object not found: ${url}`, options);
  }
}

/**
 * Throws unless `key` is a key every store accepts the same way: '/'-separated,
 * not absolute, no empty, '.' or '..' segments, no NUL. Both stores check it so a
 * key that works against a local directory in tests also works on S3 (and the
 * local store can never be led outside its root).
 */
export function assertValidKey(key: string): void {
  let reason: string | null = null;
  if (key === '') reason = 'empty';
  else if (key.startsWith('/')) reason = 'absolute (starts with "/")';
  else if (key.includes('\0')) reason = 'contains NUL';
  else if (key.split('/').some((s) => s === '' || s === '.' || s === '..'))
    reason = 'has an empty, "." or ".." segment';
  if (reason !== null) throw new Error(`invalid object key ${JSON.stringify(key)}: ${reason}`);
}

/** Orders anything keyed by key (UTF-16 code-unit order: S3's listing order for ASCII keys). */
export function byKey(a: { readonly key: string }, b: { readonly key: string }): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** The full key of `key` under a store's `prefix` (no slashes at its ends; '' for the root), after checking `key`. */
export function prefixedKey(prefix: string, key: string): string {
  assertValidKey(key);
  return prefix === '' ? key : `${prefix}/${key}`;
}
