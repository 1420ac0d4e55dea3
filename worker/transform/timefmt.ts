/**
 * Timestamp output for the `f@timestamp@*` transformers, reproducing what the Go
 * Spade processor wrote (`time.Format("2006-01-02 15:04:05.999")` in
 * America/Los_Angeles or UTC):
 *
 *   `YYYY-MM-DD HH:MM:SS[.fff]`: the fraction is TRUNCATED (not rounded) to
 *   milliseconds, trailing zeros are dropped, and a bare `.` is dropped.
 *
 * Unix seconds are split the way Go did (`sec = trunc(x)`,
 * `nanos = int64((x - sec) * 1e9)`), with the same IEEE arithmetic, so
 * `1380585602.123` gives `.122` here exactly as it did in Go.
 *
 * Go time layouts (`f@timestamp@2006-01-02 15:04:05`) are compiled once into a
 * parser that follows Go's `time.ParseInLocation(layout, value, Pacific)`
 * followed by `Format`, including Go's quirks:
 * - a value without zone information is Pacific wall-clock; a wall-clock time in
 *   the skipped spring-forward hour is shifted back one hour (Go's `time.Date`:
 *   `2023-03-12 02:30:00` → `2023-03-12 01:30:00`), one in the repeated fall-back
 *   hour stays as written;
 * - a value WITH zone information (`Z`, `-07:00`, `UTC`, an unknown abbreviation)
 *   is formatted in that zone, i.e. its wall clock is kept as written (Go formats a
 *   parsed time in the zone it was parsed with); only the Pacific abbreviations
 *   PST/PDT (and the historical PWT/PPT/LMT) are converted to Pacific wall clock;
 * - leap seconds (`:60`) are rejected ("second out of range"), as are days that do
 *   not exist in their month;
 * - Go's hex float / RFC 3339 fast path does not change results and is not copied.
 *
 * Speed: these run for every event. The Pacific UTC offset is computed with Intl
 * once per hour bucket and cached per thread (module state); the date part of the
 * output is memoised per day; no regex, no Date objects, no luxon per event.
 */

export const PACIFIC_ZONE = 'America/Los_Angeles';

/** Seconds of the unix transformers' accepted range (Go: `seconds < 1e9 || seconds > 13140000000` is an error). */
export const UNIX_MIN_SECONDS = 1_000_000_000;
export const UNIX_MAX_SECONDS = 13_140_000_000;

// ---------------------------------------------------------------------------
// Civil calendar arithmetic (proleptic Gregorian, days since 1970-01-01)

