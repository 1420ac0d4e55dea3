/**
 * The fast path of payload decoding: reads the events of a payload, and the
 * properties each event's table needs, straight from the payload's UTF-8
 * bytes, building no objects and interning no keys.
 *
 * Why: JSON.parse builds an object per event with a hidden class per key set
 * and interns every key (and every short string value), after the whole
 * payload was decoded to a string; on the benchmark corpus that was ~17% of a
 * transform thread, more than all the column converters together. The columns
 * need a handful of scalar values per event: here the bytes are scanned (a
 * typed-array loop, several times cheaper per character than one over a
 * string), keys are compared in place, and only wanted values become strings.
 *
 * The fast path vouches only for payloads of the usual shape: an object or a
 * non-empty array of objects, each with `event` (a string or null) and
 * `properties` (an object of scalar values, or null) once each, other members
 * scalar, keys without escapes or non-ASCII bytes, no control bytes in
 * strings. For anything else `scanPayload` returns null and the caller parses
 * the decoded text with JSON.parse (payload.ts), which also names the error of
 * a bad payload. What it does accept, it reads exactly as payload.ts would: the
 * same strings (invalid UTF-8 becomes U+FFFD alike: a string's bytes end at a
 * quote byte, where the decoder is in step), the same doubles (`Number` of the
 * literal, as JSON.parse), an ExactInteger for integer literals of 16 or more
 * digits, the last of duplicate keys (payload-scan.test.ts compares the two on
 * random payloads).
 */
import { ExactInteger } from './values.js';

/** A scan function's result when the payload is not of the shape this path vouches for. */
const NO = -1;

/** Bucket of a key by its length and first, middle and last bytes. */
function keyBucket(length: number, first: number, middle: number, last: number, mask: number): number {
  return (Math.imul(Math.imul(length, 0x9e3779b1) ^ first, 0x85ebca6b) ^ Math.imul(middle, 31) ^ last) & mask;
}

/**
 * The property names one table reads, each with its slot (its index in
 * `names`), bucketed by length and three of their bytes; a key of the payload
 * is compared with the names of its bucket in place, so finding it creates no
 * string.
 */
export class PropertyReader {
  readonly slotCount: number;
  /**
   * Per slot, 1 where an integer literal may be handed over as its own text
   * (a string) instead of a number: the table reads the property only through
   * integer columns, whose text of the literal is the literal itself, so the
   * number-to-text conversion (~0.7 µs for a random 12-digit id here) is spared.
   */
  readonly integerText: Uint8Array;
  /** Slot of the empty name (-1: not read); `slotOf` is never asked for it. */
  readonly emptySlot: number;
  /** Each name's UTF-8 bytes, by slot. */
  private readonly names: readonly Uint8Array[];
  /** Per bucket, its first entry (slot + 1; 0: none); per slot, the next entry of its bucket. */
  private readonly heads: Int32Array;
  private readonly next: Int32Array;
  private readonly mask: number;

  constructor(names: readonly string[], integerText: readonly boolean[] = []) {
    this.slotCount = names.length;
    this.integerText = Uint8Array.from(names, (_, slot) => (integerText[slot] ? 1 : 0));
    this.emptySlot = names.indexOf('');
    this.names = names.map((name) => Buffer.from(name, 'utf8'));
    let size = 16;
    while (size < names.length * 4) size *= 2;
    this.heads = new Int32Array(size);
    this.next = new Int32Array(names.length);
    this.mask = size - 1;
    for (let slot = names.length - 1; slot >= 0; slot--) {
      const name = this.names[slot]!;
      const n = name.length;
      if (n === 0) continue;
      const b = keyBucket(n, name[0]!, name[n >> 1]!, name[n - 1]!, this.mask);
      this.next[slot] = this.heads[b]!;
      this.heads[b] = slot + 1;
    }
  }

  /** The slot of the key `bytes[start, end)` (not empty), or -1. */
  slotOf(bytes: Uint8Array, start: number, end: number): number {
    const n = end - start;
    const b = keyBucket(n, bytes[start]!, bytes[start + (n >> 1)]!, bytes[end - 1]!, this.mask);
    for (let entry = this.heads[b]!; entry !== 0; entry = this.next[entry - 1]!) {
      const name = this.names[entry - 1]!;
      if (name.length !== n) continue;
      let k = 0;
      while (k < n && bytes[start + k] === name[k]) k++;
      if (k === n) return entry - 1;
    }
    return -1;
  }
}

