/**
 * Turns the settings of a run (config text, GeoIP files, user-id mapping,
 * selected tables) into what EventProcessor needs. Done once per thread and
 * cached, since tasks of one run share settings.
 */
import { compileSchema, type CompiledTable, type TransformDeps } from './columns.js';
import { digestDifferences, transformDigest, type TransformDigest, type TransformDigestParts } from './digest.js';
import { openGeoIp, type SharedGeoIpFiles } from './geoip.js';
import { UserIdMapper } from './mapping.js';
import { makePayloadFilter } from './prefilter.js';
import type { ProcessorOptions } from './processor.js';
import { parseTableConfig, type TableSchema } from './schema.js';

/** Serialisable settings: the part of a task description that tells how to transform. */
export interface TransformSettings {
  /** The table config's JSON text (loaded by the caller from file, URL or s3://). */
  configText: string;
  /** Where the config came from, for messages. */
  configSource: string;
  geoipCity?: string;
  geoipAsn?: string;
  /** Only these tables are written; other known events are counted as excluded. Absent: all tables. */
  tables?: string[];
  /** Skip lines that cannot hold the selected tables before decoding them (only with `tables`). */
  prefilter?: boolean;
  userIdMapping?: { urlTemplate: string; jsonPath: string; timeoutMs?: number; maxConcurrent?: number };
  /**
   * The digest the run was recorded with (a replay sets it): a machine whose own
   * digest differs (another GeoIP database build, an older version) refuses to
   * transform instead of writing rows that the driver would refuse to load.
   */
  expectDigest?: TransformDigestParts;
  /**
   * Write each row file's uuid sidecar (OutputWriters' `rowUuids`): set by runs
   * that publish to Kinesis, whose records carry the edge event's uuid. Not
   * part of the digest: it changes no row.
   */
  rowUuids?: boolean;
}

export interface PreparedTransform {
  schemas: TableSchema[];
  processorOptions: ProcessorOptions;
  /** Computed from what was actually opened (the GeoIP builds of this machine's files). */
  digest: TransformDigest;
}

/**
 * Prepared transforms by settings, most recently used last. Bounded: a
 * long-lived processor re-reads its config, and every changed config would
 * otherwise stay here for good, with its own GeoIP readers. Two entries cover a
 * reload (tasks of the old config finish while new ones start).
 */
const cache = new Map<string, Promise<PreparedTransform>>();
export const PREPARED_CACHE_SIZE = 2;

/**
 * `shared`: the GeoIP databases already in shared memory (the pool's threads);
 * their ids are part of the cache key, so a database replaced on disk (the pool
 * reads it again) is opened again.
 */
export function prepareTransform(settings: TransformSettings, shared?: SharedGeoIpFiles): Promise<PreparedTransform> {
  const key = JSON.stringify(settings) + (shared ? `|${shared.city?.id ?? ''}|${shared.asn?.id ?? ''}` : '');
  let prepared = cache.get(key);
  if (prepared === undefined) {
    prepared = build(settings, shared);
    // A failed setup must be retried by the next task, not remembered.
    prepared.catch(() => {
      if (cache.get(key) === prepared) cache.delete(key);
    });
  } else {
    cache.delete(key); // re-inserted below as the most recent
  }
  cache.set(key, prepared);
  while (cache.size > PREPARED_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  return prepared;
}

/** Whether a table the settings write has an ip* column (only then are the GeoIP databases opened). */
function usesGeoIp(schemas: readonly TableSchema[], wanted: ReadonlySet<string> | null): boolean {
  const selected = wanted ? schemas.filter((s) => wanted.has(s.event)) : schemas;
  return selected.some((s) => s.columns.some((c) => c.transformer.startsWith('ip')));
}

/** Whether the settings' transform opens GeoIP databases (given, and some table needs them). Throws on a bad config. */
export function needsGeoIp(settings: TransformSettings): boolean {
  if (!settings.geoipCity && !settings.geoipAsn) return false;
  const schemas = parseTableConfig(settings.configText, settings.configSource);
  return usesGeoIp(schemas, settings.tables ? new Set(settings.tables) : null);
}

async function build(settings: TransformSettings, shared: SharedGeoIpFiles | undefined): Promise<PreparedTransform> {
  const schemas = parseTableConfig(settings.configText, settings.configSource);
  const wanted = settings.tables ? new Set(settings.tables) : null;
  if (wanted) {
    const known = new Set(schemas.map((s) => s.event));
    const unknown = [...wanted].filter((t) => !known.has(t));
    if (unknown.length) throw new Error(`table(s) not in config ${settings.configSource}: ${unknown.join(', ')}`);
  }
  const deps: TransformDeps = {};
  if (usesGeoIp(schemas, wanted) && (settings.geoipCity || settings.geoipAsn)) {
    deps.geoip = await openGeoIp({ cityPath: settings.geoipCity, asnPath: settings.geoipAsn }, shared);
  }
  if (settings.userIdMapping) {
    deps.userIds = new UserIdMapper({
      urlTemplate: settings.userIdMapping.urlTemplate,
      jsonPath: settings.userIdMapping.jsonPath,
      timeoutMs: settings.userIdMapping.timeoutMs ?? 5000,
      maxConcurrent: settings.userIdMapping.maxConcurrent ?? 8,
      cacheSize: 100_000,
    });
  }
  const tables = new Map<string, CompiledTable>();
  const otherKnownEvents = new Set<string>();
  for (const schema of schemas) {
    if (wanted && !wanted.has(schema.event)) {
      otherKnownEvents.add(schema.event);
      continue;
    }
    // Several versions of one event may exist; rows go to the highest version's table.
    const existing = tables.get(schema.event);
    if (existing && existing.version > schema.version) continue;
    tables.set(schema.event, compileSchema(schema, deps));
  }
  const processorOptions: ProcessorOptions = { tables, otherKnownEvents };
  if (wanted && settings.prefilter !== false) processorOptions.payloadFilter = makePayloadFilter([...wanted]);
  const digest = transformDigest(settings, schemas, deps.geoip?.builds ?? { city: null, asn: null });
  if (settings.expectDigest) {
    const differences = digestDifferences(settings.expectDigest, digest, ['run', 'this machine']);
    if (differences.length > 0) {
      throw new Error(`this machine would transform with other settings than the run's: ${differences.join('; ')}`);
    }
  }
  return { schemas, processorOptions, digest };
}
