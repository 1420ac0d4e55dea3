import { test } from 'node:test';
import assert from 'node:assert/strict';
import { datePrefixes, parseWindow, WindowError } from '../../driver/window.js';
import { listWindowFiles } from '../../driver/listing.js';
import { MemStore } from '../helpers/memstore.js';

function windowError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof WindowError, `expected WindowError, got ${String(err)}`);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes('\n'), `one-line message: ${err.message}`);
    return true;
  });
}

test('bad formats are refused with the expected format and the value', () => {
  for (const bad of [
    '2023-03-12T01:00:00',
    '2023/03/12 01:00:00',
    '2023-03-12',
    '12-03-2023 01:00:00',
    '',
    'yesterday',
  ]) {
    windowError(
      () => parseWindow(bad, '2023-03-13 00:00:00'),
      new RegExp(`^START "${bad}" is not a valid time.*%Y-%m-%d %H:%M:%S`),
    );
  }
  windowError(
    () => parseWindow('2023-03-12 00:00:00', '2023-02-30 00:00:00'),
    /^END "2023-02-30 00:00:00".*no such date/,
  );
  windowError(() => parseWindow('2023-03-12 24:00:00', '2023-03-13 00:00:00'), /^START .*no such date or time/);
  windowError(() => parseWindow('2023-03-12 00:00:60', '2023-03-13 00:00:00'), /^START .*%Y-%m-%d %H:%M:%S/);
});

test('lenient field widths are normalised', () => {
  const w = parseWindow(' 2023-3-2 1:02:03 ', '2023-03-02 04:05:06');
  assert.equal(w.start, '2023-03-02 01:02:03');
  assert.equal(w.end, '2023-03-02 04:05:06');
});

test('END must be after START', () => {
  windowError(
    () => parseWindow('2023-06-01 10:00:00', '2023-06-01 10:00:00'),
    /^END "2023-06-01 10:00:00" is not after START/,
  );
  windowError(() => parseWindow('2023-06-01 10:00:00', '2023-06-01 09:59:59'), /is not after START/);
  // Across fall-back, wall-clock order and instant order agree outside the repeated hour.
  windowError(() => parseWindow('2023-11-05 02:00:00', '2023-11-05 00:59:59'), /is not after START/);
});

test('a time in the skipped spring-forward hour does not exist', () => {
  windowError(
    () => parseWindow('2023-03-12 02:30:00', '2023-03-12 05:00:00'),
    /^START "2023-03-12 02:30:00" does not exist in US Pacific time \(DST starts: on 2023-03-12 clocks jump from 02:00:00 to 03:00:00\)/,
  );
  windowError(() => parseWindow('2023-03-12 00:00:00', '2023-03-12 02:00:00'), /^END .*does not exist/);
  windowError(() => parseWindow('2023-03-12 00:00:00', '2023-03-12 02:59:59'), /^END .*does not exist/);
  // The minutes around the gap are fine.
  parseWindow('2023-03-12 01:59:59', '2023-03-12 03:00:00');
});

test('a time in the repeated fall-back hour is ambiguous and refused with a suggestion', () => {
  windowError(
    () => parseWindow('2023-11-05 01:30:00', '2023-11-05 05:00:00'),
    /^START "2023-11-05 01:30:00" is ambiguous in US Pacific time \(DST ends: on 2023-11-05 the hour 01:00:00-01:59:59 happens twice\); move the boundary out of the repeated hour, e.g. to 00:59:59 or 02:00:00$/,
  );
  windowError(() => parseWindow('2023-11-04 00:00:00', '2023-11-05 01:00:00'), /^END .*is ambiguous/);
  windowError(() => parseWindow('2023-11-04 00:00:00', '2023-11-05 01:59:59'), /^END .*is ambiguous/);
  parseWindow('2023-11-05 00:59:59', '2023-11-05 02:00:00');
});

