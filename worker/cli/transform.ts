/**
 * `spade transform [INPUT ...] --config FILE --out DIR|s3://bucket/prefix`:
 * transforms local files, s3:// objects or standard input into the output
 * layout of SPEC section 3 and prints the per-outcome counts.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { decodedChunks } from '../input/lines.js';
import { createTransformPool, type TransformPool } from '../pool/pool.js';
import { describeDamagedInput, type DamagedInput, type TaskResult, type TransformTask } from '../pool/thread.js';
import type { WrittenFile } from '../output/writers.js';
import {
  checkLineAccounting,
  emptyCounts,
  formatCounts,
  mergeCounts,
  type OutcomeCounts,
} from '../transform/outcomes.js';
import { readConfigText } from '../transform/config-source.js';
import { parseTableConfig } from '../transform/schema.js';
import type { TransformSettings } from '../transform/setup.js';
import { redactUrl } from '../redact.js';

export interface TransformCommandOptions {
  inputs: string[];
  config: string;
  out: string;
  threads: number;
  geoipCity?: string;
  geoipAsn?: string;
  rotateMb?: number;
  tables?: string[];
  userIdMapping?: TransformSettings['userIdMapping'];
  /** Exit 0 even when inputs were damaged (they are still listed). */
  acceptDamagedInput?: boolean;
  /** Where a chunk of stdin is cut (bytes); tests make it small. */
  chunkBytes?: number;
}

/** Matches the line reader's default limit (worker/input/lines.ts). */
const MAX_LINE_BYTES = 64 * 1024 * 1024;

export interface TransformSummary {
  counts: OutcomeCounts;
  files: WrittenFile[];
  inputErrors: TaskResult['inputErrors'];
  /** 1 when inputs were damaged and not accepted (--accept-damaged-input). */
  exitCode: number;
}

export async function transformCommand(
  opts: TransformCommandOptions,
  stdin: Readable = process.stdin,
  log: (line: string) => void = (l) => process.stderr.write(l + '\n'),
): Promise<TransformSummary> {
  const configText = await readConfigText(opts.config);
  parseTableConfig(configText, opts.config); // validate up front, before any thread starts
  const settings: TransformSettings = {
    configText,
    configSource: redactUrl(opts.config),
    geoipCity: opts.geoipCity,
    geoipAsn: opts.geoipAsn,
    tables: opts.tables,
    userIdMapping: opts.userIdMapping,
  };
  const runId = `${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}-${randomBytes(3).toString('hex')}`;
  const output = (i: number): TransformTask['output'] => ({
    location: opts.out,
    prefix: '',
    fileTag: `${runId}-${String(i).padStart(5, '0')}`,
    rotateBytes: opts.rotateMb ? opts.rotateMb * 1024 * 1024 : undefined,
  });
  const pool = createTransformPool(opts.threads);
  const started = Date.now();
  const stdinDamage: DamagedInput[] = [];
  try {
    const results =
      opts.inputs.length > 0
        ? await Promise.all(
            opts.inputs.map((url, i) =>
              pool.run({ settings, input: { kind: 'urls', urls: [url] }, output: output(i) }),
            ),
          )
        : await transformStdin(pool, stdin, settings, output, opts.chunkBytes ?? 16 * 1024 * 1024, stdinDamage);
    const summary: TransformSummary = { counts: emptyCounts(), files: [], inputErrors: [...stdinDamage], exitCode: 0 };
    for (const r of results) {
      mergeCounts(summary.counts, r.counts);
      summary.files.push(...r.files);
      summary.inputErrors.push(...r.inputErrors);
    }
    const secs = (Date.now() - started) / 1000;
    const mismatch = checkLineAccounting(summary.counts);
    if (mismatch) log(`error: ${mismatch}`);
    log(
      `transformed ${summary.counts.lines} lines (${(summary.counts.inputBytes / 1e6).toFixed(1)} MB) in ${secs.toFixed(1)} s ` +
        `into ${summary.files.length} files under ${opts.out}`,
    );
    log(formatCounts(summary.counts));
    if (summary.inputErrors.length > 0) {
      log(`${summary.inputErrors.length} damaged input(s); their complete lines before the damage were transformed:`);
      for (const e of summary.inputErrors) log(`  ${describeDamagedInput(e)}`);
      if (!opts.acceptDamagedInput) {
        log('error: damaged input (fix it, or pass --accept-damaged-input to accept what could be read)');
        summary.exitCode = 1;
      }
    }
    return summary;
  } finally {
    await pool.close();
  }
}

/**
 * Cuts standard input (gzip or plain) into chunks at line ends and hands each
 * to a thread; at most two chunks per thread are in flight, so memory stays
 * flat however long the input is. Damage of a gzip stdin is added to `damaged`.
 */
async function transformStdin(
  pool: TransformPool,
  stdin: Readable,
  settings: TransformSettings,
  output: (i: number) => TransformTask['output'],
  chunkBytes: number,
  damaged: DamagedInput[],
): Promise<TaskResult[]> {
  const results: TaskResult[] = [];
  const inFlight = new Set<Promise<void>>();
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let lineNo = 1;
  let index = 0;
  let failure: unknown = null;

  const submit = async (buf: Buffer): Promise<void> => {
    let lines = 0;
    for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) lines++;
    const data = new ArrayBuffer(buf.length);
    new Uint8Array(data).set(buf);
    const task: TransformTask = {
      settings,
      input: { kind: 'chunk', data, source: 'stdin', firstLineNo: lineNo },
      output: output(index++),
    };
    lineNo += lines;
    const p = pool.run(task).then(
      (r) => void results.push(r),
      (err: unknown) => void (failure ??= err),
    );
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    while (inFlight.size >= pool.threads * 2) await Promise.race(inFlight);
  };

  let inputError: string | null = null;
  let bytesRead = 0;
  let linesRead = 0;
  try {
    for await (const piece of decodedChunks(stdin)) {
      if (failure) break;
      bytesRead += piece.length;
      for (let i = piece.indexOf(10); i !== -1; i = piece.indexOf(10, i + 1)) linesRead++;
      pending.push(piece);
      pendingBytes += piece.length;
      if (pendingBytes < chunkBytes) continue;
      const joined = Buffer.concat(pending);
      // One line longer than a chunk: keep reading until it ends, up to the
      // thread's line limit; past it the piece goes as is and is quarantined there.
      let cut = joined.lastIndexOf(10);
      if (cut === -1 && joined.length < MAX_LINE_BYTES) continue;
      if (cut === -1) cut = joined.length - 1;
      await submit(joined.subarray(0, cut + 1));
      const rest = joined.subarray(cut + 1);
      pending = rest.length ? [Buffer.from(rest)] : [];
      pendingBytes = rest.length;
    }
  } catch (err) {
    // Truncated or corrupt gzip on stdin: what was read is still transformed.
    inputError = (err as Error).message;
  }
  // The torn last line counts as read (its thread quarantines it).
  if (pendingBytes > 0) linesRead += pending[pending.length - 1]!.at(-1) === 10 ? 0 : 1;
  if (pendingBytes > 0 && !failure) await submit(Buffer.concat(pending));
  await Promise.all(inFlight);
  if (failure) throw failure;
  if (inputError) damaged.push({ source: 'stdin', error: inputError, bytes: bytesRead, lines: linesRead });
  return results;
}
