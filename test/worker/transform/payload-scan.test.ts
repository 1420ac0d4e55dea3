/**
 * The payload fast path (payload-scan.ts) against the JSON.parse path
 * (payload.ts): whatever the scanner accepts must read exactly as parsing
 * would, and the usual payload shapes must be accepted (else the fast path
 * would silently be a slow one). Random cases print their seed; reproduce a
 * failure with SPADE_SEED=<seed>.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { PropertyReader, scanPayload, type ScannedEvent } from '../../../worker/transform/payload-scan.js';
import { parsePayloadJson, type RawEvent } from '../../../worker/transform/payload.js';
import { ExactInteger } from '../../../worker/transform/values.js';
import { prng } from '../../../scripts/generate/edge-logs.js';

const NAMES = ['ip', 'time', 'count', 'id', 'name', 'flag', 'ratio', 'ünï', '日本', '__proto__', 'constructor', 'a"b'];
const readers = new Map<string, PropertyReader>([
  ['play', new PropertyReader(NAMES)],
  ['chat', new PropertyReader(['name', 'ip', 'missing'])],
]);
const readerFor = (name: string): PropertyReader | undefined => readers.get(name);

/** Slot values as reading the parsed properties would give them (what columns.ts `convert` does). */
function expectedSlots(raw: RawEvent): unknown[] | null {
  const reader = readers.get(raw.name);
  if (reader === undefined) return null;
  const names = raw.name === 'play' ? NAMES : ['name', 'ip', 'missing'];
  const slots = new Array<unknown>(reader.slotCount);
  for (const key in raw.properties) {
    const slot = names.indexOf(key);
    if (slot >= 0) slots[slot] = raw.properties[key];
  }
  return slots;
}

/** Comparable form: ExactInteger by its digits, -0 kept apart from 0. */
function plain(v: unknown): unknown {
  if (v instanceof ExactInteger) return { exact: v.text };
  if (Object.is(v, -0)) return '-0';
  if (typeof v === 'number' && Number.isNaN(v)) return 'NaN';
  return v;
}

function plainEvents(events: ScannedEvent[]): unknown {
  return events.map((e) => ({ name: e.name, slots: e.slots === null ? null : Array.from(e.slots, plain) }));
}

/** Payload bytes as payload.ts decodePayloadBytes gives them: followed by a NUL sentinel. */
function scan(payload: string | Buffer): ScannedEvent[] | null {
  const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return scanPayload(Buffer.concat([bytes, Buffer.from([0])]), readerFor);
}

/**
 * Checks one payload (text, or bytes that need not be valid UTF-8): if the
 * fast path reads it, it reads it as parsing its decoded text does. Returns
 * whether it did.
 */
function check(payload: string | Buffer, what: string): boolean {
  const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const text = bytes.toString('utf8');
  const scanned = scan(bytes);
  if (scanned === null) return false;
  let parsed: RawEvent[];
  try {
    parsed = parsePayloadJson(text);
  } catch (err) {
    assert.fail(`${what}: the fast path read ${JSON.stringify(text)} but parsing it fails: ${String(err)}`);
  }
  const expected = parsed.map((raw) => ({ name: raw.name, slots: expectedSlots(raw) }));
  assert.deepEqual(plainEvents(scanned), plainEvents(expected as ScannedEvent[]), `${what}: ${JSON.stringify(text)}`);
  return true;
}

