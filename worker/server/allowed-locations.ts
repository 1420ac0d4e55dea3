/**
 * Where a worker daemon may read edge logs and write output, for whoever holds
 * its token (`spade worker serve --allow-edge/--allow-output`). Without it a
 * token holder could name any directory as `edge` and have the daemon copy any
 * file its user can read into the output (quarantined lines keep the text).
 *
 * Each list holds local directories and `s3://bucket[/prefix]` locations; a
 * list left empty allows S3 (any bucket) and no local path. A task location is
 * inside an allowed one when it is the same or below it, compared by path
 * segments (`/data/edge2` is not inside `/data/edge`, nor `s3://b/logs2` inside
 * `s3://b/logs`). Local paths are compared after resolving `..` and symbolic
 * links (realpath), for the location and for every file a task names, so a
 * link inside an allowed directory cannot lead out of it.
 */
import { realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { redactUrl } from '../redact.js';
import { isS3Url, localPath, parseS3Url, type S3Location } from '../store/location.js';

export interface AllowedLocationsOptions {
  /** `--allow-edge`: where edge logs may be read. */
  edge?: string[];
  /** `--allow-output`: where output may be written. */
  output?: string[];
  /** `--allow-user-id-url`: URL prefixes a task's user-id lookup may name. */
  userIdUrls?: string[];
}

interface Roots {
  /** Empty: any bucket. */
  s3: S3Location[];
  anyS3: boolean;
  /** Real paths of allowed directories. */
  local: string[];
}

/** What a daemon checks of a task: its edge location and files, its output location. */
export interface TaskLocations {
  edge: string;
  output: string;
  runtag: string;
  /** Keys of the edge files, relative to `edge`. */
  keys: string[];
  /** The user-id lookup URL template (with `{login}`), when the run maps user ids. */
  userIdUrl?: string;
}

export class LocationNotAllowedError extends Error {}

export class AllowedLocations {
  private constructor(
    private readonly edge: Roots,
    private readonly output: Roots,
    private readonly userIdUrls: URL[],
  ) {}

  /** Resolves the allowed local directories (each must exist); throws naming a bad entry. */
  static async create(opts: AllowedLocationsOptions): Promise<AllowedLocations> {
    return new AllowedLocations(
      await roots('--allow-edge', opts.edge ?? []),
      await roots('--allow-output', opts.output ?? []),
      (opts.userIdUrls ?? []).map((entry) => urlPrefix(entry)),
    );
  }

  /** One line for the start-up message. */
  describe(): string {
    const lookups = this.userIdUrls.length ? this.userIdUrls.map((u) => u.href).join(', ') : 'none';
    return `edge from ${describeRoots(this.edge)}; output to ${describeRoots(this.output)}; user-id lookups: ${lookups}`;
  }

  /** Throws LocationNotAllowedError naming the location when the task reads or writes outside the lists. */
  async check(task: TaskLocations): Promise<void> {
    await checkLocation('edge', '--allow-edge', task.edge, this.edge, task.keys);
    await checkLocation('output', '--allow-output', task.output, this.output, [task.runtag]);
    if (task.userIdUrl !== undefined) this.checkUserIdUrl(task.userIdUrl);
  }

  private checkUserIdUrl(template: string): void {
    const shown = redactUrl(template);
    let url: URL;
    try {
      url = new URL(template.replaceAll('{login}', 'login'));
    } catch {
      throw new LocationNotAllowedError(`user-id lookup URL ${shown} is invalid`);
    }
    if (this.userIdUrls.some((prefix) => urlInside(url, prefix))) return;
    const allowed = this.userIdUrls.length
      ? `allows user-id lookups under ${this.userIdUrls.map((u) => u.href).join(', ')}`
      : 'allows no user-id lookups';
    throw new LocationNotAllowedError(
      `user-id lookup URL ${shown} is not allowed; this node ${allowed} (--allow-user-id-url)`,
    );
  }
}

/** An `--allow-user-id-url` entry: an http(s) URL whose path ends a segment (a trailing `/` is added). */
function urlPrefix(entry: string): URL {
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    throw new Error(`--allow-user-id-url ${redactUrl(entry)}: not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`--allow-user-id-url ${redactUrl(entry)}: must be an http(s) URL`);
  }
  if (url.username || url.password)
    throw new Error(`--allow-user-id-url ${redactUrl(entry)}: must not hold credentials`);
  url.search = '';
  url.hash = '';
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

/** `url` has the prefix's scheme, host and port, and its path is the prefix's or below it by segments. */
function urlInside(url: URL, prefix: URL): boolean {
  if (url.protocol !== prefix.protocol || url.host !== prefix.host) return false;
  const path = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
  // The URL parser has already resolved `.` and `..` segments.
  return path.startsWith(prefix.pathname);
}

async function roots(flag: string, entries: string[]): Promise<Roots> {
  const r: Roots = { s3: [], anyS3: entries.length === 0, local: [] };
  for (const entry of entries) {
    if (isS3Url(entry)) {
      try {
        r.s3.push(parseS3Url(entry));
      } catch (err) {
        throw new Error(`${flag} ${entry}: ${(err as Error).message}`, { cause: err });
      }
      continue;
    }
    let dir: string;
    try {
      dir = await realpath(localPath(entry));
    } catch (err) {
      throw new Error(`${flag} ${entry}: not an existing directory (${(err as Error).message})`, { cause: err });
    }
    r.local.push(dir);
  }
  return r;
}

function describeRoots(r: Roots): string {
  const all = [
    ...(r.anyS3 ? ['any S3 bucket'] : []),
    ...r.s3.map((l) => `s3://${l.bucket}${l.prefix ? `/${l.prefix}` : ''}`),
    ...r.local,
  ];
  return all.length ? all.join(', ') : 'nowhere';
}

async function checkLocation(
  what: string,
  flag: string,
  location: string,
  allowed: Roots,
  keys: string[],
): Promise<void> {
  const refuse = (why: string): never => {
    throw new LocationNotAllowedError(
      `${what} location ${location} ${why}; this node allows ${what} ${describeRoots(allowed)} (${flag})`,
    );
  };
  if (isS3Url(location)) {
    let loc: S3Location;
    try {
      loc = parseS3Url(location);
    } catch (err) {
      return refuse(`is invalid: ${(err as Error).message}`);
    }
    // Keys cannot climb out of the prefix (object keys with `..` segments are refused by every store).
    if (allowed.anyS3 || allowed.s3.some((a) => a.bucket === loc.bucket && prefixInside(loc.prefix, a.prefix))) return;
    return refuse('is outside the allowed locations');
  }
  let dir: string;
  try {
    dir = await realPathOf(localPath(location));
  } catch (err) {
    return refuse(`is invalid: ${(err as Error).message}`);
  }
  if (!allowed.local.some((root) => pathInside(dir, root))) {
    return refuse(allowed.local.length ? 'is outside the allowed directories' : 'is a local path');
  }
  // A symbolic link below an allowed directory may point out of it.
  for (const key of keys) {
    const file = await realPathOf(join(dir, ...key.split('/')));
    if (!allowed.local.some((root) => pathInside(file, root))) refuse(`names ${key}, which resolves outside it`);
  }
}

/** The real path of `path`, or of its longest existing ancestor followed by the rest (for output not yet made). */
async function realPathOf(path: string): Promise<string> {
  const abs = resolve(path);
  try {
    return await realpath(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    const parent = resolve(abs, '..');
    if (parent === abs) throw err;
    return join(await realPathOf(parent), abs.slice(parent.length + (parent.endsWith(sep) ? 0 : 1)));
  }
}

/** `child` is `root` or below it, by path segments. */
function pathInside(child: string, root: string): boolean {
  const rel = relative(root, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** An S3 key prefix is the allowed one or below it, by `/` segments ('' allows the whole bucket). */
function prefixInside(prefix: string, allowed: string): boolean {
  return allowed === '' || prefix === allowed || prefix.startsWith(`${allowed}/`);
}
