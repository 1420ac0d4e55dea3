import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { compileSchema, type CompiledTable, type TransformDeps } from '../../../worker/transform/columns.js';
import { openGeoIp, type GeoIp } from '../../../worker/transform/geoip.js';
import { UserIdMapper } from '../../../worker/transform/mapping.js';
import { enrichProperties } from '../../../worker/transform/payload.js';
import { parseTableConfig } from '../../../worker/transform/schema.js';
import { ExactInteger, type Properties } from '../../../worker/transform/values.js';
import { fixturePath } from '../../helpers/fixtures.js';

/** A one-column table reading property `v` with the given transformer and options. */
function oneColumn(transformer: string, options = '', deps: TransformDeps = {}): CompiledTable {
  const config = [
    {
      EventName: 'e',
      Columns: [{ InboundName: 'v', OutboundName: 'out', Transformer: transformer, ColumnCreationOptions: options }],
    },
  ];
  return compileSchema(parseTableConfig(JSON.stringify(config), 'test')[0]!, deps);
}

/** Converts `{v: value}` (or no v at all for `undefined`) and returns the column's text. */
function convertOne(table: CompiledTable, value: unknown): string | null {
  const props: Properties = value === undefined ? {} : { v: value };
  const out: (string | null)[] = [undefined as unknown as string];
  const errors = table.convert(props, out);
  assert.equal(typeof errors, 'number', 'conversion must be synchronous');
  assert.equal(errors, out[0] === null ? 1 : 0, 'error count matches the null column');
  return out[0]!;
}

type Case = [unknown, string | null];

function table(name: string, transformer: string, cases: Case[], options = '', deps?: () => TransformDeps): void {
  describe(name, () => {
    for (const [input, expected] of cases) {
      const label =
        input instanceof ExactInteger
          ? `ExactInteger(${input.text})`
          : typeof input === 'number'
            ? String(input)
            : JSON.stringify(input);
      it(`${label} → ${JSON.stringify(expected)}`, () => {
        assert.equal(convertOne(oneColumn(transformer, options, deps?.()), input), expected);
      });
    }
  });
}

const big = (text: string) => new ExactInteger(text);

table('int', 'int', [
  [0, '0'],
  [42, '42'],
  [-0, '0'],
  [2147483647, '2147483647'],
  [-2147483648, '-2147483648'],
  [2147483648, null],
  [-2147483649, null],
  ['2147483647', '2147483647'],
  ['-2147483648', '-2147483648'],
  ['2147483648', null],
  ['-2147483649', null],
  ['+5', '5'],
  ['007', '7'],
  ['-0', '0'],
  ['00000000000000000000042', '42'],
  ['', null],
  ['-', null],
  ['+', null],
  [' 5', null],
  ['5 ', null],
  ['1_000', null],
  ['1.0', null],
  ['1e3', null],
  ['0x10', null],
  ['abc', null],
  [1.5, null],
  [true, null],
  [null, null],
  [undefined, null],
  [{}, null],
  [big('9007199254740993'), null],
]);

table('bigint', 'bigint', [
  [0, '0'],
  [9007199254740991, '9007199254740991'],
  [2 ** 53, '9007199254740992'],
  [1e18, '1000000000000000000'],
  [-(2 ** 63), '-9223372036854775808'],
  [2 ** 63, null],
  [1e300, null],
  [big('9007199254740993'), '9007199254740993'],
  [big('9223372036854775807'), '9223372036854775807'],
  [big('9223372036854775808'), null],
  [big('-9223372036854775808'), '-9223372036854775808'],
  [big('-9223372036854775809'), null],
  ['9007199254740993', '9007199254740993'],
  ['9223372036854775807', '9223372036854775807'],
  ['9223372036854775808', null],
  ['-9223372036854775808', '-9223372036854775808'],
  ['-9223372036854775809', null],
  ['0009223372036854775807', '9223372036854775807'],
  ['+9223372036854775807', '9223372036854775807'],
  ['12345678901234567890', null],
  ['1e3', null],
  [1.5, null],
  [false, null],
  [undefined, null],
]);

