/**
 * Opens a project database at a given moment (Date.now() milliseconds), so that several processes
 * started by a test open the same new file together: `open-at.ts DB_PATH AT_MS`. Prints `ok`, or
 * the error's code and message, and exits 1 on an error.
 */
import { openDb } from '../../src/store/db';

const [path, at] = [process.argv[2]!, Number(process.argv[3])];
while (Date.now() < at) {
  // spin: a timer's granularity would spread the processes over milliseconds
}
try {
  openDb(path).close();
  process.stdout.write('ok\n');
} catch (err) {
  const e = err as { code?: unknown; message?: unknown };
  process.stdout.write(`${String(e.code)} ${String(e.message)}\n`);
  process.exitCode = 1;
}
