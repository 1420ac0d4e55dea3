/**
 * End-to-end replays with real parts: the `spade` CLI as a child process,
 * s3rver for edge and output buckets, a throwaway PostgreSQL warehouse.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expectedCount, startReplayWorld, tableSnapshot, type ReplayWorld } from '../helpers/replay-env.js';

// 2023-11-05 00:30 PDT .. 03:00 PST: the window spans the fall-back change.
const START = '2023-11-05 00:30:00';
const END = '2023-11-05 03:00:00';
const START_SEC = Date.UTC(2023, 10, 5, 7, 30, 0) / 1000;
const END_SEC = Date.UTC(2023, 10, 5, 11, 0, 0) / 1000;
const TABLES = ['login', 'video_play'];

/** Rows of a table as JSON objects (columns by name, so the table's column order does not matter), sorted. */
async function byNameSnapshot(w: ReplayWorld, table: string): Promise<string[]> {
  const rows = await w.query<{ r: string }>(`SELECT to_jsonb(t)::text AS r FROM physical."${table}" t ORDER BY 1`);
  return rows.map((r) => r.r);
}

async function seedExistingRows(w: ReplayWorld): Promise<void> {
  // A stale row inside the window (must be replaced), rows outside it and in another table (must stay).
  await w.query(`INSERT INTO physical.login (time, login) VALUES ('2023-11-05 01:15:00', 'stale-inside'),
    ('2023-11-04 12:00:00', 'outside-before'), ('2023-11-05 03:00:01', 'outside-after')`);
  await w.query(`INSERT INTO physical.chat_message (time, channel) VALUES ('2023-11-05 01:00:00', 'other-table')`);
}

