/**
 * Loopback worker nodes for the cluster benchmark: `spade worker serve`
 * processes on 127.0.0.1 (port 0: the daemon picks one and says which), each
 * measured like the replay (peak RSS and CPU from `/usr/bin/time -v`), and what
 * their logs say about the tasks they ran: the node-side view of scheduling.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runMeasured, type Measured } from './measure.js';

export interface BenchWorker {
  /** host:port, as `--workers` takes it. */
  addr: string;
  threads: number;
  /** The daemon's stderr: its log, one timestamped line per task start and end. */
  logFile: string;
  /** SIGTERM (the daemon drains and exits); resolves with its measurements. */
  stop(): Promise<Measured>;
}

const START_TIMEOUT_MS = 20_000;
const LISTENING = /listening on http:\/\/([^\s/]+)\//;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Starts `count` daemons with `threads` transform threads each. `env` must hold
 * SPADE_WORKER_TOKEN and whatever the daemons need to reach the stores.
 */
export async function startBenchWorkers(opts: {
  count: number;
  threads: number;
  spade: string;
  env: NodeJS.ProcessEnv;
  scratch: string;
  /** File name prefix in scratch, e.g. `w2`. */
  name: string;
}): Promise<BenchWorker[]> {
  const started: BenchWorker[] = [];
  try {
    for (let i = 0; i < opts.count; i++) started.push(await startOne(opts, `${opts.name}-node${i}`));
  } catch (err) {
    await Promise.allSettled(started.map((w) => w.stop()));
    throw err;
  }
  return started;
}

async function startOne(
  opts: { threads: number; spade: string; env: NodeJS.ProcessEnv; scratch: string },
  name: string,
): Promise<BenchWorker> {
  const logFile = join(opts.scratch, `${name}.stderr`);
  const stopper = new AbortController();
  let exited = false;
  const measured = runMeasured(
    process.execPath,
    [
      opts.spade,
      'worker',
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--threads',
      String(opts.threads),
      '--drain-seconds',
      '10',
    ],
    {
      env: opts.env,
      signal: stopper.signal,
      stopCommandOnly: true,
      stdoutFile: join(opts.scratch, `${name}.stdout`),
      stderrFile: logFile,
      timeFile: join(opts.scratch, `${name}.time`),
    },
  ).finally(() => (exited = true));
  let stopping: Promise<Measured> | null = null;
  const stop = (): Promise<Measured> => {
    if (!stopping) {
      stopper.abort();
      stopping = measured;
    }
    return stopping;
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    const m = LISTENING.exec(text);
    if (m) return { addr: m[1]!, threads: opts.threads, logFile, stop };
    if (exited || Date.now() > deadline) {
      await stop().catch(() => undefined);
      throw new Error(`worker daemon ${name} did not start (${exited ? 'it exited' : 'no listening line'}):\n${text}`);
    }
    await delay(50);
  }
}

/** One task as a daemon's log tells it (node clock, which on loopback is the driver's). */
export interface DaemonTask {
  partition: string;
  attempt: string;
  startMs: number;
  endMs: number;
  state: 'done' | 'failed';
  bytes: number;
}

// `<iso> task <id> partition <p> attempt <a>: <n> file(s), <bytes> bytes`
const TASK_START = /^(\S+) task (\S+) partition (\S+) attempt (\S+): \d+ file\(s\), (\d+) bytes$/;
// `<iso> task <id> partition <p> attempt <a> done in 1.2s[: error]`
const TASK_END = /^(\S+) task (\S+) partition \S+ attempt \S+ (done|failed) in [\d.]+s/;

/** The finished tasks in a daemon's log, in start order. */
export function parseDaemonTasks(logText: string): DaemonTask[] {
  const open = new Map<string, Omit<DaemonTask, 'endMs' | 'state'>>();
  const out: DaemonTask[] = [];
  for (const line of logText.split('\n')) {
    const s = TASK_START.exec(line);
    if (s) {
      open.set(s[2]!, { partition: s[3]!, attempt: s[4]!, startMs: Date.parse(s[1]!), bytes: Number(s[5]) });
      continue;
    }
    const e = TASK_END.exec(line);
    const begun = e ? open.get(e[2]!) : undefined;
    if (e && begun) {
      out.push({ ...begun, endMs: Date.parse(e[1]!), state: e[3] as 'done' | 'failed' });
      open.delete(e[2]!);
    }
  }
  return out.sort((a, b) => a.startMs - b.startMs);
}

export interface Schedule {
  tasks: number;
  /** Sum of task durations over nodes, ms. */
  busyMs: number;
  /** Each node's gaps between the end of a task and the start of its next: the dispatch round trip. */
  gapsMs: number[];
  /** Earliest task start and latest task end over all nodes (epoch ms), NaN without tasks. */
  firstStartMs: number;
  lastEndMs: number;
}

export function scheduleOf(nodes: DaemonTask[][]): Schedule {
  const gapsMs: number[] = [];
  let busyMs = 0;
  let tasks = 0;
  let firstStartMs = Infinity;
  let lastEndMs = -Infinity;
  for (const list of nodes) {
    for (let i = 0; i < list.length; i++) {
      const t = list[i]!;
      tasks++;
      busyMs += t.endMs - t.startMs;
      if (i > 0) gapsMs.push(t.startMs - list[i - 1]!.endMs);
      firstStartMs = Math.min(firstStartMs, t.startMs);
      lastEndMs = Math.max(lastEndMs, t.endMs);
    }
  }
  return {
    tasks,
    busyMs,
    gapsMs,
    firstStartMs: tasks ? firstStartMs : NaN,
    lastEndMs: tasks ? lastEndMs : NaN,
  };
}
