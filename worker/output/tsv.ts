/**
 * Field and row encoding of the warehouse row files (SPEC section 3).
 *
 * A row is UTF-8 text: fields joined by TAB, ended by LF. Inside a field a
 * backslash, TAB, LF or CR is preceded by a backslash (the real byte follows the
 * backslash: Redshift's ESCAPE has no `\n`-style letters, it simply makes the
 * next character literal, and PostgreSQL's text COPY maps a backslashed
 * character it has no special meaning for to itself). NUL cannot be loaded by
 * Redshift at all (it ends the record), so it becomes U+FFFD. NULL and the empty
 * string are both an empty field: the loaders turn empty fields into NULL
 * (Redshift EMPTYASNULL, PostgreSQL `NULL ''`), as the original pipeline did.
 *
 * Lone UTF-16 surrogates (possible in a JS string, impossible in UTF-8) are left
 * in the string here; the UTF-8 encoder that turns rows into bytes
 * (`Buffer.from(text, 'utf8')`) replaces each with U+FFFD. Rows are only ever
 * encoded to bytes whole, so a surrogate pair is never split across chunks.
 *
 * See `redshift-copy.ts` for the COPY options that decode exactly this.
 */

const BACKSLASH = 0x5c;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const NUL = 0x00;

/**
 * Field strings come in many of V8's string representations: see
 * transform/payload-scan.ts on why characters are read with `charCodeAt.call`
 * through a constant of this module.
 */
const charCodeAt = String.prototype.charCodeAt;

/** Encodes one non-null value. Returns the input itself when nothing needs escaping (the common case). */
export function encodeField(value: string): string {
  const len = value.length;
  for (let i = 0; i < len; i++) {
    const c = charCodeAt.call(value, i);
    // One comparison for almost every character: all specials are <= 0x5c, and
    // everything in 0x0e..0x5b except the backslash is plain.
    if (c < 0x0e ? c === TAB || c === LF || c === CR || c === NUL : c === BACKSLASH) {
      return escapeFrom(value, i);
    }
  }
  return value;
}

/** Slow path: `first` is the index of the first character that needs work. */
function escapeFrom(value: string, first: number): string {
  const len = value.length;
  let out = '';
  let runStart = 0;
  for (let i = first; i < len; i++) {
    const c = charCodeAt.call(value, i);
    if (c === BACKSLASH || c === TAB || c === LF || c === CR) {
      out += value.slice(runStart, i) + '\\' + value[i];
      runStart = i + 1;
    } else if (c === NUL) {
      out += value.slice(runStart, i) + '\uFFFD';
      runStart = i + 1;
    }
  }
  return out + value.slice(runStart);
}

/**
 * Encodes one row: fields joined by TAB, ended by LF. `null` and `''` are both
 * written as an empty field (both load as NULL). Where `plainColumns[i]` is
 * true the caller guarantees field i holds nothing to escape (a number, a
 * timestamp) and it is not scanned.
 */
export function encodeRow(fields: readonly (string | null)[], plainColumns?: readonly boolean[]): string {
  return encodeRowText(fields, plainColumns) + '\n';
}

/**
 * `encodeRow` without the final LF, as one flat string: what the output
 * writers copy into their buffers, adding the LF byte themselves.
 */
export function encodeRowText(fields: readonly (string | null)[], plainColumns?: readonly boolean[]): string {
  const n = fields.length;
  // A copy only for rows with something to escape; join then copies every field
  // once into one flat string (null joins as ''), where += would allocate a
  // string per field.
  let escaped: (string | null)[] | null = null;
  for (let i = 0; i < n; i++) {
    const f = fields[i];
    if (!f || (plainColumns !== undefined && plainColumns[i])) continue;
    const e = encodeField(f);
    if (e !== f) (escaped ??= fields.slice())[i] = e;
  }
  return (escaped ?? fields).join('\t');
}

/**
 * Decodes one row (with or without its final LF) back into fields; an empty
 * field is `null`. The inverse of `encodeRow` up to the documented
 * substitutions. For tests and salvage tools, not the load path.
 */
export function decodeRow(line: string): (string | null)[] {
  let end = line.length;
  // A final LF ends the row unless it is itself escaped (an odd number of backslashes before it).
  if (end > 0 && line.charCodeAt(end - 1) === LF) {
    let backslashes = 0;
    for (let j = end - 2; j >= 0 && line.charCodeAt(j) === BACKSLASH; j--) backslashes++;
    if (backslashes % 2 === 0) end--;
  }
  const fields: (string | null)[] = [];
  let cur = '';
  let runStart = 0;
  for (let i = 0; i < end; i++) {
    const c = line.charCodeAt(i);
    if (c === BACKSLASH) {
      if (i + 1 >= end) throw new Error(`decodeRow: dangling backslash at the end of the row (offset ${i})`);
      cur += line.slice(runStart, i) + line[i + 1];
      i++;
      runStart = i + 1;
    } else if (c === TAB) {
      cur += line.slice(runStart, i);
      fields.push(cur === '' ? null : cur);
      cur = '';
      runStart = i + 1;
    } else if (c === LF || c === CR) {
      throw new Error(`decodeRow: unescaped ${c === LF ? 'LF' : 'CR'} inside a row (offset ${i})`);
    }
  }
  cur += line.slice(runStart, end);
  fields.push(cur === '' ? null : cur);
  return fields;
}
