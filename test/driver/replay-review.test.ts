/**
 * The replay's review end to end, with real parts: the `spade` CLI as a child
 * process, s3rver, a throwaway PostgreSQL and an embedded PGlite. Generated edge
 * logs span the 2023-11-05 fall-back and the 2023-03-12 spring-forward days, so
 * the review's per-hour counts are checked against the generator's truth on both
 * DST days. The review page is opened in headless Chromium.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { DateTime } from 'luxon';
import { generateEdgeLogs } from '../../scripts/generate/edge-logs.js';
import type { RunReview } from '../../driver/review/record.js';
import { parseWindow } from '../../driver/window.js';
import { quoteIdent } from '../../worker/warehouse/sql.js';
import { dumpDom, requireChromium, screenshot } from '../helpers/chromium.js';
import { DEMO_CONFIG, runSpade, startReplayWorld, type CliResult, type ReplayWorld } from '../helpers/replay-env.js';

const FALL = ['2023-11-05 00:00:00', '2023-11-05 23:59:59'] as const;
const SPRING = ['2023-03-12 00:00:00', '2023-03-12 23:59:59'] as const;
const TABLES = ['chat_message', 'login', 'minute_watched', 'video_play'];

/** The demo config with login.platform read from a property no event has: the column goes NULL. */
function renamedConfig(dir: string): string {
  const config = JSON.parse(readFileSync(DEMO_CONFIG, 'utf8')) as {
    EventName: string;
    Columns: { InboundName: string; OutboundName: string }[];
  }[];
  const platform = config.find((t) => t.EventName === 'login')!.Columns.find((c) => c.OutboundName === 'platform')!;
  platform.InboundName = 'no_event_has_this_property';
  const file = join(dir, 'tables-renamed.json');
  writeFileSync(file, JSON.stringify(config, null, 1));
  return file;
}

/** Rows per Pacific wall-clock hour (`YYYY-MM-DD HH:00`) of the generated events of `table` inside the window. */
function truthPerHour(world: ReplayWorld, table: string, window: readonly [string, string]): Map<string, number> {
  const w = parseWindow(window[0], window[1]);
  const [from, to] = [w.startUtc.getTime() / 1000, w.endUtc.getTime() / 1000];
  const hours = new Map<string, number>();
  for (const t of world.truth.events.get(table) ?? []) {
    if (t < from || t > to) continue;
    const hour = DateTime.fromSeconds(t, { zone: 'America/Los_Angeles' }).toFormat('yyyy-MM-dd HH:00');
    hours.set(hour, (hours.get(hour) ?? 0) + 1);
  }
  return hours;
}

async function storedReview(world: ReplayWorld, runtag: string): Promise<RunReview> {
  return JSON.parse((await world.out.readBytes(`${runtag}/_review.json`)).toString('utf8')) as RunReview;
}

/** Every listed hour's count on `side` equals the truth; hours with events are all listed. */
function assertHours(
  world: ReplayWorld,
  review: RunReview,
  window: readonly [string, string],
  side: 'before' | 'after',
): void {
  for (const entry of review.tables) {
    const truth = truthPerHour(world, entry.table, window);
    assert.ok(entry.review, `${entry.table} has a review`);
    const counted = new Map(entry.review.hours.map((h) => [h.hour, h[side]]));
    for (const [hour, n] of truth) assert.equal(counted.get(hour), n, `${entry.table} ${hour} ${side}`);
    for (const [hour, n] of counted) assert.equal(n, truth.get(hour) ?? 0, `${entry.table} ${hour} ${side}`);
  }
}

/** The warehouse a scenario runs against: its URL and a full dump of every table. */
interface Target {
  name: string;
  rsurl: string;
  dumps(): Promise<string[][]>;
}

function replayWith(world: ReplayWorld, target: Target, config: string, args: string[]): Promise<CliResult> {
  return runSpade(
    [
      'replay',
      ...args,
      '--all-tables',
      '--edge',
      's3://edge',
      '--output',
      's3://out',
      '--rsurl',
      target.rsurl,
      '--config',
      config,
      '--log-file',
      '',
      '--threads',
      '2',
    ],
    world.env,
  );
}

/** Full dump of a table: every row as text, every column, sorted. */
const dumpSql = (table: string): string => `SELECT t::text AS r FROM physical.${quoteIdent(table)} t ORDER BY 1`;

