/**
 * `--executor workers --workers host:port,...`: partitions run on worker nodes
 * running `spade worker serve`. Each healthy node holds one partition at a
 * time; the next is posted as soon as the driver learns the previous one ended
 * (a long poll, so that is at once). A partition whose node fails it, stops
 * answering, or overruns the task timeout is posted again (new attempt id) to
 * another node; a node that fails several tasks in a row is dropped. A node
 * whose daemon refuses the token (401) or the run's locations (403, its
 * --allow-edge/--allow-output) is dropped at once: it would refuse every task.
 * A refused connection is a failure at once (no daemon listens, so the task it
 * held is gone), while a timeout gets `unreachableGraceMs` (a busy or briefly
 * unreachable node may still be running it).
 *
 * Exactly-once output does not depend on any of this: an attempt's files are
 * only loaded when its success manifest names them (SPEC section 5).
 */
import { newAttemptId, type PartitionResult, type PartitionTask } from '../../worker/partition-task.js';
import { formatBytes } from '../format.js';
import { summarizeTasks, taskIterator, type Executor, type ExecutorHooks } from './executor.js';

export interface WorkersExecutorOptions {
  /** `host:port` of each node (`[v6addr]:port` for IPv6). */
  workers: string[];
  token: string;
  /** A task running longer than this is abandoned and run elsewhere; default 2 h. */
  taskTimeoutMs?: number;
  /** Longest hold of one status poll (the node answers at once when the task ends); default 5 s. */
  pollMs?: number;
  /** A node is dropped after this many failed tasks in a row; default 3. */
  maxNodeFailures?: number;
  /** Attempts per partition before it is reported failed; default 3. */
  maxAttempts?: number;
  /** A node not answering (timed out, reset) for this long has lost its task; default 30 s. A refused connection fails at once. */
  unreachableGraceMs?: number;
  /** Timeout of one request besides the poll hold; default 15 s. */
  requestTimeoutMs?: number;
  /** Warnings (node dropped, task abandoned); default: none. */
  log?: (msg: string) => void;
}

export interface WorkerNodeStats {
  node: string;
  tasksDone: number;
  failures: number;
  blacklisted: boolean;
  reason?: string;
  /** Sum of this node's task run times (node clock), ms. */
  busyMs: number;
  /** Time the node sat idle between two of its tasks of this run (node clock), ms. */
  idleBetweenTasksMs: number;
}

export interface WorkersExecutorStats {
  dispatched: number;
  /** Dispatches of a partition after a failed attempt. */
  redispatched: number;
  failedAttempts: number;
  /** Scheduling overhead: sum over nodes of idle time between consecutive tasks, ms. */
  idleBetweenTasksMs: number;
  nodes: WorkerNodeStats[];
}

export interface WorkersExecutor extends Executor {
  stats(): WorkersExecutorStats;
}

interface Progress {
  bytes: number;
  lines: number;
  files: number;
}

interface NodeState {
  addr: string;
  base: string;
  consecutiveFailures: number;
  stats: WorkerNodeStats;
  /** Node clock: end of this node's previous task of this run. */
  hadTask: boolean;
  /** Since when every POST was answered 409 (busy with a task that is not ours). */
  busySince: number | null;
  live: Progress;
}

interface Pending {
  task: PartitionTask;
  attempts: number;
  failedOn: Set<string>;
}

/** How a status poll answers (the daemon's TaskStatus, the fields the driver reads). */
interface TaskStatusReply {
  state: 'running' | 'done' | 'failed';
  progress?: Progress;
  result?: PartitionResult;
  error?: string;
  startedAt?: number;
  finishedAt?: number;
  idleBeforeMs?: number;
}

type AttemptOutcome =
  | { kind: 'done'; result: PartitionResult }
  /** `refusedByNode`: the node will refuse any task of this run (token, allowed locations). */
  | { kind: 'failed'; error: string; refusedByNode?: boolean }
  /** The node is busy with someone else's task: not this partition's fault. */
  | { kind: 'busy'; error: string };

