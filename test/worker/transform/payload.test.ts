import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { MalformedInput, parseEdgeLine, type EdgeEvent } from '../../../worker/transform/edge.js';
import {
  decodeBase64,
  decodePayload,
  enrichProperties,
  eventUuid,
  urlQueryUnescape,
  type RawEvent,
} from '../../../worker/transform/payload.js';
import { ExactInteger } from '../../../worker/transform/values.js';
import { fixturePath } from '../../helpers/fixtures.js';
import { prng } from '../../../scripts/generate/edge-logs.js';

/** What the processor does with each event of a line: enrichment in place, and its uuid. */
function enrichEvents(
  edge: EdgeEvent,
  raw: RawEvent[],
): { name: string; properties: RawEvent['properties']; uuid: string; receivedAtSec: number }[] {
  return raw.map((e, i) => {
    enrichProperties(edge, e.properties);
    return {
      name: e.name,
      properties: e.properties,
      uuid: eventUuid(edge, i, raw.length),
      receivedAtSec: edge.receivedAtSec,
    };
  });
}

function fixture(name: string): string {
  return readFileSync(fixturePath(`spade/${name}`), 'utf8').replace(/\r?\n$/, '');
}

const PROPERTIES = JSON.parse(fixture('parser-properties.json')) as Record<string, unknown>;

function assertMalformed(fn: () => unknown, reason: string, what = ''): void {
  assert.throws(
    fn,
    (err: unknown) => err instanceof MalformedInput && err.reason === reason,
    `expected ${reason} ${what}`,
  );
}

function b64(json: string | Buffer): string {
  return Buffer.from(json).toString('base64');
}

test('the three base64 variants decode to the same event', () => {
  const variants = ['parser-b64payload.txt', 'parser-urlsafeb64payload.txt', 'parser-b64payload_space.txt'];
  for (const name of variants) {
    const data = fixture(name);
    const events = decodePayload(data);
    assert.equal(events.length, 1, name);
    assert.equal(events[0].name, 'login', name);
    assert.deepEqual(events[0].properties, PROPERTIES, name);
  }
  // What each variant exercises: `+` (URL-unescaped to a space), `-`/`_`, literal spaces.
  assert.ok(fixture('parser-b64payload.txt').includes('+'));
  assert.match(fixture('parser-urlsafeb64payload.txt'), /[-_]/);
  assert.ok(fixture('parser-b64payload_space.txt').includes(' '));
  // A fully URL-escaped payload (%2B, %2F, %3D) decodes the same.
  const escaped = encodeURIComponent(fixture('parser-b64payload.txt'));
  assert.ok(escaped.includes('%2B'));
  assert.deepEqual(decodePayload(escaped)[0].properties, PROPERTIES);
  // Missing padding is accepted.
  assert.deepEqual(decodePayload(fixture('parser-b64payload.txt').replace(/=+$/, ''))[0].properties, PROPERTIES);
});

test('multi-event payloads', () => {
  const events = decodePayload(fixture('parser-multievent_b64.txt'));
  assert.equal(events.length, 2);
  for (const e of events) {
    assert.equal(e.name, 'login');
    assert.deepEqual(e.properties, { ...PROPERTIES, app_version: '(✿☯‿☯✿)(✿☯‿☯✿)(✿☯‿☯✿)' });
  }

  const edge = parseEdgeLine(fixture('processor-sample_multi_logline.txt'));
  const decoded = enrichEvents(edge, decodePayload(edge.data));
  assert.deepEqual(
    decoded.map((d) => d.uuid),
    ['uuid1-0', 'uuid1-1', 'uuid1-2', 'uuid1-3'],
  );
  for (const d of decoded) {
    assert.equal(d.name, 'login');
    assert.equal(d.receivedAtSec, 1382033155);
    assert.equal(d.properties.time, 1382033155);
    assert.equal(d.properties.client_time, 1380585602);
  }
  // Any JSON array counts, not only text starting with `[{`.
  assert.equal(decodePayload(b64(' [ {"event":"a"} , {"event":"b"} ]')).length, 2);
});

