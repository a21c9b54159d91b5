/**
 * A timer for a point in time that may be weeks away. Node (like browsers)
 * keeps timer delays in a signed 32-bit integer: a delay above 2^31-1 ms
 * (about 24.8 days) fires after 1 ms instead, with only a warning. Command
 * TTLs may be 30 days (PULSEWIRE_COMMAND_TTL_MS), so a long delay is split:
 * the timer waits at most MAX_TIMER_MS, then checks the clock again and
 * waits for what is left. The clock is checked, not the elapsed waits
 * added up, so a suspended or slow process still fires at the deadline.
 */

/** The longest delay setTimeout honours. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export type Scheduler = {
  setTimeout(fn: () => void, ms: number): NodeJS.Timeout;
  clearTimeout(timer: NodeJS.Timeout | undefined): void;
};

export type Deadline = { cancel(): void };

/** Calls `fire` once, as soon as `now()` reaches `deadlineMs` (at once when it has passed). Timers are unref'd. */
export function atDeadline(
  deadlineMs: number,
  fire: () => void,
  now: () => number = Date.now,
  scheduler: Scheduler = globalThis,
): Deadline {
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  const wait = () => {
    const left = Math.max(0, deadlineMs - now());
    timer = scheduler.setTimeout(() => {
      if (cancelled) return;
      if (now() < deadlineMs) return wait();
      fire();
    }, Math.min(left, MAX_TIMER_MS));
    timer.unref?.();
  };
  wait();
  return {
    cancel() {
      cancelled = true;
      scheduler.clearTimeout(timer);
    },
  };
}
