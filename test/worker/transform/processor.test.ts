import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { compileSchema, type CompiledTable } from '../../../worker/transform/columns.js';
import { mergeCounts, emptyCounts } from '../../../worker/transform/outcomes.js';
import { EventProcessor, type RowSink } from '../../../worker/transform/processor.js';
import { parseTableConfig } from '../../../worker/transform/schema.js';
import { DEMO_CONFIG } from '../../helpers/replay-env.js';

function edgeLine(payload: unknown): string {
  return JSON.stringify({
    receivedAt: '2023-11-08T12:00:00Z',
    clientIp: '10.0.0.1',
    uuid: 'u1',
    data: Buffer.from(JSON.stringify(payload)).toString('base64'),
  });
}

/** Collects what the processor writes, as the output writers would receive it. */
class CollectingSink implements RowSink {
  rows: { event: string; fields: (string | null)[] }[] = [];
  nonTracked: { event: string; properties: unknown }[] = [];
  quarantine: { reason: string }[] = [];
  writeRow(event: string, _version: number, fields: readonly (string | null)[]): void {
    this.rows.push({ event, fields: [...fields] });
  }
  writeNonTracked(event: string, properties: unknown): void {
    this.nonTracked.push({ event, properties });
  }
  writeQuarantine(rec: { reason: string }): void {
    this.quarantine.push({ reason: rec.reason });
  }
}

test('event names from the data never reach Object.prototype through the outcome counts', () => {
  const schemas = parseTableConfig(readFileSync(DEMO_CONFIG, 'utf8'), DEMO_CONFIG);
  const table = compileSchema(schemas[0]!, {});
  const sink = new CollectingSink();
  const processor = new EventProcessor({ tables: new Map([[table.event, table]]) }, sink);
  const names = ['__proto__', 'constructor', 'toString', 'hasOwnProperty'];
  processor.processLines(
    [
      ...names.map((event) => edgeLine({ event, properties: { a: 1 } })),
      edgeLine({ event: table.event, properties: {} }),
    ],
    1,
    'test',
  );
  const probe: Record<string, unknown> = {};
  assert.equal(probe.untracked, undefined, 'Object.prototype untouched');
  for (const name of names) {
    assert.ok(Object.hasOwn(processor.counts.events, name), `own entry for ${name}`);
    assert.deepEqual({ ...processor.counts.events[name] }, { untracked: 1 });
  }
  assert.equal(sink.nonTracked.length, names.length);
  assert.equal(sink.rows.length, 1);
  // Merging (as the driver does with the threads' results) keeps them own entries too.
  const merged = mergeCounts(mergeCounts(emptyCounts(), processor.counts), processor.counts);
  assert.deepEqual({ ...merged.events.__proto__ }, { untracked: 2 });
  assert.equal(probe.untracked, undefined);
});

test('row outcomes are counted once however often and whenever the counts are read', () => {
  const schemas = parseTableConfig(readFileSync(DEMO_CONFIG, 'utf8'), DEMO_CONFIG);
  const table = compileSchema(schemas[0]!, {});
  const processor = new EventProcessor({ tables: new Map([[table.event, table]]) }, new CollectingSink());
  const row = edgeLine({ event: table.event, properties: {} });
  const success = (): number => {
    const t = processor.counts.events[table.event] ?? {};
    return (t.success ?? 0) + (t.skipped_column ?? 0);
  };
  assert.equal(success(), 0);
  processor.processLines([row, row], 1, 'test');
  assert.equal(success(), 2);
  assert.equal(success(), 2, 'a second read adds nothing');
  processor.processLines([row, row, row], 3, 'test');
  assert.equal(success(), 5);
  assert.equal(processor.counts.lines, 5);
});

test('columns and non-tracked output see the per-event enrichment (time, client_time, ip, user_agent)', () => {
  const col = (name: string, transformer: string, options = '') => ({
    InboundName: name,
    OutboundName: name,
    Transformer: transformer,
    ColumnCreationOptions: options,
  });
  const config = JSON.stringify([
    {
      EventName: 'ev',
      Columns: [
        col('time', 'f@timestamp@unix-utc'),
        col('client_time', 'f@timestamp@unix-utc'),
        col('ip', 'varchar', '(40)'),
        col('user_agent', 'varchar', '(100)'),
      ],
    },
  ]);
  const table = compileSchema(parseTableConfig(config, 'inline')[0]!, {});
  const sink = new CollectingSink();
  const processor = new EventProcessor({ tables: new Map([[table.event, table]]) }, sink);
  const line = (payload: unknown, userAgent?: string): string =>
    JSON.stringify({
      receivedAt: '2023-11-08T12:00:00.750Z',
      clientIp: '10.0.0.1',
      uuid: 'u1',
      data: Buffer.from(JSON.stringify(payload)).toString('base64'),
      ...(userAgent === undefined ? {} : { userAgent }),
    });
  processor.processLines(
    [
      // time moves to client_time; the edge's ip and user agent fill the gaps.
      line({ event: 'ev', properties: { time: 1699000000 } }, 'edge-agent'),
      // The event's own ip and user_agent win; its client_time stays when it has no time.
      line({ event: 'ev', properties: { client_time: 1699000001, ip: '1.2.3.4', user_agent: 'own' } }, 'edge-agent'),
      // Nothing to take from the edge: no user agent anywhere.
      line({ event: 'ev', properties: {} }),
      line({ event: 'other', properties: { time: 5 } }, 'edge-agent'),
    ],
    1,
    'test',
  );
  const receivedAt = '2023-11-08 12:00:00';
  assert.deepEqual(
    sink.rows.map((r) => r.fields),
    [
      [receivedAt, '2023-11-03 08:26:40', '10.0.0.1', 'edge-agent'],
      [receivedAt, '2023-11-03 08:26:41', '1.2.3.4', 'own'],
      [receivedAt, null, '10.0.0.1', null],
    ],
  );
  // The decoded objects were not rewritten for the rows, but kept output shows the enriched event.
  assert.deepEqual(sink.nonTracked, [
    {
      event: 'other',
      properties: {
        time: Math.floor(Date.parse('2023-11-08T12:00:00Z') / 1000),
        client_time: 5,
        ip: '10.0.0.1',
        user_agent: 'edge-agent',
      },
    },
  ]);
});

