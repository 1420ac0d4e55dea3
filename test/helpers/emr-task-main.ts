/**
 * The EMR task command as Hadoop streaming runs it (stdin in, exit code out),
 * for tests, until `spade worker emr-task` is wired into the CLI.
 * Env SPADE_EMR_THREADS sets the transform threads.
 */
import { runEmrTask } from '../../worker/emr-task.js';

const threads = process.env.SPADE_EMR_THREADS ? Number(process.env.SPADE_EMR_THREADS) : undefined;
process.exitCode = await runEmrTask(process.stdin, process.stdout, process.stderr, { threads });
