/**
 * Start-up salvage of what a hard kill left in the spool: the gzip files of
 * batches that never committed, possibly torn mid-write. `salvageGzip` keeps
 * their complete lines.
 *
 * What happens to them depends on whether the input can be read again:
 * - file inputs (mode 'files'): the batch's inputs are not committed, so they
 *   are processed again and their rows will be written by a later batch.
 *   Loading the salvaged rows too would duplicate them; they are uploaded under
 *   `_salvaged/<batch-id>/...` for inspection only, named by no success manifest.
 * - stdin (mode 'stdin'): the lines read are gone, so the salvaged files are the
 *   only copy. They are uploaded under their normal keys and committed with a
 *   success manifest (`salvaged: true`) together with the batch's files that
 *   were already uploaded before the kill (found by listing the runtag).
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UUIDS_SUFFIX, type WrittenFile } from '../output/writers.js';
import { salvageGzip } from '../output/salvage.js';
import { successKey } from '../partition-task.js';
import { byKey, type ObjectStore } from '../store/objectstore.js';
import { emptyCounts } from '../transform/outcomes.js';
import { MANIFEST_KIND, spoolRoot, type BatchManifest, type SpoolRecord } from './batch.js';

export interface SalvageReport {
  batch: string;
  mode: SpoolRecord['mode'];
  files: { spoolFile: string; key: string; lines: number; complete: boolean; damage?: string }[];
  manifestKey?: string;
}

interface ParsedSpoolName {
  key: string;
  meta: Pick<WrittenFile, 'kind' | 'event' | 'version'>;
}

/**
 * The output key a spool file was for. OutputWriters names spool files
 * `<12 hex>-<key with [^A-Za-z0-9._-] as '_', last 100 chars>`; keys are
 * `<runtag>/<event>/v<n>/<tag>-<seq>.tsv.gz`, `<runtag>/_nontracked/...json.gz`
 * or `<runtag>/_quarantine/...json.gz`, where the tag is the batch id (files
 * written on the main thread) or `<batch>-t<n>` (a pool task's, see
 * Batch.taskTag). Null when the name was cut too short to tell.
 */
export function parseSpoolName(name: string, rec: SpoolRecord): ParsedSpoolName | null {
  const m = /^[0-9a-f]{12}-(.*)$/.exec(name);
  if (!m) return null;
  const rest = m[1] as string;
  const tail = new RegExp(`_(${rec.batch}(?:-t\\d+)?)-(\\d{5})(\\.tsv\\.gz|\\.json\\.gz)$`).exec(rest);
  if (!tail) return null;
  const head = rest.slice(0, tail.index);
  if (!head.startsWith(`${rec.runtag}_`)) return null;
  const middle = head.slice(rec.runtag.length + 1);
  const file = `${tail[1]}-${tail[2]}${tail[3]}`;
  if (middle === '_nontracked' || middle === '_quarantine') {
    return {
      key: `${rec.runtag}/${middle}/${file}`,
      meta: { kind: middle === '_nontracked' ? 'nontracked' : 'quarantine' },
    };
  }
  const ev = /^([A-Za-z0-9_][A-Za-z0-9_-]*)_v(\d+)$/.exec(middle);
  if (!ev || tail[3] !== '.tsv.gz') return null;
  const event = ev[1] as string;
  const version = Number(ev[2]);
  return { key: `${rec.runtag}/${event}/v${version}/${file}`, meta: { kind: 'rows', event, version } };
}

/** Salvages every uncommitted batch left in `<stateDir>/spool`, then removes it. */
export async function salvageSpool(
  stateDir: string,
  store: ObjectStore,
  inputLocation: string,
  log: (msg: string) => void,
): Promise<SalvageReport[]> {
  const root = spoolRoot(stateDir);
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const reports: SalvageReport[] = [];
  for (const name of entries.filter((e) => e.endsWith('.json')).sort()) {
    const recordPath = join(root, name);
    let rec: SpoolRecord;
    try {
      rec = JSON.parse(await readFile(recordPath, 'utf8')) as SpoolRecord;
    } catch (err) {
      log(`salvage: unreadable spool record ${recordPath} (${(err as Error).message}); its files are left in place`);
      continue;
    }
    reports.push(await salvageBatch(join(root, rec.batch), rec, store, inputLocation, log));
    await rm(join(root, rec.batch), { recursive: true, force: true });
    await rm(recordPath, { force: true });
  }
  return reports;
}

