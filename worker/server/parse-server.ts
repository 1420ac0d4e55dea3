/**
 * `spade parse-server` (SPEC section 5): an HTTP server answering, for posted
 * edge lines or for a tracking request as an edge would receive it, how each
 * event parses against a table config. A debugging tool: small, node:http only,
 * every request is parsed through exactly the code path of `spade parse`.
 *
 * Routes:
 *   GET  /          the HTML page (parse-page.ts)
 *   GET  /healthz   `ok`
 *   POST /parse     body = edge lines, one per line -> JSON array of parse objects
 *   GET  /track?data=<payload>, POST /track (form `data=` or a raw payload body)
 *                   -> builds the edge line the edge would write, parses it, logs
 *                      and answers the JSON array
 *
 * With a token, everything but `GET /` and `GET /healthz` needs
 * `Authorization: Bearer <token>` or `?token=<token>`.
 * Every request must name this server in its Host header (checkHostHeader):
 * without that, a web page could reach the loopback server by DNS rebinding.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createLineParser, parsedToJson, type ParseCommandOptions } from '../cli/parse.js';
import type { ParsedEvent } from '../transform/processor.js';
import {
  bearerToken,
  checkHostHeader,
  checkPort,
  closeServer,
  createRequestServer,
  errorMessage,
  HttpError,
  isLoopbackHost,
  listen,
  readBody,
  requireMethod,
  send,
  sendHttpError,
  sendJson,
  tokenDigest,
  tokenMatches,
} from './http.js';
import { PARSE_PAGE_HTML } from './parse-page.js';

export interface ParseServerOptions extends ParseCommandOptions {
  /** Address to bind; default 127.0.0.1. Anything but loopback requires `token`. */
  host?: string;
  /** Default 8888; 0 picks a free port. */
  port?: number;
  /** When set, required on every request except `GET /` and `GET /healthz`. */
  token?: string;
  /** Where a tracking request's parse objects (one JSON per line) and errors go. */
  log?: (line: string) => void;
  /** Largest accepted request body; default 10 MiB. */
  maxBodyBytes?: number;
}

export interface ParseServer {
  /** `http://host:port/` (IPv6 hosts bracketed). */
  url: string;
  port: number;
  close(): Promise<void>;
}

export const DEFAULT_PARSE_PORT = 8888;
const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;
/** How long close() lets in-flight requests finish before cutting their connections. */
const CLOSE_GRACE_MS = 2000;

export async function startParseServer(opts: ParseServerOptions): Promise<ParseServer> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? DEFAULT_PARSE_PORT;
  const token = opts.token === '' ? undefined : opts.token;
  if (!isLoopbackHost(host) && token === undefined) {
    throw new Error(
      `parse server: refusing to listen on ${host} without a token (anyone who can reach it could use it); ` +
        'pass --token or set SPADE_PARSE_TOKEN, or bind to 127.0.0.1',
    );
  }
  checkPort('parse server', port);
  const log = opts.log ?? ((line: string) => void process.stdout.write(line + '\n'));
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const parse = await createLineParser({ config: opts.config, geoipCity: opts.geoipCity, geoipAsn: opts.geoipAsn });
  const digest = token === undefined ? undefined : tokenDigest(token);

  const server = createRequestServer('parse server', log, handle);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const query = q < 0 ? '' : rawUrl.slice(q + 1);
    const method = req.method ?? 'GET';
    try {
      checkHostHeader(req, host);
      const isGet = method === 'GET' || method === 'HEAD';
      if (path === '/healthz' && isGet) {
        send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
        return;
      }
      if (path === '/' && isGet) {
        send(res, 200, 'text/html; charset=utf-8', PARSE_PAGE_HTML);
        return;
      }
      if (digest !== undefined && !tokenMatches(bearerToken(req) ?? new URLSearchParams(query).get('token'), digest)) {
        throw new HttpError(401, 'missing or wrong token (Authorization: Bearer <token> or ?token=)', {
          headers: { 'WWW-Authenticate': 'Bearer' },
        });
      }
      switch (path) {
        case '/parse':
          requireMethod(method, ['POST']);
          await handleParse(req, res);
          return;
        case '/track':
          requireMethod(method, ['GET', 'POST']);
          await handleTrack(req, res, method, query);
          return;
        case '/':
        case '/healthz':
          requireMethod(method, ['GET', 'HEAD']);
          return;
        default:
          throw new HttpError(404, `no such path ${JSON.stringify(path)} (try /, /parse, /track, /healthz)`);
      }
    } catch (err) {
      if (err instanceof HttpError) {
        sendHttpError(res, err);
      } else {
        log(`parse server: ${method} ${path}: ${errorMessage(err)}`);
        sendJson(res, 500, { error: `internal error: ${errorMessage(err)}` });
      }
    }
  }

  async function handleParse(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = (await readBody(req, maxBodyBytes)).toString('utf8');
    const lines: string[] = [];
    for (const raw of body.split('\n')) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      // Blank lines (a trailing newline, spacing in a paste) are not edge lines.
      if (line.trim() !== '') lines.push(line);
    }
    if (lines.length === 0) throw new HttpError(400, 'the body holds no edge lines (send one edge line per line)');
    sendParsed(res, await parse(lines));
  }

  async function handleTrack(req: IncomingMessage, res: ServerResponse, method: string, query: string): Promise<void> {
    let data: string | undefined;
    if (method === 'GET') {
      data = rawParam(query, 'data');
    } else {
      const body = (await readBody(req, maxBodyBytes)).toString('utf8');
      const type = (req.headers['content-type'] ?? '').toLowerCase();
      // A form body as the tracking client posts it; a bare payload otherwise.
      data =
        type.startsWith('application/x-www-form-urlencoded') || body.startsWith('data=')
          ? rawParam(body.trim(), 'data')
          : body.trim();
    }
    if (data === undefined || data === '') {
      throw new HttpError(
        400,
        'no payload: send ?data=<payload>, a data=<payload> form body, or the payload as the body',
      );
    }
    const line = edgeLineFor(req, data);
    const parsed = await parse([line]);
    for (const p of parsed) log(parsedToJson(p));
    sendParsed(res, parsed);
  }

  const bound = await listen(server, host, port, 'parse server', log);
  return { ...bound, close: () => closeServer(server, CLOSE_GRACE_MS) };
}

