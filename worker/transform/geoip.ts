/**
 * GeoIP lookups for the ip* transformers, from MaxMind `.mmdb` databases (GeoIP2 /
 * GeoLite2 City and ASN). Lookups are synchronous (the whole database is in
 * memory), so the per-event path never awaits. The transform pool reads each
 * database once into shared memory for all its threads (`SharedGeoIpFiles`, see
 * worker/pool/shared-geoip.ts); elsewhere `maxmind.open` reads the file.
 *
 * A lookup parses the IP text and walks the database tree, which costs more than
 * all other columns of an event together; so records are cached per IP text: the
 * last one (the three city columns of a table read the same IP one after the
 * other), then a bounded two-generation map (users send many events from one IP).
 *
 * "Unknown" (no record, or an IP string that does not parse) is `null`; the column
 * transformers turn that into an empty value (ipCity/ipCountry/ipRegion/ipAsn) or a
 * column error (ipAsnInteger), as the Go processor did.
 */
import maxmind, { Reader, type AsnResponse, type CityResponse } from 'maxmind';

export interface GeoIp {
  /** A City database is loaded (ipCity, ipCountry, ipRegion work). */
  readonly hasCity: boolean;
  /** An ASN database is loaded (ipAsn, ipAsnInteger work). */
  readonly hasAsn: boolean;
  /** Build ids of the loaded databases (see geoIpBuildId), null where none is loaded. */
  readonly builds: GeoIpBuilds;
  /** English city name. */
  city(ip: string): string | null;
  /** Country ISO 3166-1 code, e.g. `GB`. */
  country(ip: string): string | null;
  /** ISO code of the first (largest) subdivision, e.g. `ENG`. */
  region(ip: string): string | null;
  /** `AS<number> <organization>` (just `AS<number>` when the organization is unknown). */
  asn(ip: string): string | null;
  /** The AS number as decimal text. */
  asnNumber(ip: string): string | null;
}

export interface GeoIpBuilds {
  city: string | null;
  asn: string | null;
}

/**
 * What identifies a database's content: MaxMind writes its type and build time
 * into every file's metadata (a new release of the same database gets a new
 * build time), so two files with the same id give the same lookups.
 */
export function geoIpBuildId(metadata: { databaseType: string; buildEpoch: Date }): string {
  return `${metadata.databaseType} build ${metadata.buildEpoch.toISOString().replace('.000Z', 'Z')}`;
}

export interface GeoIpPaths {
  /** City database (`--geoip-city`). */
  cityPath?: string;
  /** ASN database (`--geoip-asn`). */
  asnPath?: string;
}

/** A database file's bytes in memory that threads share (a real GeoLite2 City is ~70 MB). */
export interface SharedDatabase {
  /** What the bytes are: `<path>|<size>|<mtime ms>` when read. */
  id: string;
  bytes: SharedArrayBuffer;
}

/** The databases of GeoIpPaths, already read by the caller; a path without one is read here. */
export interface SharedGeoIpFiles {
  city?: SharedDatabase;
  asn?: SharedDatabase;
}

/** Decoded data records kept per reader, as `maxmind.open` keeps them (its default size). */
const DECODER_CACHE_ENTRIES = 10_000;

/** The decoder's record cache (maxmind.open's tiny-lru, approximated: emptied when full). */
function decoderCache(): { get(key: number): unknown; set(key: number, value: unknown): void } {
  const entries = new Map<number, unknown>();
  return {
    get: (key) => entries.get(key),
    set: (key, value) => {
      if (entries.size >= DECODER_CACHE_ENTRIES) entries.clear();
      entries.set(key, value);
    },
  };
}

/** Entries per generation of the per-IP record caches. */
const IP_CACHE_GENERATION = 50_000;

/**
 * IP text → record (null: unknown), for one database. A cheap LRU approximation:
 * hits in the older generation are promoted; when the young generation is full it
 * becomes the old one, so at most 2 × IP_CACHE_GENERATION entries are kept.
 */
class RecordCache<T extends CityResponse | AsnResponse> {
  private lastIp: string | null = null;
  private last: T | null = null;
  private young = new Map<string, T | null>();
  private old = new Map<string, T | null>();

  constructor(private readonly reader: Reader<T> | null) {}

