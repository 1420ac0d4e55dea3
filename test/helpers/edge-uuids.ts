/**
 * The uuids of the edge events that become table rows, read from edge files
 * with the transform's own per-event callback (`onParsed`): the uuid a
 * Kinesis record of that row must carry (`<uuid>-<i>` for event i of a
 * multi-event line).
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { ObjectStore } from '../../worker/store/objectstore.js';
import { EventProcessor, type ParsedEvent } from '../../worker/transform/processor.js';
import { prepareTransform } from '../../worker/transform/setup.js';

/** `table|uuid` plus `|<describe(row)>` of every row event for which `keep` is true, sorted. */
export async function edgeRowUuids(
  edge: ObjectStore,
  configPath: string,
  opts: {
    tables?: string[];
    keep?: (row: ParsedEvent & { columns: Record<string, string | null> }) => boolean;
    describe?: (row: ParsedEvent & { columns: Record<string, string | null> }) => string;
  } = {},
): Promise<string[]> {
  const prepared = await prepareTransform({
    configText: readFileSync(configPath, 'utf8'),
    configSource: configPath,
    tables: opts.tables,
  });
  const out: string[] = [];
  const sink = { writeRow() {}, writeNonTracked() {}, writeQuarantine() {} };
  const processor = new EventProcessor(
    {
      ...prepared.processorOptions,
      onParsed: (p) => {
        if (p.columns === undefined) return;
        const row = p as ParsedEvent & { columns: Record<string, string | null> };
        if (opts.keep && !opts.keep(row)) return;
        out.push(`${p.event}|${p.uuid}${opts.describe ? `|${opts.describe(row)}` : ''}`);
      },
    },
    sink,
  );
  for await (const o of edge.list('')) {
    if (!o.key.endsWith('.gz')) continue;
    const text = gunzipSync(await edge.readBytes(o.key)).toString('utf8');
    await processor.processLines(
      text.split('\n').filter((l) => l !== ''),
      1,
      o.key,
    );
  }
  return out.sort();
}
