/**
 * Redshift MANIFEST files (the list of exact files a COPY loads), written to the
 * output store by the replay (one per table of a run) and by the continuous
 * processor (one per table of a committed batch).
 */

/** Redshift MANIFEST format: exact files, each mandatory, so a missing one fails the COPY. */
export function redshiftManifest(urls: readonly string[]): string {
  return JSON.stringify({ entries: urls.map((url) => ({ url, mandatory: true })) }, null, 1) + '\n';
}

/** The continuous processor's MANIFEST of one table of batch `batch` (runtag = its date `YYYYMMDD`). */
export function batchLoadManifestKey(runtag: string, batch: string, table: string): string {
  return `${runtag}/_load/${batch}/${table}.manifest`;
}
