/** The aligned text tables of a run's printed reports (loads, publishing, review). */

/**
 * A header, a dashed rule and one line per row, columns two spaces apart: the first
 * `left` columns (and the last one, with `lastLeft`) are padded on the right, the
 * others (numbers) on the left. Lines carry no trailing blanks.
 */
export function textTable(header: string[], rows: string[][], opts: { left: number; lastLeft?: boolean }): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const last = header.length - 1;
  const fmt = (r: string[]): string =>
    r
      .map((c, i) => (i < opts.left || (opts.lastLeft && i === last) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [fmt(header), fmt(widths.map((n) => '-'.repeat(n))), ...rows.map(fmt)];
}
