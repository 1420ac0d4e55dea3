import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import {
  latestVersions,
  loadTableConfig,
  parseTableConfig,
  SchemaError,
  type TableSchema,
} from '../../../worker/transform/schema.js';
import { fixturePath } from '../../helpers/fixtures.js';

const CONFIG_PATH = fixturePath('spade/table_config.json');

function column(outbound: string, transformer = 'varchar', options = '', extra: Record<string, unknown> = {}) {
  return {
    InboundName: outbound,
    OutboundName: outbound,
    Transformer: transformer,
    ColumnCreationOptions: options,
    ...extra,
  };
}

function checkRealConfig(tables: TableSchema[]): void {
  assert.equal(tables.length, 54);
  assert.equal(
    tables.reduce((n, t) => n + t.columns.length, 0),
    1397,
  );
  const first = tables[0]!;
  assert.equal(first.event, 'video_ad_impression');
  assert.equal(first.version, 0);
  const byName = new Map(first.columns.map((c) => [c.outboundName, c]));
  assert.deepEqual(
    { ...byName.get('time') },
    {
      inboundName: 'time',
      outboundName: 'time',
      transformer: 'f@timestamp@unix',
      options: ' sortkey',
      sortkey: true,
      distkey: false,
      supporting: [],
    },
  );
  const deviceId = byName.get('device_id')!;
  assert.equal(deviceId.varcharWidth, 32);
  assert.equal(deviceId.declaredWidth, 32);
  assert.equal(deviceId.distkey, true);
  assert.equal(byName.get('channel_id')!.varcharWidth, undefined);
  // Every event has the Pacific `time` column the replay window compares.
  for (const t of tables) {
    assert.ok(
      t.columns.some((c) => c.outboundName === 'time' && c.transformer === 'f@timestamp@unix'),
      t.event,
    );
  }
}

