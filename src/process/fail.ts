/** Ends the process with `exitCode` and one line on stderr: the error's code and message. */
import { isPulsewireError } from '../errors/catalog.js';

export function fail(err: unknown, exitCode: number): void {
  const message = isPulsewireError(err) ? `${err.code}: ${err.message}` : String((err as Error)?.stack ?? err);
  process.stderr.write(`pulsewire: ${message}\n`);
  process.exit(exitCode);
}