/** Days since the epoch of a civil date (month 1-12). Howard Hinnant's algorithm. */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = month > 2 ? month - 3 : month + 9;
  const doy = Math.floor((153 * mp + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

const TWO_DIGITS: string[] = [];
for (let i = 0; i < 100; i++) TWO_DIGITS.push(i < 10 ? '0' + i : String(i));

function yearText(year: number): string {
  // Go appendInt(year, 4): zero-padded to 4 digits, sign first.
  const abs = year < 0 ? -year : year;
  let s = String(abs);
  if (s.length < 4) s = '0000'.slice(s.length) + s;
  return year < 0 ? '-' + s : s;
}

/** `YYYY-MM-DD` of a day number. */
function dateText(days: number): string {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return yearText(year) + '-' + TWO_DIGITS[month] + '-' + TWO_DIGITS[day];
}

// Events arrive roughly in time order, so the day text is nearly always the last one.
let memoDay = NaN;
let memoDayText = '';

/** `.f`, `.ff` or `.fff` for 1..999 ms (Go's `.999`: trailing zeros dropped). */
function millisText(ms: number): string {
  if (ms % 100 === 0) return '.' + ms / 100;
  if (ms % 10 === 0) return '.' + TWO_DIGITS[ms / 10];
  return '.' + (ms < 100 ? '0' + TWO_DIGITS[ms] : String(ms));
}

/**
 * Formats wall-clock seconds (an integer: seconds since 1970-01-01T00:00 of the
 * wall clock, i.e. instant + UTC offset) plus milliseconds.
 */
export function formatWallClock(wallSeconds: number, millis: number): string {
  const day = Math.floor(wallSeconds / 86400);
  if (day !== memoDay) {
    memoDayText = dateText(day) + ' ';
    memoDay = day;
  }
  const sod = wallSeconds - day * 86400;
  const h = Math.floor(sod / 3600);
  const rest = sod - h * 3600;
  const m = Math.floor(rest / 60);
  const s = rest - m * 60;
  const text = memoDayText + TWO_DIGITS[h] + ':' + TWO_DIGITS[m] + ':' + TWO_DIGITS[s];
  return millis === 0 ? text : text + millisText(millis);
}

// ---------------------------------------------------------------------------
// Pacific UTC offset

const offsetFormatter = new Intl.DateTimeFormat('en-US', {
  timeZone: PACIFIC_ZONE,
  hourCycle: 'h23',
  era: 'short',
  year: 'numeric',
  month: 'numeric',
  day: 'numeric',
  hour: 'numeric',
  minute: 'numeric',
  second: 'numeric',
});

/** Exact Pacific offset (seconds east of UTC, so negative) at an integral unix second. Slow: Intl. */
function computePacificOffset(unixSeconds: number): number {
  let year = 0;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let bc = false;
  for (const part of offsetFormatter.formatToParts(unixSeconds * 1000)) {
    switch (part.type) {
      case 'year':
        year = Number(part.value);
        break;
      case 'month':
        month = Number(part.value);
        break;
      case 'day':
        day = Number(part.value);
        break;
      case 'hour':
        hour = Number(part.value);
        break;
      case 'minute':
        minute = Number(part.value);
        break;
      case 'second':
        second = Number(part.value);
        break;
      case 'era':
        bc = part.value.startsWith('B');
        break;
    }
  }
  if (bc) year = 1 - year;
  const wall = daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
  return wall - unixSeconds;
}

const HOUR_CACHE_LIMIT = 200_000;
const offsetByHour = new Map<number, number>();
let memoHour = NaN;
let memoOffset = 0;

/**
 * Pacific UTC offset in seconds (e.g. -28800 for PST) at a unix time. Cached per
 * UTC hour: Pacific transitions happen on UTC hour boundaries (an hour bucket
 * that does contain a change is detected and not cached).
 */
export function pacificOffsetSeconds(unixSeconds: number): number {
  const hour = Math.floor(unixSeconds / 3600);
  if (hour === memoHour) return memoOffset;
  let offset = offsetByHour.get(hour);
  if (offset === undefined) {
    const start = hour * 3600;
    offset = computePacificOffset(start);
    if (computePacificOffset(start + 3599) !== offset) return computePacificOffset(Math.floor(unixSeconds));
    if (offsetByHour.size >= HOUR_CACHE_LIMIT) offsetByHour.clear();
    offsetByHour.set(hour, offset);
  }
  memoHour = hour;
  memoOffset = offset;
  return offset;
}

// ---------------------------------------------------------------------------
// Unix seconds → text

// Set by splitUnix: Go's time.Unix(int64(trunc(x)), int64((x - trunc(x)) * 1e9)), normalised.
let splitSeconds = 0;
let splitMillis = 0;

function splitUnix(x: number): void {
  let sec = Math.trunc(x);
  let nanos = Math.trunc((x - sec) * 1e9);
  if (nanos < 0) {
    nanos += 1e9;
    sec -= 1;
  }
  splitSeconds = sec;
  splitMillis = Math.floor(nanos / 1e6);
}

/** US Pacific wall clock of a unix time in seconds (fraction allowed): `YYYY-MM-DD HH:MM:SS[.fff]`. */
export function formatPacific(unixSeconds: number): string {
  splitUnix(unixSeconds);
  return formatWallClock(splitSeconds + pacificOffsetSeconds(splitSeconds), splitMillis);
}

/** UTC wall clock of a unix time in seconds, same format as formatPacific. */
export function formatUtc(unixSeconds: number): string {
  splitUnix(unixSeconds);
  return formatWallClock(splitSeconds, splitMillis);
}

/**
 * The `f@timestamp@unix` / `unix-utc` conversion: null (column error) unless
 * `trunc(x)` is within [1e9, 1.314e10], as in Go.
 */
export function unixToText(x: number, utc: boolean): string | null {
  const sec = Math.trunc(x);
  if (!(sec >= UNIX_MIN_SECONDS && sec <= UNIX_MAX_SECONDS)) return null;
  return utc ? formatUtc(x) : formatPacific(x);
}

/**
 * Go's `time.Date(fields, Pacific)`: the instant of a Pacific wall-clock time.
 * Skipped (spring-forward) times resolve one hour earlier, repeated (fall-back)
 * times to the first (daylight) instant: `unix = U - off(U - off(U))`.
 */
export function goPacificDate(wallSeconds: number): number {
  return wallSeconds - pacificOffsetSeconds(wallSeconds - pacificOffsetSeconds(wallSeconds));
}

// ---------------------------------------------------------------------------
// Go layouts

const STD_LONG_MONTH = 1; // January
const STD_MONTH = 2; // Jan
const STD_NUM_MONTH = 3; // 1
const STD_ZERO_MONTH = 4; // 01
const STD_LONG_WEEKDAY = 5; // Monday
const STD_WEEKDAY = 6; // Mon
const STD_DAY = 7; // 2
const STD_UNDER_DAY = 8; // _2
const STD_ZERO_DAY = 9; // 02
const STD_UNDER_YEARDAY = 10; // __2
const STD_ZERO_YEARDAY = 11; // 002
const STD_HOUR = 12; // 15
const STD_HOUR12 = 13; // 3
const STD_ZERO_HOUR12 = 14; // 03
const STD_MINUTE = 15; // 4
const STD_ZERO_MINUTE = 16; // 04
const STD_SECOND = 17; // 5
const STD_ZERO_SECOND = 18; // 05
const STD_LONG_YEAR = 19; // 2006
const STD_YEAR = 20; // 06
const STD_PM = 21; // PM
const STD_pm = 22; // pm
const STD_TZ = 23; // MST
const STD_ISO8601_TZ = 24; // Z0700
const STD_ISO8601_SECONDS_TZ = 25; // Z070000
const STD_ISO8601_SHORT_TZ = 26; // Z07
const STD_ISO8601_COLON_TZ = 27; // Z07:00
const STD_ISO8601_COLON_SECONDS_TZ = 28; // Z07:00:00
const STD_NUM_TZ = 29; // -0700
const STD_NUM_SECONDS_TZ = 30; // -070000
const STD_NUM_SHORT_TZ = 31; // -07
const STD_NUM_COLON_TZ = 32; // -07:00
const STD_NUM_COLON_SECONDS_TZ = 33; // -07:00:00
const STD_FRAC_SECOND0 = 34; // .000
const STD_FRAC_SECOND9 = 35; // .999

const STD_ZERO_X = [STD_ZERO_MONTH, STD_ZERO_DAY, STD_ZERO_HOUR12, STD_ZERO_MINUTE, STD_ZERO_SECOND, STD_YEAR];

interface LayoutChunk {
  /** Literal text expected before the element. */
  prefix: string;
  std: number;
  /** Digits of a fractional-second element. */
  fracDigits: number;
  /** For a seconds element: the next element is a fractional second (Go's special case). */
  nextIsFrac: boolean;
}

interface StdChunk {
  prefixEnd: number;
  std: number;
  suffixStart: number;
  fracDigits: number;
}

function isDigitAt(s: string, i: number): boolean {
  if (i >= s.length) return false;
  const c = s.charCodeAt(i);
  return c >= 48 && c <= 57;
}

function isLowerAt(s: string, i: number): boolean {
  if (i >= s.length) return false;
  const c = s.charCodeAt(i);
  return c >= 97 && c <= 122;
}

/** Go's nextStdChunk, over layout[from:]. */
function nextStdChunk(layout: string, from: number): StdChunk {
  const n = layout.length;
  const found = (i: number, std: number, len: number, fracDigits = 0): StdChunk => ({
    prefixEnd: i,
    std,
    suffixStart: i + len,
    fracDigits,
  });
  for (let i = from; i < n; i++) {
    const c = layout[i];
    switch (c) {
      case 'J':
        if (layout.startsWith('Jan', i)) {
          if (layout.startsWith('January', i)) return found(i, STD_LONG_MONTH, 7);
          if (!isLowerAt(layout, i + 3)) return found(i, STD_MONTH, 3);
        }
        break;
      case 'M':
        if (layout.startsWith('Mon', i)) {
          if (layout.startsWith('Monday', i)) return found(i, STD_LONG_WEEKDAY, 6);
          if (!isLowerAt(layout, i + 3)) return found(i, STD_WEEKDAY, 3);
        }
        if (layout.startsWith('MST', i)) return found(i, STD_TZ, 3);
        break;
      case '0': {
        const d = i + 1 < n ? layout.charCodeAt(i + 1) : 0;
        if (d >= 49 && d <= 54) return found(i, STD_ZERO_X[d - 49]!, 2);
        if (layout.startsWith('002', i)) return found(i, STD_ZERO_YEARDAY, 3);
        break;
      }
      case '1':
        if (layout[i + 1] === '5') return found(i, STD_HOUR, 2);
        return found(i, STD_NUM_MONTH, 1);
      case '2':
        if (layout.startsWith('2006', i)) return found(i, STD_LONG_YEAR, 4);
        return found(i, STD_DAY, 1);
      case '_':
        if (layout[i + 1] === '2') {
          // `_2006` is a literal `_` followed by the long year.
          if (layout.startsWith('2006', i + 1)) return found(i + 1, STD_LONG_YEAR, 4);
          return found(i, STD_UNDER_DAY, 2);
        }
        if (layout.startsWith('__2', i)) return found(i, STD_UNDER_YEARDAY, 3);
        break;
      case '3':
        return found(i, STD_HOUR12, 1);
      case '4':
        return found(i, STD_MINUTE, 1);
      case '5':
        return found(i, STD_SECOND, 1);
      case 'P':
        if (layout[i + 1] === 'M') return found(i, STD_PM, 2);
        break;
      case 'p':
        if (layout[i + 1] === 'm') return found(i, STD_pm, 2);
        break;
      case '-':
        if (layout.startsWith('-070000', i)) return found(i, STD_NUM_SECONDS_TZ, 7);
        if (layout.startsWith('-07:00:00', i)) return found(i, STD_NUM_COLON_SECONDS_TZ, 9);
        if (layout.startsWith('-0700', i)) return found(i, STD_NUM_TZ, 5);
        if (layout.startsWith('-07:00', i)) return found(i, STD_NUM_COLON_TZ, 6);
        if (layout.startsWith('-07', i)) return found(i, STD_NUM_SHORT_TZ, 3);
        break;
      case 'Z':
        if (layout.startsWith('Z070000', i)) return found(i, STD_ISO8601_SECONDS_TZ, 7);
        if (layout.startsWith('Z07:00:00', i)) return found(i, STD_ISO8601_COLON_SECONDS_TZ, 9);
        if (layout.startsWith('Z0700', i)) return found(i, STD_ISO8601_TZ, 5);
        if (layout.startsWith('Z07:00', i)) return found(i, STD_ISO8601_COLON_TZ, 6);
        if (layout.startsWith('Z07', i)) return found(i, STD_ISO8601_SHORT_TZ, 3);
        break;
      case '.':
      case ',': {
        const ch = layout[i + 1];
        if (ch === '0' || ch === '9') {
          let j = i + 1;
          while (j < n && layout[j] === ch) j++;
          // Only a fractional second if the run of digits ends here.
          if (!isDigitAt(layout, j)) {
            return found(i, ch === '0' ? STD_FRAC_SECOND0 : STD_FRAC_SECOND9, j - i, j - (i + 1));
          }
        }
        break;
      }
    }
  }
  return { prefixEnd: n, std: 0, suffixStart: n, fracDigits: 0 };
}

function compileChunks(layout: string): { chunks: LayoutChunk[]; tail: string } {
  const chunks: LayoutChunk[] = [];
  let pos = 0;
  for (;;) {
    const c = nextStdChunk(layout, pos);
    if (c.std === 0) return { chunks, tail: layout.slice(pos) };
    let nextIsFrac = false;
    if (c.std === STD_SECOND || c.std === STD_ZERO_SECOND) {
      const next = nextStdChunk(layout, c.suffixStart).std;
      nextIsFrac = next === STD_FRAC_SECOND0 || next === STD_FRAC_SECOND9;
    }
    chunks.push({ prefix: layout.slice(pos, c.prefixEnd), std: c.std, fracDigits: c.fracDigits, nextIsFrac });
    pos = c.suffixStart;
  }
}

const SHORT_MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const LONG_MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
const SHORT_DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const LONG_DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** Zone abbreviations America/Los_Angeles has used, with their offsets (Go's Location.lookupName). */
const PACIFIC_ABBREVIATIONS: Record<string, number> = {
  PST: -28800,
  PDT: -25200,
  PWT: -25200,
  PPT: -25200,
  LMT: -28378,
};

const DAYS_BEFORE = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];

function isLeap(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

function daysIn(month: number, year: number): number {
  if (month === 2 && isLeap(year)) return 29;
  return DAYS_BEFORE[month]! - DAYS_BEFORE[month - 1]!;
}

// Scratch results of the small scanners below (avoids allocating tuples per call).
let numValue = 0;

/** Go getnum: one or two digits (exactly two when fixed). Returns the new position or -1. */
function getnum(s: string, p: number, fixed: boolean): number {
  if (!isDigitAt(s, p)) return -1;
  if (!isDigitAt(s, p + 1)) {
    if (fixed) return -1;
    numValue = s.charCodeAt(p) - 48;
    return p + 1;
  }
  numValue = (s.charCodeAt(p) - 48) * 10 + (s.charCodeAt(p + 1) - 48);
  return p + 2;
}

/** Go getnum3: one to three digits (exactly three when fixed). */
function getnum3(s: string, p: number, fixed: boolean): number {
  let n = 0;
  let i = 0;
  while (i < 3 && isDigitAt(s, p + i)) {
    n = n * 10 + (s.charCodeAt(p + i) - 48);
    i++;
  }
  if (i === 0 || (fixed && i !== 3)) return -1;
  numValue = n;
  return p + i;
}

/** Go atoi over s[from:to]: optional sign, then digits only (an empty digit run is 0, as in Go). */
function goAtoi(s: string, from: number, to: number): boolean {
  let i = from;
  let neg = false;
  if (i < to && (s[i] === '-' || s[i] === '+')) {
    neg = s[i] === '-';
    i++;
  }
  let x = 0;
  for (; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
    x = x * 10 + (c - 48);
    if (x > 9.2e18) return false;
  }
  numValue = neg ? -x : x;
  return true;
}

/** Case-insensitive prefix match against a name table (Go lookup). Returns the new position or -1. */
function lookupName(table: string[], s: string, p: number): number {
  for (let k = 0; k < table.length; k++) {
    const name = table[k]!;
    if (s.length - p < name.length) continue;
    let ok = true;
    for (let i = 0; i < name.length; i++) {
      let c1 = s.charCodeAt(p + i);
      let c2 = name.charCodeAt(i);
      if (c1 !== c2) {
        c1 |= 32;
        c2 |= 32;
        if (c1 !== c2 || c1 < 97 || c1 > 122) {
          ok = false;
          break;
        }
      }
    }
    if (ok) {
      numValue = k;
      return p + name.length;
    }
  }
  return -1;
}

/** Go skip: match a literal; a space in the layout matches any run of spaces (at least one unless at end). */
function skipLiteral(value: string, p: number, prefix: string): number {
  let i = 0;
  while (i < prefix.length) {
    if (prefix.charCodeAt(i) === 32) {
      if (p < value.length && value.charCodeAt(p) !== 32) return -1;
      while (i < prefix.length && prefix.charCodeAt(i) === 32) i++;
      while (p < value.length && value.charCodeAt(p) === 32) p++;
      continue;
    }
    if (p >= value.length || value.charCodeAt(p) !== prefix.charCodeAt(i)) return -1;
    i++;
    p++;
  }
  return p;
}

/** Go parseNanoseconds over value[p : p+nbytes] (separator included). Sets numValue to nanoseconds. */
function parseNanos(value: string, p: number, nbytes: number): boolean {
  const sep = value.charCodeAt(p);
  if (sep !== 46 && sep !== 44) return false;
  if (nbytes > 10) nbytes = 10;
  if (!goAtoi(value, p + 1, p + nbytes)) return false;
  if (numValue < 0) return false;
  for (let i = 0; i < 10 - nbytes; i++) numValue *= 10;
  return true;
}

/** Length of a zone abbreviation at value[p:] (Go parseTimeZone), or 0. */
function zoneNameLength(value: string, p: number): number {
  const rest = value.length - p;
  if (rest < 3) return 0;
  if (value.startsWith('ChST', p) || value.startsWith('MeST', p)) return 4;
  if (value.startsWith('GMT', p)) {
    if (rest === 3) return 3;
    return 3 + signedOffsetLength(value, p + 3);
  }
  const c0 = value[p];
  if (c0 === '+' || c0 === '-') return signedOffsetLength(value, p);
  let upper = 0;
  while (upper < 6 && p + upper < value.length) {
    const c = value.charCodeAt(p + upper);
    if (c < 65 || c > 90) break;
    upper++;
  }
  switch (upper) {
    case 3:
      return 3;
    case 4:
      return value[p + 3] === 'T' || value.startsWith('WITA', p) ? 4 : 0;
    case 5:
      return value[p + 4] === 'T' ? 5 : 0;
    default:
      return 0;
  }
}

/** Go parseSignedOffset: `+N`/`-N` with N in 0..23; its length or 0. */
function signedOffsetLength(value: string, p: number): number {
  if (p >= value.length) return 0;
  const sign = value[p];
  if (sign !== '-' && sign !== '+') return 0;
  let i = p + 1;
  let x = 0;
  while (isDigitAt(value, i)) {
    x = x * 10 + (value.charCodeAt(i) - 48);
    if (x > 1e15) return 0;
    i++;
  }
  if (i === p + 1 || x > 23) return 0;
  return i - p;
}

/** A compiled Go layout: text → output timestamp text, or null when Go's parse would fail. */
export type LayoutParser = (value: string) => string | null;

/**
 * Compiles a Go time layout (reference time `Mon Jan 2 15:04:05 MST 2006`) into a
 * parser producing the transformer's output text (see the file comment for the
 * zone rules). Every layout compiles; a layout without elements matches only its
 * literal text (as in Go).
 */
export function compileGoLayout(layout: string): LayoutParser {
  const { chunks, tail } = compileChunks(layout);
  const count = chunks.length;

  return (value: string): string | null => {
    let p = 0;
    let year = 0;
    let month = -1;
    let day = -1;
    let yday = -1;
    let hour = 0;
    let min = 0;
    let sec = 0;
    let nsec = 0;
    let utc = false;
    let hasOffset = false;
    let zoneName = '';
    let amSet = false;
    let pmSet = false;

    for (let k = 0; k < count; k++) {
      const chunk = chunks[k]!;
      p = skipLiteral(value, p, chunk.prefix);
      if (p < 0) return null;
      const std = chunk.std;
      switch (std) {
        case STD_YEAR:
          if (value.length - p < 2 || !goAtoi(value, p, p + 2)) return null;
          year = numValue >= 69 ? numValue + 1900 : numValue + 2000;
          p += 2;
          break;
        case STD_LONG_YEAR:
          if (value.length - p < 4 || !isDigitAt(value, p) || !goAtoi(value, p, p + 4)) return null;
          year = numValue;
          p += 4;
          break;
        case STD_MONTH:
        case STD_LONG_MONTH:
          p = lookupName(std === STD_MONTH ? SHORT_MONTHS : LONG_MONTHS, value, p);
          if (p < 0) return null;
          month = numValue + 1;
          break;
        case STD_NUM_MONTH:
        case STD_ZERO_MONTH:
          p = getnum(value, p, std === STD_ZERO_MONTH);
          if (p < 0 || numValue <= 0 || numValue > 12) return null;
          month = numValue;
          break;
        case STD_WEEKDAY:
        case STD_LONG_WEEKDAY:
          // Checked for syntax only, as in Go.
          p = lookupName(std === STD_WEEKDAY ? SHORT_DAYS : LONG_DAYS, value, p);
          if (p < 0) return null;
          break;
        case STD_DAY:
        case STD_UNDER_DAY:
        case STD_ZERO_DAY:
          if (std === STD_UNDER_DAY && value.charCodeAt(p) === 32) p++;
          p = getnum(value, p, std === STD_ZERO_DAY);
          if (p < 0) return null;
          day = numValue;
          break;
        case STD_UNDER_YEARDAY:
        case STD_ZERO_YEARDAY:
          for (let i = 0; i < 2; i++) if (std === STD_UNDER_YEARDAY && value.charCodeAt(p) === 32) p++;
          p = getnum3(value, p, std === STD_ZERO_YEARDAY);
          if (p < 0) return null;
          yday = numValue;
          break;
        case STD_HOUR:
          p = getnum(value, p, false);
          if (p < 0 || numValue >= 24) return null;
          hour = numValue;
          break;
        case STD_HOUR12:
        case STD_ZERO_HOUR12:
          p = getnum(value, p, std === STD_ZERO_HOUR12);
          if (p < 0 || numValue > 12) return null;
          hour = numValue;
          break;
        case STD_MINUTE:
        case STD_ZERO_MINUTE:
          p = getnum(value, p, std === STD_ZERO_MINUTE);
          if (p < 0 || numValue >= 60) return null;
          min = numValue;
          break;
        case STD_SECOND:
        case STD_ZERO_SECOND: {
          p = getnum(value, p, std === STD_ZERO_SECOND);
          // 60 (a leap second) is out of range, as in Go.
          if (p < 0 || numValue >= 60) return null;
          sec = numValue;
          // A fraction in the value but not in the layout is still accepted (Go's special case).
          const sep = value.charCodeAt(p);
          if (!chunk.nextIsFrac && (sep === 46 || sep === 44) && isDigitAt(value, p + 1)) {
            let n = 2;
            while (isDigitAt(value, p + n)) n++;
            if (!parseNanos(value, p, n)) return null;
            nsec = numValue;
            p += n;
          }
          break;
        }
        case STD_PM:
        case STD_pm: {
          if (value.length - p < 2) return null;
          const mark = value.slice(p, p + 2);
          p += 2;
          if (mark === (std === STD_PM ? 'PM' : 'pm')) pmSet = true;
          else if (mark === (std === STD_PM ? 'AM' : 'am')) amSet = true;
          else return null;
          break;
        }
        case STD_ISO8601_TZ:
        case STD_ISO8601_SHORT_TZ:
        case STD_ISO8601_COLON_TZ:
        case STD_ISO8601_SECONDS_TZ:
        case STD_ISO8601_COLON_SECONDS_TZ:
        case STD_NUM_TZ:
        case STD_NUM_SHORT_TZ:
        case STD_NUM_COLON_TZ:
        case STD_NUM_SECONDS_TZ:
        case STD_NUM_COLON_SECONDS_TZ: {
          // The ISO 8601 forms (Z0700...) also accept a bare `Z` for UTC.
          if (std <= STD_ISO8601_COLON_SECONDS_TZ && value[p] === 'Z') {
            p++;
            utc = true;
            break;
          }
          const q = parseNumericZone(value, p, std);
          if (q < 0) return null;
          p = q;
          hasOffset = true;
          break;
        }
        case STD_TZ: {
          if (value.startsWith('UTC', p)) {
            utc = true;
            p += 3;
            break;
          }
          const n = zoneNameLength(value, p);
          if (n === 0) return null;
          zoneName = value.slice(p, p + n);
          p += n;
          break;
        }
        case STD_FRAC_SECOND0: {
          // Exactly as many digits as the layout has.
          const nbytes = 1 + chunk.fracDigits;
          if (value.length - p < nbytes || !parseNanos(value, p, nbytes)) return null;
          nsec = numValue;
          p += nbytes;
          break;
        }
        case STD_FRAC_SECOND9: {
          const sep = value.charCodeAt(p);
          if (value.length - p < 2 || (sep !== 46 && sep !== 44) || !isDigitAt(value, p + 1)) break; // omitted
          let i = 0;
          while (isDigitAt(value, p + i + 1)) i++;
          if (!parseNanos(value, p, 1 + i)) return null;
          nsec = numValue;
          p += 1 + i;
          break;
        }
      }
    }
    p = skipLiteral(value, p, tail);
    if (p < 0 || p !== value.length) return null;

    if (pmSet && hour < 12) hour += 12;
    else if (amSet && hour === 12) hour = 0;

    if (yday >= 0) {
      let m = 0;
      let d = 0;
      if (isLeap(year)) {
        if (yday === 31 + 29) {
          m = 2;
          d = 29;
        } else if (yday > 31 + 29) {
          yday--;
        }
      }
      if (yday < 1 || yday > 365) return null;
      if (m === 0) {
        m = Math.floor((yday - 1) / 31) + 1;
        if (DAYS_BEFORE[m]! < yday) m++;
        d = yday - DAYS_BEFORE[m - 1]!;
      }
      if (month >= 0 && month !== m) return null;
      month = m;
      if (day >= 0 && day !== d) return null;
      day = d;
    } else {
      if (month < 0) month = 1;
      if (day < 0) day = 1;
    }
    if (day < 1 || day > daysIn(month, year)) return null;

    const fields = daysFromCivil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec;
    let wall = fields;
    if (!utc && !hasOffset) {
      if (zoneName === '') {
        const instant = goPacificDate(fields);
        wall = instant + pacificOffsetSeconds(instant);
      } else {
        const offset = PACIFIC_ABBREVIATIONS[zoneName];
        if (offset !== undefined) {
          const instant = fields - offset;
          wall = instant + pacificOffsetSeconds(instant);
        }
      }
    }
    return formatWallClock(wall, Math.floor(nsec / 1e6));
  };
}

/** Parses a numeric zone offset element at value[p:]; returns the new position or -1. */
function parseNumericZone(value: string, p: number, std: number): number {
  const rest = value.length - p;
  let hh: number;
  let mm = -1;
  let ss = -1;
  let end: number;
  if (std === STD_ISO8601_COLON_TZ || std === STD_NUM_COLON_TZ) {
    if (rest < 6 || value[p + 3] !== ':') return -1;
    hh = p + 1;
    mm = p + 4;
    end = p + 6;
  } else if (std === STD_NUM_SHORT_TZ || std === STD_ISO8601_SHORT_TZ) {
    if (rest < 3) return -1;
    hh = p + 1;
    end = p + 3;
  } else if (std === STD_ISO8601_COLON_SECONDS_TZ || std === STD_NUM_COLON_SECONDS_TZ) {
    if (rest < 9 || value[p + 3] !== ':' || value[p + 6] !== ':') return -1;
    hh = p + 1;
    mm = p + 4;
    ss = p + 7;
    end = p + 9;
  } else if (std === STD_ISO8601_SECONDS_TZ || std === STD_NUM_SECONDS_TZ) {
    if (rest < 7) return -1;
    hh = p + 1;
    mm = p + 3;
    ss = p + 5;
    end = p + 7;
  } else {
    if (rest < 5) return -1;
    hh = p + 1;
    mm = p + 3;
    end = p + 5;
  }
  // Each field is exactly two digits (getnum fixed over a two-character slice).
  if (!isDigitAt(value, hh) || !isDigitAt(value, hh + 1)) return -1;
  const hours = (value.charCodeAt(hh) - 48) * 10 + (value.charCodeAt(hh + 1) - 48);
  let minutes = 0;
  let seconds = 0;
  if (mm >= 0) {
    if (!isDigitAt(value, mm) || !isDigitAt(value, mm + 1)) return -1;
    minutes = (value.charCodeAt(mm) - 48) * 10 + (value.charCodeAt(mm + 1) - 48);
  }
  if (ss >= 0) {
    if (!isDigitAt(value, ss) || !isDigitAt(value, ss + 1)) return -1;
    seconds = (value.charCodeAt(ss) - 48) * 10 + (value.charCodeAt(ss + 1) - 48);
  }
  // Go's range test uses > (offsets of 24h / 60m / 60s are accepted).
  if (hours > 24 || minutes > 60 || seconds > 60) return -1;
  const sign = value[p];
  if (sign !== '+' && sign !== '-') return -1;
  return end;
}