test('error fixtures are malformed', () => {
  // Both are valid base64 characters whose bytes are not JSON (the original failed there too).
  const error = parseEdgeLine(fixture('processor-sample_error_logline.txt'));
  assertMalformed(() => decodePayload(error.data), 'bad_payload_json');
  const broken = parseEdgeLine(fixture('parser-json-broken_b64_data.json'));
  assertMalformed(() => decodePayload(broken.data), 'bad_payload_json');

  const ip = parseEdgeLine(fixture('parser-json-broken_ip_data.json'));
  const events = enrichEvents(ip, decodePayload(ip.data));
  assert.deepEqual(events, [
    {
      name: 'video-play',
      properties: { platform: 'testingclient', time: 1418172623, ip: '10.0.0.1' },
      uuid: '123abc',
      receivedAtSec: 1418172623,
    },
  ]);
});

test('URL unescaping', () => {
  assert.equal(urlQueryUnescape('abc'), 'abc');
  assert.equal(urlQueryUnescape('a+b'), 'a b');
  assert.equal(urlQueryUnescape('a%2Bb+c%3d'), 'a+b c=');
  assert.equal(urlQueryUnescape('%41%4a%4A'), 'AJJ');
  for (const bad of ['%', 'ab%', 'ab%4', '%zz', '%4g', 'a%%41']) {
    assertMalformed(() => urlQueryUnescape(bad), 'bad_url_escape');
    assertMalformed(() => decodePayload(bad), 'bad_url_escape');
  }
});

test('base64 validation is strict', () => {
  const good = b64('{"event":"e"}'); // eyJldmVudCI6ImUifQ==
  assert.equal(decodePayload(good)[0].name, 'e');
  assert.equal(decodePayload(good.replace(/=+$/, ''))[0].name, 'e');
  const bad = [
    good.slice(0, 4) + '!' + good.slice(4), // stray character (Buffer.from would skip it)
    good.slice(0, 4) + '\n' + good.slice(4),
    good.slice(0, 4) + '=' + good.slice(4), // padding in the middle
    good + '=', // too much padding
    good.slice(0, -2) + '=', // padding that does not complete a quantum
    good.replace(/=+$/, '') + 'AAA', // a lone trailing sextet (length 4k+1)
    'eyJl-dmVudCI6I+mUifQ', // both alphabets
    'eyJldmVudCI6ImUifQ%C3%A9', // escaped non-ASCII byte
    'eyJldmVudCI6ImUifQé',
  ];
  for (const text of bad) assertMalformed(() => decodePayload(text), 'bad_base64', text);
});

/** The rules spelled out char by char (slow, obviously right). */
function referenceBase64(text: string): Buffer | null {
  const urlSafe = text.includes('-') || text.includes('_');
  if (!urlSafe) text = text.replaceAll(' ', '+');
  const alphabet = urlSafe
    ? 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    : 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  let body = text;
  let padding = 0;
  while (padding < 2 && body.endsWith('=')) {
    body = body.slice(0, -1);
    padding++;
  }
  for (const ch of body) if (!alphabet.includes(ch)) return null;
  if (body.length % 4 === 1 || (padding > 0 && (body.length + padding) % 4 !== 0)) return null;
  return Buffer.from(text, 'base64');
}

test('base64 strictness matches a char-by-char reference (fuzz)', () => {
  const rand = prng(1234);
  const pool = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'];
  const odd = ['+', '/', '-', '_', '=', '=', ' ', '!', '\n', '\u0000', 'é', '\u0142', '\u{1F600}', '%'];
  let valid = 0;
  for (let n = 0; n < 20000; n++) {
    const len = Math.floor(rand() * 24);
    let text = '';
    for (let i = 0; i < len; i++) {
      text += rand() < 0.1 ? odd[Math.floor(rand() * odd.length)] : pool[Math.floor(rand() * pool.length)];
    }
    if (rand() < 0.3) text += rand() < 0.5 ? '=' : '==';
    const want = referenceBase64(text);
    let got: Buffer | null;
    try {
      got = decodeBase64(text);
    } catch (err) {
      assert.ok(err instanceof MalformedInput && err.reason === 'bad_base64', String(err));
      got = null;
    }
    assert.deepEqual(got, want, JSON.stringify(text));
    if (want !== null) valid++;
  }
  assert.ok(valid > 1000);
});

