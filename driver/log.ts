/**
 * The run's log: timestamped lines to stderr (unless a live display owns the
 * terminal) and appended to the log file, as the original's `tee -a replay.log`.
 * Every line is redacted (worker/redact.ts) before it is written anywhere.
 */
import { appendFileSync } from 'node:fs';
import { redactText } from '../worker/redact.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** While a live display owns the terminal, console lines go to it (it prints them above itself). */
  setConsoleSink(sink: ((line: string) => void) | null): void;
}

export function createLogger(opts: { level: LogLevel; file?: string | null; stream?: NodeJS.WritableStream }): Logger {
  const stream = opts.stream ?? process.stderr;
  let sink: ((line: string) => void) | null = null;
  const write = (level: LogLevel, msg: string): void => {
    if (ORDER[level] < ORDER[opts.level]) return;
    const line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${redactText(msg)}`;
    if (opts.file) {
      try {
        appendFileSync(opts.file, line + '\n');
      } catch {
        // A log file that cannot be written must not stop a replay; say so once.
        stream.write(`warning: cannot append to log file ${opts.file}; continuing without it\n`);
        opts.file = null;
      }
    }
    if (sink) sink(line);
    else stream.write(line + '\n');
  };
  return {
    debug: (m) => write('debug', m),
    info: (m) => write('info', m),
    warn: (m) => write('warn', m),
    error: (m) => write('error', m),
    setConsoleSink: (s) => void (sink = s),
  };
}