/** One event of a scanned payload. */
export interface ScannedEvent {
  /** '' when the event had no (or a null) name, as payload.ts. */
  name: string;
  /** The values of its table's properties by slot (undefined: absent); null when no table reads it. */
  slots: unknown[] | null;
}

/**
 * Which properties an event name's table reads: undefined when the event is
 * not converted and its properties are not needed (an excluded or empty
 * event), null when its whole properties object is (a non-tracked event: the
 * payload is then left to JSON.parse, so it is not read twice).
 */
export type ReaderLookup = (eventName: string) => PropertyReader | undefined | null;

/**
 * The events of a payload, with the slots of each event's table filled; null
 * when the payload is not of the shape this path vouches for (see the module
 * comment), whether or not it is valid JSON. `bytes` are its UTF-8 JSON
 * followed by one NUL byte (payload.ts `decodePayloadBytes`): every scan stops
 * at that byte (no JSON token holds one), so no loop checks for the end and
 * every byte read is in bounds (an out-of-bounds read would make every
 * comparison of a byte a generic one).
 */
export function scanPayload(bytes: Buffer, readerFor: ReaderLookup): ScannedEvent[] | null {
  const end = bytes.length - 1;
  if (bytes[end] !== 0) throw new Error('scanPayload: the payload bytes must end with a NUL sentinel');
  payloadEnd = end;
  latin1 = null;
  const events: ScannedEvent[] = [];
  let i = skipWhitespace(bytes, 0);
  const c = bytes[i];
  if (c === 0x7b /* { */) {
    i = scanEvent(bytes, i + 1, readerFor, events);
  } else if (c === 0x5b /* [ */) {
    i = skipWhitespace(bytes, i + 1);
    for (;;) {
      if (bytes[i] !== 0x7b) return null; // includes `[]`, which payload.ts rejects by name
      i = scanEvent(bytes, i + 1, readerFor, events);
      if (i === NO) return null;
      i = skipWhitespace(bytes, i);
      const d = bytes[i];
      if (d === 0x5d /* ] */) {
        i++;
        break;
      }
      if (d !== 0x2c /* , */) return null;
      i = skipWhitespace(bytes, i + 1);
    }
  } else {
    return null;
  }
  if (i === NO || skipWhitespace(bytes, i) !== end) return null;
  return events;
}

// Scan state, module-wide to spare passing and returning it (one payload at a time, synchronously).
/** The value read by the last scalar scan that wanted it. */
let scanned: unknown;
/** Where the payload's bytes end (the index of the sentinel). */
let payloadEnd = 0;
/**
 * The payload as Latin-1 text, made on the first wanted ASCII value: one
 * character per byte, so an ASCII value is a cheap slice of it at its byte
 * offsets (making a string from bytes costs ~5x a slice).
 */
let latin1: string | null = null;

function asciiText(bytes: Buffer, start: number, end: number): string {
  latin1 ??= bytes.toString('latin1', 0, payloadEnd);
  return latin1.slice(start, end);
}

function skipWhitespace(b: Uint8Array, i: number): number {
  for (;;) {
    const c = b[i];
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
    else return i;
  }
}

/**
 * The index of the quote that ends a key starting at `i`; NO for a key with
 * an escape, a non-ASCII or a control byte (left to JSON.parse).
 */
function endOfKey(b: Uint8Array, i: number): number {
  for (;;) {
    const c = b[i];
    if (c === 0x22) return i;
    if (c === 0x5c || !(c >= 0x20 && c < 0x80)) return NO; // also the end of the payload (the sentinel)
    i++;
  }
}

function isWordAt(b: Uint8Array, i: number, word: string): boolean {
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word.charCodeAt(k)) return false;
  return true;
}

