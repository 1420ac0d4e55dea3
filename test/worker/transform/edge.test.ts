import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { MalformedInput, parseEdgeLine, parseRfc3339Seconds } from '../../../worker/transform/edge.js';
import { fixturePath } from '../../helpers/fixtures.js';
import { prng } from '../../../scripts/generate/edge-logs.js';

function fixtureLine(name: string): string {
  return readFileSync(fixturePath(`spade/${name}`), 'utf8').replace(/\r?\n$/, '');
}

function assertMalformed(line: string, reason: string): void {
  assert.throws(
    () => parseEdgeLine(line),
    (err: unknown) => err instanceof MalformedInput && err.reason === reason,
    `expected ${reason} for ${JSON.stringify(line.slice(0, 80))}`,
  );
}

const B64 = fixtureLine('parser-b64payload.txt');

test('JSON edge event fixture', () => {
  const edge = parseEdgeLine(fixtureLine('processor-sample_logline.txt'));
  assert.equal(edge.receivedAtSec, Math.floor(Date.parse('2013-10-17T18:05:55.338Z') / 1000));
  assert.equal(edge.receivedAtSec, 1382033155);
  assert.equal(edge.clientIp, '10.1.40.26');
  assert.equal(edge.uuid, 'uuid1');
  assert.equal(edge.recordVersion, 3);
  assert.equal(edge.edgeType, 'internal');
  assert.equal(edge.userAgent, undefined);
  assert.equal(edge.xForwardedFor, undefined);
  assert.ok(edge.data.startsWith('eyJldmVudCI6'));
});

test('malformed xForwardedFor still parses; broken base64 is a payload problem, not an edge one', () => {
  const ip = parseEdgeLine(fixtureLine('parser-json-broken_ip_data.json'));
  assert.equal(ip.xForwardedFor, '10.0.0., 10.0.0.1');
  assert.equal(ip.receivedAtSec, 1418172623);
  assert.equal(ip.uuid, '123abc');
  assert.equal(ip.recordVersion, 3);
  const b64 = parseEdgeLine(fixtureLine('parser-json-broken_b64_data.json'));
  assert.equal(b64.data, 'Qw3notreally');
  assert.equal(b64.receivedAtSec, 1418172623);
});

test('optional fields: userAgent, null and empty values', () => {
  const base = { receivedAt: '2014-12-10T00:50:23Z', clientIp: '10.0.0.1', uuid: 'u', data: 'e30=' };
  const withUa = parseEdgeLine(JSON.stringify({ ...base, userAgent: 'TestBrowser', edgeType: 'external' }));
  assert.equal(withUa.userAgent, 'TestBrowser');
  assert.equal(withUa.edgeType, 'external');
  const nulls = parseEdgeLine(JSON.stringify({ ...base, userAgent: null, xForwardedFor: null, recordversion: null }));
  assert.deepEqual(nulls, { receivedAtSec: 1418172623, clientIp: '10.0.0.1', uuid: 'u', data: 'e30=' });
  assert.equal(parseEdgeLine(JSON.stringify({ ...base, userAgent: '' })).userAgent, undefined);
  assert.equal(parseEdgeLine(JSON.stringify({ ...base, clientIp: '' })).clientIp, '');
  assert.equal(parseEdgeLine(JSON.stringify({ ...base, clientIp: '2001:db8::1' })).clientIp, '2001:db8::1');
  assert.equal(parseEdgeLine('  ' + JSON.stringify(base) + ' ').uuid, 'u');

  assertMalformed(JSON.stringify({ ...base, userAgent: 5 }), 'bad_edge_shape');
  assertMalformed(JSON.stringify({ ...base, recordversion: '3' }), 'bad_edge_shape');
  assertMalformed(JSON.stringify({ ...base, recordversion: 2.5 }), 'bad_edge_shape');
  assertMalformed(JSON.stringify({ ...base, clientIp: '10.0.0.' }), 'bad_client_ip');
  assertMalformed(JSON.stringify({ ...base, clientIp: 17 }), 'bad_edge_shape');
  assertMalformed(JSON.stringify({ ...base, uuid: undefined }), 'bad_edge_shape');
  assertMalformed(JSON.stringify({ ...base, data: 12 }), 'bad_edge_shape');
  assertMalformed(JSON.stringify({ ...base, receivedAt: 1418172623 }), 'bad_edge_shape');
  assertMalformed(JSON.stringify({ ...base, receivedAt: 'yesterday' }), 'invalid_time');
});

test('bad JSON and empty lines', () => {
  assertMalformed('{"receivedAt": ', 'bad_json');
  assertMalformed('{}', 'bad_edge_shape');
  assertMalformed('{"a": 1}', 'bad_edge_shape');
  assertMalformed('', 'empty_line');
  assertMalformed('   \t ', 'empty_line');
});

