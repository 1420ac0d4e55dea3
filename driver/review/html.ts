/**
 * The review as one self-contained HTML page (`<runtag>/_review.html`): inline
 * CSS, inline SVG, no script and no fetch, so it opens from a bucket, a mail
 * attachment or a laptop alike. Per table: its flags, a before/after bar chart
 * per Pacific hour and the column table, flagged hours and columns highlighted.
 * Every text from the data (names, messages) is escaped.
 */
import type { ColumnReview, HourReview, TableReview } from '../../worker/warehouse/review-sql.js';
import { columnFlag, flagKinds, hourLabel, percent } from './print.js';
import { flaggedTables, type RunReview, type TableReviewEntry } from './record.js';

export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2330; background: #fff; }
h1 { font-size: 1.3em; margin: 0 0 .3em; } h2 { font-size: 1.1em; margin: 0 0 .4em; }
.meta { color: #5a6275; margin: 0 0 1em; }
section.table { border: 1px solid #d5d9e2; border-radius: 6px; padding: .8em 1em; margin: 0 0 1.2em; }
section.table.flagged { border-color: #c0392b; }
.status { font-weight: normal; color: #5a6275; }
.clean { color: #1e7b45; }
ul.flags { margin: .2em 0 .6em; padding-left: 1.2em; color: #a12a1e; }
.chart { overflow-x: auto; }
svg .before { fill: #9aa5bd; } svg .after { fill: #2f6fdb; }
svg .emptied rect.mark { fill: #fbe3e0; }
svg text { font-size: 10px; fill: #5a6275; }
.legend span { display: inline-block; width: .8em; height: .8em; margin: 0 .3em 0 1em; vertical-align: middle; }
table.columns { border-collapse: collapse; margin-top: .6em; }
table.columns th, table.columns td { white-space: nowrap; padding: .15em .6em; border-bottom: 1px solid #eceef3; text-align: right; }
table.columns th:nth-child(-n+2), table.columns td:nth-child(-n+2) { text-align: left; }
.columns-wrap { overflow-x: auto; }
table.columns tr.flagged td { background: #fbe3e0; color: #a12a1e; font-weight: 600; }
.error { color: #a12a1e; }
`;

const BAR = 11;
const GROUP = 2 * BAR + 6;
const CHART_HEIGHT = 150;
const AXIS = 34;

function hourFlagged(review: TableReview, hour: HourReview): boolean {
  return review.flags.some((f) => f.kind === 'hour_emptied' && f.hour === hour.hour);
}

/** Before/after bars per hour; the hour is written under its bars (HH, the date where it changes). */
function hourChart(review: TableReview): string {
  const top = Math.max(1, ...review.hours.map((h) => Math.max(h.before, h.after)));
  const width = Math.max(GROUP * review.hours.length, 120);
  const height = CHART_HEIGHT + AXIS;
  const scale = (n: number): number => Math.round((n / top) * (CHART_HEIGHT - 12));
  let lastDate = '';
  const groups = review.hours.map((hour, i) => {
    const x = i * GROUP;
    const date = hour.hour.slice(0, 10);
    const label = hour.hour.slice(11, 13) + (hour.repeated ? '×2' : '');
    const dateLabel = date !== lastDate ? `<text x="${x + 1}" y="${CHART_HEIGHT + 28}">${date.slice(5)}</text>` : '';
    lastDate = date;
    const emptied = hourFlagged(review, hour);
    const bar = (kind: 'before' | 'after', n: number, dx: number): string =>
      `<rect class="bar ${kind}" data-count="${n}" x="${x + dx}" y="${CHART_HEIGHT - scale(n)}" width="${BAR}" height="${scale(n)}"/>`;
    return (
      `<g class="hour${emptied ? ' emptied' : ''}" data-hour="${escapeHtml(hour.hour)}"${hour.repeated ? ' data-repeated="true"' : ''}>` +
      `<title>${escapeHtml(hourLabel(hour))}: before ${hour.before}, after ${hour.after}</title>` +
      (emptied ? `<rect class="mark" x="${x}" y="0" width="${GROUP - 2}" height="${CHART_HEIGHT}"/>` : '') +
      bar('before', hour.before, 1) +
      bar('after', hour.after, 1 + BAR) +
      `<text x="${x + 1}" y="${CHART_HEIGHT + 13}">${label}</text>${dateLabel}</g>`
    );
  });
  return (
    `<div class="chart"><svg xmlns="http://www.w3.org/2000/svg" class="hours" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" role="img" aria-label="rows per hour before and after">` +
    `<line x1="0" y1="${CHART_HEIGHT}" x2="${width}" y2="${CHART_HEIGHT}" stroke="#b5bccb"/>` +
    `${groups.join('')}</svg></div>` +
    `<div class="legend">rows per US Pacific hour (most ${top}):<span style="background:#9aa5bd"></span>before` +
    `<span style="background:#2f6fdb"></span>after</div>`
  );
}

function range(column: ColumnReview, lo: string | null | undefined, hi: string | null | undefined): string {
  if (!column.numeric) return '';
  return lo === null || lo === undefined ? '-' : escapeHtml(`${lo} .. ${hi ?? ''}`);
}

function columnTable(review: TableReview): string {
  if (review.columnsReviewed === false) return '<p class="clean">columns not reviewed (--no-review-columns)</p>';
  const rows = review.columns.map((c) => {
    const flag = columnFlag(review, c);
    return (
      `<tr data-column="${escapeHtml(c.name)}"${flag ? ' class="flagged"' : ''}>` +
      `<td>${escapeHtml(c.name)}</td><td class="type">${escapeHtml(c.dataType)}</td>` +
      `<td class="null-before">${percent(c.nullShareBefore)}</td><td class="null-after">${percent(c.nullShareAfter)}</td>` +
      `<td>${range(c, c.minBefore, c.maxBefore)}</td><td>${range(c, c.minAfter, c.maxAfter)}</td></tr>`
    );
  });
  return (
    '<div class="columns-wrap"><table class="columns"><thead><tr><th>column</th><th>type</th><th>NULL before</th><th>NULL after</th>' +
    `<th>min .. max before</th><th>min .. max after</th></tr></thead><tbody>${rows.join('')}</tbody></table></div>`
  );
}

function tableSection(entry: TableReviewEntry): string {
  const review = entry.review;
  const flagged = (review?.flags.length ?? 0) > 0;
  const head =
    `<h2>${escapeHtml(entry.table)} <span class="status">${escapeHtml(entry.status)}` +
    (review ? `, rows ${review.rowsBefore} → ${review.rowsAfter}` : '') +
    `</span></h2>`;
  let body: string;
  if (!review) {
    body = `<p class="error">no review: the load stopped before its rows were staged${entry.error ? `: ${escapeHtml(entry.error)}` : ''}</p>`;
  } else {
    const flags = flagged
      ? `<ul class="flags">${review.flags.map((f) => `<li class="flag" data-kind="${f.kind}">${escapeHtml(f.message)}</li>`).join('')}</ul>`
      : '<p class="clean">nothing flagged</p>';
    body = flags + hourChart(review) + columnTable(review);
  }
  return `<section class="table${flagged ? ' flagged' : ''}" data-table="${escapeHtml(entry.table)}">${head}${body}</section>`;
}

export function reviewPage(run: RunReview): string {
  const flagged = flaggedTables(run).length;
  const title = `Replay review ${run.runtag}`;
  return (
    `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title>` +
    `<style>${STYLE}</style></head><body>` +
    `<h1>${escapeHtml(title)}${run.preview ? ' (preview: nothing was changed)' : ''}</h1>` +
    `<p class="meta">window ${escapeHtml(run.window.start)} .. ${escapeHtml(run.window.end)} US Pacific; ` +
    `<span id="summary">${run.tables.length} table(s), ${flagged} flagged</span>; flags: ${flagKinds(run).join(', ')}` +
    (run.columnsReviewed === false ? ' (columns not reviewed: --no-review-columns)' : '') +
    '. ' +
    `Hours are wall-clock; “×2” marks the repeated hour of the fall-back day (both of its real hours).</p>` +
    run.tables.map(tableSection).join('\n') +
    `</body></html>\n`
  );
}
