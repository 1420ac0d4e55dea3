import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { base64Fragments, makePayloadFilter } from '../../../worker/transform/prefilter.js';
import { decodePayload, urlQueryUnescape } from '../../../worker/transform/payload.js';
import { fixturePath } from '../../helpers/fixtures.js';
import { prng } from '../../../scripts/generate/edge-logs.js';

const WANTED = ['login', 'minute-watched', 'buffer_empty', 'video_play-2'];
// Short names are the hardest case for fragments (fewest characters to match): safety only.
const WANTED_SHORT = ['x', '_', '-9', 'Ab'];
const OTHER_NAMES = [
  'pageview',
  'logins',
  'Login',
  'login_attempt',
  'user-login',
  'minute-watched2',
  'minute_watched',
  'buffer-empty',
  'chat',
  'video_play',
  'xx',
  'a',
  '',
];

class Gen {
  /** Let wanted names appear as property keys and values too (false positives the filter may keep). */
  decoys = false;
  constructor(readonly rand: () => number) {}
  int(n: number): number {
    return Math.floor(this.rand() * n);
  }
  chance(p: number): boolean {
    return this.rand() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** Random text over ASCII, controls, quotes/backslashes, Latin-1, CJK, emoji and the odd lone surrogate. */
  text(maxLen: number): string {
    let s = '';
    const len = this.int(maxLen + 1);
    for (let i = 0; i < len; i++) {
      const kind = this.int(8);
      if (kind <= 2) s += String.fromCharCode(32 + this.int(95));
      else if (kind === 3) s += String.fromCharCode(this.int(32));
      else if (kind === 4) s += this.pick(['"', '\\', '\\u', '/', 'event', this.decoys ? '"login"' : 'log']);
      else if (kind === 5) s += String.fromCharCode(0xa0 + this.int(0x60));
      else if (kind === 6) s += String.fromCodePoint(this.pick([0x4e00, 0x1f600, 0x0400, 0x0600]) + this.int(200));
      else s += this.chance(0.1) ? String.fromCharCode(0xd800 + this.int(0x800)) : 'abcXYZ019_-'[this.int(11)];
    }
    return s;
  }

  name(wanted: readonly string[]): string {
    const kind = this.int(4);
    if (kind === 0) return this.pick(wanted);
    if (kind === 1) return this.pick(OTHER_NAMES);
    const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-';
    let s = '';
    const len = 1 + this.int(24);
    for (let i = 0; i < len; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }

  value(depth: number): unknown {
    const kind = this.int(depth > 1 ? 6 : 8);
    if (kind === 0) return this.int(2_000_000_000) - 1_000_000_000;
    if (kind === 1) return this.rand() * 1e6;
    if (kind === 2) return this.chance(0.5);
    if (kind === 3) return null;
    if (kind <= 5) return this.decoys && this.chance(0.1) ? this.pick(WANTED) : this.text(30);
    if (kind === 6) return Array.from({ length: this.int(4) }, () => this.value(depth + 1));
    return this.properties(depth + 1);
  }

  properties(depth = 0): Record<string, unknown> {
    const props: Record<string, unknown> = {};
    const n = this.int(depth === 0 ? 12 : 4);
    for (let i = 0; i < n; i++)
      props[this.chance(0.5) ? this.text(12) : this.pick(['time', 'ip', this.decoys ? 'login' : 'user', 'channel'])] =
        this.value(depth);
    return props;
  }
}

/** JSON writer with the variants real encoders produce. */
interface JsonStyle {
  space: () => string;
  asciiOnly: boolean;
  /** Escape characters of the event name as \u00XX (random hex case). */
  escapeName: boolean;
}

function jsonString(s: string, asciiOnly: boolean): string {
  const plain = JSON.stringify(s);
  if (!asciiOnly) return plain;
  return plain.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function escapedName(g: Gen, name: string): string {
  let out = '';
  let escaped = false;
  for (let i = 0; i < name.length; i++) {
    if (g.chance(0.4) || (!escaped && i === name.length - 1)) {
      let hex = name.charCodeAt(i).toString(16).padStart(4, '0');
      if (g.chance(0.5)) hex = hex.toUpperCase();
      out += `\\u${hex}`;
      escaped = true;
    } else out += name[i];
  }
  return `"${out}"`;
}

function writeJson(g: Gen, v: unknown, style: JsonStyle): string {
  if (v === null || typeof v !== 'object')
    return typeof v === 'string' ? jsonString(v, style.asciiOnly) : JSON.stringify(v);
  const sp = style.space;
  if (Array.isArray(v)) return `[${sp()}${v.map((x) => writeJson(g, x, style)).join(`${sp()},${sp()}`)}${sp()}]`;
  const entries = Object.entries(v).map(
    ([k, x]) => `${jsonString(k, style.asciiOnly)}${sp()}:${sp()}${writeJson(g, x, style)}`,
  );
  return `{${sp()}${entries.join(`${sp()},${sp()}`)}${sp()}}`;
}

function writeEvent(g: Gen, name: string, props: Record<string, unknown>, style: JsonStyle): string {
  const sp = style.space;
  const nameJson = style.escapeName && name !== '' ? escapedName(g, name) : jsonString(name, style.asciiOnly);
  const fields = [`"event"${sp()}:${sp()}${nameJson}`, `"properties"${sp()}:${sp()}${writeJson(g, props, style)}`];
  if (g.chance(0.3)) fields.reverse();
  return `{${sp()}${fields.join(`${sp()},${sp()}`)}${sp()}}`;
}

interface Payload {
  data: string;
  names: string[];
  /** No escaped names, no %-escapes, no decoys: the kind the filter should reject when no wanted event is in it. */
  plain: boolean;
  /** %-escaped, otherwise plain. */
  plainEscaped: boolean;
  /** Event names written with `\u00XX` escapes. */
  escapedNames: boolean;
  encoding: string;
}

function makePayload(g: Gen, wanted: readonly string[]): Payload {
  g.decoys = g.chance(0.3);
  const count = g.chance(0.3) ? 1 + g.int(5) : 1;
  const names = Array.from({ length: count }, () => g.name(wanted));
  const spaceKind = g.int(4);
  const style: JsonStyle = {
    space: () =>
      spaceKind === 0
        ? ''
        : spaceKind === 1
          ? ' '
          : spaceKind === 2
            ? g.pick(['', ' '])
            : g.pick(['', ' ', '\n', '\t', '  \r\n']),
    asciiOnly: g.chance(0.3),
    escapeName: g.chance(0.15),
  };
  const events = names.map((n) => writeEvent(g, n, g.properties(), style));
  const json = count === 1 && g.chance(0.8) ? events[0] : `[${events.join(g.pick([',', ', ', ',\n']))}]`;

  let b64 = Buffer.from(json, 'utf8').toString('base64');
  const alphabet = g.int(4);
  let encoding = ['standard', 'url-safe', 'space', 'raw-plus'][alphabet];
  if (alphabet === 1) {
    b64 = b64.replaceAll('+', '-').replaceAll('/', '_');
    if (g.chance(0.5)) b64 = b64.replace(/=+$/, '');
  } else if (alphabet === 2) b64 = b64.replaceAll('+', ' ');
  // alphabet 3: a raw '+' in the logged data, which URL-unescaping turns into a space.

  let escaped = false;
  const escape = g.int(7);
  if (escape === 0) {
    b64 = encodeURIComponent(b64);
    escaped = true;
    encoding += '+encodeURIComponent';
  } else if (escape === 1) {
    b64 = b64
      .replaceAll('=', g.pick(['%3D', '%3d']))
      .replaceAll('+', '%2B')
      .replaceAll('/', '%2F');
    escaped = true;
    encoding += '+partial-escape';
  } else if (escape === 2) {
    // Every character escaped, letters and digits too: no fragment survives in the raw text.
    b64 = [...b64].map((c) => `%${c.charCodeAt(0).toString(16)}`).join('');
    b64 = g.chance(0.5) ? b64.toUpperCase() : b64;
    escaped = true;
    encoding += '+all-escaped';
  }
  return {
    data: b64,
    names,
    plain: !style.escapeName && !escaped && !g.decoys,
    plainEscaped: !style.escapeName && escaped && !g.decoys,
    escapedNames: style.escapeName,
    encoding,
  };
}

/** Events a decoder finds in `data`: the transform's own decoder, or [] if it calls the line malformed. */
function decodedNames(data: string): string[] {
  try {
    return decodePayload(data).map((e) => e.name);
  } catch {
    return [];
  }
}

/**
 * A lenient decoder (Node's Buffer.from mixes alphabets, skips junk and stops at `=`): what a
 * sloppier parser might see. A space stays one character (`+`), as SPEC 1 defines the
 * space variant; a decoder that skipped spaces would contradict the SPEC, not model it.
 */
function lenientNames(data: string): string[] {
  try {
    const text = urlQueryUnescape(data).replaceAll(' ', '+');
    const parsed: unknown = JSON.parse(Buffer.from(text, 'base64').toString('utf8'));
    const list = Array.isArray(parsed) ? parsed : [parsed];
    return list.map((e) => (e && typeof e === 'object' && 'event' in e ? String(e.event) : ''));
  } catch {
    return [];
  }
}

test('base64Fragments: a fragment for the needle’s alignment is in the base64 of any bytes around it', () => {
  const g = new Gen(prng(7));
  for (let round = 0; round < 3000; round++) {
    const needle = `"${g.name(['login'])}"`;
    const fragments = base64Fragments(needle);
    assert.equal(fragments.length, 3);
    for (const f of fragments) assert.match(f, /^[A-Za-z0-9]+$/, `fragment of ${needle}`);
    const before = Buffer.from(Array.from({ length: g.int(10) }, () => g.int(256)));
    const after = Buffer.from(Array.from({ length: g.int(10) }, () => g.int(256)));
    const text = Buffer.concat([before, Buffer.from(needle, 'latin1'), after]).toString('base64');
    assert.ok(text.includes(fragments[before.length % 3]), `${needle} at offset ${before.length} in ${text}`);
  }
  assert.deepEqual(base64Fragments('"login"'), ['ImxvZ2luI', 'Jsb2dpbi', 'ibG9naW4i']);
  assert.throws(() => base64Fragments('"'), /at least 2 bytes/);
});

test('property: never drops a payload holding a wanted event; rejects most plain payloads without one', () => {
  for (const wanted of [WANTED, WANTED_SHORT]) {
    const keep = makePayloadFilter(wanted);
    const wantedSet = new Set(wanted);
    const g = new Gen(prng(wanted === WANTED ? 42 : 43));
    let withWanted = 0;
    let withWantedEscaped = 0;
    let plainWithout = 0;
    let plainRejected = 0;
    let escapedWithout = 0;
    let escapedRejected = 0;
    const byEncoding = new Map<string, number>();
    for (let i = 0; i < 6000; i++) {
      const p = makePayload(g, wanted);
      const decoded = decodedNames(p.data);
      // The generator produces valid payloads: the transform's decoder sees exactly our events.
      assert.deepEqual(decoded, p.names, `decoder disagrees on ${p.encoding} payload ${p.data}`);
      const hasWanted = p.names.some((n) => wantedSet.has(n));
      if (hasWanted) {
        withWanted++;
        if (p.escapedNames) withWantedEscaped++;
        byEncoding.set(p.encoding, (byEncoding.get(p.encoding) ?? 0) + 1);
        assert.equal(keep(p.data), true, `dropped ${JSON.stringify(p.names)} (${p.encoding}): ${p.data}`);
      } else if (p.plain) {
        plainWithout++;
        if (!keep(p.data)) plainRejected++;
      } else if (p.plainEscaped) {
        escapedWithout++;
        if (!keep(p.data)) escapedRejected++;
      }
    }
    assert.ok(withWanted > 1500, `only ${withWanted} payloads with wanted events`);
    assert.ok(withWantedEscaped > 100, `only ${withWantedEscaped} with escaped wanted names`);
    assert.ok(byEncoding.size === 16, `encodings covered: ${[...byEncoding.keys()].join(', ')}`);
    if (wanted === WANTED) {
      const rate = plainRejected / plainWithout;
      assert.ok(plainWithout > 1000 && rate > 0.9, `rejected ${plainRejected}/${plainWithout} = ${rate}`);
      const escapedRate = escapedRejected / escapedWithout;
      assert.ok(escapedWithout > 500 && escapedRate > 0.9, `%-escaped: ${escapedRejected}/${escapedWithout}`);
    }
  }
});

test('property: damaged payloads that some decoder could still read as a wanted event are kept', () => {
  const keep = makePayloadFilter(WANTED);
  const wantedSet = new Set(WANTED);
  const g = new Gen(prng(99));
  const junk = [
    '.',
    '\n',
    '\r\n',
    '\t',
    '%0A',
    '%0D%0A',
    '!',
    '~',
    '=',
    '==',
    '*',
    '%',
    '%zz',
    '+',
    '-',
    ' ',
    '%20',
    '\u00e9',
  ];
  let checked = 0;
  for (let i = 0; i < 5000; i++) {
    const p = makePayload(g, WANTED);
    let data = p.data;
    for (let n = 1 + g.int(3); n > 0; n--) {
      const at = g.int(data.length + 1);
      data = data.slice(0, at) + g.pick(junk) + data.slice(at);
    }
    if (g.chance(0.2)) data = `${data}${g.pick(['==', '='])}${makePayload(g, WANTED).data}`; // concatenated chunks
    const readable = [...decodedNames(data), ...lenientNames(data)].some((n) => wantedSet.has(n));
    if (readable) {
      checked++;
      assert.equal(keep(data), true, `dropped a payload a decoder reads as wanted: ${data}`);
    }
    assert.equal(typeof keep(data), 'boolean');
  }
  assert.ok(checked > 300, `only ${checked} damaged-but-readable payloads`);
});

test('the fixture payloads in all three alphabets and as a multi-event array', () => {
  const login = makePayloadFilter(['login']);
  const other = makePayloadFilter(['pageview', 'minute-watched']);
  for (const name of [
    'parser-b64payload.txt',
    'parser-urlsafeb64payload.txt',
    'parser-b64payload_space.txt',
    'parser-multievent_b64.txt',
  ]) {
    const data = readFileSync(fixturePath(`spade/${name}`), 'utf8').trim();
    assert.ok(decodePayload(data).some((e) => e.name === 'login'));
    assert.equal(login(data), true, name);
    assert.equal(other(data), false, name);
    assert.equal(login(encodeURIComponent(data)), true, `${name} %-escaped`);
    assert.equal(other(encodeURIComponent(data)), false, `${name} %-escaped`);
  }
  for (const name of ['processor-sample_logline.txt', 'processor-sample_multi_logline.txt']) {
    const edge = JSON.parse(readFileSync(fixturePath(`spade/${name}`), 'utf8')) as { data: string };
    assert.equal(login(edge.data), true, name);
    assert.equal(other(edge.data), false, name);
  }
});

test('escaped names and lines the filter cannot read are kept', () => {
  const keep = makePayloadFilter(['login']);
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  assert.equal(keep(b64('{"event":"\\u006cogin","properties":{}}')), true);
  assert.equal(keep(b64('{"event":"logi\\u006E","properties":{}}')), true);
  assert.equal(keep(b64('{"event":"pageview","properties":{"x":"\\u00e9\\u0001"}}')), false);
  assert.equal(keep(b64('{"event": "pageview"}')), false);
  assert.equal(keep(b64('{"event": "pageview"}').replace('e', '.')), true); // a stray character
  // Two base64 chunks: a decoder that went on after the first one's padding would read `{"event": "login"}`.
  assert.equal(keep(b64('{"event": "lo') + b64('gin"}')), true);
  assert.equal(keep('%zz'), true); // malformed escape: the decoder reports it
  assert.equal(keep('%25'), true); // "%" after one unescape
  assert.equal(keep('ab-c+d'), true); // mixed alphabets
  assert.equal(keep(''), false);
  // Names outside [A-Za-z0-9_-] are not analysed: everything is kept.
  assert.equal(makePayloadFilter(['log"in'])(b64('{"event": "pageview"}')), true);
  assert.throws(() => makePayloadFilter([]), /at least one table name/);
});
