/**
 * `spade worker serve`: the daemon of a worker node (plain EC2 nodes driven by
 * `spade replay --executor workers`). It runs one partition task at a time on
 * its transform thread pool and answers the driver's polls:
 *
 *   GET    /healthz            no token: {"ok":true,"busy":bool}
 *   POST   /tasks              a PartitionTask (JSON, `attempt` set) -> 202 {taskId}; 409 while busy
 *   GET    /tasks/<id>[?wait=ms] {state, progress, result?, error?, ...}; `wait` holds the answer
 *                                 until the task leaves `running` (long poll, so the driver
 *                                 learns of the end at once and dispatches the next task)
 *   DELETE /tasks/<id>          the driver gave up on it: its result will be discarded
 *
 * Everything but /healthz needs `Authorization: Bearer <token>`. A bad request is
 * answered 400, never a crash. The token is never logged. A task whose edge or
 * output lies outside the node's allowed locations (allowed-locations.ts) is
 * answered 403 naming the location, and nothing of it is read.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { newAttemptId, runPartition, type PartitionResult, type PartitionTask } from '../partition-task.js';
import { createTransformPool, defaultThreads, type TransformPool } from '../pool/pool.js';
import type { ProgressTotals } from '../pool/progress.js';
import { redactText } from '../redact.js';
import { AllowedLocations, LocationNotAllowedError } from './allowed-locations.js';
import {
  bearerToken,
  checkPort,
  closeServer,
  createRequestServer,
  errorMessage,
  HttpError,
  listen,
  readBody,
  requireMethod,
  sendHttpError,
  sendJson,
  tokenDigest,
  tokenMatches,
} from './http.js';

export interface WorkerDaemonOptions {
  /** Address to bind; default 127.0.0.1. */
  host?: string;
  /** Default 7070; 0 picks a free port. */
  port?: number;
  /** Required: every request but /healthz must carry it. */
  token: string;
  /** Where tasks may read and write; default: S3 only (AllowedLocations.create({})). */
  allowed?: AllowedLocations;
  /** Transform threads; default: cores. */
  threads?: number;
  log?: (line: string) => void;
  /** How long finished tasks' results stay readable; default 1 hour. */
  keepResultsMs?: number;
  /** Largest task body; default 64 MiB (a task carries the table config text and its file list). */
  maxBodyBytes?: number;
  /** Test-only behaviour: `hang` accepts tasks and never runs them; `delayMs` waits before running each. */
  testHooks?: { hang?: boolean; delayMs?: number };
}

export interface WorkerDaemon {
  url: string;
  port: number;
  busy(): boolean;
  /**
   * Stops taking tasks, waits up to `drainMs` for the running one (and a moment
   * for the driver to read its result), then closes. Resolves false when the
   * running task did not finish in time.
   */
  close(drainMs?: number): Promise<boolean>;
}

export type TaskState = 'running' | 'done' | 'failed';

/** What `GET /tasks/<id>` answers. */
export interface TaskStatus {
  taskId: string;
  partition: string;
  attempt: string;
  state: TaskState;
  progress: ProgressTotals;
  result?: PartitionResult;
  error?: string;
  /** Node clock, epoch ms. */
  startedAt: number;
  finishedAt?: number;
  /** Time this node sat idle between its previous task's end and this task's start (node clock). */
  idleBeforeMs?: number;
}

interface TaskRecord {
  status: TaskStatus;
  /** Progress counters of the pool when the task started (the pool's are cumulative). */
  baseline: ProgressTotals;
  cancelled: boolean;
  /** The driver read the final state (a draining daemon waits for that before closing). */
  fetched: boolean;
  /** Settles the test-only hang. */
  release?: () => void;
  waiters: Set<() => void>;
}

const DEFAULT_PORT = 7070;
const DEFAULT_KEEP_RESULTS_MS = 60 * 60_000;
const MAX_KEPT_RESULTS = 1000;
const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;
const MAX_WAIT_MS = 30_000;
const DEFAULT_DRAIN_MS = 10 * 60_000;
/** After the last task ends while draining: time for the driver's poll to pick up its result. */
const DRAIN_LINGER_MS = 5_000;
const CLOSE_GRACE_MS = 1_000;

