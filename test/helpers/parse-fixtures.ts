/** Fixtures of the `spade parse` / parse-server tests: the table config, GeoIP test databases and the sample edge line. */
import { readFileSync } from 'node:fs';
import { fixturePath } from './fixtures.js';

/** `spade parse` options over the fixture table config and the GeoIP test databases. */
export const parserOptions = {
  config: fixturePath('spade/table_config.json'),
  geoipCity: fixturePath('geoip/GeoIP2-City-Test.mmdb'),
  geoipAsn: fixturePath('geoip/GeoLite2-ASN-Test.mmdb'),
};

/** The fixture edge line (a `login` event). */
export const sampleLine = readFileSync(fixturePath('spade/processor-sample_logline.txt'), 'utf8').trim();

/** The sample line's payload, still URL-escaped as the edge stores it. */
export const samplePayload = (JSON.parse(sampleLine) as { data: string }).data;
