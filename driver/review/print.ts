/**
 * The review as printed after the per-table report (and by `spade review`): per
 * table one line of totals, then, compact, only the flagged hours and columns;
 * `full`, every hour and every column (with min/max of numeric columns).
 */
import type { ColumnReview, HourReview, ReviewFlag, TableReview } from '../../worker/warehouse/review-sql.js';
import { textTable } from '../text-table.js';
import { flaggedTables, type RunReview, type TableReviewEntry } from './record.js';

export type ReviewDetail = 'compact' | 'full';

export function percent(share: number | null): string {
  return share === null ? '-' : `${(share * 100).toFixed(1)}%`;
}

/** `2023-11-05 01:00 (x2)` for the fall-back day's repeated hour. */
export function hourLabel(hour: HourReview): string {
  return hour.repeated ? `${hour.hour} (x2)` : hour.hour;
}

function hourFlagged(review: TableReview, hour: HourReview): boolean {
  return review.flags.some((f) => f.kind === 'hour_emptied' && f.hour === hour.hour);
}

export function columnFlag(review: TableReview, column: ColumnReview): ReviewFlag | undefined {
  return review.flags.find((f) => f.kind === 'null_rise' && f.column === column.name);
}

function hourLines(review: TableReview, detail: ReviewDetail): string[] {
  const hours = review.hours.filter((h) => detail === 'full' || hourFlagged(review, h));
  if (hours.length === 0) return [];
  const rows = hours.map((h) => [
    hourLabel(h),
    String(h.before),
    String(h.after),
    hourFlagged(review, h) ? '! rows -> none' : '',
  ]);
  return textTable(['hour (US Pacific)', 'before', 'after', 'flag'], rows, { left: 1, lastLeft: true });
}

function columnLines(review: TableReview, detail: ReviewDetail): string[] {
  const columns = review.columns.filter((c) => detail === 'full' || columnFlag(review, c));
  if (columns.length === 0) return [];
  const rows = columns.map((c) => {
    const flag = columnFlag(review, c);
    const row = [c.name, c.dataType, percent(c.nullShareBefore), percent(c.nullShareAfter)];
    if (detail === 'full') {
      const range = (lo: string | null | undefined, hi: string | null | undefined): string =>
        c.numeric ? (lo === null || lo === undefined ? '-' : `${lo} .. ${hi ?? ''}`) : '';
      row.push(range(c.minBefore, c.maxBefore), range(c.minAfter, c.maxAfter));
    }
    row.push(
      flag && c.nullShareBefore !== null && c.nullShareAfter !== null
        ? `! NULL share +${((c.nullShareAfter - c.nullShareBefore) * 100).toFixed(1)} points`
        : '',
    );
    return row;
  });
  const header = ['column', 'type', 'NULL before', 'NULL after'];
  if (detail === 'full') header.push('min .. max before', 'min .. max after');
  header.push('flag');
  return textTable(header, rows, { left: 2, lastLeft: true });
}

function tableLines(entry: TableReviewEntry, detail: ReviewDetail): string[] {
  const review = entry.review;
  if (!review) return [`${entry.table} (${entry.status}): no review, the load stopped before its rows were staged`];
  const flags = review.flags.length;
  const head =
    `${entry.table} (${entry.status}): rows ${review.rowsBefore} -> ${review.rowsAfter}, ` +
    `${review.hours.length} hour(s), ` +
    (review.columnsReviewed === false ? 'columns not reviewed: ' : `${review.columns.length} column(s): `) +
    (flags === 0 ? 'nothing flagged' : `${flags} flag(s)`);
  const out = [head];
  if (flags > 0 && detail === 'compact') {
    for (const flag of review.flags.filter((f) => f.kind === 'shrink')) out.push(`  ! ${flag.message}`);
  }
  if (detail === 'full' || flags > 0) {
    for (const line of hourLines(review, detail)) out.push(`  ${line}`);
    for (const line of columnLines(review, detail)) out.push(`  ${line}`);
    if (detail === 'full') for (const flag of review.flags) out.push(`  ! ${flag.message}`);
  }
  return out;
}

/** What the review flags in `run`, as the printed review and the page list it. */
export function flagKinds(run: RunReview): string[] {
  return [
    'an hour whose rows go to none',
    ...(run.columnsReviewed === false
      ? []
      : [`a NULL share up by more than ${(run.nullRise * 100).toFixed(0)} points`]),
    `a shrink beyond ${(run.maxShrink * 100).toFixed(0)}%`,
  ];
}

/** The printed review of a run. */
export function formatReview(run: RunReview, detail: ReviewDetail): string[] {
  const flagged = flaggedTables(run).length;
  const out = [
    `review${run.preview ? ' (preview: nothing was changed)' : ''}: ${run.tables.length} table(s), ${flagged} flagged ` +
      `(flags: ${flagKinds(run).join(', ')}` +
      `${run.columnsReviewed === false ? '; columns not reviewed: --no-review-columns' : ''})`,
  ];
  for (const entry of run.tables) out.push(...tableLines(entry, detail));
  return out;
}
