/**
 * `spade transform` and `spade parse` as a user runs them: real processes,
 * a malformed corpus, every line counted once, exit code 0, the bad lines in
 * quarantine, rows in gzip TSV files.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { constants as zlibConstants, gunzipSync, gzipSync } from 'node:zlib';
import { fixturePath } from '../../helpers/fixtures.js';
import { listFiles } from '../../helpers/list-files.js';
import { DEMO_CONFIG, runSpade } from '../../helpers/replay-env.js';

const edge = (uuid: string, payload: unknown, data?: string): string =>
  JSON.stringify({
    receivedAt: '2023-11-05T10:00:00.250Z',
    clientIp: '1.2.3.4',
    uuid,
    data: data ?? Buffer.from(JSON.stringify(payload)).toString('base64'),
    recordversion: 3,
  });

const gzLines = (files: string[]): string[] =>
  files.flatMap((f) => gunzipSync(readFileSync(f)).toString('utf8').split('\n').filter(Boolean));

function countsLine(stderr: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const m of stderr.matchAll(/([a-z_]+) (\d+)/g)) counts[m[1]!] ??= Number(m[2]);
  return counts;
}

test('a malformed corpus: every line counted once, exit 0, bad lines in quarantine, good rows written', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spade-transform-'));
  const good = Array.from({ length: 300 }, (_, i) =>
    edge(`g${i}`, { event: 'login', properties: { login: `user\t${i}`, user_id: i, platform: 'p' } }),
  );
  const goodText = good.join('\n');
  const multi = edge('m1', [
    { event: 'video_play', properties: { channel: 'c' } },
    { event: 'no_such_event', properties: { a: 1 } },
    { event: '', properties: {} },
  ]);
  const bad = [
    '{"clientIp": "1.2.3.4", "receivedAt": "broken',
    edge('b1', null, 'not*base64!'),
    edge('b2', null, Buffer.from('"just a string"').toString('base64')),
    edge('b3', null, Buffer.from('[1,2]').toString('base64')),
    '{"valid":"json","wrong":"shape"}',
    '[1,2,3]',
    '\u0000\u0001\u0002garbage\u00ff',
    'x'.repeat(5 * 1024 * 1024),
  ];
  const plain = join(dir, 'plain.log');
  writeFileSync(plain, [goodText, multi, ...bad].join('\n') + '\n');
  // Invalid UTF-8 and raw binary bytes on their own lines.
  const binary = join(dir, 'binary.log');
  writeFileSync(
    binary,
    Buffer.concat([
      Buffer.from(good[1]! + '\n'),
      Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x0a]),
      Buffer.from([0x80, 0x81, 0x0a]),
    ]),
  );
  // A gzip file cut in the middle: its complete lines count, the torn one is quarantined.
  const cut = join(dir, 'cut.log.gz');
  const gz = gzipSync(good.join('\n') + '\n');
  writeFileSync(cut, gz.subarray(0, Math.floor(gz.length * 0.6)));

  const out = join(dir, 'out');
  const res = await runSpade([
    'transform',
    plain,
    binary,
    cut,
    '--config',
    DEMO_CONFIG,
    '--out',
    out,
    '--threads',
    '2',
    '--accept-damaged-input',
  ]);
  assert.equal(res.code, 0, res.stderr);
  const c = countsLine(res.stderr.slice(res.stderr.indexOf('lines ')));
  assert.equal(c.decoded! + c.malformed! + c.filtered!, c.lines, 'every line in one outcome');
  assert.ok(c.malformed! >= bad.length + 2 + 1, `malformed ${c.malformed}`);
  assert.match(res.stderr, /1 damaged input\(s\)/);
  assert.match(res.stderr, /\n {2}\S*cut\.log\.gz: \d+ bytes, \d+ lines read; /);

  const files = listFiles(out);
  const quarantine = gzLines(files.filter((f) => f.includes('_quarantine')));
  assert.equal(quarantine.length, c.malformed, 'one quarantine record per malformed line');
  const reasons = quarantine.map((l) => (JSON.parse(l) as { reason: string }).reason);
  for (const r of [
    'bad_json',
    'bad_base64',
    'bad_payload_shape',
    'bad_edge_shape',
    'bad_legacy_line',
    'truncated_input',
  ]) {
    assert.ok(reasons.includes(r), `reason ${r} in ${[...new Set(reasons)].join(', ')}`);
  }
  // The 5 MB line is kept whole in quarantine.
  assert.ok(quarantine.some((l) => (JSON.parse(l) as { text: string }).text.length === 5 * 1024 * 1024));
  const rows = gzLines(files.filter((f) => f.includes('/login/v0/')));
  assert.equal(rows.length, c.success! + c.skipped_column! - 1, 'login rows = events written minus the video_play one');
  assert.ok(
    rows.some((r) => r.includes('user\\\t1')),
    'an embedded TAB is escaped',
  );
  const untracked = gzLines(files.filter((f) => f.includes('_nontracked')));
  assert.deepEqual(
    untracked.map((l) => (JSON.parse(l) as { event: string }).event),
    ['no_such_event'],
  );
  assert.ok(files.every((f) => statSync(f).size > 0));
});

test('standard input gives the same counts as files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spade-transform-'));
  const lines = Array.from({ length: 200 }, (_, i) =>
    edge(`s${i}`, { event: 'login', properties: { login: `u${i}` } }),
  );
  lines.push('garbage');
  const res = await runSpade(
    ['transform', '--config', DEMO_CONFIG, '--out', join(dir, 'out'), '--threads', '1'],
    {},
    lines.join('\n') + '\n',
  );
  assert.equal(res.code, 0, res.stderr);
  const c = countsLine(res.stderr.slice(res.stderr.indexOf('lines ')));
  assert.equal(c.lines, 201);
  assert.equal(c.malformed, 1);
  assert.equal(gzLines(listFiles(join(dir, 'out')).filter((f) => f.includes('/login/'))).length, 200);
});

test('damaged gzip inputs (truncated, corrupt in the middle, on stdin) exit non-zero, each named with what was read', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spade-transform-'));
  const lines = Array.from({ length: 3000 }, (_, i) =>
    edge(`d${i}`, { event: 'login', properties: { login: `user${i}-${Math.random()}` } }),
  );
  const gz = gzipSync(lines.join('\n') + '\n');
  const cut = join(dir, 'cut.log.gz');
  const cutBytes = gz.subarray(0, Math.floor(gz.length * 0.5));
  writeFileSync(cut, cutBytes);
  // What a reader gets out of the truncated file: every byte zlib can decode.
  const readable = gunzipSync(cutBytes, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
  const readableLines = readable.toString('utf8').split('\n').length; // the torn last line included
  const corrupt = join(dir, 'corrupt.log.gz');
  const broken = Buffer.from(gz);
  for (let i = Math.floor(broken.length / 2); i < Math.floor(broken.length / 2) + 64; i++)
    broken[i] = broken[i]! ^ 0x5a;
  writeFileSync(corrupt, broken);
  const clean = join(dir, 'clean.log');
  writeFileSync(clean, lines.slice(0, 10).join('\n') + '\n');

  const args = ['transform', clean, cut, corrupt, '--config', DEMO_CONFIG, '--threads', '2'];
  const res = await runSpade([...args, '--out', join(dir, 'out')]);
  assert.equal(res.code, 1, res.stderr);
  assert.match(res.stderr, /2 damaged input\(s\)/);
  assert.ok(
    res.stderr.includes(`${cut}: ${readable.length} bytes, ${readableLines} lines read; `),
    `truncated file with its bytes and lines in:\n${res.stderr}`,
  );
  assert.match(res.stderr, /corrupt\.log\.gz: \d+ bytes, \d+ lines read; \S/);
  assert.match(res.stderr, /--accept-damaged-input/);
  assert.doesNotMatch(res.stderr, /clean\.log:/);
  // What could be read was written all the same.
  const rows = gzLines(listFiles(join(dir, 'out')).filter((f) => f.includes('/login/')));
  assert.ok(rows.length >= 10 + readableLines - 1, `rows ${rows.length}`);

  const accepted = await runSpade([...args, '--out', join(dir, 'out2'), '--accept-damaged-input']);
  assert.equal(accepted.code, 0, accepted.stderr);
  assert.match(accepted.stderr, /2 damaged input\(s\)/);

  const viaStdin = await runSpade(
    ['transform', '--config', DEMO_CONFIG, '--out', join(dir, 'out3'), '--threads', '1'],
    {},
    cutBytes,
  );
  assert.equal(viaStdin.code, 1, viaStdin.stderr);
  assert.ok(
    viaStdin.stderr.includes(`stdin: ${readable.length} bytes, ${readableLines} lines read; `),
    viaStdin.stderr,
  );
});

test('spade parse prints the SPEC objects for the fixtures', async () => {
  const lines = [
    'processor-sample_logline.txt',
    'processor-sample_multi_logline.txt',
    'processor-sample_error_logline.txt',
  ]
    .map((f) => readFileSync(fixturePath(`spade/${f}`), 'utf8').trim())
    .join('\n');
  const res = await runSpade(
    [
      'parse',
      '--config',
      fixturePath('spade/table_config.json'),
      '--geoip-city',
      fixturePath('geoip/GeoIP2-City-Test.mmdb'),
      '--geoip-asn',
      fixturePath('geoip/GeoLite2-ASN-Test.mmdb'),
    ],
    {},
    lines + '\n',
  );
  assert.equal(res.code, 0, res.stderr);
  const objs = res.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(objs[0]!.event, 'login');
  assert.equal(objs[0]!.uuid, 'uuid1');
  assert.deepEqual(Object.keys(objs[0]!), ['event', 'version', 'uuid', 'outcome', 'columns']);
  assert.equal((objs[0]!.columns as Record<string, unknown>).time, '2013-10-17 11:05:55');
  const multi = objs.slice(1, -1);
  assert.ok(multi.length >= 2);
  multi.forEach((o, i) => assert.equal(o.uuid, `uuid1-${i}`));
  // Its edge fields parse, its payload does not: Go Spade's `Unknown` event with the edge uuid.
  assert.deepEqual(objs.at(-1), {
    event: 'Unknown',
    version: 0,
    uuid: 'uuid1',
    outcome: 'malformed',
    reason: 'bad_payload_json',
  });
});

test('a line whose payload is not base64 or not JSON keeps its edge uuid in spade parse and in quarantine', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spade-transform-'));
  const lines = [
    edge('uuid-bad-base64', null, 'not*base64!'),
    edge('uuid-not-json', null, Buffer.from('{"event": "login", "prop').toString('base64')),
    edge('uuid-not-object', null, Buffer.from('"just a string"').toString('base64')),
    '{"clientIp": "1.2.3.4", "receivedAt": "broken',
    edge('uuid-good', { event: 'login', properties: { login: 'u' } }),
  ];
  const input = lines.join('\n') + '\n';
  const parsed = await runSpade(['parse', '--config', DEMO_CONFIG], {}, input);
  assert.equal(parsed.code, 0, parsed.stderr);
  const objs = parsed.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(objs.slice(0, 4), [
    { event: 'Unknown', version: 0, uuid: 'uuid-bad-base64', outcome: 'malformed', reason: 'bad_base64' },
    { event: 'Unknown', version: 0, uuid: 'uuid-not-json', outcome: 'malformed', reason: 'bad_payload_json' },
    { event: 'Unknown', version: 0, uuid: 'uuid-not-object', outcome: 'malformed', reason: 'bad_payload_shape' },
    // Not even the edge line parsed: no uuid to keep.
    { event: '', version: 0, uuid: '', outcome: 'malformed', reason: 'bad_json' },
  ]);
  assert.equal(objs[4]!.uuid, 'uuid-good');

  const out = join(dir, 'out');
  const res = await runSpade(['transform', '--config', DEMO_CONFIG, '--out', out, '--threads', '1'], {}, input);
  assert.equal(res.code, 0, res.stderr);
  // The outcome counts are as before: four malformed lines.
  assert.match(res.stderr, /lines 5, decoded 1, filtered 0, malformed 4 /);
  const records = gzLines(listFiles(out).filter((f) => f.includes('_quarantine'))).map(
    (l) => JSON.parse(l) as Record<string, unknown>,
  );
  assert.deepEqual(
    records.map((r) => [r.lineNo, r.reason, r.uuid]),
    [
      [1, 'bad_base64', 'uuid-bad-base64'],
      [2, 'bad_payload_json', 'uuid-not-json'],
      [3, 'bad_payload_shape', 'uuid-not-object'],
      [4, 'bad_json', undefined],
    ],
  );
  assert.deepEqual(Object.keys(records[0]!), ['source', 'lineNo', 'reason', 'uuid', 'text']);
  assert.equal(records[0]!.text, lines[0]);
});

test('a config error is one line and exit code 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spade-transform-'));
  const cfg = join(dir, 'bad.json');
  writeFileSync(
    cfg,
    JSON.stringify([
      {
        EventName: 'e',
        Columns: [{ InboundName: 'a', OutboundName: 'a', Transformer: 'nope', ColumnCreationOptions: '' }],
      },
    ]),
  );
  const res = await runSpade(['transform', '--config', cfg, '--out', join(dir, 'out')], {}, '');
  assert.equal(res.code, 1);
  assert.match(res.stderr, /nope/);
  assert.doesNotMatch(res.stderr, /\n\s+at /);
});

test('userIDWithMapping looks logins up through --user-id-url', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spade-transform-'));
  const cfg = join(dir, 'users.json');
  writeFileSync(
    cfg,
    JSON.stringify([
      {
        EventName: 'follow',
        Columns: [
          { InboundName: 'time', OutboundName: 'time', Transformer: 'f@timestamp@unix', ColumnCreationOptions: '' },
          {
            InboundName: 'user_id',
            OutboundName: 'user_id',
            Transformer: 'userIDWithMapping',
            ColumnCreationOptions: '',
            SupportingColumns: 'login',
          },
        ],
      },
    ]),
  );
  const seen: string[] = [];
  const server = createServer((req, res) => {
    const login = new URL(req.url ?? '/', 'http://x').searchParams.get('login') ?? '';
    seen.push(login);
    res.setHeader('content-type', 'application/json');
    res.end(login === 'alice' ? '{"data":{"id":4242}}' : '{"data":{}}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  try {
    const lines = [
      edge('u1', { event: 'follow', properties: { user_id: 17, login: 'bob' } }),
      edge('u2', { event: 'follow', properties: { user_id: 'x', login: ' alice ' } }),
      edge('u3', { event: 'follow', properties: { login: 'nobody' } }),
    ];
    const res = await runSpade(
      [
        'parse',
        '--config',
        cfg,
        '--user-id-url',
        `http://127.0.0.1:${port}/u?login={login}`,
        '--user-id-json-path',
        'data.id',
      ],
      {},
      lines.join('\n') + '\n',
    );
    assert.equal(res.code, 0, res.stderr);
    const ids = res.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { columns: { user_id: string | null } }).columns.user_id);
    assert.deepEqual(ids, ['17', '4242', null]);
    assert.deepEqual(seen.sort(), ['alice', 'nobody']);
  } finally {
    server.close();
  }
});
