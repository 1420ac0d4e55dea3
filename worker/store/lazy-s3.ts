/**
 * An S3 store that loads its implementation, and with it the AWS SDK, on first
 * use. Loading the SDK costs each thread ~0.2 s and ~26 MB of resident memory
 * (measured), and most transform threads only ever touch local files.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { prefixedKey, type ObjectStore, type StoredObject, type StoredPrefix } from './objectstore.js';
import type { S3Store } from './s3.js';

let sharedClient: Promise<S3Client> | undefined;

/** One client per thread unless told otherwise: clients hold connection pools. */
export function sharedS3Client(): Promise<S3Client> {
  sharedClient ??= import('./s3.js').then((s3) => s3.createS3Client());
  return sharedClient;
}

export class LazyS3Store implements ObjectStore {
  readonly url: string;
  private store: Promise<S3Store> | undefined;

  /** `prefix` as parseS3Url gives it: no leading or trailing slash. */
  constructor(
    private readonly bucket: string,
    private readonly prefix: string,
    private readonly client?: S3Client,
  ) {
    this.url = `s3://${bucket}${prefix === '' ? '' : `/${prefix}`}`;
  }

  private loaded(): Promise<S3Store> {
    this.store ??= (async () => {
      const { S3Store } = await import('./s3.js');
      return new S3Store({ bucket: this.bucket, prefix: this.prefix, client: this.client ?? (await sharedS3Client()) });
    })();
    return this.store;
  }

  urlOf(key: string): string {
    return `s3://${this.bucket}/${prefixedKey(this.prefix, key)}`;
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    yield* (await this.loaded()).list(prefix);
  }

  async *listLevel(prefix: string): AsyncIterable<StoredObject | StoredPrefix> {
    yield* (await this.loaded()).listLevel(prefix);
  }

  async read(key: string): Promise<Readable> {
    return (await this.loaded()).read(key);
  }

  async readBytes(key: string): Promise<Buffer> {
    return (await this.loaded()).readBytes(key);
  }

  async put(key: string, body: Buffer | string): Promise<void> {
    return (await this.loaded()).put(key, body);
  }

  async upload(key: string, body: Readable): Promise<{ bytes: number }> {
    return (await this.loaded()).upload(key, body);
  }

  async putIfAbsent(key: string, body: Buffer | string): Promise<boolean> {
    return (await this.loaded()).putIfAbsent(key, body);
  }

  async exists(key: string): Promise<boolean> {
    return (await this.loaded()).exists(key);
  }

  async delete(key: string): Promise<void> {
    return (await this.loaded()).delete(key);
  }
}
