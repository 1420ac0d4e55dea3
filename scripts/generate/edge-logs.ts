/**
 * Synthetic edge logs shaped like production: JSON edge events in gzip files
 * keyed `YYYYMMDD/<group>/<unix-seconds>.<node>.<8 hex>.log.gz`, payloads with
 * properties for every column of the config (GeoIP-test IPs, big integers,
 * tricky strings), a share of multi-event payloads and of malformed lines.
 * Deterministic for a seed. Used by the demo, the tests and the benchmarks.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { ObjectStore } from '../../worker/store/objectstore.js';
import type { TableSchema } from '../../worker/transform/schema.js';

export interface GenerateOptions {
  schemas: TableSchema[];
  /** Events are spread uniformly over [startSec, endSec) (unix seconds, receive time). */
  startSec: number;
  endSec: number;
  events: number;
  /** Seconds of edge time per file (files are keyed by their write time = end of span). */
  fileSpanSec?: number;
  seed?: number;
  multiEventShare?: number;
  malformedShare?: number;
  /** Keep the (table, receivedAtSec) of every generated event, for tests. */
  keepTruth?: boolean;
  /** Key prefix inside the store (e.g. '' or 'edge'). */
  prefix?: string;
  gzipLevel?: number;
}

export interface GeneratedTruth {
  files: { key: string; bytes: number; lines: number }[];
  /** event name -> receive times (unix seconds) of every event generated, if keepTruth */
  events: Map<string, number[]>;
  lines: number;
  malformedLines: number;
  totalEvents: number;
}

export const GEOIP_TEST_IPS = [
  '81.2.69.142',
  '2.125.160.216',
  '1.128.0.1',
  '1.0.0.1',
  '89.160.20.112',
  '10.0.0.1',
  '216.160.83.56',
];
const WORDS = [
  'alpha',
  'beta',
  'gamma',
  'delta',
  'tab\there',
  'line\nbreak',
  'back\\slash',
  '"quoted"',
  'ünïcödé',
  '日本語',
  '🎮 game',
  '\\N',
  'plain',
];

/**
 * Mulberry32: small, fast, deterministic. The one seeded generator of the
 * project: the tests use it too, so a seed printed by a test reproduces its run.
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BIG = '\u0001big:';
/** BIG as JSON.stringify writes it. */
const BIG_ESCAPED = JSON.stringify(BIG).slice(1, -1);

function propertyValue(transformer: string, width: number | undefined, rnd: () => number, timeSec: number): unknown {
  switch (transformer) {
    case 'int':
      return Math.floor(rnd() * 2_000_000) - 1_000_000;
    case 'bigint':
      // Some ids beyond 2^53 must survive exactly.
      return rnd() < 0.1 ? `${BIG}${9007199254740993n + BigInt(Math.floor(rnd() * 1e6))}` : Math.floor(rnd() * 1e12);
    case 'float':
      return Math.round(rnd() * 1e6) / 1000;
    case 'bool':
      return rnd() < 0.5;
    case 'varchar': {
      const w = WORDS[Math.floor(rnd() * WORDS.length)]!;
      const s = `${w}-${Math.floor(rnd() * 1e6)}`;
      return width !== undefined && Buffer.byteLength(s) > width ? s.slice(0, Math.max(1, Math.floor(width / 4))) : s;
    }
    case 'f@timestamp@unix':
    case 'f@timestamp@unix-utc':
      return timeSec - Math.floor(rnd() * 30);
    case 'ipCity':
    case 'ipCountry':
    case 'ipRegion':
    case 'ipAsn':
    case 'ipAsnInteger':
      return GEOIP_TEST_IPS[Math.floor(rnd() * GEOIP_TEST_IPS.length)];
    default:
      return `v${Math.floor(rnd() * 1000)}`;
  }
}

function payloadJson(event: string, schema: TableSchema | undefined, rnd: () => number, timeSec: number): string {
  const props: Record<string, unknown> = {};
  if (schema) {
    for (const c of schema.columns) {
      if (c.inboundName === 'time') continue; // set from the receive time by the processor
      if (rnd() < 0.02) continue; // an absent property: a skipped column
      props[c.inboundName] = propertyValue(c.transformer, c.varcharWidth, rnd, timeSec);
    }
  }
  props.time = timeSec - Math.floor(rnd() * 5);
  // JSON.stringify writes the marker's control character as the escape `\u0001`.
  const text = JSON.stringify({ event, properties: props });
  return text.includes(BIG_ESCAPED) ? text.replace(/"\\u0001big:(-?\d+)"/g, '$1') : text;
}

