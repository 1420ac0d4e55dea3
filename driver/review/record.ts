/**
 * The review of a replay run as stored next to its output: `<runtag>/_review.json`
 * (what `spade review` prints again) and `<runtag>/_review.html` (the page), one
 * entry per table with its load status and, when the load got that far, the
 * review computed in the warehouse (worker/warehouse/review-sql.ts).
 */
import type { ObjectStore } from '../../worker/store/objectstore.js';
import type { TableReview } from '../../worker/warehouse/review-sql.js';
import type { TableLoadResult } from '../../worker/warehouse/warehouse.js';
import { readJson, writeJson } from '../manifest.js';

export const reviewJsonKey = (runtag: string): string => `${runtag}/_review.json`;
export const reviewHtmlKey = (runtag: string): string => `${runtag}/_review.html`;

export interface TableReviewEntry {
  table: string;
  status: TableLoadResult['status'];
  error?: string;
  /** The table's whole load (transaction) time. */
  loadSeconds: number;
  /** Absent when the load stopped before the INSERT (a failure, a column mismatch). */
  review?: TableReview;
}

export interface RunReview {
  runtag: string;
  window: { start: string; end: string };
  /** Every table was rolled back (`--preview`). */
  preview: boolean;
  nullRise: number;
  maxShrink: number;
  allowShrink: boolean;
  failOnReview: boolean;
  /** false: `--no-review-columns` (rows per hour only); absent: true. */
  columnsReviewed?: boolean;
  createdAt: string;
  tables: TableReviewEntry[];
}

export function runReview(
  settings: Omit<RunReview, 'tables' | 'createdAt'>,
  loads: readonly TableLoadResult[],
): RunReview {
  return {
    ...settings,
    createdAt: new Date().toISOString(),
    tables: loads.map((load) => ({
      table: load.table,
      status: load.status,
      ...(load.error !== undefined ? { error: load.error } : {}),
      loadSeconds: load.seconds,
      ...(load.review ? { review: load.review } : {}),
    })),
  };
}

/** Tables with at least one flag. */
export function flaggedTables(review: RunReview): TableReviewEntry[] {
  return review.tables.filter((t) => (t.review?.flags.length ?? 0) > 0);
}

export async function readRunReview(store: ObjectStore, runtag: string): Promise<RunReview | null> {
  return readJson<RunReview>(store, reviewJsonKey(runtag));
}

export async function writeRunReview(store: ObjectStore, review: RunReview, html: string): Promise<void> {
  await writeJson(store, reviewJsonKey(review.runtag), review);
  await store.put(reviewHtmlKey(review.runtag), html);
}
