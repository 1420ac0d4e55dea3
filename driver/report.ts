/** The report printed at the end of a replay: per-table loads, damaged inputs. */
import { describeDamagedInput, type DamagedInput } from '../worker/pool/thread.js';
import type { TableLoadResult } from '../worker/warehouse/warehouse.js';
import { textTable } from './text-table.js';

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
  const [head, rule, ...lines] = textTable(header, rows, { left: 2 });
  const out = [head!, rule!];
  for (let i = 0; i < loads.length; i++) {
    out.push(lines[i]!);
    const err = loads[i]!.error;
    if (err) out.push(`    ${loads[i]!.table}: ${err}`);
  }
  return out;
}

/**
 * The report's damaged-input section: each edge file that was truncated or
 * corrupt, with what was read of it (decompressed bytes, lines) and the error.
 * Empty when there were none.
 */
export function formatDamagedInputs(damaged: DamagedInput[]): string[] {
  if (damaged.length === 0) return [];
  const out = [
    `damaged input(s): ${damaged.length}; their complete lines before the damage were transformed, the rest is lost`,
  ];
  for (const d of damaged) out.push(`  ${describeDamagedInput(d, d.key ?? d.source)}`);
  return out;
}
