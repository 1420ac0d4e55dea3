/**
 * The replay's replace transaction (SPEC section 4), shared by the three warehouse
 * implementations: each gives a LoadSession on one connection, this runs the
 * statements (lock, count, delete, COPY into staging, insert, shrink guard, commit).
 */
import {
  countWindowSql,
  createTempSql,
  deleteWindowSql,
  displayName,
  dropTableSql,
  insertWindowSql,
  lockTableSql,
  qualifiedName,
  quoteIdent,
  tempTableName,
  validateWindow,
} from './sql.js';
import {
  buildReview,
  CURRENT_SETTING_SQL,
  refusingFlags,
  reviewColumnsSql,
  reviewedColumns,
  reviewHoursSql,
  reviewSettings,
  SET_LOCAL_SQL,
  sideAggregate,
  type ReviewedColumn,
  type SideAggregate,
} from './review-sql.js';
import { checkTableColumns } from './table-columns.js';
import type { CopyProgress, LoadContext, LoadSession, TableLoad, TableLoadResult } from './warehouse.js';

/** Message of a database (pg or PGlite) error with its detail and location, e.g. `COPY t, line 2, column n`. */
export function databaseErrorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const fields = err as Error & { detail?: unknown; where?: unknown; code?: unknown };
  let text = err.message || err.name;
  // zlib's own words ("incorrect header check") do not say that the file is not valid gzip.
  if (typeof fields.code === 'string' && fields.code.startsWith('Z_')) text = `gzip: ${text}`;
  if (typeof fields.detail === 'string' && fields.detail) text += ` (${fields.detail})`;
  if (typeof fields.where === 'string' && fields.where) text += ` [${fields.where}]`;
  return text;
}

/** The statement that locks `target` against other loads, as the session's warehouse says it (default: PostgreSQL's). */
export function sessionLockSql(session: LoadSession, target: string): string {
  return session.lockTableSql ? session.lockTableSql(target) : lockTableSql(target);
}

let tempSerial = 0;

/** The result of a load that has done nothing (yet): `failed`, every count zero. */
export function emptyLoadResult(table: string): TableLoadResult {
  return { table, status: 'failed', before: 0, deleted: 0, inserted: 0, droppedOutsideWindow: 0, seconds: 0 };
}

