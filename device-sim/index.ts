/**
 * device-sim's programmatic API, for tests and the demo script:
 *
 *   const summary = await runFleet(withDefaults({ url, enrollmentKey, devices: 50 }), { signal });
 *
 * runFleet runs until `duration` seconds pass (0: until the signal aborts),
 * then stops sending, waits for outstanding ACKs, closes with 1000 and
 * resolves with the summary (also written to `summary` when set). For finer
 * control (forcing disconnects, looking at devices) use Fleet directly.
 */
import { writeFile } from 'node:fs/promises';
import { Fleet, type FleetOptions } from './fleet.js';
import { StatusLine } from './status.js';
import type { Summary } from './summary.js';

export { Fleet, type FleetOptions, type Snapshot } from './fleet.js';
export { withDefaults, resolveOptions, OptionError, type SimOptions } from './options.js';
export { formatSummary, type Summary } from './summary.js';
export { afterEnding, backoffDelay, DEFAULT_TIMING, type BackoffTiming } from './backoff.js';
export { PROFILES, PROFILE_NAMES, profileFor } from './profiles/index.js';

export type RunControl = {
  /** Aborting it ends the run (as Ctrl-C does). */
  signal?: AbortSignal;
  /** Called with the fleet once it has started. */
  onStart?: (fleet: Fleet) => void;
};

export async function runFleet(options: FleetOptions, control: RunControl = {}): Promise<Summary> {
  const fleet = new Fleet(options).start();
  const status = new StatusLine(fleet, options.status);
  control.onStart?.(fleet);
  try {
    await untilDone(options.duration, control.signal);
    await fleet.stop();
  } finally {
    status.stop();
  }
  const summary = fleet.summary();
  if (options.summary) await writeFile(options.summary, `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}

/** Resolves after `durationS` seconds (0: never) or when `signal` aborts, whichever is first. */
export function untilDone(durationS: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = durationS > 0 ? setTimeout(finish, durationS * 1000) : undefined;
    signal?.addEventListener('abort', finish, { once: true });
    function finish() {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      resolve();
    }
  });
}
