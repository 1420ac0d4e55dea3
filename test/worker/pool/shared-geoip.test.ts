/**
 * The GeoIP databases are read once into shared memory for every transform
 * thread (worker/pool/shared-geoip.ts): lookups through the shared bytes equal
 * maxmind's own; `spade transform` with 4 threads holds a large database once,
 * not once per thread, and `spade process` once for its own transform and its
 * pool's (peak RSS of child processes).
 */
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import maxmind, { type CityResponse } from 'maxmind';
import { sharedGeoIpFiles } from '../../../worker/pool/shared-geoip.js';
import { openGeoIp } from '../../../worker/transform/geoip.js';
import type { TransformSettings } from '../../../worker/transform/setup.js';
import { fixturePath, repoRoot } from '../../helpers/fixtures.js';
import { listFiles } from '../../helpers/list-files.js';
import { runSpade, type CliResult } from '../../helpers/replay-env.js';

const CITY = fixturePath('geoip/GeoIP2-City-Test.mmdb');
const ASN = fixturePath('geoip/GeoLite2-ASN-Test.mmdb');
const IPS = ['81.2.69.142', '2.125.160.216', '89.160.20.112', '216.160.83.56', '1.2.3.4', 'not-an-ip'];

const CONFIG = JSON.stringify([
  {
    EventName: 'geo',
    Columns: [
      { InboundName: 'time', OutboundName: 'time', Transformer: 'f@timestamp@unix', ColumnCreationOptions: '' },
      { InboundName: 'ip', OutboundName: 'ip', Transformer: 'varchar', ColumnCreationOptions: '(64)' },
      { InboundName: 'ip', OutboundName: 'city', Transformer: 'ipCity', ColumnCreationOptions: '' },
      { InboundName: 'ip', OutboundName: 'country', Transformer: 'ipCountry', ColumnCreationOptions: '' },
      { InboundName: 'ip', OutboundName: 'asn', Transformer: 'ipAsn', ColumnCreationOptions: '' },
    ],
  },
]);

/**
 * The database at `src` with `padBytes` zero bytes added at the end of its data
 * section (just before the metadata marker): no record points there, so every
 * lookup is the same, but the file is as large as a real GeoLite2 City or larger.
 */
function paddedDatabase(src: string, dst: string, padBytes: number): void {
  const db = readFileSync(src);
  const marker = db.lastIndexOf(Buffer.from([0xab, 0xcd, 0xef, ...Buffer.from('MaxMind.com')]));
  assert.ok(marker > 0, 'metadata marker');
  const fd = openSync(dst, 'w');
  try {
    writeSync(fd, db.subarray(0, marker));
    const zeros = Buffer.alloc(16 * 1024 * 1024);
    for (let left = padBytes; left > 0; left -= zeros.length) writeSync(fd, zeros, 0, Math.min(left, zeros.length));
    writeSync(fd, db.subarray(marker));
  } finally {
    closeSync(fd);
  }
}