test('UTC conversion across the 2023 DST changes', () => {
  const spring = parseWindow('2023-03-12 01:59:59', '2023-03-12 03:00:00');
  assert.equal(spring.startUtc.toISOString(), '2023-03-12T09:59:59.000Z'); // PST, UTC-8
  assert.equal(spring.endUtc.toISOString(), '2023-03-12T10:00:00.000Z'); // PDT, UTC-7: one second later
  assert.equal(spring.start, '2023-03-12 01:59:59');
  assert.equal(spring.end, '2023-03-12 03:00:00');

  const fall = parseWindow('2023-11-05 00:59:59', '2023-11-05 02:00:00');
  assert.equal(fall.startUtc.toISOString(), '2023-11-05T07:59:59.000Z'); // PDT
  assert.equal(fall.endUtc.toISOString(), '2023-11-05T10:00:00.000Z'); // PST: two hours and a second later

  const summer = parseWindow('2023-07-01 00:00:00', '2023-07-01 12:00:00');
  assert.equal(summer.startUtc.toISOString(), '2023-07-01T07:00:00.000Z');
  const winter = parseWindow('2023-01-01 00:00:00', '2023-01-01 12:00:00');
  assert.equal(winter.startUtc.toISOString(), '2023-01-01T08:00:00.000Z');
});

test('date prefixes cover START-1h .. END+1h in UTC days', () => {
  // 16:30 PDT = 23:30 UTC; +1h crosses into the next UTC day.
  assert.deepEqual(datePrefixes(parseWindow('2023-06-01 10:00:00', '2023-06-01 16:30:00')), ['20230601', '20230602']);
  // 16:00:00 PDT = 23:00 UTC, +1h = 00:00:00 next day (inclusive).
  assert.deepEqual(datePrefixes(parseWindow('2023-06-01 10:00:00', '2023-06-01 16:00:00')), ['20230601', '20230602']);
  // 15:59:59 PDT = 22:59:59 UTC, +1h = 23:59:59: same day. Start 17:30 PDT = 00:30 UTC next day, -1h = previous day.
  assert.deepEqual(datePrefixes(parseWindow('2023-06-01 10:00:00', '2023-06-01 15:59:59')), ['20230601']);
  assert.deepEqual(datePrefixes(parseWindow('2023-06-01 17:30:00', '2023-06-01 18:00:00')), ['20230601', '20230602']);
  assert.deepEqual(datePrefixes(parseWindow('2023-06-01 18:00:00', '2023-06-01 19:00:00')), ['20230602']);
  // Several days, across a month end.
  assert.deepEqual(datePrefixes(parseWindow('2023-01-30 12:00:00', '2023-02-02 12:00:00')), [
    '20230130',
    '20230131',
    '20230201',
    '20230202',
  ]);
});

test('DST windows select the right files', async () => {
  const store = new MemStore();
  const at = (iso: string) => Math.floor(Date.parse(iso) / 1000);
  const key = (iso: string) => `${iso.slice(0, 10).replaceAll('-', '')}/edge-a/${at(iso)}.node1.0a1b2c3d.log.gz`;
  const written = [
    // spring forward: window 2023-03-12 01:00:00 PST (09:00Z) .. 03:30:00 PDT (10:30Z), files to 11:30Z
    '2023-03-12T08:59:59Z',
    '2023-03-12T09:00:00Z',
    '2023-03-12T10:15:00Z',
    '2023-03-12T11:30:00Z',
    '2023-03-12T11:30:01Z',
    // fall back: window 2023-11-05 00:30:00 PDT (07:30Z) .. 02:30:00 PST (10:30Z), files to 11:30Z
    '2023-11-05T07:29:59Z',
    '2023-11-05T07:30:00Z',
    '2023-11-05T08:30:00Z', // 01:30 PDT
    '2023-11-05T09:30:00Z', // 01:30 PST
    '2023-11-05T11:30:00Z',
    '2023-11-05T11:30:01Z',
  ];
  for (const iso of written) store.set(key(iso), 'x');

  const spring = await listWindowFiles(store, parseWindow('2023-03-12 01:00:00', '2023-03-12 03:30:00'));
  assert.deepEqual(
    spring.map((f) => f.writtenAt.toISOString()),
    ['2023-03-12T09:00:00.000Z', '2023-03-12T10:15:00.000Z', '2023-03-12T11:30:00.000Z'],
  );
  const fall = await listWindowFiles(store, parseWindow('2023-11-05 00:30:00', '2023-11-05 02:30:00'));
  assert.deepEqual(
    fall.map((f) => f.writtenAt.toISOString()),
    ['2023-11-05T07:30:00.000Z', '2023-11-05T08:30:00.000Z', '2023-11-05T09:30:00.000Z', '2023-11-05T11:30:00.000Z'],
  );
});