const ZERO: Progress = { bytes: 0, lines: 0, files: 0 };

/** Checks and normalises `host:port`; throws a one-line message naming the bad entry. */
export function parseWorkerAddress(addr: string): string {
  const a = addr
    .trim()
    .replace(/^http:\/\//, '')
    .replace(/\/+$/, '');
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(a);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new Error(`--workers: expected host:port, got '${addr}'`);
  return a;
}

export function createWorkersExecutor(opts: WorkersExecutorOptions): WorkersExecutor {
  if (!opts.token) throw new Error('workers executor: no worker token (the nodes refuse tasks without it)');
  const addrs = [...new Set(opts.workers.map(parseWorkerAddress))];
  if (addrs.length === 0) throw new Error('--workers: name at least one host:port');
  const taskTimeoutMs = opts.taskTimeoutMs ?? 2 * 60 * 60_000;
  const pollMs = opts.pollMs ?? 5_000;
  const maxNodeFailures = opts.maxNodeFailures ?? 3;
  const maxAttempts = opts.maxAttempts ?? 3;
  const graceMs = opts.unreachableGraceMs ?? 30_000;
  const requestTimeoutMs = opts.requestTimeoutMs ?? 15_000;
  const log = opts.log ?? (() => {});
  const auth = { Authorization: `Bearer ${opts.token}` };

  const nodes: NodeState[] = addrs.map((addr) => ({
    addr,
    base: `http://${addr}`,
    consecutiveFailures: 0,
    stats: { node: addr, tasksDone: 0, failures: 0, blacklisted: false, busyMs: 0, idleBetweenTasksMs: 0 },
    hadTask: false,
    busySince: null,
    live: { ...ZERO },
  }));
  const totals = { dispatched: 0, redispatched: 0, failedAttempts: 0 };
  const finishedProgress: Progress = { ...ZERO };

  async function request(
    method: string,
    url: string,
    body: unknown,
    timeoutMs: number,
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(url, {
      method,
      headers: { ...auth, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let json: Record<string, unknown>;
    try {
      json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      json = { error: text.slice(0, 200) };
    }
    return { status: res.status, json };
  }

  /** One attempt of `item` on `node`, start to end. */
  async function attemptOn(node: NodeState, item: Pending, attempt: string): Promise<AttemptOutcome> {
    let taskId: string;
    try {
      const r = await request('POST', `${node.base}/tasks`, { ...item.task, attempt }, requestTimeoutMs);
      if (r.status === 401) return unauthorized(node);
      if (r.status === 403) {
        return {
          kind: 'failed',
          refusedByNode: true,
          error: `node ${node.addr} refused the task (HTTP 403): ${String(r.json.error ?? '')}`,
        };
      }
      if (r.status === 409 || r.status === 503) return { kind: 'busy', error: `${r.status}: ${String(r.json.error)}` };
      if (r.status !== 202 || typeof r.json.taskId !== 'string') {
        return { kind: 'failed', error: `task refused (HTTP ${r.status}): ${String(r.json.error ?? '')}` };
      }
      taskId = r.json.taskId;
    } catch (err) {
      return { kind: 'failed', error: `cannot reach the node: ${fetchError(err)}` };
    }
    node.busySince = null;
    const posted = Date.now();
    let unreachableSince: number | null = null;
    const statusUrl = `${node.base}/tasks/${encodeURIComponent(taskId)}`;
    for (;;) {
      const elapsed = Date.now() - posted;
      if (elapsed > taskTimeoutMs) {
        // Best effort: the node then discards the result when the task ends.
        void request('DELETE', statusUrl, undefined, requestTimeoutMs).catch(() => {});
        return { kind: 'failed', error: `task timed out after ${Math.round(elapsed / 1000)}s (--task-timeout)` };
      }
      const wait = Math.max(1, Math.min(pollMs, taskTimeoutMs - elapsed));
      let reply: { status: number; json: Record<string, unknown> };
      try {
        reply = await request('GET', `${statusUrl}?wait=${wait}`, undefined, wait + requestTimeoutMs);
      } catch (err) {
        if (fetchError(err) === 'ECONNREFUSED') {
          // Nothing listens: the daemon is gone, and the task with it (tasks live in its memory).
          return { kind: 'failed', error: `node refused the connection (ECONNREFUSED): its daemon is not running` };
        }
        unreachableSince ??= Date.now();
        const down = Date.now() - unreachableSince;
        if (down >= graceMs) {
          return {
            kind: 'failed',
            error: `node stopped answering for ${Math.round(down / 1000)}s: ${fetchError(err)}`,
          };
        }
        await sleep(Math.min(pollMs, 1000, graceMs - down));
        continue;
      }
      unreachableSince = null;
      if (reply.status === 401) return unauthorized(node);
      if (reply.status !== 200) {
        return {
          kind: 'failed',
          error: `status poll answered HTTP ${reply.status}: ${String(reply.json.error ?? '')}`,
        };
      }
      const s = reply.json as unknown as TaskStatusReply;
      node.live = s.progress ?? node.live;
      if (s.state === 'running') continue;
      addProgress(finishedProgress, node.live);
      node.live = { ...ZERO };
      if (s.startedAt !== undefined && s.finishedAt !== undefined) node.stats.busyMs += s.finishedAt - s.startedAt;
      if (node.hadTask && s.idleBeforeMs !== undefined) node.stats.idleBetweenTasksMs += s.idleBeforeMs;
      node.hadTask = true;
      if (s.state === 'done' && s.result) return { kind: 'done', result: s.result };
      return { kind: 'failed', error: s.error ?? `task ended in state ${String(s.state)}` };
    }
  }

  function unauthorized(node: NodeState): AttemptOutcome {
    return {
      kind: 'failed',
      refusedByNode: true,
      error: `node ${node.addr} refused the worker token (HTTP 401): the driver's token must equal the nodes' SPADE_WORKER_TOKEN`,
    };
  }

  return {
    name: 'workers',
    describe(tasks) {
      const { partitions, bytes } = summarizeTasks(tasks);
      const perNode = Math.ceil(partitions / nodes.length);
      return [
        `executor workers: ${nodes.length} node(s), one partition at a time each: ${addrs.join(', ')}`,
        `${partitions} partition(s) to run, ${formatBytes(bytes)} compressed input; ` +
          `about ${perNode} partition(s), ${formatBytes(bytes / nodes.length)} per node`,
        `task timeout ${Math.round(taskTimeoutMs / 1000)}s, up to ${maxAttempts} attempt(s) per partition, ` +
          `a node is dropped after ${maxNodeFailures} failure(s) in a row`,
      ];
    },
    async run(tasks, hooks: ExecutorHooks) {
      // Partitions to retry; new ones are pulled from the (streamed) source when none fits.
      const queue: Pending[] = [];
      const source = taskIterator(tasks);
      let sourceDone = false;
      const pull = async (): Promise<Pending | undefined> => {
        if (sourceDone) return undefined;
        const r = await source.next();
        if (r.done) {
          sourceDone = true;
          return undefined;
        }
        return { task: r.value, attempts: 0, failedOn: new Set() };
      };
      const failed: { partition: string; error: string }[] = [];
      let inFlight = 0;
      let wakers: (() => void)[] = [];
      const changed = (): void => {
        const w = wakers;
        wakers = [];
        for (const f of w) f();
      };
      const nextChange = (ms: number): Promise<void> =>
        new Promise((resolve) => {
          const timer = setTimeout(resolve, ms);
          wakers.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      const healthy = (): NodeState[] => nodes.filter((n) => !n.stats.blacklisted);

      const blacklist = (node: NodeState, reason: string): void => {
        node.stats.blacklisted = true;
        node.stats.reason = reason;
        log(`worker ${node.addr} dropped: ${reason}`);
        changed();
      };

      /**
       * The first queued partition that did not fail on this node, unless every other node failed it too;
       * else the next one of the source.
       */
      const take = async (node: NodeState): Promise<Pending | undefined> => {
        const others = healthy().filter((n) => n !== node);
        const i = queue.findIndex((p) => !p.failedOn.has(node.addr) || others.every((o) => p.failedOn.has(o.addr)));
        return i < 0 ? pull() : queue.splice(i, 1)[0];
      };

      const lane = async (node: NodeState): Promise<void> => {
        while (!node.stats.blacklisted) {
          const item = await take(node);
          if (!item) {
            if (queue.length === 0 && inFlight === 0 && sourceDone) return;
            await nextChange(pollMs);
            continue;
          }
          inFlight++;
          item.attempts++;
          const outcome = await attemptOn(node, item, newAttemptId());
          inFlight--;
          if (outcome.kind !== 'busy') {
            totals.dispatched++;
            if (item.attempts > 1) totals.redispatched++;
          }
          if (outcome.kind === 'done') {
            node.consecutiveFailures = 0;
            node.stats.tasksDone++;
            hooks.onPartitionDone(outcome.result);
          } else if (outcome.kind === 'busy') {
            // Not the partition's attempt: back to the front, and give this node a rest.
            item.attempts--;
            queue.unshift(item);
            node.busySince ??= Date.now();
            if (Date.now() - node.busySince > taskTimeoutMs) {
              blacklist(node, `busy with another task for over ${Math.round(taskTimeoutMs / 1000)}s`);
            } else {
              changed();
              await sleep(Math.min(pollMs, 2000));
            }
            continue;
          } else {
            totals.failedAttempts++;
            node.stats.failures++;
            node.consecutiveFailures++;
            item.failedOn.add(node.addr);
            const error = `${node.addr}: ${outcome.error}`;
            if (outcome.refusedByNode) {
              item.attempts--; // the partition never ran
              blacklist(node, outcome.error);
            } else if (node.consecutiveFailures >= maxNodeFailures) {
              blacklist(node, `${node.consecutiveFailures} failures in a row, last: ${outcome.error}`);
            }
            const id = item.task.partition.id;
            if (item.attempts >= maxAttempts) {
              failed.push({ partition: id, error: `${item.attempts} attempt(s) failed, last: ${error}` });
            } else {
              if (!outcome.refusedByNode) hooks.onPartitionRetry(id, item.attempts, error);
              queue.unshift(item);
            }
          }
          changed();
        }
      };

      await Promise.all(nodes.map((n) => lane(n)));
      for (let p = await pull(); p; p = await pull()) queue.push(p);
      if (queue.length > 0) {
        const reasons = nodes.map((n) => `${n.addr}: ${n.stats.reason ?? 'dropped'}`).join('; ');
        for (const item of queue.splice(0)) {
          failed.push({
            partition: item.task.partition.id,
            error: `no worker node left to run it (all ${nodes.length} dropped: ${reasons})`,
          });
        }
      }
      return { failed };
    },
    progress() {
      const p = { ...finishedProgress };
      for (const n of nodes) addProgress(p, n.live);
      return p;
    },
    stats() {
      return {
        ...totals,
        idleBetweenTasksMs: nodes.reduce((s, n) => s + n.stats.idleBetweenTasksMs, 0),
        nodes: nodes.map((n) => ({ ...n.stats })),
      };
    },
    async close() {
      // Nothing held: nodes keep their pools; requests in flight end with run().
    },
  };
}

function addProgress(into: Progress, p: Progress): void {
  into.bytes += p.bytes;
  into.lines += p.lines;
  into.files += p.files;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** fetch's "fetch failed" hides the useful part (ECONNREFUSED, timeout) in `cause`. */
function fetchError(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return 'request timed out';
  return e.cause?.code ?? e.cause?.message ?? e.message;
}