export async function startWorkerDaemon(opts: WorkerDaemonOptions): Promise<WorkerDaemon> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? DEFAULT_PORT;
  if (!opts.token) throw new Error('worker daemon: refusing to start without a token');
  checkPort('worker daemon', port);
  const write = opts.log ?? ((line: string) => void process.stderr.write(`${new Date().toISOString()} ${line}\n`));
  // Task errors quote locations and config sources: no credential in them reaches the log.
  const log = (line: string): void => write(redactText(line));
  const keepResultsMs = opts.keepResultsMs ?? DEFAULT_KEEP_RESULTS_MS;
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const hooks = opts.testHooks ?? {};
  const digest = tokenDigest(opts.token);
  const allowed = opts.allowed ?? (await AllowedLocations.create({}));
  const pool: TransformPool = createTransformPool(opts.threads ?? defaultThreads());
  const tasks = new Map<string, TaskRecord>();
  let current: { record: TaskRecord; settled: Promise<void> } | null = null;
  let lastFinishedAt: number | null = null;
  let draining = false;

  const progressOf = (r: TaskRecord): ProgressTotals => {
    if (r.status.state !== 'running') return r.status.progress;
    const now = pool.progress();
    return {
      bytes: now.bytes - r.baseline.bytes,
      lines: now.lines - r.baseline.lines,
      files: now.files - r.baseline.files,
    };
  };

  const forgetOld = (): void => {
    const cutoff = Date.now() - keepResultsMs;
    for (const [id, r] of tasks) {
      const finished = r.status.finishedAt;
      if (finished !== undefined && (finished < cutoff || tasks.size > MAX_KEPT_RESULTS)) tasks.delete(id);
    }
  };

  const finish = (r: TaskRecord, outcome: { result?: PartitionResult; error?: string }): void => {
    const s = r.status;
    s.progress = progressOf(r);
    s.finishedAt = Date.now();
    if (r.cancelled) {
      s.state = 'failed';
      s.error = 'cancelled by the driver';
    } else if (outcome.result) {
      s.state = 'done';
      s.result = outcome.result;
    } else {
      s.state = 'failed';
      s.error = outcome.error ?? 'unknown error';
    }
    lastFinishedAt = s.finishedAt;
    const secs = ((s.finishedAt - s.startedAt) / 1000).toFixed(1);
    log(
      `task ${s.taskId} partition ${s.partition} attempt ${s.attempt} ${s.state} in ${secs}s` +
        (s.error ? `: ${s.error}` : ''),
    );
    for (const wake of r.waiters) wake();
    r.waiters.clear();
  };

  const start = (task: PartitionTask & { attempt: string }): TaskRecord => {
    const now = Date.now();
    const record: TaskRecord = {
      status: {
        taskId: randomUUID(),
        partition: task.partition.id,
        attempt: task.attempt,
        state: 'running',
        progress: { bytes: 0, lines: 0, files: 0 },
        startedAt: now,
        idleBeforeMs: lastFinishedAt === null ? undefined : now - lastFinishedAt,
      },
      baseline: pool.progress(),
      cancelled: false,
      fetched: false,
      waiters: new Set(),
    };
    tasks.set(record.status.taskId, record);
    log(
      `task ${record.status.taskId} partition ${task.partition.id} attempt ${task.attempt}: ` +
        `${task.partition.files.length} file(s), ${task.partition.bytes} bytes`,
    );
    const run = async (): Promise<PartitionResult> => {
      if (hooks.hang) {
        await new Promise<void>((resolve) => (record.release = resolve));
        throw new Error('hung task released');
      }
      if (hooks.delayMs) await new Promise((resolve) => setTimeout(resolve, hooks.delayMs));
      return runPartition(task, pool);
    };
    const settled = run().then(
      (result) => finish(record, { result }),
      (err: unknown) => finish(record, { error: errorMessage(err) }),
    );
    current = { record, settled: settled.finally(() => (current = null)) };
    return record;
  };

  const server = createRequestServer('worker daemon', log, handle);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://worker');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    try {
      if (path === '/healthz' && (method === 'GET' || method === 'HEAD')) {
        sendJson(res, draining ? 503 : 200, { ok: !draining, busy: current !== null, ...(draining && { draining }) });
        return;
      }
      if (!tokenMatches(bearerToken(req), digest)) {
        throw new HttpError(401, 'missing or wrong token (Authorization: Bearer <token>)', {
          headers: { 'WWW-Authenticate': 'Bearer' },
        });
      }
      if (path === '/tasks') {
        requireMethod(method, ['POST']);
        const body = await readBody(req, maxBodyBytes, 'task');
        const task = parseTask(body);
        await checkAllowed(allowed, task);
        if (current) {
          // The same attempt posted again (the driver's first POST timed out): same answer as the first time.
          if (current.record.status.attempt === task.attempt) {
            sendJson(res, 202, { taskId: current.record.status.taskId });
            return;
          }
          throw new HttpError(409, 'busy: a task is running', {
            body: { busy: true, taskId: current.record.status.taskId, attempt: current.record.status.attempt },
          });
        }
        if (draining) throw new HttpError(503, 'shutting down, not taking tasks');
        forgetOld();
        const record = start(task);
        sendJson(res, 202, { taskId: record.status.taskId });
        return;
      }
      const m = /^\/tasks\/([A-Za-z0-9-]{1,64})$/.exec(path);
      if (!m) throw new HttpError(404, `no such path ${path}`);
      const record = tasks.get(m[1]!);
      if (!record) throw new HttpError(404, `no task ${m[1]} (unknown, or its result expired)`);
      if (method === 'DELETE') {
        if (record.status.state === 'running') {
          record.cancelled = true;
          log(`task ${record.status.taskId}: cancelled by the driver`);
          record.release?.();
        }
        sendJson(res, 202, { state: record.status.state });
        return;
      }
      requireMethod(method, ['GET']);
      const wait = Math.min(MAX_WAIT_MS, Math.max(0, Number(url.searchParams.get('wait') ?? 0) || 0));
      if (wait > 0 && record.status.state === 'running') await waitForEnd(record, wait, res);
      if (record.status.state !== 'running') record.fetched = true;
      sendJson(res, 200, { ...record.status, progress: progressOf(record) });
    } catch (err) {
      if (err instanceof HttpError) {
        sendHttpError(res, err);
        return;
      }
      throw err;
    }
  }

  const bound = await listen(server, host, port, 'worker daemon', log);

  return {
    ...bound,
    busy: () => current !== null,
    async close(drainMs = DEFAULT_DRAIN_MS) {
      draining = true;
      let drained = true;
      const running = current;
      if (running) {
        if (hooks.hang) running.record.release?.();
        log(`draining: waiting up to ${Math.round(drainMs / 1000)}s for task ${running.record.status.taskId}`);
        drained = await settlesWithin(running.settled, drainMs);
        if (drained) await until(() => running.record.fetched, DRAIN_LINGER_MS);
        else log(`task ${running.record.status.taskId} still running after ${Math.round(drainMs / 1000)}s; leaving it`);
      }
      await closeServer(server, CLOSE_GRACE_MS);
      // piscina's close waits for running tasks: bounded, a stuck thread must not keep the node up.
      if (drained) await settlesWithin(pool.close(), CLOSE_GRACE_MS * 5);
      return drained;
    },
  };
}

