/**
 * Standard-input framing of the continuous processor. Each stdin line is one of:
 * - an edge line (JSON edge event or legacy line), as in edge log files;
 * - a glob: standard base64 of the glob's bytes (version byte 1, then raw
 *   DEFLATE of a JSON array of JSON edge events), on one line. Base64 of a
 *   leading 0x01 byte always starts with `A` followed by one of `Q`-`Z`,
 *   `a`-`f`, and the line has no spaces or punctuation but `+/=`; no edge line
 *   looks like that (JSON lines start with `{`, legacy lines with an IP address
 *   followed by a space), so the two cannot be mistaken for each other.
 * A glob whose first event's uuid was seen in the last 5 minutes is a
 * duplicate (streams redeliver) and is skipped whole.
 *
 * DEFLATE shrinks repetitive bytes up to ~1000 times, so a line of a few
 * hundred KB can inflate to gigabytes: inflation stops at GLOB_MAX_INFLATED_BYTES
 * and such a line is quarantined as `glob_too_large` (GlobTooLargeError).
 */
import { inflateRawSync } from 'node:zlib';

export const GLOB_VERSION = 1;
export const GLOB_DEDUP_MS = 5 * 60_000;
/**
 * Largest inflated glob: far above a real one (a few hundred events, well under
 * a MB), small enough that the inflated bytes, their string and the parsed
 * events stay within a few hundred MB of memory.
 */
export const GLOB_MAX_INFLATED_BYTES = 64 * 1024 * 1024;
const BASE64_LINE = /^A[Q-Za-f][A-Za-z0-9+/]*={0,2}$/;

export function isGlobLine(line: string): boolean {
  return line.length > 4 && line.charCodeAt(0) === 0x41 /* A */ && BASE64_LINE.test(line);
}

/** Builds a glob line (for producers and tests). */
export function encodeGlobLine(events: readonly unknown[], deflateRaw: (b: Buffer) => Buffer): string {
  return Buffer.concat([Buffer.from([GLOB_VERSION]), deflateRaw(Buffer.from(JSON.stringify(events)))]).toString(
    'base64',
  );
}

export class GlobError extends Error {}

/** The glob inflates beyond GLOB_MAX_INFLATED_BYTES: its malformed reason is `glob_too_large`. */
export class GlobTooLargeError extends GlobError {}

/** The edge lines of one glob line, and the uuid of its first event. Throws GlobError when it cannot be decoded. */
export function decodeGlobLine(
  line: string,
  maxInflatedBytes = GLOB_MAX_INFLATED_BYTES,
): { lines: string[]; firstUuid: string | null } {
  const bytes = Buffer.from(line, 'base64');
  if (bytes.length < 2 || bytes[0] !== GLOB_VERSION) throw new GlobError(`unknown glob version ${bytes[0]}`);
  let json: string;
  try {
    json = inflateRawSync(bytes.subarray(1), { maxOutputLength: maxInflatedBytes }).toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new GlobTooLargeError(
        `glob of ${bytes.length} compressed bytes inflates beyond ${maxInflatedBytes} bytes (a DEFLATE bomb?)`,
      );
    }
    throw new GlobError(`glob is not valid raw DEFLATE: ${(err as Error).message}`);
  }
  let events: unknown;
  try {
    events = JSON.parse(json);
  } catch (err) {
    throw new GlobError(`glob is not a JSON array: ${(err as Error).message}`);
  }
  if (!Array.isArray(events)) throw new GlobError('glob is not a JSON array');
  const lines = new Array<string>(events.length);
  for (let i = 0; i < events.length; i++) lines[i] = JSON.stringify(events[i]);
  const first = events[0] as { uuid?: unknown } | undefined;
  const firstUuid = first !== null && typeof first === 'object' && typeof first.uuid === 'string' ? first.uuid : null;
  return { lines, firstUuid };
}

/** Remembers first-event uuids for `windowMs`; insertion order is time order, so expiry pops from the front. */
export class GlobDedup {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly windowMs = GLOB_DEDUP_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when `uuid` was seen within the window (a duplicate); otherwise records it. */
  isDuplicate(uuid: string): boolean {
    const now = this.now();
    for (const [id, at] of this.seen) {
      if (now - at < this.windowMs) break;
      this.seen.delete(id);
    }
    if (this.seen.has(uuid)) return true;
    this.seen.set(uuid, now);
    return false;
  }
}
