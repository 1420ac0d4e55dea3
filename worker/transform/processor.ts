/**
 * The per-line hot path: edge line -> payload -> events -> table rows, with every
 * line and event counted in exactly one outcome (outcomes.ts). Plain synchronous
 * code; the only asynchrony is a user-id lookup that missed its local cache,
 * which parks that one row until the batch ends.
 */
import type { CompiledTable } from './columns.js';
import { MalformedInput, parseEdgeLine, type EdgeEvent } from './edge.js';
import { addEvent, addMalformed, emptyCounts, eventTally, type EventOutcome, type OutcomeCounts } from './outcomes.js';
import { scanPayload, type ReaderLookup, type ScannedEvent } from './payload-scan.js';
import { decodePayloadBytes, enrichProperties, eventUuid, parsePayloadJson, type RawEvent } from './payload.js';
import type { Properties } from './values.js';

/** Where rows and side outputs go (OutputWriters implements it). */
export interface RowSink {
  /**
   * `plainColumns[i]` true: field i never needs TSV escaping (CompiledTable.plainColumns).
   * `uuid`: the event's uuid, which a sink may keep next to the row (OutputWriters' `rowUuids`).
   */
  writeRow(
    event: string,
    version: number,
    fields: readonly (string | null)[],
    plainColumns?: readonly boolean[],
    uuid?: string,
  ): void;
  writeNonTracked(event: string, properties: unknown): void;
  writeQuarantine(rec: { source: string; lineNo: number; reason: string; uuid?: string; text: string }): void;
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

interface TableState {
  /** Columns per row. */
  width: number;
  /** `counts.events[table.event]`. */
  tally: Partial<Record<EventOutcome, number>>;
  /**
   * Rows written since the tally was last brought up to date (see `counts`).
   * Counted here because every table's tally object has its own hidden class,
   * so incrementing it per row is a megamorphic property access.
   */
  success: number;
  skipped: number;
}

/** The event name `spade parse` gives a line whose payload did not decode (Go Spade's). */
export const UNKNOWN_EVENT = 'Unknown';

export class EventProcessor {
  private readonly tallies: OutcomeCounts = emptyCounts();
  private readonly pending: Promise<void>[] = [];
  /**
   * Per table: its row width and its entry in `counts.events`, so the hot path
   * looks neither up by name.
   */
  private readonly tableState = new Map<CompiledTable, TableState>();
  /** For the payload fast path: which properties an event's table reads. */
  private readonly readerFor: ReaderLookup;

  constructor(
    private readonly opts: ProcessorOptions,
    private readonly sink: RowSink,
  ) {
    const { tables, otherKnownEvents } = opts;
    this.readerFor = (name) => {
      const table = tables.get(name);
      if (table !== undefined) return table.reader;
      // A non-tracked event's properties are written whole: such payloads are parsed.
      return name === '' || otherKnownEvents?.has(name) ? undefined : null;
    };
  }

  /** Every outcome counted so far (the rows still counted per table are added first). */
  get counts(): OutcomeCounts {
    for (const state of this.tableState.values()) {
      const tally = state.tally;
      if (state.success > 0) tally.success = (tally.success ?? 0) + state.success;
      if (state.skipped > 0) tally.skipped_column = (tally.skipped_column ?? 0) + state.skipped;
      state.success = 0;
      state.skipped = 0;
    }
    return this.tallies;
  }

  /**
   * A malformed line: one the reader could not deliver whole (too long, torn
   * by truncated input) or one that did not decode. `uuid` is the edge
   * line's, when its edge fields parsed but its payload did not: such a line
   * is reported as Go Spade did, as event `Unknown`, version 0, with that uuid,
   * and its quarantine record carries the uuid.
   */
  badLine(source: string, lineNo: number, reason: string, text: string, uuid?: string): void {
    addMalformed(this.tallies, reason);
    if (uuid === undefined) {
      this.sink.writeQuarantine({ source, lineNo, reason, text });
      this.opts.onParsed?.({ event: '', version: 0, uuid: '', outcome: 'malformed', reason, lineNo });
      return;
    }
    this.sink.writeQuarantine({ source, lineNo, reason, uuid, text });
    this.opts.onParsed?.({ event: UNKNOWN_EVENT, version: 0, uuid, outcome: 'malformed', reason, lineNo });
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
    const counts = this.tallies;
    let edge;
    let payload: Buffer;
    let scanned: ScannedEvent[] | null;
    let parsed: RawEvent[] | null = null;
    try {
      edge = parseEdgeLine(line);
      if (this.opts.payloadFilter !== undefined && !this.opts.payloadFilter(edge.data)) {
        counts.lines++;
        counts.filteredLines++;
        return;
      }
      payload = decodePayloadBytes(edge.data);
      // The usual payload is read without building its objects; the rest (and
      // every bad one, whose error JSON.parse names) is decoded and parsed whole.
      scanned = scanPayload(payload, this.readerFor);
      if (scanned === null) {
        parsed = parsePayloadJson(payloadText(payload));
        if (parsed.length === 0) throw new MalformedInput('bad_payload_shape', 'payload holds no events');
      }
    } catch (err) {
      const reason = err instanceof MalformedInput ? err.reason : 'internal_error';
      // Set once the edge fields parsed: only the payload was bad.
      this.badLine(source, lineNo, reason, line, edge?.uuid);
      return;
    }
    counts.lines++;
    counts.decodedLines++;
    if (scanned !== null) {
      for (let j = 0; j < scanned.length; j++) {
        const ev = scanned[j]!;
        this.processEvent(ev.name, ev.slots, null, edge, payload, j, scanned.length, lineNo);
      }
    } else {
      for (let j = 0; j < parsed!.length; j++) {
        const ev = parsed![j]!;
        this.processEvent(ev.name, null, ev.properties, edge, payload, j, parsed!.length, lineNo);
      }
    }
  }