/** An event object from after its `{`; appends it to `events`. Returns the index after its `}`. */
function scanEvent(b: Buffer, i: number, readerFor: ReaderLookup, events: ScannedEvent[]): number {
  let name: string | null = null;
  let reader: PropertyReader | undefined;
  let slots: unknown[] | null = null;
  let propertiesSeen = false;
  /** Where a `properties` object that came before `event` starts (after its `{`). */
  let propertiesAt = NO;
  i = skipWhitespace(b, i);
  if (b[i] !== 0x7d /* } */) {
    for (;;) {
      if (b[i] !== 0x22 /* " */) return NO;
      const keyStart = i + 1;
      i = endOfKey(b, keyStart);
      if (i === NO) return NO;
      const keyLength = i - keyStart;
      i = skipWhitespace(b, i + 1);
      if (b[i] !== 0x3a /* : */) return NO;
      i = skipWhitespace(b, i + 1);
      const c = b[i];
      if (keyLength === 5 && isWordAt(b, keyStart, 'event')) {
        // A second `event` would change whose properties were read: left to JSON.parse.
        if (name !== null) return NO;
        if (c === 0x22) {
          i = scanString(b, i + 1, true);
          if (i === NO) return NO;
          name = scanned as string;
        } else if (isWordAt(b, i, 'null')) {
          name = '';
          i += 4;
        } else {
          return NO;
        }
        const found = readerFor(name);
        if (found === null) return NO;
        reader = found;
      } else if (keyLength === 10 && isWordAt(b, keyStart, 'properties')) {
        if (propertiesSeen) return NO;
        propertiesSeen = true;
        if (c === 0x7b) {
          if (name !== null && reader !== undefined) {
            slots = new Array<unknown>(reader.slotCount);
            i = scanProperties(b, i + 1, reader, slots);
          } else {
            if (name === null) propertiesAt = i + 1;
            i = scanProperties(b, i + 1, undefined, null);
          }
        } else if (isWordAt(b, i, 'null')) {
          i += 4;
        } else {
          return NO;
        }
      } else {
        i = scanScalar(b, i, false);
      }
      if (i === NO) return NO;
      i = skipWhitespace(b, i);
      const d = b[i];
      if (d === 0x7d) break;
      if (d !== 0x2c) return NO;
      i = skipWhitespace(b, i + 1);
    }
  }
  if (name === null) {
    name = '';
    const found = readerFor(name);
    if (found === null) return NO;
    reader = found;
  }
  if (reader !== undefined && slots === null) {
    slots = new Array<unknown>(reader.slotCount);
    // The properties came before the name: read again, now that their table is known.
    if (propertiesAt !== NO) scanProperties(b, propertiesAt, reader, slots);
  }
  events.push({ name, slots });
  return i + 1;
}

/** A properties object from after its `{`, its wanted values into `slots`. Returns the index after its `}`. */
function scanProperties(b: Buffer, i: number, reader: PropertyReader | undefined, slots: unknown[] | null): number {
  i = skipWhitespace(b, i);
  if (b[i] === 0x7d) return i + 1;
  for (;;) {
    if (b[i] !== 0x22) return NO;
    const keyStart = i + 1;
    i = endOfKey(b, keyStart);
    if (i === NO) return NO;
    let slot = -1;
    if (reader !== undefined) slot = i === keyStart ? reader.emptySlot : reader.slotOf(b, keyStart, i);
    i = skipWhitespace(b, i + 1);
    if (b[i] !== 0x3a) return NO;
    i = scanScalar(b, skipWhitespace(b, i + 1), slot >= 0, slot >= 0 && reader!.integerText[slot] === 1);
    if (i === NO) return NO;
    // Duplicate keys: the last one wins, as with JSON.parse.
    if (slot >= 0) slots![slot] = scanned;
    i = skipWhitespace(b, i);
    const d = b[i];
    if (d === 0x7d) return i + 1;
    if (d !== 0x2c) return NO;
    i = skipWhitespace(b, i + 1);
  }
}

/** A string, number, true, false or null at `i` (objects and arrays are not this path's). */
function scanScalar(b: Buffer, i: number, want: boolean, integerText = false): number {
  const c = b[i];
  if (c === 0x22) return scanString(b, i + 1, want);
  if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) return scanNumber(b, i, want, integerText);
  if (c === 0x74 /* t */ && isWordAt(b, i, 'true')) {
    scanned = true;
    return i + 4;
  }
  if (c === 0x66 /* f */ && isWordAt(b, i, 'false')) {
    scanned = false;
    return i + 5;
  }
  if (c === 0x6e /* n */ && isWordAt(b, i, 'null')) {
    scanned = null;
    return i + 4;
  }
  return NO;
}

