import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openGeoIp, type GeoIp } from '../../../worker/transform/geoip.js';
import { fixturePath } from '../../helpers/fixtures.js';

const CITY = fixturePath('geoip/GeoIP2-City-Test.mmdb');
const ASN = fixturePath('geoip/GeoLite2-ASN-Test.mmdb');

describe('openGeoIp with the MaxMind test databases', () => {
  let geoip: GeoIp;
  before(async () => {
    geoip = await openGeoIp({ cityPath: CITY, asnPath: ASN });
  });

  it('has both databases', () => {
    assert.equal(geoip.hasCity, true);
    assert.equal(geoip.hasAsn, true);
  });

  // [ip, city, country, region, asn, asnNumber]
  const cases: [string, string | null, string | null, string | null, string | null, string | null][] = [
    ['81.2.69.142', 'London', 'GB', 'ENG', null, null],
    ['2.125.160.216', 'Boxford', 'GB', 'ENG', null, null],
    ['::81.2.69.142', 'London', 'GB', 'ENG', null, null],
    ['89.160.20.112', 'Linköping', 'SE', 'E', 'AS29518 Bredband2 AB', '29518'],
    ['216.160.83.56', 'Milton', 'US', 'WA', 'AS209', '209'], // an AS without organization
    ['1.128.0.1', null, null, null, 'AS1221 Telstra Pty Ltd', '1221'],
    ['1.0.0.1', null, null, null, 'AS15169 Google Inc.', '15169'],
    ['8.8.8.8', null, null, null, null, null],
    ['10.0.0.1', null, null, null, null, null],
    ['not an ip', null, null, null, null, null],
    ['1.2.3.4.5', null, null, null, null, null],
    ['', null, null, null, null, null],
  ];
  for (const [ip, city, country, region, asn, asnNumber] of cases) {
    it(`${JSON.stringify(ip)} → ${city}/${country}/${region}, ${asn}`, () => {
      assert.equal(geoip.city(ip), city);
      assert.equal(geoip.country(ip), country);
      assert.equal(geoip.region(ip), region);
      assert.equal(geoip.asn(ip), asn);
      assert.equal(geoip.asnNumber(ip), asnNumber);
    });
  }

  it('answers correctly when IPs alternate (memo of the last record)', () => {
    for (let i = 0; i < 3; i++) {
      assert.equal(geoip.city('81.2.69.142'), 'London');
      assert.equal(geoip.city('2.125.160.216'), 'Boxford');
      assert.equal(geoip.asn('1.128.0.1'), 'AS1221 Telstra Pty Ltd');
      assert.equal(geoip.asn('1.0.0.1'), 'AS15169 Google Inc.');
    }
  });
});

describe('openGeoIp errors', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'geoip-test-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('only what was given is loaded', async () => {
    const cityOnly = await openGeoIp({ cityPath: CITY });
    assert.equal(cityOnly.hasCity, true);
    assert.equal(cityOnly.hasAsn, false);
    assert.equal(cityOnly.asn('1.128.0.1'), null);
    const none = await openGeoIp({});
    assert.equal(none.hasCity, false);
    assert.equal(none.city('81.2.69.142'), null);
  });

  it('a missing file names the path and the flag', async () => {
    const path = join(dir, 'missing.mmdb');
    await assert.rejects(openGeoIp({ cityPath: path }), (err: Error) => {
      assert.ok(err.message.includes(path) && err.message.includes('--geoip-city'), err.message);
      return true;
    });
    await assert.rejects(openGeoIp({ asnPath: path }), (err: Error) => {
      assert.ok(err.message.includes(path) && err.message.includes('--geoip-asn'), err.message);
      return true;
    });
  });

  it('a corrupt file names the path and the flag', async () => {
    const path = join(dir, 'corrupt.mmdb');
    writeFileSync(path, 'this is not a MaxMind database'.repeat(100));
    await assert.rejects(openGeoIp({ cityPath: path }), (err: Error) => {
      assert.ok(err.message.startsWith(`cannot open GeoIP City database ${path} (--geoip-city)`), err.message);
      return true;
    });
  });

  it('the wrong kind of database is refused', async () => {
    await assert.rejects(openGeoIp({ cityPath: ASN }), {
      message: `${ASN} (--geoip-city) is a GeoLite2-ASN database, not a GeoIP2/GeoLite2 City database`,
    });
    await assert.rejects(openGeoIp({ asnPath: CITY }), /--geoip-asn.*GeoIP2-City database, not a GeoIP2\/GeoLite2 ASN/);
  });
});