async function salvageBatch(
  dir: string,
  rec: SpoolRecord,
  store: ObjectStore,
  inputLocation: string,
  log: (msg: string) => void,
): Promise<SalvageReport> {
  const report: SalvageReport = { batch: rec.batch, mode: rec.mode, files: [] };
  let names: string[] = [];
  try {
    names = (await readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const committed: WrittenFile[] = [];
  const salvagedKeys = new Set<string>();
  for (const name of names) {
    const path = join(dir, name);
    const parsed = parseSpoolName(name, rec);
    const format = name.endsWith('.json.gz') ? 'jsonl' : 'tsv';
    let res;
    try {
      res = await salvageGzip(await readFile(path), { format });
    } catch (err) {
      log(`salvage: ${path} cannot be salvaged: ${(err as Error).message}`);
      continue;
    }
    if (res.lines === 0) continue;
    const forLoading = rec.mode === 'stdin' && parsed !== null;
    const key = forLoading ? parsed.key : `_salvaged/${rec.batch}/${parsed ? parsed.key.replace(/\//g, '__') : name}`;
    await store.put(key, res.data);
    salvagedKeys.add(key);
    const entry: SalvageReport['files'][number] = { spoolFile: path, key, lines: res.lines, complete: res.complete };
    if (res.damage !== undefined) entry.damage = res.damage;
    report.files.push(entry);
    if (forLoading) {
      committed.push({ key, ...parsed.meta, rows: res.lines, bytes: res.data.length, uncompressedBytes: 0 });
    }
    log(
      `salvage: ${rec.mode} batch ${rec.batch}: kept ${res.lines} lines of ${name}${res.damage ? ` (${res.damage})` : ''} -> ${store.urlOf(key)}`,
    );
  }
  if (rec.mode === 'stdin') {
    // Files of the batch uploaded before the kill are complete; they join the salvage's manifest.
    const sidecars = new Set<string>();
    const uploaded: WrittenFile[] = [];
    for await (const obj of store.list(`${rec.runtag}/`)) {
      if (!obj.key.includes(`/${rec.batch}-`) || salvagedKeys.has(obj.key) || obj.key.includes('/_success/')) continue;
      // A uuid sidecar is never a row file; it is named on its row file's entry when both were uploaded.
      if (obj.key.endsWith(UUIDS_SUFFIX)) {
        sidecars.add(obj.key);
        continue;
      }
      const parsed = parseKey(obj.key, rec);
      if (parsed) uploaded.push({ key: obj.key, ...parsed, rows: 0, bytes: obj.size, uncompressedBytes: 0 });
    }
    for (const f of uploaded) {
      if (f.kind === 'rows' && sidecars.has(f.key + UUIDS_SUFFIX)) f.uuids = f.key + UUIDS_SUFFIX;
      committed.push(f);
    }
    if (committed.length > 0) {
      const manifest: BatchManifest = {
        runtag: rec.runtag,
        partition: rec.batch,
        attempt: rec.batch,
        files: committed.sort(byKey),
        counts: emptyCounts(),
        inputErrors: [],
        finishedAt: new Date().toISOString(),
        kind: MANIFEST_KIND,
        input: inputLocation,
        inputs: [],
        openedAt: rec.openedAt,
        salvaged: true,
      };
      report.manifestKey = successKey(rec.runtag, rec.batch);
      await store.put(report.manifestKey, JSON.stringify(manifest, null, 1) + '\n');
      log(`salvage: committed stdin batch ${rec.batch} (${committed.length} files) as ${report.manifestKey}`);
    }
  }
  return report;
}

function parseKey(key: string, rec: SpoolRecord): Pick<WrittenFile, 'kind' | 'event' | 'version'> | null {
  const parts = key.split('/');
  if (parts[1] === '_nontracked') return { kind: 'nontracked' };
  if (parts[1] === '_quarantine') return { kind: 'quarantine' };
  const v = /^v(\d+)$/.exec(parts[2] ?? '');
  if (parts.length === 4 && parts[0] === rec.runtag && v)
    return { kind: 'rows', event: parts[1], version: Number(v[1]) };
  return null;
}