/**
 * The JSON edge event an edge server would write for this tracking request.
 * `data` is passed through still URL-escaped, as the edge stores it: the
 * transform unescapes it, so decoding here would decode twice (and break `+`).
 */
function edgeLineFor(req: IncomingMessage, data: string): string {
  const remote = req.socket.remoteAddress ?? '';
  const clientIp = remote.startsWith('::ffff:') ? remote.slice('::ffff:'.length) : remote;
  const edge: Record<string, string | number> = {
    receivedAt: new Date().toISOString(),
    clientIp,
    uuid: randomUUID(),
    data,
  };
  const xff = req.headers['x-forwarded-for'];
  if (typeof xff === 'string' && xff !== '') edge.xForwardedFor = xff;
  const ua = req.headers['user-agent'];
  if (ua !== undefined && ua !== '') edge.userAgent = ua;
  edge.recordversion = 3;
  edge.edgeType = 'external';
  return JSON.stringify(edge);
}

/** The raw (still escaped) value of `name` in a query or form string; undefined if absent. */
function rawParam(query: string, name: string): string | undefined {
  for (const part of query.split('&')) {
    if (part === name) return '';
    if (part.startsWith(name + '=')) return part.slice(name.length + 1);
  }
  return undefined;
}

function sendParsed(res: ServerResponse, parsed: ParsedEvent[]): void {
  // parsedToJson gives the SPEC's exact object shape and key order.
  const body = '[' + parsed.map(parsedToJson).join(',\n') + ']\n';
  send(res, 200, 'application/json; charset=utf-8', body);
}

/** The server's options as the command line gives them; `token` falls back to env SPADE_PARSE_TOKEN. */
export type ParseServerCommandOptions = Omit<ParseServerOptions, 'log' | 'maxBodyBytes'>;

/**
 * What `spade parse-server` runs: starts the server, says where it listens (on
 * stderr; stdout carries the parse objects of tracking requests, one JSON per
 * line like `spade parse`), and returns once SIGINT/SIGTERM stopped it.
 */
export async function parseServerCommand(opts: ParseServerCommandOptions): Promise<void> {
  const token = opts.token ?? process.env.SPADE_PARSE_TOKEN;
  const server = await startParseServer({ ...opts, token: token === '' ? undefined : token });
  const hint = token ? ' (token required: Authorization: Bearer <token>, or open the page with ?token=<token>)' : '';
  process.stderr.write(`parse server listening on ${server.url}${hint}\n`);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.stderr.write(`parse server: ${signal}, stopping\n`);
      server.close().then(resolve, (err: unknown) => {
        process.stderr.write(`parse server: closing failed: ${errorMessage(err)}\n`);
        resolve();
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
