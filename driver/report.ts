/** The per-table load report printed at the end of a replay. */
import type { TableLoadResult } from './warehouse/warehouse.js';

export function formatLoadReport(loads: TableLoadResult[]): string[] {
  const header = ['table', 'status', 'before', 'deleted', 'inserted', 'outside window', 'seconds'];
  const rows = loads.map((l) => [
    l.table,
    l.status,
    String(l.before),
    String(l.deleted),
    String(l.inserted),
    String(l.droppedOutsideWindow),
    l.seconds.toFixed(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]): string =>
    r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [fmt(header), fmt(widths.map((n) => '-'.repeat(n)))];
  for (let i = 0; i < loads.length; i++) {
    out.push(fmt(rows[i]!));
    const err = loads[i]!.error;
    if (err) out.push(`    ${loads[i]!.table}: ${err}`);
  }
  return out;
}