test('RFC 3339 receivedAt: fractions, offsets, truncation', () => {
  const cases: Array<[string, number]> = [
    ['2014-12-10T00:50:23Z', 1418172623],
    ['2014-12-10T00:50:23.999999999Z', 1418172623],
    ['2014-12-10T00:50:23.5z', 1418172623],
    ['2014-12-10t00:50:23Z', 1418172623],
    ['2014-12-10T01:50:23+01:00', 1418172623],
    ['2014-12-09T16:50:23.1-08:00', 1418172623],
    ['2014-12-10T06:20:23+05:30', 1418172623],
    ['1970-01-01T00:00:00Z', 0],
    ['1969-12-31T23:59:59.5Z', -1],
    ['2000-02-29T12:00:00Z', Date.UTC(2000, 1, 29, 12) / 1000],
    ['2016-02-29T23:59:59Z', Date.UTC(2016, 1, 29, 23, 59, 59) / 1000],
    ['9999-12-31T23:59:59Z', Date.UTC(9999, 11, 31, 23, 59, 59) / 1000],
  ];
  for (const [text, want] of cases) assert.equal(parseRfc3339Seconds(text), want, text);

  // Agrees with Date.parse over a spread of instants.
  for (let ms = Date.UTC(1990, 0, 1); ms < Date.UTC(2040, 0, 1); ms += 86400_000 * 37 + 3_723_456) {
    const iso = new Date(ms).toISOString();
    assert.equal(parseRfc3339Seconds(iso), Math.floor(ms / 1000), iso);
  }

  const invalid = [
    '2014-12-10 00:50:23Z',
    '2014-12-10T00:50:23',
    '2014-12-10T00:50:23.Z',
    '2014-13-10T00:50:23Z',
    '2014-00-10T00:50:23Z',
    '2015-02-29T00:50:23Z',
    '2100-02-29T00:50:23Z',
    '2014-04-31T00:50:23Z',
    '2014-12-10T24:00:00Z',
    '2014-12-10T00:60:00Z',
    '2014-12-10T00:50:60Z',
    '2014-12-10T00:50:23+24:00',
    '2014-12-10T00:50:23+0100',
    '2014-12-10T00:50:23Zjunk',
    '2014-12-10T0:50:23Z',
    '+2014-12-10T00:50:23Z',
    '2014-12-10T00:50:2aZ',
    '',
  ];
  for (const text of invalid) assert.ok(Number.isNaN(parseRfc3339Seconds(text)), text);
});

test('legacy line', () => {
  const line = `222.22.222.222 [1395707641.000] data=${B64} 09fff3e1-49eff880-535707f3-20f9e114d784a3fa`;
  assert.deepEqual(parseEdgeLine(line), {
    receivedAtSec: 1395707641,
    clientIp: '222.22.222.222',
    uuid: '09fff3e1-49eff880-535707f3-20f9e114d784a3fa',
    data: B64,
  });
  // Millis are truncated; other query parameters and trailing fields are ignored.
  const extra = parseEdgeLine(`1.2.3.4 [1395707641.999] data=abc&ip=1 uuid-x trailing stuff`);
  assert.equal(extra.receivedAtSec, 1395707641);
  assert.equal(extra.data, 'abc');
  assert.equal(extra.uuid, 'uuid-x');
  // A forwarded chain before the time: the first address is the client.
  const chain = parseEdgeLine(`1.2.3.4, 5.6.7.8 [1395707641] data=abc u1`);
  assert.equal(chain.clientIp, '1.2.3.4');
  assert.equal(chain.receivedAtSec, 1395707641);

  assertMalformed('222.22.222.222 1395707641.000 data=abc u', 'bad_legacy_line');
  assertMalformed('[1395707641.000] data=abc u', 'bad_legacy_line');
  assertMalformed('1.2.3.4 [1395707641.000 data=abc u', 'bad_legacy_line');
  assertMalformed('1.2.3.4 [13957x7641.000] data=abc u', 'invalid_time');
  assertMalformed('1.2.3.4 [] data=abc u', 'invalid_time');
  assertMalformed('1.2.3.4 [1395707641.000] payload=abc u', 'bad_legacy_line');
  assertMalformed('1.2.3.4 [1395707641.000] data=abc', 'bad_legacy_line');
  assertMalformed('1.2.3.4 [1395707641.000] data=abc ', 'bad_legacy_line');
});

test('garbage never escapes as anything but MalformedInput', () => {
  const rand = prng(42);
  const seeds = [
    fixtureLine('processor-sample_logline.txt'),
    `222.22.222.222 [1395707641.000] data=${B64} 09fff3e1-49eff880-535707f3-20f9e114d784a3fa`,
  ];
  let parsed = 0;
  for (let n = 0; n < 3000; n++) {
    const chars = [...seeds[n % 2]];
    const edits = 1 + Math.floor(rand() * 4);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rand() * chars.length);
      const r = rand();
      if (r < 0.3)
        chars.splice(at); // truncate
      else if (r < 0.6) chars[at] = String.fromCharCode(Math.floor(rand() * 0x3000));
      else chars.splice(at, 1);
    }
    try {
      parseEdgeLine(chars.join(''));
      parsed++;
    } catch (err) {
      assert.ok(err instanceof MalformedInput, `unexpected ${String(err)}`);
    }
  }
  assert.ok(parsed > 0); // some mutations only touch the payload

  const binary = Buffer.alloc(4096);
  for (let i = 0; i < binary.length; i++) binary[i] = Math.floor(rand() * 256);
  assert.throws(() => parseEdgeLine(binary.toString('latin1')), MalformedInput);
  // Megabytes without the expected delimiters stay linear (no backtracking regex).
  assert.throws(() => parseEdgeLine('x'.repeat(5_000_000)), MalformedInput);
  assert.throws(() => parseEdgeLine('1.2.3.4 [' + '1'.repeat(5_000_000)), MalformedInput);
  assert.throws(() => parseEdgeLine('{' + '"a":'.repeat(1_000_000)), MalformedInput);
});