  get(ip: string): T | null {
    if (ip === this.lastIp) return this.last;
    let record = this.young.get(ip);
    if (record === undefined) {
      record = this.old.get(ip);
      if (record === undefined) record = this.lookup(ip);
      if (this.young.size >= IP_CACHE_GENERATION) {
        this.old = this.young;
        this.young = new Map();
      }
      this.young.set(ip, record);
    }
    this.lastIp = ip;
    this.last = record;
    return record;
  }

  private lookup(ip: string): T | null {
    if (this.reader === null) return null;
    try {
      return this.reader.get(ip);
    } catch {
      return null; // not an IP address: unknown, like the Go processor
    }
  }
}

class MaxMindGeoIp implements GeoIp {
  readonly hasCity: boolean;
  readonly hasAsn: boolean;
  readonly builds: GeoIpBuilds;
  private readonly cities: RecordCache<CityResponse>;
  private readonly asns: RecordCache<AsnResponse>;

  constructor(cityReader: Reader<CityResponse> | null, asnReader: Reader<AsnResponse> | null) {
    this.hasCity = cityReader !== null;
    this.hasAsn = asnReader !== null;
    this.builds = {
      city: cityReader ? geoIpBuildId(cityReader.metadata) : null,
      asn: asnReader ? geoIpBuildId(asnReader.metadata) : null,
    };
    this.cities = new RecordCache(cityReader);
    this.asns = new RecordCache(asnReader);
  }

  private cityRecord(ip: string): CityResponse | null {
    return this.cities.get(ip);
  }

  private asnRecord(ip: string): AsnResponse | null {
    return this.asns.get(ip);
  }

  city(ip: string): string | null {
    return this.cityRecord(ip)?.city?.names?.en || null;
  }

  country(ip: string): string | null {
    return this.cityRecord(ip)?.country?.iso_code || null;
  }

  region(ip: string): string | null {
    return this.cityRecord(ip)?.subdivisions?.[0]?.iso_code || null;
  }

  asn(ip: string): string | null {
    const record = this.asnRecord(ip);
    const number = record?.autonomous_system_number;
    if (typeof number !== 'number') return null;
    const org = record!.autonomous_system_organization;
    return org ? `AS${number} ${org}` : `AS${number}`;
  }

  asnNumber(ip: string): string | null {
    const number = this.asnRecord(ip)?.autonomous_system_number;
    return typeof number === 'number' ? String(number) : null;
  }
}

/** A reader of shared bytes, refusing a gzip file as `maxmind.open` does. */
function sharedReader<T extends CityResponse | AsnResponse>(shared: SharedDatabase): Reader<T> {
  const db = Buffer.from(shared.bytes);
  if (db[0] === 0x1f && db[1] === 0x8b) {
    throw new Error('Looks like you are passing in a file in gzip format, please use mmdb database instead.');
  }
  return new Reader<T>(db, { cache: decoderCache() });
}

async function openDatabase<T extends CityResponse | AsnResponse>(
  path: string,
  flag: string,
  kind: string,
  acceptedTypes: RegExp,
  shared: SharedDatabase | undefined,
): Promise<Reader<T>> {
  let reader: Reader<T>;
  try {
    // A view of the shared bytes, not a copy: every thread's reader walks the same memory.
    reader = shared ? sharedReader<T>(shared) : await maxmind.open<T>(path);
  } catch (err) {
    throw new Error(`cannot open GeoIP ${kind} database ${path} (${flag}): ${(err as Error).message}`, { cause: err });
  }
  const type = reader.metadata.databaseType;
  if (!acceptedTypes.test(type)) {
    throw new Error(`${path} (${flag}) is a ${type} database, not a GeoIP2/GeoLite2 ${kind} database`);
  }
  return reader;
}

/**
 * Opens the given databases (from `shared` where it has their bytes); a missing,
 * corrupt or wrong-kind file is an error naming its path and flag.
 */
export async function openGeoIp(paths: GeoIpPaths, shared: SharedGeoIpFiles = {}): Promise<GeoIp> {
  const [city, asn] = await Promise.all([
    paths.cityPath
      ? openDatabase<CityResponse>(paths.cityPath, '--geoip-city', 'City', /City|Enterprise/i, shared.city)
      : null,
    paths.asnPath ? openDatabase<AsnResponse>(paths.asnPath, '--geoip-asn', 'ASN', /ASN|ISP/i, shared.asn) : null,
  ]);
  return new MaxMindGeoIp(city, asn);
}
