/**
 * Health and metrics of the continuous processor over HTTP on loopback:
 * `GET /healthz` (liveness: 200 while the main loop has run recently, else 503)
 * and `GET /metrics` (Prometheus text format 0.0.4). With a token, both need
 * `Authorization: Bearer <token>`.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EVENT_OUTCOMES, type OutcomeCounts } from '../transform/outcomes.js';

export class ProcessMetrics {
  /** Committed event outcomes per table. */
  readonly events = new Map<string, Map<string, number>>();
  readonly lines = { decoded: 0, malformed: 0, filtered: 0 };
  inputFilesCommitted = 0;
  readonly filesUploaded = { rows: 0, nontracked: 0, quarantine: 0 };
  batchesCommitted = 0;
  batchesAborted = 0;
  /** Committed input files that were truncated or corrupt (their complete lines were kept). */
  damagedInputs = 0;
  /** Pool tasks that failed to read an input (their inputs are read again). */
  taskFailures = 0;
  globsDuplicate = 0;
  readonly reloads = { ok: 0, rejected: 0, unchanged: 0 };
  batchesLoaded = 0;
  loadFailures = 0;
  /** Newest input seen (listed or read), and newest input committed: write times in unix seconds. */
  newestSeenSec = 0;
  newestCommittedSec = 0;
  /** Oldest input seen since start: before the first commit, the lag is measured from it. */
  oldestSeenSec = 0;
  pendingFiles = 0;
  lastLoopMs = Date.now();
  /** Loading: when the oldest batch waiting for its load was queued (ms), null when none waits. */
  loadWaitingSince: () => number | null = () => null;
  loadPending: () => number = () => 0;

  /** Seconds the oldest committed batch has waited for its load (0 when none waits): grows while loads fail. */
  loadLagSeconds(now = Date.now()): number {
    const since = this.loadWaitingSince();
    return since === null ? 0 : Math.max(0, Math.round((now - since) / 1000));
  }

  addCounts(c: OutcomeCounts): void {
    this.lines.decoded += c.decodedLines;
    this.lines.malformed += c.malformedLines;
    this.lines.filtered += c.filteredLines;
    for (const [event, outcomes] of Object.entries(c.events)) {
      let m = this.events.get(event);
      if (!m) this.events.set(event, (m = new Map()));
      for (const o of EVENT_OUTCOMES) {
        const n = outcomes[o];
        if (n) m.set(o, (m.get(o) ?? 0) + n);
      }
    }
  }

  /** Seconds the committed output is behind the newest input seen (0 when caught up). */
  lagSeconds(): number {
    if (this.newestSeenSec === 0) return 0;
    // Nothing committed yet: everything seen is behind, back to the oldest input.
    const base = this.newestCommittedSec > 0 ? this.newestCommittedSec : this.oldestSeenSec;
    return Math.max(0, this.newestSeenSec - base);
  }

  render(): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, samples: [string, number][]): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of samples) out.push(`${name}${labels} ${v}`);
    };
    const events: [string, number][] = [];
    for (const [table, m] of [...this.events].sort(([a], [b]) => (a < b ? -1 : 1))) {
      for (const [outcome, n] of m) events.push([`{table="${escapeLabel(table)}",outcome="${outcome}"}`, n]);
    }
    metric('spade_events_total', 'counter', 'Events in committed batches, by table and outcome.', events);
    metric(
      'spade_lines_total',
      'counter',
      'Input lines in committed batches, by outcome.',
      Object.entries(this.lines).map(([o, n]) => [`{outcome="${o}"}`, n]),
    );
    metric('spade_input_files_committed_total', 'counter', 'Input files committed.', [['', this.inputFilesCommitted]]);
    metric(
      'spade_files_uploaded_total',
      'counter',
      'Output files uploaded in committed batches, by kind.',
      Object.entries(this.filesUploaded).map(([k, n]) => [`{kind="${k}"}`, n]),
    );
    metric('spade_batches_committed_total', 'counter', 'Batches committed.', [['', this.batchesCommitted]]);
    metric('spade_batches_aborted_total', 'counter', 'Batches dropped because their commit failed.', [
      ['', this.batchesAborted],
    ]);
    metric(
      'spade_damaged_inputs_total',
      'counter',
      'Committed input files that were truncated or corrupt gzip; their complete lines before the damage were kept.',
      [['', this.damagedInputs]],
    );
    metric('spade_task_failures_total', 'counter', 'Transform tasks that failed to read an input (read again).', [
      ['', this.taskFailures],
    ]);
    metric('spade_globs_duplicate_total', 'counter', 'Globs skipped as duplicates (stdin).', [
      ['', this.globsDuplicate],
    ]);
    metric(
      'spade_config_reloads_total',
      'counter',
      'Config reloads by result.',
      Object.entries(this.reloads).map(([r, n]) => [`{result="${r}"}`, n]),
    );
    metric('spade_batches_loaded_total', 'counter', 'Batches loaded into the warehouse.', [['', this.batchesLoaded]]);
    metric('spade_load_failures_total', 'counter', 'Failed warehouse loads (retried).', [['', this.loadFailures]]);
    metric('spade_load_lag_seconds', 'gauge', 'Seconds the oldest committed batch not yet loaded has waited.', [
      ['', this.loadLagSeconds()],
    ]);
    metric('spade_load_pending_batches', 'gauge', 'Committed batches waiting for their load.', [
      ['', this.loadPending()],
    ]);
    metric('spade_lag_seconds', 'gauge', 'Write time of the newest input seen minus that of the newest committed.', [
      ['', this.lagSeconds()],
    ]);
    metric('spade_input_newest_seen_timestamp_seconds', 'gauge', 'Write time of the newest input seen.', [
      ['', this.newestSeenSec],
    ]);
    metric('spade_input_pending_files', 'gauge', 'Input files found and not yet committed.', [['', this.pendingFiles]]);
    return out.join('\n') + '\n';
  }
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

export function startMetricsServer(
  metrics: ProcessMetrics,
  opts: { port: number; host?: string; token?: string; staleMs: number },
): Promise<MetricsServer> {
  const token = opts.token ? Buffer.from(`Bearer ${opts.token}`) : null;
  const server: Server = createServer((req, res) => {
    if (token !== null) {
      const given = Buffer.from(req.headers.authorization ?? '');
      if (given.length !== token.length || !timingSafeEqual(given, token)) {
        res.writeHead(401, { 'content-type': 'text/plain' }).end('unauthorized\n');
        return;
      }
    }
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/healthz') {
      const ok = Date.now() - metrics.lastLoopMs < opts.staleMs;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'main loop stalled\n');
    } else if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics.render());
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
      const addr = server.address() as AddressInfo;
      resolve({
        url: `http://${addr.address}:${addr.port}`,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}