test('JSON and shape checks', () => {
  assertMalformed(() => decodePayload(''), 'bad_payload_json');
  assertMalformed(() => decodePayload(b64('{"event":')), 'bad_payload_json');
  assertMalformed(() => decodePayload(b64('[{"event":"a"},')), 'bad_payload_json');
  assertMalformed(() => decodePayload(b64('[' + '['.repeat(100_000))), 'bad_payload_json');
  for (const json of [
    '"text"',
    '5',
    'null',
    '[]',
    '[1]',
    '[{"event":"a"}, 2]', // one bad element fails the whole line
    '[{"event":"a"}, {"event":7}]',
    '{"event":5}',
    '{"event":{"a":1}}',
    '{"event":"a","properties":5}',
    '{"event":"a","properties":[1]}',
    '{"event":"a","properties":"x"}',
    '{"event":"a","properties":12345678901234567890}',
  ]) {
    assertMalformed(() => decodePayload(b64(json)), 'bad_payload_shape');
  }
  assert.deepEqual(decodePayload(b64('{}')), [{ name: '', properties: {} }]);
  assert.deepEqual(decodePayload(b64('{"event":null,"properties":{"a":1}}')), [{ name: '', properties: { a: 1 } }]);
  assert.deepEqual(decodePayload(b64('{"event":"x","properties":null,"other":1}')), [{ name: 'x', properties: {} }]);
});

test('invalid UTF-8 becomes U+FFFD', () => {
  const bytes = Buffer.concat([
    Buffer.from('{"event":"e","properties":{"s":"a'),
    Buffer.from([0xff, 0xc3]),
    Buffer.from('b"}}'),
  ]);
  const [event] = decodePayload(b64(bytes));
  assert.equal(event.properties.s, 'a\uFFFD\uFFFDb');
  assert.equal(decodePayload(b64('{"event":"é✿","properties":{}}'))[0].name, 'é✿');
});

test('exact 64-bit integers', () => {
  const json =
    '{"event":"e","properties":{"a":9007199254740993,"b":-9223372036854775808,"c":123,"d":1.5,' +
    '"e":0.1500000059604645,"f":1e400,"g":[12345678901234567890],"h":{"i":9223372036854775807},' +
    '"j":123456789012345,"k":1234567890123456,"l":"12345678901234567890","m":-0,"n":1.0e3,' +
    '"dup":1,"dup":2,"__proto__":{"x":1}}}';
  const [event] = decodePayload(b64(json));
  const p = event.properties;
  assert.ok(p.a instanceof ExactInteger);
  assert.equal(p.a.text, '9007199254740993');
  assert.ok(p.b instanceof ExactInteger);
  assert.equal(p.b.text, '-9223372036854775808');
  assert.equal(p.c, 123);
  assert.equal(p.d, 1.5);
  assert.equal(p.e, 0.1500000059604645);
  assert.equal(p.f, Infinity); // what JSON.parse gives; non-finite values fail column transforms later
  assert.deepEqual(p.g, [new ExactInteger('12345678901234567890')]);
  assert.deepEqual(p.h, { i: new ExactInteger('9223372036854775807') });
  assert.equal(p.j, 123456789012345); // 15 digits: always a plain number
  assert.deepEqual(p.k, new ExactInteger('1234567890123456')); // 16 digits: always ExactInteger
  assert.equal((p.k as ExactInteger).toNumber(), 1234567890123456);
  assert.equal(p.l, '12345678901234567890');
  assert.ok(Object.is(p.m, -0));
  assert.equal(p.n, 1000);
  assert.equal(p.dup, 2); // the last duplicate wins, as with JSON.parse
  assert.deepEqual(Object.getOwnPropertyDescriptor(p, '__proto__')?.value, { x: 1 });
  assert.equal(Object.getPrototypeOf(p), Object.prototype);

  // Without a 16-digit integer the same values come out identical (fast path).
  const fast = decodePayload(b64('{"event":"e","properties":{"c":123,"e":0.1500000059604645,"f":1e400,"m":-0}}'));
  assert.deepEqual(fast[0].properties, { c: 123, e: 0.1500000059604645, f: Infinity, m: -0 });
  // Multi-event payloads take the exact path too.
  const multi = decodePayload(b64('[{"event":"a","properties":{"id":9007199254740993}},{"event":"b"}]'));
  assert.deepEqual(multi[0].properties, { id: new ExactInteger('9007199254740993') });
  assert.deepEqual(multi[1], { name: 'b', properties: {} });

  // The exact path reads strings exactly like JSON.parse.
  const strings = String.raw`{"s":["\u00e9\ud83d\ude00","\ud800","a\nb\/\"\\","✿"],"k":9007199254740993}`;
  const exact = decodePayload(b64(`{"event":"e","properties":${strings}}`))[0].properties;
  assert.deepEqual(exact.s, (JSON.parse(strings) as { s: unknown }).s);
  // Absurd nesting never crashes: JSON.parse copes, the recursive exact parser is caught.
  const deep = '['.repeat(200_000) + '9007199254740993' + ']'.repeat(200_000);
  assertMalformed(() => decodePayload(b64(`{"event":"e","properties":{"d":${deep}}}`)), 'bad_payload_json');
  const deepSmall = '['.repeat(200_000) + '1' + ']'.repeat(200_000);
  assert.equal(decodePayload(b64(`{"event":"e","properties":{"d":${deepSmall}}}`)).length, 1);
  // Literals that only look long take the exact path and come out as doubles.
  assert.deepEqual(decodePayload(b64('{"event":"e","properties":{"a":1e20,"b":12345678901234567.5}}'))[0].properties, {
    a: 1e20,
    b: Number('12345678901234567.5'),
  });
});

