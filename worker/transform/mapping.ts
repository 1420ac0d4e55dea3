/**
 * Login → user id lookups for the `userIDWithMapping` transformer.
 *
 * The Go processor checked a local LRU, then a shared memcache, then asked an
 * HTTP JSON service (`GET <url>?login=<login>`, a jq-like path to the id). Here:
 * a local LRU (lru-cache), then the HTTP service; there is no shared cache tier.
 *
 * - `lookupSync` answers from the caches only, so the transform stays synchronous
 *   for every event whose login was seen before.
 * - `lookup` fetches on a miss: at most `maxConcurrent` requests at a time (FIFO
 *   queue), one request per login at a time (concurrent lookups of one login share
 *   it), each bounded by `timeoutMs` (headers and body).
 * - Failures are remembered, but not forever: "not found" (HTTP 404, or no integer
 *   at `jsonPath`) for `notFoundTtlMs`, transport errors / timeouts / other HTTP
 *   errors for `failureTtlMs`, so a login that appears later, or a service that
 *   comes back, is picked up again.
 * - Ids are exact: the response is parsed with lossless-json, and an id must be an
 *   integer within signed 64 bits (a JSON number or a string of digits).
 */
import { LRUCache } from 'lru-cache';
import { isLosslessNumber, parse as parseLosslessJson } from 'lossless-json';
import { int64Text } from './columns.js';

export interface UserIdMapperOptions {
  /** http(s) URL with `{login}` where the URL-encoded login goes, e.g. `http://host/users?login={login}`. */
  urlTemplate: string;
  /** Dot path to the id in the JSON response, array indexes as numbers: `data.0.id`. Empty: the whole body. */
  jsonPath: string;
  /** Per-request timeout (connect, headers and body). */
  timeoutMs: number;
  /** Requests in flight at most. */
  maxConcurrent: number;
  /** Logins kept in the local LRU. */
  cacheSize: number;
  /** How long a login the service does not know stays known-missing. Default 5 minutes. */
  notFoundTtlMs?: number;
  /** How long a login whose fetch failed (timeout, network, HTTP 5xx) is not retried. Default 10 seconds. */
  failureTtlMs?: number;
}

export interface UserIdMapperStats {
  cacheHits: number;
  fetches: number;
  fetched: number;
  notFound: number;
  failures: number;
}

const NEGATIVE_CACHE_SIZE = 10_000;

export class UserIdMapper {
  readonly stats: UserIdMapperStats = { cacheHits: 0, fetches: 0, fetched: 0, notFound: 0, failures: 0 };
  private readonly ids: LRUCache<string, string>;
  /** login → time (Date.now) until which it is known not to resolve. */
  private readonly missing = new LRUCache<string, number>({ max: NEGATIVE_CACHE_SIZE });
  private readonly inflight = new Map<string, Promise<string | null>>();
  private readonly waiting: (() => void)[] = [];
  private active = 0;
  private readonly path: string[];
  private readonly notFoundTtlMs: number;
  private readonly failureTtlMs: number;
  /** `{login}` stands in the template's path (not its query). */
  private readonly loginInPath: boolean;

  constructor(private readonly opts: UserIdMapperOptions) {
    if (!/^https?:\/\//i.test(opts.urlTemplate) || !opts.urlTemplate.includes('{login}')) {
      throw new Error(`user-id mapping URL must be http(s) and contain {login}: ${opts.urlTemplate}`);
    }
    for (const [name, value] of [
      ['timeoutMs', opts.timeoutMs],
      ['maxConcurrent', opts.maxConcurrent],
      ['cacheSize', opts.cacheSize],
    ] as const) {
      if (!Number.isInteger(value) || value < 1) throw new Error(`user-id mapping ${name} must be a positive integer`);
    }
    this.ids = new LRUCache<string, string>({ max: opts.cacheSize });
    const trimmedPath = opts.jsonPath.trim().replace(/^\.+/, '');
    this.path = trimmedPath === '' ? [] : trimmedPath.split('.');
    this.loginInPath = (opts.urlTemplate.split(/[?#]/)[0] ?? '').includes('{login}');
    this.notFoundTtlMs = opts.notFoundTtlMs ?? 5 * 60_000;
    this.failureTtlMs = opts.failureTtlMs ?? 10_000;
  }

  /**
   * From the caches only: the id, `null` when the login recently failed to
   * resolve (a column error), `undefined` when it must be fetched.
   */
  lookupSync(login: string): string | null | undefined {
    const id = this.ids.get(login);
    if (id !== undefined) {
      this.stats.cacheHits++;
      return id;
    }
    const until = this.missing.get(login);
    if (until !== undefined) {
      if (Date.now() < until) return null;
      this.missing.delete(login);
    }
    return undefined;
  }

  /** The id of a login, or null when it cannot be resolved. Never rejects. */
  lookup(login: string): Promise<string | null> {
    const known = this.lookupSync(login);
    if (known !== undefined) return Promise.resolve(known);
    let pending = this.inflight.get(login);
    if (pending === undefined) {
      pending = this.resolve(login);
      this.inflight.set(login, pending);
    }
    return pending;
  }

  private async resolve(login: string): Promise<string | null> {
    await this.acquire();
    try {
      return await this.fetchId(login);
    } finally {
      this.inflight.delete(login);
      this.release();
    }
  }

  private acquire(): Promise<void> | void {
    if (this.active < this.opts.maxConcurrent) {
      this.active++;
      return;
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    // The slot passes straight to the next waiter, so `active` stays the same.
    if (next) next();
    else this.active--;
  }

  private async fetchId(login: string): Promise<string | null> {
    // In a path, `.` and `..` stay dot segments after URL-encoding, and fetch would resolve
    // them: the lookup would leave the template's path. No user has such a login.
    if (this.loginInPath && (login === '.' || login === '..')) return this.fail(login, this.notFoundTtlMs, 'notFound');
    this.stats.fetches++;
    const url = this.opts.urlTemplate.split('{login}').join(encodeURIComponent(login));
    let status: number;
    let body: string;
    try {
      const res = await fetch(url, {
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      status = res.status;
      body = await res.text();
    } catch {
      return this.fail(login, this.failureTtlMs, 'failures');
    }
    if (status === 404) return this.fail(login, this.notFoundTtlMs, 'notFound');
    if (status < 200 || status > 299) return this.fail(login, this.failureTtlMs, 'failures');
    const id = this.extractId(body);
    if (id === null) return this.fail(login, this.notFoundTtlMs, 'notFound');
    this.stats.fetched++;
    this.ids.set(login, id);
    return id;
  }

  private fail(login: string, ttlMs: number, counter: 'notFound' | 'failures'): null {
    this.stats[counter]++;
    this.missing.set(login, Date.now() + ttlMs);
    return null;
  }

  private extractId(body: string): string | null {
    let node: unknown;
    try {
      node = parseLosslessJson(body);
    } catch {
      return null;
    }
    for (const key of this.path) {
      if (node === null || typeof node !== 'object') return null;
      node = Array.isArray(node) ? node[Number(key)] : (node as Record<string, unknown>)[key];
    }
    if (isLosslessNumber(node)) return int64Text(node.value);
    if (typeof node === 'string') return int64Text(node);
    return null;
  }
}
