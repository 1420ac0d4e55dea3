/**
 * An in-memory ObjectStore for tests: keys in a Map, listing in key order, and a
 * settable LastModified per object (so listing tests can tell the clocks apart).
 */
import { Readable } from 'node:stream';
import type { ObjectStore, StoredObject } from '../../worker/store/objectstore.js';

interface MemObject {
  body: Buffer;
  lastModified: Date;
}

export class MemStore implements ObjectStore {
  readonly url: string;
  private readonly objects = new Map<string, MemObject>();
  /** Every prefix passed to list(), in call order. */
  readonly listCalls: string[] = [];
  /** The clock stamped on writes without an explicit LastModified. */
  now: () => Date = () => new Date();

  constructor(url = 'mem://test') {
    this.url = url;
  }

  /** Add or replace an object with a chosen LastModified (test setup). */
  set(key: string, body: Buffer | string, lastModified: Date = this.now()): void {
    this.objects.set(key, { body: Buffer.from(body), lastModified });
  }

  /** All keys, sorted. */
  keys(): string[] {
    return [...this.objects.keys()].sort();
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    this.listCalls.push(prefix);
    const keys = this.keys().filter((k) => k.startsWith(prefix));
    for (const key of keys) {
      const obj = this.objects.get(key);
      // Deleted while listing: a real store may or may not show it; skip.
      if (obj) yield { key, size: obj.body.length, lastModified: obj.lastModified };
    }
  }

  async read(key: string): Promise<Readable> {
    return Readable.from([await this.readBytes(key)]);
  }

  async readBytes(key: string): Promise<Buffer> {
    const obj = this.objects.get(key);
    if (!obj) throw new Error(`${this.urlOf(key)}: no such object`);
    return Buffer.from(obj.body);
  }

  async put(key: string, body: Buffer | string): Promise<void> {
    this.set(key, body);
  }

  async upload(key: string, body: Readable): Promise<{ bytes: number }> {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
    const all = Buffer.concat(chunks);
    this.set(key, all);
    return { bytes: all.length };
  }

  async exists(key: string): Promise<boolean> {
    return this.objects.has(key);
  }

  async delete(key: string): Promise<void> {
    this.objects.delete(key);
  }

  urlOf(key: string): string {
    return `${this.url}/${key}`;
  }
}
