/**
 * Table pre-filter: skip, before decoding, edge events whose payload cannot contain
 * any of the wanted events. A speed optimisation for replays of a few tables; it must
 * never drop a wanted event, so it answers "maybe" (true) whenever it is not sure.
 *
 * Why it is safe. Let NAME be a wanted event name; names are restricted to
 * `[A-Za-z0-9_-]` (the schema loader's pattern). The transform (payload.ts) decodes
 * `data` by (1) URL-query unescaping, (2) base64 with the alphabet chosen by SPEC 1,
 * (3) bytes to text (UTF-8), (4) JSON. An event named NAME needs `"event"` to be a JSON *string*
 * equal to NAME (the original unmarshalled it into a Go string; a number is no name).
 * That string token sits between two real `"` bytes (a JSON string delimiter cannot
 * be escaped: `\"` is a character inside a string, never its end). Inside it, each
 * character is either itself or an escape; the only escape that can stand for a
 * character of `[A-Za-z0-9_-]` is `\u00XY` with X in 2..7 (those characters are
 * U+002D..U+007A; `\"` `\\` `\/` `\b` `\f` `\n` `\r` `\t` stand for others, and JSON
 * has no other escapes: JSON.parse and lossless-json reject `\U`, `\x`, ...). UTF-8
 * cannot produce those ASCII characters from anything but their own bytes (overlong
 * forms decode to U+FFFD). So the decoded bytes contain either
 *   (a) `"NAME"` (quotes included), or
 *   (b) `\u00XY`, the escape of one of NAME's characters (hex digits in either case).
 * (b) costs nothing in practice: JSON encoders do not escape ASCII letters, digits, `_`
 * or `-` (they escape control characters, `\u000X`/`\u001X`, and ensure_ascii-style
 * encoders non-ASCII, `\u00[8-f]X` and up), and at every alignment the fragments below
 * keep the X digit, so those other escapes do not match.
 *
 * Finding a byte string in base64 text without decoding: base64 turns each 3 bytes
 * into 4 characters of 6 bits. A needle that starts at byte offset p lies at bit
 * 8p; depending on p mod 3 (the three alignments), a fixed run of characters is
 * entirely made of the needle's bits, whatever the bytes around it. That run (the
 * "fragment") is a substring of the base64 text whenever the needle is in the decoded
 * bytes; so "no fragment of any needle in the text" proves "no needle in the bytes".
 * The fragments of the needles above consist of letters and digits only: every 6-bit
 * group made only of bits of `"`, `\`, `0`-`9`, `A-Z`, `a-z`, `_` or `-` is at most
 * 61 ('9'), never 62 or 63, the two values whose character differs between the
 * standard (`+` `/`), URL-safe (`-` `_`) and space (` ` `/`) alphabets. So one set of
 * fragments serves all three alphabets, and multi-event arrays need nothing special
 * (a substring search sees every event in the payload).
 *
 * The argument needs the text to be decoded character by character, each character
 * being one 6-bit group in order. Lenient decoders (Node's Buffer.from) skip characters
 * outside the alphabet and stop at the first `=`, which would shift or cut the groups;
 * payload.ts validates every character today, but the filter does not rely on that.
 * Hence a "no" is only given when the text (after URL-unescaping, if it contains `%`)
 * is entirely in one alphabet, with `=` only at the end:
 *   `[A-Za-z0-9_-]*=*`  (URL-safe)   or   `[A-Za-z0-9+/ ]*=*`  (standard / space).
 * Anything else (mixed alphabets, stray characters, a malformed `%` escape, `%`
 * escapes left after one unescape) is kept, and the decoder decides (and quarantines
 * it if it is malformed). In-alphabet text that decodes to nothing useful (bad JSON)
 * is dropped like any other line without a wanted event: with a table list, lines
 * that cannot carry those tables are neither decoded nor counted.
 *
 * Assumption: the transform looks event names up byte for byte (no case folding or
 * trimming). Names outside `[A-Za-z0-9_-]` would break the argument; if any is given,
 * the filter keeps everything.
 */

const SAFE_NAME = /^[A-Za-z0-9_-]+$/;
/** Base64 text in one alphabet, `=` only at the end (see the module comment). */
const STANDARD_TEXT = /^[A-Za-z0-9+/ ]*=*$/;
const URL_SAFE_TEXT = /^[A-Za-z0-9_-]*=*$/;

/** The JSON escapes that can stand for a character of the names: `\u00XY`, hex in both cases. */
function nameCharEscapes(names: readonly string[]): string[] {
  const escapes = new Set<string>();
  for (const name of names) {
    for (let i = 0; i < name.length; i++) {
      const hex = name.charCodeAt(i).toString(16).padStart(4, '0');
      escapes.add(`\\u${hex}`);
      escapes.add(`\\u${hex.toUpperCase()}`);
    }
  }
  return [...escapes];
}

/**
 * The base64 fragments of `needle` (ASCII), one per alignment (byte offset mod 3):
 * the characters made only of the needle's bits. Needs at least 2 bytes: a single byte
 * has no whole 6-bit group at alignment 1, so it could not be searched for.
 */
export function base64Fragments(needle: string): string[] {
  const bytes = Buffer.from(needle, 'latin1');
  if (bytes.length < 2) throw new RangeError(`base64Fragments needs at least 2 bytes, got ${JSON.stringify(needle)}`);
  const fragments: string[] = [];
  for (let align = 0; align < 3; align++) {
    const padded = Buffer.concat([Buffer.alloc(align), bytes]);
    const text = padded.toString('base64');
    // Character k holds bits [6k, 6k+6); the needle holds bits [8*align, 8*(align+len)).
    const first = Math.ceil((8 * align) / 6);
    const end = Math.floor((8 * (align + bytes.length)) / 6); // exclusive
    fragments.push(text.slice(first, end));
  }
  return fragments;
}

/** `%XX` → byte and `+` → space, as the transform does; null when malformed or not text. */
function queryUnescape(data: string): string | null {
  try {
    return decodeURIComponent(data.replaceAll('+', ' '));
  } catch {
    return null;
  }
}

/**
 * A predicate over the raw `data` of an edge event (before URL-unescaping and base64
 * decoding): false only when the payload certainly contains none of the named events.
 */
export function makePayloadFilter(tableNames: readonly string[]): (data: string) => boolean {
  if (tableNames.length === 0) throw new Error('makePayloadFilter needs at least one table name');
  if (!tableNames.every((name) => SAFE_NAME.test(name))) return () => true;

  const fragments = new Set<string>();
  for (const needle of [...tableNames.map((name) => `"${name}"`), ...nameCharEscapes(tableNames)]) {
    for (const fragment of base64Fragments(needle)) fragments.add(fragment);
  }
  // Fragments are letters and digits only: no escaping needed. One alternation, compiled
  // once, searched in native code (measured faster than a hand-written multi-pattern scan
  // and than one indexOf per fragment). No flags: `test` keeps no state between calls.
  const anyFragment = new RegExp([...fragments].sort().join('|'));
  const certainlyNone = (text: string): boolean =>
    !anyFragment.test(text) && (STANDARD_TEXT.test(text) || URL_SAFE_TEXT.test(text));

  return (data: string): boolean => {
    if (certainlyNone(data)) return false;
    if (data.indexOf('%') === -1) return true;
    const unescaped = queryUnescape(data);
    return unescaped === null || !certainlyNone(unescaped);
  };
}
