/**
 * The fast path of payload decoding: reads the events of a payload, and the
 * properties each event's table needs, straight from the payload's JSON text,
 * building no objects and interning no keys.
 *
 * Why: JSON.parse builds an object per event with a hidden class per key set
 * and interns every key (and every short string value); on the benchmark
 * corpus that was ~17% of a transform thread, more than all the column
 * converters together. The columns need a handful of scalar values per event,
 * found here by a hash of each key's characters.
 *
 * The fast path vouches only for payloads of the usual shape: an object or a
 * non-empty array of objects, each with `event` (a string or null) and
 * `properties` (an object of scalar values, or null) once each, other members
 * scalar, no escapes in keys, no control characters in strings. For anything
 * else `scanPayload` returns null and the caller parses with JSON.parse
 * (payload.ts), which also names the error of a bad payload. What it does
 * accept, it reads exactly as payload.ts would: the same strings, the same
 * doubles (`Number` of the literal, as JSON.parse), an ExactInteger for
 * integer literals of 16 or more digits, the last of duplicate keys
 * (payload-scan.test.ts compares the two on random payloads).
 */
import { ExactInteger } from './values.js';

/** A scan function's result when the text is not of the shape this path vouches for. */
const NO = -1;

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/** FNV-1a over UTF-16 code units, as computed inline while scanning a key. */
export function keyHash(key: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), FNV_PRIME);
  return h;
}

/**
 * The property names one table reads, each with its slot (its index in
 * `names`): an open-addressing table over the keys' hashes, checked against
 * the text, so finding a key creates no string.
 */
export class PropertyReader {
  readonly slotCount: number;
  private readonly names: readonly string[];
  private readonly hashes: Int32Array;
  /** slot + 1 per bucket; 0 is an empty bucket. */
  private readonly buckets: Int32Array;
  private readonly mask: number;

  constructor(names: readonly string[]) {
    this.names = names;
    this.slotCount = names.length;
    this.hashes = new Int32Array(names.length);
    let size = 16;
    while (size < names.length * 4) size *= 2;
    this.buckets = new Int32Array(size);
    this.mask = size - 1;
    for (let slot = 0; slot < names.length; slot++) {
      const h = keyHash(names[slot]!);
      this.hashes[slot] = h;
      let b = bucketOf(h, this.mask);
      while (this.buckets[b] !== 0) b = (b + 1) & this.mask;
      this.buckets[b] = slot + 1;
    }
  }

  /** The slot of the key `text[start, end)` whose hash is `h`, or -1. */
  slotOf(text: string, start: number, end: number, h: number): number {
    for (let b = bucketOf(h, this.mask); ; b = (b + 1) & this.mask) {
      const entry = this.buckets[b]!;
      if (entry === 0) return -1;
      const slot = entry - 1;
      if (this.hashes[slot] === h) {
        const name = this.names[slot]!;
        if (name.length === end - start && text.startsWith(name, start)) return slot;
      }
    }
  }
}

function bucketOf(h: number, mask: number): number {
  return (h ^ (h >>> 16)) & mask;
}

/** One event of a scanned payload. */
export interface ScannedEvent {
  /** '' when the event had no (or a null) name, as payload.ts. */
  name: string;
  /** The values of its table's properties by slot (undefined: absent); null when no table reads it. */
  slots: unknown[] | null;
}

/** Which properties an event name's table reads (undefined: none, the event is not converted). */
export type ReaderLookup = (eventName: string) => PropertyReader | undefined;

/**
 * The events of a decoded payload text, with the slots of each event's
 * table filled; null when the text is not of the shape this path vouches for
 * (see the module comment), whether or not it is valid JSON.
 */
export function scanPayload(text: string, readerFor: ReaderLookup): ScannedEvent[] | null {
  const events: ScannedEvent[] = [];
  let i = skipWhitespace(text, 0);
  const c = text.charCodeAt(i);
  if (c === 0x7b /* { */) {
    i = scanEvent(text, i + 1, readerFor, events);
  } else if (c === 0x5b /* [ */) {
    i = skipWhitespace(text, i + 1);
    for (;;) {
      if (text.charCodeAt(i) !== 0x7b) return null; // includes `[]`, which payload.ts rejects by name
      i = scanEvent(text, i + 1, readerFor, events);
      if (i === NO) return null;
      i = skipWhitespace(text, i);
      const d = text.charCodeAt(i);
      if (d === 0x5d /* ] */) {
        i++;
        break;
      }
      if (d !== 0x2c /* , */) return null;
      i = skipWhitespace(text, i + 1);
    }
  } else {
    return null;
  }
  if (i === NO || skipWhitespace(text, i) !== text.length) return null;
  return events;
}

/** The value read by the last scalar scan that wanted it (a second result, kept off the heap). */
let scanned: unknown;

function skipWhitespace(t: string, i: number): number {
  for (;;) {
    const c = t.charCodeAt(i);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
    else return i;
  }
}

