/**
 * Parsing one edge log line (SPEC section 1) into an EdgeEvent: either the JSON
 * edge event or the legacy `<ip> [<secs>.<millis>] data=<payload> <uuid>` line.
 * The payload itself is decoded later by payload.ts.
 */
import { isIP } from 'node:net';

/**
 * A line, payload or JSON that cannot be decoded. `reason` is a short
 * machine-friendly tag (used as a counter name and kept with the quarantined
 * line); the message adds a human detail.
 */
export class MalformedInput extends Error {
  readonly reason: string;
  constructor(reason: string, detail: string) {
    // Thrown for every bad input line and caught a few frames up; its stack is
    // never shown, and collecting one cost ~0.7% of a whole transform (1% of the
    // benchmark's lines are malformed).
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${reason}: ${detail}`);
    Error.stackTraceLimit = stackTraceLimit;
    this.name = 'MalformedInput';
    this.reason = reason;
  }
}

export interface EdgeEvent {
  /** Whole unix seconds of `receivedAt`, fraction truncated. */
  receivedAtSec: number;
  clientIp: string;
  xForwardedFor?: string;
  uuid: string;
  /** The still-encoded payload (URL-escaped base64 JSON). */
  data: string;
  userAgent?: string;
  recordVersion?: number;
  edgeType?: string;
}

/** At most this much of an offending value is quoted in an error message. */
const QUOTE_LIMIT = 80;

function quote(s: string): string {
  return JSON.stringify(s.length > QUOTE_LIMIT ? s.slice(0, QUOTE_LIMIT) + '…' : s);
}

/**
 * Parses one edge line. Lines whose first non-blank character is `{` are JSON
 * edge events, anything else is tried as a legacy line. An empty (or blank)
 * line is MalformedInput `empty_line`. Throws MalformedInput, never anything else.
 */
export function parseEdgeLine(line: string): EdgeEvent {
  let i = 0;
  const n = line.length;
  while (i < n && isBlank(line.charCodeAt(i))) i++;
  if (i === n) throw new MalformedInput('empty_line', 'the line is empty');
  return line.charCodeAt(i) === 0x7b /* { */ ? parseJsonEdge(line) : parseLegacyEdge(line);
}

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

interface JsonEdgeFields {
  receivedAt?: unknown;
  clientIp?: unknown;
  xForwardedFor?: unknown;
  uuid?: unknown;
  data?: unknown;
  userAgent?: unknown;
  recordversion?: unknown;
  recordVersion?: unknown;
  edgeType?: unknown;
}

function parseJsonEdge(line: string): EdgeEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (err) {
    throw new MalformedInput('bad_json', `edge line is not JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new MalformedInput('bad_edge_shape', 'edge JSON is not an object');
  }
  const o = parsed as JsonEdgeFields;

  if (typeof o.receivedAt !== 'string') throw new MalformedInput('bad_edge_shape', 'receivedAt is not a string');
  const receivedAtSec = parseRfc3339Seconds(o.receivedAt);
  if (Number.isNaN(receivedAtSec)) {
    throw new MalformedInput('invalid_time', `receivedAt ${quote(o.receivedAt)} is not an RFC 3339 time`);
  }

  if (typeof o.clientIp !== 'string') throw new MalformedInput('bad_edge_shape', 'clientIp is not a string');
  // The original unmarshalled clientIp into a Go net.IP, so a non-IP text failed
  // the whole line; an empty one was accepted.
  if (o.clientIp !== '' && isIP(o.clientIp) === 0) {
    throw new MalformedInput('bad_client_ip', `clientIp ${quote(o.clientIp)} is not an IP address`);
  }
  if (typeof o.uuid !== 'string') throw new MalformedInput('bad_edge_shape', 'uuid is not a string');
  if (typeof o.data !== 'string') throw new MalformedInput('bad_edge_shape', 'data is not a string');

  const edge: EdgeEvent = { receivedAtSec, clientIp: o.clientIp, uuid: o.uuid, data: o.data };
  // Optional fields: null counts as absent, an empty string too (it carries no
  // information and the enrichment rules only care whether one is present).
  // xForwardedFor is not validated: the original accepts a malformed chain.
  const xff = optionalString(o.xForwardedFor, 'xForwardedFor');
  if (xff !== undefined) edge.xForwardedFor = xff;
  const ua = optionalString(o.userAgent, 'userAgent');
  if (ua !== undefined) edge.userAgent = ua;
  const edgeType = optionalString(o.edgeType, 'edgeType');
  if (edgeType !== undefined) edge.edgeType = edgeType;
  const version = o.recordversion ?? o.recordVersion;
  if (version !== undefined && version !== null) {
    if (typeof version !== 'number' || !Number.isInteger(version)) {
      throw new MalformedInput('bad_edge_shape', 'recordversion is not an integer');
    }
    edge.recordVersion = version;
  }
  return edge;
}

function optionalString(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new MalformedInput('bad_edge_shape', `${field} is not a string`);
  return v;
}

// ---------------------------------------------------------------------------
// RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`), hand-parsed: it is on the
// per-line path and Date.parse is both slower and more lenient.

function digitsAt(s: string, at: number, count: number): number {
  let v = 0;
  for (let k = 0; k < count; k++) {
    const d = s.charCodeAt(at + k) - 48;
    if (d < 0 || d > 9) return -1; // NaN from charCodeAt past the end also fails
    v = v * 10 + d;
  }
  return v;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = (month + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/**
 * Unix seconds (fraction truncated) of an RFC 3339 timestamp, or NaN when the
 * text is not one. `T`/`Z` may be lower case, like Go's parser allows.
 */
export function parseRfc3339Seconds(s: string): number {
  const n = s.length;
  if (n < 20 || n > 64) return NaN;
  const year = digitsAt(s, 0, 4);
  const month = digitsAt(s, 5, 2);
  const day = digitsAt(s, 8, 2);
  const hour = digitsAt(s, 11, 2);
  const minute = digitsAt(s, 14, 2);
  const second = digitsAt(s, 17, 2);
  const t = s.charCodeAt(10);
  if (
    year < 0 ||
    s.charCodeAt(4) !== 0x2d ||
    s.charCodeAt(7) !== 0x2d ||
    (t !== 0x54 && t !== 0x74) ||
    s.charCodeAt(13) !== 0x3a ||
    s.charCodeAt(16) !== 0x3a ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > daysInMonth(year, month) ||
    hour < 0 ||
    hour > 23 ||
    minute < 0 ||
    minute > 59 ||
    second < 0 ||
    second > 59
  ) {
    return NaN;
  }
  let i = 19;
  if (s.charCodeAt(i) === 0x2e /* . */) {
    i++;
    const start = i;
    while (i < n && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
    if (i === start) return NaN;
  }
  let offsetSec = 0;
  const z = s.charCodeAt(i);
  if (z === 0x5a || z === 0x7a) {
    i++;
  } else if (z === 0x2b || z === 0x2d) {
    const oh = digitsAt(s, i + 1, 2);
    const om = digitsAt(s, i + 4, 2);
    if (oh < 0 || oh > 23 || s.charCodeAt(i + 3) !== 0x3a || om < 0 || om > 59) return NaN;
    offsetSec = (oh * 60 + om) * 60 * (z === 0x2d ? -1 : 1);
    i += 6;
  } else {
    return NaN;
  }
  if (i !== n) return NaN;
  return daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offsetSec;
}

// ---------------------------------------------------------------------------
// Legacy line: `<ip> [<unix seconds>.<millis>] data=<payload> <uuid>`.
// Parsed with indexOf only (no backtracking regex: lines can be megabytes).
// Like the original lexer: the ip token ends at a space, `,` or `|` (anything
// up to the `[` is skipped, e.g. a forwarded chain); the payload ends at a
// space, `"`, `&` or `;` (further query parameters up to the space are
// ignored); text after the uuid is ignored.

const LEGACY_TIME = /^(\d{1,12})(?:\.\d{0,9})?$/;

export function parseLegacyEdge(line: string): EdgeEvent {
  const lb = line.indexOf('[');
  if (lb <= 0) throw new MalformedInput('bad_legacy_line', 'no "<ip> [" prefix');
  let ipEnd = 0;
  while (ipEnd < lb) {
    const c = line.charCodeAt(ipEnd);
    if (c === 0x20 || c === 0x2c || c === 0x7c) break;
    ipEnd++;
  }
  if (ipEnd === 0 || ipEnd === lb) throw new MalformedInput('bad_legacy_line', 'no ip before the time');
  const clientIp = line.slice(0, ipEnd);

  const rb = line.indexOf(']', lb);
  if (rb < 0 || rb - lb > 32) throw new MalformedInput('bad_legacy_line', 'no "[<seconds>.<millis>]" time');
  const time = LEGACY_TIME.exec(line.slice(lb + 1, rb));
  if (time === null) {
    throw new MalformedInput('invalid_time', `legacy time ${quote(line.slice(lb + 1, rb))} is not unix seconds`);
  }
  if (!line.startsWith(' data=', rb + 1)) throw new MalformedInput('bad_legacy_line', 'no " data=" after the time');

  const dataStart = rb + 7;
  const dataEnd = line.indexOf(' ', dataStart);
  if (dataEnd < 0) throw new MalformedInput('bad_legacy_line', 'no uuid after the payload');
  let payloadEnd = dataStart;
  while (payloadEnd < dataEnd) {
    const c = line.charCodeAt(payloadEnd);
    if (c === 0x22 || c === 0x26 || c === 0x3b) break;
    payloadEnd++;
  }
  let uuidEnd = line.indexOf(' ', dataEnd + 1);
  if (uuidEnd < 0) uuidEnd = line.length;
  const uuid = line.slice(dataEnd + 1, uuidEnd);
  if (uuid === '') throw new MalformedInput('bad_legacy_line', 'empty uuid');
  return {
    receivedAtSec: Number(time[1]),
    clientIp,
    uuid,
    data: line.slice(dataStart, payloadEnd),
  };
}