table('float', 'float', [
  [1e21, '1000000000000000000000'],
  [5e-324, '0'],
  [0.1, '0.1'],
  [1 / 3, '0.3333333333333333'],
  [-0, '0'],
  [123456789.123, '123456789.123'],
  [1.5e-7, '0.00000015'],
  [-1.5e-7, '-0.00000015'],
  [1e-7, '0.0000001'],
  [-2.5, '-2.5'],
  [42, '42'],
  [9.999e-300, '0'],
  [-1e-300, '0'],
  [1e-299, '0.' + '0'.repeat(298) + '1'],
  [1.7976931348623157e308, '17976931348623157' + '0'.repeat(292)],
  [big('123456789012345678901234567890'), '123456789012345680000000000000'],
  ['1.5', '1.5'],
  ['+1.5', '1.5'],
  ['-1.5e3', '-1500'],
  ['1E+2', '100'],
  ['.5', '0.5'],
  ['5.', '5'],
  ['1e-400', '0'],
  ['1e400', null],
  ['-1e400', null],
  ['NaN', ''],
  ['nan', ''],
  ['NAN', ''],
  ['+NaN', null],
  ['Inf', null],
  ['+Inf', null],
  ['-infinity', null],
  ['Infinity', null],
  ['infin', null],
  ['0x1p-2', null],
  ['', null],
  [' 1', null],
  ['1 ', null],
  ['1_0', null],
  ['1e', null],
  ['.', null],
  ['abc', null],
  [true, null],
  [null, null],
  [undefined, null],
]);

table(
  'varchar(32)',
  'varchar',
  [
    ['abc', 'abc'],
    ['', ''],
    // 28 ASCII bytes + 日 (3 bytes) = 31; 本 would make 34.
    ['tab\there\nnewline \\ "quotes" 日本語 🎮', 'tab\there\nnewline \\ "quotes" 日'],
    [42, null],
    [true, null],
    [null, null],
    [{ a: 1 }, null],
    [undefined, null],
  ],
  '(32)',
);

describe('varchar byte widths', () => {
  const cases: [string, string, string][] = [
    // [options, input, output]
    ['(5)', 'hello', 'hello'],
    ['(5)', 'hello!', 'hello'],
    ['(5)', 'héllo wörld', 'héll'], // é is 2 bytes
    ['(5)', '🎮🎮', '🎮'], // 4 bytes each, never split
    ['(3)', '🎮', ''],
    ['(4)', 'a\0b', 'a\0'], // NUL is written as U+FFFD: 3 bytes
    ['(4)', '\ud800abc', '\ud800a'], // a lone surrogate too
    ['(3)', '日本語', '日'],
    ['', 'x'.repeat(300), 'x'.repeat(256)], // no width: Redshift's default 256
    [' distkey', 'é'.repeat(200), 'é'.repeat(128)],
    ['(65535)', 'x'.repeat(70000), 'x'.repeat(65535)],
  ];
  for (const [options, input, expected] of cases) {
    it(`${JSON.stringify(options)}: ${JSON.stringify(input.slice(0, 12))} (${input.length} units)`, () => {
      assert.equal(convertOne(oneColumn('varchar', options), input), expected);
    });
  }
});

table('bool', 'bool', [
  [true, 'true'],
  [false, 'false'],
  [1, 'true'],
  [0, 'false'],
  [2, null],
  [-1, null],
  ['true', null],
  ['1', null],
  [null, null],
  [undefined, null],
]);

table('f@timestamp@unix', 'f@timestamp@unix', [
  [1e9, '2001-09-08 18:46:40'],
  [999999999.9, null],
  [1380585602.5, '2013-09-30 17:00:02.5'],
  [1678615199, '2023-03-12 01:59:59'],
  [1678615200, '2023-03-12 03:00:00'],
  [13140000000, '2386-05-23 01:00:00'],
  [13140000000.5, '2386-05-23 01:00:00.5'],
  [13140000001, null],
  [big('1000000000000000000'), null],
  ['1500000000', null],
  [null, null],
  [undefined, null],
]);

