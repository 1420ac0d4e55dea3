/**
 * An HTTP proxy in front of the test Kinesis server that tampers with
 * PutRecords, so tests control partial failures exactly:
 * - `failEntry(request, index)` true: that entry is answered with
 *   ProvisionedThroughputExceededException and NOT forwarded (it never reached
 *   the stream);
 * - `lieEntry(request, index)` true: the entry IS forwarded and stored, but
 *   answered as failed (a retry then stores it twice, as can happen on AWS);
 * - `hold(request)` true: the request is never answered (a stalled stream, to
 *   kill a publisher mid-way).
 * `request` counts PutRecords requests from 0. Every other call passes through.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';

export interface ProxyRules {
  failEntry?: (request: number, index: number) => boolean;
  lieEntry?: (request: number, index: number) => boolean;
  hold?: (request: number) => boolean;
}

export interface KinesisProxy {
  endpoint: string;
  /** Entry counts of each PutRecords request received, in order. */
  readonly requests: number[];
  /** Entries answered as failed (by failEntry or lieEntry). */
  failed: number;
  /** Entries stored but answered as failed. */
  lied: number;
  /** Requests held unanswered. */
  held: number;
  rules: ProxyRules;
}

interface PutRecordsBody {
  StreamName: string;
  Records: unknown[];
}

const THROTTLED = {
  ErrorCode: 'ProvisionedThroughputExceededException',
  ErrorMessage: 'Rate exceeded for shard (test proxy)',
};

export async function startKinesisProxy(t: TestContext, target: string, rules: ProxyRules): Promise<KinesisProxy> {
  const targetUrl = new URL(target);
  const held: ServerResponse[] = [];
  const proxy: KinesisProxy = { endpoint: '', requests: [], failed: 0, lied: 0, held: 0, rules };

  const forward = (req: IncomingMessage, body: Buffer): Promise<{ status: number; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const headers = { ...req.headers, host: targetUrl.host, 'content-length': String(body.length) };
      const out = httpRequest(
        { host: targetUrl.hostname, port: targetUrl.port, method: req.method, path: req.url, headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 500, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      out.on('error', reject);
      out.end(body);
    });

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const target = String(req.headers['x-amz-target'] ?? '');
        if (!target.endsWith('.PutRecords')) {
          const r = await forward(req, body);
          res.writeHead(r.status, { 'content-type': 'application/x-amz-json-1.1' }).end(r.body);
          return;
        }
        const n = proxy.requests.length;
        const put = JSON.parse(body.toString('utf8')) as PutRecordsBody;
        proxy.requests.push(put.Records.length);
        if (proxy.rules.hold?.(n)) {
          proxy.held++;
          held.push(res);
          return;
        }
        const fail = put.Records.map((_, i) => proxy.rules.failEntry?.(n, i) ?? false);
        const lie = put.Records.map((_, i) => !fail[i] && (proxy.rules.lieEntry?.(n, i) ?? false));
        const sent = put.Records.filter((_, i) => !fail[i]);
        let results: Record<string, unknown>[] = [];
        if (sent.length) {
          const r = await forward(req, Buffer.from(JSON.stringify({ ...put, Records: sent })));
          if (r.status !== 200) {
            res.writeHead(r.status, { 'content-type': 'application/x-amz-json-1.1' }).end(r.body);
            return;
          }
          results = (JSON.parse(r.body.toString('utf8')) as { Records: Record<string, unknown>[] }).Records;
        }
        let k = 0;
        const merged = put.Records.map((_, i) => {
          if (fail[i]) return THROTTLED;
          const real = results[k++]!;
          return lie[i] ? THROTTLED : real;
        });
        const failedCount = merged.filter((m) => 'ErrorCode' in m).length;
        proxy.failed += failedCount;
        proxy.lied += lie.filter(Boolean).length;
        res
          .writeHead(200, { 'content-type': 'application/x-amz-json-1.1' })
          .end(JSON.stringify({ FailedRecordCount: failedCount, Records: merged }));
      })().catch((err: Error) => {
        res.writeHead(500).end(err.message);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(async () => {
    for (const r of held) r.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return proxy;
}
