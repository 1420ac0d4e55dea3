/**
 * Turns a location as users write it (`s3://bucket`, `s3://bucket/prefix/`,
 * `file:///dir`, `./dir`) into an ObjectStore, and reads single objects by URL.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LazyS3Store } from './lazy-s3.js';
import { LocalStore } from './local.js';
import { ObjectNotFoundError, type ObjectStore } from './objectstore.js';

export interface S3Location {
  bucket: string;
  /** Without leading or trailing slash; '' for the bucket root. */
  prefix: string;
}

export interface LocationOptions {
  /** S3 client to use; defaults to one shared `createS3Client()` (lazy-s3.ts). */
  client?: S3Client;
}

const S3_SCHEME = /^s3:\/\//i;
/** `scheme://` other than s3/file: rejected rather than taken as a relative path. */
const OTHER_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;
const BUCKET_NAME = /^[A-Za-z0-9._-]+$/;

export function isS3Url(location: string): boolean {
  return S3_SCHEME.test(location);
}

/** `s3://bucket[/prefix[/]]` → `{ bucket, prefix }`. */
export function parseS3Url(url: string): S3Location {
  if (!isS3Url(url)) throw new Error(`not an S3 URL (expected s3://bucket/prefix): ${url}`);
  const rest = url.replace(S3_SCHEME, '');
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  if (!BUCKET_NAME.test(bucket)) throw new Error(`invalid bucket name in S3 URL: ${url}`);
  const prefix = slash === -1 ? '' : rest.slice(slash + 1).replace(/^\/+|\/+$/g, '');
  return { bucket, prefix };
}

/** Local directory path for a `file://` URL or plain path (relative to the cwd). */
export function localPath(location: string): string {
  if (location.startsWith('file://')) return fileURLToPath(location);
  if (OTHER_SCHEME.test(location)) {
    throw new Error(`unsupported location ${location}: expected s3://bucket/prefix, a file:// URL or a local path`);
  }
  return resolve(location);
}

/** The store rooted at `location`: an S3 bucket/prefix, a `file://` URL or a local directory. */
export function openStore(location: string, opts: LocationOptions = {}): ObjectStore {
  if (location === '') throw new Error('empty store location: expected s3://bucket/prefix or a directory');
  if (isS3Url(location)) {
    const { bucket, prefix } = parseS3Url(location);
    return new LazyS3Store(bucket, prefix, opts.client);
  }
  return new LocalStore(localPath(location));
}

/**
 * The bytes of one object named by a full `s3://bucket/key` URL, a `file://`
 * URL or a local path. A missing object rejects with ObjectNotFoundError.
 */
export async function readUrl(url: string, opts: LocationOptions = {}): Promise<Buffer> {
  if (isS3Url(url)) {
    const { bucket } = parseS3Url(url);
    const rest = url.replace(S3_SCHEME, '');
    const key = rest.slice(bucket.length + 1);
    if (key === '' || key.endsWith('/')) throw new Error(`S3 URL names no object (expected s3://bucket/key): ${url}`);
    return new LazyS3Store(bucket, '', opts.client).readBytes(key);
  }
  if (url === '') throw new Error('empty URL: expected s3://bucket/key or a file path');
  const path = localPath(url);
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new ObjectNotFoundError(path, { cause: err });
    throw new Error(`reading ${path} failed: ${(err as Error).message}`, { cause: err });
  }
}
