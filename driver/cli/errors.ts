/**
 * How the command line reports failures: one line, no stack trace (unless
 * SPADE_DEBUG=1), exit code 1. Anything thrown by a command ends up here.
 */
import { redactText } from '../../worker/redact.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

/** A failure already written to the run's log: exit 1 without printing it twice. */
export class ReportedError extends Error {
  override name = 'ReportedError';
}

export function reportFatal(err: unknown): never {
  if (err instanceof ReportedError) process.exit(1);
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`spade: ${redactText(message)}\n`);
  if (process.env.SPADE_DEBUG === '1' && err instanceof Error && err.stack)
    process.stderr.write(redactText(err.stack) + '\n');
  process.exit(1);
}
