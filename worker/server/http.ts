/**
 * HTTP plumbing shared by the small node:http servers (`spade parse-server`,
 * `spade worker serve`): request handling that never crashes the process,
 * JSON answers and errors, constant-time token checks, bounded body reading,
 * listening and closing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';

/** A client that keeps sending after its 413 is cut off once this much more has been discarded. */
const DISCARD_LIMIT_FACTOR = 4;

/** Answered as `{error, ...body}` with the status and headers; anything else thrown is a 500. */
export class HttpError extends Error {
  readonly headers: Record<string, string>;
  readonly body: Record<string, unknown>;

  constructor(
    readonly status: number,
    message: string,
    extra: { headers?: Record<string, string>; body?: Record<string, unknown> } = {},
  ) {
    super(message);
    this.headers = extra.headers ?? {};
    this.body = extra.body ?? {};
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** True for addresses only this machine can reach (127/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h.toLowerCase() === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h.toLowerCase().startsWith('::ffff:127.');
  return false;
}

/** True for the wildcard addresses (0.0.0.0, ::): listening on every interface. */
function isWildcardHost(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return h === '0.0.0.0' || h === '::' || h === '';
}

/**
 * Throws a 421 unless the request's `Host` header names this server: a loopback
 * name (`127.0.0.1`, `localhost`, `[::1]`), the configured `--host`, or an IP
 * address literal (a client reaching a wildcard bind by address), with the port
 * the request arrived on. This stops DNS rebinding: a web page of
 * `evil.example` re-pointed at 127.0.0.1 can make a browser send requests here,
 * but their Host header still says `evil.example`, and a name needs DNS to rebind.
 */
export function checkHostHeader(req: IncomingMessage, configuredHost: string): void {
  const header = req.headers.host;
  const refuse = (why: string): never => {
    throw new HttpError(
      421,
      `${why}; this server answers only requests addressed to ${configuredHost}` +
        `${isLoopbackHost(configuredHost) ? '' : ', localhost'} or an IP address (protection against DNS rebinding)`,
    );
  };
  if (typeof header !== 'string' || header === '') return refuse('no Host header');
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(header);
  if (!m) return refuse(`unrecognised Host header ${JSON.stringify(header.slice(0, 100))}`);
  const name = (m[1] as string).toLowerCase();
  const bare = name.startsWith('[') ? name.slice(1, -1) : name;
  const port = m[2] === undefined ? 80 : Number(m[2]);
  const configured = configuredHost.toLowerCase().replace(/^\[|\]$/g, '');
  const nameOk = isLoopbackHost(name) || bare === configured || (isIP(bare) !== 0 && isWildcardHost(configuredHost));
  if (!nameOk) return refuse(`Host ${JSON.stringify(header.slice(0, 100))} is not this server`);
  if (port !== req.socket.localPort) refuse(`Host ${JSON.stringify(header.slice(0, 100))} names another port`);
}

/** Throws unless `port` can be bound (0 picks a free one); `name` prefixes the message. */
export function checkPort(name: string, port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${name}: port must be an integer in 0..65535, got ${port}`);
  }
}

/** What a token is compared as: a fixed-length digest, so its length does not leak through timing either. */
export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** The token of an `Authorization: Bearer <token>` header; null without one. */
export function bearerToken(req: IncomingMessage): string | null {
  const header = req.headers.authorization;
  return typeof header === 'string' && /^bearer\s/i.test(header) ? header.slice(7).trim() : null;
}

/** Constant-time check of a presented token (null: none presented) against `tokenDigest(token)`. */
export function tokenMatches(given: string | null, digest: Buffer): boolean {
  if (given === null) return false;
  return timingSafeEqual(tokenDigest(given), digest);
}

/** Throws a 405 (with `Allow`) unless `method` is one of `allowed`. */
export function requireMethod(method: string, allowed: string[]): void {
  if (!allowed.includes(method)) {
    throw new HttpError(405, `method ${method} not allowed here (allowed: ${allowed.join(', ')})`, {
      headers: { Allow: allowed.join(', ') },
    });
  }
}

/**
 * Reads the whole body up to `limit` bytes; beyond it a 413 saying `<what>
 * larger than <limit> bytes`. The rest of an oversize body is discarded (so the
 * client can read its 413) up to a point, then the connection is cut.
 */
export function readBody(req: IncomingMessage, limit: number, what = 'request body'): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  return new Promise((resolve, reject) => {
    const tooLarge = (): void => {
      req.removeListener('data', onData);
      req.removeListener('end', onEnd);
      let discarded = 0;
      req.on('data', (chunk: Buffer) => {
        discarded += chunk.length;
        if (discarded > limit * DISCARD_LIMIT_FACTOR) req.socket.destroy();
      });
      req.resume();
      reject(new HttpError(413, `${what} larger than ${limit} bytes`));
    };
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) tooLarge();
      else chunks.push(chunk);
    };
    const onEnd = (): void => resolve(Buffer.concat(chunks, size));
    if (Number.isFinite(declared) && declared > limit) {
      tooLarge();
      return;
    }
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', (err) => reject(new HttpError(400, `reading the request body failed: ${err.message}`)));
  });
}

/** Answers `body`; a response already started is only ended, one whose client went away is left alone. */
export function send(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  if (res.destroyed) return;
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(body);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value) + '\n', headers);
}

export function sendHttpError(res: ServerResponse, err: HttpError): void {
  sendJson(res, err.status, { error: err.message, ...err.body }, err.headers);
}

/**
 * A server running `handle` for each request. A failure `handle` did not answer
 * itself is logged (`<name>: <method> <url>: <message>`) and answered 500 (or the
 * connection cut when the answer had started); unparsable HTTP gets a 400.
 * Neither ever throws out of the server.
 */
export function createRequestServer(
  name: string,
  log: (line: string) => void,
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
): Server {
  const server = createServer((req, res) => {
    req.on('error', () => {}); // a reset client must not become an unhandled 'error'
    handle(req, res).catch((err: unknown) => {
      // The last net for a failure while answering (e.g. the client went away).
      log(`${name}: ${req.method} ${req.url}: ${errorMessage(err)}`);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  server.on('clientError', (_err, socket) => {
    // Unparsable HTTP: answer 400 when the socket still takes it, never throw.
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  return server;
}

/**
 * Listens on `host:port` (rejecting if that fails), then logs later server
 * errors as `<name>: <message>`. Resolves with the bound port and the base URL
 * `http://host:port/` (IPv6 hosts bracketed).
 */
export async function listen(
  server: Server,
  host: string,
  port: number,
  name: string,
  log: (line: string) => void,
): Promise<{ url: string; port: number }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log(`${name}: ${errorMessage(err)}`));
  const address = server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : port;
  const urlHost = isIP(host) === 6 ? `[${host}]` : host;
  return { url: `http://${urlHost}:${boundPort}/`, port: boundPort };
}

/** Stops listening; requests still running get `graceMs`, then their connections are cut. */
export function closeServer(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), graceMs).unref();
  });
}
