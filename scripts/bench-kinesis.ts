/**
 * `npm run bench:kinesis [-- --rows 1000000 --concurrency 4 --files 10 --rounds 1]`: the
 * Kinesis publisher against kinesalite on loopback.
 *
 * - Row files: `--rows` rows of the demo config's `login` table (7 columns,
 *   bigints above 2^53, timestamps, text), gzip TSV as the transform writes
 *   them, in `--files` files under a scratch directory (cached per row count).
 * - The ceiling: a child process that sends PutRecords calls of 500 pre-built
 *   records (built before the clock starts, same size as the publisher's) in a
 *   plain loop, `--concurrency` calls in flight, as many records as rows.
 * - The publisher: a child process running what a replay runs for one table
 *   (KinesisPublisher.publishTable: read the committed files, decode, build the
 *   JSON records, batch, send, checkpoint per file), same concurrency.
 * Each run gets a fresh kinesalite (its in-memory store grows with the records
 * it holds) with a 4-shard stream. Printed: records/s of both, their ratio
 * (target >= 0.8), the publisher's peak RSS (/usr/bin/time -v) and its max RSS
 * per quarter of the run (flat: memory does not grow with the rows published).
 * With `--rounds N` the pair runs N times, in alternating order (ceiling first,
 * then publisher first, ...), so a machine whose load changes over the run
 * does not favour one side; the ratio of the medians is printed too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CreateStreamCommand, PutRecordsCommand, type PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import { createKinesisClient } from '../worker/output/kinesis.js';
import { KinesisPublisher } from '../worker/output/kinesis-publish.js';
import { RecordEncoder } from '../worker/output/kinesis-record.js';
import { encodeRow } from '../worker/output/tsv.js';
import { LocalStore } from '../worker/store/local.js';
import { parseTableConfig, type TableSchema } from '../worker/transform/schema.js';
import { repoRoot } from '../test/helpers/fixtures.js';
import { freePort } from '../test/helpers/ports.js';
import { arg, positiveNumber, say } from './bench/args.js';
import { cleanup, cleanups, onSignal } from './bench/cleanup.js';
import { rssProfile, runMeasured } from './bench/measure.js';

const RUNTAG = 'bench';
const STREAM = 'bench';
const SHARDS = 4;
const CREDENTIALS = { accessKeyId: 'bench', secretAccessKey: 'bench' };

function loginSchema(): TableSchema {
  const path = join(repoRoot(), 'scripts', 'demo', 'tables.json');
  return parseTableConfig(readFileSync(path, 'utf8'), path).find((s) => s.event === 'login')!;
}

/** One row of `login` (time, ip, user_id, login, platform, logged_in, client_time), in the file's text. */
function loginRow(i: number): (string | null)[] {
  const sec = (i * 7) % 86_400;
  const hh = String(Math.floor(sec / 3600)).padStart(2, '0');
  const mm = String(Math.floor(sec / 60) % 60).padStart(2, '0');
  const ss = String(sec % 60).padStart(2, '0');
  return [
    `2023-11-05 ${hh}:${mm}:${ss}`,
    `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    i % 10 === 0 ? `${9007199254740993n + BigInt(i)}` : String(100_000 + i),
    `user_${i}_${'x'.repeat(i % 24)}`,
    ['web', 'ios', 'android', 'xbox'][i % 4]!,
    i % 3 === 0 ? 'false' : 'true',
    i % 5 === 0 ? null : `2023-11-05 ${hh}:${mm}:${ss}.${String(i % 1000).padStart(3, '0')}`,
  ];
}

/** The edge event's uuid of row i (as a uuid sidecar holds it). */
function eventUuid(i: number): string {
  const h = (i * 2654435761) >>> 0;
  return `${h.toString(16).padStart(8, '0')}-0bad-4c0f-8e1d-${String(i).padStart(12, '0')}`;
}

function fileKey(f: number): string {
  return `${RUNTAG}/login/v0/p${String(f).padStart(5, '0')}-bench-00000.tsv.gz`;
}

/** The row files (cached by row and file count), written as the transform writes them. */
function ensureRows(dir: string, rows: number, files: number): void {
  // With the uuid sidecars (a cache from before them lacks them).
  const done = join(dir, 'complete-with-uuids');
  if (existsSync(done)) return;
  rmSync(dir, { recursive: true, force: true });
  const per = Math.ceil(rows / files);
  for (let f = 0; f < files; f++) {
    const parts: string[] = [];
    const uuids: string[] = [];
    for (let i = f * per; i < Math.min(rows, (f + 1) * per); i++) {
      parts.push(encodeRow(loginRow(i)));
      uuids.push(eventUuid(i) + '\n');
    }
    const path = join(dir, ...fileKey(f).split('/'));
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, gzipSync(Buffer.from(parts.join(''), 'utf8'), { level: 1 }));
    writeFileSync(`${path}.uuids.gz`, gzipSync(Buffer.from(uuids.join(''), 'utf8'), { level: 1 }));
  }
  writeFileSync(done, '');
}

/** kinesalite in a child process (the test helper's entry point) with one 4-shard stream. */
async function startKinesalite(): Promise<{ endpoint: string; child: ChildProcess }> {
  const port = await freePort();
  const script = join(repoRoot(), 'dist', 'test', 'helpers', 'kinesalite-main.js');
  const child = spawn(process.execPath, [script, JSON.stringify({ port })], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (s: string) => s.includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`kinesalite exited (${code})`)));
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const client = createKinesisClient({ endpoint, region: 'us-east-1', credentials: CREDENTIALS });
  await client.send(new CreateStreamCommand({ StreamName: STREAM, ShardCount: SHARDS }));
  client.destroy();
  return { endpoint, child };
}

/** Child: PutRecords of 500 pre-built records in a loop, `concurrency` in flight. */
async function childCeiling(endpoint: string, rows: number, concurrency: number): Promise<void> {
  const encoder = new RecordEncoder(loginSchema(), RUNTAG, true);
  const pool: PutRecordsRequestEntry[][] = [];
  for (let b = 0; b < 40; b++) {
    const batch: PutRecordsRequestEntry[] = [];
    for (let i = b * 500; i < (b + 1) * 500; i++) {
      const uuid = eventUuid(i);
      batch.push({ Data: Buffer.from(encoder.encode(loginRow(i), uuid)), PartitionKey: uuid });
    }
    pool.push(batch);
  }
  const client = createKinesisClient({ endpoint, region: 'us-east-1', credentials: CREDENTIALS });
  const calls = Math.ceil(rows / 500);
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let c = next++; c < calls; c = next++) {
        const res = await client.send(new PutRecordsCommand({ StreamName: STREAM, Records: pool[c % pool.length] }));
        if (res.FailedRecordCount) throw new Error(`${res.FailedRecordCount} record(s) failed`);
      }
    }),
  );
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  say(JSON.stringify({ records: calls * 500, secs }));
  client.destroy();
}

/** Child: what a replay does for one table: publish its committed files. */
async function childPublish(
  endpoint: string,
  dir: string,
  rows: number,
  files: number,
  concurrency: number,
): Promise<void> {
  const store = new LocalStore(dir);
  // The checkpoints of an earlier run would make this one skip every file.
  rmSync(join(dir, RUNTAG, '_kinesis'), { recursive: true, force: true });
  const publisher = await KinesisPublisher.open({
    targets: [{ stream: STREAM, tables: null }],
    endpoint,
    region: 'us-east-1',
    credentials: CREDENTIALS,
    concurrency,
  });
  const started = process.hrtime.bigint();
  const [result] = await publisher.publishTable({
    store,
    runtag: RUNTAG,
    replay: true,
    schemas: [loginSchema()],
    table: 'login',
    files: Array.from({ length: files }, (_, f) => ({ key: fileKey(f), uuids: `${fileKey(f)}.uuids.gz` })),
  });
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  publisher.close();
  if (result!.failed.length) throw new Error(`not published: ${JSON.stringify(result!.failed)}`);
  if (result!.published !== rows) throw new Error(`published ${result!.published} records, expected ${rows}`);
  say(JSON.stringify({ records: result!.published, secs, retried: result!.retriedEntries }));
}

async function measure(
  scratch: string,
  name: string,
  childArgs: string[],
): Promise<{ records: number; secs: number; maxRssKb: number; quarters: number[]; retried?: number }> {
  const k = await startKinesalite();
  try {
    const out = join(scratch, `${name}.out`);
    const m = await runMeasured(
      process.execPath,
      [
        join(repoRoot(), 'dist', 'scripts', 'bench-kinesis.js'),
        '--child',
        name,
        '--endpoint',
        k.endpoint,
        ...childArgs,
      ],
      { env: process.env, stdoutFile: out, stderrFile: join(scratch, `${name}.err`), timeFile: join(scratch, 'time') },
    );
    if (m.code !== 0) throw new Error(`${name} failed: ${readFileSync(join(scratch, `${name}.err`), 'utf8')}`);
    const res = JSON.parse(readFileSync(out, 'utf8').trim().split('\n').pop()!) as { records: number; secs: number };
    return { ...res, maxRssKb: m.maxRssKb, quarters: rssProfile(m, 4) };
  } finally {
    k.child.stdin!.end();
    k.child.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  const rows = positiveNumber('rows', 1_000_000);
  const files = positiveNumber('files', 10);
  const concurrency = positiveNumber('concurrency', 4);
  const child = arg('child', '');
  const endpoint = arg('endpoint', '');
  const dir = join(tmpdir(), `spade-bench-kinesis-${rows}-${files}`);
  if (child === 'ceiling') return childCeiling(endpoint, rows, concurrency);
  if (child === 'publish') return childPublish(endpoint, dir, rows, files, concurrency);

  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const scratch = join(tmpdir(), `spade-bench-kinesis-run-${process.pid}`);
  mkdirSync(scratch, { recursive: true });
  cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
  say(`bench:kinesis: ${rows} rows in ${files} files, ${concurrency} batches in flight, ${SHARDS}-shard stream`);
  say(`machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}`);
  ensureRows(dir, rows, files);
  say(`row files: ${dir}`);
  const common = ['--rows', String(rows), '--files', String(files), '--concurrency', String(concurrency)];
  const rounds = positiveNumber('rounds', 1);
  const rate = (r: { records: number; secs: number }): number => r.records / r.secs;
  const mb = (kb: number): string => (kb / 1024).toFixed(0);
  const ceilings: number[] = [];
  const publishers: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? ['ceiling', 'publish'] : ['publish', 'ceiling'];
    for (const name of order) {
      const m = await measure(scratch, name, common);
      const load = loadavg()
        .map((l) => l.toFixed(2))
        .join(' ');
      if (name === 'ceiling') {
        ceilings.push(rate(m));
        say(
          `round ${round}: ceiling (PutRecords of 500 pre-built records): ${rate(m).toFixed(0)} records/s ` +
            `(${m.secs.toFixed(1)} s; peak RSS ${mb(m.maxRssKb)} MB; load average ${load})`,
        );
      } else {
        publishers.push(rate(m));
        say(
          `round ${round}: publisher: ${rate(m).toFixed(0)} records/s (${m.secs.toFixed(1)} s, ${m.records} records); ` +
            `peak RSS ${mb(m.maxRssKb)} MB, max RSS per quarter ${m.quarters.map(mb).join(' / ')} MB; load average ${load}`,
        );
      }
    }
    say(`round ${round}: publisher / ceiling ${(publishers.at(-1)! / ceilings.at(-1)!).toFixed(2)} (target >= 0.8)`);
  }
  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  if (rounds > 1) {
    say(
      `medians: ceiling ${median(ceilings).toFixed(0)}, publisher ${median(publishers).toFixed(0)} records/s: ` +
        `${(median(publishers) / median(ceilings)).toFixed(2)} (target >= 0.8)`,
    );
  }
}

main()
  .catch((err: Error) => {
    process.stderr.write(`bench:kinesis: ${err.message}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
