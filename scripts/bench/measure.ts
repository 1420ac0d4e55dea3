/**
 * Runs a command as a child process and measures it: wall time, exact peak RSS
 * (from `/usr/bin/time -v` when present: the kernel's maxrss of the process,
 * worker threads included) and an RSS profile sampled from /proc while it runs,
 * to see whether memory grows with the input processed.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';

const TIME_BIN = '/usr/bin/time';

export interface Measured {
  code: number;
  secs: number;
  /** Peak resident set of the measured process, in KiB (0 when unknown). */
  maxRssKb: number;
  /** How maxRssKb was obtained. */
  rssSource: '/usr/bin/time -v' | '/proc VmHWM samples' | 'unknown';
  /** User + system CPU seconds of the process (from `/usr/bin/time -v`; NaN without it). */
  cpuSecs: number;
  /** VmRSS samples: seconds since start, KiB. */
  samples: { secs: number; rssKb: number }[];
}

export interface MeasureOptions {
  env: NodeJS.ProcessEnv;
  /** stdout and stderr of the child go to these files (a long run's output is not held in memory). */
  stdoutFile: string;
  stderrFile: string;
  /** Scratch file for `/usr/bin/time -o`. */
  timeFile: string;
  sampleMs?: number;
  /** Aborting it kills the command (and, under /usr/bin/time, the command itself, not only time). */
  signal?: AbortSignal;
  /**
   * On abort, send SIGTERM to the command only and let `/usr/bin/time` see it
   * exit and write its figures (for a daemon stopped on purpose, whose peak RSS
   * and CPU are wanted). Default false: time is killed too, at once.
   */
  stopCommandOnly?: boolean;
}

/** A `kB` field of /proc/<pid>/status, or null once the process is gone. */
function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** The first child of `pid` (the command `/usr/bin/time` runs), or null. */
function firstChild(pid: number): number | null {
  try {
    const first = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0];
    return first ? Number(first) : null;
  } catch {
    return null;
  }
}

export function runMeasured(command: string, args: string[], opts: MeasureOptions): Promise<Measured> {
  const useTime = existsSync(TIME_BIN);
  const out = openSync(opts.stdoutFile, 'w');
  const err = openSync(opts.stderrFile, 'w');
  const started = process.hrtime.bigint();
  const elapsed = (): number => Number(process.hrtime.bigint() - started) / 1e9;
  const child = useTime
    ? spawn(TIME_BIN, ['-v', '-o', opts.timeFile, command, ...args], { env: opts.env, stdio: ['ignore', out, err] })
    : spawn(command, args, { env: opts.env, stdio: ['ignore', out, err] });
  closeSync(out);
  closeSync(err);
  const samples: Measured['samples'] = [];
  let target: number | null = useTime ? null : (child.pid ?? null);
  let hwmKb = 0;
  const sample = (): void => {
    if (target === null && child.pid !== undefined) target = firstChild(child.pid);
    if (target === null) return;
    const rss = statusKb(target, 'VmRSS');
    if (rss !== null) samples.push({ secs: elapsed(), rssKb: rss });
    hwmKb = Math.max(hwmKb, statusKb(target, 'VmHWM') ?? 0);
  };
  const timer = setInterval(sample, opts.sampleMs ?? 250);
  const abort = (): void => {
    sample(); // finds the command's pid if it was not known yet
    const pids = opts.stopCommandOnly && target !== null ? [target] : [target, child.pid];
    for (const pid of pids) {
      try {
        if (pid) process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  };
  opts.signal?.addEventListener('abort', abort, { once: true });
  return new Promise((resolve, reject) => {
    child.once('error', (e) => {
      clearInterval(timer);
      opts.signal?.removeEventListener('abort', abort);
      reject(new Error(`cannot run ${command}: ${e.message}`));
    });
    child.once('close', (code) => {
      clearInterval(timer);
      opts.signal?.removeEventListener('abort', abort);
      const secs = elapsed();
      let maxRssKb = hwmKb;
      let rssSource: Measured['rssSource'] = hwmKb > 0 ? '/proc VmHWM samples' : 'unknown';
      let cpuSecs = NaN;
      if (useTime && existsSync(opts.timeFile)) {
        const text = readFileSync(opts.timeFile, 'utf8');
        const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(text);
        if (m) {
          maxRssKb = Number(m[1]);
          rssSource = '/usr/bin/time -v';
        }
        const user = /User time \(seconds\): ([\d.]+)/.exec(text);
        const sys = /System time \(seconds\): ([\d.]+)/.exec(text);
        if (user && sys) cpuSecs = Number(user[1]) + Number(sys[1]);
      }
      resolve({ code: code ?? -1, secs, maxRssKb, rssSource, cpuSecs, samples });
    });
  });
}

/** Largest sampled RSS in each of `parts` equal slices of the run, in KiB (0 for a slice without samples). */
export function rssProfile(m: Measured, parts: number): number[] {
  const out = new Array<number>(parts).fill(0);
  for (const s of m.samples) {
    const i = Math.min(parts - 1, Math.floor((s.secs / m.secs) * parts));
    out[i] = Math.max(out[i]!, s.rssKb);
  }
  return out;
}
