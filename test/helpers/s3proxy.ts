/**
 * An HTTP proxy in front of the test S3 server, for one worker node's view of
 * the buckets: everything is passed through, except reads of keys made
 * unreadable (403 AccessDenied, as a missing permission gives) and, once asked
 * to, success-manifest writes, which are held unanswered: that node's partition
 * has written its files and is stuck right before committing them. Listings of
 * chosen prefixes can be made to fail (503 SlowDown, as S3 throttling answers).
 * has written its files and is stuck right before committing them. With
 * `writeDelayMs`, the body of every PUT/POST reaches S3 slowly: a slow output
 * store, for tests of backpressure.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Transform } from 'node:stream';
import type { TestContext } from 'node:test';

export interface HeldWrite {
  /** path-style: /bucket/key */
  path: string;
  body: string;
}

export interface S3Proxy {
  /** http://127.0.0.1:PORT, for SPADE_S3_ENDPOINT */
  endpoint: string;
  /** GETs of these path-style paths (/bucket/key) answer 403. */
  unreadable: Set<string>;
  /** While true, PUTs of `_success/` keys are held. */
  holdSuccess: boolean;
  /**
   * ListObjectsV2 of these prefixes answers 503 SlowDown this many more times (Infinity: always);
   * `<prefix>#continued` fails only its pages after the first.
   */
  failLists: Map<string, number>;
  /** Every ListObjectsV2 prefix answered with SlowDown, in order. */
  failedLists: string[];
  /** Each piece of a PUT/POST body is passed on this many ms after it arrived. */
  writeDelayMs: number;
  /** Resolves with the first held write. */
  firstHeld(): Promise<HeldWrite>;
}

export async function startS3Proxy(t: TestContext, target: string): Promise<S3Proxy> {
  const to = new URL(target);
  let onHeld: ((w: HeldWrite) => void) | null = null;
  const held: HeldWrite[] = [];
  const open = new Set<ServerResponse>();
  const proxy: S3Proxy = {
    endpoint: '',
    unreadable: new Set(),
    holdSuccess: false,
    failLists: new Map(),
    failedLists: [],
    writeDelayMs: 0,
    firstHeld: () => (held[0] ? Promise.resolve(held[0]) : new Promise((resolve) => (onHeld = resolve))),
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    if (req.method === 'GET' && proxy.unreadable.has(path)) {
      req.resume();
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`,
      );
      return;
    }
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    // `<prefix>#continued`: only the listing's later pages fail (a failure part way through a listing).
    const prefixParam = query.get('prefix');
    const listPrefix =
      prefixParam !== null && query.has('continuation-token') ? `${prefixParam}#continued` : prefixParam;
    const failures = listPrefix === null ? 0 : (proxy.failLists.get(listPrefix) ?? 0);
    if (req.method === 'GET' && listPrefix !== null && failures > 0) {
      proxy.failLists.set(listPrefix, failures - 1);
      proxy.failedLists.push(listPrefix);
      req.resume();
      res.writeHead(503, { 'content-type': 'application/xml' });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`,
      );
      return;
    }
    if (proxy.holdSuccess && req.method === 'PUT' && path.includes('/_success/')) {
      let body = '';
      req.setEncoding('utf8').on('data', (s: string) => (body += s));
      req.on('end', () => {
        const w = { path, body };
        held.push(w);
        open.add(res);
        onHeld?.(w);
      });
      return;
    }
    const upstream = request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    const delay = proxy.writeDelayMs;
    if (delay > 0 && (req.method === 'PUT' || req.method === 'POST')) {
      const slow = new Transform({ transform: (chunk, _enc, cb) => void setTimeout(() => cb(null, chunk), delay) });
      req.pipe(slow).pipe(upstream);
    } else req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const res of open) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return proxy;
}