table('f@timestamp@unix-utc', 'f@timestamp@unix-utc', [
  [1e9, '2001-09-09 01:46:40'],
  [1380585602.5, '2013-10-01 00:00:02.5'],
  [999999999, null],
  [13140000001, null],
]);

table('f@timestamp@2006-01-02 15:04:05', 'f@timestamp@2006-01-02 15:04:05', [
  ['2016-03-13 01:59:59', '2016-03-13 01:59:59'],
  ['2016-12-31 23:59:60', null],
  ['not a time', null],
  [1500000000, null],
]);

table('stringToIntegerMD5', 'stringToIntegerMD5', [
  ['hello', '1564557354'],
  [1, null],
]);

describe('GeoIP columns', () => {
  let geoip: GeoIp;
  before(async () => {
    geoip = await openGeoIp({
      cityPath: fixturePath('geoip/GeoIP2-City-Test.mmdb'),
      asnPath: fixturePath('geoip/GeoLite2-ASN-Test.mmdb'),
    });
  });
  const deps = () => ({ geoip });
  table(
    'ipCity',
    'ipCity',
    [
      ['81.2.69.142', 'London'],
      ['2.125.160.216', 'Boxford'],
      ['8.8.8.8', ''],
      ['not an ip', ''],
      [123, null],
      [undefined, null],
    ],
    '',
    deps,
  );
  table(
    'ipCountry',
    'ipCountry',
    [
      ['81.2.69.142', 'GB'],
      ['2.125.160.216', 'GB'],
      ['8.8.8.8', ''],
    ],
    '',
    deps,
  );
  table(
    'ipRegion',
    'ipRegion',
    [
      ['81.2.69.142', 'ENG'],
      ['2.125.160.216', 'ENG'],
      ['8.8.8.8', ''],
    ],
    '',
    deps,
  );
  table(
    'ipAsn',
    'ipAsn',
    [
      ['1.128.0.1', 'AS1221 Telstra Pty Ltd'],
      ['1.0.0.1', 'AS15169 Google Inc.'],
      ['8.8.8.8', ''],
      ['', ''],
      [null, null],
    ],
    '',
    deps,
  );
  table(
    'ipAsnInteger',
    'ipAsnInteger',
    [
      ['1.128.0.1', '1221'],
      ['1.0.0.1', '15169'],
      ['8.8.8.8', null],
      [false, null],
    ],
    '',
    deps,
  );

  it('reads the same IP for several columns of one event', () => {
    const config = [
      {
        EventName: 'geo',
        Columns: ['ipCity', 'ipCountry', 'ipRegion', 'ipAsn'].map((t) => ({
          InboundName: 'ip',
          OutboundName: t,
          Transformer: t,
          ColumnCreationOptions: '',
        })),
      },
    ];
    const compiled = compileSchema(parseTableConfig(JSON.stringify(config), 'test')[0]!, { geoip });
    const out: (string | null)[] = [];
    for (const [ip, expected] of [
      ['81.2.69.142', ['London', 'GB', 'ENG', '']],
      ['1.128.0.1', ['', '', '', 'AS1221 Telstra Pty Ltd']],
      ['2.125.160.216', ['Boxford', 'GB', 'ENG', '']],
    ] as const) {
      assert.equal(compiled.convert({ ip }, out), 0);
      assert.deepEqual(out, expected);
    }
  });

  it('marks as plain only columns whose text never needs TSV escaping', () => {
    // The row encoder trusts plainColumns and skips the escape scan for them.
    const transformers = [
      ['int', ''],
      ['bigint', ''],
      ['float', ''],
      ['bool', ''],
      ['f@timestamp@unix', ''],
      ['f@timestamp@unix-utc', ''],
      ['f@timestamp@2006-01-02\t15:04:05\\', ''],
      ['f@timestamp@Jan _2 15:04:05.000 MST 2006', ''],
      ['ipAsnInteger', ''],
      ['stringToIntegerMD5', ''],
      ['varchar', '(64)'],
      ['ipCity', ''],
      ['ipAsn', ''],
    ];
    const config = [
      {
        EventName: 'plain',
        Columns: transformers.map(([t, o], i) => ({
          InboundName: 'v',
          OutboundName: `c${i}`,
          Transformer: t,
          ColumnCreationOptions: o,
        })),
      },
    ];
    const compiled = compileSchema(parseTableConfig(JSON.stringify(config), 'test')[0]!, { geoip });
    assert.deepEqual(
      transformers.filter((_, i) => compiled.plainColumns[i]).map(([t]) => t),
      transformers.slice(0, 10).map(([t]) => t),
    );
    const values: unknown[] = [
      'a\tb\nc\\d\r\0',
      '2023-11-05\t01:30:00\\',
      'Nov  5 01:30:00.250 PST 2023',
      '2023-11-05 01:30:00',
      '81.2.69.142',
      '1.128.0.1',
      '-12',
      '1e3',
      'NaN',
      1.5e-7,
      -0,
      1e21,
      1699145100.25,
      2 ** 53 + 2,
      true,
      new ExactInteger('9223372036854775807'),
      new ExactInteger('-12345678901234567890'),
    ];
    const out: (string | null)[] = [];
    let plainTexts = 0;
    for (const v of values) {
      compiled.convert({ v }, out);
      out.forEach((text, i) => {
        if (!compiled.plainColumns[i] || text === null) return;
        plainTexts++;
        assert.doesNotMatch(
          text,
          /[\t\n\r\\\0]/,
          `${transformers[i]![0]} of ${String(v)} gave ${JSON.stringify(text)}`,
        );
      });
    }
    assert.ok(plainTexts > 20, `the values exercised the plain columns (${plainTexts} texts)`);
  });
});

