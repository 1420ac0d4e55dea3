/**
 * Payload decoding (SPEC section 1, "Payload decoding") and per-event
 * enrichment: edge `data` text -> URL unescape -> base64 -> UTF-8 JSON ->
 * events, then the receive time / ip / user agent / uuid rules.
 *
 * Decisions (keep in sync with the tests):
 * - Bytes that are not valid UTF-8 become U+FFFD (the original's Go JSON
 *   decoder does the same inside strings).
 * - Base64 may omit its `=` padding; anything else that is not base64 of the
 *   chosen alphabet (including CR/LF and stray characters) is `bad_base64`.
 * - One bad element in a multi-event array makes the whole line malformed: the
 *   line is the unit kept in quarantine, and half-processing it would make a
 *   replay of the quarantined line produce duplicates.
 * - An empty array `[]` is `bad_payload_shape` (a line must not vanish silently).
 * - Integer literals with 16 or more digits arrive as ExactInteger (whatever
 *   their magnitude, so the result never depends on which parser ran); other
 *   numbers are plain doubles exactly as JSON.parse gives them (1e400 is
 *   Infinity, which the column transformers reject like any non-finite value).
 */
import { parse as parseLossless } from 'lossless-json';
import { MalformedInput, type EdgeEvent } from './edge.js';
import { ExactInteger, type Properties } from './values.js';

export interface RawEvent {
  /** '' when the payload had no (or a null) `event`; the 'empty' outcome is decided later. */
  name: string;
  properties: Properties;
}

/**
 * Decodes an edge `data` string into its events. Throws MalformedInput. (The
 * processor reads most payloads faster, through decodePayloadBytes and
 * payload-scan.ts, and parses only the rest with parsePayloadJson.)
 */
export function decodePayload(data: string): RawEvent[] {
  return parsePayloadJson(decodeBase64(urlQueryUnescape(data)).toString('utf8'));
}

/**
 * The UTF-8 JSON bytes of an edge `data` string (steps 1 and 2 below),
 * followed by one NUL byte, the end sentinel payload-scan.ts needs: the
 * payload is `bytes.subarray(0, bytes.length - 1)`. Throws MalformedInput.
 */
export function decodePayloadBytes(data: string): Buffer {
  return decodeBase64(urlQueryUnescape(data), true);
}

// ---------------------------------------------------------------------------
// Step 1: URL query unescape. The result is a "binary" string: %XX becomes the
// char code XX, so any escape of a non-ASCII byte fails the base64 check next,
// exactly as the bytes would have.

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

export function urlQueryUnescape(s: string): string {
  let pct = s.indexOf('%');
  if (pct < 0) return s.indexOf('+') < 0 ? s : s.replaceAll('+', ' ');
  let out = '';
  let from = 0;
  while (pct >= 0) {
    const hi = hexValue(s.charCodeAt(pct + 1));
    const lo = hexValue(s.charCodeAt(pct + 2));
    if (hi < 0 || lo < 0) {
      throw new MalformedInput('bad_url_escape', `invalid URL escape ${JSON.stringify(s.slice(pct, pct + 3))}`);
    }
    out += s.slice(from, pct).replaceAll('+', ' ') + String.fromCharCode(hi * 16 + lo);
    from = pct + 3;
    pct = s.indexOf('%', from);
  }
  return out + s.slice(from).replaceAll('+', ' ');
}

// ---------------------------------------------------------------------------
// Step 2: base64. Buffer.from(s, 'base64') is lenient: it skips characters
// outside the alphabets, stops at a misplaced `=`, accepts both alphabets at
// once and reads a non-Latin-1 char by its low byte. Strictness is restored
// around it without a per-char JS loop (this runs for every event):
// - mixed alphabets: indexOf checks;
// - non-ASCII: UTF-8 byte length equals the string length only for ASCII;
// - anything skipped or a stop at `=`: the output is shorter than the text
//   implies (one skipped char among n loses a byte unless n % 4 == 1, and that
//   length is rejected up front).

function badBase64(text: string, urlSafe: boolean, detail: string): MalformedInput {
  // Error path only: name the first offending character for the quarantine log.
  const valid = urlSafe ? /[^A-Za-z0-9\-_=]/ : /[^A-Za-z0-9+/=]/;
  const at = text.search(valid);
  const where = at >= 0 ? `invalid character ${JSON.stringify(text[at])} at offset ${at}` : detail;
  return new MalformedInput(
    'bad_base64',
    `${where} (${urlSafe ? 'URL-safe' : 'standard'} base64, length ${text.length})`,
  );
}

/**
 * The bytes of a base64 text. With `sentinel`, one NUL byte follows them in
 * the buffer (at `length - 1`), for payload-scan.ts.
 */
export function decodeBase64(text: string, sentinel = false): Buffer {
  // Alphabet choice as in the original: `-`/`_` mean URL-safe; a space means
  // standard base64 whose `+` became a space in URL unescaping.
  const urlSafe = text.indexOf('-') >= 0 || text.indexOf('_') >= 0;
  if (urlSafe) {
    if (text.indexOf('+') >= 0 || text.indexOf('/') >= 0) throw badBase64(text, true, 'mixed alphabets');
  } else if (text.indexOf(' ') >= 0) {
    text = text.replaceAll(' ', '+');
  }
  if (Buffer.byteLength(text, 'utf8') !== text.length) throw badBase64(text, urlSafe, 'non-ASCII character');

  let end = text.length;
  let padding = 0;
  while (end > 0 && text.charCodeAt(end - 1) === 0x3d /* = */ && padding < 2) {
    end--;
    padding++;
  }
  // Padding is optional, but a lone trailing sextet cannot encode a byte and
  // explicit padding must complete a quantum.
  if (end % 4 === 1 || (padding > 0 && (end + padding) % 4 !== 0)) {
    throw badBase64(text, urlSafe, `invalid length (${padding} padding characters)`);
  }
  const length = Math.floor((end * 3) / 4);
  // What Buffer.from(text, 'base64') does, into a buffer of the right size (plus the sentinel).
  const bytes = Buffer.allocUnsafe(length + (sentinel ? 1 : 0));
  if (bytes.write(text, 'base64') !== length) throw badBase64(text, urlSafe, 'misplaced padding');
  if (sentinel) bytes[length] = 0;
  return bytes;
}

