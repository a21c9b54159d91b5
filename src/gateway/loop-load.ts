/**
 * How busy the event loop has been lately: its utilization (the share of
 * wall time spent running callbacks rather than waiting for I/O, Node's
 * performance.eventLoopUtilization), smoothed over about SMOOTHING_MS.
 *
 * Why the admission queue asks it (admission.ts): in a reconnect storm the
 * hub's first job is to take connections off the kernel's accept queue as
 * fast as they arrive, for devices and health probes share that one queue.
 * Admitting a device costs about twice what accepting one does; a loop busy
 * admitting while the accept queue fills makes a probe wait behind thousands
 * of connections (seconds), where a loop that only accepts empties it in a
 * fraction of one. A smoothed figure, not one tick's: a single long callback
 * should not stop admissions, a loop busy for a tenth of a second should.
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';

/** Time constant of the smoothing, ms. */
export const SMOOTHING_MS = 100;

export class LoopLoad {
  #last: EventLoopUtilization;
  #smoothed = 0;

  constructor() {
    this.#last = performance.eventLoopUtilization();
  }

  /** The smoothed utilization (0 to 1), updated with the time since the previous call. */
  sample(): number {
    const current = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(current, this.#last);
    this.#last = current;
    const elapsedMs = delta.idle + delta.active;
    if (elapsedMs > 0) this.#smoothed += (1 - Math.exp(-elapsedMs / SMOOTHING_MS)) * (delta.utilization - this.#smoothed);
    return this.#smoothed;
  }
}
