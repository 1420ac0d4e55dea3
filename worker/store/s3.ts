/**
 * ObjectStore over an S3 bucket and key prefix (AWS or any S3-compatible
 * endpoint such as MinIO or s3rver). Keys given to the store are relative to the prefix.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ObjectNotFoundError,
  prefixedKey,
  type ObjectStore,
  type StoredObject,
  type StoredPrefix,
} from './objectstore.js';

/** Multipart part size: S3's minimum is 5 MiB; memory per upload is about (queueSize + 1) parts. */
export const UPLOAD_PART_SIZE = 8 * 1024 * 1024;
/** Parts in flight per upload. 1: OutputWriters uploads a few spooled files at once, which is where parallelism comes from. */
export const UPLOAD_QUEUE_SIZE = 1;

/** Env vars naming a custom S3 endpoint, first set wins. */
const ENDPOINT_ENV_VARS = ['SPADE_S3_ENDPOINT', 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL'] as const;

/**
 * An S3 client from the environment: default credential chain, region from
 * AWS_REGION / AWS_DEFAULT_REGION (else us-east-1), SDK retries (5 attempts).
 * With a custom endpoint (SPADE_S3_ENDPOINT, AWS_ENDPOINT_URL_S3 or
 * AWS_ENDPOINT_URL): path-style addressing, and checksums only where the API
 * requires them, since the SDK's default CRC32 trailers break non-AWS servers.
 */
export function createS3Client(env: NodeJS.ProcessEnv = process.env): S3Client {
  // Node 20 is this project's runtime; the SDK's yearly Node-support notice would
  // otherwise be printed into every replay's output and log.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const config: S3ClientConfig = {
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    maxAttempts: 5,
  };
  const endpoint = ENDPOINT_ENV_VARS.map((name) => env[name]).find((v) => v !== undefined && v !== '');
  if (endpoint !== undefined) {
    config.endpoint = endpoint;
    config.forcePathStyle = true;
    config.requestChecksumCalculation = 'WHEN_REQUIRED';
    config.responseChecksumValidation = 'WHEN_REQUIRED';
  } else {
    // A bucket in another region than the configured one still works on AWS.
    config.followRegionRedirects = true;
  }
  return new S3Client(config);
}

export interface S3StoreOptions {
  bucket: string;
  /** Key prefix ('' for the bucket root); leading/trailing slashes are ignored. */
  prefix: string;
  /** Defaults to `createS3Client()`. */
  client?: S3Client;
}

export class S3Store implements ObjectStore {
  readonly url: string;
  readonly bucket: string;
  /** Normalised: no leading or trailing slash; '' for the bucket root. */
  readonly prefix: string;
  private readonly client: S3Client;

  constructor(opts: S3StoreOptions) {
    if (opts.bucket === '' || opts.bucket.includes('/')) {
      throw new Error(`invalid S3 bucket name ${JSON.stringify(opts.bucket)}`);
    }
    this.bucket = opts.bucket;
    this.prefix = opts.prefix.replace(/^\/+|\/+$/g, '');
    this.client = opts.client ?? createS3Client();
    this.url = `s3://${this.bucket}${this.prefix === '' ? '' : `/${this.prefix}`}`;
  }

  urlOf(key: string): string {
    return `s3://${this.bucket}/${this.fullKey(key)}`;
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    for await (const { page, strip } of this.pages(prefix)) {
      for (const obj of page.Contents ?? []) {
        if (obj.Key === undefined) continue;
        yield { key: obj.Key.slice(strip), size: obj.Size ?? 0, lastModified: obj.LastModified ?? new Date(0) };
      }
    }
  }

  async *listLevel(prefix: string): AsyncIterable<StoredObject | StoredPrefix> {
    for await (const { page, strip } of this.pages(prefix, '/')) {
      // A page holds objects and sub-prefixes in two sorted lists: merged back into key order.
      const entries: (StoredObject | StoredPrefix)[] = [];
      for (const obj of page.Contents ?? []) {
        if (obj.Key === undefined) continue;
        entries.push({ key: obj.Key.slice(strip), size: obj.Size ?? 0, lastModified: obj.LastModified ?? new Date(0) });
      }
      for (const p of page.CommonPrefixes ?? [])
        if (p.Prefix !== undefined) entries.push({ prefix: p.Prefix.slice(strip) });
      const nameOf = (e: StoredObject | StoredPrefix): string => ('key' in e ? e.key : e.prefix);
      entries.sort((a, b) => (nameOf(a) < nameOf(b) ? -1 : nameOf(a) > nameOf(b) ? 1 : 0));
      yield* entries;
    }
  }