  /**
   * One event of a line, given either as its table's slot values (the fast
   * path, `slots`) or as its decoded properties. Converters read the enriched
   * names through `edge`; only outputs that keep the properties themselves
   * (non-tracked, quarantine) need the object, and enrich it first (the fast
   * path leaves payloads with non-tracked events to JSON.parse; an event it read
   * is parsed here only if its converter fails).
   */
  private processEvent(
    name: string,
    slots: unknown[] | null,
    properties: Properties | null,
    edge: EdgeEvent,
    payload: Buffer,
    index: number,
    count: number,
    lineNo: number,
  ): void {
    const uuid = eventUuid(edge, index, count);
    if (name === '') {
      this.finish('', 0, uuid, 'empty', lineNo);
      return;
    }
    const table = this.opts.tables.get(name);
    if (table === undefined) {
      if (this.opts.otherKnownEvents?.has(name)) {
        this.finish(name, 0, uuid, 'excluded', lineNo);
      } else {
        const props = properties ?? propertiesOf(payload, index);
        enrichProperties(edge, props);
        this.sink.writeNonTracked(name, props);
        this.finish(name, 0, uuid, 'untracked', lineNo);
      }
      return;
    }
    const state = this.tableState.get(table) ?? this.startTable(table);
    // A new row array per event: convert fills every column, and writing fresh
    // strings into a young array is cheaper for the GC than into a reused old one.
    const out = new Array<string | null>(state.width);
    let errors: number | Promise<number>;
    try {
      errors = slots !== null ? table.convertSlots(slots, out, edge) : table.convert(properties!, out, edge);
    } catch (err) {
      // A converter bug must not stop the partition: the event is kept in quarantine.
      this.badEvent(name, uuid, lineNo, err, edge, properties ?? propertiesOf(payload, index));
      return;
    }
    if (typeof errors === 'number') {
      this.emitRow(table, state, out, errors, uuid, lineNo);
      return;
    }
    // Slow path: a user-id lookup is in flight; the row is written when it settles.
    this.pending.push(
      errors.then(
        (n) => this.emitRow(table, state, out, n, uuid, lineNo),
        (err: unknown) => this.badEvent(name, uuid, lineNo, err, edge, properties ?? propertiesOf(payload, index)),
      ),
    );
  }

  private startTable(table: CompiledTable): TableState {
    const state = {
      width: table.columnNames.length,
      tally: eventTally(this.tallies, table.event),
      success: 0,
      skipped: 0,
    };
    this.tableState.set(table, state);
    return state;
  }

  private emitRow(
    table: CompiledTable,
    state: TableState,
    out: (string | null)[],
    errors: number,
    uuid: string,
    lineNo: number,
  ): void {
    this.sink.writeRow(table.event, table.version, out, table.plainColumns, uuid);
    const outcome: EventOutcome = errors === 0 ? 'success' : 'skipped_column';
    if (this.opts.onParsed) {
      const columns: Record<string, string | null> = {};
      table.columnNames.forEach((c, k) => (columns[c] = out[k] ?? null));
      this.opts.onParsed({ event: table.event, version: table.version, uuid, outcome, columns, lineNo });
    }
    if (errors === 0) state.success++;
    else state.skipped++;
  }

  private finish(event: string, version: number, uuid: string, outcome: EventOutcome, lineNo: number): void {
    addEvent(this.tallies, event, outcome);
    this.opts.onParsed?.({ event, version, uuid, outcome, lineNo });
  }

  /** A converter threw (a bug, never data): the event is kept whole in quarantine. */
  private badEvent(
    name: string,
    uuid: string,
    lineNo: number,
    err: unknown,
    edge: EdgeEvent,
    properties: Properties,
  ): void {
    enrichProperties(edge, properties);
    const reason = `internal_error: ${err instanceof Error ? err.message : String(err)}`;
    addEvent(this.tallies, name, 'failed');
    this.sink.writeQuarantine({ source: name, lineNo, reason, text: JSON.stringify({ event: name, properties }) });
    this.opts.onParsed?.({ event: name, version: 0, uuid, outcome: 'failed', reason, lineNo });
  }
}

/**
 * The properties of event `index` of a payload the fast path read: parsed
 * whole (a payload it accepted always parses, with the same events).
 */
function propertiesOf(payload: Buffer, index: number): Properties {
  return parsePayloadJson(payloadText(payload))[index]!.properties;
}

/** The text of payload bytes as decodePayloadBytes gives them (without their sentinel). */
function payloadText(payload: Buffer): string {
  return payload.toString('utf8', 0, payload.length - 1);
}
