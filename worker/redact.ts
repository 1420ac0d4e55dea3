/**
 * Hides credentials in URLs and texts: the one place that decides what a
 * secret looks like, used by every log line, message and stored record of the
 * driver, the workers and the continuous processor (which is why it lives on
 * the worker side: every user reaches it without climbing).
 *
 * In a URL (`scheme://user:password@host/path?query#fragment`):
 * - the password of the userinfo. The host starts after the LAST `@` of the
 *   authority (as in the WHATWG URL parser and libpq), so a raw `@` or `:` in
 *   the password is hidden whole: `postgres://u:p@ss@h/db` -> `postgres://u:***@h/db`.
 *   A password with a raw `/`, `?` or `#` ends the authority early; when that
 *   leaves a port that is not a number and an `@` follows, everything up to the
 *   last `@` is taken as the password (hiding too much rather than too little).
 * - the value of every query or fragment parameter whose name says it is a
 *   secret (SECRET_PARAM below), wherever the parameter appears in a text.
 * The user name, host, path and other parameters stay: they are what a reader
 * needs to see which warehouse or object a message is about.
 */

export const MASK = '***';

/**
 * Parameter names whose values are secrets, matched on the decoded name,
 * case-insensitively, anywhere in it (so prefixed and vendor spellings are caught):
 * - `pass`: libpq/pg `password`, `sslpassword` (the client key's passphrase),
 *   `passfile`, and `PGPASSWORD`-style names;
 * - `pwd`, `secret`, `token`: `client_secret`, `access_token`, `X-Amz-Security-Token`;
 * - `signature`, `credential`, `access[_-]?key`, `^sig$`: pre-signed S3
 *   (`X-Amz-Signature`, `X-Amz-Credential`, `AWSAccessKeyId`, `Signature`) and
 *   Azure SAS (`sig`) URLs, which grant access by themselves;
 * - `sslkey`: the client key's location; hidden too, as it tells where a key
 *   lives. `sslcert`/`sslrootcert` name public certificates and stay visible,
 *   they are what one needs to debug a TLS failure;
 * - `api[-_]?key`.
 * Hiding a harmless value costs only detail in a message; showing a secret
 * cannot be undone, so the patterns lean wide.
 */
const SECRET_PARAM = /pass|pwd|secret|token|signature|credential|sslkey|api[-_]?key|access[-_]?key|^sig$/i;

/** A URL inside a text: a scheme, `://`, up to whitespace or a quote. */
const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'`<>]*/gi;
const URL_START = /^([a-z][a-z0-9+.-]*:\/\/)/i;
/**
 * `name=value` after a separator of a query (`?`, `&`, `;`), a fragment (`#`),
 * or in plain text (start, whitespace, `,`, `(`): e.g. a libpq key/value
 * string or an environment assignment echoed in a message.
 */
const PARAM = /(^|[?&;#\s,(])([^=&;#\s,()?]+)=([^&;#\s]*)/g;

/** True when a query parameter of this name carries a secret. */
export function isSecretParam(name: string): boolean {
  let decoded = name;
  try {
    decoded = decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    // not percent-encoded: match the raw name
  }
  return SECRET_PARAM.test(decoded);
}

interface UrlParts {
  scheme: string;
  /** Before the userinfo's first `:`; null without userinfo. */
  user: string | null;
  /** After the userinfo's first `:` (raw, percent-encoded as written); null without one. */
  password: string | null;
  /** Host, path, query and fragment. */
  rest: string;
}

/** Splits `scheme://[userinfo@]rest`; null for a text that does not start with a scheme. */
function splitUrl(url: string): UrlParts | null {
  const scheme = URL_START.exec(url)?.[1];
  if (scheme === undefined) return null;
  const after = url.slice(scheme.length);
  const authorityEnd = after.search(/[/?#]/);
  const authority = authorityEnd < 0 ? after : after.slice(0, authorityEnd);
  let at = authority.lastIndexOf('@');
  if (at < 0 && authorityEnd >= 0) {
    // `u:pa/ss@host`: the authority `u:pa` has a port that is no number; a raw
    // `/`, `?` or `#` in the password is more likely than such a port.
    const colon = authority.indexOf(':');
    if (colon >= 0 && !/^\d*$/.test(authority.slice(colon + 1))) at = after.lastIndexOf('@');
  }
  if (at < 0) return { scheme, user: null, password: null, rest: after };
  const userinfo = after.slice(0, at);
  const colon = userinfo.indexOf(':');
  return {
    scheme,
    user: colon < 0 ? userinfo : userinfo.slice(0, colon),
    password: colon < 0 ? null : userinfo.slice(colon + 1),
    rest: after.slice(at + 1),
  };
}

/** Masks the values of secret parameters (`password=...`, `X-Amz-Signature=...`) anywhere in `text`. */
export function redactParams(text: string): string {
  return text.replace(PARAM, (whole, sep: string, name: string, value: string) =>
    value !== '' && value !== MASK && isSecretParam(name) ? `${sep}${name}=${MASK}` : whole,
  );
}

/**
 * A URL for messages and records: the userinfo password and secret parameters
 * replaced by `***`. A text that is not a URL (a directory) keeps its content
 * but for secret `name=value` parameters.
 */
export function redactUrl(url: string): string {
  const parts = splitUrl(url);
  if (parts === null) return redactParams(url);
  const userinfo = parts.user === null ? '' : `${parts.user}${parts.password === null ? '' : `:${MASK}`}@`;
  return `${parts.scheme}${userinfo}${redactParams(parts.rest)}`;
}

/** `text` with every URL in it redacted (redactUrl) and secret `name=value` parameters masked. */
export function redactText(text: string): string {
  return redactParams(text.replace(URL_IN_TEXT, (url) => redactUrl(url)));
}

/** The secrets a URL carries: its userinfo password and the values of its secret parameters, as written. */
export function urlSecrets(url: string): string[] {
  const parts = splitUrl(url);
  const secrets: string[] = [];
  if (parts?.password) secrets.push(parts.password);
  for (const m of (parts?.rest ?? url).matchAll(PARAM)) {
    const [, , name, value] = m;
    if (value && isSecretParam(name!)) secrets.push(value);
  }
  return secrets;
}

/**
 * Replaces every known secret in a text by `***`, then redacts what is
 * recognisable as a credential (redactText); used on every error and log line
 * of a connection. Secrets are registered raw, percent-decoded and encoded, as
 * a driver may echo any of the three.
 */
export class Redactor {
  private readonly secrets = new Set<string>();

  add(secret: string | undefined): void {
    if (!secret || secret.length < 3) return; // too short to hide without mangling ordinary text
    this.secrets.add(secret);
    try {
      const decoded = decodeURIComponent(secret);
      if (decoded.length >= 3) this.secrets.add(decoded);
    } catch {
      // not percent-encoded
    }
    this.secrets.add(encodeURIComponent(secret));
  }

  /** Hides the secrets of a connection URL: the userinfo password and secret query parameters. */
  addUrl(url: string): void {
    for (const secret of urlSecrets(url)) this.add(secret);
  }

  apply(text: string): string {
    let out = text;
    // Longest first, so a secret containing another is replaced whole.
    for (const secret of [...this.secrets].sort((a, b) => b.length - a.length)) out = out.split(secret).join(MASK);
    return redactText(out);
  }
}
