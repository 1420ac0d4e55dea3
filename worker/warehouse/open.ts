/**
 * Opens a warehouse by URL: postgres://, redshift:// (or a *.redshift.amazonaws.com
 * host), pglite://DIR or a bare directory.
 */
import { redactUrl } from '../redact.js';
import type { Warehouse, WarehouseKind, WarehouseOptions } from './warehouse.js';

/** What kind of warehouse a URL names, and what to open: a connection string or a directory. */
export function parseWarehouseUrl(url: string): { kind: WarehouseKind; target: string } {
  const pglite = /^pglite:(?:\/\/)?(.+)$/i.exec(url);
  if (pglite) return { kind: 'pglite', target: pglite[1] as string };
  if (/^redshift:\/\//i.test(url)) return { kind: 'redshift', target: `postgres://${url.slice('redshift://'.length)}` };
  if (/^postgres(ql)?:\/\//i.test(url)) {
    let host: string;
    try {
      host = new URL(url).hostname.toLowerCase();
    } catch {
      throw new Error(`warehouse URL ${redactUrl(url)} cannot be parsed`);
    }
    const redshift = host.endsWith('.redshift.amazonaws.com') || host.endsWith('.redshift-serverless.amazonaws.com');
    return { kind: redshift ? 'redshift' : 'postgres', target: url };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new Error(
      `unsupported warehouse URL ${redactUrl(url)}: use postgres://, redshift://, pglite://<dir> or a directory`,
    );
  }
  if (url.length === 0) throw new Error('empty warehouse URL');
  return { kind: 'pglite', target: url };
}

/**
 * Opens a warehouse. Each implementation is imported on demand, so PostgreSQL users
 * never load the PGlite WebAssembly and the other way round.
 */
export async function openWarehouse(url: string, opts: WarehouseOptions = {}): Promise<Warehouse> {
  const { kind, target } = parseWarehouseUrl(url);
  switch (kind) {
    case 'postgres': {
      const { PostgresWarehouse } = await import('./postgres.js');
      return PostgresWarehouse.open(target, opts);
    }
    case 'redshift': {
      const { RedshiftWarehouse } = await import('./redshift.js');
      return RedshiftWarehouse.open(target, opts);
    }
    case 'pglite': {
      const { PgliteWarehouse } = await import('./pglite.js');
      return PgliteWarehouse.open(target, opts);
    }
  }
}
