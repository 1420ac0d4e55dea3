import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compileGoLayout,
  formatPacific,
  formatUtc,
  pacificOffsetSeconds,
  unixToText,
} from '../../../worker/transform/timefmt.js';

const utc = (iso: string): number => Date.parse(iso) / 1000;

describe('formatPacific / formatUtc', () => {
  const cases: [string, number, string, string][] = [
    // [what, unix seconds, Pacific, UTC]
    ['lower bound 1e9', 1e9, '2001-09-08 18:46:40', '2001-09-09 01:46:40'],
    ['fraction .5', 1380585602.5, '2013-09-30 17:00:02.5', '2013-10-01 00:00:02.5'],
    ['fraction truncated like Go (float)', 1380585602.123, '2013-09-30 17:00:02.122', '2013-10-01 00:00:02.122'],
    ['sub-millisecond fraction dropped', 1500000000.001, '2017-07-13 19:40:00', '2017-07-14 02:40:00'],
    ['two-digit fraction', 1500000000.25, '2017-07-13 19:40:00.25', '2017-07-14 02:40:00.25'],
    ['upper bound 1.314e10', 13140000000, '2386-05-23 01:00:00', '2386-05-23 08:00:00'],
    // 2016 spring forward: 2016-03-13 02:00 PST → 03:00 PDT (10:00Z)
    ['2016-03-13 last PST second', utc('2016-03-13T09:59:59Z'), '2016-03-13 01:59:59', '2016-03-13 09:59:59'],
    ['2016-03-13 first PDT second', utc('2016-03-13T10:00:00Z'), '2016-03-13 03:00:00', '2016-03-13 10:00:00'],
    // 2016 fall back: 2016-11-06 02:00 PDT → 01:00 PST (09:00Z)
    ['2016-11-06 01:30 PDT', utc('2016-11-06T08:30:00Z'), '2016-11-06 01:30:00', '2016-11-06 08:30:00'],
    ['2016-11-06 01:30 PST', utc('2016-11-06T09:30:00Z'), '2016-11-06 01:30:00', '2016-11-06 09:30:00'],
    ['2016-11-06 after fall back', utc('2016-11-06T10:00:00Z'), '2016-11-06 02:00:00', '2016-11-06 10:00:00'],
    // 2023
    ['2023-03-12 last PST second', utc('2023-03-12T09:59:59Z'), '2023-03-12 01:59:59', '2023-03-12 09:59:59'],
    ['2023-03-12 first PDT second', utc('2023-03-12T10:00:00Z'), '2023-03-12 03:00:00', '2023-03-12 10:00:00'],
    ['2023-11-05 01:30 PDT', utc('2023-11-05T08:30:00Z'), '2023-11-05 01:30:00', '2023-11-05 08:30:00'],
    ['2023-11-05 01:30 PST', utc('2023-11-05T09:30:00Z'), '2023-11-05 01:30:00', '2023-11-05 09:30:00'],
    ['2023-11-05 last PDT second', utc('2023-11-05T08:59:59Z'), '2023-11-05 01:59:59', '2023-11-05 08:59:59'],
    ['leap day', utc('2016-02-29T12:00:00Z'), '2016-02-29 04:00:00', '2016-02-29 12:00:00'],
    ['new year in UTC, not in Pacific', utc('2017-01-01T07:59:59Z'), '2016-12-31 23:59:59', '2017-01-01 07:59:59'],
    ['before 1970', -1.5, '1969-12-31 15:59:58.5', '1969-12-31 23:59:58.5'],
  ];
  for (const [what, unix, pacific, utcText] of cases) {
    it(what, () => {
      assert.equal(formatPacific(unix), pacific);
      assert.equal(formatUtc(unix), utcText);
    });
  }

  it('gives the same text whatever order instants come in (caches are exact)', () => {
    const instants = cases.map((c) => c[1]);
    const expected = cases.map((c) => c[2]);
    for (let round = 0; round < 3; round++) {
      const order = instants.map((_, i) => (i * (round + 7)) % instants.length);
      for (const i of order) assert.equal(formatPacific(instants[i]!), expected[i]);
    }
  });

  it('knows the Pacific offsets', () => {
    assert.equal(pacificOffsetSeconds(utc('2023-01-15T00:00:00Z')), -8 * 3600);
    assert.equal(pacificOffsetSeconds(utc('2023-07-15T00:00:00Z')), -7 * 3600);
  });
});