test('lookups through the shared bytes equal maxmind.open of the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spade-shared-geoip-'));
  try {
    const padded = join(dir, 'city.mmdb');
    paddedDatabase(CITY, padded, 1024 * 1024);
    const settings: TransformSettings = { configText: CONFIG, configSource: 'test', geoipCity: padded, geoipAsn: ASN };
    const shared = await sharedGeoIpFiles(settings);
    assert.ok(shared?.city && shared.asn, 'both databases read');
    assert.ok(shared.city.bytes instanceof SharedArrayBuffer);
    assert.ok(shared.city.id.startsWith(`${padded}|`));
    // The same version of a file is read once.
    assert.equal((await sharedGeoIpFiles(settings))?.city, shared.city);
    const geo = await openGeoIp({ cityPath: padded, asnPath: ASN }, shared);
    const city = await maxmind.open<CityResponse>(CITY);
    for (const ip of IPS.filter((x) => x !== 'not-an-ip')) {
      assert.equal(geo.city(ip), city.get(ip)?.city?.names?.en ?? null, ip);
    }
    assert.equal(geo.city('81.2.69.142'), 'London');
    assert.equal(geo.country('89.160.20.112'), 'SE');
    // A gzip file is refused as maxmind.open refuses it, naming the file and its flag.
    const gz = join(dir, 'city.mmdb.gz');
    writeFileSync(gz, gzipSync(readFileSync(CITY)));
    const gzSettings = { ...settings, geoipCity: gz };
    await assert.rejects(openGeoIp({ cityPath: gz }, await sharedGeoIpFiles(gzSettings)), (err: Error) => {
      assert.match(err.message, /cannot open GeoIP City database .*city\.mmdb\.gz \(--geoip-city\): .*gzip format/);
      return true;
    });
    // A config without ip columns reads nothing.
    assert.equal(
      await sharedGeoIpFiles({ ...settings, configText: CONFIG.replace(/"ip(City|Country|Asn)"/g, '"varchar"') }),
      undefined,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const gzLines = (file: string): string[] => gunzipSync(readFileSync(file)).toString('utf8').split('\n').filter(Boolean);

/** Runs `spade <args>` on stdin in a child process; the rows (sorted) of the geo table under `out` and its peak RSS. */
async function spade(
  args: string[],
  input: Buffer,
  out: string,
): Promise<CliResult & { rows: string[]; peakMb: number }> {
  const peakRss = join(repoRoot(), 'dist', 'test', 'helpers', 'peak-rss.js');
  const res = await runSpade(args, {}, input, ['--import', peakRss]);
  const rows = listFiles(out)
    .filter((f) => /\/geo\/v\d+\/[^/]+\.tsv\.gz$/.test(f))
    .flatMap(gzLines)
    .sort();
  const peakMb = Number(/peak-rss-kb (\d+)/.exec(res.stderr)?.[1] ?? NaN) / 1024;
  return { ...res, rows, peakMb };
}

/** Size of the padded City database: larger than any thread's own memory, so a copy per thread shows. */
const PAD_MB = 320;

/** Edge lines of `n` geo events, their IPs taken from IPS in turn. */
function geoLines(n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const data = Buffer.from(JSON.stringify({ event: 'geo', properties: { time: 1699178400 + i, ip: IPS[i % 6] } }));
    lines.push(
      JSON.stringify({
        receivedAt: '2023-11-05T10:00:00.250Z',
        clientIp: '10.0.0.1',
        uuid: `u${i}`,
        data: data.toString('base64'),
        recordversion: 3,
      }),
    );
  }
  return lines.join('\n') + '\n';
}

/** In `dir`: the City database padded by PAD_MB, and the geo table's config. */
function largeDatabaseRun(dir: string): { padded: string; config: string } {
  const padded = join(dir, 'city.mmdb');
  paddedDatabase(CITY, padded, PAD_MB * 1024 * 1024);
  const config = join(dir, 'config.json');
  writeFileSync(config, CONFIG);
  return { padded, config };
}

test('spade process with 2 threads holds a large GeoIP database once (its own thread and the pool)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'spade-shared-geoip-'));
  try {
    const { padded, config } = largeDatabaseRun(dir);
    const input = Buffer.from(geoLines(20_000));
    const run = (city: string, name: string): ReturnType<typeof spade> =>
      spade(
        [
          'process',
          '--follow',
          '--input',
          '-',
          '--output',
          join(dir, name, 'out'),
          '--state-dir',
          join(dir, name, 'state'),
          '--config',
          config,
          '--geoip-city',
          city,
          '--geoip-asn',
          ASN,
          '--threads',
          '2',
        ],
        input,
        join(dir, name, 'out'),
      );
    const small = await run(CITY, 'small');
    assert.equal(small.code, 0, small.stderr);
    const large = await run(padded, 'large');
    assert.equal(large.code, 0, large.stderr);
    assert.equal(small.rows.length, 20_000);
    assert.deepEqual(large.rows, small.rows, 'the same lookups');
    t.diagnostic(
      `peak RSS: test database ${small.peakMb.toFixed(0)} MB, padded by ${PAD_MB} MB ${large.peakMb.toFixed(0)} MB`,
    );
    // One copy adds PAD_MB; the processor's own transform holding a second one would add twice that.
    assert.ok(
      large.peakMb - small.peakMb < 1.5 * PAD_MB,
      `the padded database added ${(large.peakMb - small.peakMb).toFixed(0)} MB: it is held more than once`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('spade transform with 4 threads holds a large GeoIP database once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'spade-shared-geoip-'));
  try {
    const { padded, config } = largeDatabaseRun(dir);
    const input = gzipSync(geoLines(40_000));
    const common = ['--config', config, '--geoip-city', padded, '--geoip-asn', ASN];
    const one = await spade(
      ['transform', '--out', join(dir, 'one'), ...common, '--threads', '1'],
      input,
      join(dir, 'one'),
    );
    assert.equal(one.code, 0, one.stderr);
    const four = await spade(
      ['transform', '--out', join(dir, 'four'), ...common, '--threads', '4'],
      input,
      join(dir, 'four'),
    );
    assert.equal(four.code, 0, four.stderr);
    assert.equal(one.rows.length, 40_000);
    assert.deepEqual(four.rows, one.rows, 'the same rows whatever the threads');
    assert.ok(
      one.rows.some((r) => r.includes('\tLondon\tGB\t')),
      'London looked up',
    );
    t.diagnostic(`peak RSS: 1 thread ${one.peakMb.toFixed(0)} MB, 4 threads ${four.peakMb.toFixed(0)} MB`);
    // A copy per thread would add 3 x 320 MB; shared, the 3 extra threads add only their own heaps.
    assert.ok(
      four.peakMb - one.peakMb < PAD_MB,
      `4 threads peaked ${four.peakMb.toFixed(0)} MB against ${one.peakMb.toFixed(0)} MB for 1: the database is held more than once`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
