/**
 * Reconnect policy of a simulated device (protocol-v1.md section 5).
 *
 * Pure functions with the randomness injected, so tests can check the
 * jittered bounds exactly. Two decisions live here:
 * - how long to sleep before attempt N: exponential with full jitter,
 *   `random(0, min(cap, base * 2^attempt))`, so a hub restart does not bring
 *   the whole fleet back in the same second;
 * - what a close code (or a refused handshake) means for the next attempt.
 */
import { CloseCode } from '../src/protocol/index.js';

export type BackoffTiming = {
  /** Base delay of the exponential backoff, ms (protocol: 1 s). */
  baseMs: number;
  /** Largest backoff delay, ms (protocol: 60 s). */
  capMs: number;
  /**
   * "Do not reconnect at once" (4000) and "reconnect only when it wants to"
   * (1000 from the hub): we wait one cap plus up to one more cap of jitter,
   * 60 to 120 s by default, so two processes simulating the same ids do not
   * take each other's connections over in lockstep.
   */
  longWaitMs: number;
  /** 1008 (revoked, limits) and 401: wait this long plus up to as much jitter (default 5 min). */
  policyWaitMs: number;
  /** A connection that stayed open this long resets the attempt counter. */
  stableMs: number;
  /** Pause of our own `reboot` command before reconnecting. */
  rebootPauseMs: number;
  /** After ACK 4 (resend later): resend after this long plus up to as much jitter. */
  retryMs: number;
};

export const DEFAULT_TIMING: BackoffTiming = {
  baseMs: 1_000,
  capMs: 60_000,
  longWaitMs: 60_000,
  policyWaitMs: 300_000,
  stableMs: 30_000,
  rebootPauseMs: 3_000,
  retryMs: 1_000,
};

/** `random(0, min(cap, base * 2^attempt))`; `random` returns [0, 1) like Math.random. */
export function backoffDelay(attempt: number, timing: Pick<BackoffTiming, 'baseMs' | 'capMs'>, random: () => number = Math.random): number {
  // 2^attempt overflows to Infinity for large attempts; min() keeps it at the cap.
  const ceiling = Math.min(timing.capMs, timing.baseMs * 2 ** Math.max(0, attempt));
  return random() * ceiling;
}

/** Why a connection ended, as the device sees it. */
export type Ending =
  /** The socket opened and then closed with this code (1005/1006 when none was given). */
  | { kind: 'closed'; code: number; ownReboot?: boolean }
  /** The handshake was answered with an HTTP status (400, 401, 429, ...). */
  | { kind: 'refused'; status: number }
  /** No connection at all: refused port, timeout, reset, EMFILE... */
  | { kind: 'unreachable' };

export type Decision = {
  /** Sleep before the next attempt, ms. */
  delayMs: number;
  /** The backoff attempt counter to keep for next time (reset, kept, or increased). */
  nextAttempt: number;
  /** The hub told us our firmware sent something wrong (1003, 1007, 1009). */
  firmwareError: boolean;
  /** Short label for logs and the summary. */
  why: string;
};

const FIRMWARE_ERRORS = new Set<number>([CloseCode.UNSUPPORTED_DATA, CloseCode.INVALID_PAYLOAD, CloseCode.TOO_BIG]);

/**
 * What to do after a connection ended. `attempt` counts failed attempts since
 * the last stable connection; `stable` says the connection that just ended
 * lasted at least `stableMs`, which resets it to 0 first.
 */
export function afterEnding(
  ending: Ending,
  attempt: number,
  stable: boolean,
  timing: BackoffTiming = DEFAULT_TIMING,
  random: () => number = Math.random,
): Decision {
  const n = stable ? 0 : attempt;
  const backoff = (why: string, firmwareError = false): Decision =>
    ({ delayMs: backoffDelay(n, timing, random), nextAttempt: n + 1, firmwareError, why });
  const long = (base: number, why: string): Decision =>
    ({ delayMs: base + random() * base, nextAttempt: n + 1, firmwareError: false, why });

  if (ending.kind === 'unreachable') return backoff('unreachable');
  if (ending.kind === 'refused') {
    // 401 will not fix itself quickly (wrong key, removed device); 429 means the address is blocked for a while.
    if (ending.status === 401 || ending.status === 429) return long(timing.policyWaitMs, `http ${ending.status}`);
    return backoff(`http ${ending.status}`);
  }
  const { code } = ending;
  if (code === CloseCode.NORMAL) {
    if (ending.ownReboot) return { delayMs: timing.rebootPauseMs, nextAttempt: 0, firmwareError: false, why: 'reboot' };
    return long(timing.longWaitMs, 'closed 1000 by hub');
  }
  if (code === CloseCode.REPLACED) return long(timing.longWaitMs, 'replaced (4000)');
  if (code === CloseCode.POLICY) return long(timing.policyWaitMs, 'policy (1008)');
  if (FIRMWARE_ERRORS.has(code)) return backoff(`firmware error (${code})`, true);
  // 1001 going away, 1011 internal error, 1012 restarting, 1006 dropped, anything else.
  return backoff(`closed ${code}`);
}
