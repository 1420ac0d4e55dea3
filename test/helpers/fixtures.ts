/**
 * Paths of the shared read-only fixtures. Tests run from dist/test/..., so the
 * directory is found from the repo root (the nearest ancestor holding a
 * package.json), not relative to the test file. SPADE_FIXTURES overrides it.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export function fixturesDir(): string {
  return process.env.SPADE_FIXTURES ? resolve(process.env.SPADE_FIXTURES) : resolve(repoRoot(), '../shared/fixtures');
}

/** Absolute path of a fixture, e.g. `fixturePath('spade/table_config.json')`. */
export function fixturePath(relative: string): string {
  return join(fixturesDir(), relative);
}
