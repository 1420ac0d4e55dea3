/**
 * The table config ("blueprint"): a JSON array of event schemas, validated up
 * front so that a bad config fails at startup with a message naming the source,
 * the event and the column, instead of turning into NULL columns mid-backfill.
 *
 * Checks: JSON array of objects; EventName matching `^[A-Za-z0-9_][A-Za-z0-9_-]{0,126}$`;
 * Version a non-negative integer (default 0); no (EventName, Version) twice;
 * a non-empty Columns array; per column string InboundName / OutboundName /
 * Transformer, a known transformer, OutboundName at most 127 bytes without NUL and
 * unique within the event (case-insensitively: Redshift folds identifiers),
 * ColumnCreationOptions made of an optional `(n)` width (varchar only, 1..65535)
 * and the `sortkey` / `distkey` markers (at most one of each per event),
 * userIDWithMapping with a `login` supporting column.
 *
 * The Go processor silently dropped an event whose schema had an unknown
 * transformer (it became "untracked"). Here that is an error by default; pass
 * `onInvalidEvent` to get the Go behaviour (the event is left out and reported).
 */
import { readFile } from 'node:fs/promises';
import { DEFAULT_VARCHAR_BYTES, isKnownTransformer } from './columns.js';

/** One column as written in the config. */
export interface ColumnConfig {
  InboundName: string;
  OutboundName: string;
  Transformer: string;
  ColumnCreationOptions: string;
  /** Comma-separated property names a mapping transformer also reads. */
  SupportingColumns?: string;
}

/** One event schema as written in the config. */
export interface EventSchemaConfig {
  EventName: string;
  Version?: number;
  Columns: ColumnConfig[];
}

/** A validated column. */
export interface ColumnSchema {
  /** Property read from the event. */
  inboundName: string;
  /** Column name in the table. */
  outboundName: string;
  /** Transformer name as written (e.g. `varchar`, `f@timestamp@unix`). */
  transformer: string;
  /** ColumnCreationOptions as written. */
  options: string;
  /** The `(n)` width of ColumnCreationOptions, if any. */
  declaredWidth?: number;
  /** For varchar only: the byte width (`declaredWidth`, else Redshift's default 256); values are cut to it. */
  varcharWidth?: number;
  sortkey: boolean;
  distkey: boolean;
  /** SupportingColumns, split and trimmed. */
  supporting: string[];
}

/** A validated event schema: one table. */
export interface TableSchema {
  event: string;
  version: number;
  columns: ColumnSchema[];
}

/** A config problem; `problems` lists every one found, each naming source, event and column. */
export class SchemaError extends Error {
  override name = 'SchemaError';
  constructor(
    message: string,
    readonly problems: string[] = [message],
  ) {
    super(message);
  }
}

export interface ParseTableConfigOptions {
  /**
   * Leave invalid events out instead of throwing, reporting each here (the Go
   * processor's behaviour). Errors that concern the whole file still throw.
   */
  onInvalidEvent?: (error: SchemaError) => void;
}

const EVENT_NAME = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,126}$/;
const MAX_IDENTIFIER_BYTES = 127;
const MAX_VARCHAR_BYTES = 65535;
const SHOWN_PROBLEMS = 10;

function quote(s: string): string {
  return JSON.stringify(s);
}

function summarize(problems: string[]): string {
  if (problems.length === 1) return problems[0]!;
  const shown = problems.slice(0, SHOWN_PROBLEMS).join('\n  ');
  const more = problems.length > SHOWN_PROBLEMS ? `\n  ... and ${problems.length - SHOWN_PROBLEMS} more` : '';
  return `${problems.length} problems in the table config:\n  ${shown}${more}`;
}

interface ParsedOptions {
  width: number | null;
  sortkey: boolean;
  distkey: boolean;
}