describe('unixToText bounds', () => {
  const cases: [number, boolean, string | null][] = [
    [1e9, false, '2001-09-08 18:46:40'],
    [999999999.999, false, null],
    [999999999, false, null],
    [13140000000, true, '2386-05-23 08:00:00'],
    [13140000000.5, true, '2386-05-23 08:00:00.5'],
    [13140000001, true, null],
    [-1e9, false, null],
    [NaN, false, null],
  ];
  for (const [x, isUtc, expected] of cases) {
    it(`${x} (${isUtc ? 'UTC' : 'Pacific'}) → ${expected}`, () => assert.equal(unixToText(x, isUtc), expected));
  }
});

describe('compileGoLayout', () => {
  const cases: [string, string, string | null][] = [
    // [layout, value, output]
    ['2006-01-02 15:04:05', '2016-03-13 01:59:59', '2016-03-13 01:59:59'],
    ['2006-01-02 15:04:05', '2016-03-13 03:00:00', '2016-03-13 03:00:00'],
    // A wall clock in the skipped hour resolves like Go's time.Date: one hour back.
    ['2006-01-02 15:04:05', '2016-03-13 02:30:00', '2016-03-13 01:30:00'],
    ['2006-01-02 15:04:05', '2023-03-12 02:00:00', '2023-03-12 01:00:00'],
    // The repeated hour stays as written.
    ['2006-01-02 15:04:05', '2023-11-05 01:30:00', '2023-11-05 01:30:00'],
    ['2006-01-02 15:04:05', '2016-11-06 01:59:59', '2016-11-06 01:59:59'],
    // A fraction not in the layout is accepted (Go), and truncated to ms.
    ['2006-01-02 15:04:05', '2016-01-02 15:04:05.123456789', '2016-01-02 15:04:05.123'],
    ['2006-01-02 15:04:05', '2016-01-02 15:04:05,5', '2016-01-02 15:04:05.5'],
    ['2006-01-02 15:04:05', '2016-01-02 15:04:05.000', '2016-01-02 15:04:05'],
    // Leap seconds and impossible dates are rejected, as in Go.
    ['2006-01-02 15:04:05', '2016-12-31 23:59:60', null],
    ['2006-01-02 15:04:05', '2015-06-30 23:59:60', null],
    ['2006-01-02 15:04:05', '2016-02-30 00:00:00', null],
    ['2006-01-02 15:04:05', '2016-02-29 00:00:00', '2016-02-29 00:00:00'],
    ['2006-01-02 15:04:05', '2015-02-29 00:00:00', null],
    ['2006-01-02 15:04:05', '2016-13-01 00:00:00', null],
    ['2006-01-02 15:04:05', '2016-01-02 24:00:00', null],
    ['2006-01-02 15:04:05', '2016-1-02 15:04:05', null],
    ['2006-01-02 15:04:05', ' 2016-01-02 15:04:05', null],
    ['2006-01-02 15:04:05', '2016-01-02 15:04:05 ', null],
    ['2006-01-02 15:04:05', '2016-01-02 15:04', null],
    ['2006-01-02 15:04:05', '', null],
    // A layout space matches a run of spaces (Go's skip).
    ['2006-01-02 15:04:05', '2016-01-02   15:04:05', '2016-01-02 15:04:05'],
    // RFC 3339: a value with a zone keeps its own wall clock (Go formats in the parsed zone).
    ['2006-01-02T15:04:05Z07:00', '2016-06-01T12:00:00Z', '2016-06-01 12:00:00'],
    ['2006-01-02T15:04:05Z07:00', '2016-06-01T12:00:00-05:00', '2016-06-01 12:00:00'],
    ['2006-01-02T15:04:05Z07:00', '2016-06-01T12:00:00.25+02:00', '2016-06-01 12:00:00.25'],
    ['2006-01-02T15:04:05Z07:00', '2016-03-13T02:30:00-08:00', '2016-03-13 02:30:00'],
    ['2006-01-02T15:04:05Z07:00', '2016-06-01T12:00:00', null],
    ['2006-01-02T15:04:05Z07:00', '2016-06-01T12:00:00+0200', null],
    ['2006-01-02T15:04:05Z07:00', '2016-06-01T12:00:00z', null],
    ['02/01/2006 15:04 -0700', '13/03/2016 02:30 -0800', '2016-03-13 02:30:00'],
    // Kitchen-style layouts: _2 takes a space-padded or two-digit day; PM must be upper case.
    ['Jan _2 2006 3:04PM', 'Mar  5 2016 3:04PM', '2016-03-05 15:04:00'],
    ['Jan _2 2006 3:04PM', 'Mar 5 2016 3:04PM', '2016-03-05 15:04:00'],
    ['Jan _2 2006 3:04PM', 'Mar 15 2016 12:04AM', '2016-03-15 00:04:00'],
    ['Jan _2 2006 3:04PM', 'Mar 15 2016 12:04PM', '2016-03-15 12:04:00'],
    ['Jan _2 2006 3:04PM', 'mar 15 2016 1:04AM', '2016-03-15 01:04:00'],
    ['Jan _2 2006 3:04PM', 'Mar 15 2016 1:04pm', null],
    ['Jan _2 2006 3:04PM', 'Mar 15 2016 13:04PM', null],
    ['Jan _2 2006 3:04PM', 'Mrz 15 2016 1:04PM', null],
    // Zone abbreviations: Pacific ones are converted to Pacific, others keep their wall clock.
    ['Monday, 02-Jan-06 15:04:05 MST', 'Sunday, 06-Nov-16 01:30:00 PST', '2016-11-06 01:30:00'],
    ['Monday, 02-Jan-06 15:04:05 MST', 'Friday, 01-Jul-16 12:00:00 PST', '2016-07-01 13:00:00'],
    ['Monday, 02-Jan-06 15:04:05 MST', 'Friday, 01-Jul-16 12:00:00 PDT', '2016-07-01 12:00:00'],
    ['Monday, 02-Jan-06 15:04:05 MST', 'Friday, 01-Jul-16 12:00:00 UTC', '2016-07-01 12:00:00'],
    ['Monday, 02-Jan-06 15:04:05 MST', 'Friday, 01-Jul-16 12:00:00 EST', '2016-07-01 12:00:00'],
    ['Monday, 02-Jan-06 15:04:05 MST', 'Monday, 01-Jul-16 12:00:00 GMT+3', '2016-07-01 12:00:00'],
    ['Monday, 02-Jan-06 15:04:05 MST', 'Friday, 01-Jul-16 12:00:00 pst', null],
    ['Monday, 02-Jan-06 15:04:05 MST', 'Fri, 01-Jul-16 12:00:00 PST', null],
    // Fixed-width fractions need exactly that many digits; .999 takes any.
    ['2006-01-02 15:04:05.000', '2016-01-02 15:04:05.120', '2016-01-02 15:04:05.12'],
    ['2006-01-02 15:04:05.000', '2016-01-02 15:04:05.12', null],
    ['2006-01-02 15:04:05.999', '2016-01-02 15:04:05', '2016-01-02 15:04:05'],
    ['2006-01-02 15:04:05.999', '2016-01-02 15:04:05.98765', '2016-01-02 15:04:05.987'],
    // Two-digit years, long month names, days of the year.
    ['06-01-02', '69-01-01', '1969-01-01 00:00:00'],
    ['06-01-02', '68-01-01', '2068-01-01 00:00:00'],
    ['January 2, 2006', 'February 29, 2016', '2016-02-29 00:00:00'],
    ['January 2, 2006', 'February 29, 2015', null],
    ['2006-002', '2016-060', '2016-02-29 00:00:00'],
    ['2006-002', '2015-366', null],
    ['2006 15:04', '0099 12:00', '0099-01-01 12:00:00'],
  ];
  for (const [layout, value, expected] of cases) {
    it(`${layout} | ${JSON.stringify(value)} → ${expected}`, () => {
      assert.equal(compileGoLayout(layout)(value), expected);
    });
  }

  it('a layout without elements matches only its literal text', () => {
    const parse = compileGoLayout('today');
    assert.equal(parse('today'), '0000-01-01 00:00:00');
    assert.equal(parse('tomorrow'), null);
  });
});