/** A string from after its opening quote; returns the index after the closing one. */
function scanString(b: Buffer, i: number, want: boolean): number {
  const start = i;
  let high = 0;
  for (;;) {
    const c = b[i];
    if (c === 0x22) break;
    if (c === 0x5c) return scanEscapedString(b, start, want);
    if (c < 0x20) return NO; // a control byte, or the end of the payload (the sentinel)
    high |= c;
    i++;
  }
  if (want) scanned = high < 0x80 ? asciiText(b, start, i) : b.toString('utf8', start, i);
  return i + 1;
}

/**
 * A string holding an escape, from after its opening quote: its bytes are
 * decoded, then unescaped, as JSON.parse does to the decoded payload.
 */
function scanEscapedString(b: Buffer, start: number, want: boolean): number {
  let end = start;
  for (;;) {
    const c = b[end];
    if (c === 0x22) break;
    if (c < 0x20) return NO;
    if (c === 0x5c) {
      if (end + 1 >= payloadEnd) return NO; // never past the sentinel
      end += 2; // the escaped byte is checked when unescaping
    } else {
      end++;
    }
  }
  const raw = b.toString('utf8', start, end);
  let out = '';
  let from = 0;
  for (let i = raw.indexOf('\\'); i >= 0; i = raw.indexOf('\\', from)) {
    out += raw.slice(from, i);
    let length = 2;
    switch (raw.charCodeAt(i + 1)) {
      case 0x22:
        out += '"';
        break;
      case 0x5c:
        out += '\\';
        break;
      case 0x2f:
        out += '/';
        break;
      case 0x62:
        out += '\b';
        break;
      case 0x66:
        out += '\f';
        break;
      case 0x6e:
        out += '\n';
        break;
      case 0x72:
        out += '\r';
        break;
      case 0x74:
        out += '\t';
        break;
      case 0x75: {
        // \uXXXX: one UTF-16 unit, a lone surrogate included (as JSON.parse).
        let unit = 0;
        for (let k = 2; k < 6; k++) {
          const d = hexDigit(raw.charCodeAt(i + k));
          if (d < 0) return NO;
          unit = unit * 16 + d;
        }
        out += String.fromCharCode(unit);
        length = 6;
        break;
      }
      default:
        return NO;
    }
    from = i + length;
  }
  if (want) scanned = out + raw.slice(from);
  return end + 1;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * A JSON number at `i`. Integers of up to 15 digits are computed while
 * scanning (exact: below 2^53); longer ones become ExactInteger; fractions and
 * exponents go through Number, which rounds the literal as JSON.parse does.
 * With `integerText`, an integer literal of up to 15 digits other than `-0` is
 * scanned as its text instead (see PropertyReader.integerText): JSON allows no
 * leading zeros or `+`, so that text is what String() of its value gives.
 */
function scanNumber(b: Buffer, i: number, want: boolean, integerText: boolean): number {
  const start = i;
  let c = b[i];
  const negative = c === 0x2d;
  if (negative) c = b[++i];
  let value = 0;
  if (c === 0x30) {
    c = b[++i];
  } else if (c >= 0x31 && c <= 0x39) {
    do {
      value = value * 10 + (c - 0x30);
      c = b[++i];
    } while (c >= 0x30 && c <= 0x39);
  } else {
    return NO;
  }
  const digits = i - start - (negative ? 1 : 0);
  let integer = true;
  if (c === 0x2e /* . */) {
    integer = false;
    if (!isDigit(b[++i])) return NO;
    while (isDigit(b[++i]));
    c = b[i];
  }
  if (c === 0x65 || c === 0x45 /* e E */) {
    integer = false;
    c = b[++i];
    if (c === 0x2b || c === 0x2d) c = b[++i];
    if (!isDigit(c)) return NO;
    while (isDigit(b[++i]));
  }
  if (want) {
    if (!integer) scanned = Number(asciiText(b, start, i));
    else if (digits <= 15) {
      if (integerText && !(negative && value === 0)) scanned = asciiText(b, start, i);
      else scanned = negative ? -value : value;
    } else scanned = new ExactInteger(asciiText(b, start, i));
  }
  return i;
}
