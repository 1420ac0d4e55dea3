/**
 * COPY options that decode the row files written by `tsv.ts` exactly.
 *
 * The encoding (SPEC section 3): UTF-8; fields separated by TAB; rows ended by
 * LF; inside a field `\` -> `\\`, TAB -> `\`+TAB, LF -> `\`+LF, CR -> `\`+CR;
 * NUL -> U+FFFD; NULL and '' -> empty field; gzip-compressed.
 *
 * Redshift, option by option (facts from the Redshift COPY manual, as recorded in SPEC section 3):
 * - `GZIP`: the files are gzip streams.
 * - `DELIMITER '\t'`: fields are separated by TAB. A TAB inside a value is
 *   always preceded by a backslash, so it cannot split a field.
 * - `ESCAPE`: "a backslash makes the next character literal". That is exactly
 *   our encoding: `\\` loads `\`, `\`+TAB loads TAB, `\`+LF loads LF (an
 *   embedded newline must be written as backslash + the real LF byte; there are
 *   no `\n`, octal, hex or `\u` escapes, so we never write any). We never write a
 *   backslash before anything else.
 * - `NULL AS '\0'`: with ESCAPE, the default null string `\N` would make both
 *   `\N` and `\\N` load NULL, i.e. a real value `\N` (written `\\N`) would be
 *   lost. The manual's own way to name NUL as the null string is
 *   `null as '\0'`; NUL never occurs in our files (it is replaced by U+FFFD,
 *   because Redshift cannot load NUL at all), so no field ever matches it.
 * - `EMPTYASNULL`: empty CHAR/VARCHAR fields load as NULL (empty non-character
 *   fields are always NULL). We write NULL and '' as an empty field; the live
 *   pipeline loaded '' as NULL too (it used EMPTYASNULL), so a replay matches it.
 * - `TIMEFORMAT 'auto'`: our timestamps are `YYYY-MM-DD HH:MM:SS[.fff]`;
 *   'auto' accepts the optional fraction. It only applies to TIMESTAMP columns.
 * - `COMPUPDATE OFF STATUPDATE OFF`: we load a temp table that is copied into
 *   the real one; compression analysis and statistics there are wasted time.
 *   Neither affects values.
 *
 * Options of the original COPY that we deliberately leave out:
 * - `REMOVEQUOTES`: the original wrapped every value in quotes; we never
 *   write quotes, so it would strip real quote characters from values.
 * - `TRIMBLANKS`: would drop real trailing blanks from VARCHAR values.
 * - `ACCEPTINVCHARS '?'`: we only write valid UTF-8 (NUL -> U+FFFD, lone
 *   surrogates -> U+FFFD by the UTF-8 encoder, every character at most 4 bytes,
 *   which is what VARCHAR accepts). Worse, the manual says that with
 *   ACCEPTINVCHARS the valid-UTF-8 non-characters (U+FDD0..U+FDEF and every
 *   U+xFFFE / U+xFFFF) are replaced by the replacement character, while
 *   without it they load as they are. Leaving it out keeps them exact, and a
 *   truly invalid byte (a bug) fails the load loudly instead of turning into '?'.
 * - `TRUNCATECOLUMNS`: the transformer already cuts VARCHAR values to the
 *   column's byte width (Redshift VARCHAR(n) counts bytes), on a character
 *   boundary. Without it a too-long value (a bug) fails the load instead of
 *   being cut silently, possibly inside a multi-byte character.
 * - `ROUNDEC`: only affects DECIMAL columns; our float columns are FLOAT
 *   (double precision) and written as shortest round-trip decimals.
 * - `FILLRECORD`: every row we write has exactly the table's columns; a
 *   short row means the file does not match the table, which should fail.
 * - `IGNOREBLANKLINES` / `BLANKSASNULL`: would drop rows / change
 *   whitespace-only values.
 * - `ENCODING UTF8` is the default and is not repeated.
 *
 * The caller adds the source (`FROM 's3://…/manifest'`), `MANIFEST` (we always
 * load explicit file lists, never a key prefix, because a prefix also matches
 * `x.gz.bak` and leftovers of failed attempts) and the credentials/IAM role.
 */
export const REDSHIFT_COPY_OPTIONS =
  "GZIP DELIMITER '\\t' ESCAPE EMPTYASNULL NULL AS '\\0' TIMEFORMAT 'auto' COMPUPDATE OFF STATUPDATE OFF";

/**
 * PostgreSQL (and PGlite) text COPY of the gunzipped bytes:
 * `COPY t FROM STDIN WITH ${POSTGRES_COPY_OPTIONS}`.
 *
 * Why it decodes our encoding exactly (PostgreSQL manual, as recorded in SPEC section 3):
 * - text format recognises `\b \f \n \r \t \v`, octal digits and `\x`; any other
 *   backslashed character stands for itself. We only ever put a backslash
 *   before `\`, TAB, LF or CR, so `\\` -> `\`, `\`+TAB -> TAB (not a
 *   delimiter), and never an octal/hex/letter escape: a value `\0`, `\x41` or
 *   `\n` (letters) is written `\\0`, `\\x41`, `\\n` and loads as itself.
 * - `\`+LF and `\`+CR (the real bytes) load LF and CR. The manual says this is
 *   accepted today but may not be in future releases; the property test in
 *   `test/worker/output/copy-roundtrip.test.ts` loads every special character
 *   through a real server, so a server that stops accepting it is noticed. The
 *   fix then is a small stream filter in the PostgreSQL loader rewriting
 *   `\`+LF -> `\n` and `\`+CR -> `\r` (after pairing `\\`), not a format change.
 * - `NULL ''`: the null string is matched before backslash processing, so
 *   only a truly empty field is NULL and `\\N` is the text `\N`.
 * - `\.` alone on a line ends the data in text COPY; a value `\.` is written
 *   `\\.`, which is not the marker.
 */
export const POSTGRES_COPY_OPTIONS = "(FORMAT text, DELIMITER E'\\t', NULL '')";