/** `(32)`, `(32) distkey`, ` sortkey`, `` → width and key markers; a string describing the problem otherwise. */
function parseCreationOptions(text: string): ParsedOptions | string {
  let rest = text.trim();
  let width: number | null = null;
  if (rest.startsWith('(')) {
    const close = rest.indexOf(')');
    if (close < 0) return `ColumnCreationOptions ${quote(text)}: missing ")"`;
    const inner = rest.slice(1, close).trim();
    if (!/^[0-9]+$/.test(inner)) return `ColumnCreationOptions ${quote(text)}: width must be an integer`;
    width = Number(inner);
    if (width < 1 || width > MAX_VARCHAR_BYTES) {
      return `ColumnCreationOptions ${quote(text)}: width must be between 1 and ${MAX_VARCHAR_BYTES}`;
    }
    rest = rest.slice(close + 1);
  }
  let sortkey = false;
  let distkey = false;
  for (const word of rest.split(/\s+/)) {
    if (word === '') continue;
    const lower = word.toLowerCase();
    if (lower === 'sortkey' && !sortkey) sortkey = true;
    else if (lower === 'distkey' && !distkey) distkey = true;
    else {
      return `ColumnCreationOptions ${quote(text)}: unsupported ${quote(word)} (allowed: an optional (n) width, then sortkey and/or distkey)`;
    }
  }
  return { width, sortkey, distkey };
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function parseColumn(raw: unknown, where: string, problems: string[]): ColumnSchema | null {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push(`${where}: must be an object`);
    return null;
  }
  const c = raw as Record<string, unknown>;
  const before = problems.length;
  const text = (field: string, required: boolean): string => {
    const v = c[field];
    // Go's encoding/json read an absent or null optional field as "".
    if ((v === undefined || v === null) && !required) return '';
    if (typeof v !== 'string') {
      problems.push(`${where}: ${field} ${v === undefined ? 'is missing' : 'must be a string'}`);
      return '';
    }
    return v;
  };
  const inbound = text('InboundName', true);
  const outbound = text('OutboundName', true);
  const transformer = text('Transformer', true);
  const options = text('ColumnCreationOptions', false);
  const supportingText = text('SupportingColumns', false);
  if (problems.length > before) return null;

  if (inbound === '') problems.push(`${where}: InboundName is empty`);
  if (outbound === '' || outbound.includes('\0') || utf8Length(outbound) > MAX_IDENTIFIER_BYTES) {
    problems.push(`${where}: OutboundName must be 1 to ${MAX_IDENTIFIER_BYTES} bytes without NUL`);
  }
  if (!isKnownTransformer(transformer)) problems.push(`${where}: unknown transformer ${quote(transformer)}`);
  const parsed = parseCreationOptions(options);
  if (typeof parsed === 'string') problems.push(`${where}: ${parsed}`);
  else if (parsed.width !== null && transformer !== 'varchar') {
    problems.push(`${where}: a width ${quote(options.trim())} is only valid for varchar columns`);
  }
  const supporting = supportingText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (transformer === 'userIDWithMapping' && !supporting.includes('login')) {
    problems.push(`${where}: userIDWithMapping needs SupportingColumns "login"`);
  }
  if (problems.length > before || typeof parsed === 'string') return null;
  const column: ColumnSchema = {
    inboundName: inbound,
    outboundName: outbound,
    transformer,
    options,
    sortkey: parsed.sortkey,
    distkey: parsed.distkey,
    supporting,
  };
  if (parsed.width !== null) column.declaredWidth = parsed.width;
  if (transformer === 'varchar') column.varcharWidth = parsed.width ?? DEFAULT_VARCHAR_BYTES;
  return column;
}

function parseEvent(raw: unknown, index: number, source: string, problems: string[]): TableSchema | null {
  const entry = `${source}: event #${index + 1}`;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push(`${entry}: must be an object with EventName and Columns`);
    return null;
  }
  const e = raw as Record<string, unknown>;
  const nameValue = e.EventName;
  let where = entry;
  if (typeof nameValue !== 'string') {
    problems.push(`${entry}: EventName ${nameValue === undefined ? 'is missing' : 'must be a string'}`);
  } else {
    where = `${source}: event ${quote(nameValue)}`;
    if (!EVENT_NAME.test(nameValue)) {
      problems.push(`${where}: EventName must match ${EVENT_NAME.source}`);
    }
  }
  let version = 0;
  if (e.Version !== undefined && e.Version !== null) {
    if (typeof e.Version !== 'number' || !Number.isSafeInteger(e.Version) || e.Version < 0) {
      problems.push(`${where}: Version must be a non-negative integer`);
    } else {
      version = e.Version;
    }
  }
  if (!Array.isArray(e.Columns) || e.Columns.length === 0) {
    problems.push(`${where}: Columns must be a non-empty array`);
    return null;
  }
  const columns: ColumnSchema[] = [];
  const byName = new Map<string, number>();
  let sortkeys = 0;
  let distkeys = 0;
  e.Columns.forEach((rawColumn: unknown, j: number) => {
    const out =
      rawColumn !== null && typeof rawColumn === 'object'
        ? (rawColumn as Record<string, unknown>).OutboundName
        : undefined;
    const colWhere = `${where} column ${typeof out === 'string' ? quote(out) + ' ' : ''}(#${j + 1})`;
    const column = parseColumn(rawColumn, colWhere, problems);
    if (column === null) return;
    const key = column.outboundName.toLowerCase();
    const first = byName.get(key);
    if (first !== undefined) {
      problems.push(`${colWhere}: duplicate OutboundName (also column #${first + 1})`);
      return;
    }
    byName.set(key, j);
    if (column.sortkey) sortkeys++;
    if (column.distkey) distkeys++;
    columns.push(column);
  });
  if (sortkeys > 1) problems.push(`${where}: more than one sortkey column`);
  if (distkeys > 1) problems.push(`${where}: more than one distkey column`);
  if (typeof nameValue !== 'string') return null;
  return { event: nameValue, version, columns };
}