test('the usual shapes are read by the fast path, exactly as parsed', () => {
  const accepted = [
    '{"event":"play","properties":{"ip":"1.2.3.4","count":42,"flag":true,"ratio":-0.5,"name":null}}',
    ' [ {"event":"play","properties":{"time":1699142429}} , {"event":"chat","properties":{"name":"x"}} ] ',
    '{"properties":{"ip":"9.9.9.9","count":1},"event":"play"}', // properties before the name: read again
    '{"event":"play","properties":{"count":1,"count":2,"id":3}}', // duplicate key: the last wins
    '{"event":"play","properties":{"id":9007199254740993,"count":-9223372036854775808,"ratio":1e400}}',
    '{"event":"play","properties":{"id":123456789012345,"count":1234567890123456,"ratio":1.5e-7}}',
    '{"event":"play","properties":{"count":-0,"ratio":-0.0,"id":0,"time":2E+3}}',
    '{"event":"play","properties":{"name":"tab\\there \\"q\\" \\\\N \\u00e9 \\ud83c\\udfae \\ud800 \\/"}}',
    '{"event":"play","properties":{"ünï":"ünïcödé","日本":"日本語","a\\"b":1}}', // an escaped key: parsed
    '{"event":"play","properties":{"__proto__":"p","constructor":"c"}}',
    '{"event":"play","properties":null}',
    '{"event":"play"}',
    '{"event":null,"properties":{"ip":"x"}}',
    '{"properties":{}}',
    '{"event":"other","properties":{"ip":"x"},"extra":[1,2]}', // a non-scalar member: parsed
    '{"event":"other","properties":{"ip":"x"},"extra":1.5,"more":"s"}',
    '{\n\t"event" : "play" ,\r\n "properties" : { "ip" : "x" } }',
  ];
  const fast = accepted.filter((text, i) => check(text, `case ${i}`));
  // Everything but the escaped and non-ASCII keys and the non-scalar member takes the fast path.
  assert.equal(fast.length, accepted.length - 2);
  assert.equal(scan(accepted[8]!), null);
  assert.equal(scan(accepted[14]!), null);
});

test('payloads the fast path does not vouch for are left to JSON.parse', () => {
  const left = [
    '', // not JSON
    '[]', // no events: payload.ts names the error
    '"event"',
    '{"event":"play","properties":{"ip":{"nested":1}}}',
    '{"event":"play","properties":{"ip":[1]}}',
    '{"event":"play","event":"chat","properties":{}}',
    '{"event":"play","properties":{},"properties":{}}',
    '{"event":1,"properties":{}}',
    '{"event":"play","properties":"x"}',
    '{"event":"play","properties":{"ip":"a\tb"}}', // a raw control character
    '{"event":"play","properties":{"\u00fcn\u00ef":1}}', // a non-ASCII key (ünï, as JS escapes)
    '{"event":"play","properties":{"count":01}}',
    '{"event":"play","properties":{"count":1.}}',
    '{"event":"play","properties":{"count":-}}',
    '{"event":"play","properties":{"count":.5}}',
    '{"event":"play","properties":{"count":1e}}',
    '{"event":"play","properties":{"flag":tru}}',
    '{"event":"play","properties":{"name":"\\x"}}',
    '{"event":"play","properties":{"name":"\\u12"}}',
    '{"event":"play","properties":{"name":"open}}',
    '{"event":"play","properties":{"ip":"x",}}',
    '{"event":"play","properties":{"ip":"x"}} x',
    '{"event":"play","properties":{"ip":"x"}',
    '[{"event":"play"},]',
    '[{"event":"play"},1]',
    '\ufeff{"event":"play"}',
  ];
  for (const text of left) assert.equal(scan(text), null, JSON.stringify(text));
  // A raw control byte inside a string, and a payload cut inside one.
  assert.equal(scan('{"event":"play","properties":{"ip":"a\nb"}}'), null);
  assert.equal(scan('{"event":"play","properties":{"ip":"ab'), null);
  assert.equal(scan('{"event":"play","properties":{"ip":"ab\\'), null); // a backslash just before the end
  assert.throws(() => scanPayload(Buffer.from('{}'), readerFor), /sentinel/);
});

test('integer literals of slots read only as integers are scanned as their text', () => {
  const reader = new PropertyReader(['id', 'other'], [true, false]);
  const read = (literal: string): unknown[] =>
    Array.from(
      scanPayload(Buffer.from(`{"event":"e","properties":{"id":${literal},"other":${literal}}}\0`), () => reader)![0]!
        .slots!,
      plain,
    );
  assert.deepEqual(read('1234567890123'), ['1234567890123', 1234567890123]);
  assert.deepEqual(read('-42'), ['-42', -42]);
  assert.deepEqual(read('0'), ['0', 0]);
  // Not as text: -0 (its String() is "0"), fractions and exponents (their value's text
  // differs), and 16 digits or more (ExactInteger, as everywhere).
  assert.deepEqual(read('-0'), ['-0', '-0']);
  assert.deepEqual(read('1.0'), [1, 1]);
  assert.deepEqual(read('1e2'), [100, 100]);
  assert.deepEqual(read('1234567890123456'), [{ exact: '1234567890123456' }, { exact: '1234567890123456' }]);
  assert.deepEqual(read('"7"'), ['7', '7']);
});