test('enrichment rules', () => {
  const edge: EdgeEvent = { receivedAtSec: 1500000000, clientIp: '10.0.0.1', uuid: 'u1', data: '', userAgent: 'UA/1' };
  const [withTime] = enrichEvents(edge, [{ name: 'e', properties: { time: 1499999990.5, x: 1 } }]);
  assert.deepEqual(withTime, {
    name: 'e',
    properties: { time: 1500000000, client_time: 1499999990.5, x: 1, ip: '10.0.0.1', user_agent: 'UA/1' },
    uuid: 'u1',
    receivedAtSec: 1500000000,
  });

  // No `time`: no client_time; present ip / user_agent are kept (even null).
  const [kept] = enrichEvents(edge, [{ name: 'e', properties: { ip: '8.8.8.8', user_agent: null } }]);
  assert.deepEqual(kept.properties, { ip: '8.8.8.8', user_agent: null, time: 1500000000 });
  assert.equal(Object.hasOwn(kept.properties, 'client_time'), false);

  // A null time still counts as present and moves.
  const [nullTime] = enrichEvents(edge, [{ name: 'e', properties: { time: null } }]);
  assert.equal(nullTime.properties.client_time, null);
  assert.equal(nullTime.properties.time, 1500000000);

  // No user agent on the edge: none added.
  const noUa: EdgeEvent = { ...edge, userAgent: undefined };
  const [plain] = enrichEvents(noUa, [{ name: 'e', properties: {} }]);
  assert.deepEqual(plain.properties, { time: 1500000000, ip: '10.0.0.1' });

  // uuid: one event keeps the edge uuid (also as a one-element array); several get -<index>.
  assert.deepEqual(
    enrichEvents(edge, decodePayload(b64('[{"event":"a"}]'))).map((d) => d.uuid),
    ['u1'],
  );
  const many = enrichEvents(edge, decodePayload(b64('[{"event":"a"},{"event":"b"},{"event":""}]')));
  assert.deepEqual(
    many.map((d) => [d.name, d.uuid]),
    [
      ['a', 'u1-0'],
      ['b', 'u1-1'],
      ['', 'u1-2'],
    ],
  );
});

test('legacy line end to end', () => {
  const line = `222.22.222.222 [1395707641.000] data=${fixture('parser-b64payload.txt')} 09fff3e1-49eff880-535707f3-20f9e114d784a3fa`;
  const edge = parseEdgeLine(line);
  const [event] = enrichEvents(edge, decodePayload(edge.data));
  assert.equal(event.name, 'login');
  assert.equal(event.uuid, '09fff3e1-49eff880-535707f3-20f9e114d784a3fa');
  assert.deepEqual(event.properties, {
    ...PROPERTIES,
    client_time: 1380585602,
    time: 1395707641,
    ip: '222.22.222.222',
  });
});