/**
 * The scenario both warehouses run (the window already loaded once with the
 * demo config): a config that reads login.platform from a property no event has
 * is flagged (NULL share to 100%), refused by --fail-on-review; a preview leaves
 * every table as it was, and its --skip-transform run equals a plain replay.
 */
async function reviewScenario(
  t: TestContext,
  world: ReplayWorld,
  target: SeedingTarget,
  renamed: string,
  tag: string,
): Promise<void> {
  const base = await target.dumps();

  await t.test(
    `${target.name}: --preview --fail-on-review flags the NULL column, exits 3 and changes nothing`,
    async () => {
      const res = await replayWith(world, target, renamed, [
        ...FALL,
        '--runtag',
        `${tag}-renamed-preview`,
        '--preview',
        '--fail-on-review',
      ]);
      assert.equal(res.code, 3, res.stderr);
      assert.deepEqual(await target.dumps(), base, 'every table byte for byte as before');
      const review = await storedReview(world, `${tag}-renamed-preview`);
      assert.equal(review.preview, true);
      const login = review.tables.find((x) => x.table === 'login')!;
      assert.equal(login.status, 'review_refused');
      assert.deepEqual(
        login.review?.flags.map((f) => [
          f.kind,
          f.kind === 'null_rise' ? f.column : '',
          f.kind === 'null_rise' ? f.after : '',
        ]),
        [['null_rise', 'platform', 1]],
      );
      const platform = login.review!.columns.find((c) => c.name === 'platform')!;
      assert.ok(platform.nullShareBefore !== null && platform.nullShareBefore < 0.1, `${platform.nullShareBefore}`);
      assert.equal(platform.nullShareAfter, 1);
      for (const other of review.tables.filter((x) => x.table !== 'login')) {
        assert.equal(other.status, 'previewed');
        assert.deepEqual(other.review?.flags, []);
      }
      // The window holds the first replay's rows: before and after both match the truth hour by hour.
      assertHours(world, review, FALL, 'before');
      assertHours(world, review, FALL, 'after');
      assert.match(res.stdout, /platform\s+character varying\s+\d+\.\d%\s+100\.0%\s+! NULL share \+\d+\.\d points/);
      assert.match(res.stdout, new RegExp(`review: s3://out/${tag}-renamed-preview/_review\\.html`));
    },
  );

  await t.test(
    `${target.name}: --no-review-columns counts rows per hour only: the NULL column goes unflagged`,
    async () => {
      const res = await replayWith(world, target, renamed, [
        ...FALL,
        '--runtag',
        `${tag}-renamed-hours`,
        '--preview',
        '--fail-on-review',
        '--no-review-columns',
      ]);
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(await target.dumps(), base, 'every table byte for byte as before');
      const review = await storedReview(world, `${tag}-renamed-hours`);
      assert.equal(review.columnsReviewed, false);
      for (const entry of review.tables) {
        assert.equal(entry.status, 'previewed');
        assert.equal(entry.review?.columnsReviewed, false);
        assert.deepEqual(entry.review?.columns, []);
        assert.deepEqual(entry.review?.flags, []);
      }
      assertHours(world, review, FALL, 'before');
      assertHours(world, review, FALL, 'after');
      assert.match(res.stdout, /columns not reviewed: --no-review-columns/);
      assert.match(
        res.stdout,
        /login \(previewed\): rows (\d+) -> \1, 24 hour\(s\), columns not reviewed: nothing flagged/,
      );
      const page = (await world.out.readBytes(`${tag}-renamed-hours/_review.html`)).toString('utf8');
      assert.match(page, /columns not reviewed \(--no-review-columns\)/);
      assert.ok(!page.includes('<table class="columns">'), 'no column table');
    },
  );

  await t.test(`${target.name}: --fail-on-review rolls the flagged table back and exits 1`, async () => {
    const res = await replayWith(world, target, renamed, [...FALL, '--runtag', `${tag}-renamed`, '--fail-on-review']);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stdout, /login\s+review_refused/);
    assert.deepEqual(await target.dumps(), base, 'login exactly as before (the others reloaded the same rows)');
    const review = await storedReview(world, `${tag}-renamed`);
    assert.deepEqual(
      review.tables.map((x) => [x.table, x.status]),
      [
        ['chat_message', 'loaded'],
        ['login', 'review_refused'],
        ['minute_watched', 'loaded'],
        ['video_play', 'loaded'],
      ],
    );
  });

  await t.test(
    `${target.name}: a preview then --skip-transform of its run gives the rows of a plain replay`,
    async () => {
      await target.seedStale();
      const stale = await target.dumps();
      assert.notDeepEqual(stale, base);
      const preview = await replayWith(world, target, DEMO_CONFIG, [...FALL, '--runtag', `${tag}-p`, '--preview']);
      assert.equal(preview.code, 0, preview.stderr);
      assert.match(preview.stdout, /login\s+previewed/);
      assert.deepEqual(await target.dumps(), stale, 'the preview changed nothing');
      const load = await replayWith(world, target, DEMO_CONFIG, [...FALL, '--runtag', `${tag}-p`, '--skip-transform']);
      assert.equal(load.code, 0, load.stderr);
      const loaded = await target.dumps();
      assert.notDeepEqual(loaded, stale, 'the stale row is replaced');
      const plain = await replayWith(world, target, DEMO_CONFIG, [...FALL, '--runtag', `${tag}-plain`]);
      assert.equal(plain.code, 0, plain.stderr);
      assert.deepEqual(await target.dumps(), loaded);
      assert.deepEqual(loaded, base);
    },
  );
}

