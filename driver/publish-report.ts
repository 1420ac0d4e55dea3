/**
 * What a run tells about its Kinesis publishing: a per-(stream, table) report
 * printed after the load report, and the files left unpublished.
 */
import type { TablePublishResult } from '../worker/output/kinesis-publish.js';
import { textTable } from './text-table.js';

export function formatPublishReport(results: readonly TablePublishResult[]): string[] {
  const header = [
    'stream',
    'table',
    'status',
    'files',
    'earlier',
    'published',
    'outside window',
    'quarantined',
    'retried',
  ];
  const sorted = [...results].sort((a, b) => a.stream.localeCompare(b.stream) || a.table.localeCompare(b.table));
  const rows = sorted.map((r) => [
    r.stream,
    r.table,
    r.failed.length ? 'failed' : 'published',
    String(r.files),
    String(r.alreadyPublished),
    String(r.published),
    String(r.outsideWindow),
    String(r.quarantined),
    String(r.retriedEntries),
  ]);
  return textTable(header, rows, { left: 3 });
}

/** One line per file not published (stream, table, file, why); empty when everything was published. */
export function unpublishedFiles(results: readonly TablePublishResult[]): string[] {
  return results.flatMap((r) => r.failed.map((f) => `${r.table} -> ${r.stream}: ${f.key} not published: ${f.error}`));
}
