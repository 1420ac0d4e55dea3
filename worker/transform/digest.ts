/**
 * The transform digest: everything besides the input that decides which rows
 * a transform writes (config content, GeoIP database builds, user-id mapping,
 * the transform's own format version). A replay records it in
 * `<runtag>/_run.json`, and every partition's success manifest carries the one
 * its worker computed from what it actually opened, so that a resume or a
 * `--skip-transform` with other settings, or a node holding another GeoIP
 * database, is refused instead of loading rows of two different transforms.
 * Kept as parts, not only one hash, so that a refusal can say what differs.
 */
import { createHash } from 'node:crypto';
import type { GeoIpBuilds } from './geoip.js';
import type { TableSchema } from './schema.js';
import type { TransformSettings } from './setup.js';

/**
 * Version of what the transform makes of an event. Bump it with any change
 * that makes the same input, config and databases give other rows or other
 * files (a column transformer, time parsing, the TSV encoding, which events go
 * to which table, the output layout), so that a runtag transformed by the
 * older code is neither resumed nor loaded together with rows of the new one.
 * A change that only makes the transform faster keeps it.
 */
export const TRANSFORM_FORMAT_VERSION = 1;

export interface TransformDigestParts {
  /** TRANSFORM_FORMAT_VERSION of the code that transformed. */
  format: number;
  /** `sha256:<hex>` of the config text. */
  config: string;
  /** Build id of the City database (geoIpBuildId); null when no table of the run has an ipCity/ipCountry/ipRegion column. */
  geoipCity: string | null;
  /** Build id of the ASN database; null when no table of the run has an ipAsn/ipAsnInteger column. */
  geoipAsn: string | null;
  /** `sha256:<hex>` of the mapping's URL template and JSON path (hashed: the URL may hold a secret); null when unused. */
  userIdMapping: string | null;
}

export interface TransformDigest extends TransformDigestParts {
  /** `sha256:<hex>` of the parts. */
  digest: string;
}

/**
 * Marks a GeoIP part the replay driver could not read (the database is a path
 * on the worker nodes only, e.g. on EMR): the run record then holds the path,
 * and the builds the workers report in their success manifests must agree.
 */
export const UNREAD_GEOIP = 'unread on the driver: ';

const CITY_TRANSFORMERS = new Set(['ipCity', 'ipCountry', 'ipRegion']);
const ASN_TRANSFORMERS = new Set(['ipAsn', 'ipAsnInteger']);

export function sha256Text(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

/** Which of the databases and the mapping service the run's tables use (rows of other tables are not written). */
export function usedLookups(
  schemas: TableSchema[],
  tables: string[] | undefined,
): { city: boolean; asn: boolean; userIds: boolean } {
  const wanted = tables ? new Set(tables) : null;
  const used = { city: false, asn: false, userIds: false };
  for (const s of schemas) {
    if (wanted && !wanted.has(s.event)) continue;
    for (const c of s.columns) {
      if (CITY_TRANSFORMERS.has(c.transformer)) used.city = true;
      if (ASN_TRANSFORMERS.has(c.transformer)) used.asn = true;
      if (c.transformer === 'userIDWithMapping') used.userIds = true;
    }
  }
  return used;
}

/**
 * The digest of a transform with `settings`, given the builds of the GeoIP
 * databases as opened (or, on the driver, as read or marked UNREAD_GEOIP).
 * Timeouts and concurrency of the mapping service are left out: they change
 * how fast ids are fetched, not which id a login has.
 */
export function transformDigest(
  settings: Pick<TransformSettings, 'configText' | 'tables' | 'userIdMapping'>,
  schemas: TableSchema[],
  builds: GeoIpBuilds,
): TransformDigest {
  const used = usedLookups(schemas, settings.tables);
  const mapping = settings.userIdMapping;
  const parts: TransformDigestParts = {
    format: TRANSFORM_FORMAT_VERSION,
    config: sha256Text(settings.configText),
    geoipCity: used.city ? builds.city : null,
    geoipAsn: used.asn ? builds.asn : null,
    userIdMapping: used.userIds && mapping ? sha256Text(JSON.stringify([mapping.urlTemplate, mapping.jsonPath])) : null,
  };
  return { ...parts, digest: sha256Text(JSON.stringify(partsInOrder(parts))) };
}

function partsInOrder(p: TransformDigestParts): unknown[] {
  return [p.format, p.config, p.geoipCity, p.geoipAsn, p.userIdMapping];
}

const short = (v: string | null): string => (v === null ? 'none' : v.startsWith('sha256:') ? v.slice(0, 19) : v);

/**
 * What differs between the digest a run was recorded with and another one, one
 * phrase per part ("config differs (run: sha256:1a2b..., now: sha256:3c4d...)");
 * empty when they agree. A GeoIP part marked UNREAD_GEOIP on one side only
 * matches any build: the caller checks the workers' builds against each other.
 */
export function digestDifferences(
  run: TransformDigestParts,
  now: TransformDigestParts,
  labels: [string, string] = ['run', 'now'],
): string[] {
  const out: string[] = [];
  const differs = (what: string, a: string | number | null, b: string | number | null): void => {
    if (a === b) return;
    const [la, lb] = labels;
    out.push(
      `${what} differs (${la}: ${short(a === null ? null : String(a))}, ${lb}: ${short(b === null ? null : String(b))})`,
    );
  };
  differs('transform format version', run.format, now.format);
  differs('config', run.config, now.config);
  for (const [what, a, b] of [
    ['GeoIP City database', run.geoipCity, now.geoipCity],
    ['GeoIP ASN database', run.geoipAsn, now.geoipAsn],
  ] as const) {
    if (a !== null && b !== null && a.startsWith(UNREAD_GEOIP) !== b.startsWith(UNREAD_GEOIP)) continue;
    differs(what, a, b);
  }
  differs('user-id mapping (--user-id-url, --user-id-json-path)', run.userIdMapping, now.userIdMapping);
  return out;
}
