/**
 * Reads a table config's text from a local file, an http(s) URL or s3:// (the
 * schema module's reader, given the object store for s3://), so the text
 * itself can travel in task descriptions to threads and nodes.
 */
import { readUrl } from '../store/location.js';
import { readTableConfigText } from './schema.js';

export function readConfigText(location: string): Promise<string> {
  return readTableConfigText(location, { readUrl: (url) => readUrl(url) });
}
