/**
 * Polling helpers for integration tests that wait on a real hub. The default
 * ceiling is generous on purpose: it bounds a wait for an event that must
 * come, and only a hub that is wrong should reach it, not a busy machine.
 */
export const WAIT_CEILING_MS = 15_000;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` until it returns something other than undefined, and returns that; throws after `timeoutMs`. */
export async function until<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = WAIT_CEILING_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

/** Polls `condition` until it holds; throws after `timeoutMs`, naming `what`. */
export async function waitFor(
  condition: () => Promise<boolean> | boolean,
  { timeoutMs = WAIT_CEILING_MS, what = 'condition', everyMs = 20 }: { timeoutMs?: number; what?: string; everyMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}