/** Holds a poll until the task ends, `ms` passes, or the client goes away. */
function waitForEnd(record: TaskRecord, ms: number, res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      record.waiters.delete(done);
      res.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    record.waiters.add(done);
    res.on('close', done);
  });
}

function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    p.then(
      () => (clearTimeout(timer), resolve(true)),
      () => (clearTimeout(timer), resolve(true)),
    );
  });
}

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 50));
}

/** A 403 naming the location when the task reads or writes outside the node's allowed locations. */
async function checkAllowed(allowed: AllowedLocations, task: PartitionTask): Promise<void> {
  try {
    await allowed.check({
      edge: task.edge,
      output: task.output,
      runtag: task.runtag,
      keys: task.partition.files.map((f) => f.key),
      userIdUrl: task.settings.userIdMapping?.urlTemplate,
    });
  } catch (err) {
    if (err instanceof LocationNotAllowedError) throw new HttpError(403, `task refused: ${err.message}`);
    throw err;
  }
}

/** Validates the shape of a posted task: the daemon trusts its token holder, not the bytes. */
function parseTask(body: Buffer): PartitionTask & { attempt: string } {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `task is not JSON: ${errorMessage(err)}`);
  }
  const bad = (what: string): never => {
    throw new HttpError(400, `invalid task: ${what}`);
  };
  if (!isObject(v)) return bad('expected a JSON object');
  for (const k of ['runtag', 'edge', 'output'] as const)
    if (typeof v[k] !== 'string' || !v[k]) bad(`${k} must be a string`);
  if (typeof v.runtag === 'string' && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(v.runtag))
    bad('runtag has unsafe characters');
  const p = v.partition;
  if (!isObject(p)) return bad('partition must be an object');
  if (typeof p.id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(p.id)) bad('partition.id must be a plain name');
  if (typeof p.bytes !== 'number') bad('partition.bytes must be a number');
  if (!Array.isArray(p.files)) return bad('partition.files must be an array');
  p.files.forEach((f: unknown, i) => {
    if (!isObject(f) || typeof f.key !== 'string' || typeof f.size !== 'number')
      bad(`partition.files[${i}] must be {key, size}`);
  });
  const s = v.settings;
  if (!isObject(s) || typeof s.configText !== 'string' || typeof s.configSource !== 'string') {
    bad('settings must hold configText and configSource strings');
  }
  if (v.rotateBytes !== undefined && typeof v.rotateBytes !== 'number') bad('rotateBytes must be a number');
  if (v.attempt !== undefined && (typeof v.attempt !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(v.attempt))) {
    bad('attempt must be a plain name');
  }
  const task = v as unknown as PartitionTask;
  return { ...task, attempt: task.attempt ?? newAttemptId() };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The token from (in order) `--token-file`, `--token`, env SPADE_WORKER_TOKEN.
 * Throws when there is none: a worker node without a token would run anyone's tasks.
 */
