/**
 * `spade transform [INPUT ...] --config FILE --out DIR|s3://bucket/prefix`:
 * transforms local files, s3:// objects or standard input into the output
 * layout of SPEC section 3 and prints the per-outcome counts.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createTransformPool } from '../pool/pool.js';
import { filesPerTask, spreadInputs, urlInputs, type SpreadInput } from '../pool/spread.js';
import { describeDamagedInput, type TaskResult, type TransformTask } from '../pool/thread.js';
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
  /** Where a chunk of an input spread over the threads is cut (bytes); tests make it small. */
  chunkBytes?: number;
}

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
  try {
    // Standard input and a few files are read here and spread over every
    // thread in chunks; many files go one per task (see filesPerTask).
    const inputs: SpreadInput[] =
      opts.inputs.length > 0 ? urlInputs(opts.inputs) : [{ source: 'stdin', open: () => Promise.resolve(stdin) }];
    const results =
      opts.inputs.length > 0 && filesPerTask(opts.inputs.length, pool.threads)
        ? await Promise.all(
            opts.inputs.map((url, i) =>
              pool.run({ settings, input: { kind: 'urls', urls: [url] }, output: output(i) }),
            ),
          )
        : [await spreadInputs(pool, inputs, (i) => ({ settings, output: output(i) }), { chunkBytes: opts.chunkBytes })];
    const summary: TransformSummary = { counts: emptyCounts(), files: [], inputErrors: [], exitCode: 0 };
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