function toCount(value: unknown): number {
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

/**
 * BEGIN; lock the table; count the window; DELETE it; stage the files in a temp table; INSERT the
 * staged rows inside the window; refuse a shrink beyond `maxShrink` unless allowed;
 * COMMIT. Any error rolls back, so the table is either replaced or untouched.
 * With `load.review` the window is aggregated before the DELETE and the staged rows
 * before the INSERT (review-sql.ts); `--fail-on-review` and `preview` roll back after it.
 */
export async function replaceWindowInTransaction(
  session: LoadSession,
  load: TableLoad,
  ctx: LoadContext,
): Promise<TableLoadResult> {
  const started = Date.now();
  const name = displayName(load.schema, load.table);
  const result = emptyLoadResult(load.table);
  const finish = (status: TableLoadResult['status'], error?: string): TableLoadResult => {
    result.status = status;
    if (error !== undefined) result.error = ctx.redact(error);
    result.seconds = (Date.now() - started) / 1000;
    const counts = `before ${result.before}, deleted ${result.deleted}, inserted ${result.inserted}, dropped outside window ${result.droppedOutsideWindow}`;
    ctx.log?.(
      ctx.redact(
        status === 'loaded' || status === 'previewed'
          ? `${name}: ${status === 'loaded' ? 'loaded' : 'previewed (rolled back)'} ${load.files.length} file(s): ${counts} (${result.seconds.toFixed(1)} s)`
          : `${status === 'failed' ? 'load failed' : 'load refused'}: ${result.error ?? ''}`,
      ),
    );
    return result;
  };

  let target: string;
  let temp: string;
  try {
    validateWindow(load.window);
    if (!(load.maxShrink >= 0 && load.maxShrink <= 1)) throw new Error(`maxShrink ${load.maxShrink} is not in [0, 1]`);
    target = qualifiedName(load.schema, load.table);
    temp = quoteIdent(tempTableName(load.table, ++tempSerial));
  } catch (err) {
    return finish('failed', `${name}: ${(err as Error).message}`);
  }
  const window = [load.window.start, load.window.end];

  let step = 'checking the table';
  const progress: CopyProgress = {};
  let inTransaction = false;
  try {
    const checkColumns = (): ReturnType<typeof checkTableColumns> =>
      checkTableColumns(async (sql, params) => (await session.query(sql, params)).rows, {
        schema: load.schema,
        table: load.table,
        columns: load.columns,
        foldCase: session.catalogLowerCase === true,
      });
    const check = await checkColumns();
    if (!check.exists) return finish('failed', check.problem);
    if (!check.actual.some((column) => column.name === 'time')) {
      return finish('failed', `table ${name} has no "time" column, so its window cannot be replaced`);
    }
    if (check.problem !== undefined) return finish('columns_refused', check.problem);
    const columnNames = load.columns.map((column) => column.name);
    let reviewed: ReviewedColumn[] | undefined;
    const reviewColumns = load.review?.columns !== false;
    let reviewSeconds = 0;
    const settings = reviewSettings(
      { jit: session.jitSetting === true, planner: session.plannerSettings === true },
      reviewColumns,
    );
    /**
     * The review's queries over the window's rows in `source` (review-sql.ts): hours,
     * then (unless off) columns, with the review's settings, set back after them.
     * (A failure rolls the transaction back, and with it the settings.)
     */
    const aggregate = async (source: string): Promise<SideAggregate> => {
      const started = Date.now();
      const saved: [string, string][] = [];
      for (const [name, value] of settings) {
        saved.push([name, String((await session.query(CURRENT_SETTING_SQL, [name])).rows[0]?.v)]);
        await session.query(SET_LOCAL_SQL, [name, value]);
      }
      const hours = (await session.query(reviewHoursSql(source), window)).rows;
      const columns = reviewColumns ? (await session.query(reviewColumnsSql(source, reviewed!), window)).rows[0] : null;
      for (const [name, value] of saved) await session.query(SET_LOCAL_SQL, [name, value]);
      reviewSeconds += (Date.now() - started) / 1000;
      return sideAggregate(hours, columns, reviewed!);
    };

    step = 'BEGIN';
    await session.query('BEGIN');
    inTransaction = true;
    // Before counting: a concurrent load of this table waits here until this one commits.
    step = 'locking the table';
    await session.query(sessionLockSql(session, target));
    // The table may have been altered between the check above and the lock (which
    // ALTER TABLE now waits for): check again, so the rows go by what is locked.
    step = 'checking the table again';
    const recheck = await checkColumns();
    if (!recheck.exists || recheck.problem !== undefined) {
      step = 'ROLLBACK';
      inTransaction = false;
      await session.query('ROLLBACK');
      return finish(recheck.exists ? 'columns_refused' : 'failed', recheck.problem);
    }
    let reviewBefore: SideAggregate | undefined;
    if (load.review) {
      reviewed = reviewColumns ? reviewedColumns(columnNames, recheck.actual, session.catalogLowerCase === true) : [];
      step = 'reviewing the window before the load';
      // The review's count per hour stands in for the count of the window.
      reviewBefore = await aggregate(target);
      result.before = reviewBefore.rows;
    } else {
      step = 'counting the window';
      result.before = toCount((await session.query(countWindowSql(target), window)).rows[0]?.n);
    }
    step = 'deleting the window';
    result.deleted = (await session.query(deleteWindowSql(target), window)).rowCount;
    step = 'creating the staging table';
    await session.query(createTempSql(temp, target, session.tempDroppedOnCommit));
    step = 'copying';
    const copied = await session.copyFiles(temp, columnNames, progress);
    let reviewAfter: SideAggregate | undefined;
    if (load.review) {
      step = 'reviewing the staged rows';
      reviewAfter = await aggregate(temp);
    }
    step = 'inserting the window';
    result.inserted = (await session.query(insertWindowSql(target, temp, columnNames), window)).rowCount;
    result.droppedOutsideWindow = copied - result.inserted;
    if (load.review && reviewBefore && reviewAfter) {
      result.review = buildReview({
        schema: load.schema,
        table: load.table,
        window: load.window,
        columns: reviewed!,
        columnsReviewed: reviewColumns,
        before: reviewBefore,
        after: reviewAfter,
        nullRise: load.review.nullRise,
        maxShrink: load.maxShrink,
        seconds: reviewSeconds,
      });
    }

    if (!load.allowShrink && result.before > 0 && result.inserted < (1 - load.maxShrink) * result.before) {
      step = 'ROLLBACK';
      inTransaction = false;
      await session.query('ROLLBACK');
      const lost = (((result.before - result.inserted) / result.before) * 100).toFixed(1);
      return finish(
        'shrink_refused',
        `${name}: the load would shrink the window ${load.window.start} .. ${load.window.end} from ${result.before} ` +
          `to ${result.inserted} rows (${lost}% fewer; at most ${Number((load.maxShrink * 100).toFixed(2))}% allowed); the table is ` +
          `unchanged; rerun with --allow-shrink to accept`,
      );
    }
    const refusing = result.review && load.review?.failOnReview ? refusingFlags(result.review, load.allowShrink) : [];
    if (refusing.length > 0) {
      step = 'ROLLBACK';
      inTransaction = false;
      await session.query('ROLLBACK');
      return finish(
        'review_refused',
        `${name}: the review flagged ${refusing.map((flag) => flag.message).join('; ')}; the table is unchanged ` +
          `(--fail-on-review)`,
      );
    }
    if (load.preview) {
      // Nothing of the load stays: the staging table goes with the transaction, also on Redshift.
      step = 'ROLLBACK';
      inTransaction = false;
      await session.query('ROLLBACK');
      return finish('previewed');
    }
    if (!session.tempDroppedOnCommit) {
      step = 'dropping the staging table';
      await session.query(dropTableSql(temp));
    }
    step = 'COMMIT';
    inTransaction = false;
    await session.query('COMMIT');
    return finish('loaded');
  } catch (err) {
    let message = `${name}: ${step}`;
    if (progress.file !== undefined) message += ` file ${progress.file}`;
    message += ` failed: ${databaseErrorText(err)}`;
    if (inTransaction || step === 'COMMIT') {
      try {
        await session.query('ROLLBACK');
      } catch {
        // The connection is gone (or the COMMIT failed); the server rolls back by itself.
      }
    }
    if (step === 'copying' && session.explainCopyFailure) {
      try {
        const more = await session.explainCopyFailure();
        if (more) message += `; ${more}`;
      } catch {
        // best effort only
      }
    }
    return finish('failed', message);
  }
}
