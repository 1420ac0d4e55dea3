import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { compileSchema } from '../../../worker/transform/columns.js';
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