test('payloads read by the fast path give the same rows and outcomes as parsed ones', () => {
  const col = (name: string, transformer: string, options = '') => ({
    InboundName: name,
    OutboundName: `${name}_${transformer.replace(/\W/g, '')}`,
    Transformer: transformer,
    ColumnCreationOptions: options,
  });
  const config = JSON.stringify([
    {
      EventName: 'ev',
      Columns: [
        col('n', 'int'),
        col('n', 'bigint'),
        col('n', 'float'),
        col('n', 'bool'),
        col('n', 'f@timestamp@unix'),
        col('s', 'varchar', '(8)'),
        col('s', 'int'),
        col('s', 'f@timestamp@2006-01-02 15:04:05'),
        col('s', 'stringToIntegerMD5'),
        col('time', 'f@timestamp@unix-utc'),
        col('client_time', 'f@timestamp@unix-utc'),
        col('ip', 'varchar', '(40)'),
        // Read only as integers: the fast path hands integer literals over as their text.
        col('i', 'int'),
        col('i', 'bigint'),
        col('j', 'bigint'),
      ],
    },
    {
      // time read only as an integer, but its value also becomes client_time (a number there).
      EventName: 'ev2',
      Columns: [col('time', 'int'), col('client_time', 'f@timestamp@unix-utc')],
    },
  ]);
  const [table, table2] = parseTableConfig(config, 'inline').map((schema) => compileSchema(schema, {})) as [
    CompiledTable,
    CompiledTable,
  ];
  assert.deepEqual([...table2.reader.integerText], [0, 0]);
  assert.deepEqual(
    [...table.reader.integerText],
    ['n', 's', 'time', 'client_time', 'ip', 'i', 'j'].map((name) => (name === 'i' || name === 'j' ? 1 : 0)),
  );
  // JSON literal texts (so long integers keep their digits).
  const literals = [
    '0',
    '-0',
    '1',
    '-1',
    '2147483647',
    '2147483648',
    '-2147483648',
    '-2147483649',
    '100',
    '123456789012345',
    '-999999999999999',
    '1234567890123456',
    '9007199254740993',
    '-9223372036854775808',
    '1.5',
    '1.0',
    '1e2',
    '1e21',
    '5e-324',
    'true',
    'false',
    'null',
    '"x"',
    '""',
    '"12345"',
    '"-0012"',
    '"ünïcödé 🎮"',
    '"tab\\there"',
    '"2023-11-05 01:30:00"',
    '"\\\\N"',
    '{}',
    '[1]',
  ];
  const payloads: string[] = [];
  for (const n of literals) {
    for (const s of literals.slice(0, 6).concat(literals.slice(literals.indexOf('null')))) {
      payloads.push(`{"event":"ev","properties":{"n":${n},"s":${s},"i":${n},"j":${s},"time":1699000000}}`);
    }
    payloads.push(`{"event":"ev2","properties":{"time":${n}}}`);
  }
  payloads.push(
    '{"properties":{"n":7,"ip":"1.2.3.4"},"event":"ev"}', // properties before the name
    '[{"event":"ev","properties":{"n":1}},{"event":"other","properties":{"n":2}},{"event":null}]',
    '{"event":"ev","properties":{"n":1,"n":2,"s":"a","s":"b"}}', // the last duplicate wins
    '{"event":"ev","properties":{"s":"\\u00e9\\"q\\" \\ud83c\\udfae"}}',
    '{"event":"ev","properties":null}',
  );
  const run = (texts: string[]): { rows: unknown; nonTracked: unknown; counts: unknown } => {
    const sink = new CollectingSink();
    const tables = new Map([table, table2].map((t) => [t.event, t]));
    const processor = new EventProcessor({ tables }, sink);
    processor.processLines(
      texts.map((p) =>
        JSON.stringify({
          receivedAt: '2023-11-08T12:00:00Z',
          clientIp: '10.0.0.1',
          uuid: 'u1',
          data: Buffer.from(p).toString('base64'),
        }),
      ),
      1,
      'test',
    );
    return { rows: sink.rows, nonTracked: sink.nonTracked, counts: processor.counts };
  };
  // The same payloads with a member the fast path leaves to JSON.parse (an object value).
  const parsed = payloads.map((p) =>
    p.startsWith('[') ? p.replace('{"event"', '{"x":{},"event"') : `{"x":{},${p.slice(1)}`,
  );
  const fast = run(payloads);
  assert.deepEqual(fast, run(parsed));
  assert.ok((fast.rows as unknown[]).length > literals.length * 10, 'rows were written');
});