  /** The ListObjectsV2 pages under `prefix` (relative to the store's), and how much of each key is the store's prefix. */
  private async *pages(
    prefix: string,
    delimiter?: string,
  ): AsyncIterable<{ page: ListObjectsV2CommandOutput; strip: number }> {
    if (prefix.startsWith('/')) throw new Error(`invalid list prefix ${JSON.stringify(prefix)}: must be relative`);
    const fullPrefix = this.prefix === '' ? prefix : `${this.prefix}/${prefix}`;
    const strip = this.prefix === '' ? 0 : this.prefix.length + 1;
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: fullPrefix,
            Delimiter: delimiter,
            ContinuationToken: token,
          }),
        );
      } catch (err) {
        throw s3Error('ListObjectsV2', `s3://${this.bucket}/${fullPrefix}`, err);
      }
      yield { page, strip };
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async read(key: string): Promise<Readable> {
    const url = this.urlOf(key);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
      if (!(res.Body instanceof Readable)) throw new Error('response body is not a Node.js stream');
      return res.Body;
    } catch (err) {
      throw s3Error('GetObject', url, err);
    }
  }

  async readBytes(key: string): Promise<Buffer> {
    const url = this.urlOf(key);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
      if (res.Body === undefined) return Buffer.alloc(0);
      const bytes = await res.Body.transformToByteArray();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      throw s3Error('GetObject', url, err);
    }
  }

  async put(key: string, body: Buffer | string): Promise<void> {
    const url = this.urlOf(key);
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key), Body: body }));
    } catch (err) {
      throw s3Error('PutObject', url, err);
    }
  }

  /**
   * PutObject with `If-None-Match: *`: S3 answers 412 when the key exists (409 when
   * another conditional write of it is in flight). s3rver ignores the header and
   * overwrites.
   */
  async putIfAbsent(key: string, body: Buffer | string): Promise<boolean> {
    const url = this.urlOf(key);
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key), Body: body, IfNoneMatch: '*' }),
      );
      return true;
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | null;
      const status = e?.$metadata?.httpStatusCode;
      if (status === 412 || status === 409 || e?.name === 'PreconditionFailed') return false;
      throw s3Error('PutObject', url, err);
    }
  }

  /**
   * Streams `body` with a multipart upload (a single PutObject when it is
   * smaller than one part). S3 makes the object visible only on completion, so
   * readers never see part of it; a failed upload is aborted.
   */
  async upload(key: string, body: Readable): Promise<{ bytes: number }> {
    const url = this.urlOf(key);
    let bytes = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        callback(null, chunk);
      },
    });
    // A source error destroys `counter`, which fails the upload's read of it.
    const piping = pipeline(body, counter);
    piping.catch(() => undefined);
    try {
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: this.fullKey(key), Body: counter },
        partSize: UPLOAD_PART_SIZE,
        queueSize: UPLOAD_QUEUE_SIZE,
        leavePartsOnError: false,
      });
      await upload.done();
      await piping;
    } catch (err) {
      body.destroy();
      counter.destroy();
      throw s3Error('Upload', url, err);
    }
    return { bytes };
  }

  async exists(key: string): Promise<boolean> {
    const url = this.urlOf(key);
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw s3Error('HeadObject', url, err);
    }
  }

  async delete(key: string): Promise<void> {
    const url = this.urlOf(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
    } catch (err) {
      throw s3Error('DeleteObject', url, err);
    }
  }

  private fullKey(key: string): string {
    return prefixedKey(this.prefix, key);
  }
}

/** True for a missing key (GetObject's NoSuchKey, HeadObject's bare 404), not for a missing bucket. */
function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | null;
  if (e?.name === 'NoSuchKey' || e?.name === 'NotFound') return true;
  return e?.$metadata?.httpStatusCode === 404 && e.name !== 'NoSuchBucket';
}

/**
 * An error naming the operation and URL. Only the SDK's message is kept, which
 * never contains credentials (the request's signature is not part of it).
 */
function s3Error(operation: string, url: string, err: unknown): Error {
  if (isNotFound(err) && operation === 'GetObject') return new ObjectNotFoundError(url, { cause: err });
  const e = err as { name?: string; message?: string } | null;
  const detail = [e?.name, e?.message].filter((s) => s !== undefined && s !== '' && s !== 'Error').join(': ');
  return new Error(`S3 ${operation} ${url} failed: ${detail || String(err)}`, { cause: err });
}
