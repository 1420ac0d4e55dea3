/**
 * Start-up salvage of a stdin batch killed after some of its files were
 * uploaded: a row file's uuid sidecar joins the salvage manifest on its row
 * file's entry, never as a row file of its own (it would be loaded by COPY).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { BatchManifest, SpoolRecord } from '../../../worker/process/batch.js';
import { salvageSpool } from '../../../worker/process/salvage-spool.js';
import { successKey } from '../../../worker/partition-task.js';
import { LocalStore } from '../../../worker/store/local.js';

test('a stdin batch’s uploaded row file and its uuid sidecar are committed as one row file entry', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'spade-salvage-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const state = join(root, 'state');
  mkdirSync(join(state, 'spool', 'bdead00003'), { recursive: true });
  const rec: SpoolRecord = {
    batch: 'bdead00003',
    runtag: '20260101',
    mode: 'stdin',
    openedAt: '2026-01-01T10:00:00.000Z',
  };
  writeFileSync(join(state, 'spool', 'bdead00003.json'), JSON.stringify(rec));
  const out = new LocalStore(join(root, 'out'));
  const rows = '20260101/login/v0/bdead00003-00000.tsv.gz';
  await out.put(rows, gzipSync('r1\ta\nr2\tb\n'));
  await out.put(`${rows}.uuids.gz`, gzipSync('u-1\nu-2\n'));
  // A row file whose sidecar was not uploaded before the kill: committed without one.
  await out.put('20260101/video_play/v0/bdead00003-00000.tsv.gz', gzipSync('v1\n'));

  await salvageSpool(state, out, '-', () => {});
  const manifest = JSON.parse(
    (await out.readBytes(successKey('20260101', 'bdead00003'))).toString('utf8'),
  ) as BatchManifest;
  assert.deepEqual(
    manifest.files.map((f) => [f.key, f.kind, f.uuids]),
    [
      [rows, 'rows', `${rows}.uuids.gz`],
      ['20260101/video_play/v0/bdead00003-00000.tsv.gz', 'rows', undefined],
    ],
  );
});