interface SeedingTarget extends Target {
  /** Adds a row inside the window that a replay must replace. */
  seedStale(): Promise<void>;
}

test('replay review with PostgreSQL and PGlite', async (t0) => {
  const world = await startReplayWorld(t0, {
    // 2023-11-04 23:00 PDT .. 2023-11-06 01:00 PST: the whole fall-back day.
    startSec: Date.UTC(2023, 10, 5, 6, 0, 0) / 1000,
    endSec: Date.UTC(2023, 10, 6, 9, 0, 0) / 1000,
    events: 6000,
    dbName: 'replay_review',
  });
  if (!world) return;
  // And the whole spring-forward day, into the same bucket, with its own truth.
  const spring = await generateEdgeLogs(world.edge, {
    schemas: world.schemas,
    startSec: Date.UTC(2023, 2, 12, 7, 0, 0) / 1000,
    endSec: Date.UTC(2023, 2, 13, 8, 0, 0) / 1000,
    events: 5000,
    fileSpanSec: 600,
    seed: 5,
    keepTruth: true,
  });
  for (const [table, times] of spring.events) world.truth.events.get(table)?.push(...times);
  const dir = mkdtempSync(join(tmpdir(), 'spade-replay-review-'));
  t0.diagnostic(`artifacts (review page, screenshot): ${dir}`);
  const renamed = renamedConfig(dir);
  const postgres: SeedingTarget = {
    name: 'PostgreSQL',
    rsurl: world.rsurl,
    dumps: () => Promise.all(TABLES.map(async (x) => (await world.query<{ r: string }>(dumpSql(x))).map((r) => r.r))),
    seedStale: async () => {
      await world.query(`INSERT INTO physical.login (time, login) VALUES ('2023-11-05 01:15:00', 'stale-inside')`);
    },
  };

  await t0.test(
    'per-hour counts are exact across the fall-back day (one 01:00 wall-clock hour, both real hours)',
    async () => {
      const res = await replayWith(world, postgres, DEMO_CONFIG, [...FALL, '--runtag', 'fall1']);
      assert.equal(res.code, 0, res.stderr);
      const review = await storedReview(world, 'fall1');
      assertHours(world, review, FALL, 'after');
      for (const entry of review.tables) {
        const hours = entry.review!.hours;
        assert.ok(
          hours.every((h) => h.before === 0),
          `${entry.table}: the table was empty before`,
        );
        assert.equal(hours.length, 24, `${entry.table}: 24 wall-clock hours`);
        assert.deepEqual(
          hours.filter((h) => h.repeated).map((h) => h.hour),
          ['2023-11-05 01:00'],
        );
        const w = parseWindow(...FALL);
        const inWindow: number = (world.truth.events.get(entry.table) ?? []).filter(
          (s) => s >= w.startUtc.getTime() / 1000 && s <= w.endUtc.getTime() / 1000,
        ).length;
        assert.equal(entry.review!.rowsAfter, inWindow);
      }
      assert.match(res.stdout, /login \(loaded\): rows 0 -> \d+, 24 hour\(s\), 7 column\(s\): nothing flagged/);
    },
  );

  await t0.test('per-hour counts are exact across the spring-forward day (no 02:00 hour)', async () => {
    const res = await replayWith(world, postgres, DEMO_CONFIG, [...SPRING, '--runtag', 'spring1', '--review', 'full']);
    assert.equal(res.code, 0, res.stderr);
    const review = await storedReview(world, 'spring1');
    assertHours(world, review, SPRING, 'after');
    for (const entry of review.tables) {
      assert.equal(entry.review!.hours.length, 23, `${entry.table}: 23 wall-clock hours`);
      assert.ok(!entry.review!.hours.some((h) => h.hour === '2023-03-12 02:00'));
    }
    // --review full prints every hour.
    assert.match(res.stdout, /2023-03-12 01:00\s+0\s+\d+\n\s+2023-03-12 03:00/);
  });

  await reviewScenario(t0, world, postgres, renamed, 'pg');

  await t0.test('spade review prints the stored review again', async () => {
    const preview = await storedReview(world, 'pg-renamed-preview');
    assert.equal(preview.runtag, 'pg-renamed-preview');
    const res = await runSpade(['review', '--runtag', 'pg-renamed-preview', '--output', 's3://out'], world.env);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^review \(preview: nothing was changed\): 4 table\(s\), 1 flagged/);
    assert.match(res.stdout, /login \(review_refused\): rows \d+ -> \d+, 24 hour\(s\), 7 column\(s\): 1 flag\(s\)/);
    assert.match(res.stdout, /platform\s+character varying\s+\d+\.\d%\s+100\.0%/);
    assert.match(res.stdout, /review: s3:\/\/out\/pg-renamed-preview\/_review\.html/);
    const missing = await runSpade(['review', '--runtag', 'nope', '--output', 's3://out'], world.env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^spade: no review of run nope under s3:\/\/out/);
  });

  await t0.test('the review page in headless Chromium shows each table chart and the flags', async (t) => {
    if (!requireChromium(t)) return;
    const page = join(dir, 'review.html');
    writeFileSync(page, await world.out.readBytes('pg-renamed-preview/_review.html'));
    const url = pathToFileURL(page).href;
    const dom = await dumpDom(url);
    const sections = dom.split('<section class="table').slice(1);
    assert.deepEqual(
      sections.map((s) => /data-table="([^"]*)"/.exec(s)?.[1]),
      TABLES,
    );
    for (const section of sections) {
      assert.match(section, /<svg[^>]*class="hours"/, 'a chart');
      assert.equal(section.split('<g class="hour').length - 1, 24, 'one bar pair per hour');
      assert.equal((section.match(/class="bar before"/g) ?? []).length, 24);
      assert.equal((section.match(/class="bar after"/g) ?? []).length, 24);
      assert.match(section, /data-hour="2023-11-05 01:00" data-repeated="true"/);
    }
    const login = sections[1]!;
    assert.match(login, /^ flagged"/, 'the flagged table is marked');
    assert.match(login, /<li class="flag" data-kind="null_rise">column platform: NULL share \d+\.\d% -&gt; 100\.0%/);
    assert.match(login, /<tr data-column="platform" class="flagged">/);
    assert.equal((login.match(/<tr data-column="[^"]*" class="flagged">/g) ?? []).length, 1);
    for (const clean of [sections[0]!, sections[2]!, sections[3]!]) {
      assert.match(clean, /<p class="clean">nothing flagged<\/p>/);
      assert.doesNotMatch(clean, /class="flagged"/);
    }
    const png = join(dir, 'review.png');
    await screenshot(url, png);
    assert.deepEqual([...readFileSync(png).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    t.diagnostic(`screenshot: ${png}`);
  });

  const liteDir = join(dir, 'pglite');
  const pglite: SeedingTarget = {
    name: 'PGlite',
    rsurl: `pglite://${liteDir}`,
    dumps: async () => {
      const db = new PGlite(liteDir);
      try {
        return await Promise.all(
          TABLES.map(async (x) => (await db.query<{ r: string }>(dumpSql(x))).rows.map((r) => r.r)),
        );
      } finally {
        await db.close();
      }
    },
    seedStale: async () => {
      const db = new PGlite(liteDir);
      try {
        await db.query(`INSERT INTO physical.login (time, login) VALUES ('2023-11-05 01:15:00', 'stale-inside')`);
      } finally {
        await db.close();
      }
    },
  };
  await t0.test('PGlite: the window loaded (tables created), per-hour counts exact', async () => {
    const res = await replayWith(world, pglite, DEMO_CONFIG, [...FALL, '--runtag', 'lite-fall1']);
    assert.equal(res.code, 0, res.stderr);
    assertHours(world, await storedReview(world, 'lite-fall1'), FALL, 'after');
  });
  await reviewScenario(t0, world, pglite, renamed, 'lite');
});
