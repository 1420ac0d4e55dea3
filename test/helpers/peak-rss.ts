/**
 * Preloaded into a child process (`node --import <this file's URL> ...`) by
 * tests that bound its memory: at exit it writes `peak-rss-kb <n>` (the
 * process's high-water resident set, all threads, from getrusage) to stderr.
 * Works on Linux and macOS, unlike /proc/<pid>/status or `/usr/bin/time -v`.
 */
import { writeSync } from 'node:fs';

process.on('exit', () => {
  writeSync(2, `\npeak-rss-kb ${process.resourceUsage().maxRSS}\n`);
});
