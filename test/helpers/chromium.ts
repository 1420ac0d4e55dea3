/**
 * Debian's headless Chromium for page tests, without an npm dependency: the
 * rendered DOM from `--dump-dom` (after `--virtual-time-budget` lets the page
 * run) and a PNG from `--screenshot`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

export const CHROMIUM = '/usr/bin/chromium';

/** Skips without Chromium on a workstation; under CI=true a missing browser is a failure. */
export function requireChromium(t: TestContext): boolean {
  if (existsSync(CHROMIUM)) return true;
  const message = `${CHROMIUM} not found: install Debian's chromium package (apt-get install chromium)`;
  if (process.env.CI === 'true') assert.fail(message);
  t.skip(message);
  return false;
}

/** Runs headless Chromium on `url` with `extra` flags in a throwaway profile; its stdout. */
async function runChromium(url: string, extra: string[]): Promise<string> {
  const profile = await mkdtemp(join(tmpdir(), 'spade-chromium-'));
  try {
    return await new Promise<string>((resolve, reject) => {
      execFile(
        CHROMIUM,
        [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--disable-dev-shm-usage',
          `--user-data-dir=${profile}`,
          ...extra,
          url,
        ],
        { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
        (err, stdout, stderr) => {
          if (err) reject(new Error(`chromium failed: ${err.message}\n${stderr.slice(-2000)}`));
          else resolve(stdout);
        },
      );
    });
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

/** The DOM of `url` after the page ran (its fetches complete within the virtual time budget). */
export function dumpDom(url: string): Promise<string> {
  return runChromium(url, ['--virtual-time-budget=5000', '--dump-dom']);
}

/** A PNG of `url` as a window of `width` x `height` pixels shows it. */
export async function screenshot(url: string, file: string, width = 1000, height = 900): Promise<void> {
  await runChromium(url, [`--window-size=${width},${height}`, '--hide-scrollbars', `--screenshot=${file}`]);
}
