/**
 * Reads a table config's text from a local file, an http(s) URL or s3://, so
 * the text itself can travel in task descriptions to threads and nodes.
 */
import { readFile } from 'node:fs/promises';
import { readUrl } from '../store/location.js';

export const CONFIG_FETCH_TIMEOUT_MS = 30_000;

export async function readConfigText(location: string): Promise<string> {
  if (/^https?:\/\//i.test(location)) {
    let res: Response;
    try {
      res = await fetch(location, { signal: AbortSignal.timeout(CONFIG_FETCH_TIMEOUT_MS) });
    } catch (err) {
      throw new Error(`cannot fetch table config ${location}: ${(err as Error).message}`, { cause: err });
    }
    if (!res.ok) throw new Error(`cannot fetch table config ${location}: HTTP ${res.status} ${res.statusText}`);
    return res.text();
  }
  try {
    if (location.startsWith('s3://')) return (await readUrl(location)).toString('utf8');
    return await readFile(location.startsWith('file://') ? new URL(location) : location, 'utf8');
  } catch (err) {
    throw new Error(`cannot read table config ${location}: ${(err as Error).message}`, { cause: err });
  }
}
