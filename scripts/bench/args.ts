/** Command-line flags and output of the benchmark scripts (`--name value` pairs, nothing more). */

/** The value after `--name`, or `dflt`. */
export function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}

/** A positive number flag (an integer unless `integer` is false); a bad value stops the benchmark with its name. */
export function positiveNumber(name: string, dflt: number, integer = true): number {
  const v = Number(arg(name, String(dflt)));
  if (!(v > 0) || (integer && !Number.isInteger(v)))
    throw new Error(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got ${arg(name, '')}`);
  return v;
}

export function say(line: string): void {
  process.stdout.write(line + '\n');
}