function edgeLine(receivedAtSec: number, uuid: string, data: string, ip: string): string {
  return JSON.stringify({
    receivedAt: new Date(receivedAtSec * 1000).toISOString(),
    clientIp: ip,
    uuid,
    data,
    userAgent: 'Mozilla/5.0 (spade-replay generator)',
    recordversion: 3,
    edgeType: 'external',
  });
}

function fileKey(prefix: string, writtenSec: number, n: number): string {
  const d = new Date(writtenSec * 1000);
  const ymd = `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}${String(d.getUTCDate()).padStart(2, '0')}`;
  const hex = createHash('sha1').update(`${writtenSec}-${n}`).digest('hex').slice(0, 8);
  return `${prefix ? prefix + '/' : ''}${ymd}/edge-asg/${writtenSec}.node${n % 4}.${hex}.log.gz`;
}

/** Writes the logs into the store; returns what it wrote. */
export async function generateEdgeLogs(store: ObjectStore, opts: GenerateOptions): Promise<GeneratedTruth> {
  const rnd = prng(opts.seed ?? 1);
  const span = opts.fileSpanSec ?? 600;
  const multi = opts.multiEventShare ?? 0.05;
  const malformed = opts.malformedShare ?? 0.01;
  const truth: GeneratedTruth = { files: [], events: new Map(), lines: 0, malformedLines: 0, totalEvents: 0 };
  const duration = opts.endSec - opts.startSec;
  const fileCount = Math.max(1, Math.ceil(duration / span));
  const perFile = opts.events / fileCount;
  let emitted = 0;
  for (let f = 0; f < fileCount; f++) {
    const fileStart = opts.startSec + f * span;
    const fileEnd = Math.min(opts.endSec, fileStart + span);
    const target = Math.round(perFile * (f + 1)) - emitted;
    const lines: string[] = [];
    let n = 0;
    while (n < target) {
      const t = fileStart + Math.floor(rnd() * (fileEnd - fileStart));
      const uuid = `${t.toString(16)}-${Math.floor(rnd() * 2 ** 32).toString(16)}-${f}-${lines.length}`;
      if (rnd() < malformed) {
        lines.push(
          rnd() < 0.5 ? `{"clientIp":"1.2.3.4","receivedAt":"broken` : edgeLine(t, uuid, 'not*base64!', '1.2.3.4'),
        );
        truth.malformedLines++;
        continue;
      }
      const count = rnd() < multi ? 2 + Math.floor(rnd() * 3) : 1;
      const payloads: string[] = [];
      for (let k = 0; k < count; k++) {
        const schema = opts.schemas[Math.floor(rnd() * opts.schemas.length)];
        const event = schema?.event ?? 'unknown_event';
        payloads.push(payloadJson(event, schema, rnd, t));
        if (opts.keepTruth) {
          const list = truth.events.get(event) ?? [];
          list.push(t);
          truth.events.set(event, list);
        }
      }
      const json = count === 1 ? payloads[0]! : `[${payloads.join(',')}]`;
      lines.push(edgeLine(t, uuid, Buffer.from(json).toString('base64'), GEOIP_TEST_IPS[n % GEOIP_TEST_IPS.length]!));
      n += count;
      truth.totalEvents += count;
    }
    emitted += n;
    truth.lines += lines.length;
    // Batch lines into large chunks before compressing (line-by-line gzip writes are ~30x slower).
    const text = Buffer.from(lines.join('\n') + '\n');
    const gz = createGzip({ level: opts.gzipLevel ?? 6 });
    const chunks: Buffer[] = [];
    for (let i = 0; i < text.length; i += 1 << 20) chunks.push(text.subarray(i, i + (1 << 20)));
    const key = fileKey(opts.prefix ?? '', fileEnd, f);
    const { bytes } = await store.upload(key, Readable.from(chunks).pipe(gz));
    truth.files.push({ key, bytes, lines: lines.length });
  }
  return truth;
}