describe('parseTableConfig', () => {
  it('loads the real table_config.json (54 events)', () => {
    checkRealConfig(parseTableConfig(readFileSync(CONFIG_PATH, 'utf8'), CONFIG_PATH));
  });

  it('defaults Version to 0, keeps given versions, applies the default varchar width', () => {
    const tables = parseTableConfig(
      JSON.stringify([
        { EventName: 'a', Columns: [column('x'), column('y', 'varchar', '(12)')] },
        { EventName: 'a', Version: 2, Columns: [column('x')] },
        { EventName: 'b-c_1', Version: 1, Columns: [column('x', 'f@timestamp@2006-01-02')] },
      ]),
      'inline',
    );
    assert.deepEqual(
      tables.map((t) => [t.event, t.version]),
      [
        ['a', 0],
        ['a', 2],
        ['b-c_1', 1],
      ],
    );
    assert.equal(tables[0]!.columns[0]!.varcharWidth, 256);
    assert.equal(tables[0]!.columns[0]!.declaredWidth, undefined);
    assert.equal(tables[0]!.columns[1]!.varcharWidth, 12);
    assert.equal(latestVersions(tables).get('a')!.version, 2);
  });

  it('reads null optional fields as absent, like Go', () => {
    const [table] = parseTableConfig(
      JSON.stringify([
        {
          EventName: 'a',
          Version: null,
          Columns: [{ InboundName: 'x', OutboundName: 'x', Transformer: 'int', ColumnCreationOptions: null }],
        },
      ]),
      'inline',
    );
    assert.equal(table!.version, 0);
    assert.equal(table!.columns[0]!.options, '');
  });

  it('accepts supporting columns and a BOM', () => {
    const tables = parseTableConfig(
      '\ufeff' +
        JSON.stringify([
          {
            EventName: 'u',
            Columns: [column('user_id', 'userIDWithMapping', '', { SupportingColumns: ' login , other ' })],
          },
        ]),
      'inline',
    );
    assert.deepEqual(tables[0]!.columns[0]!.supporting, ['login', 'other']);
  });

  // [what, config, every one of these must appear in the message]
  const errorCases: [string, unknown, string[]][] = [
    ['not an array', { EventName: 'a' }, ['cfg.json', 'JSON array']],
    ['an entry that is not an object', [42], ['cfg.json', 'event #1']],
    ['missing EventName', [{ Columns: [column('x')] }], ['event #1', 'EventName is missing']],
    [
      'bad event name (space)',
      [{ EventName: 'bad name', Columns: [column('x')] }],
      ['event "bad name"', 'EventName must match'],
    ],
    ['bad event name (quote)', [{ EventName: 'a"b', Columns: [column('x')] }], ['EventName must match']],
    [
      'bad event name (leading dash)',
      [{ EventName: '-a', Columns: [column('x')] }],
      ['event "-a"', 'EventName must match'],
    ],
    ['event name too long', [{ EventName: 'a'.repeat(128), Columns: [column('x')] }], ['EventName must match']],
    ['bad Version', [{ EventName: 'a', Version: 1.5, Columns: [column('x')] }], ['event "a"', 'Version']],
    ['negative Version', [{ EventName: 'a', Version: -1, Columns: [column('x')] }], ['event "a"', 'Version']],
    ['Columns missing', [{ EventName: 'a' }], ['event "a"', 'Columns must be a non-empty array']],
    ['Columns empty', [{ EventName: 'a', Columns: [] }], ['event "a"', 'Columns must be a non-empty array']],
    [
      'missing Transformer',
      [{ EventName: 'a', Columns: [{ InboundName: 'x', OutboundName: 'x', ColumnCreationOptions: '' }] }],
      ['event "a"', 'column "x"', 'Transformer is missing'],
    ],
    [
      'missing OutboundName',
      [{ EventName: 'a', Columns: [column('x'), { InboundName: 'y', Transformer: 'int', ColumnCreationOptions: '' }] }],
      ['event "a"', 'column (#2)', 'OutboundName is missing'],
    ],
    [
      'InboundName not a string',
      [{ EventName: 'a', Columns: [{ ...column('x'), InboundName: 3 }] }],
      ['event "a"', 'column "x"', 'InboundName must be a string'],
    ],
    [
      'unknown transformer',
      [{ EventName: 'a', Columns: [column('x', 'int8')] }],
      ['event "a"', 'column "x"', 'unknown transformer "int8"'],
    ],
    [
      'bare f@timestamp@',
      [{ EventName: 'a', Columns: [column('x', 'f@timestamp@')] }],
      ['column "x"', 'unknown transformer'],
    ],
    [
      'duplicate OutboundName',
      [{ EventName: 'a', Columns: [column('x'), column('y'), column('x', 'int')] }],
      ['event "a"', 'column "x" (#3)', 'duplicate OutboundName (also column #1)'],
    ],
    [
      'duplicate OutboundName differing in case',
      [{ EventName: 'a', Columns: [column('Time'), column('time')] }],
      ['column "time"', 'duplicate OutboundName'],
    ],
    [
      'duplicate (EventName, Version)',
      [
        { EventName: 'a', Columns: [column('x')] },
        { EventName: 'a', Version: 0, Columns: [column('y')] },
      ],
      ['event "a" version 0', 'defined twice', '#1', '#2'],
    ],
    [
      'width zero',
      [{ EventName: 'a', Columns: [column('x', 'varchar', '(0)')] }],
      ['event "a"', 'column "x"', 'between 1 and 65535'],
    ],
    [
      'width too large',
      [{ EventName: 'a', Columns: [column('x', 'varchar', '(65536)')] }],
      ['column "x"', 'between 1 and 65535'],
    ],
    [
      'width not an integer',
      [{ EventName: 'a', Columns: [column('x', 'varchar', '(3.5)')] }],
      ['column "x"', 'integer'],
    ],
    ['width negative', [{ EventName: 'a', Columns: [column('x', 'varchar', '(-1)')] }], ['column "x"', 'integer']],
    ['width unclosed', [{ EventName: 'a', Columns: [column('x', 'varchar', '(32')] }], ['column "x"', 'missing ")"']],
    [
      'unknown option',
      [{ EventName: 'a', Columns: [column('x', 'varchar', '(32) encode lzo')] }],
      ['column "x"', 'unsupported "encode"'],
    ],
    [
      'width on a bigint',
      [{ EventName: 'a', Columns: [column('x', 'bigint', '(32)')] }],
      ['column "x"', 'only valid for varchar'],
    ],
    [
      'two sortkeys',
      [{ EventName: 'a', Columns: [column('x', 'int', ' sortkey'), column('y', 'int', 'sortkey')] }],
      ['event "a"', 'more than one sortkey'],
    ],
    [
      'two distkeys',
      [{ EventName: 'a', Columns: [column('x', 'varchar', '(3) distkey'), column('y', 'int', 'DISTKEY')] }],
      ['event "a"', 'more than one distkey'],
    ],
    [
      'userIDWithMapping without login',
      [{ EventName: 'a', Columns: [column('user_id', 'userIDWithMapping')] }],
      ['event "a"', 'column "user_id"', 'SupportingColumns "login"'],
    ],
    [
      'userIDWithMapping with another supporting column',
      [{ EventName: 'a', Columns: [column('user_id', 'userIDWithMapping', '', { SupportingColumns: 'name' })] }],
      ['column "user_id"', 'SupportingColumns "login"'],
    ],
    ['OutboundName too long', [{ EventName: 'a', Columns: [column('é'.repeat(64))] }], ['event "a"', '127 bytes']],
  ];
  for (const [what, config, expected] of errorCases) {
    it(`rejects: ${what}`, () => {
      assert.throws(
        () => parseTableConfig(JSON.stringify(config), 'cfg.json'),
        (err: unknown) => {
          assert.ok(err instanceof SchemaError, `a SchemaError, got ${String(err)}`);
          assert.ok(err.message.startsWith('cfg.json') || err.message.includes('\n  cfg.json'), err.message);
          for (const part of expected)
            assert.ok(err.message.includes(part), `${JSON.stringify(part)} in: ${err.message}`);
          return true;
        },
      );
    });
  }

  it('rejects text that is not JSON, naming the source', () => {
    assert.throws(
      () => parseTableConfig('[{"EventName": ', 'cfg.json'),
      /^SchemaError: cfg\.json: table config is not valid JSON/,
    );
  });

  it('reports every problem, each naming event and column', () => {
    const config = [
      { EventName: 'a', Columns: [column('x', 'nope')] },
      { EventName: 'b', Columns: [column('y', 'varchar', '(0)')] },
    ];
    assert.throws(
      () => parseTableConfig(JSON.stringify(config), 'cfg.json'),
      (err: unknown) => {
        assert.ok(err instanceof SchemaError);
        assert.equal(err.problems.length, 2);
        assert.match(err.problems[0]!, /^cfg\.json: event "a" column "x" \(#1\): unknown transformer "nope"$/);
        assert.match(err.problems[1]!, /^cfg\.json: event "b" column "y" \(#1\): .*between 1 and 65535/);
        assert.match(err.message, /^2 problems in the table config/);
        return true;
      },
    );
  });

  it('can leave invalid events out instead (the Go behaviour)', () => {
    const skipped: SchemaError[] = [];
    const tables = parseTableConfig(
      JSON.stringify([
        { EventName: 'good', Columns: [column('x')] },
        { EventName: 'bad', Columns: [column('x', 'nope')] },
        { EventName: 'good', Columns: [column('y')] },
      ]),
      'cfg.json',
      { onInvalidEvent: (e) => skipped.push(e) },
    );
    assert.deepEqual(
      tables.map((t) => t.event),
      ['good'],
    );
    assert.equal(skipped.length, 2);
    assert.match(skipped[0]!.message, /event "bad" column "x".*unknown transformer/);
    assert.match(skipped[1]!.message, /event "good" version 0 is defined twice/);
  });
});

describe('loadTableConfig', () => {
  let server: Server;
  let base: string;
  const configText = readFileSync(CONFIG_PATH, 'utf8');

  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/table_config.json') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(configText);
      } else if (req.url === '/broken.json') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('[{"EventName":"x","Columns":[]}]');
      } else {
        res.writeHead(404).end('not here');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('reads a local file', async () => checkRealConfig(await loadTableConfig(CONFIG_PATH)));

  it('reads a file:// URL', async () => checkRealConfig(await loadTableConfig(pathToFileURL(CONFIG_PATH).href)));

  it('fetches over HTTP', async () => checkRealConfig(await loadTableConfig(`${base}/table_config.json`)));

  it('names the URL and status on an HTTP error', async () => {
    await assert.rejects(loadTableConfig(`${base}/missing.json`), {
      message: `cannot fetch table config ${base}/missing.json: HTTP 404 Not Found`,
    });
  });

  it('validates what it fetched, naming the URL', async () => {
    await assert.rejects(loadTableConfig(`${base}/broken.json`), (err: unknown) => {
      assert.ok(err instanceof SchemaError);
      assert.match(err.message, new RegExp(`^${base}/broken\\.json: event "x": Columns must be a non-empty array`));
      return true;
    });
  });

  it('names a missing file', async () => {
    await assert.rejects(
      loadTableConfig('/nonexistent/table_config.json'),
      /cannot read table config \/nonexistent\/table_config\.json/,
    );
  });

  it('reads s3:// through the given reader, and refuses without one', async () => {
    const asked: string[] = [];
    const readUrl = async (url: string) => {
      asked.push(url);
      return Buffer.from(configText);
    };
    checkRealConfig(await loadTableConfig('s3://bucket/config/table_config.json', { readUrl }));
    assert.deepEqual(asked, ['s3://bucket/config/table_config.json']);
    await assert.rejects(
      loadTableConfig('s3://bucket/x.json'),
      /cannot read table config s3:\/\/bucket\/x\.json: no object store reader/,
    );
  });
});
