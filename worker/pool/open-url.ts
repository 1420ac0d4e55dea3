/**
 * Opens an input named by URL (a local path, file:// or s3://) as a byte
 * stream, with one store client per bucket for the life of the process. Used
 * by the transform threads (one file per task) and by the main thread's chunk
 * reader (one input spread over every thread, see spread.ts).
 */
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { openStore, parseS3Url } from '../store/location.js';
import type { ObjectStore } from '../store/objectstore.js';

const stores = new Map<string, ObjectStore>();

export function storeFor(location: string): ObjectStore {
  let store = stores.get(location);
  if (store === undefined) {
    store = openStore(location);
    stores.set(location, store);
  }
  return store;
}

/** Opens a local path or an s3:// object URL as a byte stream (local files read `readBytes` at a time). */
export async function openUrl(url: string, readBytes: number = 1 << 20): Promise<Readable> {
  if (url.startsWith('s3://')) {
    const { bucket, prefix } = parseS3Url(url);
    return storeFor(`s3://${bucket}`).read(prefix);
  }
  // Opened before streaming so a missing file fails the task instead of reading as empty.
  const handle = await open(url.startsWith('file://') ? new URL(url) : url);
  return handle.createReadStream({ highWaterMark: readBytes });
}