test('a payload with an event whose whole properties are needed (lookup gives null) is left to JSON.parse', () => {
  // The processor's lookup gives null for a non-tracked event: its properties
  // are written whole, so the payload is parsed once rather than scanned and parsed.
  const wholeFor = (name: string): PropertyReader | undefined | null =>
    name === 'other' ? null : name === 'excluded' ? undefined : readers.get(name);
  const read = (text: string) => scanPayload(Buffer.from(text + '\0', 'utf8'), wholeFor);
  assert.equal(read('{"event":"other","properties":{"ip":"x"}}'), null);
  assert.equal(read('[{"event":"play","properties":{"ip":"x"}},{"event":"other"}]'), null);
  assert.equal(read('[{"event":"other"},{"event":"play"}]'), null);
  // An event read with no properties at all (undefined) does not stop the scan.
  assert.deepEqual(
    plainEvents(read('[{"event":"excluded","properties":{"a":1}},{"event":"play","properties":{"ip":"x"}}]')!),
    [
      { name: 'excluded', slots: null },
      { name: 'play', slots: ['x', ...new Array<unknown>(NAMES.length - 1)] },
    ],
  );
  // An event without a name looks up '' (the empty outcome): null there too means parse.
  const noName = (name: string): PropertyReader | undefined | null => (name === '' ? null : readers.get(name));
  assert.equal(scanPayload(Buffer.from('{"properties":{"ip":"x"}}\0', 'utf8'), noName), null);
  assert.notEqual(scanPayload(Buffer.from('{"properties":{"ip":"x"}}\0', 'utf8'), readerFor), null);
});

// ---------------------------------------------------------------------------
// Random payloads, and random damage to them.

function randomString(rand: () => number): string {
  const pieces = ['a', 'Z', ' ', '"', '\\', '/', '\t', '\n', '\u0000', 'é', '日', '🎮', '\ud800', 'ip', '\\N'];
  let s = '';
  const n = Math.floor(rand() * 6);
  for (let i = 0; i < n; i++) s += pieces[Math.floor(rand() * pieces.length)];
  return s;
}

/** A JSON string literal, escaped in one of several valid ways. */
function stringLiteral(s: string, rand: () => number): string {
  const json = JSON.stringify(s);
  if (rand() < 0.7) return json;
  // Escape some plain characters as \uXXXX too (valid JSON, same string).
  let out = '"';
  for (const ch of json.slice(1, -1))
    out += rand() < 0.3 && ch !== '\\' ? `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}` : ch;
  return out + '"';
}

function numberLiteral(rand: () => number): string {
  const forms = [
    () => String(Math.floor(rand() * 2000) - 1000),
    () => String(Math.floor(rand() * 1e15)),
    () => (rand() < 0.5 ? '-' : '') + '9' + String(Math.floor(rand() * 1e15)).padStart(15, '0') + '1',
    () => (rand() < 0.5 ? '-' : '') + '9223372036854775807',
    () => String(rand() * 1000),
    () => `${Math.floor(rand() * 100)}e${Math.floor(rand() * 40) - 20}`,
    () => `${Math.floor(rand() * 100)}.${Math.floor(rand() * 100)}E+${Math.floor(rand() * 5)}`,
    () => '-0',
    () => '0.0',
    () => '1e400',
  ];
  return forms[Math.floor(rand() * forms.length)]!();
}

function scalarLiteral(rand: () => number): string {
  const r = rand();
  if (r < 0.4) return stringLiteral(randomString(rand), rand);
  if (r < 0.8) return numberLiteral(rand);
  return ['true', 'false', 'null'][Math.floor(rand() * 3)]!;
}

function ws(rand: () => number): string {
  return rand() < 0.8 ? '' : [' ', '\n', '\t ', '\r\n'][Math.floor(rand() * 4)]!;
}

