/**
 * The record published to Kinesis for one committed row (README "Publish to
 * Kinesis"): one JSON object,
 *
 *   {"table","version","runtag","replay","uuid","columns":{OutboundName: value}}
 *
 * Column values are those of the row file, typed by the column's transformer
 * the way the warehouse types them: empty field -> null; int, bigint, float
 * and the integer transformers -> a JSON number written with exactly the
 * file's digits (a bigint such as 9007199254740993 is not rounded, as it would
 * be by a JS number); bool -> true/false; everything else (varchar,
 * timestamps as the warehouse's wall-clock text, GeoIP text) -> a JSON string.
 * The JSON text is built here rather than with JSON.stringify of an object for
 * that reason.
 *
 * `uuid`: the edge event's uuid (an event of a multi-event line gets
 * `<uuid>-<index>`, as everywhere else), read from the row file's uuid
 * sidecar (writers.ts, WrittenFile.uuids); it is also the partition key. A
 * consumer matches a replayed row to the live event by it, and dedupes on
 * `uuid` + `table` (a file re-published after a crash repeats its records
 * with the same uuids).
 */
import type { TableSchema } from '../transform/schema.js';

type JsonKind = 'number' | 'bool' | 'string';

const NUMBER_TRANSFORMERS = new Set([
  'int',
  'bigint',
  'float',
  'ipAsnInteger',
  'userIDWithMapping',
  'stringToIntegerMD5',
]);
/** What JSON accepts as a number; a field that is not one (never written by our transformers) goes out as a string. */
const JSON_NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

function kindOf(transformer: string): JsonKind {
  if (NUMBER_TRANSFORMERS.has(transformer)) return 'number';
  if (transformer === 'bool') return 'bool';
  return 'string';
}

/** Turns rows of one (table, version) file into record JSON text; compiled once per file. */
export class RecordEncoder {
  private readonly head: string;
  private readonly names: string[];
  private readonly kinds: JsonKind[];

  constructor(
    readonly schema: TableSchema,
    runtag: string,
    replay: boolean,
  ) {
    this.head =
      `{"table":${JSON.stringify(schema.event)},"version":${schema.version},` +
      `"runtag":${JSON.stringify(runtag)},"replay":${replay},"uuid":`;
    this.names = schema.columns.map((c) => JSON.stringify(c.outboundName) + ':');
    this.kinds = schema.columns.map((c) => kindOf(c.transformer));
  }

  /** `fields` as decoded by tsv.ts decodeRow; a row with the wrong field count is an error naming both counts. */
  encode(fields: readonly (string | null)[], uuid: string): string {
    const n = this.names.length;
    if (fields.length !== n) {
      throw new Error(`row has ${fields.length} field(s), table ${this.schema.event} v${this.schema.version} has ${n}`);
    }
    // JSON.stringify: an edge uuid is any string the edge accepted.
    let out = this.head + JSON.stringify(uuid) + ',"columns":{';
    for (let i = 0; i < n; i++) {
      if (i > 0) out += ',';
      out += this.names[i]!;
      const v = fields[i]!;
      if (v === null) out += 'null';
      else if (this.kinds[i] === 'number') out += JSON_NUMBER.test(v) ? v : JSON.stringify(v);
      else if (this.kinds[i] === 'bool')
        out += v === 'true' || v === 't' ? 'true' : v === 'false' || v === 'f' ? 'false' : JSON.stringify(v);
      else out += JSON.stringify(v);
    }
    return out + '}}';
  }
}
