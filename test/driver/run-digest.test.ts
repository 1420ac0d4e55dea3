/**
 * The transform digest as the driver records it and as a worker computes it
 * from what it opened: the same for the same settings (real MaxMind test
 * databases), and a refusal that names what differs.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../driver/log.js';
import type { RunRecord } from '../../driver/manifest.js';
import { checkManifestDigests, checkRunDigest, driverTransformDigest } from '../../driver/run-digest.js';
import type { SuccessManifest } from '../../worker/partition-task.js';
import { TRANSFORM_FORMAT_VERSION, UNREAD_GEOIP } from '../../worker/transform/digest.js';
import { parseTableConfig } from '../../worker/transform/schema.js';
import { prepareTransform, type TransformSettings } from '../../worker/transform/setup.js';
import { fixturePath } from '../helpers/fixtures.js';

const configText = JSON.stringify([
  {
    EventName: 'geo',
    Columns: [
      { InboundName: 'time', OutboundName: 'time', Transformer: 'f@timestamp@unix', ColumnCreationOptions: '' },
      { InboundName: 'ip', OutboundName: 'country', Transformer: 'ipCountry', ColumnCreationOptions: '' },
      { InboundName: 'ip', OutboundName: 'asn', Transformer: 'ipAsn', ColumnCreationOptions: '' },
    ],
  },
  {
    EventName: 'plain',
    Columns: [{ InboundName: 'a', OutboundName: 'a', Transformer: 'varchar', ColumnCreationOptions: '(8)' }],
  },
]);
const settings: TransformSettings = {
  configText,
  configSource: 'geo.json',
  geoipCity: fixturePath('geoip/GeoIP2-City-Test.mmdb'),
  geoipAsn: fixturePath('geoip/GeoLite2-ASN-Test.mmdb'),
  tables: ['geo', 'plain'],
};
const schemas = parseTableConfig(configText, 'geo.json');
const log = createLogger({ level: 'error', stream: new PassThrough() });

const record = (transform: RunRecord['transform']): RunRecord => ({
  runtag: 'r1',
  window: { start: 'a', end: 'b' },
  tables: ['geo', 'plain'],
  edge: 'e',
  configSource: 'geo.json',
  partitions: [
    { id: 'p00000', files: [], bytes: 0 },
    { id: 'p00001', files: [], bytes: 0 },
  ],
  createdAt: 'now',
  ...(transform && { transform }),
});

test('the driver records the digest a worker computes from what it opened', async () => {
  const onDriver = await driverTransformDigest(settings, schemas, log);
  const onWorker = (await prepareTransform(settings)).digest;
  assert.deepEqual(onWorker, onDriver);
  assert.equal(onDriver.format, TRANSFORM_FORMAT_VERSION);
  assert.match(onDriver.geoipCity ?? '', /^GeoIP2-City build \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.match(onDriver.geoipAsn ?? '', /^GeoLite2-ASN build /);
  // Only the tables of the run count: without `geo` no database changes any row.
  const plainOnly = await driverTransformDigest({ ...settings, tables: ['plain'] }, schemas, log);
  assert.equal(plainOnly.geoipCity, null);
  assert.equal(plainOnly.geoipAsn, null);
});

test('a different database build or config is refused, naming each difference and a new --runtag', async () => {
  const run = await driverTransformDigest(settings, schemas, log);
  const now = { ...run, geoipCity: 'GeoIP2-City build 2019-07-17T00:00:00Z' };
  assert.throws(
    () => checkRunDigest(record(run), now, 'r1'),
    (err: Error) =>
      err.message.includes(`GeoIP City database differs (run: ${run.geoipCity}, now: GeoIP2-City build 2019-07-17`) &&
      err.message.includes('new --runtag') &&
      !err.message.includes('config differs'),
  );
  const edited = await driverTransformDigest({ ...settings, configText: configText + ' ' }, schemas, log);
  assert.throws(() => checkRunDigest(record(run), edited, 'r1'), /config differs \(run: sha256:[0-9a-f]{12}, now:/);
  assert.throws(() => checkRunDigest(record(undefined), run, 'r1'), /older spade-replay without a transform digest/);
  checkRunDigest(record(run), run, 'r1');
});

test('success manifests: a worker with another database, or none recorded, stops the load', async () => {
  const run = await driverTransformDigest(settings, schemas, log);
  const manifest = (transformDigest: SuccessManifest['transformDigest']): SuccessManifest => ({
    runtag: 'r1',
    partition: 'p',
    attempt: 'a',
    files: [],
    counts: {} as SuccessManifest['counts'],
    inputErrors: [],
    finishedAt: 'now',
    transformDigest,
  });
  const r = record(run) as RunRecord & { transform: NonNullable<RunRecord['transform']> };
  checkManifestDigests(r, new Map([['p00000', manifest(run)]]), 'r1');
  assert.throws(
    () => checkManifestDigests(r, new Map([['p00000', manifest(undefined)]]), 'r1'),
    /partition p00000: its success manifest has no transform digest/,
  );
  // The driver could not read the City database: the workers' builds must agree with each other.
  const unread = { ...r, transform: { ...run, geoipCity: `${UNREAD_GEOIP}/opt/spade/geoip/City.mmdb` } };
  const other = { ...run, geoipCity: 'GeoIP2-City build 2019-07-17T00:00:00Z', digest: 'sha256:other' };
  checkManifestDigests(unread, new Map([['p00000', manifest(run)]]), 'r1');
  assert.throws(
    () =>
      checkManifestDigests(
        unread,
        new Map([
          ['p00000', manifest(run)],
          ['p00001', manifest(other)],
        ]),
        'r1',
      ),
    /partitions p00000 and p00001: GeoIP City database differs \(p00000: GeoIP2-City build .*, p00001: GeoIP2-City build 2019/,
  );
});

test('a machine whose own digest differs from the run it is given refuses to transform', async () => {
  const run = await driverTransformDigest(settings, schemas, log);
  await prepareTransform({ ...settings, expectDigest: run });
  const otherBuild = { ...run, geoipAsn: 'GeoLite2-ASN build 2019-07-17T00:00:00Z' };
  await assert.rejects(
    prepareTransform({ ...settings, expectDigest: otherBuild }),
    /other settings than the run's: GeoIP ASN database differs \(run: GeoLite2-ASN build 2019-07-17T00:00:00Z, this machine: GeoLite2-ASN build /,
  );
  // A database the driver could not read is checked by the driver across manifests, not here.
  await prepareTransform({ ...settings, expectDigest: { ...run, geoipCity: `${UNREAD_GEOIP}/opt/City.mmdb` } });
});