/** An event object from after its `{`; appends it to `events`. Returns the index after its `}`. */
function scanEvent(t: string, i: number, readerFor: ReaderLookup, events: ScannedEvent[]): number {
  let name: string | null = null;
  let reader: PropertyReader | undefined;
  let slots: unknown[] | null = null;
  let propertiesSeen = false;
  /** Where a `properties` object that came before `event` starts (after its `{`). */
  let propertiesAt = NO;
  i = skipWhitespace(t, i);
  if (t.charCodeAt(i) !== 0x7d /* } */) {
    for (;;) {
      if (t.charCodeAt(i) !== 0x22 /* " */) return NO;
      const keyStart = i + 1;
      i = endOfPlainKey(t, keyStart);
      if (i === NO) return NO;
      const keyLength = i - keyStart;
      i = skipWhitespace(t, i + 1);
      if (t.charCodeAt(i) !== 0x3a /* : */) return NO;
      i = skipWhitespace(t, i + 1);
      const c = t.charCodeAt(i);
      if (keyLength === 5 && t.startsWith('event', keyStart)) {
        // A second `event` would change whose properties were read: left to JSON.parse.
        if (name !== null) return NO;
        if (c === 0x22) {
          i = scanString(t, i + 1, true);
          if (i === NO) return NO;
          name = scanned as string;
        } else if (isNullAt(t, i)) {
          name = '';
          i += 4;
        } else {
          return NO;
        }
        reader = readerFor(name);
      } else if (keyLength === 10 && t.startsWith('properties', keyStart)) {
        if (propertiesSeen) return NO;
        propertiesSeen = true;
        if (c === 0x7b) {
          if (name !== null && reader !== undefined) {
            slots = new Array<unknown>(reader.slotCount);
            i = scanProperties(t, i + 1, reader, slots);
          } else {
            if (name === null) propertiesAt = i + 1;
            i = scanProperties(t, i + 1, undefined, null);
          }
        } else if (isNullAt(t, i)) {
          i += 4;
        } else {
          return NO;
        }
      } else {
        i = scanScalar(t, i, false);
      }
      if (i === NO) return NO;
      i = skipWhitespace(t, i);
      const d = t.charCodeAt(i);
      if (d === 0x7d) break;
      if (d !== 0x2c) return NO;
      i = skipWhitespace(t, i + 1);
    }
  }
  if (name === null) {
    name = '';
    reader = readerFor(name);
  }
  if (reader !== undefined && slots === null) {
    slots = new Array<unknown>(reader.slotCount);
    // The properties came before the name: read again, now that their table is known.
    if (propertiesAt !== NO) scanProperties(t, propertiesAt, reader, slots);
  }
  events.push({ name, slots });
  return i + 1;
}

/** A properties object from after its `{`, its wanted values into `slots`. Returns the index after its `}`. */
function scanProperties(t: string, i: number, reader: PropertyReader | undefined, slots: unknown[] | null): number {
  i = skipWhitespace(t, i);
  if (t.charCodeAt(i) === 0x7d) return i + 1;
  for (;;) {
    if (t.charCodeAt(i) !== 0x22) return NO;
    // The key's hash, computed while looking for its end (endOfPlainKey without the call).
    const keyStart = i + 1;
    let h = FNV_OFFSET;
    for (i = keyStart; ; i++) {
      const c = t.charCodeAt(i);
      if (c === 0x22) break;
      if (c === 0x5c /* \ */ || !(c >= 0x20)) return NO; // an escaped key, a control character, the end
      h = Math.imul(h ^ c, FNV_PRIME);
    }
    const slot = reader === undefined ? -1 : reader.slotOf(t, keyStart, i, h);
    i = skipWhitespace(t, i + 1);
    if (t.charCodeAt(i) !== 0x3a) return NO;
    i = scanScalar(t, skipWhitespace(t, i + 1), slot >= 0);
    if (i === NO) return NO;
    // Duplicate keys: the last one wins, as with JSON.parse.
    if (slot >= 0) slots![slot] = scanned;
    i = skipWhitespace(t, i);
    const d = t.charCodeAt(i);
    if (d === 0x7d) return i + 1;
    if (d !== 0x2c) return NO;
    i = skipWhitespace(t, i + 1);
  }
}

/** The index of the closing quote of a key without escapes or control characters, from after its opening one. */
function endOfPlainKey(t: string, i: number): number {
  for (; ; i++) {
    const c = t.charCodeAt(i);
    if (c === 0x22) return i;
    if (c === 0x5c || !(c >= 0x20)) return NO;
  }
}

function isNullAt(t: string, i: number): boolean {
  return (
    t.charCodeAt(i) === 0x6e &&
    t.charCodeAt(i + 1) === 0x75 &&
    t.charCodeAt(i + 2) === 0x6c &&
    t.charCodeAt(i + 3) === 0x6c
  );
}

