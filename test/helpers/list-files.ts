/** Every file below a directory, as sorted paths (for tests that read what a run wrote). */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

export function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out.sort();
}