test('replay into PostgreSQL from s3rver', async (t0) => {
  let world: ReplayWorld | null = null;

  await t0.test(
    'a full replay leaves exactly the window events, untouched rows outside it and other tables',
    async () => {
      world = await startReplayWorld(t0, {
        startSec: Date.UTC(2023, 10, 5, 5, 0, 0) / 1000,
        endSec: Date.UTC(2023, 10, 5, 13, 0, 0) / 1000,
        events: 4000,
        dbName: 'replay_e2e',
      });
      if (!world) return;
      await seedExistingRows(world);
      const res = await world.replay([START, END, ...TABLES, '--runtag', 'full1']);
      assert.equal(res.code, 0, res.stderr);
      for (const table of TABLES) {
        const [row]: { n: number }[] = await world.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM physical."${table}" WHERE time BETWEEN $1 AND $2`,
          [START, END],
        );
        assert.equal(row!.n, expectedCount(world.truth, table, START_SEC, END_SEC), `rows of ${table} in the window`);
      }
      const kept = await world.query<{ login: string }>(
        `SELECT login FROM physical.login WHERE login LIKE 'outside-%' OR login LIKE 'stale-%' ORDER BY 1`,
      );
      assert.deepEqual(
        kept.map((r) => r.login),
        ['outside-after', 'outside-before'],
      );
      const other = await world.query<{ channel: string }>(`SELECT channel FROM physical.chat_message`);
      assert.deepEqual(
        other.map((r) => r.channel),
        ['other-table'],
      );
      assert.match(res.stdout, /login\s+loaded/);
      assert.match(res.stdout, /video_play\s+loaded/);
      // The generator writes ~10% of bigint ids above 2^53 (9007199254740993 + n, n < 1e6): each arrives exactly.
      const [ids] = await world.query<{ big: number; odd: number; nulls: number; n: number }>(
        `SELECT count(*) FILTER (WHERE user_id > 9007199254740992)::int AS big,
                count(*) FILTER (WHERE user_id > 9007199254740992 AND user_id % 2 = 1)::int AS odd,
                count(*) FILTER (WHERE user_id IS NULL)::int AS nulls, count(*)::int AS n
           FROM physical.login WHERE time BETWEEN $1 AND $2`,
        [START, END],
      );
      assert.ok(ids!.big > ids!.n * 0.05, `ids above 2^53: ${JSON.stringify(ids)}`);
      // Rounded through a double they would all be even; exact, about half are odd.
      assert.ok(ids!.odd > ids!.big * 0.3, `odd ids above 2^53: ${JSON.stringify(ids)}`);
      // 2% of properties are absent (a skipped column); nothing else turns an id into NULL.
      assert.ok(ids!.nulls < ids!.n * 0.05, `NULL ids: ${JSON.stringify(ids)}`);
    },
  );

  await t0.test('the same replay again gives identical table contents', async (t) => {
    if (!world) return t.skip('needs the first test');
    const before = await Promise.all(TABLES.map((x) => tableSnapshot(world!, x)));
    const res = await world.replay([START, END, ...TABLES, '--runtag', 'full2']);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(await Promise.all(TABLES.map((x) => tableSnapshot(world!, x))), before);
  });

  await t0.test(
    '--skip-ace-upload, a partition run twice and dead attempts left behind, then --skip-transform: same result',
    async (t) => {
      if (!world) return t.skip('needs the first test');
      const w = world;
      const before = await Promise.all(TABLES.map((x) => tableSnapshot(w, x)));
      const tag = 'split1';
      const transformOnly = [START, END, ...TABLES, '--runtag', tag, '--skip-ace-upload', '--partition-mb', '0.05'];
      const first = await w.replay(transformOnly);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /--skip-transform --runtag split1/);
      // Force one partition to run again: its success manifest goes, its old files stay (like a dead attempt).
      const manifests: string[] = [];
      for await (const o of w.out.list(`${tag}/_success/`)) manifests.push(o.key);
      assert.ok(manifests.length >= 2, `several partitions expected, got ${manifests.length}`);
      await w.out.delete(manifests[0]!);
      // Half-written output of an attempt that died: never named by a manifest, so never loaded.
      await w.out.put(`${tag}/login/v0/p00000-adead-g0-00000.tsv.gz`, Buffer.from('not even gzip'));
      const again = await w.replay(transformOnly);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /already done, resuming/);
      const load = await w.replay([START, END, ...TABLES, '--runtag', tag, '--skip-transform']);
      assert.equal(load.code, 0, load.stderr);
      assert.deepEqual(await Promise.all(TABLES.map((x) => tableSnapshot(w, x))), before);
      // Loading only some tables of a run loads just those.
      const only = await w.replay([START, END, 'login', '--runtag', tag, '--skip-transform']);
      assert.equal(only.code, 0, only.stderr);
      assert.match(only.stdout, /login\s+loaded/);
      assert.doesNotMatch(only.stdout, /video_play/);
    },
  );

  await t0.test('a load that fails leaves that table as it was, loads the others and exits non-zero', async (t) => {
    if (!world) return t.skip('needs the first test');
    const w = world;
    const videoBefore = await tableSnapshot(w, 'video_play');
    await w.query(`DELETE FROM physical.login WHERE time BETWEEN $1 AND $2`, [START, END]);
    // A constraint that every new row breaks (the columns themselves still match the config).
    await w.query(
      `ALTER TABLE physical.video_play ADD CONSTRAINT spade_test_no_new_rows CHECK (time < '2000-01-01') NOT VALID`,
    );
    const snapshotAfterAlter = await tableSnapshot(w, 'video_play');
    const res = await w.replay([START, END, ...TABLES, '--runtag', 'fail1']);
    assert.equal(res.code, 1);
    assert.match(res.stdout, /video_play\s+failed/);
    assert.match(res.stdout, /login\s+loaded/);
    assert.deepEqual(await tableSnapshot(w, 'video_play'), snapshotAfterAlter);
    assert.equal(videoBefore.length, snapshotAfterAlter.length);
    const [row] = await w.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM physical.login WHERE time BETWEEN $1 AND $2`,
      [START, END],
    );
    assert.equal(row!.n, expectedCount(w.truth, 'login', START_SEC, END_SEC));
    await w.query(`ALTER TABLE physical.video_play DROP CONSTRAINT spade_test_no_new_rows`);
  });

  await t0.test(
    'columns in another order load by name; a table whose columns differ is refused, the others load',
    async (t) => {
      if (!world) return t.skip('needs the first test');
      const w = world;
      const full = await w.replay([START, END, 'login', '--runtag', 'cols0']);
      assert.equal(full.code, 0, full.stderr);
      const loginBefore = await byNameSnapshot(w, 'login');
      // `platform` added to the config before `login`, but appended to the table: same types, so a
      // load by position would put each value in the other column without any error.
      await w.query(`ALTER TABLE physical.login RENAME TO login_old;
        CREATE TABLE physical.login (time timestamp, ip varchar(15), user_id bigint, platform varchar(32),
          login varchar(64), logged_in boolean, client_time timestamp);
        INSERT INTO physical.login SELECT time, ip, user_id, platform, login, logged_in, client_time FROM physical.login_old;
        DROP TABLE physical.login_old`);
      await w.query(`DELETE FROM physical.login WHERE time BETWEEN $1 AND $2`, [START, END]);
      // A column the config does not have: the replay would wipe its values in the window.
      await w.query(`ALTER TABLE physical.video_play ADD COLUMN note text`);
      await w.query(`UPDATE physical.video_play SET note = 'kept'`);
      const videoBefore = await tableSnapshot(w, 'video_play');
      const res = await w.replay([START, END, ...TABLES, '--runtag', 'cols1']);
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stdout, /login\s+loaded/);
      assert.match(res.stdout, /video_play\s+columns_refused/);
      assert.ok(
        res.stdout.includes(
          `video_play: table physical.video_play does not match the config's columns (not in the config: "note" text); ` +
            'the table was left as it was: ALTER it to match, or fix the config',
        ),
        res.stdout,
      );
      assert.deepEqual(await tableSnapshot(w, 'video_play'), videoBefore);
      assert.deepEqual(await byNameSnapshot(w, 'login'), loginBefore);
      await w.query(`ALTER TABLE physical.video_play DROP COLUMN note`);
    },
  );

  await t0.test('the shrink guard refuses a replay from half the input; --allow-shrink lets it through', async (t) => {
    if (!world) return t.skip('needs the first test');
    const w = world;
    const full = await w.replay([START, END, 'login', '--runtag', 'shrink0']);
    assert.equal(full.code, 0, full.stderr);
    const before = await tableSnapshot(w, 'login');
    const keys: string[] = [];
    for await (const o of w.edge.list('2023110')) keys.push(o.key);
    for (const k of keys.filter((_, i) => i % 2 === 0)) await w.edge.delete(k);
    const refused = await w.replay([START, END, 'login', '--runtag', 'shrink1']);
    assert.equal(refused.code, 1);
    assert.match(refused.stdout, /login\s+shrink_refused/);
    assert.match(refused.stdout, /--allow-shrink/);
    assert.deepEqual(await tableSnapshot(w, 'login'), before);
    const allowed = await w.replay([START, END, 'login', '--runtag', 'shrink2', '--allow-shrink']);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.ok((await tableSnapshot(w, 'login')).length < before.length);
  });
});

