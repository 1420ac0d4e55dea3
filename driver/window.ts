/**
 * The replay window: START and END as typed by the user (`%Y-%m-%d %H:%M:%S`, US
 * Pacific wall-clock), checked and turned into instants.
 *
 * Two clocks, on purpose:
 * - `startUtc`/`endUtc` (instants) pick the edge files to read (see listing.ts).
 * - `start`/`end` (normalised Pacific wall-clock text) bound the warehouse DELETE and
 *   INSERT (`WHERE time BETWEEN start AND end`), because the warehouse `time` column
 *   holds Pacific wall-clock text, not an instant.
 *
 * Caveat on the second clock: during the DST fall-back hour the same wall-clock text
 * names two instants, so a wall-clock comparison cannot tell 01:30 PDT from 01:30 PST.
 * That is why a boundary inside the repeated hour is refused (not resolved): with both
 * boundaries outside it, "wall-clock time in [start, end]" and "instant in
 * [startUtc, endUtc]" select exactly the same events (a window that contains the whole
 * repeated hour contains both of its copies on both clocks). Resolving an ambiguous
 * boundary to one of its instants would make the DELETE cover (or miss) the other copy.
 * A spring-forward time does not exist at all, so it is refused too.
 */
import { DateTime, IANAZone } from 'luxon';

export const PACIFIC_ZONE = 'America/Los_Angeles';
const FORMAT = '%Y-%m-%d %H:%M:%S';
const EXAMPLE = '2023-06-01 00:00:00';
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** A user error in START/END. The message is one line, fit to print as is. */
export class WindowError extends Error {
  override name = 'WindowError';
}

export interface ReplayWindow {
  /** Pacific wall-clock texts, normalised to `YYYY-MM-DD HH:MM:SS` (what the DELETE range compares). */
  start: string;
  end: string;
  startUtc: Date;
  endUtc: Date;
}

const pacific = IANAZone.create(PACIFIC_ZONE);

/** Offset of Pacific time from UTC, in ms, at an instant. */
function offsetMs(instantMs: number): number {
  return pacific.offset(instantMs) * 60_000;
}

/** `YYYY-MM-DD HH:MM:SS` of a wall-clock held as "ms as if it were UTC". */
function wallText(wallMs: number): string {
  return new Date(wallMs).toISOString().slice(0, 19).replace('T', ' ');
}

/** `HH:MM:SS` part of wallText. */
function wallTimeOfDay(wallMs: number): string {
  return wallText(wallMs).slice(11);
}

// Lenient like strptime on the width of month/day/time fields (`2023-3-12 2:30:00`),
// strict on everything else; surrounding whitespace is ignored.
const WALL_CLOCK = /^\s*(\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{1,2}):(\d{1,2})\s*$/;

/** The wall-clock fields of `value` as "ms as if it were UTC", or a WindowError. */
function parseWallClock(label: string, value: string): number {
  const m = WALL_CLOCK.exec(value);
  const formatHint = `expected ${FORMAT} in US Pacific time, e.g. "${EXAMPLE}"`;
  if (!m) throw new WindowError(`${label} "${value}" is not a valid time: ${formatHint}`);
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number);
  // Validate the calendar (Feb 30, hour 24, second 60...) in a zone without DST gaps.
  // Luxon rolls some overflows over (hour 24 is the next day), so the fields must round-trip.
  const check = DateTime.fromObject({ year, month, day, hour, minute, second }, { zone: 'utc' });
  const roundTrips =
    check.isValid &&
    check.year === year &&
    check.month === month &&
    check.day === day &&
    check.hour === hour &&
    check.minute === minute &&
    check.second === second;
  if (!roundTrips) {
    throw new WindowError(`${label} "${value}" is not a valid time (no such date or time of day): ${formatHint}`);
  }
  return check.toMillis();
}

/**
 * The instant of a Pacific wall-clock time, refusing times that do not exist or exist
 * twice. The candidates are "wall minus each offset the zone uses around that day";
 * a candidate is real when the zone's offset at that instant is the one assumed.
 */
function resolvePacific(label: string, wallMs: number): number {
  const offsets = new Set([offsetMs(wallMs - 2 * DAY_MS), offsetMs(wallMs), offsetMs(wallMs + 2 * DAY_MS)]);
  const instants: number[] = [];
  for (const off of offsets) {
    const instant = wallMs - off;
    if (offsetMs(instant) === off && !instants.includes(instant)) instants.push(instant);
  }
  if (instants.length === 1) return instants[0];

  // A DST transition is within a day of this wall-clock time; find it to name the hour.
  const transition = findTransition(wallMs - 2 * DAY_MS, wallMs + 2 * DAY_MS);
  const before = offsetMs(transition - 1);
  const after = offsetMs(transition);
  const shown = `${label} "${wallText(wallMs)}"`;
  if (instants.length === 0) {
    const from = transition + before;
    const to = transition + after;
    throw new WindowError(
      `${shown} does not exist in US Pacific time (DST starts: on ${wallText(from).slice(0, 10)} clocks jump ` +
        `from ${wallTimeOfDay(from)} to ${wallTimeOfDay(to)}); use a time outside that gap`,
    );
  }
  const repeatFrom = transition + after;
  const repeatTo = transition + before; // exclusive
  throw new WindowError(
    `${shown} is ambiguous in US Pacific time (DST ends: on ${wallText(repeatFrom).slice(0, 10)} the hour ` +
      `${wallTimeOfDay(repeatFrom)}-${wallTimeOfDay(repeatTo - 1000)} happens twice); move the boundary out of ` +
      `the repeated hour, e.g. to ${wallTimeOfDay(repeatFrom - 1000)} or ${wallTimeOfDay(repeatTo)}`,
  );
}

/** First ms in (lo, hi] whose Pacific offset differs from lo's; the range holds exactly one transition. */
function findTransition(lo: number, hi: number): number {
  const first = offsetMs(lo);
  if (offsetMs(hi) === first) throw new Error(`no Pacific DST transition between ${lo} and ${hi}`);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (offsetMs(mid) === first) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** Check START/END (US Pacific wall-clock) and build the window; throws WindowError. */
export function parseWindow(start: string, end: string): ReplayWindow {
  const startWall = parseWallClock('START', start);
  const endWall = parseWallClock('END', end);
  const startMs = resolvePacific('START', startWall);
  const endMs = resolvePacific('END', endWall);
  if (endMs <= startMs) {
    throw new WindowError(`END "${wallText(endWall)}" is not after START "${wallText(startWall)}" (US Pacific time)`);
  }
  return { start: wallText(startWall), end: wallText(endWall), startUtc: new Date(startMs), endUtc: new Date(endMs) };
}

/** `YYYYMMDD` of a UTC day. */
export function utcDayPrefix(instantMs: number): string {
  return new Date(instantMs).toISOString().slice(0, 10).replaceAll('-', '');
}

/**
 * The edge-log date prefixes to list: `YYYYMMDD` of every UTC day from START−1h to
 * END+1h inclusive (files are keyed by the UTC day they were written, and a file
 * holding the window's first or last events may be written in a neighbouring day).
 */
export function datePrefixes(w: ReplayWindow): string[] {
  const first = w.startUtc.getTime() - HOUR_MS;
  const last = w.endUtc.getTime() + HOUR_MS;
  const prefixes: string[] = [];
  for (let day = first - (first % DAY_MS); day <= last; day += DAY_MS) prefixes.push(utcDayPrefix(day));
  return prefixes;
}
