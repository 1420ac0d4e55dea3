/**
 * The per-line hot path: edge line -> payload -> events -> table rows, with every
 * line and event counted in exactly one outcome (outcomes.ts). Plain synchronous
 * code; the only asynchrony is a user-id lookup that missed its local cache,
 * which parks that one row until the batch ends.
 */
import type { CompiledTable } from './columns.js';
import { MalformedInput, parseEdgeLine } from './edge.js';
import { addEvent, addMalformed, emptyCounts, type EventOutcome, type OutcomeCounts } from './outcomes.js';
import { decodePayload, enrichEvents } from './payload.js';
import type { Properties } from './values.js';

/** Where rows and side outputs go (OutputWriters implements it). */
export interface RowSink {
  writeRow(event: string, version: number, fields: readonly (string | null)[]): void;
  writeNonTracked(event: string, properties: unknown): void;
  writeQuarantine(rec: { source: string; lineNo: number; reason: string; text: string }): void;
}

/** What `spade parse` reports per event (SPEC section 5). */
export interface ParsedEvent {
  event: string;
  version: number;
  uuid: string;
  outcome: EventOutcome | 'malformed';
  columns?: Record<string, string | null>;
  reason?: string;
  lineNo?: number;
}

export interface ProcessorOptions {
  /** Compiled schemas by event name: the tables this run writes. */
  tables: ReadonlyMap<string, CompiledTable>;
  /** Event names that have a schema but are not wanted in this run (counted as `excluded`). */
  otherKnownEvents?: ReadonlySet<string>;
  /** Table pre-filter on the raw payload text: false means "certainly none of the wanted events". */
  payloadFilter?: (data: string) => boolean;
  /** Called per event with its columns (for `spade parse` and the parse server); slows the hot path. */
  onParsed?: (p: ParsedEvent) => void;
}

export class EventProcessor {
  readonly counts: OutcomeCounts = emptyCounts();
  private readonly pending: Promise<void>[] = [];
  /** One reusable output array per table: rows are encoded synchronously by the sink. */
  private readonly scratch = new Map<CompiledTable, (string | null)[]>();

  constructor(
    private readonly opts: ProcessorOptions,
    private readonly sink: RowSink,
  ) {}

  /** A line the reader could not deliver whole (too long, torn by truncated input). */
  badLine(source: string, lineNo: number, reason: string, text: string): void {
    addMalformed(this.counts, reason);
    this.sink.writeQuarantine({ source, lineNo, reason, text });
    this.opts.onParsed?.({ event: '', version: 0, uuid: '', outcome: 'malformed', reason, lineNo });
  }

  /** Processes complete lines; returns a promise only when some row awaits a remote user-id lookup. */
  processLines(lines: readonly string[], firstLineNo: number, source: string): void | Promise<void> {
    for (let i = 0; i < lines.length; i++) {
      this.processLine(lines[i] as string, firstLineNo + i, source);
    }
    if (this.pending.length === 0) return;
    const waiting = this.pending.splice(0);
    return Promise.all(waiting).then(() => undefined);
  }

  private processLine(line: string, lineNo: number, source: string): void {
    if (line.length === 0) {
      this.badLine(source, lineNo, 'empty_line', '');
      return;
    }
    const counts = this.counts;
    let events;
    try {
      const edge = parseEdgeLine(line);
      if (this.opts.payloadFilter !== undefined && !this.opts.payloadFilter(edge.data)) {
        counts.lines++;
        counts.filteredLines++;
        return;
      }
      const raw = decodePayload(edge.data);
      if (raw.length === 0) throw new MalformedInput('bad_payload_shape', 'payload holds no events');
      events = enrichEvents(edge, raw);
    } catch (err) {
      const reason = err instanceof MalformedInput ? err.reason : 'internal_error';
      this.badLine(source, lineNo, reason, line);
      return;
    }
    counts.lines++;
    counts.decodedLines++;
    for (let j = 0; j < events.length; j++) {
      const ev = events[j]!;
      this.processEvent(ev.name, ev.properties, ev.uuid, lineNo);
    }
  }

  private processEvent(name: string, properties: Properties, uuid: string, lineNo: number): void {
    if (name === '') {
      this.finish('', 0, uuid, 'empty', lineNo);
      return;
    }
    const table = this.opts.tables.get(name);
    if (table === undefined) {
      if (this.opts.otherKnownEvents?.has(name)) {
        this.finish(name, 0, uuid, 'excluded', lineNo);
      } else {
        this.sink.writeNonTracked(name, properties);
        this.finish(name, 0, uuid, 'untracked', lineNo);
      }
      return;
    }
    let out = this.scratch.get(table);
    if (out === undefined) {
      out = new Array<string | null>(table.columnNames.length).fill(null);
      this.scratch.set(table, out);
    }
    let errors: number | Promise<number>;
    try {
      errors = table.convert(properties, out);
    } catch (err) {
      // A converter bug must not stop the partition: the event is kept in quarantine.
      this.badEvent(name, uuid, lineNo, err, properties);
      return;
    }
    if (typeof errors === 'number') {
      this.emitRow(table, out, errors, uuid, lineNo);
      return;
    }
    // Slow path: a user-id lookup is in flight; give this row its own array.
    const own = out;
    this.scratch.delete(table);
    this.pending.push(
      errors.then(
        (n) => this.emitRow(table, own, n, uuid, lineNo),
        (err: unknown) => this.badEvent(name, uuid, lineNo, err, properties),
      ),
    );
  }

  private emitRow(table: CompiledTable, out: (string | null)[], errors: number, uuid: string, lineNo: number): void {
    this.sink.writeRow(table.event, table.version, out);
    const outcome: EventOutcome = errors === 0 ? 'success' : 'skipped_column';
    if (this.opts.onParsed) {
      const columns: Record<string, string | null> = {};
      table.columnNames.forEach((c, k) => (columns[c] = out[k] ?? null));
      this.opts.onParsed({ event: table.event, version: table.version, uuid, outcome, columns, lineNo });
    }
    addEvent(this.counts, table.event, outcome);
  }

  private finish(event: string, version: number, uuid: string, outcome: EventOutcome, lineNo: number): void {
    addEvent(this.counts, event, outcome);
    this.opts.onParsed?.({ event, version, uuid, outcome, lineNo });
  }

  /** A converter threw (a bug, never data): the event is kept whole in quarantine. */
  private badEvent(name: string, uuid: string, lineNo: number, err: unknown, properties: Properties): void {
    const reason = `internal_error: ${err instanceof Error ? err.message : String(err)}`;
    addEvent(this.counts, name, 'failed');
    this.sink.writeQuarantine({ source: name, lineNo, reason, text: JSON.stringify({ event: name, properties }) });
    this.opts.onParsed?.({ event: name, version: 0, uuid, outcome: 'failed', reason, lineNo });
  }
}
