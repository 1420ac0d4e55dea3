/**
 * Redshift MANIFEST files (the list of exact files a COPY loads), written to the
 * output store by the replay (one per table of a run) and by the continuous
 * processor (one per table of a committed batch).
 */

// The text of `JSON.stringify({ entries: [{ url, mandatory: true }, ...] }, null, 1)`, built
// a piece at a time so that a writer of large manifests (driver/commit.ts) knows each
// entry's size before it renders the whole.
const MANIFEST_HEAD = '{\n "entries": [\n';
const MANIFEST_TAIL = '\n ]\n}\n';
const EMPTY_MANIFEST = '{\n "entries": []\n}\n';
const ENTRY_SEPARATOR = ',\n';
const manifestEntry = (url: string): string => `  {\n   "url": ${JSON.stringify(url)},\n   "mandatory": true\n  }`;

/** Bytes of a manifest besides its entries and their separators. */
export const MANIFEST_FRAME_BYTES = MANIFEST_HEAD.length + MANIFEST_TAIL.length;

/** Bytes one file adds to a manifest: its entry and a separator. */
export function manifestEntryBytes(url: string): number {
  return manifestEntry(url).length + ENTRY_SEPARATOR.length;
}

/** Redshift MANIFEST format: exact files, each mandatory, so a missing one fails the COPY. */
export function redshiftManifest(urls: readonly string[]): string {
  return urls.length ? MANIFEST_HEAD + urls.map(manifestEntry).join(ENTRY_SEPARATOR) + MANIFEST_TAIL : EMPTY_MANIFEST;
}

/** The continuous processor's MANIFEST of one table of batch `batch` (runtag = its date `YYYYMMDD`). */
export function batchLoadManifestKey(runtag: string, batch: string, table: string): string {
  return `${runtag}/_load/${batch}/${table}.manifest`;
}