// ---------------------------------------------------------------------------
// Step 3: JSON with exact 64-bit integers.

/**
 * Whether a JSON.parse result may have lost digits: a 16+ digit integer
 * literal always parses to an integer-valued double with |v| >= 1e15. (Other
 * literals landing there, like 1e20, just take the exact path for nothing and
 * come out the same.) Iterative: payload nesting is attacker-controlled.
 */
function mayHoldLongInteger(root: unknown): boolean {
  if (typeof root !== 'object' || root === null) return typeof root === 'number' && isLongInteger(root);
  const stack: object[] = [root];
  while (stack.length > 0) {
    const node = stack.pop() as Record<string, unknown> | unknown[];
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const v = node[i];
        if (typeof v === 'number') {
          if (isLongInteger(v)) return true;
        } else if (typeof v === 'object' && v !== null) stack.push(v);
      }
    } else {
      for (const key in node) {
        const v = node[key];
        if (typeof v === 'number') {
          if (isLongInteger(v)) return true;
        } else if (typeof v === 'object' && v !== null) stack.push(v);
      }
    }
  }
  return false;
}

function isLongInteger(v: number): boolean {
  return (v >= 1e15 || v <= -1e15) && Number.isInteger(v);
}

/** lossless-json number parser: long integer literals keep their text, all else is a double. */
function parseNumberExact(text: string): number | ExactInteger {
  const start = text.charCodeAt(0) === 0x2d ? 1 : 0;
  if (text.length - start >= 16) {
    let i = start;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) break;
      i++;
    }
    if (i === text.length) return new ExactInteger(text);
  }
  return Number(text);
}

const LOSSLESS_OPTIONS = {
  parseNumber: parseNumberExact,
  // Same as JSON.parse (and Go): the last duplicate key wins.
  onDuplicateKey: (info: { newValue: unknown }) => info.newValue,
};

function parseJsonText(text: string): unknown {
  // JSON.parse is several times faster than a lossless parser but rounds
  // integers above 2^53 and gives revivers no source text; only payloads that
  // may have lost digits are parsed again, exactly.
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new MalformedInput('bad_payload_json', `payload is not JSON (${(err as Error).message})`);
  }
  if (!mayHoldLongInteger(parsed)) return parsed;
  try {
    return parseLossless(text, null, LOSSLESS_OPTIONS);
  } catch (err) {
    // The recursive lossless parser overflows on absurd nesting that JSON.parse took.
    throw new MalformedInput('bad_payload_json', `payload cannot be parsed exactly (${(err as Error).message})`);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof ExactInteger);
}

function toRawEvent(element: unknown, index: number): RawEvent {
  if (!isPlainObject(element)) {
    throw new MalformedInput('bad_payload_shape', `payload element ${index} is not an object`);
  }
  const event = element.event;
  let name = '';
  if (typeof event === 'string') name = event;
  else if (event !== undefined && event !== null) {
    throw new MalformedInput('bad_payload_shape', `payload element ${index}: "event" is not a string`);
  }
  const props = element.properties;
  let properties: Properties;
  if (props === undefined || props === null) properties = {};
  else if (isPlainObject(props)) properties = props;
  else throw new MalformedInput('bad_payload_shape', `payload element ${index}: "properties" is not an object`);
  return { name, properties };
}

/** The events of a payload's JSON text (step 3). Throws MalformedInput. */
export function parsePayloadJson(text: string): RawEvent[] {
  const parsed = parseJsonText(text);
  if (Array.isArray(parsed)) {
    if (parsed.length === 0) throw new MalformedInput('bad_payload_shape', 'payload is an empty array');
    const events = new Array<RawEvent>(parsed.length);
    for (let i = 0; i < parsed.length; i++) events[i] = toRawEvent(parsed[i], i);
    return events;
  }
  if (!isPlainObject(parsed)) throw new MalformedInput('bad_payload_shape', 'payload is not an object or array');
  return [toRawEvent(parsed, 0)];
}

// ---------------------------------------------------------------------------
// Per-event enrichment (SPEC "Per-event enrichment"). Mutates the freshly
// parsed properties in place: they belong to this line only.

/**
 * Enriches one event's properties in place: `time`, `client_time`, `ip`, `user_agent`.
 * Used for outputs that keep the properties; columns read the same rule through
 * the edge instead (columns.ts `convert`; a test checks the two agree).
 */
export function enrichProperties(edge: EdgeEvent, props: Properties): void {
  // JSON never yields undefined, so `!== undefined` means "the key is present"
  // (and none of these names exist on Object.prototype).
  if (props.time !== undefined) props.client_time = props.time;
  props.time = edge.receivedAtSec;
  if (props.ip === undefined) props.ip = edge.clientIp;
  if (props.user_agent === undefined && edge.userAgent !== undefined) props.user_agent = edge.userAgent;
}

/** The uuid of event `index` of a line: the edge's own for a single event, `<uuid>-<index>` in an array. */
export function eventUuid(edge: EdgeEvent, index: number, count: number): string {
  return count > 1 ? `${edge.uuid}-${index}` : edge.uuid;
}