test('replay across the spring-forward change: 2023-03-12 01:00..04:00 Pacific selects the right files and rows', async (t) => {
  const w = await startReplayWorld(t, {
    startSec: Date.UTC(2023, 2, 12, 7, 0, 0) / 1000,
    endSec: Date.UTC(2023, 2, 12, 13, 0, 0) / 1000,
    events: 2000,
    dbName: 'replay_spring',
  });
  if (!w) return;
  const res = await w.replay(['2023-03-12 01:00:00', '2023-03-12 04:00:00', 'minute_watched', '--runtag', 'spring']);
  assert.equal(res.code, 0, res.stderr);
  // 01:00 PST = 09:00Z; 04:00 PDT = 11:00Z: two real hours.
  const expected = expectedCount(
    w.truth,
    'minute_watched',
    Date.UTC(2023, 2, 12, 9) / 1000,
    Date.UTC(2023, 2, 12, 11) / 1000,
  );
  const [row] = await w.query<{ n: number; bad: number }>(
    `SELECT count(*)::int AS n, count(*) FILTER (WHERE time >= '2023-03-12 02:00:00' AND time < '2023-03-12 03:00:00')::int AS bad
       FROM physical.minute_watched`,
  );
  assert.equal(row!.n, expected);
  assert.equal(row!.bad, 0, 'no wall-clock time in the skipped hour');
});
