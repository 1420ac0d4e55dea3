/**
 * Child-process entry point of the continuous processor for tests: what
 * `spade process --follow` runs, without going through the CLI. argv[2]: JSON
 * ProcessOptions (without `stdin`/`log`). Exits with the processor's exit code.
 */
import { processCommand, type ProcessOptions } from '../../worker/process/processor.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as ProcessOptions;
process.exit(await processCommand(opts));