describe('compileSchema', () => {
  it('fails at startup, naming the column and flag, when a GeoIP database is missing', async () => {
    assert.throws(() => oneColumn('ipCity'), /table "e" column "out" \(ipCity\).*--geoip-city/);
    assert.throws(() => oneColumn('ipAsnInteger'), /table "e" column "out" \(ipAsnInteger\).*--geoip-asn/);
    const cityOnly = await openGeoIp({ cityPath: fixturePath('geoip/GeoIP2-City-Test.mmdb') });
    assert.throws(() => oneColumn('ipAsn', '', { geoip: cityOnly }), /--geoip-asn/);
    assert.equal(convertOne(oneColumn('ipRegion', '', { geoip: cityOnly }), '81.2.69.142'), 'ENG');
  });

  it('fails at startup when a userIDWithMapping column has no mapping service', () => {
    const config = [
      {
        EventName: 'e',
        Columns: [
          {
            InboundName: 'user_id',
            OutboundName: 'user_id',
            Transformer: 'userIDWithMapping',
            ColumnCreationOptions: '',
            SupportingColumns: 'login',
          },
        ],
      },
    ];
    assert.throws(
      () => compileSchema(parseTableConfig(JSON.stringify(config), 'test')[0]!, {}),
      /column "user_id".*mapping/,
    );
  });

  it('names columns in config order and counts every errored column', () => {
    const config = [
      {
        EventName: 'mixed',
        Version: 3,
        Columns: [
          {
            InboundName: 'time',
            OutboundName: 'time',
            Transformer: 'f@timestamp@unix',
            ColumnCreationOptions: ' sortkey',
          },
          { InboundName: 'a', OutboundName: 'a_int', Transformer: 'int', ColumnCreationOptions: '' },
          { InboundName: 'a', OutboundName: 'a_text', Transformer: 'varchar', ColumnCreationOptions: '(8)' },
          { InboundName: 'missing', OutboundName: 'm', Transformer: 'bool', ColumnCreationOptions: '' },
          { InboundName: 'f', OutboundName: 'f', Transformer: 'float', ColumnCreationOptions: '' },
        ],
      },
    ];
    const compiled = compileSchema(parseTableConfig(JSON.stringify(config), 'test')[0]!, {});
    assert.equal(compiled.event, 'mixed');
    assert.equal(compiled.version, 3);
    assert.deepEqual(compiled.columnNames, ['time', 'a_int', 'a_text', 'm', 'f']);
    const out: (string | null)[] = [];
    assert.equal(compiled.convert({ time: 1e9, a: '12', f: 'nan' }, out), 1);
    assert.deepEqual(out, ['2001-09-08 18:46:40', '12', '12', null, '']);
    // The same array is reused for the next event; every slot is overwritten.
    assert.equal(compiled.convert({ time: 1e9 + 0.5, a: 7, f: 2.5, missing: true }, out), 1);
    assert.deepEqual(out, ['2001-09-08 18:46:40.5', '7', null, 'true', '2.5']);
  });

  it('does not read inherited properties as values', () => {
    const compiled = oneColumn('varchar');
    const config = [
      {
        EventName: 'e',
        Columns: ['constructor', 'toString', '__proto__'].map((name) => ({
          InboundName: name,
          OutboundName: name.replace(/_/g, 'u'),
          Transformer: 'varchar',
          ColumnCreationOptions: '',
        })),
      },
    ];
    const protoTable = compileSchema(parseTableConfig(JSON.stringify(config), 'test')[0]!, {});
    const out: (string | null)[] = [];
    assert.equal(protoTable.convert(JSON.parse('{}') as Properties, out), 3);
    assert.deepEqual(out, [null, null, null]);
    assert.equal(
      protoTable.convert(JSON.parse('{"constructor":"c","toString":"t","__proto__":"p"}') as Properties, out),
      0,
    );
    assert.deepEqual(out, ['c', 't', 'p']);
    assert.equal(convertOne(compiled, 'plain'), 'plain');
  });

  it('reads through the edge exactly what enrichProperties would have written', () => {
    // The SPEC's enrichment rule lives twice: enrichProperties (outputs that keep the
    // properties) and convert's edge patching (columns). They must agree.
    const names = ['time', 'client_time', 'ip', 'user_agent'];
    const config = [
      {
        EventName: 'e',
        // The float column sees the receive time (a number) that varchar rejects.
        Columns: [...names.map((n) => [n, n, 'varchar']), ['time', 'time_float', 'float']].map(
          ([inbound, outbound, transformer]) => ({
            InboundName: inbound,
            OutboundName: outbound,
            Transformer: transformer,
            ColumnCreationOptions: '',
          }),
        ),
      },
    ];
    const compiled = compileSchema(parseTableConfig(JSON.stringify(config), 'test')[0]!, {});
    const onlyTime = compileSchema(
      parseTableConfig(
        JSON.stringify([
          {
            EventName: 'e',
            Columns: [
              { InboundName: 'client_time', OutboundName: 'ct', Transformer: 'varchar', ColumnCreationOptions: '' },
            ],
          },
        ]),
        'test',
      )[0]!,
      {},
    );
    const present: Record<string, unknown> = {
      time: 'own-time',
      client_time: 'own-ct',
      ip: 'own-ip',
      user_agent: 'own-ua',
    };
    let cases = 0;
    for (const userAgent of [undefined, 'edge-ua']) {
      const edge = { receivedAtSec: 1699145100, clientIp: '10.0.0.1', uuid: 'u', data: '', userAgent };
      for (let mask = 0; mask < 16; mask++) {
        for (const value of ['present', null] as const) {
          const props: Properties = {};
          names.forEach((n, k) => {
            if (mask & (1 << k)) props[n] = value === null ? null : present[n];
          });
          const enriched = { ...props };
          enrichProperties(edge, enriched);
          for (const table of [compiled, onlyTime]) {
            const viaEdge: (string | null)[] = [];
            const viaEnriched: (string | null)[] = [];
            table.convert({ ...props }, viaEdge, edge);
            table.convert(enriched, viaEnriched);
            assert.deepEqual(viaEdge, viaEnriched, `${JSON.stringify(props)} userAgent ${userAgent}`);
            cases++;
          }
        }
      }
    }
    assert.equal(cases, 128);
  });
});