function member(key: string, value: string, rand: () => number): string {
  return `${ws(rand)}${JSON.stringify(key)}${ws(rand)}:${ws(rand)}${value}${ws(rand)}`;
}

function eventObject(rand: () => number): string {
  const members: string[] = [];
  const props: string[] = [];
  const keys = [...NAMES, 'other', 'ip', 'count'];
  const count = Math.floor(rand() * 8);
  for (let i = 0; i < count; i++) {
    const value = rand() < 0.05 ? '{"n":[1,{"d":2}]}' : scalarLiteral(rand);
    props.push(member(keys[Math.floor(rand() * keys.length)]!, value, rand));
  }
  const name = ['"play"', '"chat"', '"other"', 'null', '""'][Math.floor(rand() * 5)]!;
  if (rand() < 0.95) members.push(member('event', name, rand));
  if (rand() < 0.95) members.push(member('properties', rand() < 0.05 ? 'null' : `{${props.join(',')}}`, rand));
  if (rand() < 0.2) members.push(member('extra', scalarLiteral(rand), rand));
  if (rand() < 0.3) members.reverse();
  return `{${members.join(',')}}`;
}

function payload(rand: () => number): string {
  if (rand() < 0.8) return ws(rand) + eventObject(rand) + ws(rand);
  const n = 1 + Math.floor(rand() * 3);
  return `[${Array.from({ length: n }, () => eventObject(rand)).join(',')}]`;
}

function damage(text: string, rand: () => number): string {
  const at = Math.floor(rand() * (text.length + 1));
  const junk = ['"', '\\', ',', '}', ']', '{', '[', ':', '0', '-', 'e', '.', ' ', '\t', 'x', ''][
    Math.floor(rand() * 16)
  ]!;
  const r = rand();
  if (r < 0.4) return text.slice(0, at) + junk + text.slice(at); // insert
  if (r < 0.7) return text.slice(0, at) + text.slice(at + 1); // delete
  return text.slice(0, at) + junk + text.slice(at + 1); // replace
}

/** Bytes that are not valid UTF-8 (or are, by chance), put somewhere in the payload. */
function damageBytes(bytes: Buffer, rand: () => number): Buffer {
  const bad = [[0x80], [0xff], [0xc3], [0xe6, 0x97], [0xf0, 0x9f, 0x8e], [0xed, 0xa0, 0x80], [0xc3, 0xa9]];
  const at = Math.floor(rand() * (bytes.length + 1));
  return Buffer.concat([bytes.subarray(0, at), Buffer.from(bad[Math.floor(rand() * bad.length)]!), bytes.subarray(at)]);
}

test('random payloads read by the fast path read exactly as parsed; damaged ones never read differently', (t) => {
  const seed = process.env.SPADE_SEED ? Number(process.env.SPADE_SEED) : randomInt(2 ** 31);
  t.diagnostic(`seed ${seed} (reproduce with SPADE_SEED=${seed})`);
  const rand = prng(seed);
  let fast = 0;
  let damagedFast = 0;
  let invalidFast = 0;
  const cases = 20_000;
  for (let i = 0; i < cases; i++) {
    const text = payload(rand);
    if (check(text, `seed ${seed} case ${i}`)) fast++;
    if (check(damage(text, rand), `seed ${seed} damaged case ${i}`)) damagedFast++;
    if (check(damageBytes(Buffer.from(text), rand), `seed ${seed} invalid UTF-8 case ${i}`)) invalidFast++;
  }
  t.diagnostic(
    `fast path: ${fast} of ${cases} payloads, ${damagedFast} damaged ones (still valid JSON), ${invalidFast} with invalid UTF-8`,
  );
  // Many generated payloads are of the usual shape (nested values, escaped or
  // non-ASCII keys aside): the comparison above must have had real work to do.
  assert.ok(fast > cases / 3, `only ${fast} of ${cases} payloads took the fast path`);
  assert.ok(damagedFast > 0, 'some damage leaves valid JSON that the fast path reads');
  assert.ok(invalidFast > 0, 'some payloads with invalid UTF-8 in their strings are read by the fast path');
});
