/**
 * Outcome accounting. Every input line ends in exactly one line outcome:
 * `malformed` (it or its payload cannot be decoded), `filtered` (the replay's
 * table pre-filter proved it holds none of the wanted events) or `decoded`.
 * Every event of a decoded line then ends in exactly one event outcome.
 */
/**
 * `excluded`: the event has a schema but the run does not want its table;
 * `failed`: converting it threw (a bug, not data); it is kept in quarantine.
 */
export const EVENT_OUTCOMES = ['success', 'skipped_column', 'untracked', 'empty', 'excluded', 'failed'] as const;
export type EventOutcome = (typeof EVENT_OUTCOMES)[number];

export interface OutcomeCounts {
  lines: number;
  decodedLines: number;
  filteredLines: number;
  malformedLines: number;
  /** malformed lines by reason (bad_base64, truncated_input, ...) */
  malformedByReason: Record<string, number>;
  /** event outcome counts per event name ('' for empty names) */
  events: Record<string, Partial<Record<EventOutcome, number>>>;
  /** decompressed input bytes */
  inputBytes: number;
}

export function emptyCounts(): OutcomeCounts {
  return {
    lines: 0,
    decodedLines: 0,
    filteredLines: 0,
    malformedLines: 0,
    malformedByReason: {},
    events: {},
    inputBytes: 0,
  };
}

/**
 * The outcome tally of `event` in `c`, created when missing. Own properties
 * only: event names come from input data, and one named `__proto__` must get
 * its own entry instead of reaching (and polluting) Object.prototype.
 */
export function eventTally(c: OutcomeCounts, event: string): Partial<Record<EventOutcome, number>> {
  if (Object.hasOwn(c.events, event)) return c.events[event] as Partial<Record<EventOutcome, number>>;
  const tally: Partial<Record<EventOutcome, number>> = {};
  Object.defineProperty(c.events, event, { value: tally, enumerable: true, writable: true, configurable: true });
  return tally;
}

export function addEvent(c: OutcomeCounts, event: string, outcome: EventOutcome): void {
  const e = eventTally(c, event);
  e[outcome] = (e[outcome] ?? 0) + 1;
}

export function addMalformed(c: OutcomeCounts, reason: string): void {
  c.lines++;
  c.malformedLines++;
  c.malformedByReason[reason] = (c.malformedByReason[reason] ?? 0) + 1;
}

export function mergeCounts(into: OutcomeCounts, from: OutcomeCounts): OutcomeCounts {
  into.lines += from.lines;
  into.decodedLines += from.decodedLines;
  into.filteredLines += from.filteredLines;
  into.malformedLines += from.malformedLines;
  into.inputBytes += from.inputBytes;
  for (const [reason, n] of Object.entries(from.malformedByReason)) {
    into.malformedByReason[reason] = (into.malformedByReason[reason] ?? 0) + n;
  }
  for (const [event, outcomes] of Object.entries(from.events)) {
    const e = eventTally(into, event);
    for (const [outcome, n] of Object.entries(outcomes) as [EventOutcome, number][]) {
      e[outcome] = (e[outcome] ?? 0) + n;
    }
  }
  return into;
}

/** Totals of each event outcome over all event names. */
export function eventTotals(c: OutcomeCounts): Record<EventOutcome, number> {
  const totals = Object.fromEntries(EVENT_OUTCOMES.map((o) => [o, 0])) as Record<EventOutcome, number>;
  for (const outcomes of Object.values(c.events)) {
    for (const o of EVENT_OUTCOMES) totals[o] += outcomes[o] ?? 0;
  }
  return totals;
}

/** Checks the accounting invariant; returns a message when it does not hold. */
export function checkLineAccounting(c: OutcomeCounts): string | null {
  const sum = c.decodedLines + c.filteredLines + c.malformedLines;
  return sum === c.lines ? null : `line accounting mismatch: ${c.lines} lines but ${sum} outcomes`;
}

export function formatCounts(c: OutcomeCounts): string {
  const t = eventTotals(c);
  const parts = [
    `lines ${c.lines}`,
    `decoded ${c.decodedLines}`,
    `filtered ${c.filteredLines}`,
    `malformed ${c.malformedLines}`,
    `| events: success ${t.success}`,
    `skipped_column ${t.skipped_column}`,
    `untracked ${t.untracked}`,
    `empty ${t.empty}`,
  ];
  if (t.excluded) parts.push(`excluded ${t.excluded}`);
  if (t.failed) parts.push(`failed ${t.failed}`);
  const reasons = Object.entries(c.malformedByReason)
    .map(([r, n]) => `${r} ${n}`)
    .join(', ');
  return parts.join(', ').replace(', |', ' |') + (reasons ? ` | malformed: ${reasons}` : '');
}