describe('userIDWithMapping', () => {
  let server: Server;
  let mapper: UserIdMapper;
  let compiled: CompiledTable;
  const requests: string[] = [];
  const ids: Record<string, string> = { alice: '1001', bob: '9007199254740993' };

  before(async () => {
    server = createServer((req, res) => {
      const login = new URL(req.url!, 'http://x').searchParams.get('login')!;
      requests.push(login);
      if (ids[login] === undefined) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      // The id as a bare JSON number, beyond 2^53 for bob: it must stay exact.
      res.end(`{"data":[{"id":${ids[login]},"login":"${login}"}]}`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    mapper = new UserIdMapper({
      urlTemplate: `http://127.0.0.1:${port}/users?login={login}`,
      jsonPath: 'data.0.id',
      timeoutMs: 5000,
      maxConcurrent: 2,
      cacheSize: 100,
    });
    const config = [
      {
        EventName: 'e',
        Columns: [
          { InboundName: 'n', OutboundName: 'n', Transformer: 'int', ColumnCreationOptions: '' },
          {
            InboundName: 'user_id',
            OutboundName: 'user_id',
            Transformer: 'userIDWithMapping',
            ColumnCreationOptions: '',
            SupportingColumns: 'login',
          },
        ],
      },
    ];
    compiled = compileSchema(parseTableConfig(JSON.stringify(config), 'test')[0]!, { userIds: mapper });
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const syncCases: [string, Properties, string | null][] = [
    ['integer id', { user_id: 42, login: 'zed' }, '42'],
    ['id as a string', { user_id: '42' }, '42'],
    ['id beyond 2^53', { user_id: new ExactInteger('9223372036854775807') }, '9223372036854775807'],
    ['empty login', { user_id: null, login: '' }, null],
    ['blank login', { login: '   ' }, null],
    ['login not a string', { user_id: 'x', login: 5 }, null],
    ['neither id nor login', {}, null],
  ];
  for (const [what, props, expected] of syncCases) {
    it(`${what} → ${expected} (synchronously)`, () => {
      const out: (string | null)[] = [];
      const errors = compiled.convert({ n: 1, ...props }, out);
      assert.equal(errors, expected === null ? 1 : 0);
      assert.deepEqual(out, ['1', expected]);
    });
  }

  it('looks a login up once, then answers from the cache synchronously', async () => {
    const out: (string | null)[] = [];
    const first = compiled.convert({ n: 1, user_id: 'not-an-id', login: ' alice ' }, out);
    assert.ok(first instanceof Promise, 'a cache miss returns a Promise');
    assert.equal(await first, 0);
    assert.deepEqual(out, ['1', '1001']);

    const again: (string | null)[] = [];
    assert.equal(compiled.convert({ n: 'x', login: 'alice' }, again), 1);
    assert.deepEqual(again, [null, '1001']);
    assert.equal(requests.filter((l) => l === 'alice').length, 1);
  });

  it('keeps ids beyond 2^53 exact', async () => {
    const out: (string | null)[] = [];
    assert.equal(await compiled.convert({ n: 1, login: 'bob' }, out), 0);
    assert.deepEqual(out, ['1', '9007199254740993']);
  });

  it('an unknown login is a column error, then remembered for a while', async () => {
    const out: (string | null)[] = [];
    const pending = compiled.convert({ n: 2, login: 'nobody' }, out);
    assert.ok(pending instanceof Promise);
    assert.equal(await pending, 1);
    assert.deepEqual(out, ['2', null]);
    assert.equal(compiled.convert({ n: 2, login: 'nobody' }, out), 1);
    assert.equal(requests.filter((l) => l === 'nobody').length, 1);
  });
});
