/**
 * The GeoIP databases of a transform pool's tasks, read once into shared memory
 * for all its threads. Each thread used to read its own copy (`maxmind.open`):
 * with a real GeoLite2 City (~70 MB) and ASN (~8 MB) a node's memory grew by
 * ~80 MB per thread. The bytes are a SharedArrayBuffer that travels with each
 * task (posting shares it, it is not copied) and every thread's reader walks it
 * (worker/transform/geoip.ts).
 *
 * A file is read again when its size or modification time changes (a database
 * updated on disk), and only when the task's tables need GeoIP at all. A file
 * that cannot be read here is left to the thread, which reports it as before
 * (an error naming the file and its flag).
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { SharedDatabase, SharedGeoIpFiles } from '../transform/geoip.js';
import { needsGeoIp, type TransformSettings } from '../transform/setup.js';

/** Path -> the bytes last read from it. */
const databases = new Map<string, Promise<SharedDatabase | undefined>>();
/** The last settings' answer of needsGeoIp (tasks of one run share settings). */
let lastNeeds: { configText: string; tables: string; city?: string; asn?: string; needs: boolean } | null = null;

async function readShared(file: FileHandle, path: string, id: string, size: number): Promise<SharedDatabase> {
  const bytes = new SharedArrayBuffer(size);
  const view = new Uint8Array(bytes);
  for (let done = 0; done < size;) {
    const { bytesRead } = await file.read(view, done, size - done, done);
    if (bytesRead === 0) throw new Error(`${path} ended after ${done} of ${size} bytes`);
    done += bytesRead;
  }
  return { id, bytes };
}

/**
 * The bytes of the database at `path`, read once per version of the file;
 * undefined where it cannot be read. Size, time and bytes come from one open
 * file, so a database replaced on disk meanwhile is read whole, old or new.
 */
async function sharedDatabase(path: string): Promise<SharedDatabase | undefined> {
  let file: FileHandle;
  try {
    file = await open(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const info = await file.stat();
    const id = `${path}|${info.size}|${info.mtimeMs}`;
    const known = databases.get(path);
    if (known !== undefined) {
      const current = await known;
      if (current?.id === id) return current;
    }
    const reading = readShared(file, path, id, info.size).catch(() => undefined);
    databases.set(path, reading);
    return await reading;
  } finally {
    await file.close();
  }
}

function tasksNeedGeoIp(settings: TransformSettings): boolean {
  const tables = JSON.stringify(settings.tables ?? null);
  const last = lastNeeds;
  if (
    last !== null &&
    last.configText === settings.configText &&
    last.tables === tables &&
    last.city === settings.geoipCity &&
    last.asn === settings.geoipAsn
  )
    return last.needs;
  let needs: boolean;
  try {
    needs = needsGeoIp(settings);
  } catch {
    needs = false; // a bad config fails in the thread, with its message
  }
  lastNeeds = { configText: settings.configText, tables, city: settings.geoipCity, asn: settings.geoipAsn, needs };
  return needs;
}

/** The shared databases a task with these settings opens; undefined when it opens none. */
export async function sharedGeoIpFiles(settings: TransformSettings): Promise<SharedGeoIpFiles | undefined> {
  if (!tasksNeedGeoIp(settings)) return undefined;
  const [city, asn] = await Promise.all([
    settings.geoipCity ? sharedDatabase(settings.geoipCity) : undefined,
    settings.geoipAsn ? sharedDatabase(settings.geoipAsn) : undefined,
  ]);
  if (!city && !asn) return undefined;
  return { ...(city ? { city } : {}), ...(asn ? { asn } : {}) };
}
