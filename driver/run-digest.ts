/**
 * The run record's transform digest (worker/transform/digest.ts), driver side:
 * computed from the very settings the partition tasks carry, checked on a
 * resume or `--skip-transform` against the recorded one, and checked against
 * what each worker reported in its success manifest before anything is loaded.
 */
import {
  digestDifferences,
  transformDigest,
  UNREAD_GEOIP,
  usedLookups,
  type TransformDigest,
} from '../worker/transform/digest.js';
import { openGeoIp, type GeoIpBuilds } from '../worker/transform/geoip.js';
import type { TableSchema } from '../worker/transform/schema.js';
import type { TransformSettings } from '../worker/transform/setup.js';
import type { SuccessManifest } from '../worker/partition-task.js';
import { UsageError } from './cli/errors.js';
import type { Logger } from './log.js';
import type { RunRecord } from './manifest.js';

/**
 * The digest of a transform with `settings`. The GeoIP databases are opened
 * here to read their builds; one this machine cannot open (a path on the
 * worker nodes only, as with EMR) is recorded as UNREAD_GEOIP + path, and the
 * builds the workers report must then agree with each other (checkManifestDigests).
 */
export async function driverTransformDigest(
  settings: TransformSettings,
  schemas: TableSchema[],
  log: Logger,
): Promise<TransformDigest> {
  const used = usedLookups(schemas, settings.tables);
  const builds: GeoIpBuilds = { city: null, asn: null };
  const read = async (kind: 'city' | 'asn', path: string | undefined): Promise<void> => {
    if (!path) return;
    try {
      const geo = await openGeoIp(kind === 'city' ? { cityPath: path } : { asnPath: path });
      builds[kind] = geo.builds[kind];
    } catch (err) {
      log.info(`${(err as Error).message}; its build is taken from the workers' success manifests`);
      builds[kind] = UNREAD_GEOIP + path;
    }
  };
  if (used.city) await read('city', settings.geoipCity);
  if (used.asn) await read('asn', settings.geoipAsn);
  return transformDigest(settings, schemas, builds);
}

/**
 * Refuses to resume or load a run whose recorded digest differs from `now`:
 * its finished partitions were made with other settings, and finishing or
 * loading them with these would put rows of two transforms in one table.
 *
 * A record written before digests existed is refused as well: whether its
 * partitions match cannot be checked, and a silently mixed load is far more
 * costly (found late, if ever, and undone only by another replay) than
 * transforming the window again under a new runtag.
 */
export function checkRunDigest(record: RunRecord, now: TransformDigest, runtag: string): void {
  if (!record.transform) {
    throw new UsageError(
      `runtag ${runtag} was recorded by an older spade-replay without a transform digest, so its partitions ` +
        `cannot be checked against this config and databases; transform the window again with a new --runtag`,
    );
  }
  const differences = digestDifferences(record.transform, now);
  if (differences.length > 0) {
    throw new UsageError(
      `runtag ${runtag} was transformed with other settings: ${differences.join('; ')}. ` +
        `Resuming or loading it with these would mix rows of two transforms: pass the settings it was ` +
        `made with, or use a new --runtag to transform the window again`,
    );
  }
}

/**
 * Every partition's rows must have been made with the run's digest, as its
 * worker computed it (a node with another GeoIP database, or an older
 * version, is caught here), and all partitions with the same one.
 */
export function checkManifestDigests(
  record: RunRecord & { transform: TransformDigest },
  manifests: Map<string, SuccessManifest>,
  runtag: string,
): void {
  const check = new ManifestDigestCheck(record.transform, runtag);
  for (const p of record.partitions ?? []) {
    const m = manifests.get(p.id);
    if (m && !check.add(p.id, m)) break;
  }
  check.finish();
}

/**
 * checkManifestDigests one success manifest at a time, for the streamed commit:
 * `add` each in plan order (false once enough problems were found to say), then
 * `finish` throws if any partition was made with other settings.
 */
export class ManifestDigestCheck {
  private first: { partition: string; digest: TransformDigest } | null = null;
  private readonly problems: string[] = [];

  constructor(
    private readonly run: TransformDigest,
    private readonly runtag: string,
  ) {}

  add(partition: string, m: SuccessManifest): boolean {
    if (this.problems.length >= 5) return false;
    const d = m.transformDigest;
    if (!d) {
      this.problems.push(
        `partition ${partition}: its success manifest has no transform digest (written by an older worker)`,
      );
    } else {
      const vsRun = digestDifferences(this.run, d);
      if (vsRun.length > 0) this.problems.push(`partition ${partition}: ${vsRun.join('; ')}`);
      else if (this.first === null) this.first = { partition, digest: d };
      else if (this.first.digest.digest !== d.digest) {
        const vsFirst = digestDifferences(this.first.digest, d, [this.first.partition, partition]);
        this.problems.push(`partitions ${this.first.partition} and ${partition}: ${vsFirst.join('; ')}`);
      }
    }
    return this.problems.length < 5;
  }

  finish(): void {
    if (this.problems.length > 0) {
      throw new Error(
        `runtag ${this.runtag}: partitions were transformed with other settings than the run's, nothing was loaded: ` +
          `${this.problems.join('; ')}. Make every worker use the same config and databases, and use a new --runtag`,
      );
    }
  }
}