/** A string, number, true, false or null at `i` (objects and arrays are not this path's). */
function scanScalar(t: string, i: number, want: boolean): number {
  const c = t.charCodeAt(i);
  if (c === 0x22) return scanString(t, i + 1, want);
  if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) return scanNumber(t, i, want);
  if (c === 0x74 /* t */) {
    if (t.charCodeAt(i + 1) !== 0x72 || t.charCodeAt(i + 2) !== 0x75 || t.charCodeAt(i + 3) !== 0x65) return NO;
    scanned = true;
    return i + 4;
  }
  if (c === 0x66 /* f */) {
    if (
      t.charCodeAt(i + 1) !== 0x61 ||
      t.charCodeAt(i + 2) !== 0x6c ||
      t.charCodeAt(i + 3) !== 0x73 ||
      t.charCodeAt(i + 4) !== 0x65
    ) {
      return NO;
    }
    scanned = false;
    return i + 5;
  }
  if (isNullAt(t, i)) {
    scanned = null;
    return i + 4;
  }
  return NO;
}

/** A string from after its opening quote; returns the index after the closing one. */
function scanString(t: string, i: number, want: boolean): number {
  const start = i;
  for (;;) {
    const c = t.charCodeAt(i);
    if (c === 0x22) {
      if (want) scanned = t.slice(start, i);
      return i + 1;
    }
    if (c === 0x5c) return scanEscapedString(t, start, i, want);
    if (!(c >= 0x20)) return NO; // a control character, or the end of the text (NaN)
    i++;
  }
}

/** The rest of a string holding an escape at `i` (start: after its opening quote). */
function scanEscapedString(t: string, start: number, i: number, want: boolean): number {
  let out = '';
  let from = start;
  for (;;) {
    const c = t.charCodeAt(i);
    if (c === 0x22) {
      if (want) scanned = out + t.slice(from, i);
      return i + 1;
    }
    if (!(c >= 0x20)) return NO;
    if (c !== 0x5c) {
      i++;
      continue;
    }
    out += t.slice(from, i);
    let decoded: string;
    let length = 2;
    switch (t.charCodeAt(i + 1)) {
      case 0x22:
        decoded = '"';
        break;
      case 0x5c:
        decoded = '\\';
        break;
      case 0x2f:
        decoded = '/';
        break;
      case 0x62:
        decoded = '\b';
        break;
      case 0x66:
        decoded = '\f';
        break;
      case 0x6e:
        decoded = '\n';
        break;
      case 0x72:
        decoded = '\r';
        break;
      case 0x74:
        decoded = '\t';
        break;
      case 0x75: {
        // \uXXXX: one UTF-16 unit, a lone surrogate included (as JSON.parse).
        let unit = 0;
        for (let k = 2; k < 6; k++) {
          const d = hexDigit(t.charCodeAt(i + k));
          if (d < 0) return NO;
          unit = unit * 16 + d;
        }
        decoded = String.fromCharCode(unit);
        length = 6;
        break;
      }
      default:
        return NO;
    }
    out += decoded;
    i += length;
    from = i;
  }
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/**
 * A JSON number at `i`. Integers of up to 15 digits are computed while
 * scanning (exact: below 2^53); longer ones become ExactInteger; fractions and
 * exponents go through Number, which rounds the literal as JSON.parse does.
 */
function scanNumber(t: string, i: number, want: boolean): number {
  const start = i;
  let c = t.charCodeAt(i);
  const negative = c === 0x2d;
  if (negative) c = t.charCodeAt(++i);
  let value = 0;
  if (c === 0x30) {
    c = t.charCodeAt(++i);
  } else if (c >= 0x31 && c <= 0x39) {
    do {
      value = value * 10 + (c - 0x30);
      c = t.charCodeAt(++i);
    } while (c >= 0x30 && c <= 0x39);
  } else {
    return NO;
  }
  const digits = i - start - (negative ? 1 : 0);
  let integer = true;
  if (c === 0x2e /* . */) {
    integer = false;
    c = t.charCodeAt(++i);
    if (!(c >= 0x30 && c <= 0x39)) return NO;
    do c = t.charCodeAt(++i);
    while (c >= 0x30 && c <= 0x39);
  }
  if (c === 0x65 || c === 0x45 /* e E */) {
    integer = false;
    c = t.charCodeAt(++i);
    if (c === 0x2b || c === 0x2d) c = t.charCodeAt(++i);
    if (!(c >= 0x30 && c <= 0x39)) return NO;
    do c = t.charCodeAt(++i);
    while (c >= 0x30 && c <= 0x39);
  }
  if (want) {
    if (!integer) scanned = Number(t.slice(start, i));
    else if (digits <= 15) scanned = negative ? -value : value;
    else scanned = new ExactInteger(t.slice(start, i));
  }
  return i;
}
