/**
 * `spade parse`: edge lines on stdin, one JSON object per resulting event on
 * stdout (SPEC section 5). Runs in the calling thread: it is a debugging tool.
 */
import type { Readable, Writable } from 'node:stream';
import { decodedChunks, readLineBatches } from '../input/lines.js';
import { EventProcessor, type ParsedEvent, type RowSink } from '../transform/processor.js';
import { readConfigText } from '../transform/config-source.js';
import { prepareTransform, type PreparedTransform, type TransformSettings } from '../transform/setup.js';
import { redactUrl } from '../redact.js';

export interface ParseCommandOptions {
  /** Table config: file, http(s):// or s3:// URL. */
  config: string;
  geoipCity?: string;
  geoipAsn?: string;
  userIdMapping?: TransformSettings['userIdMapping'];
}

/** Discards rows: parse only reports them. */
const nullSink: RowSink = { writeRow() {}, writeNonTracked() {}, writeQuarantine() {} };

/** The SPEC's object shape, keys in the documented order. */
export function parsedToJson(p: ParsedEvent): string {
  const o: Record<string, unknown> = { event: p.event, version: p.version, uuid: p.uuid, outcome: p.outcome };
  if (p.columns) o.columns = p.columns;
  if (p.reason) o.reason = p.reason;
  return JSON.stringify(o);
}

async function prepare(opts: ParseCommandOptions): Promise<PreparedTransform> {
  return prepareTransform({
    configText: await readConfigText(opts.config),
    configSource: redactUrl(opts.config),
    geoipCity: opts.geoipCity,
    geoipAsn: opts.geoipAsn,
    userIdMapping: opts.userIdMapping,
  });
}

/** Builds a parser for one config: feed it lines, get the parse objects. */
export async function createLineParser(
  opts: ParseCommandOptions,
): Promise<(lines: string[]) => Promise<ParsedEvent[]>> {
  const prepared = await prepare(opts);
  return async (lines) => {
    const out: ParsedEvent[] = [];
    const processor = new EventProcessor({ ...prepared.processorOptions, onParsed: (p) => out.push(p) }, nullSink);
    const waiting = processor.processLines(lines, 1, 'input');
    if (waiting) await waiting;
    return out;
  };
}

export async function parseCommand(opts: ParseCommandOptions, input: Readable, output: Writable): Promise<void> {
  const prepared = await prepare(opts);
  let buffered: string[] = [];
  const processor = new EventProcessor(
    { ...prepared.processorOptions, onParsed: (p) => buffered.push(parsedToJson(p)) },
    nullSink,
  );
  const flush = async (): Promise<void> => {
    if (buffered.length === 0) return;
    const text = buffered.join('\n') + '\n';
    buffered = [];
    if (!output.write(text)) await new Promise((resolve) => output.once('drain', resolve));
  };
  await readLineBatches(
    decodedChunks(input),
    { source: 'stdin' },
    async (lines, firstLineNo) => {
      const waiting = processor.processLines(lines, firstLineNo, 'stdin');
      if (waiting) await waiting;
      await flush();
    },
    (bad) => processor.badLine('stdin', bad.lineNo, bad.reason, bad.text),
  );
  await flush();
}