/** Validates a table config's JSON text. `source` (file, URL) is named in every message. */
export function parseTableConfig(text: string, source: string, opts: ParseTableConfigOptions = {}): TableSchema[] {
  let data: unknown;
  try {
    data = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    throw new SchemaError(`${source}: table config is not valid JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(data)) {
    throw new SchemaError(`${source}: table config must be a JSON array of event schemas`);
  }
  const tables: TableSchema[] = [];
  const problems: string[] = [];
  const seen = new Map<string, number>();
  data.forEach((raw: unknown, index: number) => {
    const eventProblems: string[] = [];
    const table = parseEvent(raw, index, source, eventProblems);
    if (table !== null && eventProblems.length === 0) {
      const key = `${table.event}\0${table.version}`;
      const first = seen.get(key);
      if (first !== undefined) {
        eventProblems.push(
          `${source}: event ${quote(table.event)} version ${table.version} is defined twice (entries #${first + 1} and #${index + 1})`,
        );
      } else {
        seen.set(key, index);
      }
    }
    if (eventProblems.length === 0 && table !== null) {
      tables.push(table);
    } else if (opts.onInvalidEvent) {
      opts.onInvalidEvent(new SchemaError(summarize(eventProblems), eventProblems));
    } else {
      problems.push(...eventProblems);
    }
  });
  if (problems.length > 0) throw new SchemaError(summarize(problems), problems);
  return tables;
}

export interface LoadTableConfigOptions extends ParseTableConfigOptions {
  /** Reads an `s3://` URL (the object store's reader); required for s3:// locations. */
  readUrl?: (url: string) => Promise<Buffer>;
  /** HTTP(S) timeout. Default 30 s. */
  timeoutMs?: number;
}

/** Reads and validates a table config from a local path, `file://`, `http(s)://` or `s3://` URL. */
export async function loadTableConfig(location: string, opts: LoadTableConfigOptions = {}): Promise<TableSchema[]> {
  return parseTableConfig(await readTableConfigText(location, opts), location, opts);
}

/**
 * The text of a table config (not yet validated), so it can travel in task
 * descriptions to threads and nodes: local path, `file://`, `http(s)://`, `s3://`.
 */
export async function readTableConfigText(
  location: string,
  opts: Pick<LoadTableConfigOptions, 'readUrl' | 'timeoutMs'> = {},
): Promise<string> {
  let text: string;
  if (/^https?:\/\//i.test(location)) {
    let res: Response;
    try {
      res = await fetch(location, { signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000) });
    } catch (err) {
      throw new Error(`cannot fetch table config ${location}: ${(err as Error).message}`, { cause: err });
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`cannot fetch table config ${location}: HTTP ${res.status} ${res.statusText}`);
    }
    try {
      text = await res.text();
    } catch (err) {
      throw new Error(`cannot fetch table config ${location}: ${(err as Error).message}`, { cause: err });
    }
  } else if (location.startsWith('s3://')) {
    if (!opts.readUrl) throw new Error(`cannot read table config ${location}: no object store reader for s3:// given`);
    try {
      text = (await opts.readUrl(location)).toString('utf8');
    } catch (err) {
      throw new Error(`cannot read table config ${location}: ${(err as Error).message}`, { cause: err });
    }
  } else {
    try {
      text = await readFile(location.startsWith('file://') ? new URL(location) : location, 'utf8');
    } catch (err) {
      throw new Error(`cannot read table config ${location}: ${(err as Error).message}`, { cause: err });
    }
  }
  return text;
}

/** The highest version of each event: where new rows go. */
export function latestVersions(tables: TableSchema[]): Map<string, TableSchema> {
  const latest = new Map<string, TableSchema>();
  for (const t of tables) {
    const current = latest.get(t.event);
    if (current === undefined || t.version > current.version) latest.set(t.event, t);
  }
  return latest;
}
