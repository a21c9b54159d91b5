/**
 * A full garbage collection from a test: vitest's workers do not start with
 * --expose-gc, so V8 is told at run time. Twice: what the first frees can
 * hold the last references to more (weak callbacks, finalizers).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
}
