/**
 * Child-process entry point for tests: opens the PGlite warehouse in argv[2],
 * prints `open` once it holds it, and closes it when its stdin ends. Killing it
 * instead leaves its lock behind, as a crashed process would.
 */
import { openWarehouse } from '../../worker/warehouse/open.js';

const warehouse = await openWarehouse(`pglite://${process.argv[2] ?? ''}`);
process.stdout.write('open\n');
process.stdin.resume();
await new Promise((resolve) => process.stdin.on('end', resolve));
await warehouse.close();