export function resolveWorkerToken(
  opts: { token?: string; tokenFile?: string },
  env: NodeJS.ProcessEnv = process.env,
  warn: (msg: string) => void = (m) => void process.stderr.write(m + '\n'),
): string {
  let token: string | undefined;
  if (opts.tokenFile) {
    try {
      token = readFileSync(opts.tokenFile, 'utf8').trim();
    } catch (err) {
      throw new Error(`cannot read --token-file ${opts.tokenFile}: ${errorMessage(err)}`, { cause: err });
    }
    if (!token) throw new Error(`--token-file ${opts.tokenFile} is empty`);
  } else if (opts.token) {
    warn('warning: --token is visible in process listings; prefer env SPADE_WORKER_TOKEN or --token-file');
    token = opts.token;
  } else {
    token = env.SPADE_WORKER_TOKEN?.trim();
  }
  if (!token) {
    throw new Error(
      'worker daemon: refusing to start without a token: set SPADE_WORKER_TOKEN (or --token-file FILE); ' +
        'the driver sends the same token',
    );
  }
  if (token.length < 16) warn('warning: the worker token is shorter than 16 characters; use a long random one');
  return token;
}

export interface WorkerServeOptions {
  host?: string;
  port?: number;
  threads?: number;
  token?: string;
  tokenFile?: string;
  /** SIGTERM: longest wait for the running task; default 10 minutes. */
  drainMs?: number;
  /** `--allow-edge`, `--allow-output`: local directories and s3:// prefixes; none: S3 only. */
  allowEdge?: string[];
  allowOutput?: string[];
  /** `--allow-user-id-url`: URL prefixes a task's user-id lookup may name; none: no lookups. */
  allowUserIdUrl?: string[];
}

/**
 * What `spade worker serve` runs: starts the daemon, says where it listens on
 * stderr, and returns once SIGTERM/SIGINT drained and stopped it.
 * Test-only env: SPADE_WORKER_TEST_HANG=1, SPADE_WORKER_TEST_DELAY_MS=<ms>.
 */
export async function workerServeCommand(
  opts: WorkerServeOptions,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const token = resolveWorkerToken(opts, env);
  const threads = opts.threads ?? defaultThreads();
  const allowed = await AllowedLocations.create({
    edge: opts.allowEdge,
    output: opts.allowOutput,
    userIdUrls: opts.allowUserIdUrl,
  });
  const daemon = await startWorkerDaemon({
    host: opts.host,
    port: opts.port,
    threads,
    token,
    allowed,
    testHooks: {
      hang: env.SPADE_WORKER_TEST_HANG === '1',
      delayMs: Number(env.SPADE_WORKER_TEST_DELAY_MS) || undefined,
    },
  });
  process.stderr.write(
    `worker daemon listening on ${daemon.url} (${threads} thread(s)); token required; ${allowed.describe()}\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.stderr.write(`worker daemon: ${signal}, draining\n`);
      daemon.close(opts.drainMs).then(
        (drained) => {
          process.stderr.write(`worker daemon: stopped${drained ? '' : ' (a task was still running)'}\n`);
          // A task still running holds pool threads that would keep the process alive.
          if (!drained) process.exit(0);
          resolve();
        },
        (err: unknown) => {
          process.stderr.write(`worker daemon: closing failed: ${errorMessage(err)}\n`);
          process.exit(0);
        },
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
